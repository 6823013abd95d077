/**
 * The graph widget's model: the state Python syncs (see jupyter_pipelines/ui/graph.py) and its types.
 */
import { DOMWidgetModel } from '@jupyter-widgets/base';
import * as Backbone from 'backbone';

import { MODULE_NAME, MODULE_VERSION } from './version';

/** A drawn node: a step or a parameter. `id` is the DOT node id, safe in DOT and in attributes. */
export interface INodeInfo {
  id: string;
  name: string;
  kind: 'step' | 'parameter';
  detail: string;
}

/** A drawn edge and the names that flow along it (empty for an explicit `--after`). */
export interface IEdgeInfo {
  tail: string;
  head: string;
  names: string[];
  reason: 'reads' | 'after' | 'parameter';
}

/** A line above the graph: the result of Export, or an error an action raised. */
export interface INotice {
  text: string;
  kind: 'info' | 'error';
  path?: string;
}

/** What the log pane shows for the selected step. */
export interface ILogState {
  step: string;
  status: string;
  note: string;
  text: string;
  error: string;
  truncated: boolean;
  url?: string; // a cloud step's console page ('' for none)
}

/** The current run as the run bar shows it (see RunState.run_view); empty before the first run. */
export interface IRunState {
  id: string;
  location: string; // 'local' | 'sagemaker'
  status: string;
  notes: string[];
  url?: string; // the execution's console page (https only)
}

export class PipelineGraphModel extends DOMWidgetModel {
  defaults(): Backbone.ObjectHash {
    return {
      ...super.defaults(),
      _model_name: 'PipelineGraphModel',
      _model_module: MODULE_NAME,
      _model_module_version: MODULE_VERSION,
      _view_name: 'PipelineGraphView',
      _view_module: MODULE_NAME,
      _view_module_version: MODULE_VERSION,
      dot: '',
      nodes: [],
      edges: [],
      statuses: {},
      durations: {},
      started: {},
      running: false,
      selected: '',
      log: {},
      notice: {},
      run: {},
      links: {},
      values: {}
    };
  }
}
