"""Small records (result records, cache entries) written on a background thread, in the order submitted.

Each record is written the safe way (temp file, rename; cache entries also fsynced, as later runs trust them to
skip work), but that costs 50-500 microseconds a record: on the engine's thread that would be a large part of a
trivial step's cost. A writer thread (file I/O releases the GIL) takes it off the critical path; being one FIFO
thread, a step's result record is on disk before its cache entry. The run ``close()``s the writer, which waits for
every record, before it writes ``summary.json``, so a finished run's records are all on disk.
"""

from __future__ import annotations

import queue
import threading
from pathlib import Path
from typing import Any

from ..errors import StoreError
from .store import write_json


class RecordWriter:
    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[Path | str, Any, bool] | None] = queue.Queue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name="jupyter-pipelines-records", daemon=True)
        self._thread.start()

    def submit(self, path: Path | str, data: Any, fsync: bool = True) -> None:
        """Queue a record (``data`` must not change afterwards; callers pass freshly built dicts)."""
        self._queue.put((path, data, fsync))

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                if self._error is None:
                    path, data, fsync = item
                    write_json(path, data, fsync=fsync)
            except BaseException as error:  # disk full, permissions: reported by close()
                self._error = error
            finally:
                self._queue.task_done()

    def close(self) -> None:
        """Wait until every queued record is on disk; raise StoreError if one could not be written."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        if isinstance(self._error, StoreError):
            raise self._error
        if self._error is not None:
            raise StoreError(f"could not write a run record: {self._error}") from self._error
