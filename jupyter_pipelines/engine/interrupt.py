"""Stopping a kernel step: its code runs on the engine's own thread, in the live namespace, so there is no
process to terminate. :class:`ThreadInterrupter` raises :class:`StepInterrupted` in that thread instead (CPython's
``PyThreadState_SetAsyncExc``): it lands at the step's next bytecode, so a Python loop stops at once, while a call
blocked in C (a long ``time.sleep``, a socket read) stops when that call returns.

``StepInterrupted`` is a ``KeyboardInterrupt`` so the step runtime, which turns the user's own exceptions into a
failed result, lets it through to the engine, which knows why it fired (timeout or Stop).
"""

from __future__ import annotations

import ctypes
import threading


class StepInterrupted(KeyboardInterrupt):
    """Raised inside a kernel step to stop it (its ``--timeout`` passed, or the run was stopped)."""


class ThreadInterrupter:
    """Interrupts the thread that created it, at most once, and only while :meth:`running` says it is in the step.

    The lock makes the end of the step and a late ``fire`` exclusive: an exception set just before the step ended is
    delivered inside :meth:`running`'s exit, where the caller still catches it, never in the engine's own code."""

    def __init__(self) -> None:
        self._thread_id = threading.get_ident()
        self._lock = threading.Lock()
        self._inside = False
        self.reason: str | None = None

    def fire(self, reason: str) -> None:
        with self._lock:
            if not self._inside or self.reason is not None:
                return
            self.reason = reason
            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(self._thread_id), ctypes.py_object(StepInterrupted)
            )

    def __enter__(self) -> ThreadInterrupter:
        with self._lock:
            self._inside = True
        return self

    def __exit__(self, *_: object) -> None:
        with self._lock:
            self._inside = False
