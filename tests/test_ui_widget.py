"""The widget's Python side: state after events, synced traits, buttons, node-menu messages, throttling."""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import Any

import pytest

from jupyter_pipelines.engine.events import (
    RunFinished,
    RunStarted,
    StepFailed,
    StepFinished,
    StepLog,
    StepSkipped,
    StepStarted,
)
from jupyter_pipelines.errors import RunError
from jupyter_pipelines.model import Parameter, Pipeline, Step, StepInput
from jupyter_pipelines.ui import PipelineWidget, WidgetActions
from jupyter_pipelines.ui.state import LOG_CAP
from jupyter_pipelines.ui.widget import EXPORT_UNAVAILABLE, PROMOTE_UNCONFIGURED

XSS = "<img src=x onerror=alert(1)>"


def pipeline(n: int = 4) -> Pipeline:
    steps = [Step("load", "df = 1", binds=("df",), parameters=("rows",))]
    names = ["load", "clean", "train", "report"][:n]
    for previous, name in zip(names, names[1:]):
        steps.append(Step(name, f"{name} = {previous}", inputs=(StepInput(previous, previous),), binds=(name,)))
    return Pipeline("demo", steps=tuple(steps), parameters=(Parameter("rows", "int", 10),))


class Calls:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def actions(self, **overrides: Any) -> WidgetActions:
        base: dict[str, Any] = {
            "run": lambda: self.calls.append(("run", None)),
            "run_step": lambda name: self.calls.append(("run_step", name)),
            "run_from": lambda name: self.calls.append(("run_from", name)),
            "stop": lambda: self.calls.append(("stop", None)),
        }
        base.update(overrides)
        return WidgetActions(**base)


@pytest.fixture
def calls() -> Calls:
    return Calls()


def run_events(run_id: str = "r1") -> list[Any]:
    return [
        RunStarted(run_id, "demo", ("load", "clean", "train", "report")),
        StepFinished(run_id, "load", "cached", 0.0, cached_from="r0"),
        StepStarted(run_id, "clean"),
        StepLog(run_id, "clean", "stdout", "cleaning\n"),
        StepLog(run_id, "clean", "stdout", XSS + "\n"),
        StepFinished(run_id, "clean", "succeeded", 1.25),
        StepStarted(run_id, "train"),
        StepFailed(run_id, "train", "Traceback ...\nZeroDivisionError: division by zero", 0.5),
        StepSkipped(run_id, "report", "upstream step 'train' failed"),
        RunFinished(run_id, "failed", 2.0),
    ]


def test_initial_graph_and_buttons(calls: Calls) -> None:
    widget = PipelineWidget(pipeline(), calls.actions())
    graph = widget.graph
    assert [n["id"] for n in graph.nodes] == ["p_rows", "s_load", "s_clean", "s_train", "s_report"]
    assert {"tail": "s_load", "head": "s_clean", "names": ["load"], "reason": "reads"} in graph.edges
    assert graph.dot.startswith("digraph")
    assert graph.statuses == dict.fromkeys(["s_load", "s_clean", "s_train", "s_report"], "pending")
    assert not widget.run_button.disabled and widget.stop_button.disabled
    assert widget.export_button.disabled and widget.export_button.tooltip == EXPORT_UNAVAILABLE
    assert widget.promote_button.disabled and widget.promote_button.tooltip == PROMOTE_UNCONFIGURED
    assert graph.log == {} and graph.notice == {}
    assert widget.children[3] is graph and widget.children[2] is widget.parameter_inputs
    assert widget.children[1] is widget.promote_form and not widget.promote_form.is_open
    assert graph.run == {} and graph.links == {}


