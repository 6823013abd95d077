"""Code bundles: what each step runs on SageMaker, content-addressed so an unchanged step keeps its S3 key.

A bundle is uploaded as it is to ``s3://BUCKET/PREFIX/code/<key>/``; ``<key>`` is a hash of its files, so the
definition changes only when the code does and SageMaker's step cache stays valid. A processing step's bundle is
loose files (mounted at ``/opt/ml/processing/input/code``); training and model steps get one deterministic
``sourcedir.tar.gz`` (script mode's ``sagemaker_submit_directory``). Inside: the entry (``entry.py``, and
``inference.py`` for serving), the engine's ``runtime.py`` unchanged, cloudpickle's pure-Python source copied from
the installed package, ``step.json`` and the tracked files the step uses under ``src/``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import posixpath
import shutil
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

from ..authoring.conditions import value_refs
from ..errors import ContainerError
from ..model import Pipeline, Step, StepInput
from .errors import ExportError

__all__ = [
    "ARCHIVE", "Bundle", "Mode", "code_inputs", "data_input_name", "data_inputs_spec", "local_job_files",
    "make_bundle", "step_spec", "write_bundles",
]  # fmt: skip

Mode = Literal["processing", "training", "serving"]
ARCHIVE = "sourcedir.tar.gz"
_HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Bundle:
    key: str  # hash of the files: the S3 "directory" name
    files: Mapping[str, bytes]  # relative path -> content, exactly what is uploaded

    def uri(self, bucket: str, prefix: str, name: str = "") -> str:
        return "s3://" + "/".join(part for part in (bucket, prefix, "code", self.key, name) if part)


@cache
def _package_sources() -> tuple[tuple[str, bytes], ...]:
    """The files every bundle carries: the entries, the runtime and cloudpickle (pure Python)."""
    from ..engine import runtime

    files = [
        ("entry.py", (_HERE / "entry.py").read_bytes()),
        ("inference.py", (_HERE / "inference.py").read_bytes()),
        ("runtime.py", Path(runtime.__file__).read_bytes()),
    ]
    try:
        import cloudpickle
    except ImportError:  # pragma: no cover - cloudpickle is a dependency of the package
        return tuple(files)
    package = Path(cloudpickle.__file__).resolve().parent
    files += [(f"cloudpickle/{path.name}", path.read_bytes()) for path in sorted(package.glob("*.py"))]
    return tuple(files)


def code_inputs(step: Step) -> tuple[StepInput, ...]:
    """The inputs a model, register or transform step's job gets: not those only its ``--when`` reads (SageMaker
    judges the condition before the step, from the upstream step's property file). Other kinds get them all."""
    if step.kind in ("processing", "training") or step.condition is None:
        return step.inputs
    judged = {ref.name for ref in value_refs(step.condition)}
    return tuple(item for item in step.inputs if item.name not in judged)


def data_input_name(index: int) -> str:
    """The job input (processing input, training channel) the step's ``index``-th ``--inputs`` path arrives in:
    ``/opt/ml/processing/input/data-<index>/<name>`` (training: ``/opt/ml/input/data/data-<index>/<name>``)."""
    return f"data-{index}"


def data_inputs_spec(step: Step) -> list[dict[str, str]]:
    """For ``step.json``: each declared path, the job input it arrives in and its name there (the entry links the
    path, in the job's working directory, to it)."""
    return [
        {"path": path, "input": data_input_name(index), "name": posixpath.basename(path)}
        for index, path in enumerate(step.data_inputs)
    ]


def step_spec(pipeline: Pipeline, step: Step, mode: Mode, properties: tuple[str, ...]) -> dict[str, Any]:
    """``step.json``: everything the entry needs to run the step (never a setting, never a secret)."""
    types = {p.name: p.type for p in pipeline.parameters}
    needed = sorted({i.name for other in pipeline.steps for i in other.inputs if i.step == step.name})
    script_upstreams = sorted({u for u in step.upstream if pipeline.step(u).script is not None})
    spec = {
        "step": step.name,
        "mode": mode,
        "code": step.code,
        "code_line": step.code_line,
        "last_expression": step.last_expression,
        "prelude": [
            {"key": key, "source": pipeline.prelude_part(key).source, "line": pipeline.prelude_part(key).line}
            for key in step.prelude
        ],
        "binds": list(step.binds),
        "outputs": list(step.outputs),
        "needed": needed,
        "parameters": {name: types[name] for name in step.parameters},
        "inputs": {item.name: item.step for item in code_inputs(step)},
        "script_upstreams": script_upstreams,
        "script": step.script,
        "upstream": list(step.upstream),
        "properties": list(properties),
        "requirements": step.requirements is not None,
    }
    if step.data_inputs:  # only then: the bundles (and keys) of steps without --inputs stay as they were
        spec["data_inputs"] = data_inputs_spec(step)
    return spec


