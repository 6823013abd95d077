"""The rebuilder half of the engine: may a step's result come from the cache, and storing results for later.

The scheduler decides *when* a step can run; this module decides *whether* it must (build systems à la carte).
An entry ``<pipeline>/cache/<signature>.json`` holds the result record of a successful run; it only counts while
every object it names still exists. Only successful results with every output stored are cached.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..model import Step
from .runs import StepResult
from .store import Store, read_json, write_json


class Cache:
    """Signature-keyed step results of one pipeline."""

    def __init__(self, store: Store, pipeline: str) -> None:
        self.store = store
        self.directory = store.cache_dir(pipeline)

    def lookup(self, signature: str) -> StepResult | None:
        """The cached result for this signature, if its entry exists and all its objects are still stored."""
        path = self.directory / f"{signature}.json"
        if not path.exists():
            return None
        result = StepResult.from_dict(read_json(path), self.store.root)
        if not all(self.store.has_object(ref) for ref in result.outputs.values()):
            return None
        return result

    def save(self, signature: str, result: StepResult, write: Callable[[Path, Any], None] = write_json) -> None:
        """Store a successful result under its signature (``write`` may queue it on a RecordWriter)."""
        if result.status != "succeeded" or result.unsaved:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        record = dataclasses.replace(result, signature=signature)
        write(self.directory / f"{signature}.json", record.to_dict(self.store.root))


def may_reuse(step: Step, *, use_cache: bool, forced: bool) -> bool:
    """Whether a cached result may stand in for running the step."""
    return use_cache and not forced and step.cache.enabled


def may_store(step: Step) -> bool:
    return step.cache.enabled
