"""Content fingerprints of files (data a step reads, objects in the store), remembered so an unchanged file is a stat.

A fingerprint is the file's content hash (xxh3_128, streamed through one preallocated buffer: ~13 GB/s from the
page cache here, against ~1.8 GB/s for sha256). Hashing a 1 GB file on every run would still cost 80 ms, so each
hash is remembered in ``.pipelines/fingerprints.json`` under the file's (size, mtime, ctime, inode): a file whose
``stat`` says nothing changed is not read again. ``ctime`` is in the key because ``os.utime`` can restore a file's
mtime after its content changed but cannot restore its ctime; ``touch`` changes both, so a touched file is rehashed
and, its content being the same, changes no signature.

The "racy" case (git has the same one): file timestamps come from a coarse clock, so a file rewritten in the same
clock tick as it was hashed keeps its stat. A remembered hash is therefore only trusted when the file's ctime is
comfortably older than the moment it was hashed; otherwise it is hashed again. Within one run a hash taken by
this process is trusted on an equal stat, so a file read by several steps is hashed once per run.

The index is a cache: losing it costs rehashing, never a wrong answer. It is saved (merged with what other
processes saved meanwhile, under a lock) only when something new was hashed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import runtime

INDEX_VERSION = 1
BUFFER_SIZE = 1 << 20  # larger buffers are no faster here, and 1 MiB stays in the L2 cache
RACY_NS = 100_000_000  # a hash taken less than 0.1 s after the file's last change is not remembered as trusted

_buffer = bytearray(BUFFER_SIZE)
_buffer_lock = threading.Lock()

StatKey = tuple[int, int, int, int]


def stat_key(st: os.stat_result) -> StatKey:
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def hash_file(path: str | os.PathLike[str], new_hasher: Callable[[], Any] = runtime.new_hasher) -> str:
    """The hex xxh3_128 (or ``new_hasher``'s) of a file's content, read with ``readinto`` into one reused buffer."""
    hasher = new_hasher()
    with open(path, "rb", buffering=0) as handle:
        with contextlib.suppress(AttributeError, OSError):
            os.posix_fadvise(handle.fileno(), 0, 0, os.POSIX_FADV_SEQUENTIAL)
        with _buffer_lock:
            view = memoryview(_buffer)
            while True:
                count = handle.readinto(_buffer)
                if not count:
                    break
                hasher.update(view[:count])
            view.release()
    return str(hasher.hexdigest())


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The hex SHA-256 of a file: what S3 uploads are addressed and checked by (``sagemaker/data.py``)."""
    return hash_file(path, hashlib.sha256)


@dataclass
class _Entry:
    key: StatKey
    hashed_at: int  # time.time_ns() when the hash was taken
    digest: str
    ours: bool = False  # hashed by this process: trusted on an equal stat


class FileIndex:
    """Fingerprints of files by path, backed by a JSON file (``path=None``: in memory only).

    ``lock`` is a context manager factory serializing saves across processes (the store's file lock); ``hasher``
    hashes one file (None: ``hash_file``, xxh3; the export's S3 addresses need SHA-256, kept in another index).
    """

    def __init__(
        self,
        path: Path | None = None,
        lock: Callable[[], AbstractContextManager[object]] | None = None,
        hasher: Callable[[str], str] | None = None,
    ):
        self.path = path
        self._lock = lock or contextlib.nullcontext
        self._hash = hasher
        self._entries: dict[str, _Entry] | None = None
        self._dirty: set[str] = set()

    # --- fingerprints -------------------------------------------------------------------------------------------

    def file_digest(self, path: str, st: os.stat_result | None = None) -> str:
        """The content hash of a regular file (stat given or taken); raises OSError if it cannot be read."""
        if st is None:
            st = os.stat(path)
        key = stat_key(st)
        entries = self._load()
        entry = entries.get(path)
        if entry is not None and entry.key == key and (entry.ours or st.st_ctime_ns < entry.hashed_at - RACY_NS):
            return entry.digest
        hashed_at = time.time_ns()
        digest = hash_file(path) if self._hash is None else self._hash(path)
        entries[path] = _Entry(key, hashed_at, digest, ours=True)
        self._dirty.add(path)
        return digest

    def path_digest(self, path: str) -> str:
        """A fingerprint of whatever is at ``path``: a file's hash, a directory's tree hash, or ``missing``."""
        try:
            st = os.stat(path)
        except OSError:
            return "missing"
        if stat.S_ISREG(st.st_mode):
            try:
                return self.file_digest(path, st)
            except OSError:
                return "unreadable"
        if stat.S_ISDIR(st.st_mode):
            return "dir:" + self.tree_digest(path)
        return "special"

    def tree_digest(self, root: str) -> str:
        """Hash of a directory's relative file names and file contents (recursively, sorted, symlinks followed)."""
        hasher = runtime.new_hasher()
        for directory, dirnames, filenames in os.walk(root, followlinks=True):
            dirnames.sort()
            for name in sorted(filenames):
                full = os.path.join(directory, name)
                relative = os.path.relpath(full, root).replace(os.sep, "/")
                digest = self.path_digest(full)
                hasher.update(f"{relative}\0{digest}\n".encode())
        return str(hasher.hexdigest())

    # --- persistence --------------------------------------------------------------------------------------------

    def _load(self) -> dict[str, _Entry]:
        if self._entries is None:
            self._entries = self._read()
        return self._entries

    def _read(self) -> dict[str, _Entry]:
        if self.path is None:
            return {}
        try:
            data = json.loads(self.path.read_bytes())
            if data.get("version") != INDEX_VERSION:
                return {}
            return {
                path: _Entry((size, mtime, ctime, ino), hashed_at, digest)
                for path, (size, mtime, ctime, ino, hashed_at, digest) in data["files"].items()
            }
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            return {}  # missing or damaged: a cache, start afresh

    def save(self) -> None:
        """Merge what this process hashed into the index file (atomically, under the lock); no-op if nothing new."""
        if self.path is None or not self._dirty or self._entries is None:
            return
        mine = {path: self._entries[path] for path in self._dirty if path in self._entries}
        with self._lock():
            merged = self._read()
            merged.update(mine)
            self._write(merged)
        self._dirty.clear()

    def forget(self, paths: Iterable[str]) -> None:
        """Drop entries (files removed by gc) from the index file."""
        if self.path is None:
            return
        gone = set(paths)
        with self._lock():
            entries = self._read()
            kept = {path: entry for path, entry in entries.items() if path not in gone}
            if len(kept) != len(entries):
                self._write(kept)
        if self._entries is not None:
            for path in gone:
                self._entries.pop(path, None)

    def _write(self, entries: dict[str, _Entry]) -> None:
        assert self.path is not None
        data = {
            "version": INDEX_VERSION,
            "files": {path: [*e.key, e.hashed_at, e.digest] for path, e in sorted(entries.items())},
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = runtime.open_temp(str(self.path.parent), "w")
        try:
            with handle:
                json.dump(data, handle, separators=(",", ":"))
            os.replace(temp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