def test_state_after_a_run(calls: Calls) -> None:
    widget = PipelineWidget(pipeline(), calls.actions())
    events = run_events()
    widget.handle_event(events[0])
    widget.handle_event(events[1])
    widget.handle_event(events[2])
    widget.flush()
    assert widget.graph.running and widget.run_button.disabled and not widget.stop_button.disabled
    assert widget.graph.statuses["s_clean"] == "running" and "s_clean" in widget.graph.started
    assert widget.graph.statuses["s_load"] == "cached"
    assert "running" in widget.status_label.value
    for event in events[3:]:
        widget.handle_event(event)
    widget.flush()
    graph = widget.graph
    assert graph.statuses == {"s_load": "cached", "s_clean": "succeeded", "s_train": "failed", "s_report": "skipped"}
    assert graph.durations == {"s_load": 0.0, "s_clean": 1.25, "s_train": 0.5}
    assert graph.started == {}
    assert not graph.running and not widget.run_button.disabled and widget.stop_button.disabled
    assert widget.status_label.value == "run r1 failed in 2.0s"


def test_parameter_nodes_show_the_values_a_run_was_started_with(calls: Calls) -> None:
    """The graph's parameter node says ``rows: int = 25`` while a run started with rows=25 is shown; a run with the
    default leaves the declaration (the frontend keeps it when a node has no value)."""
    widget = PipelineWidget(pipeline(), calls.actions())
    widget.handle_event(RunStarted("r1", "demo", ("load",), parameters={"rows": 25}))
    widget.flush()
    assert widget.graph.values == {"p_rows": "rows: int = 25"}
    widget.handle_event(RunStarted("r2", "demo", ("load",), parameters={"rows": 10}))
    widget.flush()
    assert widget.graph.values == {}
    widget.handle_event(RunStarted("r3", "demo", ("load",), parameters={"rows": "<b>x</b>"}))  # text, as ever
    widget.flush()
    assert widget.graph.values == {"p_rows": "rows: int = '<b>x</b>'"}


def test_log_pane_follows_selection(calls: Calls) -> None:
    widget = PipelineWidget(pipeline(), calls.actions())
    for event in run_events():
        widget.handle_event(event)
    widget.graph.selected = "clean"
    widget.flush()
    assert widget.graph.log == {
        "step": "clean",
        "status": "succeeded",
        "note": "",
        "text": "cleaning\n" + XSS + "\n",  # text, not markup: the browser puts it in with textContent
        "error": "",
        "truncated": False,
        "url": "",
    }
    widget.graph.selected = "train"
    widget.flush()
    assert widget.graph.log["error"].endswith("ZeroDivisionError: division by zero")
    widget.graph.selected = "load"
    widget.flush()
    assert widget.graph.log["note"] == "cached from run r0"
    widget.graph.selected = "report"
    widget.flush()
    assert widget.graph.log["note"] == "upstream step 'train' failed"


def test_selection_change_reaches_the_log_through_the_throttle(calls: Calls) -> None:
    widget = PipelineWidget(pipeline(), calls.actions())
    for event in run_events():
        widget.handle_event(event)
    widget.graph.selected = "clean"  # as the browser does: the observer asks the throttle for a flush
    deadline = time.monotonic() + 2
    while widget.graph.log.get("step") != "clean" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert widget.graph.log["step"] == "clean"


def test_new_run_resets_its_steps_and_ignores_stragglers(calls: Calls) -> None:
    widget = PipelineWidget(pipeline(), calls.actions())
    for event in run_events("r1"):
        widget.handle_event(event)
    widget.handle_event(RunStarted("r2", "demo", ("load", "clean")))  # a selective run: only these steps
    widget.handle_event(StepLog("r1", "clean", "stdout", "late line from r1\n"))
    widget.flush()
    assert widget.graph.statuses == {
        "s_load": "pending",
        "s_clean": "pending",
        "s_train": "failed",  # not part of r2: keeps its last status
        "s_report": "skipped",
    }
    assert widget.state.steps["clean"].output == ""


def test_stop_marks_running_steps_cancelled(calls: Calls) -> None:
    widget = PipelineWidget(pipeline(), calls.actions())
    widget.handle_event(RunStarted("r1", "demo", ("load", "clean")))
    widget.handle_event(StepStarted("r1", "load"))
    widget.handle_event(StepSkipped("r1", "clean", "run cancelled", status="cancelled"))
    widget.handle_event(RunFinished("r1", "cancelled", 1.0))
    widget.flush()
    assert widget.graph.statuses["s_load"] == "cancelled"
    assert widget.graph.statuses["s_clean"] == "cancelled"
    assert "cancelled" in widget.status_label.value


