/**
 * The legend: one swatch per status, coloured by the same CSS rules as the nodes.
 */
import { STATUSES, statusLabel } from './status';

export function createLegend(): HTMLElement {
  const legend = document.createElement('div');
  legend.className = 'jp-Pipelines-legend';
  legend.setAttribute('aria-label', 'status legend');
  for (const status of STATUSES) {
    const item = document.createElement('span');
    item.className = 'jp-Pipelines-legendItem';
    item.dataset.status = status;
    const swatch = document.createElement('span');
    swatch.className = 'jp-Pipelines-swatch';
    const label = document.createElement('span');
    label.textContent = statusLabel(status);
    item.append(swatch, label);
    legend.append(item);
  }
  const parameter = document.createElement('span');
  parameter.className = 'jp-Pipelines-legendItem jp-Pipelines-legendParameter';
  const swatch = document.createElement('span');
  swatch.className = 'jp-Pipelines-swatch';
  const label = document.createElement('span');
  label.textContent = 'parameter';
  parameter.append(swatch, label);
  legend.append(parameter);
  return legend;
}
