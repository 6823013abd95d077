"""Plain cells (no header) become prelude candidates: their imports, defs, classes and literal constants.

A step that uses one of them gets that statement's exact source shipped with it, so it runs the same in a fresh
process as in the kernel. Anything else a plain cell binds (``df2 = df.dropna()``, ``x = f(3)``, a ``for`` loop
variable) is *computed* outside any step: its value is hidden kernel state, so a step reading it is an error the
builder reports. Expression statements and blocks that bind nothing (``df.head()``, ``if __name__ == ...``) are
scratch work and are ignored.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..model import PreludeKind, PreludePart
from .analysis import analyze_tree, parse_code

__all__ = ["PlainCell", "plain_cell_parts", "statement_kind"]

_IMPORT_ERRORS = {"ImportError", "ModuleNotFoundError"}


@dataclass(frozen=True)
class PlainCell:
    """A plain cell's prelude parts and the names it computes (name -> cell line of the computing statement).

    Only the *final* binding of each name in the cell counts: ``x = 1`` then ``x = load()`` computes ``x``;
    ``x = load()`` then ``x = 1`` makes ``x`` a constant part.
    """

    parts: tuple[PreludePart, ...] = ()
    computed: dict[str, int] = field(default_factory=dict)
    binders: Mapping[str, str] = field(default_factory=dict)  # name -> key of the part that binds it last
    imported: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # part key -> dotted names it imports
    literals: Mapping[str, frozenset[str]] = field(default_factory=dict)  # part key -> its string literals
    star_imports: tuple[str, ...] = ()  # modules imported with ``from M import *`` (their names are unknowable)


def _is_literal(node: ast.expr) -> bool:
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def _simple_targets(targets: list[ast.expr]) -> bool:
    def simple(target: ast.expr) -> bool:
        if isinstance(target, ast.Name):
            return True
        return isinstance(target, (ast.Tuple, ast.List)) and all(isinstance(e, ast.Name) for e in target.elts)

    return all(simple(t) for t in targets)


def _guarded_import(node: ast.Try) -> bool:
    """``try: import x`` / ``except ImportError: <imports, pass or literal fallbacks>`` is an import."""
    if node.orelse or node.finalbody or not node.body or not node.handlers:
        return False
    if not all(isinstance(s, (ast.Import, ast.ImportFrom)) for s in node.body):
        return False
    for handler in node.handlers:
        caught = handler.type
        names = caught.elts if isinstance(caught, ast.Tuple) else [caught]
        if not all(isinstance(n, ast.Name) and n.id in _IMPORT_ERRORS for n in names):
            return False
        if not all(isinstance(s, (ast.Import, ast.ImportFrom, ast.Pass)) or _constant(s) for s in handler.body):
            return False
    return True


def _constant(node: ast.stmt) -> bool:
    if isinstance(node, ast.Assign):
        return _simple_targets(node.targets) and _is_literal(node.value)
    if isinstance(node, ast.AnnAssign):
        return node.value is not None and isinstance(node.target, ast.Name) and _is_literal(node.value)
    return False


def statement_kind(node: ast.stmt) -> PreludeKind | None:
    """The prelude kind of a top-level statement, or None if it is computed or scratch work."""
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return "import"
    if isinstance(node, ast.Try) and _guarded_import(node):
        return "import"
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return "function"
    if isinstance(node, ast.ClassDef):
        return "class"
    if _constant(node):
        return "constant"
    return None


def _source(text: str, lines: list[str], node: ast.stmt) -> tuple[str, int]:
    """Exact source of a statement, decorators included, and its first line within the body."""
    decorators = getattr(node, "decorator_list", [])
    if decorators:
        start = min(d.lineno for d in decorators)
        end = node.end_lineno or node.lineno
        segment = "".join(lines[start - 1 : end]).rstrip("\r\n")
        last = lines[end - 1].encode("utf-8", "surrogatepass")
        tail = last[node.end_col_offset :].decode("utf-8", "replace").rstrip("\r\n")
        if tail:
            segment = segment[: len(segment) - len(tail)]
        return segment, start
    return ast.get_source_segment(text, node) or "", node.lineno


def plain_cell_parts(body: str, *, cell_index: int, first_line: int) -> PlainCell:
    """Split a plain cell into prelude parts (keys ``"<cell_index>:<statement_index>"``) and computed names."""
    tree, text = parse_code(body, where=f"cell {cell_index + 1}", first_line=first_line)
    lines = text.splitlines(keepends=True)
    parts: dict[str, PreludePart] = {}
    final: dict[str, str | int] = {}  # name -> part key that binds it last, or cell line of a computing statement
    imported: dict[str, tuple[str, ...]] = {}
    literals: dict[str, frozenset[str]] = {}
    stars: list[str] = []
    for index, node in enumerate(tree.body):
        if isinstance(node, ast.ImportFrom) and any(alias.name == "*" for alias in node.names):
            stars.append("." * node.level + (node.module or ""))
        info = analyze_tree(ast.Module(body=[node], type_ignores=[]), text)
        kind = statement_kind(node)
        line = first_line + node.lineno - 1
        if kind is None:
            for name in info.binds:
                final[name] = line
            continue
        key = f"{cell_index}:{index}"
        source, start = _source(text, lines, node)
        parts[key] = PreludePart(
            key=key,
            kind=kind,
            source=source,
            binds=info.binds,
            uses=info.reads,
            cell_index=cell_index,
            line=first_line + start - 1,
            modules=info.modules if kind == "import" else (),
        )
        imported[key] = info.imported
        literals[key] = info.string_literals
        for name in info.binds:
            final[name] = key
    computed = {name: where for name, where in final.items() if isinstance(where, int)}
    binders = {name: key for name, key in final.items() if isinstance(key, str)}
    kept = set(binders.values())
    return PlainCell(
        parts=tuple(part for key, part in parts.items() if key in kept),
        computed=computed,
        binders=binders,
        imported={key: value for key, value in imported.items() if key in kept},
        literals={key: value for key, value in literals.items() if key in kept},
        star_imports=tuple(stars),
    )
