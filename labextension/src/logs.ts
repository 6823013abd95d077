/**
 * The log pane: the selected step's output (live while it runs), its traceback on failure and where a cached
 * result came from. Text only: everything goes in with `textContent`.
 */
import { externalLink } from './links';
import { ILogState } from './model';
import { asStatus, statusLabel } from './status';

export class LogPane {
  readonly element: HTMLElement;
  private readonly title: HTMLElement;
  private readonly note: HTMLElement;
  private readonly output: HTMLPreElement;
  private readonly error: HTMLPreElement;

  constructor() {
    this.element = document.createElement('section');
    this.element.className = 'jp-Pipelines-logs';
    this.element.setAttribute('aria-label', 'step logs');
    this.title = document.createElement('div');
    this.title.className = 'jp-Pipelines-logsTitle';
    this.note = document.createElement('div');
    this.note.className = 'jp-Pipelines-logsNote';
    this.output = document.createElement('pre');
    this.output.className = 'jp-Pipelines-logsText';
    this.output.tabIndex = 0;
    this.error = document.createElement('pre');
    this.error.className = 'jp-Pipelines-logsError';
    this.element.append(this.title, this.note, this.output, this.error);
    this.show(null);
  }

  show(log: ILogState | null): void {
    if (log === null || !log.step) {
      this.element.dataset.step = '';
      this.title.textContent = 'Logs: click a step and choose "Show logs".';
      this.note.textContent = '';
      this.output.textContent = '';
      this.output.hidden = true;
      this.error.textContent = '';
      this.error.hidden = true;
      return;
    }
    const follow = this.output.scrollTop + this.output.clientHeight >= this.output.scrollHeight - 4;
    this.element.dataset.step = log.step;
    this.element.dataset.status = log.status;
    this.title.textContent = `Logs: ${log.step} (${statusLabel(asStatus(log.status))})`;
    const notes = [log.note, log.truncated ? 'earlier output truncated: the full log is in the run store' : ''];
    this.note.textContent = notes.filter(Boolean).join(' · ');
    const link = externalLink(log.url, 'open the step in the SageMaker console', 'jp-Pipelines-logsLink');
    if (link !== null) {
      this.note.append(this.note.textContent ? ' · ' : '', link);
    }
    this.output.hidden = false;
    const text = log.text || placeholder(log.status);
    if (this.output.textContent !== text) {
      this.output.textContent = text;
    }
    this.error.textContent = log.error;
    this.error.hidden = !log.error;
    if (follow) {
      this.output.scrollTop = this.output.scrollHeight;
    }
  }
}

function placeholder(status: string): string {
  switch (status) {
    case 'running':
      return '(no output yet)';
    case 'pending':
      return '(not run yet in this session)';
    case 'cached':
      return '(reused from the cache: the output is in the run it came from, see %pipeline logs)';
    default:
      return '(no output)';
  }
}
