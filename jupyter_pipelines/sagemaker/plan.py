"""How the pipeline's steps map onto SageMaker's: exported names, condition branches, property files.

SageMaker has no per-step condition: a ``ConditionStep`` runs its ``IfSteps`` or its ``ElseSteps``. So every step
with a ``--when`` goes into the ``IfSteps`` of the one condition step shared by equal conditions, and so does every
step downstream of it (locally those are skipped too when the condition is false). SageMaker cannot nest that, so
a step under two different conditions is an error here. A condition's values come from a property file, a JSON
file a processing step writes next to its outputs: each such step lists the names it must write there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..authoring.conditions import value_refs
from ..model import Condition, Pipeline, Step
from .config import check_sagemaker_name
from .errors import ExportError

__all__ = ["Branch", "Plan", "json_path", "plan_pipeline"]

_SUFFIX = {"model": "-CreateModel", "register": "-RegisterModel"}  # as the SDK names a ModelStep's sub-steps
_JSON_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Branch:
    """One condition step: its condition, the steps of its ``IfSteps`` (run order) and its optional fail step."""

    name: str
    condition: Condition
    text: str
    steps: tuple[str, ...]
    fail_step: str | None
    else_fail: str | None


@dataclass(frozen=True)
class Plan:
    exported: dict[str, str]  # step name -> name in the definition
    branch_of: dict[str, str]  # step name -> the condition step whose IfSteps hold it
    branches: tuple[Branch, ...]  # in the order their first step runs
    properties: dict[str, tuple[str, ...]]  # processing step -> names it writes to its property file


def _where(step: Step) -> str:
    return f"step {step.name!r} (cell {step.cell_index + 1})"


def json_path(name: str, path: tuple[str | int, ...], where: str) -> str:
    """``report['a'][0]`` -> ``report.a[0]``: the ``Path`` of a ``Std:JsonGet`` into the property file."""
    text = name
    for key in path:
        if isinstance(key, int):
            text += f"[{key}]"
        elif _JSON_KEY.fullmatch(key):
            text += f".{key}"
        else:
            raise ExportError(
                f"{where}: --when reads {name}[...][{key!r}], a key SageMaker's JSON paths cannot name.",
                hint="Use keys made of letters, digits and '_' (not starting with a digit).",
            )
    return text


def _branch_of(step: Step, placed: dict[str, str]) -> str | None:
    inherited = sorted({placed[u] for u in step.upstream if u in placed})
    if step.condition is not None and step.condition_step is not None:
        own = step.condition_step
        inside = [u for u in sorted({r.step for r in value_refs(step.condition)}) if u in placed]
        if inside:
            raise ExportError(
                f"{_where(step)}: its --when reads step {inside[0]!r}, which itself runs under the condition "
                f"step {placed[inside[0]]!r}; SageMaker cannot nest condition steps.",
                hint="Read the value from a step that runs unconditionally, or give both the same --when.",
            )
        others = [name for name in inherited if name != own]
        if others:
            raise ExportError(
                f"{_where(step)} has its own --when but is downstream of a step under the condition step "
                f"{others[0]!r}; SageMaker cannot nest condition steps.",
                hint="Give it the same --when as its upstream step, or no --when (it then inherits that one).",
            )
        return own
    if len(inherited) > 1:
        raise ExportError(
            f"{_where(step)} is downstream of steps under two conditions ({', '.join(inherited)}); SageMaker can "
            "place a step in one condition step's branch only.",
            hint="Give the upstream steps the same --when expression.",
        )
    return inherited[0] if inherited else None


def plan_pipeline(pipeline: Pipeline) -> Plan:
    """Work out names, branches and property files; ExportError for what SageMaker cannot express."""
    exported: dict[str, str] = {}
    for step in pipeline.steps:
        name = step.name + _SUFFIX.get(step.kind, "")
        check_sagemaker_name(name, f"{_where(step)}: the exported step name")
        exported[step.name] = name
    placed: dict[str, str] = {}
    members: dict[str, list[Step]] = {}
    for step in pipeline.steps:
        branch = _branch_of(step, placed)
        if branch is not None:
            placed[step.name] = branch
            members.setdefault(branch, []).append(step)
    branches = []
    for name, steps in members.items():
        carriers = [s for s in steps if s.condition is not None and s.condition_step == name]
        first = carriers[0]
        assert first.condition is not None
        check_sagemaker_name(name, f"{_where(first)}: the condition step name")
        if first.fail_step is not None:
            check_sagemaker_name(first.fail_step, f"{_where(first)}: the fail step name")
        branches.append(
            Branch(
                name,
                first.condition,
                first.condition_text or "",
                tuple(s.name for s in steps),
                first.fail_step,
                first.else_fail,
            )  # fmt: skip
        )
    return Plan(exported, placed, tuple(branches), _properties(pipeline, branches))


def _properties(pipeline: Pipeline, branches: list[Branch]) -> dict[str, tuple[str, ...]]:
    names: dict[str, dict[str, None]] = {}
    for branch in branches:
        for ref in value_refs(branch.condition):
            source = pipeline.step(ref.step)
            where = f"condition step {branch.name!r} ({branch.text!r})"
            if source.kind != "processing" or source.script is not None:
                raise ExportError(
                    f"{where} reads {ref.name!r} from step {ref.step!r}, a {source.kind} "
                    f"{'script ' if source.script else ''}step; SageMaker conditions read property files, which only "
                    "processing cell steps write.",
                    hint=f"Compute the value in a processing step after {ref.step!r} and read it from there.",
                )
            json_path(ref.name, ref.path, where)
            names.setdefault(ref.step, {})[ref.name] = None
    return {step: tuple(sorted(found)) for step, found in names.items()}
