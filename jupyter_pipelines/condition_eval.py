"""Evaluating ``--when`` conditions: pure functions over the model's Condition tree, with no I/O.

The grammar and its parser live in ``authoring.conditions`` (which re-exports these names); this module is what
both the local engine (deciding whether a step runs) and the SageMaker export (agreeing with it) use. It gives the
answer SageMaker gives for the same values, with no Python ``eval``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any, cast

from .errors import PipelineError
from .model import (
    And,
    Compare,
    CompareOp,
    Condition,
    InList,
    JsonLiteral,
    Not,
    Operand,
    ParameterRef,
    ValueRef,
)

__all__ = [
    "ConditionError",
    "condition_operands",
    "explain",
    "evaluate",
    "fail_message",
    "first_read",
    "read_value",
    "value_refs",
]


class ConditionError(PipelineError):
    """A condition that cannot be evaluated on the values it got (a missing key, text compared with a number)."""


# ---- walking ----------------------------------------------------------------------------------------------------


def condition_operands(condition: Condition) -> Iterator[Operand]:
    """Every operand, in reading order (left to right)."""
    if isinstance(condition, Compare):
        yield condition.left
        yield condition.right
    elif isinstance(condition, InList):
        yield condition.operand
        yield from condition.values
    elif isinstance(condition, Not):
        yield from condition_operands(condition.condition)
    else:
        for part in condition.conditions:
            yield from condition_operands(part)


def value_refs(condition: Condition) -> tuple[ValueRef, ...]:
    """The upstream values a condition reads, without repeats, in reading order."""
    return tuple(dict.fromkeys(o for o in condition_operands(condition) if isinstance(o, ValueRef)))


def first_read(condition: Condition) -> ValueRef | ParameterRef | None:
    """What ``{value}`` in ``--else-fail`` stands for: the first value or parameter the condition reads."""
    return next((o for o in condition_operands(condition) if not isinstance(o, JsonLiteral)), None)


def fail_message(template: str, value: object) -> str:
    """``--else-fail`` text with ``{value}`` replaced (other braces are kept as written)."""
    return template.replace("{value}", _text(value))


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# ---- evaluating -------------------------------------------------------------------------------------------------


def evaluate(condition: Condition, values: Mapping[str, Any], parameters: Mapping[str, Any]) -> bool:
    """Evaluate a condition the way SageMaker does: ``values`` by output name, ``parameters`` by name.

    Numbers compare as numbers (``1 == 1.0``), strings as strings, booleans only for (in)equality; ``==`` between
    different kinds is false. Ordering text against a number, a missing key or a missing name is a ConditionError.
    """
    if isinstance(condition, Compare):
        left = _value(condition.left, values, parameters)
        right = _value(condition.right, values, parameters)
        return _compare_values(condition.op, left, right)
    if isinstance(condition, InList):
        item = _value(condition.operand, values, parameters)
        return any(_equal(item, _value(v, values, parameters)) for v in condition.values)
    if isinstance(condition, Not):
        return not evaluate(condition.condition, values, parameters)
    if isinstance(condition, And):
        return all(evaluate(part, values, parameters) for part in condition.conditions)
    return any(evaluate(part, values, parameters) for part in condition.conditions)


def _value(operand: Operand, values: Mapping[str, Any], parameters: Mapping[str, Any]) -> Any:
    if isinstance(operand, JsonLiteral):
        return operand.value
    if isinstance(operand, ParameterRef):
        if operand.name not in parameters:
            raise ConditionError(f"the condition reads parameter {operand.name!r}, which has no value.")
        return parameters[operand.name]
    if operand.name not in values:
        raise ConditionError(f"the condition reads {operand.name!r} from step {operand.step!r}, which has no value.")
    value = values[operand.name]
    shown = operand.name
    for key in operand.path:
        shown += f"[{key!r}]"
        try:
            value = value[key]
        except (KeyError, IndexError, TypeError):
            raise ConditionError(
                f"the condition reads {shown}, which {type(value).__name__} value from step {operand.step!r} "
                "does not have.",
                hint="Check the keys against what the step outputs.",
            ) from None
    return _plain(value, shown)


def _plain(value: Any, shown: str) -> Any:
    """Numpy scalars and the like become Python scalars (``.item()``); containers are not comparable."""
    item = getattr(value, "item", None)
    if not isinstance(value, (str, int, float, bool)) and callable(item):
        with contextlib.suppress(ValueError, TypeError):
            value = item()
    if not isinstance(value, (str, int, float, bool)):
        raise ConditionError(
            f"the condition compares {shown}, a {type(value).__name__}, but conditions compare strings, numbers and "
            "booleans.",
            hint="Subscript down to a single value, e.g. report['mse']['value'].",
        )
    return value


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return "string"


def _equal(left: Any, right: Any) -> bool:
    return _kind(left) == _kind(right) and left == right


def _compare_values(op: CompareOp, left: Any, right: Any) -> bool:
    if op == "==":
        return _equal(left, right)
    if op == "!=":
        return not _equal(left, right)
    kind = _kind(left)
    if kind != _kind(right) or kind == "boolean":
        raise ConditionError(
            f"the condition orders a {_kind(left)} ({left!r}) against a {_kind(right)} ({right!r}) with {op}.",
            hint="Compare numbers with numbers, or text with text.",
        )
    ordered = cast(Any, left)
    return bool({"<": ordered < right, "<=": ordered <= right, ">": ordered > right, ">=": ordered >= right}[op])


def read_value(operand: Operand, values: Mapping[str, Any], parameters: Mapping[str, Any]) -> Any:
    """One operand's value as :func:`evaluate` sees it (subscripted, a plain scalar); ConditionError if it can't."""
    return _value(operand, values, parameters)


def explain(condition: Condition, values: Mapping[str, Any], parameters: Mapping[str, Any]) -> str:
    """The values behind a condition's answer, for messages: ``"4.7 vs 7.0"`` for a comparison.

    For ``and`` / ``or`` it is the first part with the same answer as the whole (the one that decided it); for
    ``in`` the item and the list. Never raises: an operand that cannot be read shows as ``?``.
    """
    if isinstance(condition, Compare):
        left = _shown_value(condition.left, values, parameters)
        return f"{left} vs {_shown_value(condition.right, values, parameters)}"
    if isinstance(condition, InList):
        listed = ", ".join(_shown_value(v, values, parameters) for v in condition.values)
        return f"{_shown_value(condition.operand, values, parameters)} vs [{listed}]"
    if isinstance(condition, Not):
        return explain(condition.condition, values, parameters)
    try:
        whole = evaluate(condition, values, parameters)
        decisive = next(p for p in condition.conditions if evaluate(p, values, parameters) == whole)
    except (ConditionError, StopIteration):
        decisive = condition.conditions[0]
    return explain(decisive, values, parameters)


def _shown_value(operand: Operand, values: Mapping[str, Any], parameters: Mapping[str, Any]) -> str:
    try:
        value = _value(operand, values, parameters)
    except ConditionError:
        return "?"
    return repr(value) if isinstance(value, str) else _text(value)
