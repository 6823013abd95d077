"""The custom DOM widget that draws the DAG; its view is ``PipelineGraphView`` in ``labextension/src/view.ts``.

Python sends the graph (DOT plus node and edge descriptions) and the run state; the browser lays the DOT out
with Graphviz compiled to WebAssembly, draws it, and sends back the node menu's choices as custom messages
(``{"type": "action", "action": "run_step" | "run_from", "step": NAME}``) and the selected step as ``selected``.
"""

from __future__ import annotations

import ipywidgets
from traitlets import Bool, Dict, List, Unicode

MODULE_NAME = "jupyter-pipelines"
MODULE_VERSION = "0.1.0"  # labextension/package.json "version"


class PipelineGraph(ipywidgets.DOMWidget):  # type: ignore[misc]
    _model_name = Unicode("PipelineGraphModel").tag(sync=True)
    _model_module = Unicode(MODULE_NAME).tag(sync=True)
    _model_module_version = Unicode(f"^{MODULE_VERSION}").tag(sync=True)
    _view_name = Unicode("PipelineGraphView").tag(sync=True)
    _view_module = Unicode(MODULE_NAME).tag(sync=True)
    _view_module_version = Unicode(f"^{MODULE_VERSION}").tag(sync=True)

    dot = Unicode("").tag(sync=True)
    nodes = List(Dict()).tag(sync=True)  # [{id, name, kind: "step"|"parameter", detail}]
    edges = List(Dict()).tag(sync=True)  # [{tail, head, names: [...], reason: "reads"|"after"|"parameter"}]
    statuses = Dict().tag(sync=True)  # node id -> widget status
    durations = Dict().tag(sync=True)  # node id -> seconds
    started = Dict().tag(sync=True)  # node id -> epoch seconds, for the running steps' elapsed time
    running = Bool(False).tag(sync=True)
    selected = Unicode("").tag(sync=True)  # step name whose logs the pane shows (set by the browser)
    log = Dict().tag(sync=True)  # see RunState.log_for; {} when no step is selected
    notice = Dict().tag(sync=True)  # {text, kind: "info"|"error", path?}; {} for none
    run = Dict().tag(sync=True)  # see RunState.run_view: {id, location, status, notes, url?}; {} before a run
    links = Dict().tag(sync=True)  # step node id -> its console page (https only), for cloud runs
    values = Dict().tag(sync=True)  # node id -> its detail line for the shown run, where not its own (see widget)
