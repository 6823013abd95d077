"""Typed pipeline parameters: declaring them in a ``%%parameters`` cell and checking the values users pass.

A declaration is one ``name: type = default`` per line (type one of str, int, float, bool), or ``name = literal``
whose literal gives the type. Override values come as text from the command line (``-p test_fraction=0.3``) or as
Python values from the widget; both are checked against the declared type so a typo fails before anything runs.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Mapping, Sequence

from ..errors import ParameterError
from ..model import PARAMETER_TYPES, Parameter, ParameterType, ParameterValue, Pipeline
from .analysis import parse_code

__all__ = ["coerce_parameter", "declared_parameters", "parse_overrides", "resolve_parameters"]

_SUPPORTED = "supported types are " + ", ".join(PARAMETER_TYPES)
_EXAMPLE = "e.g. test_fraction: float = 0.2"
_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}
_ARTICLE = {"str": "a", "int": "an", "float": "a", "bool": "a"}


def _type_of(value: object) -> ParameterType | None:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    return None


def _literal(node: ast.expr) -> tuple[bool, object]:
    try:
        return True, ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False, None


def _declaration(node: ast.stmt, text: str, where: str) -> Parameter:
    """One ``name: type = default`` (or ``name = literal``) statement as a Parameter."""
    segment = (ast.get_source_segment(text, node) or "").strip()
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        name = node.target.id
        annotation = ast.get_source_segment(text, node.annotation) or ast.dump(node.annotation)
        declared = node.annotation.id if isinstance(node.annotation, ast.Name) else None
        if declared not in PARAMETER_TYPES:
            raise ParameterError(
                f"parameter {name!r} is declared as {annotation}; {_SUPPORTED}.",
                where=where,
                hint=f"Change the type, {_EXAMPLE}.",
            )
        value_node = node.value
    elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
        name, declared, value_node = node.targets[0].id, None, node.value
    else:
        raise ParameterError(
            f"only `name: type = default` lines belong here, got {segment!r}.",
            where=where,
            hint=f"Declare one parameter per line ({_EXAMPLE}; {_SUPPORTED}) and move other code to a step.",
        )
    if value_node is None:
        raise ParameterError(
            f"parameter {name!r} needs a default value.", where=where, hint=f"Write it as {name}: {declared} = ..."
        )
    ok, value = _literal(value_node)
    kind = _type_of(value) if ok else None
    if kind is None:
        default = ast.get_source_segment(text, value_node) or "?"
        raise ParameterError(
            f"parameter {name!r} needs a literal default (a number, a string, True or False), got {default}.",
            where=where,
            hint=f"Compute derived values inside a step instead; {_SUPPORTED}.",
        )
    assert isinstance(value, (str, int, float, bool))
    if declared is None:
        return Parameter(name, kind, value)
    if declared == "float" and kind == "int":
        return Parameter(name, "float", float(value))
    if declared != kind:
        raise ParameterError(
            f"parameter {name!r} is {_ARTICLE[declared]} {declared} but its default {value!r} is "
            f"{_ARTICLE[kind]} {kind}.",
            where=where,
            hint=f"Make the default match the type; {_SUPPORTED}.",
        )
    return Parameter(name, declared, value)


def declared_parameters(body: str, *, cell_index: int, first_line: int) -> tuple[Parameter, ...]:
    """The parameters a ``%%parameters`` cell body declares, in order (duplicates are the builder's concern)."""
    label = f"%%parameters (cell {cell_index + 1})"
    tree, text = parse_code(body, where=label, first_line=first_line)
    result = []
    for node in tree.body:
        parameter = _declaration(node, text, f"{label}, line {first_line + node.lineno - 1}")
        result.append(Parameter(parameter.name, parameter.type, parameter.default, cell_index))
    return tuple(result)


def _example(parameter: Parameter) -> str:
    value = str(parameter.default).lower() if parameter.type == "bool" else parameter.default
    return f"-p {parameter.name}={value}"


def coerce_parameter(parameter: Parameter, raw: object) -> ParameterValue:
    """Convert a command-line string or check a Python value against the parameter's type."""
    kind = parameter.type
    value: ParameterValue | None = None
    if isinstance(raw, str) and kind != "str":
        text = raw.strip()
        if kind == "bool":
            value = True if text.lower() in _TRUE else False if text.lower() in _FALSE else None
        elif kind == "int":
            try:
                value = int(text)
            except ValueError:
                value = None
        else:
            try:
                value = float(text)
            except ValueError:
                value = None
    elif _type_of(raw) == kind or (kind == "float" and _type_of(raw) == "int"):
        assert isinstance(raw, (str, int, float))
        value = float(raw) if kind == "float" else raw
    if isinstance(value, float) and not math.isfinite(value):
        value = None
    if value is None:
        shown = repr(raw) if isinstance(raw, (str, int, float, bool)) else type(raw).__name__
        hint = "Use true or false (also yes/no, 1/0)." if kind == "bool" else ""
        raise ParameterError(
            f"parameter {parameter.name!r} is {_ARTICLE[kind]} {kind}; {shown} is not {_ARTICLE[kind]} {kind}.",
            hint=f"{hint} Example: {_example(parameter)}".strip(),
        )
    return value


def _unknown(pipeline: Pipeline, name: str) -> ParameterError:
    if not pipeline.parameters:
        return ParameterError(
            f"unknown parameter {name!r}: pipeline {pipeline.name!r} has no parameters.",
            hint="Declare it in a %%parameters cell, e.g. test_fraction: float = 0.2",
        )
    known = ", ".join(f"{p.name} ({p.type})" for p in pipeline.parameters)
    return ParameterError(f"unknown parameter {name!r}.", hint=f"Pipeline {pipeline.name!r} has: {known}.")


def parse_overrides(pipeline: Pipeline, items: Sequence[str]) -> dict[str, ParameterValue]:
    """Parse ``name=value`` items (``-p`` on the command line) into checked values."""
    result: dict[str, ParameterValue] = {}
    for item in items:
        name, eq, raw = item.partition("=")
        name = name.strip()
        if not eq or not name:
            example = _example(pipeline.parameters[0]) if pipeline.parameters else "-p test_fraction=0.3"
            raise ParameterError(f"-p takes name=value, got {item!r}.", hint=f"Example: {example}")
        try:
            parameter = pipeline.parameter(name)
        except KeyError:
            raise _unknown(pipeline, name) from None
        result[name] = coerce_parameter(parameter, raw)
    return result


def resolve_parameters(pipeline: Pipeline, overrides: Mapping[str, object]) -> dict[str, ParameterValue]:
    """Every parameter's value for a run: its default unless overridden (overrides are checked)."""
    for name in overrides:
        if name not in {p.name for p in pipeline.parameters}:
            raise _unknown(pipeline, name)
    return {
        p.name: coerce_parameter(p, overrides[p.name]) if p.name in overrides else p.default
        for p in pipeline.parameters
    }
