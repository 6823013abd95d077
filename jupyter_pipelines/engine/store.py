"""The ``.pipelines/`` store beside the notebook: content-addressed objects, run records, logs, cache entries.

Layout (format 1)::

    FORMAT                                  "1"; a newer number means a newer jupyter-pipelines wrote it
    objects/<2 hex>/<hash>.<npy|pkl|dir>    content-addressed, read-only, shared by every pipeline
    <pipeline>/runs/<run-id>/               events.jsonl, logs/<step>.stdout|.stderr (created at the first
                                            output), results/<step>.json (steps that ran: written as they end),
                                            summary.json (every step), .running (locked while the run is alive)
    <pipeline>/cache/<signature>.json       a successful step's result record, by signature (``cache.py``)
    shared-cache/<signature>.json           the same for ``--cache-scope shared`` steps, across pipelines
    <pipeline>/registry/version-<n>.json    the local model registry: a version per successful ``register`` step
                                            run (``model_versions``), n = 1, 2, ...
    fingerprints.json, packages.json        caches of file hashes and package versions (losing them costs time)
    sha256.json                             SHA-256s of local data the SageMaker export addresses (a cache too)
    locks/*.lock                            ``flock`` files for the short critical sections

Crash safety. Every file is written under a temporary name and renamed into place, so no reader ever sees half a
file under a final name. Objects are written (and hashed while written) before any record names them; cache
entries, the only records a later run trusts to skip work, come last and are fsynced. Objects are not fsynced (a
1 GB object would pay for it on the hot path): instead they are verified when used -- size always, content hash
for objects under 64 MB (remembered per stat, so an unchanged object is a stat) -- and a corrupt one is removed
and its step recomputed. A run killed at any moment thus leaves at worst temp files (``gc`` removes them), a run
record saying ``running`` (read as ``cancelled`` once its lock is free) and objects nothing names.

Concurrency. Two processes may run the same pipeline: run directories are unique, objects land by atomic rename
(same content, same name), a cache entry is one file replaced atomically (the last writer's wins, both are good).
``flock`` guards the few read-modify-write sections (the fingerprint index, gc), never a running step.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import errno
import json
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import StoreError
from . import runtime
from .events import Event, event_from_json
from .runs import ObjectRef, RunResult, StepResult, new_run_id

if TYPE_CHECKING:
    from .fileindex import FileIndex

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

FORMAT_VERSION = 1
VERIFY_LIMIT = 64 * 2**20  # objects smaller than this are hashed when used (once per change, see fileindex.py)
TEMP_AGE = 3600.0  # gc removes temp files older than this (a live writer's are younger)
SHARED_CACHE = "shared-cache"
_NOT_PIPELINES = {"objects", "locks", SHARED_CACHE}
_DISK_FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))


def disk_full_error(path: Path, error: OSError) -> StoreError:
    return StoreError(
        runtime.disk_full_message(str(path), error),
        hint="Free some space (jupyter-pipelines gc NOTEBOOK removes old runs) and run again; nothing already "
        "stored was lost.",
    )


def write_json(path: Path | str, data: Any, *, fsync: bool = True) -> None:
    """Write JSON atomically: temp file in the same directory, optionally fsynced, then renamed into place.

    ``json.dumps`` rather than ``json.dump``: the first encodes in C, the second in Python (10x slower).
    """
    text = json.dumps(data, separators=(",", ":"), default=str).encode("utf-8")
    handle, temp = runtime.open_temp(os.path.dirname(path), "wb", 0)
    try:
        with handle:
            view = memoryview(text)
            while view:
                view = view[handle.write(view) :]
            if fsync:
                os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        if isinstance(error, OSError) and error.errno in _DISK_FULL:
            raise disk_full_error(Path(path), error) from None
        raise


def write_record(path: Path | str, data: Any) -> None:
    """A run's own records (step results, events): atomic but not fsynced; readers skip a damaged one."""
    write_json(path, data, fsync=False)


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise StoreError(f"{path} is corrupt ({error})", hint="Delete it; the step will rerun.") from None


