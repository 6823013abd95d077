"""Local data in S3, content-addressed: where a file or directory goes and the objects it becomes.

One scheme for the files ``str`` parameters name and for the data steps declare with ``--inputs``, so the export
can write an input's S3 URI before promotion uploads it: ``PREFIX/data/<hash>/<name>`` for a file,
``PREFIX/data/<hash>/<name>/<files>`` for a directory, where ``<hash>`` is the SHA-256 of the relative names and
the files' SHA-256s. Every object carries its own SHA-256 (promotion skips an object already there with it).

SHA-256s are remembered per file ``stat`` in the store's ``sha256.json`` (``engine/fileindex.py``), so exporting
again after a 1 GB input did not change costs a ``stat``, not a second of hashing.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass
from pathlib import Path

from ..engine.fileindex import FileIndex, sha256_file

__all__ = ["Blob", "DataLocation", "data_files", "data_index", "data_location"]


@dataclass(frozen=True)
class Blob:
    """One S3 object to be: its key, the SHA-256 of its content, and the content (bytes, or a file)."""

    key: str
    digest: str
    size: int
    data: bytes | None = None
    path: Path | None = None


@dataclass(frozen=True)
class DataLocation:
    """A local file or directory and where it goes: ``base`` is the key of its content-addressed folder."""

    path: Path
    base: str
    blobs: tuple[Blob, ...]

    def folder_uri(self, bucket: str) -> str:
        """The folder holding it (what a job's input downloads: the file or directory lands under its name)."""
        return f"s3://{bucket}/{self.base}/"

    def uri(self, bucket: str) -> str:
        """The object itself (a directory: its folder, with a trailing slash)."""
        return f"s3://{bucket}/{self.base}/{self.path.name}" + ("/" if self.path.is_dir() else "")


def key(*parts: str) -> str:
    return "/".join(part for part in parts if part)


def data_files(root: Path) -> list[tuple[str, Path]]:
    """(name under the hash folder, path) of each file: the file itself, or a directory's files (sorted)."""
    if root.is_file():
        return [(root.name, root)]
    found = sorted(p for p in root.rglob("*") if p.is_file() and ".pipelines" not in p.relative_to(root).parts)
    return [(f"{root.name}/{p.relative_to(root).as_posix()}", p) for p in found]


def data_index(source_dir: Path | None) -> FileIndex:
    """The SHA-256 cache of the notebook directory's store (in memory only without a notebook directory)."""
    if source_dir is None:
        return FileIndex(None, hasher=sha256_file)
    from ..engine.store import Store

    return Store(source_dir / ".pipelines").sha256_index()


def data_location(path: Path, prefix: str, index: FileIndex) -> DataLocation:
    """Where ``path`` (an existing file or directory, resolved) goes under ``PREFIX/data/``; the index is saved."""
    files = [(name, p, index.file_digest(str(p)), p.stat().st_size) for name, p in data_files(path)]
    with contextlib.suppress(OSError):  # a cache: a read-only notebook directory costs rehashing next time
        index.save()
    combined = hashlib.sha256()
    for name, _, digest, _ in files:
        combined.update(name.encode("utf-8") + b"\0" + bytes.fromhex(digest))
    base = key(prefix, "data", combined.hexdigest()[:32])
    blobs = tuple(Blob(key(base, name), digest, size, path=p) for name, p, digest, size in files)
    return DataLocation(path, base, blobs)
