"""A step's signature: one hash of everything that can change its result. The one signature function.

Inputs to the hash: the normalized code digest (a script step: the script's content), the prelude sources the step
uses, the contents of its tracked files, its executor/env/outputs options, the values of the parameters it reads
and the object hashes of its inputs. Equal signatures mean the cached result can stand in for a rerun.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path

from ..model import ParameterValue, Pipeline, Step
from .runtime import new_hasher

SIGNATURE_VERSION = 1


def _content_digest(text: str | bytes) -> str:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _file_digest(pipeline: Pipeline, path: str, workdir: Path) -> str:
    """A tracked file's content from the notebook, else the file on disk (or ``missing``)."""
    for tracked in pipeline.files:
        if tracked.path == path:
            return _content_digest(tracked.content)
    try:
        return _content_digest((workdir / path).read_bytes())
    except OSError:
        return "missing"


def step_signature(
    pipeline: Pipeline,
    step: Step,
    *,
    parameters: Mapping[str, ParameterValue],
    input_hashes: Mapping[str, str],
    workdir: Path,
) -> str:
    """Hash the step's code, prelude, tracked files, options, parameter values read and input object hashes.

    ``parameters`` are the run's values; only those the step reads count (a script step reads all of them).
    ``input_hashes`` maps ``"<upstream>.<name>"`` to the object hash of each input the step consumes.
    """
    if step.script is not None:
        code = "script:" + _file_digest(pipeline, step.script, workdir)
        read = sorted(parameters)
    else:
        code = "digest:" + step.code_digest if step.code_digest else "code:" + _content_digest(step.code)
        read = sorted(step.parameters)
    parts = {
        "version": SIGNATURE_VERSION,
        "code": code,
        "prelude": [pipeline.prelude_part(key).source for key in step.prelude],
        "files": {path: _file_digest(pipeline, path, workdir) for path in sorted(step.files)},
        "options": {
            "executor": step.executor,
            "env": sorted(step.env),
            "outputs": list(step.outputs),
            "binds": list(step.binds),
            "script": step.script,
            "last_expression": step.last_expression,
        },
        "parameters": {name: [type(parameters[name]).__name__, parameters[name]] for name in read},
        "inputs": dict(sorted(input_hashes.items())),
    }
    hasher = new_hasher()
    hasher.update(json.dumps(parts, sort_keys=True, default=str).encode("utf-8"))
    return str(hasher.hexdigest())
