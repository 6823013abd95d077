"""Typed run events: the one stream that the run log, CLI progress, the magics and the widget all consume.

The engine publishes each event to in-process subscribers and appends it to the run's ``events.jsonl``. An event
is plain data; ``to_json`` / ``event_from_json`` round-trip it, so a finished run can be replayed from its log.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

StepStatus = Literal["pending", "running", "succeeded", "cached", "failed", "skipped", "condition_false", "cancelled"]
RunStatus = Literal["running", "succeeded", "failed", "cancelled"]
Stream = Literal["stdout", "stderr"]


def _now() -> float:
    return time.time()


@dataclass(frozen=True)
class RunStarted:
    """A run began. ``location`` says where it runs ("local", or "sagemaker" for a cloud run followed from here:
    its ``run_id`` is then the execution's ARN and ``url`` its console page)."""

    run_id: str
    pipeline: str
    steps: tuple[str, ...]  # the steps this run will consider, in order
    parameters: dict[str, Any] = field(default_factory=dict)
    location: str = "local"
    url: str | None = None
    time: float = field(default_factory=_now)
    type: str = "run_started"


@dataclass(frozen=True)
class StepStarted:
    run_id: str
    step: str
    attempt: int = 1
    executor: str = "process"
    url: str | None = None  # a cloud step's console page (its job's page when it runs a job)
    time: float = field(default_factory=_now)
    type: str = "step_started"


@dataclass(frozen=True)
class StepLog:
    run_id: str
    step: str
    stream: Stream
    text: str
    time: float = field(default_factory=_now)
    type: str = "step_log"


@dataclass(frozen=True)
class StepFinished:
    """A step succeeded, or its result came from the cache (``status == "cached"``, ``cached_from`` = run id)."""

    run_id: str
    step: str
    status: Literal["succeeded", "cached"]
    duration: float
    cached_from: str | None = None
    outputs: tuple[str, ...] = ()
    time: float = field(default_factory=_now)
    type: str = "step_finished"


@dataclass(frozen=True)
class StepFailed:
    """A step raised, exited non-zero, timed out or could not save an output. ``error`` is the user-facing text."""

    run_id: str
    step: str
    error: str
    duration: float
    attempt: int = 1
    will_retry: bool = False
    time: float = field(default_factory=_now)
    type: str = "step_failed"


@dataclass(frozen=True)
class StepSkipped:
    """A step did not run: an upstream step failed ("skipped"), the run was cancelled ("cancelled"), or its
    ``--when`` condition, or that of a step upstream, is false ("condition_false"; the reason says
    ``condition is false: <expression> (<left> vs <right>)``)."""

    run_id: str
    step: str
    reason: str
    status: Literal["skipped", "condition_false", "cancelled"] = "skipped"
    time: float = field(default_factory=_now)
    type: str = "step_skipped"


@dataclass(frozen=True)
class RunFinished:
    run_id: str
    status: RunStatus
    duration: float
    time: float = field(default_factory=_now)
    type: str = "run_finished"


@dataclass(frozen=True)
class RunNote:
    """Something a person following the run should know that is no step's state, e.g. that a cloud endpoint
    cannot report step statuses (so only the run's overall status will arrive). Plain text, never markup."""

    run_id: str
    text: str
    level: Literal["info", "error"] = "info"  # "error": something failed (the widget shows it as an error)
    time: float = field(default_factory=_now)
    type: str = "run_note"


Event = RunStarted | StepStarted | StepLog | StepFinished | StepFailed | StepSkipped | RunFinished | RunNote
Subscriber = Callable[[Event], None]

_EVENT_TYPES: dict[str, type] = {
    cls.type: cls  # type: ignore[attr-defined]
    for cls in (RunStarted, StepStarted, StepLog, StepFinished, StepFailed, StepSkipped, RunFinished, RunNote)
}


_FIELDS: dict[type, tuple[str, ...]] = {}


def event_to_dict(event: Event) -> dict[str, Any]:
    """The event's fields, shallowly (events hold only JSON-ready values; ``asdict``'s deep copy costs 40 us)."""
    cls = type(event)
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return {name: getattr(event, name) for name in names}


def event_to_json(event: Event) -> str:
    return json.dumps(event_to_dict(event), sort_keys=True, default=str)


def event_from_dict(data: dict[str, Any]) -> Event:
    cls = _EVENT_TYPES[data["type"]]
    fields = {f.name for f in dataclasses.fields(cls)}
    values = {k: v for k, v in data.items() if k in fields}
    for key in ("steps", "outputs"):
        if isinstance(values.get(key), list):
            values[key] = tuple(values[key])
    return cls(**values)  # type: ignore[no-any-return]


def event_from_json(line: str) -> Event:
    return event_from_dict(json.loads(line))
