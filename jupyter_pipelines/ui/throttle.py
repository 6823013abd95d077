"""Coalescing updates: many requests, at most one flush per interval, the first one at once.

Engine events arrive on the run's background thread, sometimes thousands of log lines a second. Each event calls
:meth:`Throttle.request`; a small worker thread runs ``flush`` immediately when it has been idle for ``interval``
and otherwise at the end of the interval, so a flood of output costs at most ``1 / interval`` syncs a second. An
*urgent* request (a status change) does not wait for the interval, so it reaches the browser within milliseconds
even during such a flood. The worker exits after a while without requests.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

IDLE_EXIT = 5.0  # seconds without requests before the worker thread exits (a later request starts a new one)
URGENT_GAP = 0.005  # an urgent request (a status change) waits at most this long after the previous flush


class Throttle:
    def __init__(self, flush: Callable[[], None], interval: float = 0.05) -> None:
        self._flush = flush
        self.interval = interval
        self._cond = threading.Condition()
        self._pending = False
        self._urgent = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self._last = 0.0

    def request(self, *, urgent: bool = False) -> None:
        """Ask for a flush soon (thread-safe, never blocks on the flush itself)."""
        with self._cond:
            if self._closed:
                return
            self._pending = True
            self._urgent = self._urgent or urgent
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="jupyter-pipelines-widget-sync", daemon=True)
                self._thread.start()
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                deadline = time.monotonic() + IDLE_EXIT
                while not self._pending and not self._closed:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        self._thread = None
                        return
                    self._cond.wait(remaining)
                if self._closed:
                    self._thread = None
                    return
            self._sleep_until_due()
            with self._cond:
                if self._closed:
                    self._thread = None
                    return
                self._pending = self._urgent = False
            self._last = time.monotonic()
            try:
                self._flush()
            except Exception:  # a broken comm must not kill the worker; the next request tries again
                log.exception("jupyter-pipelines: widget update failed")

    def _sleep_until_due(self) -> None:
        """Wait out the interval since the last flush, cut short when an urgent request arrives."""
        with self._cond:
            while not self._closed:
                gap = URGENT_GAP if self._urgent else self.interval
                wait = self._last + gap - time.monotonic()
                if wait <= 0:
                    return
                self._cond.wait(wait)
