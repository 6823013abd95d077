/**
 * Drawing a laid-out graph as SVG elements. Every piece of user text (names, details, edge names) goes in with
 * `textContent`; attributes get only ids we made (validated DOT ids) or numbers.
 */
import { IEdgeInfo, INodeInfo } from './model';
import { IEdgePath, ILayout, INodeBox, IPoint } from './layout';
import { Status, formatDuration, statusLabel } from './status';

const SVG_NS = 'http://www.w3.org/2000/svg';
const MARGIN = 8;

export interface IDrawnGraph {
  svg: SVGSVGElement;
  nodes: Map<string, SVGGElement>;
}

function svgElement<K extends keyof SVGElementTagNameMap>(tag: K, attributes: Record<string, string | number> = {}) {
  const element = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attributes)) {
    element.setAttribute(key, String(value));
  }
  return element;
}

function text(content: string, x: number, y: number, className: string): SVGTextElement {
  const element = svgElement('text', { x, y, class: className, 'text-anchor': 'middle' });
  element.textContent = content;
  return element;
}

function pathData(curve: IPoint[]): string {
  if (curve.length === 0) {
    return '';
  }
  const [start, ...rest] = curve;
  const parts = [`M${start.x},${start.y}`];
  for (let i = 0; i + 2 < rest.length; i += 3) {
    parts.push(`C${rest[i].x},${rest[i].y} ${rest[i + 1].x},${rest[i + 1].y} ${rest[i + 2].x},${rest[i + 2].y}`);
  }
  return parts.join(' ');
}

export function edgeTooltip(info: IEdgeInfo | undefined): string {
  if (info === undefined) {
    return '';
  }
  if (info.reason === 'after') {
    return 'runs after (--after, no data)';
  }
  return info.names.join(', ');
}

function drawEdge(path: IEdgePath, info: IEdgeInfo | undefined): SVGGElement {
  const group = svgElement('g', { class: 'jp-Pipelines-edge' });
  group.dataset.tail = path.tail;
  group.dataset.head = path.head;
  group.dataset.reason = info?.reason ?? 'reads';
  const title = svgElement('title');
  title.textContent = edgeTooltip(info);
  const d = pathData(path.curve);
  const hit = svgElement('path', { d, class: 'jp-Pipelines-edgeHit' });
  const line = svgElement('path', { d, class: 'jp-Pipelines-edgeLine' });
  const arrow = svgElement('polygon', {
    points: path.arrow.map(p => `${p.x},${p.y}`).join(' '),
    class: 'jp-Pipelines-edgeArrow'
  });
  group.append(title, hit, line, arrow);
  return group;
}

function drawNode(box: INodeBox, info: INodeInfo): SVGGElement {
  const group = svgElement('g', { class: 'jp-Pipelines-node' });
  group.dataset.id = info.id;
  group.dataset.name = info.name;
  group.dataset.kind = info.kind;
  const left = box.x - box.width / 2;
  const top = box.y - box.height / 2;
  const rx = info.kind === 'parameter' ? box.height / 2 : 6;
  group.append(
    svgElement('rect', { x: left, y: top, width: box.width, height: box.height, rx, class: 'jp-Pipelines-nodeBox' })
  );
  const title = svgElement('title');
  group.append(title);
  if (info.kind === 'parameter') {
    group.dataset.detail = info.detail; // the declaration; a run's own value may replace it (showValue)
    group.append(text(info.detail, box.x, box.y + 4, 'jp-Pipelines-nodeDetail'));
    title.textContent = `parameter ${info.detail}`;
    group.setAttribute('aria-label', title.textContent);
    return group;
  }
  const line = 13;
  group.dataset.detail = info.detail;
  group.append(
    text(info.name, box.x, box.y - line + 4, 'jp-Pipelines-nodeName'),
    text(info.detail, box.x, box.y + 4, 'jp-Pipelines-nodeDetail'),
    text('', box.x, box.y + line + 4, 'jp-Pipelines-nodeState')
  );
  group.setAttribute('tabindex', '0');
  group.setAttribute('role', 'button');
  group.setAttribute('aria-haspopup', 'menu');
  return group;
}

/** Show a step's status and duration on its node (no new layout). */
export function updateNode(group: SVGGElement, status: Status, seconds: number | undefined): void {
  if (group.dataset.status === status && group.dataset.seconds === String(seconds ?? '')) {
    return;
  }
  group.dataset.status = status;
  group.dataset.seconds = String(seconds ?? '');
  if (group.dataset.kind !== 'step') {
    return;
  }
  const duration = seconds === undefined ? '' : status === 'running' ? `${seconds}s` : formatDuration(seconds);
  const label = duration ? `${statusLabel(status)} · ${duration}` : statusLabel(status);
  const state = group.querySelector('.jp-Pipelines-nodeState');
  if (state !== null) {
    state.textContent = label;
  }
  const name = group.dataset.name ?? '';
  const title = group.querySelector('title');
  if (title !== null) {
    title.textContent = `${name}: ${label} (click or Enter for actions)`;
  }
  group.setAttribute('aria-label', `step ${name}, ${label}`);
}

/**
 * A node's detail line for the shown run (``value``): a parameter's value that run was started with, a step's
 * SageMaker job in a cloud run; without one, the node's own detail (its declaration).
 */
export function showValue(group: SVGGElement, value: string | undefined): void {
  const shown = value ?? group.dataset.detail ?? '';
  const detail = group.querySelector('.jp-Pipelines-nodeDetail');
  if (detail === null || detail.textContent === shown) {
    return;
  }
  detail.textContent = shown;
  group.classList.toggle('jp-Pipelines-nodeOverridden', value !== undefined);
  if (group.dataset.kind !== 'parameter') {
    return; // a step's title and label carry its status (updateNode)
  }
  const title = group.querySelector('title');
  const label = value === undefined ? `parameter ${shown}` : `parameter ${shown} (this run; declared ${group.dataset.detail ?? ''})`;
  if (title !== null) {
    title.textContent = label;
  }
  group.setAttribute('aria-label', label);
}

export function drawGraph(layout: ILayout, nodes: INodeInfo[], edges: IEdgeInfo[]): IDrawnGraph {
  const width = layout.width + 2 * MARGIN;
  const height = layout.height + 2 * MARGIN;
  const svg = svgElement('svg', {
    class: 'jp-Pipelines-svg',
    width,
    height,
    viewBox: `${-MARGIN} ${-MARGIN} ${width} ${height}`,
    role: 'group',
    'aria-label': 'pipeline graph'
  });
  const edgeInfo = new Map(edges.map(e => [`${e.tail}->${e.head}`, e]));
  const edgeLayer = svgElement('g', { class: 'jp-Pipelines-edges' });
  for (const path of layout.edges) {
    edgeLayer.append(drawEdge(path, edgeInfo.get(`${path.tail}->${path.head}`)));
  }
  const nodeLayer = svgElement('g', { class: 'jp-Pipelines-nodes' });
  const drawn = new Map<string, SVGGElement>();
  for (const info of nodes) {
    const box = layout.nodes.get(info.id);
    if (box !== undefined) {
      const group = drawNode(box, info);
      drawn.set(info.id, group);
      nodeLayer.append(group);
    }
  }
  svg.append(edgeLayer, nodeLayer);
  return { svg, nodes: drawn };
}
