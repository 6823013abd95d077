"""A step's signature: one hash of everything that can change its result. The one signature function.

The signature is the hash of named *parts*, each a short string, kept beside the digest in result records and
cache entries so ``why`` can say which part changed:

- ``code``: the normalized-code digest (comments and whitespace do not count); a script step: the script's content;
- ``prelude:NAME``: each prelude part it uses (named by what it binds), by source;
- ``file:PATH``: each tracked ``%%writefile`` file it runs or reads, by content (the notebook's version);
- ``options``: executor, env, outputs, binds, script, last expression, cache expiry (and the kind, for a
  ``register`` step);
- ``param:NAME``: the type and full value of each parameter it reads (a script step reads them all);
- ``input:STEP.NAME``: the object hash of each input (objects are hashed by their full serialized bytes, so values
  that differ only in dtype, shape, index or column names differ);
- ``data:PATH``: content fingerprints of the data it reads: declared ``--inputs`` (files, or directories
  recursively), string literals of its code and prelude that name existing regular files, and string parameter
  values that do (a literal like ``"data/"`` naming a directory is not hashed: only declared inputs are trees);
- ``package:MODULE``: the installed version of each non-standard module imported, or a local module's content;
- ``python``: the interpreter version (it stands for every standard-library module too);
- ``image``: a ``--executor container`` step's image, by id (``sha256:...``), not by tag: a rebuilt image reruns
  the step. The options then also hold the executor's ``network`` (its resource limits do not change results).

Equal signatures mean the cached result can stand in for a rerun. Upstream outputs enter as object hashes, which
the scheduler knows only once the upstream step is done: so a rerun upstream step whose outputs hash the same
leaves its downstream signature, and so its cache hit, unchanged (early cut-off).
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..model import ParameterValue, Pipeline, Step
from . import packages
from .fileindex import FileIndex
from .redact import is_secret_name
from .runtime import new_hasher

SIGNATURE_VERSION = 2
MAX_SHOWN = 200  # longer values enter the signature as their hash (explanations then say "changed")


@dataclass(frozen=True)
class Signature:
    digest: str
    parts: dict[str, str] = field(default_factory=dict)


class SignatureContext:
    """What the signatures of one run share: the notebook directory, file fingerprints and package versions.

    Package versions are looked up once, for every module the run's steps import (``prepare``); file
    fingerprints are memoized by the index, so a file several steps read is hashed once per run.
    """

    def __init__(self, workdir: Path, files: FileIndex, packages_file: Path | None = None) -> None:
        self.workdir = Path(workdir)
        self.files = files
        self.packages_file = packages_file
        self.versions: dict[str, str] | None = None
        self._local: dict[str, str | None] = {}

    def prepare(self, steps: list[Step] | tuple[Step, ...]) -> None:
        """Look up the versions of everything these steps import (once per run)."""
        modules = {m for step in steps for m in step.modules if not packages.is_stdlib(m)}
        modules = {m for m in modules if self.local_module(m) is None}
        self.versions = packages.lookup_versions(modules, self.packages_file)

    def package(self, module: str) -> str:
        local = self.local_module(module)
        if local is not None:
            return local
        if self.versions is None:
            self.versions = {}
        if module not in self.versions:  # a step of another run's selection: look it up on its own
            self.versions.update(packages.lookup_versions([module], self.packages_file))
        return self.versions.get(module) or "not installed"

    def local_module(self, module: str) -> str | None:
        """``local <hash>`` for a module that is a file or package in the notebook directory (it shadows any
        installed one: steps run there), else None."""
        if module not in self._local:
            found = None
            for candidate in (self.workdir / f"{module}.py", self.workdir / module):
                if candidate.exists():
                    found = "local " + self.files.path_digest(str(candidate))
                    break
            self._local[module] = found
        return self._local[module]

    def resolve(self, path: str) -> str:
        return path if os.path.isabs(path) else os.path.normpath(os.path.join(self.workdir, path))


def _digest(text: str) -> str:
    hasher = new_hasher()
    hasher.update(text.encode("utf-8"))
    return str(hasher.hexdigest())


def _shown(value: str) -> str:
    return value if len(value) <= MAX_SHOWN else "hash:" + _digest(value)


def _file_digest(pipeline: Pipeline, path: str, context: SignatureContext) -> str:
    """A tracked file's content from the notebook, else the file on disk (or ``missing``)."""
    for tracked in pipeline.files:
        if tracked.path == path:
            return _digest(tracked.content)
    return context.files.path_digest(context.resolve(path))


