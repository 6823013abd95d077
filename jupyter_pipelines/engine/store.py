"""The ``.pipelines/`` store beside the notebook: content-addressed objects, run records, logs, cache entries.

Layout (format 1)::

    FORMAT                                  "1"; a newer number means a newer jupyter-pipelines wrote it
    objects/<2 hex>/<hash>.<npy|pkl|dir>    content-addressed, read-only, shared by every pipeline
    <pipeline>/runs/<run-id>/               events.jsonl, logs/<step>.stdout|.stderr, results/<step>.json,
                                            summary.json
    <pipeline>/cache/<signature>.json       the result record of a successful step, by signature

Every write is atomic (a temp file in the same directory, then ``os.replace``), so a crash never leaves a
half-written file under a final name. Objects are written first; the small records that name them afterwards,
fsynced. Objects are not fsynced: they are large, and a lost one only costs a rerun.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from ..errors import StoreError
from . import runtime
from .events import Event, event_from_json
from .runs import ObjectRef, RunResult, StepResult, new_run_id

FORMAT_VERSION = 1


def write_json(path: Path, data: Any, *, fsync: bool = True) -> None:
    """Write JSON atomically: temp file in the same directory, optionally fsynced, then renamed into place."""
    fd, temp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=1, sort_keys=True, default=str)
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise StoreError(f"{path} is corrupt ({error})", hint="Delete it; the step will rerun.") from None


class Store:
    """One ``.pipelines/`` directory. Creating the object does not touch the disk; ``ensure()`` does."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).absolute()
        self._check_format()

    def _check_format(self) -> None:
        marker = self.root / "FORMAT"
        if not marker.exists():
            return
        try:
            version = int(marker.read_text().strip())
        except ValueError:
            raise StoreError(f"{marker} is not a format number", hint="Restore or delete the file.") from None
        if version > FORMAT_VERSION:
            raise StoreError(
                f"{self.root} was written by a newer jupyter-pipelines (store format {version}, this one reads "
                f"{FORMAT_VERSION})",
                hint="Upgrade: pip install -U jupyter-pipelines.",
            )

    def ensure(self) -> None:
        """Create the store if needed (and its FORMAT file)."""
        self._check_format()
        (self.root / "objects").mkdir(parents=True, exist_ok=True)
        marker = self.root / "FORMAT"
        if not marker.exists():
            fd, temp = tempfile.mkstemp(prefix=".tmp-", dir=self.root)
            with os.fdopen(fd, "w") as handle:
                handle.write(f"{FORMAT_VERSION}\n")
            os.replace(temp, marker)

    # --- layout ---------------------------------------------------------------------------------------------

    def pipeline_dir(self, pipeline: str) -> Path:
        return self.root / pipeline

    def runs_dir(self, pipeline: str) -> Path:
        return self.pipeline_dir(pipeline) / "runs"

    def cache_dir(self, pipeline: str) -> Path:
        return self.pipeline_dir(pipeline) / "cache"

    def object_path(self, ref: ObjectRef) -> Path:
        return self.root / ref.path

    def has_object(self, ref: ObjectRef) -> bool:
        return self.object_path(ref).exists()

    def new_run(self, pipeline: str) -> tuple[str, Path]:
        """Create a fresh run directory; the id sorts by start time."""
        self.ensure()
        runs = self.runs_dir(pipeline)
        runs.mkdir(parents=True, exist_ok=True)
        while True:
            run_id = new_run_id()
            run_dir = runs / run_id
            try:
                run_dir.mkdir()
            except FileExistsError:
                continue
            (run_dir / "logs").mkdir()
            (run_dir / "results").mkdir()
            return run_id, run_dir

    # --- records ---------------------------------------------------------------------------------------------

    def step_result_path(self, run_dir: Path, step: str) -> Path:
        return run_dir / "results" / f"{step}.json"

    def save_step_result(self, run_dir: Path, result: StepResult) -> None:
        write_json(self.step_result_path(run_dir, result.name), result.to_dict(self.root))

    def write_summary(self, run: RunResult) -> None:
        write_json(run.run_dir / "summary.json", run.to_dict(self.root))

    def read_summary(self, run_dir: Path) -> RunResult:
        return RunResult.from_dict(read_json(run_dir / "summary.json"), self.root, run_dir)

    def list_runs(self, pipeline: str) -> list[RunResult]:
        """Every recorded run of a pipeline, newest first (a run still going reads ``running``)."""
        runs = self.runs_dir(pipeline)
        if not runs.is_dir():
            return []
        found = []
        for run_dir in sorted(runs.iterdir(), reverse=True):
            if (run_dir / "summary.json").exists():
                found.append(self.read_summary(run_dir))
        return found

    def latest_result(self, pipeline: str, step: str) -> StepResult | None:
        """The newest successful (or cached) result of a step, from any run: what selective runs reuse."""
        runs = self.runs_dir(pipeline)
        if not runs.is_dir():
            return None
        for run_dir in sorted(runs.iterdir(), reverse=True):
            path = run_dir / "results" / f"{step}.json"
            if path.exists():
                result = StepResult.from_dict(read_json(path), self.root)
                if result.status in ("succeeded", "cached") and all(map(self.has_object, result.outputs.values())):
                    return result
        return None

    def read_events(self, run_dir: Path) -> list[Event]:
        path = Path(run_dir) / "events.jsonl"
        if not path.exists():
            return []
        events = []
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                try:
                    events.append(event_from_json(line))
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut short by a crash
        return events

    # --- objects ---------------------------------------------------------------------------------------------

    def save_value(self, value: object) -> ObjectRef:
        """Store one value (hashed while written); raises ``runtime.Unserializable``."""
        self.ensure()
        return ObjectRef.from_dict(runtime.save_value(value, str(self.root)))

    def load_value(self, ref: ObjectRef) -> object:
        """One stored value: arrays memory-mapped copy-on-write, directories as their ``Path``."""
        if not self.has_object(ref):
            raise StoreError(f"object {ref.hash} is missing from {self.root / 'objects'}", hint="Rerun the step.")
        value = runtime.load_value(ref.to_dict(), str(self.root))
        return Path(value) if ref.format == "dir" else value  # type: ignore[arg-type]

    def load_outputs(self, result: StepResult) -> dict[str, object]:
        """A step's stored outputs as values (numpy arrays memory-mapped with ``mmap_mode="c"``)."""
        return {name: self.load_value(ref) for name, ref in result.outputs.items()}
