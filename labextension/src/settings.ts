/**
 * Per-notebook export settings (`%pipeline config`) kept in the notebook's metadata.
 *
 * The frontend owns the open notebook, so the kernel never rewrites the .ipynb under it: when jupyter-pipelines
 * loads, the kernel opens a comm (target `jupyter_pipelines.settings`); this plugin answers with the notebook's
 * current settings (and again whenever they change, e.g. in the metadata editor), and on a `set` message puts the
 * new ones in `metadata.jupyter_pipelines` of the notebook whose kernel sent it: the notebook becomes dirty and the
 * settings are saved with it. Only the five known settings, as strings, are ever written.
 */
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import type { Kernel, KernelMessage } from '@jupyterlab/services';

export const COMM_TARGET = 'jupyter_pipelines.settings';
export const METADATA_KEY = 'jupyter_pipelines';
export const SETTING_KEYS = ['role_arn', 'bucket', 'region', 'prefix', 'name'] as const;

export type Settings = { [key: string]: string };

/** The known settings among `raw` (a kernel message, the metadata), non-empty strings only. */
export function cleanSettings(raw: unknown): Settings {
  const settings: Settings = {};
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    return settings;
  }
  const source = raw as { [key: string]: unknown };
  for (const key of SETTING_KEYS) {
    const value = source[key];
    if (typeof value === 'string' && value !== '') {
      settings[key] = value;
    }
  }
  return settings;
}

function sameSettings(a: Settings, b: Settings): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every(key => a[key] === b[key]);
}

function notebookSettings(panel: NotebookPanel): Settings {
  return cleanSettings(panel.model?.getMetadata(METADATA_KEY));
}

/** Wire one comm to the notebook panel whose kernel it belongs to. */
function attach(panel: NotebookPanel, comm: Kernel.IComm): void {
  const send = (): void => {
    if (!comm.isDisposed) {
      comm.send({ type: 'notebook', settings: notebookSettings(panel) });
    }
  };
  const onMetadata = (_: unknown, change: { key: string }): void => {
    if (change.key === METADATA_KEY) {
      send();
    }
  };
  const model = panel.model;
  model?.metadataChanged.connect(onMetadata);
  const detach = (): void => {
    model?.metadataChanged.disconnect(onMetadata);
  };
  comm.onMsg = (msg: KernelMessage.ICommMsgMsg): void => {
    const data = msg.content.data as { type?: unknown; settings?: unknown };
    if (data.type !== 'set' || panel.isDisposed || !panel.model) {
      return;
    }
    const settings = cleanSettings(data.settings);
    if (!sameSettings(settings, notebookSettings(panel))) {
      panel.model.setMetadata(METADATA_KEY, settings); // the notebook is now dirty: saved (or autosaved) with it
    }
  };
  comm.onClose = (): void => detach();
  panel.disposed.connect(detach);
  send();
}

const watched = new WeakSet<Kernel.IKernelConnection>();

/** Answer the comms of this panel's kernel: those it opens from now on and those it already has (a page reload). */
function watchKernel(panel: NotebookPanel, kernel: Kernel.IKernelConnection): void {
  if (watched.has(kernel)) {
    return;
  }
  watched.add(kernel);
  kernel.registerCommTarget(COMM_TARGET, comm => attach(panel, comm));
  kernel
    .requestCommInfo({ target_name: COMM_TARGET })
    .then(reply => {
      if (reply.content.status !== 'ok' || kernel.isDisposed) {
        return;
      }
      for (const id of Object.keys(reply.content.comms)) {
        if (!kernel.hasComm(id)) {
          attach(panel, kernel.createComm(COMM_TARGET, id));
        }
      }
    })
    .catch(() => undefined); // the kernel went away: its next one is watched through kernelChanged
}

function watchPanel(panel: NotebookPanel): void {
  const context = panel.sessionContext;
  const update = (): void => {
    const kernel = context.session?.kernel;
    if (kernel && !panel.isDisposed) {
      watchKernel(panel, kernel);
    }
  };
  context.kernelChanged.connect(update);
  panel.disposed.connect(() => context.kernelChanged.disconnect(update));
  update();
}

export const settingsPlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-pipelines:settings',
  description: "Keeps %pipeline config's export settings in the notebook's metadata.",
  requires: [INotebookTracker],
  autoStart: true,
  activate: (_app: JupyterFrontEnd, tracker: INotebookTracker): void => {
    tracker.forEach(watchPanel);
    tracker.widgetAdded.connect((_, panel) => watchPanel(panel));
  }
};
