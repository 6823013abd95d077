"""The ``--when`` grammar: one parser and one evaluator, shared by the local engine and the SageMaker export.

A condition is what SageMaker's ``ConditionStep`` can express, written in Python syntax::

    condition := operand OP operand [OP operand ...]   OP: == != < <= > >=  (a chain means "and")
               | operand in [operand, ...]             also ``not in``, with a literal list or tuple
               | not condition | condition and condition | condition or condition | ( condition )
    operand   := NAME ['key' | 0 ...]                  an upstream step's value with literal keys, or a parameter
               | JSON scalar                           'text', 3, -2.5, True, False

Anything else (a call, arithmetic, an attribute, a variable key, ``None``, a set) is outside the grammar, because
SageMaker could not evaluate it: :func:`parse_condition` raises an :class:`AnalysisError` that shows the grammar.
Names are resolved by the caller (the builder knows which step binds what); :func:`evaluate` needs no Python
``eval`` and gives the answer SageMaker gives for the same values.
"""

from __future__ import annotations

import ast
import contextlib
import math
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any, cast

from ..errors import AnalysisError, PipelineError
from ..model import (
    And,
    Compare,
    CompareOp,
    Condition,
    InList,
    JsonLiteral,
    Not,
    Operand,
    Or,
    ParameterRef,
    ValueRef,
)

__all__ = [
    "GRAMMAR",
    "ConditionError",
    "Resolver",
    "condition_operands",
    "condition_problem",
    "evaluate",
    "fail_message",
    "first_read",
    "parse_condition",
    "value_refs",
]

GRAMMAR = (
    "A condition compares upstream step values (name['key'][0]), parameters and JSON scalars ('text', 3, -2.5, "
    "True) with ==, !=, <, <=, >, >=, or tests `x in [...]` / `x not in [...]` against a literal list, "
    "combined with not, and, or. E.g. --when \"report['mse'] <= mse_threshold and stage in ['dev', 'prod']\"."
)
_MAX_LENGTH = 2000

Resolver = Callable[[str, tuple[str | int, ...]], Operand]
"""Turns a name (and the keys that follow it) into a ValueRef or ParameterRef, or raises AnalysisError."""

_OPS: dict[type[ast.cmpop], CompareOp] = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
}


class ConditionError(PipelineError):
    """A condition that cannot be evaluated on the values it got (a missing key, text compared with a number)."""


class _Outside(Exception):
    """Part of the expression is outside the grammar; the message says which part."""


# ---- parsing ----------------------------------------------------------------------------------------------------


def parse_condition(text: str, resolve: Resolver, *, where: str | None) -> Condition:
    """Parse ``--when`` text into a Condition; names go through ``resolve``. Raises AnalysisError on bad input."""
    try:
        return _parse(text, resolve)
    except _Outside as error:
        raise AnalysisError(str(error), where=where, hint=GRAMMAR) from None


def condition_problem(text: str) -> str | None:
    """What is wrong with the expression's shape (names not resolved), or None: for the header parser."""
    try:
        _parse(text, lambda name, path: ValueRef("", name, path))
    except _Outside as error:
        return str(error)
    return None


