/**
 * The graph widget's view: lays out the DOT the kernel sends, draws it, colours nodes by status, opens the node
 * menu and sends the chosen action back to the kernel, and shows the selected step's logs.
 *
 * Layout runs only when the graph itself changes; status, duration and log updates touch the drawn elements.
 */
import { DOMWidgetView } from '@jupyter-widgets/base';

import { IDrawnGraph, drawGraph, showValue, updateNode } from './draw';
import { layoutDot } from './layout';
import { createLegend } from './legend';
import { LogPane } from './logs';
import { IEdgeInfo, ILogState, INodeInfo, INotice, IRunState } from './model';
import { NodeAction, NodeMenu } from './menu';
import { renderNotice } from './notice';
import { renderRun } from './runbar';
import { asStatus } from './status';

const TICK_MS = 500;

export class PipelineGraphView extends DOMWidgetView {
  private graphArea!: HTMLElement;
  private noticeArea!: HTMLElement;
  private runArea!: HTMLElement;
  private menu!: NodeMenu;
  private logs!: LogPane;
  private drawn: IDrawnGraph | null = null;
  private layoutGeneration = 0;
  private ticker: number | null = null;
  private readonly onDocumentPointer = (event: Event): void => {
    if (this.menu.isOpen && !this.menu.element.contains(event.target as Node)) {
      this.menu.close();
    }
  };

  render(): void {
    this.el.classList.add('jp-Pipelines');
    this.noticeArea = document.createElement('div');
    this.noticeArea.className = 'jp-Pipelines-notice';
    this.runArea = document.createElement('div');
    this.runArea.className = 'jp-Pipelines-run';
    this.runArea.setAttribute('role', 'status');
    this.graphArea = document.createElement('div');
    this.graphArea.className = 'jp-Pipelines-graph';
    this.menu = new NodeMenu((action, step) => this.choose(action, step));
    this.logs = new LogPane();
    const stage = document.createElement('div');
    stage.className = 'jp-Pipelines-stage';
    stage.append(this.graphArea, this.menu.element);
    this.el.append(this.runArea, this.noticeArea, createLegend(), stage, this.logs.element);

    this.graphArea.addEventListener('click', event => this.onNodeEvent(event));
    this.graphArea.addEventListener('keydown', event => this.onNodeKey(event));
    document.addEventListener('pointerdown', this.onDocumentPointer, true);

    this.listenTo(this.model, 'change:dot change:nodes change:edges', () => void this.relayout());
    this.listenTo(this.model, 'change:statuses change:durations change:started', () => this.applyStatuses());
    this.listenTo(this.model, 'change:running', () => this.applyRunning());
    this.listenTo(this.model, 'change:log', () => this.logs.show(this.model.get('log') as ILogState | null));
    this.listenTo(this.model, 'change:notice', () => this.showNotice());
    this.listenTo(this.model, 'change:run', () => this.showRun());
    this.listenTo(this.model, 'change:values', () => this.applyValues());
    this.applyRunning();
    this.showNotice();
    this.showRun();
    this.logs.show(this.model.get('log') as ILogState | null);
    void this.relayout();
  }

  remove(): void {
    document.removeEventListener('pointerdown', this.onDocumentPointer, true);
    this.stopTicker();
    return super.remove();
  }

  private async relayout(): Promise<void> {
    const generation = ++this.layoutGeneration;
    const dot = this.model.get('dot') as string;
    const nodes = this.model.get('nodes') as INodeInfo[];
    if (!dot || !nodes.some(node => node.kind === 'step')) {
      this.graphArea.replaceChildren(this.message('No steps yet: run a %%step cell.'));
      this.drawn = null;
      return;
    }
    const started = performance.now();
    try {
      const layout = await layoutDot(dot);
      if (generation !== this.layoutGeneration) {
        return; // a newer graph arrived while this one was laid out
      }
      const focused = (document.activeElement as HTMLElement | null)?.dataset?.id;
      this.drawn = drawGraph(layout, nodes, this.model.get('edges') as IEdgeInfo[]);
      this.graphArea.replaceChildren(this.drawn.svg);
      this.applyStatuses();
      this.applyValues();
      if (focused !== undefined) {
        (this.drawn.nodes.get(focused) as SVGGElement | undefined)?.focus();
      }
      this.el.dataset.layoutMs = (performance.now() - started).toFixed(1);
      this.el.dataset.nodeCount = String(this.drawn.nodes.size);
      this.el.dataset.layoutGeneration = String(generation);
    } catch (error) {
      if (generation === this.layoutGeneration) {
        this.graphArea.replaceChildren(this.message(`Could not lay out the graph: ${String(error)}`));
      }
    }
  }

