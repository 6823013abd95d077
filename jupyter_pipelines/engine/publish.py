"""Publish run events: append each to the run's ``events.jsonl``, then hand it to every subscriber.

The log file is flushed when the engine is about to wait (and at the end), not after every event: a fully cached
run publishes hundreds of events in a few milliseconds.

A subscriber that raises is logged and ignored, so a broken progress bar or widget never breaks a run.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

from .events import Event, Subscriber, event_to_json

log = logging.getLogger(__name__)


class Publisher:
    def __init__(self, path: Path, subscribers: Iterable[Subscriber]) -> None:
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - open for the whole run
        self._subscribers = list(subscribers)

    def publish(self, event: Event) -> None:
        if not self._file.closed:
            self._file.write(event_to_json(event) + "\n")
        for subscriber in self._subscribers:
            try:
                subscriber(event)
            except Exception:
                log.exception("run event subscriber %r failed on %s", subscriber, event.type)

    def flush(self) -> None:
        """Put what was published on disk (the engine calls this before it waits; one write per batch)."""
        if not self._file.closed:
            self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
