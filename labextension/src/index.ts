/**
 * The JupyterLab plugins: the pipeline graph widget (registered with the ipywidgets manager) and the per-notebook
 * export settings kept in the notebook's metadata (settings.ts).
 */
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { IJupyterWidgetRegistry } from '@jupyter-widgets/base';

import { setOpener } from './opener';
import { settingsPlugin } from './settings';
import { PipelineGraphModel } from './model';
import { PipelineGraphView } from './view';
import { MODULE_NAME, MODULE_VERSION } from './version';

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-pipelines:widget',
  description: 'The live pipeline graph of jupyter-pipelines.',
  requires: [IJupyterWidgetRegistry],
  autoStart: true,
  activate: (app: JupyterFrontEnd, registry: IJupyterWidgetRegistry): void => {
    setOpener(path => void app.commands.execute('docmanager:open', { path }));
    registry.registerWidget({
      name: MODULE_NAME,
      version: MODULE_VERSION,
      exports: { PipelineGraphModel, PipelineGraphView }
    });
  }
};

export default [plugin, settingsPlugin];
