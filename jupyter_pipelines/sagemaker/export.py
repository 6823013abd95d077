"""The pipeline model to a SageMaker pipeline definition (schema ``2020-12-01``) plus its code bundles.

Deterministic: the same pipeline and settings give byte-identical files (no timestamps, no generated job names,
content-addressed code), so re-promoting an unchanged pipeline keeps SageMaker's step cache valid. What SageMaker
would reject is an :class:`ExportError` here, before anything is uploaded.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..engine.fileindex import FileIndex
from ..model import Parameter, Pipeline, Step
from .bundles import Bundle, Mode, make_bundle, write_bundles
from .config import MAX_DEFINITION_BYTES, ExportConfig, Settings, check_sagemaker_name, resolve_config
from .data import DataLocation, data_index, data_location
from .errors import ExportError
from .plan import Plan, plan_pipeline
from .steps import Context, condition_step, step_definition
from .validate import definition_problems

__all__ = ["ExportConfig", "ExportError", "Exported", "build_definition", "export_pipeline"]

Json = Any
_TYPES = {"str": "String", "int": "Integer", "float": "Float", "bool": "Boolean"}
_MODES: dict[str, Mode] = {"processing": "processing", "training": "training", "model": "serving",
                           "register": "serving"}  # fmt: skip
_MAX_STRING = 4096


@dataclass(frozen=True)
class Exported:
    """A definition and its bundles, in memory: what :func:`export_pipeline` writes (and promotion uploads)."""

    settings: Settings
    definition: Json
    bundles: dict[str, Bundle]  # step name -> its code bundle
    data: Mapping[str, DataLocation] = field(default_factory=dict)  # a declared --inputs path -> where it goes

    @property
    def text(self) -> str:
        return json.dumps(self.definition, indent=2, ensure_ascii=False) + "\n"


def _parameter(parameter: Parameter) -> Json:
    check_sagemaker_name(parameter.name, "parameter")
    value = parameter.default
    if isinstance(value, str) and not value:
        raise ExportError(
            f"parameter {parameter.name!r} has an empty default value, which SageMaker rejects.",
            hint=f'Give it a value in the %%parameters cell, e.g. {parameter.name}: str = "none".',
        )
    if isinstance(value, str) and len(value) > _MAX_STRING:
        raise ExportError(f"parameter {parameter.name!r}: its default is longer than {_MAX_STRING} characters.")
    if isinstance(value, float) and not math.isfinite(value):
        raise ExportError(f"parameter {parameter.name!r}: its default {value} is not a finite number.")
    return {"Name": parameter.name, "Type": _TYPES[parameter.type], "DefaultValue": value}


def _check_parameters(pipeline: Pipeline) -> None:
    seen: dict[str, str] = {}
    for parameter in pipeline.parameters:
        other = seen.setdefault(parameter.name.upper(), parameter.name)
        if other != parameter.name:
            raise ExportError(
                f"parameters {other!r} and {parameter.name!r} differ only in case; steps receive both as the "
                f"environment variable JP_PARAM_{parameter.name.upper()}.",
                hint="Rename one of them.",
            )


def _bundles(pipeline: Pipeline, plan: Plan, settings: Settings) -> dict[str, Bundle]:
    bundles = {}
    for step in pipeline.steps:
        mode = _MODES.get(step.kind)
        if mode is not None:
            properties = plan.properties.get(step.name, ())
            bundles[step.name] = make_bundle(pipeline, step, mode, properties, settings.source_dir)
    return bundles


_DATA_KINDS = ("processing", "training")


def _data_problem(step: Step, path: str, full: Path) -> str | None:
    """Why a declared ``--inputs`` path cannot become a job input (None: it can)."""
    if step.kind not in _DATA_KINDS:
        return f"a --kind {step.kind} step has no job that could receive it"
    if os.path.isabs(path):
        return (
            "an absolute path, which a SageMaker job cannot make appear at the same place (the job links its inputs "
            "only inside its own working directory)"
        )
    if not full.exists():
        return f"there is no such file or directory ({full})"
    if full.is_dir() and not any(p.is_file() for p in full.rglob("*")):
        return "an empty directory, which a SageMaker job cannot download"
    return None


def _data_error(step: Step, path: str, problem: str) -> ExportError:
    where = f"step {step.name!r} (cell {step.cell_index + 1})"
    if step.kind not in _DATA_KINDS:
        hint = "Read the data in an upstream processing step and pass the values on."
    elif os.path.isabs(path):
        hint = (
            f"Put the data (or a symlink to it) inside the notebook directory and declare it relative, e.g. --inputs "
            f"data/{Path(path).name}."
        )
    else:
        hint = "Create it, or fix the path in --inputs (relative to the notebook directory)."
    return ExportError(f"{where} declares --inputs {path}: {problem}.", hint=hint)


def _data_locations(pipeline: Pipeline, settings: Settings) -> dict[str, DataLocation]:
    """Where each declared ``--inputs`` path goes in S3, content-addressed as promotion uploads it."""
    source_dir = settings.source_dir or Path.cwd()
    locations: dict[str, DataLocation] = {}
    index: FileIndex | None = None
    for step in pipeline.steps:
        for path in step.data_inputs:
            full = Path(os.path.abspath(source_dir / path))  # not resolved: the declared name is kept
            problem = _data_problem(step, path, full)
            if problem is not None:
                raise _data_error(step, path, problem)
            if path not in locations:
                index = index or data_index(settings.source_dir)
                locations[path] = data_location(full, settings.prefix, index)
    return locations


def build_definition(pipeline: Pipeline, config: ExportConfig) -> Exported:
    """The definition and bundles in memory, checked; ExportError for anything SageMaker would reject."""
    if not pipeline.steps:
        raise ExportError(
            f"pipeline {pipeline.name!r} has no steps to export.", hint="Start a cell with %%step NAME."
        )
    settings = resolve_config(config, pipeline.name)
    _check_parameters(pipeline)
    plan = plan_pipeline(pipeline)
    data = _data_locations(pipeline, settings)
    bundles = _bundles(pipeline, plan, settings)
    ctx = Context(pipeline, plan, settings, bundles, data)
    steps: list[Json] = []
    emitted: set[str] = set()
    branches = {branch.name: branch for branch in plan.branches}
    for step in pipeline.steps:
        branch = plan.branch_of.get(step.name)
        if branch is None:
            steps.append(step_definition(ctx, step))
        elif branch not in emitted:
            emitted.add(branch)
            steps.append(condition_step(ctx, branches[branch]))
    definition = {
        "Version": "2020-12-01",
        "Metadata": {},
        "Parameters": [_parameter(p) for p in pipeline.parameters],
        "PipelineExperimentConfig": {
            "ExperimentName": {"Get": "Execution.PipelineName"},
            "TrialName": {"Get": "Execution.PipelineExecutionId"},
        },
        "Steps": steps,
    }
    problems = definition_problems(definition)
    if problems:  # a bug here, not the user's: say so plainly
        raise ExportError(
            "the exported definition is not valid (a bug in jupyter-pipelines): " + "; ".join(problems[:5]),
            hint="Please report it with the notebook.",
        )
    exported = Exported(settings, definition, bundles, data)
    size = len(exported.text.encode("utf-8"))
    if size > MAX_DEFINITION_BYTES:
        raise ExportError(
            f"the definition is {size} bytes, over SageMaker's limit of {MAX_DEFINITION_BYTES} (1 MB).",
            hint="Split the pipeline, or move long --else-fail messages and parameter defaults into code.",
        )
    return exported


def export_pipeline(pipeline: Pipeline, config: ExportConfig, out_dir: Path) -> Path:
    """Write ``<out_dir>/<name>.json`` and ``<out_dir>/<name>.bundles/<key>/...`` (exactly what promotion uploads
    to ``s3://BUCKET/PREFIX/code/<key>/...``); returns the JSON's path. Raises ExportError."""
    exported = build_definition(pipeline, config)
    name = exported.settings.pipeline_name
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        write_bundles({b.key: b for b in exported.bundles.values()}, out_dir / f"{name}.bundles")
        target = out_dir / f"{name}.json"
        temp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        temp.write_text(exported.text, encoding="utf-8")
        os.replace(temp, target)
    except OSError as error:
        raise ExportError(
            f"cannot write the export to {out_dir}: {error.strerror or error}.", hint="Check the directory."
        ) from None
    return target