def test_condition_false_and_retries(calls: Calls) -> None:
    widget = PipelineWidget(pipeline(), calls.actions())
    widget.handle_event(RunStarted("r1", "demo", ("load", "clean")))
    widget.handle_event(StepStarted("r1", "load"))
    widget.handle_event(StepFailed("r1", "load", "boom", 0.1, attempt=1, will_retry=True))
    widget.handle_event(StepStarted("r1", "load", attempt=2))
    widget.handle_event(StepFinished("r1", "load", "succeeded", 0.2))
    widget.handle_event(StepSkipped("r1", "clean", "condition false: rows > 100"))
    widget.flush()
    assert widget.graph.statuses["s_load"] == "succeeded"
    assert widget.graph.statuses["s_clean"] == "condition_false"
    assert "attempt 2" in widget.state.steps["load"].output


def test_log_cap_keeps_the_tail(calls: Calls) -> None:
    widget = PipelineWidget(pipeline(), calls.actions())
    widget.handle_event(RunStarted("r1", "demo", ("load",)))
    for i in range(3000):
        widget.handle_event(StepLog("r1", "load", "stdout", f"line {i:05d} " + "x" * 60 + "\n"))
    widget.graph.selected = "load"
    widget.flush()
    log = widget.graph.log
    assert log["truncated"] and len(log["text"]) <= LOG_CAP
    assert log["text"].startswith("line ") and log["text"].endswith("line 02999 " + "x" * 60 + "\n")


def test_events_from_another_thread_are_synced_quickly(calls: Calls) -> None:
    widget = PipelineWidget(pipeline(), calls.actions(), interval=0.05)
    sent: list[tuple[float, dict[str, Any]]] = []
    original = widget.graph.send_state

    def spy(key: Any = None) -> None:
        sent.append((time.monotonic(), widget.graph.get_state(key)))
        original(key)

    widget.graph.send_state = spy  # type: ignore[method-assign]
    started = time.monotonic()

    def engine() -> None:
        widget.handle_event(RunStarted("r1", "demo", ("load",)))
        widget.handle_event(StepStarted("r1", "load"))
        for i in range(500):
            widget.handle_event(StepLog("r1", "load", "stdout", f"{i}\n"))

    thread = threading.Thread(target=engine)
    thread.start()
    thread.join()
    deadline = time.monotonic() + 2
    while not any(state.get("statuses", {}).get("s_load") == "running" for _, state in sent):
        assert time.monotonic() < deadline
        time.sleep(0.005)
    first = next(t for t, state in sent if state.get("statuses", {}).get("s_load") == "running")
    assert first - started < 0.1
    time.sleep(0.2)
    assert len(sent) <= 12  # 500 log events, batched into a handful of syncs
    widget.close()


def test_buttons_call_the_actions(calls: Calls) -> None:
    widget = PipelineWidget(pipeline(), calls.actions())
    widget.run_button.click()
    widget.handle_event(RunStarted("r1", "demo", ("load",)))
    widget.flush()
    widget.stop_button.click()
    assert calls.calls == [("run", None), ("stop", None)]


def test_action_errors_show_as_notices(calls: Calls) -> None:
    def refuse() -> None:
        raise RunError("a pipeline run is already in progress.")

    widget = PipelineWidget(pipeline(), calls.actions(run=refuse))
    widget.run_button.click()
    assert widget.graph.notice == {"text": "a pipeline run is already in progress.", "kind": "error"}

    def broken() -> None:
        raise ValueError("oops")

    widget = PipelineWidget(pipeline(), calls.actions(run=broken))
    widget.run_button.click()
    assert widget.graph.notice["text"] == "run failed: ValueError: oops"


