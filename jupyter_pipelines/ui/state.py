"""What the widget knows about runs, folded from engine events: a pure reducer with no widgets and no threads.

:class:`RunState` takes events in the order the engine publishes them and keeps, per step, the status the widget
shows, the duration, when it started, its output (capped), its traceback and where a cached result came from.
Events of an older run that arrive after a new run started are ignored.

A cloud run (``RunStarted.location == "sagemaker"``, followed from SageMaker by the follow loop) folds the same way;
the state also keeps where the run happens, the console pages of the execution and of each step (``https://``
only, see :mod:`~jupyter_pipelines.ui.links`) and the run's notes (``RunNote``: plain text for the status line).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ..engine.events import (
    Event,
    RunFinished,
    RunNote,
    RunStarted,
    StepFailed,
    StepFinished,
    StepLog,
    StepSkipped,
    StepStarted,
)
from .links import safe_url, short_run_id

WidgetStatus = Literal[
    "pending", "running", "cached", "succeeded", "failed", "skipped", "condition_false", "cancelled"
]
WIDGET_STATUSES: tuple[WidgetStatus, ...] = (
    "pending",
    "running",
    "cached",
    "succeeded",
    "failed",
    "skipped",
    "condition_false",
    "cancelled",
)
LOG_CAP = 100_000  # characters of output kept per step (the tail); the full log stays in the run store
NOTE_CAP = 500  # characters of one run note shown
NOTES_KEPT = 5  # the latest distinct notes of a run


def is_condition_skip(reason: str) -> bool:
    """Whether a skip's reason says a ``--when`` condition was false: the fallback for events without the
    ``condition_false`` status (run logs written before it existed)."""
    text = reason.lower()
    return text.startswith("condition") or "condition is false" in text or "condition false" in text


@dataclass
class StepView:
    status: WidgetStatus = "pending"
    duration: float | None = None
    started: float | None = None
    output: str = ""
    truncated: bool = False
    error: str = ""
    note: str = ""
    url: str | None = None  # a cloud step's console page (https only)

    def append(self, text: str) -> None:
        self.output += text
        if len(self.output) > LOG_CAP:
            cut = len(self.output) - LOG_CAP
            newline = self.output.find("\n", cut, cut + 200)
            self.output = self.output[(newline + 1 if newline >= 0 else cut) :]
            self.truncated = True

    def reset(self) -> None:
        self.status = "pending"
        self.duration = self.started = None
        self.output = self.error = self.note = ""
        self.truncated = False
        self.url = None


@dataclass
class RunState:
    steps: dict[str, StepView] = field(default_factory=dict)
    run_id: str | None = None
    running: bool = False
    run_status: str | None = None  # the last finished run's status
    run_duration: float | None = None
    location: str = "local"  # where the current run happens: "local" or "sagemaker"
    run_url: str | None = None  # the cloud execution's console page (https only)
    notes: list[str] = field(default_factory=list)  # the current run's notes, oldest first
    parameters: dict[str, Any] = field(default_factory=dict)  # the values the current run was started with

    @property
    def is_cloud(self) -> bool:
        return self.location != "local"

    def step(self, name: str) -> StepView:
        return self.steps.setdefault(name, StepView())

    def status(self, name: str) -> WidgetStatus:
        view = self.steps.get(name)
        return view.status if view else "pending"

    def apply(self, event: Event) -> bool:
        """Fold one event in; returns whether anything changed."""
        if isinstance(event, RunStarted):
            self.run_id = event.run_id
            self.running = True
            self.run_status = self.run_duration = None
            self.location = event.location or "local"
            self.run_url = safe_url(event.url)
            self.notes = []
            self.parameters = dict(event.parameters or {})
            for name in event.steps:
                self.step(name).reset()
            return True
        if event.run_id != self.run_id:
            return False  # a straggler from an earlier run
        if isinstance(event, RunFinished):
            self._finish(event)
        elif isinstance(event, RunNote):
            return self._note(event.text)
        elif isinstance(event, StepStarted):
            view = self.step(event.step)
            if event.attempt > 1:
                view.append(f"\n--- attempt {event.attempt} ---\n")
            view.status, view.started, view.duration, view.error = "running", event.time, None, ""
            view.url = safe_url(event.url) or view.url
        elif isinstance(event, StepLog):
            self.step(event.step).append(event.text)
        elif isinstance(event, StepFinished):
            view = self.step(event.step)
            view.status, view.duration, view.started = event.status, event.duration, None
            if event.status == "cached":
                view.note = f"cached from run {event.cached_from}" if event.cached_from else "cached"
        elif isinstance(event, StepFailed):
            view = self.step(event.step)
            view.error = event.error
            if event.will_retry:
                view.append(f"\n--- attempt {event.attempt} failed, retrying ---\n")
            else:
                view.status, view.duration, view.started = "failed", event.duration, None
        elif isinstance(event, StepSkipped):
            view = self.step(event.step)
            if event.status in ("cancelled", "condition_false"):
                view.status = event.status
            else:  # older logs said "condition is false" in a "skipped" event's reason
                view.status = "condition_false" if is_condition_skip(event.reason) else "skipped"
            view.note, view.started = event.reason, None
        return True

    def _note(self, text: str) -> bool:
        text = " ".join(str(text).split())[:NOTE_CAP]
        if not text or text in self.notes:
            return False
        self.notes = [*self.notes, text][-NOTES_KEPT:]
        return True

    def _finish(self, event: RunFinished) -> None:
        self.running = False
        self.run_status, self.run_duration = event.status, event.duration
        if event.status == "cancelled":
            for view in self.steps.values():
                if view.status == "running":
                    view.status, view.started, view.note = "cancelled", None, "stopped"

    def log_for(self, name: str) -> dict[str, Any] | None:
        """What the log pane shows for step ``name`` (None when no step is selected)."""
        if not name:
            return None
        view = self.steps.get(name, StepView())
        return {
            "step": name,
            "status": view.status,
            "note": view.note,
            "text": view.output,
            "error": view.error,
            "truncated": view.truncated,
            "url": view.url or "",
        }

    def run_view(self) -> dict[str, Any]:
        """What the run bar shows (``{}`` before the first run): where the run happens, its console page, notes."""
        if self.run_id is None:
            return {}
        view: dict[str, Any] = {
            "id": short_run_id(self.run_id),
            "location": self.location,
            "status": "running" if self.running else (self.run_status or ""),
            "notes": list(self.notes),
        }
        if self.run_url:
            view["url"] = self.run_url
        return view
