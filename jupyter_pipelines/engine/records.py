"""Durable small records (result records, cache entries) written on a background thread.

Each record is still written the safe way (temp file, fsync, rename), but fsync takes about half a millisecond
here and a step produces two records: done on the engine's thread that is a quarter of a trivial step's cost.
A writer thread (fsync releases the GIL) takes it off the critical path; the run ``close()``s the writer, which
waits for every record, before it writes ``summary.json``, so a finished run's records are all on disk.
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
        self._queue: queue.Queue[tuple[Path, Any] | None] = queue.Queue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name="jupyter-pipelines-records", daemon=True)
        self._thread.start()

    def submit(self, path: Path, data: Any) -> None:
        """Queue a record (``data`` must not change afterwards; callers pass freshly built dicts)."""
        self._queue.put((path, data))

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                if self._error is None:
                    write_json(*item)
            except BaseException as error:  # disk full, permissions: reported by close()
                self._error = error
            finally:
                self._queue.task_done()

    def close(self) -> None:
        """Wait until every queued record is on disk; raise StoreError if one could not be written."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        if self._error is not None:
            raise StoreError(f"could not write a run record: {self._error}") from self._error
