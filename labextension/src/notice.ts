/**
 * The notice line above the graph: what Export wrote (with a link that opens the file in JupyterLab) or the
 * message of an action that failed. Text and the path go in with `textContent`.
 */
import { INotice } from './model';
import { openFile } from './opener';

/** `dir` is the notebook's directory (relative to the server root); `path` is relative to the kernel's. */
export function joinPath(dir: string, path: string): string {
  if (path.startsWith('/') || !dir) {
    return path;
  }
  return `${dir.replace(/\/+$/, '')}/${path}`;
}

export function renderNotice(area: HTMLElement, notice: INotice | null, notebookDir: string): void {
  area.replaceChildren();
  area.hidden = notice === null || !notice.text;
  if (notice === null || !notice.text) {
    return;
  }
  area.dataset.kind = notice.kind;
  const text = document.createElement('span');
  text.textContent = notice.text;
  area.append(text);
  if (notice.path) {
    const path = joinPath(notebookDir, notice.path);
    const link = document.createElement('a');
    link.className = 'jp-Pipelines-noticeLink';
    link.href = '#';
    link.textContent = notice.path;
    link.title = 'open in JupyterLab';
    link.addEventListener('click', event => {
      event.preventDefault();
      openFile(path);
    });
    area.append(' ', link);
  }
}