  private message(text: string): HTMLElement {
    const element = document.createElement('div');
    element.className = 'jp-Pipelines-message';
    element.textContent = text;
    return element;
  }

  private applyStatuses(): void {
    if (this.drawn === null) {
      return;
    }
    const statuses = this.model.get('statuses') as Record<string, string>;
    const durations = this.model.get('durations') as Record<string, number>;
    const started = this.model.get('started') as Record<string, number>;
    let anyRunning = false;
    const now = Date.now() / 1000;
    for (const [id, group] of this.drawn.nodes) {
      const status = asStatus(statuses[id]);
      let seconds: number | undefined = durations[id];
      if (status === 'running' && started[id] !== undefined) {
        anyRunning = true;
        seconds = Math.max(0, Math.floor(now - started[id]));
      }
      updateNode(group, status, seconds);
    }
    if (anyRunning) {
      this.startTicker();
    } else {
      this.stopTicker();
    }
  }

  private applyValues(): void {
    if (this.drawn === null) {
      return;
    }
    const values = (this.model.get('values') ?? {}) as Record<string, string>;
    for (const [id, group] of this.drawn.nodes) {
      showValue(group, typeof values[id] === 'string' ? values[id] : undefined);
    }
  }

  private applyRunning(): void {
    this.el.dataset.running = String(Boolean(this.model.get('running')));
  }

  private showRun(): void {
    const run = this.model.get('run') as IRunState | Record<string, never>;
    const known = typeof run === 'object' && run !== null && 'id' in run;
    renderRun(this.runArea, known ? (run as IRunState) : null);
    this.el.dataset.location = known ? (run as IRunState).location : '';
  }

  private showNotice(): void {
    renderNotice(this.noticeArea, this.model.get('notice') as INotice | null, this.notebookDir());
  }

  /** The directory of the notebook this widget lives in, when the widget manager knows it (JupyterLab's does). */
  private notebookDir(): string {
    const manager = this.model.widget_manager as unknown as { context?: { path?: unknown } };
    const path = manager.context?.path;
    return typeof path === 'string' && path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : '';
  }

  private startTicker(): void {
    if (this.ticker === null) {
      this.ticker = window.setInterval(() => this.applyStatuses(), TICK_MS);
    }
  }

  private stopTicker(): void {
    if (this.ticker !== null) {
      window.clearInterval(this.ticker);
      this.ticker = null;
    }
  }

  private stepNodeOf(event: Event): SVGGElement | null {
    const target = event.target as Element | null;
    const node = target?.closest('.jp-Pipelines-node[data-kind="step"]') as SVGGElement | null;
    return node !== null && this.graphArea.contains(node) ? node : null;
  }

  private onNodeEvent(event: MouseEvent): void {
    const node = this.stepNodeOf(event);
    if (node !== null) {
      event.stopPropagation();
      this.openMenu(node);
    }
  }

  private onNodeKey(event: KeyboardEvent): void {
    const node = this.stepNodeOf(event);
    if (node !== null && (event.key === 'Enter' || event.key === ' ')) {
      event.preventDefault();
      event.stopPropagation();
      this.openMenu(node);
    }
  }

  private openMenu(node: SVGGElement): void {
    const stage = this.menu.element.parentElement as HTMLElement;
    const box = node.getBoundingClientRect();
    const origin = stage.getBoundingClientRect();
    const running = Boolean(this.model.get('running'));
    const links = this.model.get('links') as Record<string, string>;
    const url = node.dataset.id !== undefined ? links[node.dataset.id] : undefined;
    this.menu.open(node.dataset.name ?? '', node, box.left - origin.left, box.bottom - origin.top + 2, running, url);
  }

  private choose(action: NodeAction, step: string): void {
    this.model.set('selected', step);
    this.model.save_changes();
    if (action !== 'show_logs') {
      this.send({ type: 'action', action, step });
    }
    this.logs.element.scrollIntoView({ block: 'nearest' });
  }
}
