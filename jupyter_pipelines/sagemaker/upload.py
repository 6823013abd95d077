"""Content-addressed uploads: the code bundles and the local files parameters point at, each object once.

Code goes to ``s3://BUCKET/PREFIX/code/<bundle key>/<file>`` (the URIs the definition already names), data (files
parameters name, and the steps' ``--inputs``) to ``s3://BUCKET/PREFIX/data/<hash>/<name>`` (a directory:
``.../<hash>/<name>/<files>``), addressed by ``data.py``. Every object carries its
SHA-256 as the metadata ``sha256``; an object already there with the same hash is skipped after one
``head_object``, so promoting an unchanged pipeline again uploads nothing.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..engine.fileindex import FileIndex
from ..model import Pipeline
from .data import Blob, data_index, data_location
from .data import key as _key
from .export import Exported

__all__ = ["Blob", "LocalData", "Uploaded", "code_blobs", "input_blobs", "local_data", "upload_blobs"]

Progress = Callable[[str], None]
BIG = 8 * 1024 * 1024  # from here on a file goes up in parts (s3transfer) with progress lines
_HASH_META = "sha256"
_WORKERS = 8


@dataclass(frozen=True)
class LocalData:
    """A str parameter whose default (or, ``override``, whose value for this execution) names a local file or
    directory, and where it goes in S3."""

    parameter: str
    path: Path
    uri: str
    blobs: tuple[Blob, ...]
    override: bool = False


@dataclass
class Uploaded:
    """What an upload did; thread-safe, and readable when an upload failed half-way."""

    bucket: str
    keys: list[str] = field(default_factory=list)
    skipped: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, key: str | None) -> None:
        with self._lock:
            if key is None:
                self.skipped += 1
            else:
                self.keys.append(key)

    def text(self) -> str:
        n = len(self.keys)
        where = f" to s3://{self.bucket}/" if n else ""
        skipped = f" ({self.skipped} already there)" if self.skipped else ""
        return f"uploaded {n} object{'' if n == 1 else 's'}{where}{skipped}"


def code_blobs(exported: Exported) -> list[Blob]:
    """Every file of every bundle, once (steps with the same code share a bundle)."""
    prefix = exported.settings.prefix
    blobs: dict[str, Blob] = {}
    for bundle in exported.bundles.values():
        for name, content in bundle.files.items():
            key = _key(prefix, "code", bundle.key, name)
            blobs[key] = Blob(key, hashlib.sha256(content).hexdigest(), len(content), data=content)
    return [blobs[key] for key in sorted(blobs)]


def _local_path(value: str, source_dir: Path) -> Path | None:
    if not value or "://" in value or "\n" in value or len(value) > 1024:
        return None
    path = Path(value).expanduser()
    path = path if path.is_absolute() else source_dir / path
    try:
        if path.exists() and path.resolve().name and path.resolve() != source_dir.resolve():
            return path.resolve()
    except OSError:
        return None
    return None


def local_data(
    pipeline: Pipeline, exported: Exported, source_dir: Path, overrides: Mapping[str, str] | None = None
) -> list[LocalData]:
    """The str parameters whose defaults, or values given for this execution (``overrides``), name an existing
    file or directory (relative to the notebook's directory), each with the objects it becomes under
    ``data/<hash>/``."""
    settings = exported.settings
    found = []
    index: FileIndex | None = None
    for parameter in pipeline.parameters:
        if parameter.type != "str" or not isinstance(parameter.default, str):
            continue
        values = [(parameter.default, False)]
        if overrides and parameter.name in overrides:
            values.append((overrides[parameter.name], True))
        for value, override in values:
            path = _local_path(value, source_dir)
            if path is None:
                continue
            if index is None:
                index = data_index(source_dir)
            location = data_location(path, settings.prefix, index)
            found.append(LocalData(parameter.name, path, location.uri(settings.bucket), location.blobs, override))
    return found


def input_blobs(exported: Exported) -> list[Blob]:
    """The objects of the steps' declared ``--inputs``, as the export addressed them."""
    return [blob for location in exported.data.values() for blob in location.blobs]


def _already_there(s3: Any, bucket: str, blob: Blob) -> bool:
    from botocore.exceptions import ClientError

    try:
        head = s3.head_object(Bucket=bucket, Key=blob.key)
    except ClientError as error:
        if error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
            return False
        raise
    return bool(head.get("Metadata", {}).get(_HASH_META) == blob.digest)


def _progress_callback(blob: Blob, bucket: str, progress: Progress) -> Callable[[int], None]:
    sent = 0
    reported = 0

    def callback(amount: int) -> None:
        nonlocal sent, reported
        sent += amount
        quarter = sent * 4 // max(blob.size, 1)
        if quarter > reported:
            reported = quarter
            progress(f"  … s3://{bucket}/{blob.key}: {min(100, quarter * 25)}% of {blob.size / 1e6:.1f} MB")

    return callback


def _put(s3: Any, bucket: str, blob: Blob, progress: Progress | None) -> None:
    from boto3.exceptions import S3UploadFailedError
    from botocore.exceptions import ClientError

    metadata = {_HASH_META: blob.digest}
    if blob.data is not None:
        s3.put_object(Bucket=bucket, Key=blob.key, Body=blob.data, Metadata=metadata)
        return
    assert blob.path is not None
    if blob.size < BIG:
        with open(blob.path, "rb") as handle:
            s3.put_object(Bucket=bucket, Key=blob.key, Body=handle, Metadata=metadata)
        return
    callback = _progress_callback(blob, bucket, progress) if progress is not None else None
    try:
        s3.upload_file(str(blob.path), bucket, blob.key, ExtraArgs={"Metadata": metadata}, Callback=callback)
    except S3UploadFailedError as error:  # s3transfer wraps the ClientError: give the translator the real one
        cause = error.__context__
        raise (cause if isinstance(cause, ClientError) else error) from None


def upload_blobs(
    s3: Any, bucket: str, blobs: Sequence[Blob], uploaded: Uploaded, progress: Progress | None = None
) -> Uploaded:
    """Upload what is not already there (checked in parallel); ``uploaded`` records each object as it is done,
    so after a failure it still says what went up. Re-raises the first botocore error."""
    if progress is not None:
        progress = _one_line_at_a_time(progress)

    def one(blob: Blob) -> None:
        if _already_there(s3, bucket, blob):
            uploaded.add(None)
            return
        if progress is not None:
            progress(f"  ↑ s3://{bucket}/{blob.key} ({_size(blob.size)})")
        _put(s3, bucket, blob, progress)
        uploaded.add(blob.key)

    with ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="jp-upload") as pool:
        futures = [pool.submit(one, blob) for blob in blobs]
    _first_error([f.exception() for f in futures])
    return uploaded


def _one_line_at_a_time(progress: Progress) -> Progress:
    """The uploads run on several threads: one progress line must not break into another one's (a ``print`` is two
    writes, the line and its newline)."""
    lock = threading.Lock()

    def say(line: str) -> None:
        with lock:
            progress(line)

    return say


def _first_error(errors: Iterable[BaseException | None]) -> None:
    for error in errors:
        if error is not None:
            raise error


def _size(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 100_000 else f"{size / 1e3:.1f} kB"
