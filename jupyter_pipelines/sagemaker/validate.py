"""Checking a pipeline definition: AWS's JSON schema (with its known errors as explicit exceptions) and consistency.

The schema (``pipeline-definition.schema.json``, AWS's published one, kept here as reference data) is incomplete and
partly wrong: definitions the SageMaker Python SDK itself writes fail it. :func:`schema_problems` applies it with
Draft 7 after :func:`for_schema` rewrites exactly what the schema gets wrong, one documented rule each (see
``KNOWN_SCHEMA_GAPS``), and nothing more. :func:`consistency_problems` checks what no schema can: every ``Get``
names a parameter, an execution variable or a property of a step that exists, is visible and runs before;
``DependsOn`` names exist; step names are unique across the branches too; the steps form no cycle.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["KNOWN_SCHEMA_GAPS", "consistency_problems", "definition_problems", "for_schema", "schema_problems"]

Json = Any
_SCHEMA = Path(__file__).resolve().parent / "pipeline-definition.schema.json"
_PLACEHOLDER = {"Get": "Execution.PipelineExecutionId"}  # a value the schema accepts wherever a Get may go

KNOWN_SCHEMA_GAPS: dict[str, str] = {
    "experiment-config": "the schema does not allow the top-level PipelineExperimentConfig the SDK writes",
    "property-files": "the schema does not allow a processing step's PropertyFiles",
    "functions": "the schema has no Std:JsonGet and its Std:Join can never match: both are checked as a Get",
    "app-managed": "the schema rejects AppManaged on processing inputs and outputs",
    "approval-status": "the schema rejects ModelApprovalStatus on RegisterModel",
    "model-in-branch": "the schema rejects a Model step inside IfSteps/ElseSteps: it is checked as a Model step",
    "not-and-nesting": "the schema has no Not condition and no Or of Not/Or: the comparisons inside are checked",
    "in-keys": "for In the schema expects Value/In where SageMaker uses QueryValue/Values",
    "in-oneof": "In's Value and items are oneOf four overlapping types (a Get or a whole number matches several): "
    "those are checked as text",
    "exception-type": "the schema wants a retry policy's ExceptionType as a string, SageMaker uses a list",
    "model-data-url": "the schema wants ModelDataUrl as a literal URL, SageMaker takes a Get of the model artifacts",
    "container-environment": "the schema omits Environment in a RegisterModel container (the API has it)",
    "training-environment": "the schema omits Environment in Training arguments (CreateTrainingJob has it)",
}
_DEFINITIONS = {
    "Processing": "ProcessingStep",
    "Training": "TrainingStep",
    "Transform": "TransformStep",
    "Model": "CreateModelStep",
    "RegisterModel": "RegisterModelStep",
    "Condition": "ConditionStep",
    "Fail": "FailStep",
}


@cache
def _schema() -> Json:
    return json.loads(_SCHEMA.read_text(encoding="utf-8"))


def _validator(definition: str | None = None) -> Any:
    from jsonschema import Draft7Validator  # imported on use: the rest of the package never needs it

    schema = _schema()
    if definition is not None:
        schema = {"$ref": f"#/definitions/{definition}", "definitions": schema["definitions"]}
    return Draft7Validator(schema)


# ---- the schema, with its known gaps -----------------------------------------------------------------------------


def _functions_as_get(value: Json) -> Json:
    """Gap "functions": Std:Join / Std:JsonGet values become a Get the schema accepts."""
    if isinstance(value, dict):
        if len(value) == 1 and next(iter(value)) in ("Std:Join", "Std:JsonGet"):
            return dict(_PLACEHOLDER)
        return {key: _functions_as_get(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_functions_as_get(item) for item in value]
    return value


def _leaf_conditions(condition: Json) -> Iterator[Json]:
    """Gap "not-and-nesting": the comparisons and In tests inside Not and Or, each to be checked alone."""
    kind = condition.get("Type") if isinstance(condition, dict) else None
    if kind == "Not":
        yield from _leaf_conditions(condition.get("Condition"))
    elif kind == "Or" and any(
        isinstance(c, dict) and c.get("Type") in ("Not", "Or") for c in condition["Conditions"]
    ):
        for part in condition.get("Conditions", []):
            yield from _leaf_conditions(part)
    else:
        yield condition


def _in_keys(condition: Json, gaps: frozenset[str]) -> Json:
    """Gaps "in-keys" (QueryValue/Values under the schema's names Value/In) and "in-oneof" (see there)."""
    if isinstance(condition, dict) and condition.get("Type") == "In":
        value, values = condition.get("QueryValue"), condition.get("Values")
        if "in-oneof" in gaps:
            value = _as_text(value)
            values = [_as_text(v) for v in values] if isinstance(values, list) else values
        return {"Type": "In", "Value": value, "In": values}
    if isinstance(condition, dict) and condition.get("Type") == "Or":
        return {**condition, "Conditions": [_in_keys(c, gaps) for c in condition.get("Conditions", [])]}
    return condition


def _as_text(value: Json) -> Json:
    reference = isinstance(value, dict) and len(value) == 1 and next(iter(value)) in ("Get", "Std:JsonGet")
    whole = isinstance(value, (int, float)) and not isinstance(value, bool) and float(value).is_integer()
    return "placeholder" if reference or whole else value


def _split_policies(policies: list[Json]) -> list[Json]:
    """Gap "exception-type": one policy per exception type, each a string."""
    split = []
    for policy in policies:
        types = policy.get("ExceptionType") if isinstance(policy, dict) else None
        split += [{**policy, "ExceptionType": each} for each in types] if isinstance(types, list) else [policy]
    return split


def _containers(arguments: Json) -> list[Json]:
    found = [arguments.get("PrimaryContainer")] + list(
        arguments.get("InferenceSpecification", {}).get("Containers", [])
    )
    return [c for c in found if isinstance(c, dict)]


def _step_for_schema(step: Json, models: list[Json], gaps: frozenset[str]) -> Json:
    step = copy.deepcopy(step)
    arguments = step.get("Arguments")
    if not isinstance(arguments, dict):
        return step
    kind = step.get("Type")
    if "property-files" in gaps:
        step.pop("PropertyFiles", None)
    if "exception-type" in gaps and isinstance(step.get("RetryPolicies"), list):
        step["RetryPolicies"] = _split_policies(step["RetryPolicies"])
    if kind == "Processing" and "app-managed" in gaps:
        outputs = arguments.get("ProcessingOutputConfig", {}).get("Outputs", [])
        for item in arguments.get("ProcessingInputs", []) + outputs:
            if isinstance(item, dict):
                item.pop("AppManaged", None)
    if kind == "Training" and "training-environment" in gaps:
        arguments.pop("Environment", None)
    if kind == "RegisterModel" and "approval-status" in gaps:
        arguments.pop("ModelApprovalStatus", None)
    if kind == "RegisterModel" and "container-environment" in gaps:
        for container in arguments.get("InferenceSpecification", {}).get("Containers", []):
            container.pop("Environment", None)
    if kind in ("Model", "RegisterModel") and "model-data-url" in gaps:
        for container in _containers(arguments):
            if isinstance(container.get("ModelDataUrl"), dict):
                container["ModelDataUrl"] = "s3://placeholder/model.tar.gz"
    if kind == "Condition":
        conditions = arguments.get("Conditions", [])
        if "not-and-nesting" in gaps:
            conditions = [leaf for c in conditions for leaf in _leaf_conditions(c)]
        if "in-keys" in gaps:
            conditions = [_in_keys(c, gaps) for c in conditions]
        arguments["Conditions"] = conditions
        for branch in ("IfSteps", "ElseSteps"):
            kept = []
            for inner in arguments.get(branch, []):
                checked = _step_for_schema(inner, models, gaps)
                if isinstance(inner, dict) and inner.get("Type") == "Model" and "model-in-branch" in gaps:
                    models.append(checked)
                else:
                    kept.append(checked)
            arguments[branch] = kept
    return _functions_as_get(step) if "functions" in gaps else step


def for_schema(definition: Json, gaps: frozenset[str] = frozenset(KNOWN_SCHEMA_GAPS)) -> tuple[Json, list[Json]]:
    """The definition rewritten by the known ``gaps`` (all by default), and the Model steps taken out of branches
    (checked alone)."""
    document = copy.deepcopy(definition)
    if "experiment-config" in gaps:
        document.pop("PipelineExperimentConfig", None)
    models: list[Json] = []
    document["Steps"] = [_step_for_schema(step, models, gaps) for step in document.get("Steps", [])]
    return document, models


def _errors(validator: Any, instance: Json, where: str) -> list[str]:
    from jsonschema.exceptions import best_match

    problems = []
    for error in validator.iter_errors(instance):
        error = best_match([error]) or error
        path = "".join(f"[{p!r}]" for p in error.absolute_path)
        problems.append(f"{where}{path}: {error.message[:300]}")
    return problems


def schema_problems(definition: Json, gaps: frozenset[str] = frozenset(KNOWN_SCHEMA_GAPS)) -> list[str]:
    """What AWS's schema (Draft 7) finds wrong, its known ``gaps`` aside: each step checked against its own type."""
    document, models = for_schema(definition, gaps)
    steps = document.get("Steps", [])
    problems = _errors(_validator(), {**document, "Steps": []}, "definition")
    for index, step in enumerate(steps + models):
        name = step.get("Name", index) if isinstance(step, dict) else index
        kind = _DEFINITIONS.get(step.get("Type", "")) if isinstance(step, dict) else None
        if kind is None:
            problems.append(f"step {name!r}: unknown Type {step.get('Type') if isinstance(step, dict) else step!r}")
            continue
        problems += _errors(_validator(kind), step, f"step {name!r}")
    return problems


# ---- consistency ---------------------------------------------------------------------------------------------------

_STEP_REF = re.compile(r"Steps\.([A-Za-z0-9_-]{1,64})\.(.+)")
_EXECUTION = {"PipelineExecutionId", "PipelineName", "PipelineExecutionArn", "StartDateTime", "CurrentDateTime"}
_PROPERTIES = {
    "Training": {"ModelArtifacts.S3ModelArtifacts", "TrainingJobName", "TrainingJobArn"},
    "Model": {"ModelName"},
    "RegisterModel": {"ModelPackageArn"},
    "Transform": {"TransformOutput.S3OutputPath", "TransformJobName"},
    "Processing": {"ProcessingJobName", "ProcessingJobArn"},
}


def _gets(value: Json) -> Iterator[str]:
    if isinstance(value, dict):
        if set(value) == {"Get"} and isinstance(value["Get"], str):
            yield value["Get"]
        for key, item in value.items():
            if key not in ("IfSteps", "ElseSteps"):
                yield from _gets(item)
    elif isinstance(value, list):
        for item in value:
            yield from _gets(item)


def _walk(steps: list[Json], scope: str, owner: str | None) -> Iterator[tuple[Json, str, str | None]]:
    """Every step with its scope (``top`` or ``<condition>.IfSteps``) and the condition step holding it."""
    for step in steps:
        if not isinstance(step, dict):
            continue
        yield step, scope, owner
        arguments: Json = step.get("Arguments") if isinstance(step.get("Arguments"), dict) else {}
        if step.get("Type") == "Condition":
            for branch in ("IfSteps", "ElseSteps"):
                yield from _walk(arguments.get(branch, []), f"{step.get('Name')}.{branch}", step.get("Name"))


def _property_ok(step: Json, prop: str) -> bool:
    kind = step.get("Type")
    if prop in _PROPERTIES.get(kind, set()):
        return True
    if kind == "Processing":
        outputs = step.get("Arguments", {}).get("ProcessingOutputConfig", {}).get("Outputs", [])
        names = {o.get("OutputName") for o in outputs if isinstance(o, dict)}
        match = re.fullmatch(r"ProcessingOutputConfig\.Outputs\['([^']+)'\]\.S3Output\.S3Uri", prop)
        if match:
            return match.group(1) in names
        files = {f.get("PropertyFileName") for f in step.get("PropertyFiles", []) if isinstance(f, dict)}
        declared = re.fullmatch(r"PropertyFiles\.(.+)", prop)
        return declared is not None and declared.group(1) in files
    return False


def consistency_problems(definition: Json) -> list[str]:
    """References, dependencies and names that would make SageMaker reject (or misrun) the definition."""
    problems: list[str] = []
    parameters = [str(p.get("Name")) for p in definition.get("Parameters", []) if isinstance(p, dict)]
    for name in {n for n in parameters if parameters.count(n) > 1}:
        problems.append(f"parameter {name!r} is declared twice")
    placed = list(_walk(definition.get("Steps", []), "top", None))
    by_name: dict[str, tuple[Json, str, str | None]] = {}
    for step, scope, owner in placed:
        name = step.get("Name")
        if name in by_name:
            problems.append(f"step name {name!r} is used twice ({by_name[name][1]} and {scope})")
        by_name[name] = (step, scope, owner)
    edges: dict[str, set[str]] = {name: set() for name in by_name}
    for step, scope, owner in placed:
        name = step.get("Name")
        if owner is not None:
            edges[name].add(owner)
        for reference in _gets({k: v for k, v in step.items() if k != "DependsOn"}):
            problem = _check_get(reference, name, scope, owner, by_name, set(parameters), edges)
            if problem:
                problems.append(f"step {name!r}: {problem}")
        for upstream in step.get("DependsOn", []):
            if upstream not in by_name:
                problems.append(f"step {name!r}: DependsOn names {upstream!r}, which is not a step")
            elif upstream == name:
                problems.append(f"step {name!r}: DependsOn names the step itself")
            else:
                edges[name].add(upstream)
    cycle = _cycle(edges)
    if cycle:
        problems.append("steps depend on each other in a cycle: " + " -> ".join(cycle))
    return problems


def _check_get(
    reference: str,
    name: str,
    scope: str,
    owner: str | None,
    by_name: dict[str, tuple[Json, str, str | None]],
    parameters: set[str],
    edges: dict[str, set[str]],
) -> str | None:
    if reference.startswith("Parameters."):
        parameter = reference.removeprefix("Parameters.")
        return None if parameter in parameters else f"Get {reference!r} names no parameter"
    if reference.startswith("Execution."):
        variable = reference.removeprefix("Execution.")
        return None if variable in _EXECUTION else f"Get {reference!r} names no execution variable"
    match = _STEP_REF.fullmatch(reference)
    if not match:
        return f"Get {reference!r} is not a parameter, execution variable or step property"
    target, prop = match.groups()
    if target not in by_name:
        return f"Get {reference!r} names step {target!r}, which does not exist"
    if target == name:
        return f"Get {reference!r} reads the step's own property"
    step, target_scope, _ = by_name[target]
    if target_scope not in ("top", scope):
        return f"Get {reference!r} reads step {target!r}, which runs inside {target_scope}, out of reach from {scope}"
    if target == owner:
        return f"Get {reference!r} reads its own condition step"
    if not _property_ok(step, prop):
        return f"Get {reference!r}: a {step.get('Type')} step {target!r} has no property {prop!r}"
    edges[name].add(target)
    return None


def _cycle(edges: dict[str, set[str]]) -> list[str]:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        stack.append(node)
        for upstream in sorted(edges.get(node, ())):
            if state.get(upstream) == 1:
                return stack[stack.index(upstream) :] + [upstream]
            if upstream not in state:
                found = visit(upstream)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return []

    for node in sorted(edges):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return []


def definition_problems(definition: Json) -> list[str]:
    """Schema problems (known gaps aside) and consistency problems; empty when the definition is sound."""
    return schema_problems(definition) + consistency_problems(definition)
