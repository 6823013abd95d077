/**
 * The run bar above the graph: where the current run happens. A SageMaker run gets a badge, its execution id and
 * status and a link to the execution's console page; the run's notes (e.g. that the endpoint cannot report step
 * statuses) follow as text. A local run without notes shows nothing here (the toolbar's status line says enough).
 */
import { externalLink } from './links';
import { IRunState } from './model';

export const CLOUD_LABELS: Record<string, string> = { sagemaker: 'SageMaker run' };

export function renderRun(area: HTMLElement, run: IRunState | null): void {
  area.replaceChildren();
  const location = run?.location ?? '';
  const cloud = location !== '' && location !== 'local';
  const notes = (run?.notes ?? []).filter(note => typeof note === 'string' && note);
  area.hidden = run === null || (!cloud && notes.length === 0);
  area.dataset.location = location;
  area.dataset.status = run?.status ?? '';
  if (run === null || area.hidden) {
    return;
  }
  if (cloud) {
    const badge = document.createElement('span');
    badge.className = 'jp-Pipelines-runBadge';
    badge.textContent = CLOUD_LABELS[location] ?? `${location} run`;
    const detail = document.createElement('span');
    detail.className = 'jp-Pipelines-runDetail';
    detail.textContent = [run.id, run.status].filter(Boolean).join(' · ');
    area.append(badge, ' ', detail);
    const link = externalLink(run.url, 'open in the SageMaker console', 'jp-Pipelines-runLink');
    if (link !== null) {
      area.append(' ', link);
    }
  }
  for (const note of notes) {
    const element = document.createElement('span');
    element.className = 'jp-Pipelines-runNote';
    element.textContent = note;
    area.append(element);
  }
}