def _parse(text: str, resolve: Resolver) -> Condition:
    if not text.strip():
        raise _Outside("--when needs an expression.")
    if len(text) > _MAX_LENGTH:
        raise _Outside(f"--when is longer than {_MAX_LENGTH} characters.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as error:
        raise _Outside(f"--when is not a valid expression ({error.msg}): {_shown(text)!r}.") from None
    except (ValueError, RecursionError, MemoryError):
        raise _Outside(f"--when cannot be parsed: {_shown(text)!r}.") from None
    try:
        return _condition(tree.body, resolve)
    except _Outside as error:
        raise _Outside(f"--when {_shown(text)!r}: {error}") from None
    except RecursionError:
        raise _Outside("--when is nested too deeply.") from None


def _shown(text: str) -> str:
    return text if len(text) <= 80 else text[:77] + "..."


def _source(node: ast.AST) -> str:
    try:
        return _shown(ast.unparse(node))
    except Exception:  # unparse of odd trees; the message stays useful without the text
        return type(node).__name__


def _condition(node: ast.expr, resolve: Resolver) -> Condition:
    if isinstance(node, ast.BoolOp):
        parts = tuple(_condition(value, resolve) for value in node.values)
        return And(parts) if isinstance(node.op, ast.And) else Or(parts)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return Not(_condition(node.operand, resolve))
    if isinstance(node, ast.Compare):
        return _compare(node, resolve)
    raise _Outside(
        f"{_source(node)!r} is not a comparison. Compare it explicitly, e.g. `{_source(node)} == True`."
        if _is_operand_like(node)
        else f"{_what(node)} {_source(node)!r} is not allowed in a condition."
    )


def _is_operand_like(node: ast.expr) -> bool:
    return isinstance(node, (ast.Name, ast.Subscript, ast.Constant))


def _compare(node: ast.Compare, resolve: Resolver) -> Condition:
    parts: list[Condition] = []
    left_node = node.left
    for op, right_node in zip(node.ops, node.comparators):
        if isinstance(op, (ast.In, ast.NotIn)):
            if not isinstance(right_node, (ast.List, ast.Tuple)):
                raise _Outside(f"`in` needs a literal list such as ['a', 'b'], got {_source(right_node)!r}.")
            member = InList(_operand(left_node, resolve), tuple(_operand(e, resolve) for e in right_node.elts))
            parts.append(Not(member) if isinstance(op, ast.NotIn) else member)
        elif type(op) in _OPS:
            parts.append(Compare(_OPS[type(op)], _operand(left_node, resolve), _operand(right_node, resolve)))
        else:  # is, is not
            raise _Outside(f"{type(op).__name__!r} comparisons are not allowed; use == or !=.")
        left_node = right_node
    return parts[0] if len(parts) == 1 else And(tuple(parts))


def _operand(node: ast.expr, resolve: Resolver) -> Operand:
    literal = _literal(node)
    if literal is not None:
        return literal
    keys: list[str | int] = []
    base = node
    while isinstance(base, ast.Subscript):
        keys.append(_key(base.slice))
        base = base.value
    if isinstance(base, ast.Name):
        return resolve(base.id, tuple(reversed(keys)))
    raise _Outside(f"{_what(node)} {_source(node)!r} is not allowed in a condition.")


def _literal(node: ast.expr) -> JsonLiteral | None:
    sign = 1
    inner = node
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = node.operand
        sign = -1 if isinstance(node.op, ast.USub) else 1
        if not (isinstance(inner, ast.Constant) and _is_number(inner.value)):
            raise _Outside(f"arithmetic {_source(node)!r} is not allowed in a condition.")
    if not isinstance(inner, ast.Constant):
        return None
    value = inner.value
    if isinstance(value, (bool, str)):
        return JsonLiteral(value)
    if isinstance(value, (int, float)):
        number = sign * value
        if isinstance(number, float) and not math.isfinite(number):
            raise _Outside(f"{_source(node)!r} is not a finite number, so it is not JSON.")
        return JsonLiteral(number)
    shown = "None (null)" if value is None else f"{type(value).__name__} {_source(node)!r}"
    raise _Outside(f"{shown} is not a JSON value a condition can compare; use a string, number, True or False.")


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _key(node: ast.expr) -> str | int:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant):
        raise _Outside(f"index {_source(node)} is negative; SageMaker's JSON paths count from 0.")
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
        return node.value
    raise _Outside(f"key {_source(node)!r} is not a literal string or index.")


def _what(node: ast.AST) -> str:
    if isinstance(node, ast.Call):
        return "the call"
    if isinstance(node, (ast.BinOp, ast.UnaryOp)):
        return "arithmetic"
    if isinstance(node, ast.Attribute):
        return "the attribute"
    if isinstance(node, (ast.Set, ast.Dict, ast.List, ast.Tuple)):
        return "the collection"
    return "the expression"


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
