"""Run events for cloud runs (location, console links, notes) round-trip through JSON and read well as progress."""

from __future__ import annotations

import io
import json

import pytest

from jupyter_pipelines.engine.events import (
    Event,
    RunFinished,
    RunNote,
    RunStarted,
    StepStarted,
    event_from_json,
    event_to_dict,
    event_to_json,
)
from jupyter_pipelines.progress import LinePrinter, step_line

ARN = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/demo/execution/abc123"
URL = "https://us-east-1.console.aws.amazon.com/sagemaker/home?region=us-east-1#/pipelines/demo/executions/abc123"


@pytest.mark.parametrize(
    "event",
    [
        RunStarted("r1", "demo", ("a", "b"), {"n": 3}),
        RunStarted(ARN, "demo", ("a", "b"), {"n": "3"}, location="sagemaker", url=URL),
        StepStarted("r1", "a", 2, "process"),
        StepStarted(ARN, "a", 1, "sagemaker", url=URL + "/step"),
        RunNote(ARN, "step statuses are unavailable: <b>not markup</b>"),
    ],
)
def test_events_round_trip(event: Event) -> None:
    line = event_to_json(event)
    back = event_from_json(line)
    assert type(back) is type(event)
    assert event_to_dict(back) == event_to_dict(event)
    assert back == event


def test_old_logs_without_the_new_fields_still_load() -> None:
    """A run log written before cloud runs existed: no location, no url."""
    started = event_from_json(json.dumps({"type": "run_started", "run_id": "r", "pipeline": "p", "steps": ["a"]}))
    assert isinstance(started, RunStarted)
    assert (started.location, started.url, started.steps) == ("local", None, ("a",))
    step = event_from_json(json.dumps({"type": "step_started", "run_id": "r", "step": "a"}))
    assert isinstance(step, StepStarted) and step.url is None


def test_progress_marks_a_cloud_run_and_prints_notes_but_not_local_starts() -> None:
    assert step_line(RunStarted("r1", "demo", ("a",))) is None  # local runs print as before
    assert step_line(RunStarted(ARN, "demo", ("a",), location="sagemaker", url=URL)) == (
        f"☁ demo: sagemaker run {ARN}: {URL}"
    )
    assert step_line(StepStarted(ARN, "a", 1, "sagemaker", url=URL)) == f"… a: running {URL}"
    assert step_line(StepStarted("r1", "a")) == "… a: running"
    out = io.StringIO()
    printer = LinePrinter(out)
    for event in (
        RunStarted(ARN, "demo", ("a",), location="sagemaker", url=URL),
        RunNote(ARN, "step statuses are unavailable: the endpoint does not implement it"),
        RunFinished(ARN, "succeeded", 1.0),
    ):
        printer(event)
    assert out.getvalue().splitlines() == [
        f"☁ demo: sagemaker run {ARN}: {URL}",
        "note: step statuses are unavailable: the endpoint does not implement it",
    ]


def test_live_table_prints_cloud_run_lines_as_plain_text(capsys: pytest.CaptureFixture[str]) -> None:
    from jupyter_pipelines.progress import LiveTable

    with LiveTable() as table:
        table(RunStarted(ARN, "demo", ("a",), location="sagemaker", url=URL))
        table(RunNote(ARN, "[red]not markup[/] :x: stays"))
    err = capsys.readouterr().err
    assert f"☁ demo: sagemaker run {ARN}: {URL}" in err  # ':x:' of the ARN is no emoji
    assert "note: [red]not markup[/] :x: stays" in err
