"""Running the pipeline model locally: scheduler, executors, step runtime, store, cache, events.

``run_pipeline(pipeline, store=Store(dir / ".pipelines"), workdir=dir, options=RunOptions(...))`` runs what is
not cached and returns a ``RunResult``; ``Store.load_outputs(step_result)`` gives a step's values back.
``prestart(dir)`` (cheap to import) starts the run's worker process early, so its start-up overlaps the caller's
own imports and parsing.

The names are imported on first use: worker processes import ``engine.runtime`` and ``engine.zygote`` through
this package, and every module they do not need makes each fork slower.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .executors import prestart
    from .runs import CancelToken, ObjectRef, RunOptions, RunResult, StepResult
    from .scheduler import run_pipeline
    from .store import Store

__all__ = ["CancelToken", "ObjectRef", "RunOptions", "RunResult", "StepResult", "Store", "prestart", "run_pipeline"]

_HOMES = {
    "CancelToken": "runs",
    "ObjectRef": "runs",
    "RunOptions": "runs",
    "RunResult": "runs",
    "StepResult": "runs",
    "prestart": "executors",
    "run_pipeline": "scheduler",
    "Store": "store",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
