"""Static analysis of one cell body with ``ast``: what it reads, what it binds, what it imports, its digest.

Cell bodies may contain IPython syntax that ``ast`` cannot parse: a line whose first non-blank character is ``%``,
``!`` or ``?`` (line magics, shell escapes, help) is blanked out before parsing, and ``x = !ls`` / ``x = %sx ls``
keep only their binding (``x = None``), so line numbers stay those of the cell. A body that parses as Python as it is
is never rewritten (``(a\\n % b)`` is a modulo, not a magic).
"""

from __future__ import annotations

import ast
import hashlib
import re
import warnings
from dataclasses import dataclass, field

from ..errors import AnalysisError
from .scopes import analyze_scopes

__all__ = ["CodeInfo", "analyze_code", "analyze_tree", "code_digest", "parse_code", "without_ipython_syntax"]

_IPYTHON_LINE = re.compile(r"[ \t]*[%!?]")
_ASSIGN_FROM_SHELL = re.compile(
    r"([ \t]*)([A-Za-z_][A-Za-z0-9_]*(?:[ \t]*,[ \t]*[A-Za-z_][A-Za-z0-9_]*)*)[ \t]*=[ \t]*[%!]"
)


@dataclass(frozen=True)
class CodeInfo:
    """What the dependency builder needs to know about a cell body."""

    reads: frozenset[str]  # outside globals read (builtins excluded)
    binds: tuple[str, ...]  # top-level names bound at the end, in order of first binding
    imports: dict[str, str] = field(default_factory=dict)  # top-level name -> module or module.member it imports
    modules: tuple[str, ...] = ()  # top-level modules any import loads (``import a.b`` -> ``a``)
    functions: tuple[str, ...] = ()
    classes: tuple[str, ...] = ()
    last_expression: bool = False  # ends in an expression statement whose value IPython would display
    digest: str = ""  # of the AST: comments and whitespace do not change it
    string_literals: frozenset[str] = frozenset()
    imported: tuple[str, ...] = ()  # dotted names imports mention (``from a.b import c`` -> a.b, a.b.c)


def without_ipython_syntax(source: str) -> str:
    """Blank out IPython-only lines, keeping line numbers, so ``ast`` can parse the rest."""
    lines = source.splitlines(keepends=True)
    for i, line in enumerate(lines):
        ending = line[len(line.rstrip("\r\n")) :]
        assignment = _ASSIGN_FROM_SHELL.match(line)
        if assignment:
            lines[i] = f"{assignment.group(1)}{assignment.group(2)} = None{ending}"
        elif _IPYTHON_LINE.match(line):
            lines[i] = ending
    return "".join(lines)


def _syntax_error(error: SyntaxError | ValueError, text: str, where: str, first_line: int) -> AnalysisError:
    if isinstance(error, SyntaxError):
        lineno = error.lineno or 1
        lines = text.splitlines()
        offending = error.text if error.text is not None else (lines[lineno - 1] if 0 < lineno <= len(lines) else "")
        offending = offending.strip()
        if len(offending) > 80:
            offending = offending[:77] + "..."
        detail = f"{error.msg}: {offending!r}" if offending else error.msg
    else:  # e.g. a null byte
        lineno, detail = 1, str(error)
    return AnalysisError(
        f"{detail}.", where=f"{where}, line {first_line + lineno - 1}", hint="Fix the code and run the cell again."
    )


def _parse(source: str) -> ast.Module:
    """``ast.parse`` without the warnings it prints for user code (invalid escapes and the like)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ast.parse(source)


def parse_code(source: str, *, where: str, first_line: int) -> tuple[ast.Module, str]:
    """Parse a cell body (IPython syntax blanked if needed); returns the tree and the text it was parsed from."""
    try:
        return _parse(source), source
    except (SyntaxError, ValueError):
        pass
    except (RecursionError, MemoryError):
        raise _too_deep(where) from None
    text = without_ipython_syntax(source)
    try:
        return _parse(text), text
    except (SyntaxError, ValueError) as error:
        raise _syntax_error(error, text, where, first_line) from None
    except (RecursionError, MemoryError):
        raise _too_deep(where) from None


def _too_deep(where: str) -> AnalysisError:
    return AnalysisError(
        "the code is nested too deeply to analyze.", where=where, hint="Split the long expression into several lines."
    )


def code_digest(tree: ast.AST) -> str:
    """Hash of the normalized AST: comments, blank lines and formatting do not count, docstrings do."""
    dump = ast.dump(tree, include_attributes=False)
    return hashlib.blake2b(dump.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def _displays_last_value(tree: ast.Module, text: str) -> bool:
    """True when the body ends in an expression IPython would display (a trailing ``;`` silences it)."""
    if not tree.body or not isinstance(tree.body[-1], ast.Expr):
        return False
    last = tree.body[-1]
    if last.end_lineno is None or last.end_col_offset is None:
        return True
    lines = text.splitlines()
    rest = lines[last.end_lineno - 1].encode("utf-8", "surrogatepass")[last.end_col_offset :]
    return not rest.decode("utf-8", "replace").lstrip().startswith(";")


def analyze_tree(tree: ast.Module, text: str) -> CodeInfo:
    """Analyze an already parsed body (``text`` is what it was parsed from)."""
    scopes = analyze_scopes(tree)
    return CodeInfo(
        reads=frozenset(scopes.reads),
        binds=tuple(scopes.binds),
        imports=dict(scopes.imports),
        modules=tuple(scopes.modules),
        functions=tuple(scopes.functions),
        classes=tuple(scopes.classes),
        last_expression=_displays_last_value(tree, text),
        digest=code_digest(tree),
        string_literals=frozenset(scopes.string_literals),
        imported=tuple(scopes.imported),
    )


def analyze_code(source: str, *, where: str, first_line: int) -> CodeInfo:
    """Analyze a cell body; ``where`` (e.g. ``step 'train' (cell 5)``) and ``first_line`` place syntax errors."""
    tree, text = parse_code(source, where=where, first_line=first_line)
    try:
        return analyze_tree(tree, text)
    except RecursionError:
        raise _too_deep(where) from None
