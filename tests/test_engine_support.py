"""Helpers for the engine tests: pipelines built by hand (no authoring layer), a run wrapper, process checks."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_pipelines.engine import RunOptions, RunResult, Store, run_pipeline
from jupyter_pipelines.engine.events import Event
from jupyter_pipelines.local_jobs import job_files
from jupyter_pipelines.model import Parameter, Pipeline, PreludePart, Step, StepInput

NUMPY = PreludePart("0:0", "import", "import numpy as np", ("np",), modules=("numpy",))


def step(name: str, code: str = "", *, reads: Iterable[tuple[str, str]] = (), **fields: Any) -> Step:
    """A cell step; ``reads`` are ``(name, upstream step)`` pairs."""
    return Step(name, code, inputs=tuple(StepInput(n, up) for n, up in reads), **fields)


def pipeline(*steps: Step, parameters: Iterable[Parameter] = (), prelude: Iterable[PreludePart] = (), **kw: Any):
    return Pipeline("demo", tuple(steps), parameters=tuple(parameters), prelude=tuple(prelude), **kw)


@dataclass
class Ran:
    result: RunResult
    store: Store
    events: list[Event] = field(default_factory=list)
    received: list[tuple[float, Event]] = field(default_factory=list)  # (monotonic time received, event)
    wall: float = 0.0

    def outputs(self, name: str) -> dict[str, object]:
        return self.store.load_outputs(self.result.steps[name])

    def of(self, kind: str, step: str | None = None) -> list[Any]:
        return [e for e in self.events if e.type == kind and (step is None or getattr(e, "step", None) == step)]


def run(workdir: Path, pipe: Pipeline, *, cancel: Any = None, **options: Any) -> Ran:
    store = Store(workdir / ".pipelines")
    ran = Ran(result=None, store=store)  # type: ignore[arg-type]

    def subscriber(event: Event) -> None:
        ran.events.append(event)
        ran.received.append((time.monotonic(), event))

    started = time.monotonic()
    ran.result = run_pipeline(
        pipe,
        store=store,
        workdir=workdir,
        options=RunOptions(**{"job_files": job_files, **options}),  # as the skins run it
        subscribers=[subscriber],
        cancel=cancel,
    )
    ran.wall = time.monotonic() - started
    return ran


def alive(pid: int) -> bool:
    """True while the process exists and is not a zombie (a container's init may never reap orphans)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_for(predicate: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())
