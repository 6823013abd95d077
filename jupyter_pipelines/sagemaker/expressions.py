"""The definition's expression language: ``Get`` references, ``Std:Join``, ``Std:JsonGet`` and conditions.

Written the way the SageMaker Python SDK writes them, so a definition reads like one it would have produced.
"""

from __future__ import annotations

from typing import Any

from ..authoring.conditions import first_read
from ..model import And, Compare, Condition, InList, JsonLiteral, Not, Operand, Or, Parameter, ParameterRef, ValueRef
from .plan import json_path

__all__ = [
    "EXECUTION_ID",
    "PROPERTY_FILE",
    "PROPERTY_FILE_NAME",
    "condition_json",
    "fail_message_json",
    "get",
    "join",
    "model_artifacts",
    "output_destination",
    "parameter_text",
    "processing_output",
]

Json = Any
EXECUTION_ID: Json = {"Get": "Execution.PipelineExecutionId"}
PROPERTY_FILE_NAME = "Values"  # the property file a processing step declares for the conditions that read it
PROPERTY_FILE = "properties.json"  # ... and the file the step's entry writes in its output directory

_TYPES = {
    "==": "Equals",
    "<": "LessThan",
    "<=": "LessThanOrEqualTo",
    ">": "GreaterThan",
    ">=": "GreaterThanOrEqualTo",
}


def get(path: str) -> Json:
    return {"Get": path}


def join(values: list[Json], on: str = "/") -> Json:
    return {"Std:Join": {"On": on, "Values": values}}


def parameter_text(parameter: Parameter) -> Json:
    """A parameter where SageMaker wants text (environment variables): numbers and booleans go through a Join."""
    reference = get(f"Parameters.{parameter.name}")
    return reference if parameter.type == "str" else join([reference], on="")


def processing_output(step: str) -> Json:
    """The S3 URI of a processing step's one output channel (named after the step)."""
    return get(f"Steps.{step}.ProcessingOutputConfig.Outputs['{step}'].S3Output.S3Uri")


def model_artifacts(step: str) -> Json:
    return get(f"Steps.{step}.ModelArtifacts.S3ModelArtifacts")


def output_destination(bucket: str, prefix: str, step: str, *rest: str) -> Json:
    """Where a job's output goes, built at run time as the SDK builds it: one place per execution and step."""
    head = ["s3:/", bucket] + ([prefix] if prefix else [])
    return join([*head, EXECUTION_ID, step, "output", *rest])


def _operand(operand: Operand) -> Json:
    if isinstance(operand, JsonLiteral):
        return operand.value
    if isinstance(operand, ParameterRef):
        return get(f"Parameters.{operand.name}")
    where = f"step {operand.step!r}"
    return {
        "Std:JsonGet": {
            "PropertyFile": get(f"Steps.{operand.step}.PropertyFiles.{PROPERTY_FILE_NAME}"),
            "Path": json_path(operand.name, operand.path, where),
        }
    }


def _one(condition: Condition) -> Json:
    if isinstance(condition, Compare):
        compare = {"Type": _TYPES.get(condition.op, "Equals"), "LeftValue": _operand(condition.left),
                   "RightValue": _operand(condition.right)}  # fmt: skip
        return {"Type": "Not", "Condition": compare} if condition.op == "!=" else compare
    if isinstance(condition, InList):
        return {
            "Type": "In",
            "QueryValue": _operand(condition.operand),
            "Values": [_operand(v) for v in condition.values],
        }
    if isinstance(condition, Not):
        return {"Type": "Not", "Condition": _one(condition.condition)}
    if isinstance(condition, Or):
        return {"Type": "Or", "Conditions": [_one(part) for part in condition.conditions]}
    # SageMaker has no And inside Or/Not: a and b == not (not a or not b)
    negated = [{"Type": "Not", "Condition": _one(part)} for part in condition.conditions]
    return {"Type": "Not", "Condition": {"Type": "Or", "Conditions": negated}}


def condition_json(condition: Condition) -> list[Json]:
    """A ConditionStep's ``Conditions``: all must hold, so a top-level ``and`` is the list itself."""
    if isinstance(condition, And):
        return [item for part in condition.conditions for item in condition_json(part)]
    return [_one(condition)]


def fail_message_json(template: str, condition: Condition) -> Json:
    """``--else-fail`` text; ``{value}`` becomes the first value the condition reads (a Join around it)."""
    read = first_read(condition)
    if "{value}" not in template or read is None:
        return template
    value = _operand(read) if isinstance(read, (ValueRef, ParameterRef)) else read
    pieces: list[Json] = []
    for i, text in enumerate(template.split("{value}")):
        if i:
            pieces.append(value)
        if text:
            pieces.append(text)
    return join(pieces, on="")