def _prelude_names(pipeline: Pipeline, step: Step) -> dict[str, str]:
    named: dict[str, str] = {}
    for key in step.prelude:
        part = pipeline.prelude_part(key)
        name = ",".join(part.binds) or key
        while name in named:
            name += "'"
        named[name] = _digest(part.source)
    return named


def _data_parts(
    pipeline: Pipeline, step: Step, read: list[str], parameters: Mapping[str, ParameterValue], ctx: SignatureContext
) -> dict[str, str]:
    """Fingerprints of the data files the step reads: declared inputs, and literals/parameters naming files."""
    skip = {ctx.resolve(p) for p in step.files}
    if step.script is not None:
        skip.add(ctx.resolve(step.script))
    parts: dict[str, str] = {}
    for path in step.data_inputs:
        full = ctx.resolve(path)
        if full not in skip:
            skip.add(full)
            parts[f"data:{path}"] = ctx.files.path_digest(full)
    candidates = list(step.path_literals)
    candidates += [v for name in read if isinstance(v := parameters.get(name), str) and 0 < len(v) < 4096]
    for text in candidates:
        if "\0" in text:
            continue
        full = ctx.resolve(text)
        if full in skip:
            continue
        try:
            st = os.stat(full)
        except (OSError, ValueError):
            continue
        if not stat.S_ISREG(st.st_mode):
            continue
        skip.add(full)
        try:
            parts[f"data:{text}"] = ctx.files.file_digest(full, st)
        except OSError:
            parts[f"data:{text}"] = "unreadable"
    return parts


def step_signature(
    pipeline: Pipeline,
    step: Step,
    *,
    parameters: Mapping[str, ParameterValue],
    input_hashes: Mapping[str, str],
    context: SignatureContext,
    image_id: str | None = None,
) -> Signature:
    """The signature of ``step`` given the run's parameter values and its inputs' object hashes.

    ``input_hashes`` maps ``"<upstream>.<name>"`` to the object hash of each input the step consumes. Data files
    are fingerprinted as they are now: called again after the step ran, it gives the signature of the files as
    the step left them (see ``cache.Cache.save`` for why both are kept).
    """
    if step.script is not None:
        code = "script:" + _file_digest(pipeline, step.script, context)
        read = sorted(parameters)
    else:
        code = "digest:" + step.code_digest if step.code_digest else "code:" + _digest(step.code)
        read = sorted(step.parameters)
    options = {
        "executor": step.executor,
        # a secret-looking value is kept as its digest: the signature is stored in run records and cache entries
        "env": sorted((name, _digest(value) if is_secret_name(name) else value) for name, value in step.env),
        "outputs": list(step.outputs),
        "binds": list(step.binds),
        "script": step.script,
        "last_expression": step.last_expression,
        "cache_expire_after": step.cache.expire_after,
    }
    if step.kind == "register":  # its run records a model version: only a register step's result may stand in
        options["kind"] = step.kind
    if step.executor == "container":
        options["network"] = step.network
    parts: dict[str, str] = {"version": str(SIGNATURE_VERSION), "code": code, "python": packages.python_version()}
    parts["options"] = json.dumps(options, sort_keys=True, separators=(",", ":"))
    for name, digest in _prelude_names(pipeline, step).items():
        parts[f"prelude:{name}"] = digest
    for path in sorted(step.files):
        parts[f"file:{path}"] = _file_digest(pipeline, path, context)
    for name in read:
        if name in parameters:
            value = parameters[name]
            parts[f"param:{name}"] = _shown(f"{type(value).__name__} {json.dumps(value)}")
    for key, value in input_hashes.items():
        parts[f"input:{key}"] = value
    parts.update(_data_parts(pipeline, step, read, parameters, context))
    for module in step.modules:
        if not packages.is_stdlib(module):
            parts[f"package:{module}"] = context.package(module)
    if step.executor == "container":
        parts["image"] = image_id or "unknown"
    hasher = new_hasher()
    hasher.update(json.dumps(parts, sort_keys=True, separators=(",", ":")).encode("utf-8"))
    return Signature(str(hasher.hexdigest()), parts)
