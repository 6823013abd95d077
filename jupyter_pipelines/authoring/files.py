"""Which ``%%writefile`` files a step depends on, so editing one of them reruns exactly the steps that use it.

A step uses a tracked file when its code (or a prelude part it uses) names the path in a string literal
(``open("data/params.json")``) or imports it as a module (``from code.helpers import f`` is ``code/helpers.py``), and,
transitively, whatever a tracked Python file itself imports or names -- relative to the notebook directory or to the
importing file's own directory (``python code/run.py`` puts ``code/`` on ``sys.path``).
"""

from __future__ import annotations

import ast
import posixpath
import warnings
from collections.abc import Iterable, Mapping

from ..model import TrackedFile
from .scopes import analyze_scopes

__all__ = ["files_used"]


def _module_paths(dotted: str, base: str = "") -> Iterable[str]:
    stem = posixpath.join(base, *dotted.split("."))
    return (stem + ".py", posixpath.join(stem, "__init__.py"))


def _literal_path(text: str) -> str | None:
    if not text or "\x00" in text or text.startswith("/") or len(text) > 4096:
        return None
    return posixpath.normpath(text)


def files_used(literals: Iterable[str], imported: Iterable[str], files: Mapping[str, TrackedFile]) -> tuple[str, ...]:
    """Tracked files named by string literals or imported as modules, and, transitively, what those import."""
    found: set[str] = set()
    todo: list[tuple[Iterable[str], Iterable[str], str]] = [(literals, imported, "")]
    while todo:
        texts, modules, base = todo.pop()
        candidates = {p for p in map(_literal_path, texts) if p is not None}
        for dotted in modules:
            candidates.update(_module_paths(dotted))
            if base:
                candidates.update(_module_paths(dotted, base))
        for path in candidates:
            if path in files and path not in found:
                found.add(path)
                if path.endswith(".py"):
                    todo.append((*_file_references(files[path].content), posixpath.dirname(path)))
    return tuple(path for path in files if path in found)


def _file_references(content: str) -> tuple[frozenset[str], tuple[str, ...]]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scopes = analyze_scopes(ast.parse(content))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return frozenset(), ()
    return frozenset(scopes.string_literals), tuple(scopes.imported)
