"""The ``--when`` grammar: one parser and one evaluator, shared by the local engine and the SageMaker export.

A condition is what SageMaker's ``ConditionStep`` can express, written in Python syntax::

    condition := operand OP operand [OP operand ...]   OP: == != < <= > >=  (a chain means "and")
               | operand in [operand, ...]             also ``not in``, with a literal list or tuple
               | not condition | condition and condition | condition or condition | ( condition )
    operand   := NAME ['key' | 0 ...]                  an upstream step's value with literal keys, or a parameter
               | JSON scalar                           'text', 3, -2.5, True, False

Anything else (a call, arithmetic, an attribute, a variable key, ``None``, a set) is outside the grammar, because
SageMaker could not evaluate it: :func:`parse_condition` raises an :class:`AnalysisError` that shows the grammar.
Names are resolved by the caller (the builder knows which step binds what). Evaluating (:func:`evaluate`,
:func:`fail_message`, :class:`ConditionError`, the walkers) lives in ``jupyter_pipelines.condition_eval``, which the
engine may import; they are re-exported here.
"""

from __future__ import annotations

import ast
import math
import warnings
from collections.abc import Callable

from ..condition_eval import (
    ConditionError,
    condition_operands,
    evaluate,
    fail_message,
    first_read,
    value_refs,
)
from ..errors import AnalysisError
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