def try_read_json(path: Path | str) -> Any:
    """A record's JSON, or None if it is missing or damaged (a later run never trusts a damaged record)."""
    try:
        with open(path, "rb") as handle:
            return json.loads(handle.read())
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class CacheEntry:
    """One cached step result: what ``%pipeline cache`` and ``jupyter-pipelines cache show`` list."""

    step: str
    signature: str
    run_id: str | None
    created: float
    expires: float | None
    size: int
    scope: str = "pipeline"

    def text(self, now: float | None = None) -> str:
        now = time.time() if now is None else now
        if self.expires is None:
            expiry = "kept until cleared"
        elif self.expires <= now:
            expiry = "expired"
        else:
            expiry = f"expires in {_age(self.expires - now)}"
        shared = ", shared" if self.scope == "shared" else ""
        return (
            f"{self.step}  from run {self.run_id}  {_age(now - self.created)} old  {expiry}  "
            f"{_size(self.size)}{shared}"
        )


@dataclass(frozen=True)
class GcReport:
    runs_removed: int
    objects_removed: int
    bytes_freed: int

    def text(self) -> str:
        runs = f"{self.runs_removed} run{'' if self.runs_removed == 1 else 's'}"
        objects = f"{self.objects_removed} object{'' if self.objects_removed == 1 else 's'}"
        return f"removed {runs} and {objects}, freed {_size(self.bytes_freed)}"


def _age(seconds: float) -> str:
    seconds = float(max(0, round(seconds)))
    for unit, length in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= length:
            return f"{seconds / length:.0f}{unit}"
    return f"{seconds:.0f}s"


def _size(count: int) -> str:
    if count >= 1e9:
        return f"{count / 1e9:.1f} GB"
    if count >= 1e6:
        return f"{count / 1e6:.1f} MB"
    if count >= 1e3:
        return f"{count / 1e3:.1f} kB"
    return f"{count} bytes"


def _tree_size(path: Path) -> int:
    total = 0
    for directory, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(directory, name)).st_size
    return total


def _remove_tree(path: Path) -> None:
    """Remove a directory whose files may be read-only (objects are chmod 444)."""

    def retry(function: Any, name: str, _info: Any) -> None:
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(name), 0o755)
            function(name)

    shutil.rmtree(path, onerror=retry)


