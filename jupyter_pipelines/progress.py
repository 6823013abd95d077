"""Turning run events into what a person reads: one line per step state, and a summary.

Shared by both skins (the magics print into the cell, the CLI into the terminal), so a run reads the same
everywhere. On a terminal the CLI redraws a live table with rich; elsewhere (CI logs, pipes) it prints lines.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from .engine.events import (
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

if TYPE_CHECKING:
    from rich.table import Table

    from .engine import RunResult
    from .engine.store import CacheEntry

SYMBOLS = {
    "succeeded": "✓",
    "cached": "✓",
    "failed": "✗",
    "skipped": "-",
    "condition_false": "⊘",
    "cancelled": "■",
    "running": "…",
}


def run_line(event: RunStarted) -> str | None:
    """The line that marks a run followed somewhere else (a cloud run), with its console page; None for local."""
    if event.location == "local":
        return None
    page = f": {event.url}" if event.url else ""
    return f"☁ {event.pipeline}: {event.location} run {event.run_id}{page}"


def step_line(event: Event) -> str | None:
    """The status line for a step event, a cloud run's start or a run note (None for other events)."""
    if isinstance(event, RunStarted):
        return run_line(event)
    if isinstance(event, RunNote):
        return f"{'error' if event.level == 'error' else 'note'}: {event.text}"
    if isinstance(event, StepStarted):
        attempt = f" (attempt {event.attempt})" if event.attempt > 1 else ""
        page = f" {event.url}" if event.url else ""
        return f"… {event.step}: running{attempt}{page}"
    if isinstance(event, StepFinished):
        source = f" (cached from run {event.cached_from})" if event.cached_from else ""
        return f"✓ {event.step}: {event.status} in {event.duration:.2f}s{source}"
    if isinstance(event, StepFailed):
        if event.will_retry:
            return f"↻ {event.step}: failed (attempt {event.attempt}), retrying"
        return f"✗ {event.step}: failed after {event.duration:.2f}s"
    if isinstance(event, StepSkipped):
        return f"{SYMBOLS.get(event.status, '-')} {event.step}: {event.status} ({event.reason})"
    if isinstance(event, RunFinished):
        return f"run {event.run_id}: {event.status} in {event.duration:.2f}s"
    return None


def summary_table(result: RunResult) -> str:
    """A fixed-width table of every step of a finished run."""
    width = max((len(name) for name in result.steps), default=4)
    status_width = max((len(step.status) for step in result.steps.values()), default=9)
    lines = [f"run {result.run_id}: {result.status}"]
    for name, step in result.steps.items():
        extra = f"  cached from run {step.cached_from}" if step.cached_from else ""
        symbol = SYMBOLS.get(step.status, " ")
        lines.append(
            f"  {symbol} {name:<{width}}  {step.status:<{max(9, status_width)}} {step.duration:6.2f}s{extra}"
        )
    return "\n".join(lines)


def cache_table(entries: Sequence[CacheEntry]) -> str:
    """The cache's entries, one line each (step, run it came from, age and expiry, size), and the total."""
    if not entries:
        return "the cache is empty."
    total = sum(entry.size for entry in entries)
    lines = [entry.text() for entry in entries]
    lines.append(f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'}, {total / 1e6:.1f} MB")
    return "\n".join(lines)


class LinePrinter:
    """Prints step state lines as events arrive; logs only when asked (``--verbose`` / a step cell)."""

    def __init__(self, out: TextIO | None = None, *, logs: bool = False) -> None:
        self.out = out or sys.stderr
        self.logs = logs

    def __call__(self, event: Event) -> None:
        if isinstance(event, StepLog):
            if self.logs:
                self.out.write("".join(f"[{event.step}] {line}\n" for line in event.text.splitlines()))
                self.out.flush()
            return
        line = step_line(event)
        if line is not None and not isinstance(event, RunFinished):
            print(line, file=self.out, flush=True)


class LiveTable:
    """A live table redrawn by rich on a terminal: a line per step with status and time."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.live import Live

        self.console = Console(stderr=True)
        self.live = Live(console=self.console, refresh_per_second=10, transient=False)
        self.states: dict[str, tuple[str, float | None, float | None, str]] = {}

    def __enter__(self) -> LiveTable:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.update(self._render())
        self.live.__exit__(None, None, None)

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunNote | RunStarted):
            line = step_line(event)
            if line is not None:  # above the table, as plain text (names and notes are never markup)
                self.console.print(line, markup=False, highlight=False, emoji=False, soft_wrap=True)
        if isinstance(event, RunStarted):
            for step in event.steps:
                self.states[step] = ("pending", None, None, "")
        elif isinstance(event, StepStarted):
            self.states[event.step] = ("running", time.monotonic(), None, "")
        elif isinstance(event, StepFinished):
            note = f"cached from run {event.cached_from}" if event.cached_from else ""
            self.states[event.step] = (event.status, None, event.duration, note)
        elif isinstance(event, StepFailed):
            status = "retrying" if event.will_retry else "failed"
            self.states[event.step] = (status, None, event.duration, "")
        elif isinstance(event, StepSkipped):
            self.states[event.step] = (event.status, None, None, event.reason)
        else:
            return
        self.live.update(self._render())

    def _render(self) -> Table:
        from rich.markup import escape
        from rich.table import Table

        colours = {"succeeded": "green", "cached": "cyan", "failed": "red", "running": "yellow"}
        table = Table(box=None, show_header=False, pad_edge=False)
        for name, (status, started, duration, note) in self.states.items():
            seconds = duration if duration is not None else (time.monotonic() - started if started else None)
            shown = f"{seconds:6.2f}s" if seconds is not None else ""
            colour = colours.get(status, "dim")
            symbol = SYMBOLS.get(status, "·")
            table.add_row(
                f"[{colour}]{symbol}[/]", escape(name), f"[{colour}]{status}[/]", shown, f"[dim]{escape(note)}[/]"
            )
        return table
