/**
 * The small menu a step node opens (click, Enter or Space): run this step, run from here, show logs, and for a
 * step of a cloud run a link to its console page (new tab). Arrow keys move between items, Escape closes it and
 * gives focus back to the node.
 */
import { safeUrl } from './links';

export type NodeAction = 'run_step' | 'run_from' | 'show_logs';

const ITEMS: ReadonlyArray<{ action: NodeAction; label: string; runs: boolean }> = [
  { action: 'run_step', label: 'Run this step', runs: true },
  { action: 'run_from', label: 'Run from here', runs: true },
  { action: 'show_logs', label: 'Show logs', runs: false }
];

export class NodeMenu {
  readonly element: HTMLElement;
  private step = '';
  private anchor: HTMLElement | SVGElement | null = null;
  private readonly buttons: HTMLButtonElement[] = [];
  private readonly link: HTMLAnchorElement;

  constructor(private readonly choose: (action: NodeAction, step: string) => void) {
    this.element = document.createElement('div');
    this.element.className = 'jp-Pipelines-menu';
    this.element.setAttribute('role', 'menu');
    this.element.hidden = true;
    const heading = document.createElement('div');
    heading.className = 'jp-Pipelines-menuHeading';
    this.element.append(heading);
    for (const item of ITEMS) {
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'jp-Pipelines-menuItem';
      button.setAttribute('role', 'menuitem');
      button.dataset.action = item.action;
      button.dataset.runs = String(item.runs);
      button.textContent = item.label;
      button.addEventListener('click', event => {
        event.stopPropagation();
        const step = this.step;
        this.close(true);
        this.choose(item.action, step);
      });
      this.buttons.push(button);
      this.element.append(button);
    }
    this.link = document.createElement('a');
    this.link.className = 'jp-Pipelines-menuItem jp-Pipelines-menuLink';
    this.link.setAttribute('role', 'menuitem');
    this.link.target = '_blank';
    this.link.rel = 'noopener noreferrer';
    this.link.textContent = 'Open in the SageMaker console';
    this.link.hidden = true;
    this.link.addEventListener('click', event => {
      event.stopPropagation();
      this.close(); // the browser opens the page in a new tab
    });
    this.element.append(this.link);
    this.element.addEventListener('keydown', event => this.onKey(event));
  }

  get isOpen(): boolean {
    return !this.element.hidden;
  }

  /** Open for `step` next to `anchor`, at `x`, `y` relative to the menu's offset parent; `url`: its console page. */
  open(
    step: string,
    anchor: HTMLElement | SVGElement,
    x: number,
    y: number,
    running: boolean,
    url: unknown = null
  ): void {
    this.step = step;
    this.anchor = anchor;
    const heading = this.element.firstElementChild as HTMLElement;
    heading.textContent = step;
    for (const button of this.buttons) {
      const disabled = running && button.dataset.runs === 'true';
      button.disabled = disabled;
      button.title = disabled ? 'a run is in progress: stop it or wait' : '';
    }
    const href = safeUrl(url);
    this.link.hidden = href === null;
    if (href === null) {
      this.link.removeAttribute('href');
    } else {
      this.link.href = href;
      this.link.title = href;
    }
    this.element.style.left = `${Math.round(x)}px`;
    this.element.style.top = `${Math.round(y)}px`;
    this.element.hidden = false;
    (this.buttons.find(b => !b.disabled) ?? this.buttons[this.buttons.length - 1]).focus();
  }

  close(restoreFocus = false): void {
    if (this.element.hidden) {
      return;
    }
    this.element.hidden = true;
    if (restoreFocus && this.anchor !== null && this.anchor.isConnected) {
      this.anchor.focus();
    }
  }

  private onKey(event: KeyboardEvent): void {
    const enabled: HTMLElement[] = this.buttons.filter(b => !b.disabled);
    if (!this.link.hidden) {
      enabled.push(this.link);
    }
    const index = enabled.indexOf(document.activeElement as HTMLElement);
    if (event.key === 'Escape') {
      this.close(true);
    } else if (event.key === 'ArrowDown') {
      enabled[(index + 1) % enabled.length]?.focus();
    } else if (event.key === 'ArrowUp') {
      enabled[(index - 1 + enabled.length) % enabled.length]?.focus();
    } else {
      return;
    }
    event.preventDefault();
    event.stopPropagation();
  }
}
