"""What a run takes and gives back: options, per-step results, object refs, run ids, the cancel token.

Plain data with JSON round-trips, because the same records are written to the store (result records, cache
entries, ``summary.json``) and read back by later runs and by the CLI's ``runs`` and ``logs`` commands.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..model import ParameterValue, Pipeline, Step

StepResultStatus = Literal["succeeded", "cached", "failed", "skipped", "condition_false", "cancelled"]
RunResultStatus = Literal["running", "succeeded", "failed", "cancelled"]
Launcher = Literal["auto", "zygote", "spawn"]
JobFiles = Callable[[Pipeline, Step, Path], dict[str, bytes]]  # (pipeline, step, notebook dir) -> files


@dataclass(frozen=True)
class ObjectRef:
    """A stored object: content hash (``algorithm:hex``), format (npy, cloudpickle, pickle, dir), store path."""

    hash: str
    format: str
    path: str  # relative to the store root, POSIX separators
    type: str = ""
    size: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"hash": self.hash, "format": self.format, "path": self.path, "type": self.type, "size": self.size}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ObjectRef:
        return cls(data["hash"], data["format"], data["path"], data.get("type", ""), int(data.get("size", 0)))


@dataclass(frozen=True)
class RunOptions:
    """How to run: parameter values, which steps, cache use, parallelism, the kernel namespace for kernel steps."""

    parameters: dict[str, ParameterValue] = field(default_factory=dict)
    targets: frozenset[str] | None = None  # None: every step; else these plus what they need upstream
    # Selective execution (``selection.select_steps``): only these run; the steps they need that are not selected
    # give the outputs of their latest successful run. None: every step runs (or comes from the cache).
    selected: frozenset[str] | None = None
    force: frozenset[str] = frozenset()  # rerun these even if cached
    jobs: int | None = None  # max parallel steps; None: os.cpu_count()
    kernel_namespace: dict[str, Any] | None = None  # for executor="kernel" steps; None: run them as processes
    use_cache: bool = True
    launcher: Launcher = "auto"  # "auto": fork from a zygote where os.fork exists, else spawn an interpreter
    # For ``--executor container`` steps: the files of the step's job bundle (entry, runtime, ``step.json``, its
    # tracked files), the very bundle a SageMaker job runs. The skins pass ``local_jobs.job_files``; the engine
    # never imports the sagemaker layer that makes it.
    job_files: JobFiles | None = None


@dataclass(frozen=True)
class StepResult:
    """How one step of a run ended, and where its outputs and logs are."""

    name: str
    status: StepResultStatus
    duration: float = 0.0
    cached_from: str | None = None
    error: str | None = None
    display: str | None = None
    outputs: dict[str, ObjectRef] = field(default_factory=dict)
    stdout_path: Path | None = None
    stderr_path: Path | None = None
    run_id: str | None = None  # the run that produced this record
    signature: str | None = None
    attempts: int = 0
    unsaved: dict[str, str] = field(default_factory=dict)  # outputs that could not be stored: name -> type
    parts: dict[str, str] = field(default_factory=dict)  # the signature's parts (``signature.py``), for ``why``

    def to_dict(self, root: Path) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "duration": self.duration,
            "cached_from": self.cached_from,
            "error": self.error,
            "display": self.display,
            "outputs": {name: ref.to_dict() for name, ref in self.outputs.items()},
            "stdout_path": _relative(self.stdout_path, root),
            "stderr_path": _relative(self.stderr_path, root),
            "run_id": self.run_id,
            "signature": self.signature,
            "attempts": self.attempts,
            "unsaved": dict(self.unsaved),
            "parts": dict(self.parts),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], root: Path) -> StepResult:
        return cls(
            name=data["name"],
            status=data["status"],
            duration=float(data.get("duration", 0.0)),
            cached_from=data.get("cached_from"),
            error=data.get("error"),
            display=data.get("display"),
            outputs={name: ObjectRef.from_dict(ref) for name, ref in data.get("outputs", {}).items()},
            stdout_path=_absolute(data.get("stdout_path"), root),
            stderr_path=_absolute(data.get("stderr_path"), root),
            run_id=data.get("run_id"),
            signature=data.get("signature"),
            attempts=int(data.get("attempts", 0)),
            unsaved=dict(data.get("unsaved", {})),
            parts=dict(data.get("parts", {})),
        )


@dataclass(frozen=True)
class RunResult:
    """A whole run: its id, status, directory and every considered step's result."""

    run_id: str
    pipeline: str
    status: RunResultStatus
    run_dir: Path
    steps: dict[str, StepResult] = field(default_factory=dict)
    duration: float = 0.0
    started: float = 0.0
    parameters: dict[str, ParameterValue] = field(default_factory=dict)

    def to_dict(self, root: Path) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "pipeline": self.pipeline,
            "status": self.status,
            "duration": self.duration,
            "started": self.started,
            "parameters": dict(self.parameters),
            "steps": {name: result.to_dict(root) for name, result in self.steps.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], root: Path, run_dir: Path) -> RunResult:
        return cls(
            run_id=data["run_id"],
            pipeline=data["pipeline"],
            status=data["status"],
            run_dir=run_dir,
            steps={name: StepResult.from_dict(step, root) for name, step in data.get("steps", {}).items()},
            duration=float(data.get("duration", 0.0)),
            started=float(data.get("started", 0.0)),
            parameters=dict(data.get("parameters", {})),
        )


class CancelToken:
    """Stop a run from another thread: ``cancel()`` wakes the engine at once (thread-safe, idempotent)."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._wakeups: set[int] = set()
        self._callbacks: list[Callable[[], None]] = []

    def cancel(self) -> None:
        with self._lock:
            self._event.set()
            for fd in self._wakeups:
                with contextlib.suppress(OSError):
                    os.write(fd, b"x")
            callbacks = list(self._callbacks)
        for callback in callbacks:  # e.g. interrupting a kernel step, which keeps the engine's thread busy
            callback()

    def on_cancel(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` (from the cancelling thread) on cancel, at once if already cancelled; returns the
        function that unregisters it."""
        with self._lock:
            self._callbacks.append(callback)
            cancelled = self._event.is_set()
        if cancelled:
            callback()

        def remove() -> None:
            with self._lock, contextlib.suppress(ValueError):
                self._callbacks.remove(callback)

        return remove

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def attach(self, fd: int) -> None:
        """Write a byte to ``fd`` on cancel (the engine selects on the other end of the pipe)."""
        with self._lock:
            self._wakeups.add(fd)
            if self._event.is_set():
                os.write(fd, b"x")

    def detach(self, fd: int) -> None:
        with self._lock:
            self._wakeups.discard(fd)


def new_run_id(now: float | None = None) -> str:
    """A run id sorting by start time (UTC, microseconds), random suffix: ``20261123T101530.123456-ab12cd``."""
    moment = datetime.datetime.fromtimestamp(time.time() if now is None else now, datetime.timezone.utc)
    return moment.strftime("%Y%m%dT%H%M%S.%f") + "-" + secrets.token_hex(3)


def _relative(path: Path | None, root: Path) -> str | None:
    """``path`` relative to the store root when inside it (string work: ``Path.relative_to`` is slow)."""
    if path is None:
        return None
    text, prefix = str(path), str(root) + os.sep
    if text.startswith(prefix):
        return text[len(prefix) :].replace(os.sep, "/")
    return text


def _absolute(path: str | None, root: Path) -> Path | None:
    return None if path is None else Path(os.path.join(root, path))
