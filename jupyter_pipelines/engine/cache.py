"""The rebuilder half of the engine: may a step's result come from the cache, and storing results for later.

The scheduler decides *when* a step can run; this module decides *whether* it must (build systems à la carte).
An entry ``<pipeline>/cache/<signature>.json`` (``shared-cache/`` too for ``--cache-scope shared`` steps) holds the
result record of a successful run, when it was made and when it expires. It counts only while it has not expired
(``--cache DURATION``) and every object it names is intact (``Store.object_problem``); a corrupt object is reported,
removed and its step recomputed. When several entries match (this pipeline's and a shared one), the newest wins.

Files a step writes. A step may name in a string literal a file it *writes* (``open('report.json', 'w')``): the
literal makes the file part of its signature, so the signature computed before the run (no file, or last run's
file) differs from the one the next run computes (the file as this run left it). A step that names files is
therefore stored under the signature computed from the files as they are *after* it ran (the same as before for
files it only reads). The next run, finding the file as this run wrote it, hits; a run after someone changed or
deleted the file computes another signature and reruns the step, which recreates the file. (Storing under the
before-run signature too would be wrong: deleting the output file would bring back the first run's state and a
hit that does not recreate the file.)
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..model import Step
from .fileindex import FileIndex
from .runs import StepResult
from .signature import Signature
from .store import Store, try_read_json, write_json

ENTRY_FORMAT = 1
Warn = Callable[[str, str], None]  # (step, message)


def expires_at(step: Step, created: float) -> float | None:
    """When an entry made at ``created`` expires under the step's ``--cache DURATION`` (None: never)."""
    if step.cache.expire_after is None:
        return None
    from ..durations import parse_duration

    start = datetime.datetime.fromtimestamp(created, datetime.timezone.utc)
    try:
        return parse_duration(step.cache.expire_after).expires(start).timestamp()
    except (OverflowError, ValueError, OSError):
        return None


class Cache:
    """Signature-keyed step results of one pipeline (plus the store's shared ones)."""

    def __init__(self, store: Store, pipeline: str, index: FileIndex, warn: Warn | None = None) -> None:
        self.store = store
        self.pipeline = pipeline
        self.index = index
        self.warn = warn or (lambda step, message: None)
        self._pipeline_dir = str(store.cache_dir(pipeline))
        self._shared_dir = str(store.shared_cache_dir)
        self._made: set[Path] = set()  # cache directories known to exist

    def _directories(self, step: Step) -> list[Path]:
        directories = [self.store.cache_dir(self.pipeline)]
        if step.cache_scope == "shared":
            directories.append(self.store.shared_cache_dir)
        return directories

    def _entry_paths(self, step: Step, signature: str) -> list[str]:
        """As strings: a fully cached run looks up hundreds, and ``Path`` objects cost microseconds each."""
        paths = [os.path.join(self._pipeline_dir, signature + ".json")]
        if step.cache_scope == "shared":
            paths.append(os.path.join(self._shared_dir, signature + ".json"))
        return paths

    def entries(
        self, step: Step, signature: str, now: float | None = None, *, expired: bool = False
    ) -> list[dict[str, Any]]:
        """The entries stored under ``signature`` that have not expired (all if ``expired``), newest first.

        Each entry's ``expires`` is recomputed from the step's current ``--cache`` option.
        """
        now = time.time() if now is None else now
        found = []
        for path in self._entry_paths(step, signature):
            data = try_read_json(path)
            if not isinstance(data, dict) or data.get("format") != ENTRY_FORMAT or "result" not in data:
                continue
            data["expires"] = expires_at(step, float(data.get("created", 0.0)))
            if expired or data["expires"] is None or now < data["expires"]:
                found.append(data)
        return sorted(found, key=lambda d: -float(d.get("created", 0.0)))

    def step_entries(self, step: Step) -> list[dict[str, Any]]:
        """Every entry this pipeline stored for a step (any signature), newest first: what ``why`` compares with."""
        found = []
        for directory in self._directories(step):
            with contextlib.suppress(FileNotFoundError):
                for path in directory.glob("*.json"):
                    data = try_read_json(path)
                    if (
                        isinstance(data, dict)
                        and data.get("step") == step.name
                        and data.get("pipeline") == self.pipeline
                        and isinstance(data.get("result"), dict)
                    ):
                        found.append(data)
        return sorted(found, key=lambda d: (-float(d.get("created", 0.0)), not d.get("after_run")))

    def lookup(self, step: Step, signature: str, now: float | None = None) -> StepResult | None:
        """The newest unexpired cached result for this signature whose objects are all intact, if any."""
        for data in self.entries(step, signature, now):
            try:
                result = StepResult.from_dict(data["result"], self.store.root)
            except (KeyError, TypeError, ValueError):
                continue
            if self.intact(step.name, result):
                return result
        return None

    def intact(self, step: str, result: StepResult) -> bool:
        """Whether every object of a result is there and sound; corrupt ones are reported and removed."""
        sound = True
        for name, ref in result.outputs.items():
            problem = self.store.object_problem(ref, self.index)
            if problem is None:
                continue
            sound = False
            if problem != "missing":
                self.store.discard_object(ref)
                self.warn(
                    step,
                    f"warning: stored output {name!r} of step {step!r} (run {result.run_id}, object {ref.hash}) "
                    f"is corrupt: {problem}. It was removed and the step will be recomputed.",
                )
        return sound

    def save(
        self,
        step: Step,
        signatures: Sequence[Signature],
        result: StepResult,
        *,
        read_names: set[str],
        write: Callable[[Path, Any], None] = write_json,
    ) -> None:
        """Store a successful result under each of its signatures (``write`` may queue it on a RecordWriter).

        Not stored: failed results, steps with ``--no-cache``, and results missing an output some step reads
        (it could not be saved). An unsaved output nobody reads does not matter: on a hit it is simply absent.
        """
        if not may_store(step) or result.status != "succeeded" or set(result.unsaved) & read_names:
            return
        created = time.time()
        expires = expires_at(step, created)
        seen: set[str] = set()
        for number, signature in enumerate(signatures):
            if signature.digest in seen:
                continue
            seen.add(signature.digest)
            record = dataclasses.replace(result, signature=signature.digest, parts=signature.parts)
            data = {
                "format": ENTRY_FORMAT,
                "pipeline": self.pipeline,
                "step": step.name,
                "created": created,
                "expires": expires,
                "after_run": number > 0,  # the signature of the files as the step left them
                "result": record.to_dict(self.store.root),
            }
            for directory in self._directories(step):
                if directory not in self._made:
                    directory.mkdir(parents=True, exist_ok=True)
                    self._made.add(directory)
                write(directory / f"{signature.digest}.json", data)


def may_reuse(step: Step, *, use_cache: bool, forced: bool) -> bool:
    """Whether a cached result may stand in for running the step."""
    return use_cache and not forced and step.cache.enabled


def may_store(step: Step) -> bool:
    return step.cache.enabled
