"""``PipelineWidget``: the graph, a toolbar (Run, Stop, Export, Promote) and the log pane, driven by events.

The widget knows nothing of sessions, export or promotion: the magics hand it :class:`WidgetActions`. Events come
from the engine's thread through :meth:`PipelineWidget.handle_event`; the run state is folded at once and pushed to
the browser through a :class:`~jupyter_pipelines.ui.throttle.Throttle`, so statuses arrive within milliseconds and
log floods are batched.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ipywidgets

from ..engine.events import Event, StepLog
from ..errors import PipelineError
from ..model import ParameterValue, Pipeline
from .dot import GraphSpec, build_graph, node_id
from .graph import PipelineGraph
from .parameters import ParameterInputs
from .state import RunState
from .throttle import Throttle

EXPORT_UNAVAILABLE = "export is not available in this session"
PROMOTE_UNCONFIGURED = "configure promotion first (%pipeline config ...)"


@dataclass(frozen=True)
class WidgetActions:
    """What the buttons and the node menu do. Run actions must return quickly (start a background run)."""

    run: Callable[[], object]
    run_step: Callable[[str], object]
    run_from: Callable[[str], object]
    stop: Callable[[], object]
    export: Callable[[], str] | None = None  # returns the path of the written definition
    promote: Callable[[], object] | None = None  # may return a message to show


def _button(description: str, icon: str, tooltip: str) -> ipywidgets.Button:
    return ipywidgets.Button(
        description=description, icon=icon, tooltip=tooltip, layout=ipywidgets.Layout(width="auto")
    )


def _display_path(path: str) -> str:
    """A written file's path relative to the kernel's directory (the notebook's) when it lies below it."""
    try:
        return Path(path).resolve().relative_to(Path(os.getcwd()).resolve()).as_posix()
    except ValueError:
        return path


class PipelineWidget(ipywidgets.VBox):  # type: ignore[misc]
    """The live pipeline view. ``display(widget)`` shows it; it stays live while the kernel runs."""

    def __init__(self, pipeline: Pipeline, actions: WidgetActions, *, interval: float = 0.05) -> None:
        self.actions = actions
        self.state = RunState()
        self.pipeline = pipeline
        self._spec: GraphSpec | None = None
        self._lock = threading.RLock()  # guards self.state and every write to synced traits
        self.graph = PipelineGraph()
        self.run_button = _button("Run", "play", "run the whole pipeline (cached steps are reused)")
        self.stop_button = _button("Stop", "stop", "stop the run: running steps are terminated, nothing cached")
        self.export_button = _button("Export", "file-export", "write the SageMaker pipeline definition JSON")
        self.promote_button = _button("Promote", "cloud-upload", "promote the pipeline to SageMaker Pipelines")
        self.status_label = ipywidgets.Label(value="")
        self.run_button.on_click(lambda _: self._call("run", actions.run))
        self.stop_button.on_click(lambda _: self._call("stop", actions.stop))
        self.export_button.on_click(lambda _: self._export())
        self.promote_button.on_click(lambda _: self._promote())
        toolbar = ipywidgets.HBox(
            [self.run_button, self.stop_button, self.export_button, self.promote_button, self.status_label],
            layout=ipywidgets.Layout(align_items="center", flex_flow="row wrap"),
        )
        self.parameter_inputs = ParameterInputs()
        super().__init__([toolbar, self.parameter_inputs, self.graph])
        self.add_class("jp-Pipelines-widget")
        self._throttle = Throttle(self._flush, interval)
        self.graph.on_msg(self._on_graph_message)
        self.graph.observe(lambda _: self._throttle.request(urgent=True), names="selected")
        self.set_pipeline(pipeline)

    # -- inputs -----------------------------------------------------------------------------------------------
    def set_pipeline(self, pipeline: Pipeline) -> None:
        """Show a new version of the pipeline (a step added or changed); run state of known steps is kept."""
        spec = build_graph(pipeline)
        self.parameter_inputs.set_parameters(pipeline.parameters)
        with self._lock:
            self.pipeline = pipeline
            if spec != self._spec:
                self._spec = spec
                with self.graph.hold_sync():
                    self.graph.nodes = [dataclasses.asdict(n) for n in spec.nodes]
                    self.graph.edges = [{**dataclasses.asdict(e), "names": list(e.names)} for e in spec.edges]
                    self.graph.dot = spec.dot
            self._flush()

    def parameter_values(self) -> dict[str, ParameterValue]:
        """The parameter values set in the widget's inputs that differ from the defaults (runs override these)."""
        return self.parameter_inputs.values()

    def handle_event(self, event: Event) -> None:
        """Fold an engine event in (callable from any thread); the browser hears of it within milliseconds."""
        with self._lock:
            changed = self.state.apply(event)
        if changed:
            self._throttle.request(urgent=not isinstance(event, StepLog))

    def flush(self) -> None:
        """Push the current state to the synced traits now (tests; the throttle does this on its own)."""
        self._flush()

    def close(self) -> None:
        self._throttle.close()
        super().close()

    # -- state -> traits --------------------------------------------------------------------------------------
    def _flush(self) -> None:
        with self._lock:
            names = self.pipeline.step_names
            statuses = {node_id("step", n): self.state.status(n) for n in names}
            durations: dict[str, float] = {}
            started: dict[str, float] = {}
            for name in names:
                view = self.state.steps.get(name)
                if view is not None and view.duration is not None:
                    durations[node_id("step", name)] = round(view.duration, 3)
                if view is not None and view.started is not None and view.status == "running":
                    started[node_id("step", name)] = view.started
            running = self.state.running
            with self.graph.hold_sync():
                self.graph.statuses = statuses
                self.graph.durations = durations
                self.graph.started = started
                self.graph.running = running
                self.graph.log = self.state.log_for(self.graph.selected) or {}
            self._update_toolbar(running, bool(names))

    def _update_toolbar(self, running: bool, has_steps: bool) -> None:
        self.run_button.disabled = running or not has_steps
        self.run_button.tooltip = (
            "a run is in progress"
            if running
            else ("run the whole pipeline (cached steps are reused)" if has_steps else "no steps yet")
        )
        self.stop_button.disabled = not running
        self.export_button.disabled = self.actions.export is None
        if self.actions.export is None:
            self.export_button.tooltip = EXPORT_UNAVAILABLE
        self.promote_button.disabled = self.actions.promote is None
        if self.actions.promote is None:
            self.promote_button.tooltip = PROMOTE_UNCONFIGURED
        self.status_label.value = self._status_text(running)

    def _status_text(self, running: bool) -> str:
        state = self.state
        if running:
            done = sum(1 for v in state.steps.values() if v.status in ("succeeded", "cached"))
            return f"running (run {state.run_id}): {done}/{len(self.pipeline.steps)} steps done"
        if state.run_status is None:
            return f"{len(self.pipeline.steps)} steps"
        took = f" in {state.run_duration:.1f}s" if state.run_duration is not None else ""
        return f"run {state.run_id} {state.run_status}{took}"

    # -- actions ----------------------------------------------------------------------------------------------
    def notify(self, text: str, *, kind: str = "info", path: str | None = None) -> None:
        """Show a line above the graph (an action's result or error)."""
        notice: dict[str, Any] = {"text": text, "kind": kind}
        if path:
            notice["path"] = path
        with self._lock:
            self.graph.notice = notice

    def _call(self, what: str, action: Callable[..., object], *args: Any) -> object | None:
        try:
            result = action(*args)
        except PipelineError as error:
            self.notify(str(error), kind="error")
            return None
        except Exception as error:  # an action's bug: show it rather than lose it in the comm handler
            self.notify(f"{what} failed: {type(error).__name__}: {error}", kind="error")
            return None
        with self._lock:
            if self.graph.notice and self.graph.notice.get("kind") == "error":
                self.graph.notice = {}
        return result

    def _export(self) -> None:
        if self.actions.export is None:
            return
        path = self._call("export", self.actions.export)
        if isinstance(path, str | os.PathLike):
            shown = _display_path(os.fspath(path))
            self.notify("exported the SageMaker pipeline definition:", path=shown)

    def _promote(self) -> None:
        if self.actions.promote is None:
            return
        message = self._call("promote", self.actions.promote)
        if isinstance(message, str) and message:
            self.notify(message)

    def _on_graph_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict) or content.get("type") != "action":
            return
        step, action = content.get("step"), content.get("action")
        if not isinstance(step, str) or step not in self.pipeline.step_names:
            self.notify(f"no step named {step!r} in this pipeline (run its cell again?)", kind="error")
            return
        if action == "run_step":
            self._call("run this step", self.actions.run_step, step)
        elif action == "run_from":
            self._call("run from here", self.actions.run_from, step)