def test_export_and_promote(calls: Calls, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    written = tmp_path / "build" / "pipeline.json"
    promote = lambda values: f"started exec-1 in {values['region']}"  # noqa: E731
    widget = PipelineWidget(pipeline(), calls.actions(export=lambda: str(written), promote=promote))
    assert not widget.export_button.disabled and not widget.promote_button.disabled
    widget.export_button.click()
    assert widget.graph.notice == {
        "text": "exported the SageMaker pipeline definition:",
        "kind": "info",
        "path": "build/pipeline.json",
    }
    widget.promote_button.click()  # opens the form (tests/test_ui_promote.py has the rest)
    assert widget.promote_form.is_open
    for key, value in {
        "role_arn": "arn:aws:iam::123456789012:role/R",
        "bucket": "b-1",
        "region": "eu-west-1",
    }.items():
        widget.promote_form.inputs[key].value = value
    widget.promote_form.submit_button.click()
    assert widget.graph.notice == {"text": "started exec-1 in eu-west-1", "kind": "info"}
    assert not widget.promote_form.is_open


def test_node_menu_messages(calls: Calls) -> None:
    widget = PipelineWidget(pipeline(), calls.actions())
    widget._on_graph_message(widget.graph, {"type": "action", "action": "run_step", "step": "train"}, [])
    widget._on_graph_message(widget.graph, {"type": "action", "action": "run_from", "step": "clean"}, [])
    widget._on_graph_message(widget.graph, {"type": "action", "action": "run_step", "step": "nope"}, [])
    widget._on_graph_message(widget.graph, {"type": "other"}, [])
    assert calls.calls == [("run_step", "train"), ("run_from", "clean")]
    assert "no step named 'nope'" in widget.graph.notice["text"]


def test_set_pipeline_grows_the_graph_and_keeps_state(calls: Calls) -> None:
    widget = PipelineWidget(pipeline(2), calls.actions())
    widget.handle_event(RunStarted("r1", "demo", ("load", "clean")))
    widget.handle_event(StepFinished("r1", "load", "succeeded", 0.3))
    widget.handle_event(RunFinished("r1", "succeeded", 0.3))
    widget.flush()
    dot_before = widget.graph.dot
    widget.set_pipeline(pipeline(4))
    assert widget.graph.dot != dot_before
    assert [n["name"] for n in widget.graph.nodes if n["kind"] == "step"] == ["load", "clean", "train", "report"]
    assert widget.graph.statuses["s_load"] == "succeeded" and widget.graph.statuses["s_report"] == "pending"


def test_empty_pipeline_disables_run(calls: Calls) -> None:
    widget = PipelineWidget(Pipeline("empty"), calls.actions())
    assert widget.run_button.disabled and widget.run_button.tooltip == "no steps yet"
    assert widget.graph.nodes == []


def test_module_version_matches_the_labextension() -> None:
    import json
    from pathlib import Path

    from jupyter_pipelines.ui.graph import MODULE_NAME, MODULE_VERSION

    package = json.loads((Path(__file__).parents[1] / "labextension" / "package.json").read_text())
    assert (package["name"], package["version"]) == (MODULE_NAME, MODULE_VERSION)


def test_parameters_appear_as_typed_inputs_that_keep_user_values() -> None:
    params = (
        Parameter("rows", "int", 5),
        Parameter("rate", "float", 0.5),
        Parameter("label", "str", "<b>x</b>"),
        Parameter("flag", "bool", False),
    )
    base = pipeline()
    widget = PipelineWidget(dataclasses.replace(base, parameters=params), Calls().actions())
    inputs = widget.parameter_inputs.inputs
    assert [type(w).__name__ for w in inputs.values()] == ["IntText", "FloatText", "Text", "Checkbox"]
    assert inputs["label"].value == "<b>x</b>" and inputs["label"].description == "label"
    assert widget.parameter_values() == {}  # defaults: nothing to override
    inputs["rows"].value = 9
    inputs["flag"].value = True
    assert widget.parameter_values() == {"rows": 9, "flag": True}
    # The pipeline grows (a new parameter, rate changes type): rows keeps what the user typed.
    grown = (Parameter("rows", "int", 5), Parameter("rate", "str", "fast"), Parameter("seed", "int", 1))
    widget.set_pipeline(dataclasses.replace(base, parameters=grown))
    inputs = widget.parameter_inputs.inputs
    assert inputs["rows"].value == 9 and inputs["rate"].value == "fast" and inputs["seed"].value == 1
    assert widget.parameter_values() == {"rows": 9}
    widget.set_pipeline(dataclasses.replace(base, parameters=()))
    assert widget.parameter_inputs.layout.display == "none" and not widget.parameter_inputs.children
