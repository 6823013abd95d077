"""A SageMaker run followed in the widget: the same graph coloured by cloud events, the run marked as a cloud run
with its console link, each step's console page, run notes, Stop enabled; URLs from the kernel are https only."""

from __future__ import annotations

from typing import Any

import pytest

from jupyter_pipelines.engine.events import (
    RunFinished,
    RunNote,
    RunStarted,
    StepFailed,
    StepFinished,
    StepSkipped,
    StepStarted,
)
from jupyter_pipelines.ui import PipelineWidget
from jupyter_pipelines.ui.links import safe_url, short_run_id
from jupyter_pipelines.ui.state import NOTES_KEPT, RunState
from jupyter_pipelines.ui.widget import STOP_CLOUD_TOOLTIP, STOP_TOOLTIP

from .test_ui_widget import Calls, pipeline

ARN = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/demo/execution/abc123"
CONSOLE = "https://us-east-1.console.aws.amazon.com/sagemaker/home?region=us-east-1#/pipelines/demo/executions/abc"
JOB = "https://us-east-1.console.aws.amazon.com/sagemaker/home?region=us-east-1#/processing-jobs/job-load"
NOTE = "step statuses are unavailable from this endpoint: only the run's overall status will show"
STEPS = ("load", "clean", "train", "report")


def cloud_events(url: str | None = CONSOLE) -> list[Any]:
    return [
        RunStarted(ARN, "demo", STEPS, location="sagemaker", url=url),
        StepStarted(ARN, "load", executor="sagemaker", url=JOB),
        StepFinished(ARN, "load", "succeeded", 61.0),
        StepStarted(ARN, "clean", executor="sagemaker", url=JOB.replace("load", "clean")),
        StepFailed(ARN, "clean", "AlgorithmError: see the job's logs", 12.0),
        StepSkipped(ARN, "train", "upstream step 'clean' failed"),
        RunNote(ARN, NOTE),
        RunFinished(ARN, "failed", 90.0),
    ]


def test_cloud_events_fold_into_statuses_url_and_note() -> None:
    state = RunState()
    events = cloud_events()
    assert all(state.apply(e) for e in events[:2])
    assert state.is_cloud and state.running and state.run_url == CONSOLE
    assert state.status("load") == "running" and state.steps["load"].url == JOB
    for event in events[2:]:
        state.apply(event)
    assert [state.status(s) for s in STEPS] == ["succeeded", "failed", "skipped", "pending"]
    assert state.steps["clean"].url == JOB.replace("load", "clean")
    assert state.run_view() == {
        "id": "abc123",
        "location": "sagemaker",
        "status": "failed",
        "notes": [NOTE],
        "url": CONSOLE,
    }
    assert state.log_for("load")["url"] == JOB  # type: ignore[index]
    assert state.log_for("report")["url"] == ""  # type: ignore[index]


def test_a_local_run_after_a_cloud_run_is_local_again() -> None:
    state = RunState()
    for event in cloud_events():
        state.apply(event)
    state.apply(RunStarted("r2", "demo", STEPS))
    assert not state.is_cloud and state.run_url is None and state.notes == []
    assert all(view.url is None for view in state.steps.values())
    assert state.run_view() == {"id": "r2", "location": "local", "status": "running", "notes": []}
    assert not state.apply(RunNote(ARN, "a straggler of the cloud run"))  # an older run's note is ignored


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "http://console.aws.amazon.com/",
        "https://",
        "https://x.example/a b",
        "https://x.example/\nSet-Cookie",
        "//evil.example/",
        None,
        42,
    ],
)
def test_unsafe_urls_are_dropped(url: Any) -> None:
    assert safe_url(url) is None
    state = RunState()
    state.apply(RunStarted(ARN, "demo", STEPS, location="sagemaker", url=url))
    state.apply(StepStarted(ARN, "load", executor="sagemaker", url=url))
    assert state.run_url is None and state.steps["load"].url is None
    assert "url" not in state.run_view() and state.log_for("load")["url"] == ""  # type: ignore[index]


def test_notes_are_plain_capped_and_deduplicated() -> None:
    state = RunState()
    state.apply(RunStarted(ARN, "demo", STEPS, location="sagemaker"))
    assert state.apply(RunNote(ARN, "  two\nlines  "))
    assert not state.apply(RunNote(ARN, "two lines"))  # the same note again changes nothing
    assert not state.apply(RunNote(ARN, "   "))
    for i in range(NOTES_KEPT + 2):
        state.apply(RunNote(ARN, f"note {i}"))
    assert state.notes[-1] == f"note {NOTES_KEPT + 1}" and len(state.notes) == NOTES_KEPT
    state.apply(RunNote(ARN, "x" * 5000))
    assert len(state.notes[-1]) == 500


def test_short_run_id() -> None:
    assert short_run_id(ARN) == "abc123"
    assert short_run_id("20260101-120000-ab12") == "20260101-120000-ab12"


def test_widget_shows_a_cloud_run_and_keeps_stop_enabled() -> None:
    calls = Calls()
    widget = PipelineWidget(pipeline(), calls.actions(promote=lambda values: "started"))
    events = cloud_events()
    for event in events[:2]:
        widget.handle_event(event)
    widget.flush()
    graph = widget.graph
    assert graph.running and graph.statuses["s_load"] == "running"
    assert graph.run == {"id": "abc123", "location": "sagemaker", "status": "running", "notes": [], "url": CONSOLE}
    assert graph.links == {"s_load": JOB}
    assert graph.values["s_load"] == "cell · SageMaker processing"  # the job it is there, not the local executor
    assert not widget.stop_button.disabled and widget.stop_button.tooltip == STOP_CLOUD_TOOLTIP
    assert widget.run_button.disabled and widget.promote_button.disabled  # one run at a time
    assert widget.status_label.value == "SageMaker run abc123 running: 0/4 steps done"
    widget.stop_button.click()
    assert calls.calls == [("stop", None)]  # the session routes it to stop_pipeline_execution
    for event in events[2:]:
        widget.handle_event(event)
    widget.flush()
    assert graph.statuses == {"s_load": "succeeded", "s_clean": "failed", "s_train": "skipped", "s_report": "pending"}
    assert graph.run["notes"] == [NOTE] and graph.run["status"] == "failed"
    assert set(graph.links) == {"s_load", "s_clean"}
    assert widget.stop_button.disabled and widget.stop_button.tooltip == STOP_TOOLTIP
    assert not widget.promote_button.disabled
    assert widget.status_label.value == "SageMaker run abc123 failed in 90.0s"


def test_a_cloud_run_without_step_statuses_still_finishes() -> None:
    """What moto's endpoint gives: the execution is Succeeded at once and no step status arrives, only a note."""
    widget = PipelineWidget(pipeline(), Calls().actions())
    for event in (
        RunStarted(ARN, "demo", STEPS, location="sagemaker", url=CONSOLE),
        RunNote(ARN, NOTE),
        RunFinished(ARN, "succeeded", 0.5),
    ):
        widget.handle_event(event)
    widget.flush()
    assert widget.graph.run == {
        "id": "abc123",
        "location": "sagemaker",
        "status": "succeeded",
        "notes": [NOTE],
        "url": CONSOLE,
    }
    assert not widget.graph.running and widget.stop_button.disabled
