"""Turn a model step plus its upstream results into the JSON spec the step runtime executes.

The runtime never sees the model: only code, prelude sources, parameter values, input object refs, the names it
must output and where to write. That keeps it stdlib-only and runnable anywhere (a forked child, a container, a
SageMaker job).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..errors import ContainerError
from ..model import ParameterValue, Pipeline, Step
from .runs import ObjectRef, StepResult


class InputProblem(Exception):
    """An input a step reads is not available (the upstream did not output it): the step fails, unrun."""


def needed_outputs(pipeline: Pipeline, executor_of: Callable[[Step], str]) -> dict[str, set[str]]:
    """For each step, the output names some other step loads from the store (kernel->kernel stays in memory)."""
    needed: dict[str, set[str]] = {step.name: set() for step in pipeline.steps}
    names = set(needed)
    for step in pipeline.steps:
        for item in step.inputs:
            if item.step not in names:
                continue
            upstream = pipeline.step(item.step)
            if executor_of(step) != "kernel" or executor_of(upstream) != "kernel":
                needed[item.step].add(item.name)
    return needed


def resolve_inputs(
    step: Step, results: Mapping[str, StepResult], *, in_kernel: Callable[[str], bool]
) -> tuple[dict[str, ObjectRef], dict[str, str] | None]:
    """The refs to load for each name the step reads, and the input hashes for its signature.

    ``in_kernel(upstream)`` says whether an upstream value already lives in the kernel namespace (kernel step
    downstream of a kernel step): it is then not loaded. Hashes are None when some input has no stored object
    (so the step cannot be cached).
    """
    refs: dict[str, ObjectRef] = {}
    hashes: dict[str, str] | None = {}
    for item in step.inputs:
        upstream = results[item.step]
        ref = upstream.outputs.get(item.name)
        if ref is None:
            if item.name in upstream.unsaved and in_kernel(item.step):
                hashes = None
                continue
            raise InputProblem(
                f"step {step.name!r} reads {item.name!r} from step {item.step!r}, which did not output it"
            )
        if hashes is not None:
            hashes[f"{item.step}.{item.name}"] = ref.hash
        if not in_kernel(item.step):
            refs[item.name] = ref
    read = {item.step for item in step.inputs}
    for name in step.upstream:
        if name in read and step.script is None:
            continue
        for output, ref in results[name].outputs.items():  # --after (and script) edges: everything upstream made
            if hashes is not None:
                hashes[f"{name}.{output}"] = ref.hash
    return refs, hashes


def cell_spec(
    pipeline: Pipeline,
    step: Step,
    *,
    parameters: Mapping[str, ParameterValue],
    inputs: Mapping[str, ObjectRef],
    needed: set[str],
    store_root: Path,
    result_path: Path,
    workdir: Path,
    executor: str,
) -> dict[str, Any]:
    return {
        "kind": "cell",
        "step": step.name,
        "code": step.code,
        "code_line": step.code_line,
        "last_expression": step.last_expression,
        "prelude": [_prelude(pipeline, key) for key in step.prelude],
        "parameters": {name: parameters[name] for name in step.parameters if name in parameters},
        "inputs": {name: ref.to_dict() for name, ref in inputs.items()},
        "binds": list(step.binds),
        "outputs": list(step.outputs),
        "needed": sorted(needed),
        "executor": executor,
        "env": dict(step.env),
        "store": str(store_root),
        "result_path": str(result_path),
        "workdir": str(workdir),
    }


def script_spec(
    step: Step,
    *,
    parameters: Mapping[str, ParameterValue],
    results: Mapping[str, StepResult],
    store_root: Path,
    result_path: Path,
    work_dir: Path,
    workdir: Path,
) -> dict[str, Any]:
    return {
        "kind": "script",
        "step": step.name,
        "script": step.script,
        "parameters": dict(parameters),
        "input_dirs": {
            name: {output: ref.to_dict() for output, ref in results[name].outputs.items()} for name in step.upstream
        },
        "env": dict(step.env),
        "store": str(store_root),
        "result_path": str(result_path),
        "work_dir": str(work_dir),
        "workdir": str(workdir),
    }


def container_spec(
    pipeline: Pipeline,
    step: Step,
    *,
    parameters: Mapping[str, ParameterValue],
    results: Mapping[str, StepResult],
    store_root: Path,
    result_path: Path,
    work_dir: Path,
    workdir: Path,
    image_id: str,
    files: dict[str, bytes],
) -> dict[str, Any]:
    """A ``--executor container`` step: its job bundle ``files`` (the SageMaker job's: ``entry.py``, the runtime,
    ``step.json``, tracked files), its upstream outputs, parameters and limits; ``engine/containers.py`` lays them
    out under /opt/ml."""
    mode = "training" if step.kind == "training" else "processing"
    data_inputs = json.loads(files["step.json"]).get("data_inputs", [])  # [{path, input, name}], as the export has
    for item in data_inputs:
        if item["input"] in step.upstream:  # both would mount at /opt/ml/processing/input/<that name>
            raise ContainerError(
                f"step {step.name!r} reads from a step named {item['input']!r}, the job input its --inputs "
                f"{item['path']} arrives in.",
                hint=f"Rename step {item['input']!r}.",
            )
    names = step.parameters if step.script is None else tuple(parameters)
    values = {name: parameters[name] for name in names if name in parameters}
    return {
        "kind": "container",
        "step": step.name,
        "mode": mode,
        "script": step.script is not None,
        "image": step.local_image or step.image,
        "image_id": image_id,
        "cpus": step.cpus,
        "memory": step.memory,
        "network": step.network,
        "bundle": files,
        "parameters": values,
        "input_dirs": {
            name: {output: ref.to_dict() for output, ref in results[name].outputs.items()} for name in step.upstream
        },
        "data_inputs": [  # mounted read-only where the job input would put it; the entry links the declared path
            {"host": os.path.abspath(workdir / item["path"]), "input": item["input"], "name": item["name"]}
            for item in data_inputs
        ],
        "env": dict(step.env),
        "store": str(store_root),
        "result_path": str(result_path),
        "work_dir": str(work_dir),
    }


def _prelude(pipeline: Pipeline, key: str) -> dict[str, Any]:
    part = pipeline.prelude_part(key)
    return {"key": key, "source": part.source, "line": part.line}