def _requirements(pipeline: Pipeline, step: Step, source_dir: Path | None) -> bytes:
    assert step.requirements is not None
    try:
        return pipeline.file(step.requirements).content.encode("utf-8")
    except KeyError:
        pass
    reason = "no notebook directory was given to read it from"
    if source_dir is not None:
        try:
            return (source_dir / step.requirements).read_bytes()
        except OSError as error:
            reason = error.strerror or str(error)
    raise ExportError(
        f"step {step.name!r}: cannot read --requirements {step.requirements}: {reason}.",
        hint="Write it with a %%writefile cell, or export from the notebook's directory.",
    )


def _hash(files: Mapping[str, bytes]) -> str:
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(path.encode("utf-8") + b"\0" + hashlib.sha256(files[path]).digest())
    return digest.hexdigest()[:32]


def _tar_gz(files: Mapping[str, bytes]) -> bytes:
    """A byte-identical archive for the same files: sorted, no times, owners or modes from the disk."""
    raw = io.BytesIO()
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as compressed,
        tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for path in sorted(files):
            info = tarfile.TarInfo(path)
            info.size = len(files[path])
            info.mtime = 0
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(files[path]))
    return raw.getvalue()


def make_bundle(
    pipeline: Pipeline, step: Step, mode: Mode, properties: tuple[str, ...], source_dir: Path | None
) -> Bundle:
    files: dict[str, bytes] = dict(_package_sources())
    if mode != "serving":
        del files["inference.py"]
    spec = step_spec(pipeline, step, mode, properties)
    files["step.json"] = (json.dumps(spec, indent=1, sort_keys=True) + "\n").encode("utf-8")
    for path in step.files:
        files[f"src/{path}"] = pipeline.file(path).content.encode("utf-8")
    if step.requirements is not None:
        files["step-requirements.txt"] = _requirements(pipeline, step, source_dir)
    if mode != "processing":
        files = {ARCHIVE: _tar_gz(files)}
    return Bundle(_hash(files), files)


def local_job_files(pipeline: Pipeline, step: Step, workdir: Path) -> dict[str, bytes]:
    """The files a ``--executor container`` step runs: its processing bundle, loose (a training step's too: the
    container executor lays channels out itself), with a script that is a file on disk rather than a
    ``%%writefile`` cell added, and the ``step.json`` of its job's mode."""
    mode: Mode = "training" if step.kind == "training" else "processing"
    files = dict(make_bundle(pipeline, step, "processing", (), workdir).files)
    if step.script is not None and f"src/{step.script}" not in files:
        try:
            files[f"src/{step.script}"] = (workdir / step.script).read_bytes()
        except OSError as error:
            raise ContainerError(
                f"step {step.name!r}: cannot read its script {step.script}: {error.strerror or error}."
            ) from None
    files["step.json"] = (json.dumps(step_spec(pipeline, step, mode, ()), sort_keys=True) + "\n").encode("utf-8")
    return files


def write_bundles(bundles: Mapping[str, Bundle], directory: Path) -> None:
    """Replace ``directory`` with exactly these bundles (``<key>/<files>``): written beside, then swapped in."""
    temp = directory.with_name(f"{directory.name}.tmp-{os.getpid()}")
    shutil.rmtree(temp, ignore_errors=True)
    for bundle in bundles.values():
        for path, content in bundle.files.items():
            target = temp / bundle.key / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
    temp.mkdir(parents=True, exist_ok=True)
    old = directory.with_name(f"{directory.name}.old-{os.getpid()}")
    if directory.exists():
        directory.rename(old)
    temp.rename(directory)
    shutil.rmtree(old, ignore_errors=True)
