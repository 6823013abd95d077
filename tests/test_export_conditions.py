"""Each condition operator: the local evaluator and the exported ConditionStep agree on a table of inputs.

The exported conditions are run by a tiny interpreter of SageMaker's condition JSON (JsonGet on the property file
the upstream step writes, Get of parameters), written here independently of the exporter.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from jupyter_pipelines.authoring.conditions import evaluate
from jupyter_pipelines.sagemaker import build_definition

from .export_support import CONFIG, build

Json = Any


def _path_get(document: Json, path: str) -> Json:
    """SageMaker's JsonGet paths as the exporter writes them: ``name.key.key[0]``."""
    value = document
    for part in path.replace("[", ".[").split("."):
        value = value[int(part[1:-1])] if part.startswith("[") else value[part]
    return value


def _value(node: Json, properties: dict[str, Json], parameters: dict[str, Json]) -> Json:
    if isinstance(node, dict) and "Get" in node:
        return parameters[node["Get"].removeprefix("Parameters.")]
    if isinstance(node, dict) and "Std:JsonGet" in node:
        get = node["Std:JsonGet"]
        step = get["PropertyFile"]["Get"].split(".")[1]
        return _path_get(properties[step], get["Path"])
    return node


def _same(left: Json, right: Json) -> bool:
    return isinstance(left, bool) == isinstance(right, bool) and isinstance(left, str) == isinstance(right, str) \
        and left == right  # fmt: skip


def _holds(condition: Json, properties: dict[str, Json], parameters: dict[str, Json]) -> bool:
    kind = condition["Type"]
    if kind == "Not":
        return not _holds(condition["Condition"], properties, parameters)
    if kind == "Or":
        return any(_holds(c, properties, parameters) for c in condition["Conditions"])
    if kind == "In":
        query = _value(condition["QueryValue"], properties, parameters)
        return any(_same(query, _value(v, properties, parameters)) for v in condition["Values"])
    left = _value(condition["LeftValue"], properties, parameters)
    right = _value(condition["RightValue"], properties, parameters)
    return {
        "Equals": lambda: _same(left, right),
        "GreaterThan": lambda: left > right,
        "GreaterThanOrEqualTo": lambda: left >= right,
        "LessThan": lambda: left < right,
        "LessThanOrEqualTo": lambda: left <= right,
    }[kind]()


def _exported_condition(expression: str) -> tuple[Any, list[Json]]:
    pipeline = build(
        "ops",
        "%%parameters\nlimit: float = 5.0\nstage: str = 'dev'",
        "%%step score\nm = {'x': 1.0, 's': 'dev', 'b': True, 'v': [1, 2]}",
        f"%%step gated --when {json.dumps(expression)}\ndone = 1",
    )
    definition = build_definition(pipeline, CONFIG).definition
    (condition_step,) = [s for s in definition["Steps"] if s["Type"] == "Condition"]
    return pipeline.step("gated").condition, condition_step["Arguments"]["Conditions"]


OPERATORS = {
    "==": "m['x'] == limit",
    "!=": "m['s'] != stage",
    "<": "m['x'] < limit",
    "<=": "m['x'] <= 3",
    ">": "m['x'] > limit",
    ">=": "m['v'][1] >= m['x']",
    "in": "m['s'] in ['dev', stage, 'prod']",
    "not in": "m['x'] not in [1, 2.5]",
    "not": "not m['b'] == True",
    "and": "m['x'] > 0 and m['s'] == 'dev'",
    "or": "m['x'] > limit or m['s'] == stage",
    "nested": "not (m['x'] < 2 and (m['b'] == False or m['s'] in ['prod']))",
}
INPUTS = [
    ({"x": 1.0, "s": "dev", "b": True, "v": [1, 2]}, {"limit": 5.0, "stage": "dev"}),
    ({"x": 5, "s": "prod", "b": False, "v": [0, 5.0]}, {"limit": 5.0, "stage": "dev"}),
    ({"x": 7.5, "s": "test", "b": True, "v": [3, -1]}, {"limit": 7.5, "stage": "dev"}),
    ({"x": 2.5, "s": "prod", "b": False, "v": [9, 9]}, {"limit": 0.0, "stage": "prod"}),
    ({"x": -3, "s": "", "b": True, "v": [0, 0]}, {"limit": -3.5, "stage": ""}),
    ({"x": 0, "s": "prod", "b": False, "v": [1, 1]}, {"limit": 1.0, "stage": "prod"}),
]


@pytest.mark.parametrize("operator", sorted(OPERATORS))
def test_local_and_exported_agree(operator: str) -> None:
    condition, exported = _exported_condition(OPERATORS[operator])
    outcomes = set()
    for values, parameters in INPUTS:
        local = evaluate(condition, {"m": values}, parameters)
        remote = all(_holds(c, {"score": {"m": values}}, parameters) for c in exported)
        assert local == remote, (operator, values, parameters, exported)
        outcomes.add(local)
    assert outcomes == {True, False}, f"the table should exercise both outcomes of {operator!r}"


def test_operator_types_in_the_export() -> None:
    types = {}
    for operator, expression in OPERATORS.items():
        _, exported = _exported_condition(expression)
        types[operator] = [c["Type"] for c in exported]
    assert types == {
        "==": ["Equals"],
        "!=": ["Not"],
        "<": ["LessThan"],
        "<=": ["LessThanOrEqualTo"],
        ">": ["GreaterThan"],
        ">=": ["GreaterThanOrEqualTo"],
        "in": ["In"],
        "not in": ["Not"],
        "not": ["Not"],
        "and": ["GreaterThan", "Equals"],  # a top-level `and` is the ConditionStep's list
        "or": ["Or"],
        "nested": ["Not"],
    }
