"""``PipelineWidget``: the graph, a toolbar (Run, Stop, Export, Promote) and the log pane, driven by events.

The widget knows nothing of sessions, export or promotion: the magics hand it :class:`WidgetActions`. Events come
from the engine's thread through :meth:`PipelineWidget.handle_event`; the run state is folded at once and pushed to
the browser through a :class:`~jupyter_pipelines.ui.throttle.Throttle`, so statuses arrive within milliseconds and
log floods are batched.

Promote opens a small form (:mod:`~jupyter_pipelines.ui.promote_form`) prefilled from the notebook's remembered
settings; its values go to ``actions.promote``, which starts the promotion in the background. The cloud run that
follows arrives as the same events (``RunStarted.location == "sagemaker"``) and colours the same graph; Stop stays
the session's ``stop``, which stops the SageMaker execution during a cloud run.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ipywidgets

from ..engine.events import Event, RunNote, StepLog
from ..errors import PipelineError
from ..model import ParameterValue, Pipeline
from .dot import GraphSpec, build_graph, node_id, parameter_detail, step_detail
from .graph import PipelineGraph
from .links import short_run_id
from .parameters import ParameterInputs
from .promote_form import PromoteForm
from .state import RunState
from .throttle import Throttle

EXPORT_UNAVAILABLE = "export is not available in this session"
PROMOTE_UNCONFIGURED = "configure promotion first (%pipeline config ...)"
PROMOTE_TOOLTIP = "promote the pipeline to SageMaker Pipelines (opens a form: role, bucket, region)"
STOP_TOOLTIP = "stop the run: running steps are terminated, nothing cached"
STOP_CLOUD_TOOLTIP = "stop the SageMaker pipeline execution"
BUSY = "a run is in progress"
NOTICE_CAP = 2000  # characters of an action's note shown


@dataclass(frozen=True)
class WidgetActions:
    """What the buttons and the node menu do. Run actions must return quickly (start a background run)."""

    run: Callable[[], object]
    run_step: Callable[[str], object]
    run_from: Callable[[str], object]
    stop: Callable[[], object]
    export: Callable[[], str] | None = None  # returns the path of the written definition
    # Starts a promotion in the background with the form's values (role_arn, bucket, region, and prefix, profile
    # when given); returns a short message to show. Raises PipelineError for what the user must fix.
    promote: Callable[[Mapping[str, str]], object] | None = None
    promote_settings: Callable[[], Mapping[str, str]] | None = None  # the remembered values, to prefill the form
    check_setting: Callable[[str, str], str] | None = None  # a form field's problem ("" if none), the export's rules


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
        self.stop_button = _button("Stop", "stop", STOP_TOOLTIP)
        self.export_button = _button("Export", "file-export", "write the SageMaker pipeline definition JSON")
        self.promote_button = _button("Promote", "cloud-upload", PROMOTE_TOOLTIP)
        self.promote_form = PromoteForm(self._submit_promote, actions.check_setting)
        self.status_label = ipywidgets.Label(value="")
        self.status_label.add_class("jp-Pipelines-status")
        self.run_button.on_click(lambda _: self._call("run", actions.run))
        self.stop_button.on_click(lambda _: self._call("stop", actions.stop))
        self.export_button.on_click(lambda _: self._export())
        self.promote_button.on_click(lambda _: self._promote())
        toolbar = ipywidgets.HBox(
            [self.run_button, self.stop_button, self.export_button, self.promote_button, self.status_label],
            layout=ipywidgets.Layout(align_items="center", flex_flow="row wrap"),
        )
        self.parameter_inputs = ParameterInputs()
        super().__init__([toolbar, self.promote_form, self.parameter_inputs, self.graph])
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
        """Fold an engine event in (callable from any thread); the browser hears of it within milliseconds.

        A ``RunNote`` of no run shown here is about an action: the session's promotion thread sends its outcome as
        ``RunNote("promote", ...)``, what it uploaded and created, or why it failed (``level="error"``). It
        becomes the notice line (an error, and the form reopens to fix the values, when the promotion failed)."""
        with self._lock:
            if isinstance(event, RunNote) and event.run_id != self.state.run_id:
                self._action_note(event.text, failed=event.level == "error")
                return
            changed = self.state.apply(event)
        if changed:
            self._throttle.request(urgent=not isinstance(event, StepLog))

    def _action_note(self, text: str, *, failed: bool) -> None:
        text = " ".join(str(text).split())[:NOTICE_CAP]
        self.notify(text, kind="error" if failed else "info")
        if failed:
            self.promote_form.show_form({})

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
            links = {node_id("step", n): v.url for n in names if (v := self.state.steps.get(n)) and v.url}
            values = self._run_values()
            with self.graph.hold_sync():
                self.graph.statuses = statuses
                self.graph.durations = durations
                self.graph.started = started
                self.graph.running = running
                self.graph.log = self.state.log_for(self.graph.selected) or {}
                self.graph.run = self.state.run_view()
                self.graph.links = links
                self.graph.values = values
            self._update_toolbar(running, bool(names))

    def _run_values(self) -> dict[str, str]:
        """Node detail lines for the shown run: parameters started with another value than their default show it;
        in a SageMaker run, each step shows the job it is there (not its local executor)."""
        values = {}
        if self.state.is_cloud:
            for step in self.pipeline.steps:
                values[node_id("step", step.name)] = step_detail(step, where=f"SageMaker {step.kind}")
        for parameter in self.pipeline.parameters:
            value = self.state.parameters.get(parameter.name, parameter.default)
            if value != parameter.default:
                values[node_id("parameter", parameter.name)] = parameter_detail(
                    dataclasses.replace(parameter, default=value)
                )
        return values

    def _update_toolbar(self, running: bool, has_steps: bool) -> None:
        self.run_button.disabled = running or not has_steps
        self.run_button.tooltip = (
            "a run is in progress"
            if running
            else ("run the whole pipeline (cached steps are reused)" if has_steps else "no steps yet")
        )
        self.stop_button.disabled = not running
        self.stop_button.tooltip = STOP_CLOUD_TOOLTIP if running and self.state.is_cloud else STOP_TOOLTIP
        self.export_button.disabled = self.actions.export is None
        if self.actions.export is None:
            self.export_button.tooltip = EXPORT_UNAVAILABLE
        self.promote_button.disabled = self.actions.promote is None or running
        self.promote_button.tooltip = (
            PROMOTE_UNCONFIGURED if self.actions.promote is None else (BUSY if running else PROMOTE_TOOLTIP)
        )
        self.promote_form.submit_button.disabled = running
        self.status_label.value = self._status_text(running)

    def _status_text(self, running: bool) -> str:
        state = self.state
        run = f"SageMaker run {short_run_id(state.run_id or '')}" if state.is_cloud else f"run {state.run_id}"
        if running:
            done = sum(1 for v in state.steps.values() if v.status in ("succeeded", "cached"))
            progress = f"{done}/{len(self.pipeline.steps)} steps done"
            return f"{run} running: {progress}" if state.is_cloud else f"running ({run}): {progress}"
        if state.run_status is None:
            return f"{len(self.pipeline.steps)} steps"
        took = f" in {state.run_duration:.1f}s" if state.run_duration is not None else ""
        return f"{run} {state.run_status}{took}"

    # -- actions ----------------------------------------------------------------------------------------------
    def notify(self, text: str, *, kind: str = "info", path: str | None = None) -> None:
        """Show a line above the graph (an action's result or error)."""
        notice: dict[str, Any] = {"text": text, "kind": kind}
        if path:
            notice["path"] = path
        with self._lock:
            self.graph.notice = notice

    def _call(self, what: str, action: Callable[..., object], *args: Any) -> object | None:
        """Run an action; its error shows as the notice (returns None), success clears an earlier error."""
        return self._attempt(what, action, *args)[1]

    def _attempt(self, what: str, action: Callable[..., object], *args: Any) -> tuple[bool, object | None]:
        try:
            result = action(*args)
        except PipelineError as error:
            self.notify(str(error), kind="error")
            return False, None
        except Exception as error:  # an action's bug: show it rather than lose it in the comm handler
            self.notify(f"{what} failed: {type(error).__name__}: {error}", kind="error")
            return False, None
        with self._lock:
            if self.graph.notice and self.graph.notice.get("kind") == "error":
                self.graph.notice = {}
        return True, result

    def _export(self) -> None:
        if self.actions.export is None:
            return
        path = self._call("export", self.actions.export)
        if isinstance(path, str | os.PathLike):
            shown = _display_path(os.fspath(path))
            self.notify("exported the SageMaker pipeline definition:", path=shown)

    def _promote(self) -> None:
        """Open the form, prefilled with the remembered settings (a failure to read them leaves it as it was)."""
        if self.actions.promote is None:
            return
        settings: object = {}
        if self.actions.promote_settings is not None:
            settings = self._call("read the promotion settings", self.actions.promote_settings) or {}
        self.promote_form.show_form(settings if isinstance(settings, Mapping) else {})

    def _submit_promote(self, values: Mapping[str, str]) -> None:
        """The form's checked values: start the promotion; the form closes once it has started."""
        if self.actions.promote is None:
            return
        ok, message = self._attempt("promote", self.actions.promote, dict(values))
        if not ok:
            return  # the error is the notice; the form stays open to fix the values
        self.promote_form.close_form()
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