class Store:
    """One ``.pipelines/`` directory. Creating the object does not touch the disk; ``ensure()`` does."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).absolute()
        self._live: dict[Path, int] = {}
        self._check_format()

    def _check_format(self) -> None:
        marker = self.root / "FORMAT"
        try:
            text = marker.read_text()
        except FileNotFoundError:
            return
        try:
            version = int(text.strip())
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
        marker = self.root / "FORMAT"
        if marker.exists():
            return
        self._check_format()
        (self.root / "objects").mkdir(parents=True, exist_ok=True)
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

    def registry_dir(self, pipeline: str) -> Path:
        return self.pipeline_dir(pipeline) / "registry"

    @property
    def shared_cache_dir(self) -> Path:
        return self.root / SHARED_CACHE

    @property
    def index_path(self) -> Path:
        return self.root / "fingerprints.json"

    @property
    def packages_path(self) -> Path:
        return self.root / "packages.json"

    def object_path(self, ref: ObjectRef) -> Path:
        return self.root / ref.path

    def has_object(self, ref: ObjectRef) -> bool:
        return self.object_path(ref).exists()

    # --- locks ------------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, name: str, *, shared: bool = False) -> Iterator[None]:
        """Hold ``locks/<name>.lock`` (exclusive unless ``shared``) for a short critical section."""
        if fcntl is None:  # pragma: no cover
            yield
            return
        path = self.root / "locks" / f"{name}.lock"
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def file_index(self) -> FileIndex:
        """The fingerprint index of this store (a fresh view: one per run)."""
        from .fileindex import FileIndex

        return FileIndex(self.index_path, lambda: self.lock("index"))

    def sha256_index(self) -> FileIndex:
        """SHA-256 fingerprints of local data the export addresses in S3 (``sha256.json``): an unchanged 1 GB
        input is a ``stat`` on the next export, not a second of hashing."""
        from .fileindex import FileIndex, sha256_file

        return FileIndex(self.root / "sha256.json", lambda: self.lock("sha256"), hasher=sha256_file)

    # --- runs -------------------------------------------------------------------------------------------------

    def new_run(self, pipeline: str) -> tuple[str, Path]:
        """Create a fresh run directory, locked as alive until ``end_run``; the id sorts by start time."""
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
            if fcntl is not None:
                fd = os.open(run_dir / ".running", os.O_RDWR | os.O_CREAT, 0o644)
                fcntl.flock(fd, fcntl.LOCK_EX)
                self._live[run_dir] = fd
            return run_id, run_dir

    def end_run(self, run_dir: Path) -> None:
        """The run is over: release its liveness lock (a killed process releases it by dying)."""
        fd = self._live.pop(run_dir, None)
        if fd is not None:
            os.close(fd)

    def run_is_live(self, run_dir: Path) -> bool:
        """Whether a process is still running this run (its ``.running`` lock is held)."""
        if run_dir in self._live:
            return True
        if fcntl is None:  # pragma: no cover
            return False
        try:
            fd = os.open(run_dir / ".running", os.O_RDONLY)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False

    # --- records ---------------------------------------------------------------------------------------------

    def step_result_path(self, run_dir: Path, step: str) -> Path:
        return run_dir / "results" / f"{step}.json"

    def save_step_result(self, run_dir: Path, result: StepResult) -> None:
        write_record(self.step_result_path(run_dir, result.name), result.to_dict(self.root))

    def write_summary(self, run: RunResult, *, fsync: bool = True) -> None:
        write_json(run.run_dir / "summary.json", run.to_dict(self.root), fsync=fsync)

    def read_summary(self, run_dir: Path) -> RunResult:
        run = RunResult.from_dict(read_json(run_dir / "summary.json"), self.root, run_dir)
        if run.status == "running" and not self.run_is_live(run_dir):
            return dataclasses.replace(run, status="cancelled")  # its process died (kill -9, power loss)
        return run

    def list_runs(self, pipeline: str) -> list[RunResult]:
        """Every recorded run of a pipeline, newest first (a run still going reads ``running``)."""
        found = []
        for run_dir in self._run_dirs(pipeline):
            if (run_dir / "summary.json").exists():
                try:
                    found.append(self.read_summary(run_dir))
                except (StoreError, KeyError, TypeError, ValueError):
                    continue  # a damaged record of a crashed run
        return found

    def _run_dirs(self, pipeline: str) -> list[Path]:
        runs = self.runs_dir(pipeline)
        if not runs.is_dir():
            return []
        return sorted((p for p in runs.iterdir() if p.is_dir()), reverse=True)

    def latest_result(self, pipeline: str, step: str, index: FileIndex | None = None) -> StepResult | None:
        """The newest successful (or cached) result of a step whose objects are intact: what selective runs reuse."""
        for run_dir in self._run_dirs(pipeline):
            data = try_read_json(run_dir / "results" / f"{step}.json")
            if data is None:  # a step that came from the cache is recorded in the summary only
                summary = try_read_json(run_dir / "summary.json")
                data = summary.get("steps", {}).get(step) if isinstance(summary, dict) else None
            if not isinstance(data, dict) or data.get("status") not in ("succeeded", "cached"):
                continue
            try:
                result = StepResult.from_dict(data, self.root)
            except (KeyError, TypeError, ValueError):
                continue
            if all(self.object_problem(ref, index) is None for ref in result.outputs.values()):
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
        """Store one value (hashed while written); raises ``runtime.Unserializable``, or StoreError if disk full."""
        self.ensure()
        try:
            return ObjectRef.from_dict(runtime.save_value(value, str(self.root)))
        except OSError as error:
            if error.errno in _DISK_FULL:
                raise disk_full_error(self.root / "objects", error) from None
            raise

    def object_problem(self, ref: ObjectRef, index: FileIndex | None = None) -> str | None:
        """Why a stored object cannot be trusted (None if it can): missing, wrong size, or a different content hash.

        Every object's size is checked; a file object under 64 MB is also hashed when ``index`` is given (the index
        remembers the hash per stat, so an object is read again only after something touched it).
        """
        path = os.path.join(self.root, ref.path)
        try:
            st = os.stat(path)
        except OSError:
            return "missing"
        if ref.format == "dir":
            return None if stat.S_ISDIR(st.st_mode) else "not a directory"
        if not stat.S_ISREG(st.st_mode):
            return "not a file"
        if ref.size and st.st_size != ref.size:
            return f"its size is {st.st_size} bytes, not {ref.size}"
        algorithm, _, expected = ref.hash.partition(":")
        if index is not None and st.st_size < VERIFY_LIMIT and algorithm == runtime.HASH_ALGORITHM:
            try:
                actual = index.file_digest(path, st)
            except OSError as error:
                return f"it cannot be read ({error.strerror})"
            if actual != expected:
                return "its content does not match its hash"
        return None

    def discard_object(self, ref: ObjectRef) -> None:
        """Remove a corrupt object so nothing loads it and the next save writes it afresh."""
        path = self.object_path(ref)
        with contextlib.suppress(OSError):
            if path.is_dir():
                _remove_tree(path)
            else:
                path.unlink()

    def load_value(self, ref: ObjectRef) -> object:
        """One stored value: arrays memory-mapped copy-on-write, directories as their ``Path``."""
        problem = self.object_problem(ref)
        if problem is not None:
            raise StoreError(f"object {ref.hash} in {self.root / 'objects'} is {problem}", hint="Rerun the step.")
        value = runtime.load_value(ref.to_dict(), str(self.root))
        return Path(value) if ref.format == "dir" else value  # type: ignore[arg-type]

    def load_outputs(self, result: StepResult) -> dict[str, object]:
        """A step's stored outputs as values (numpy arrays memory-mapped with ``mmap_mode="c"``)."""
        return {name: self.load_value(ref) for name, ref in result.outputs.items()}

    # --- the local model registry ------------------------------------------------------------------------------

    def add_model_version(self, pipeline: str, record: dict[str, Any]) -> dict[str, Any]:
        """Record a new model version of ``pipeline`` (numbered 1, 2, ... under a lock; written atomically, fsynced).

        ``record`` holds what the caller knows (run id, step, output refs, metrics, approval status); the version
        number is added here. Returns the stored entry.
        """
        directory = self.registry_dir(pipeline)
        directory.mkdir(parents=True, exist_ok=True)
        with self.lock("registry"):
            version = max((int(entry["version"]) for entry in self.model_versions(pipeline)), default=0) + 1
            entry = {**record, "version": version}
            write_json(directory / f"version-{version}.json", entry)
        return entry

    def model_versions(self, pipeline: str) -> list[dict[str, Any]]:
        """The pipeline's registered model versions, oldest first (newest last); damaged entries are skipped."""
        entries: list[dict[str, Any]] = []
        with contextlib.suppress(FileNotFoundError):
            for path in self.registry_dir(pipeline).iterdir():
                if not (path.name.startswith("version-") and path.suffix == ".json"):
                    continue
                data = try_read_json(path)
                if isinstance(data, dict) and isinstance(data.get("version"), int):
                    entries.append(data)
        return sorted(entries, key=lambda entry: entry["version"])

    # --- the cache ----------------------------------------------------------------------------------------------

    def _cache_files(self, pipeline: str | None) -> Iterator[tuple[str, Path]]:
        """(scope, entry path) of one pipeline's entries (its shared ones too), or of every pipeline if None."""
        directories = [("shared", self.shared_cache_dir)]
        if pipeline is not None:
            directories.append(("pipeline", self.cache_dir(pipeline)))
        else:
            directories += [("pipeline", self.cache_dir(p.name)) for p in self._pipeline_dirs()]
        for scope, directory in directories:
            with contextlib.suppress(FileNotFoundError):
                for path in directory.iterdir():
                    if path.suffix == ".json" and not path.name.startswith("."):
                        yield scope, path

    def _pipeline_dirs(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return [p for p in self.root.iterdir() if p.is_dir() and p.name not in _NOT_PIPELINES]

    def cache_entries(self, pipeline: str) -> list[CacheEntry]:
        """The pipeline's cached step results (and the shared ones it stored), newest first.

        A result kept under two signatures (a step that writes a file it names, see ``cache.py``) is listed once.
        """
        entries: dict[tuple[str, str | None, str], CacheEntry] = {}
        for scope, path in self._cache_files(pipeline):
            data = try_read_json(path)
            if not isinstance(data, dict) or "result" not in data:
                continue
            if scope == "shared" and data.get("pipeline") != pipeline:
                continue
            result = data["result"]
            entry = CacheEntry(
                step=str(data.get("step")),
                signature=path.stem,
                run_id=result.get("run_id"),
                created=float(data.get("created", 0.0)),
                expires=data.get("expires"),
                size=sum(int(ref.get("size", 0)) for ref in result.get("outputs", {}).values()),
                scope=scope,
            )
            key = (entry.step, entry.run_id, scope)
            if key not in entries or result.get("signature") == path.stem:
                entries[key] = entry
        return sorted(entries.values(), key=lambda e: (-e.created, e.step))

    def clear_cache(self, pipeline: str, step: str | None = None) -> int:
        """Forget the pipeline's cached results (of one step, or all); returns how many results were removed."""
        removed: set[tuple[str | None, str | None]] = set()
        for scope, path in self._cache_files(pipeline):
            data = try_read_json(path)
            if isinstance(data, dict):
                if scope == "shared" and data.get("pipeline") != pipeline:
                    continue
                if step is not None and data.get("step") != step:
                    continue
                removed.add((data.get("step"), data.get("result", {}).get("run_id")))
            elif step is not None:
                continue
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        return len(removed)

    # --- housekeeping -------------------------------------------------------------------------------------------

    def gc(self, pipeline: str, keep: int) -> GcReport:
        """Keep the pipeline's newest ``keep`` runs (and any still running); remove the objects nothing refers to.

        An object stays while a remaining run of any pipeline, a cache entry of any pipeline, or a live run refers
        to it; objects written or reused since the oldest live run started are kept too (that run may not have
        recorded them yet). Safe beside running runs: deletion happens under the objects lock, which every
        object commit takes shared (``runtime._commit``).
        """
        if not self.root.is_dir():
            return GcReport(0, 0, 0)
        runs_removed = objects_removed = freed = 0
        with self.lock("gc"):
            kept = 0
            for run_dir in self._run_dirs(pipeline):
                if self.run_is_live(run_dir) or kept < keep:
                    kept += not self.run_is_live(run_dir)
                    continue
                freed += _tree_size(run_dir)
                _remove_tree(run_dir)
                runs_removed += 1
            with self.lock("objects"):
                referenced, oldest_live = self._references()
                cutoff = time.time() if oldest_live is None else oldest_live - 2.0
                removed_paths: list[str] = []
                for path in self._object_paths():
                    relative = path.relative_to(self.root).as_posix()
                    try:
                        st = os.lstat(path)
                    except OSError:
                        continue
                    if path.name.startswith(".tmp-"):
                        if st.st_mtime < min(cutoff, time.time() - TEMP_AGE):
                            freed += _tree_size(path) if path.is_dir() else st.st_size
                            self._remove_path(path)
                        continue
                    if relative in referenced or st.st_mtime >= cutoff:
                        continue
                    freed += _tree_size(path) if path.is_dir() else st.st_size
                    self._remove_path(path)
                    removed_paths.append(str(path))
                    objects_removed += 1
            if removed_paths:
                self.file_index().forget(removed_paths)
        return GcReport(runs_removed, objects_removed, freed)

    def _object_paths(self) -> Iterator[Path]:
        objects = self.root / "objects"
        if not objects.is_dir():
            return
        for shard in objects.iterdir():
            if shard.name.startswith(".tmp-"):
                yield shard
            elif shard.is_dir():
                yield from shard.iterdir()

    @staticmethod
    def _remove_path(path: Path) -> None:
        if path.is_dir() and not path.is_symlink():
            _remove_tree(path)
        else:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def _references(self) -> tuple[set[str], float | None]:
        """Store paths of every object a run record, cache entry or model version names, and when the oldest live
        run started."""
        referenced: set[str] = set()
        oldest_live: float | None = None

        def add(result: Any) -> None:
            if isinstance(result, dict):
                for ref in result.get("outputs", {}).values():
                    if isinstance(ref, dict) and "path" in ref:
                        referenced.add(ref["path"])

        for pipeline_dir in self._pipeline_dirs():
            for run_dir in self._run_dirs(pipeline_dir.name):
                if self.run_is_live(run_dir):
                    started = _run_started(run_dir)
                    oldest_live = started if oldest_live is None else min(oldest_live, started)
                for record in (run_dir / "results").glob("*.json"):
                    add(try_read_json(record))
                summary = try_read_json(run_dir / "summary.json")
                if isinstance(summary, dict):
                    for result in summary.get("steps", {}).values():
                        add(result)
            for version in self.model_versions(pipeline_dir.name):  # registered models outlive their runs
                add(version)
        for _scope, path in self._cache_files(None):
            data = try_read_json(path)
            if isinstance(data, dict):
                add(data.get("result"))
        return referenced, oldest_live


def _run_started(run_dir: Path) -> float:
    """When a run started: from its id (``20261123T101530.123456-ab12cd``), else its directory's mtime."""
    try:
        moment = datetime.datetime.strptime(run_dir.name.split("-")[0], "%Y%m%dT%H%M%S.%f")
        return moment.replace(tzinfo=datetime.timezone.utc).timestamp()
    except ValueError:
        return run_dir.stat().st_mtime
