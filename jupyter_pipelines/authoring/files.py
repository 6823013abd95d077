"""Which ``%%writefile`` files a step depends on, so editing one of them reruns exactly the steps that use it.

A step uses a tracked file when its code (or a prelude part it uses) names the path in a string literal
(``open("data/params.json")``) or imports it as a module (``from code.helpers import f`` is ``code/helpers.py``), and,
transitively, whatever a tracked Python file itself imports or names -- relative to the notebook directory or to the
importing file's own directory (``python code/run.py`` puts ``code/`` on ``sys.path``).

It also picks, from a step's string literals, those that may name data files (:func:`path_literals`): a generous
superset that the engine narrows to existing files at run time.
"""

from __future__ import annotations

import ast
import functools
import posixpath
import re
import warnings
from collections.abc import Iterable, Mapping

from ..model import TrackedFile
from .scopes import analyze_scopes

__all__ = ["files_used", "looks_like_path", "path_literals", "python_references"]

_MAX_PATH = 4096
_PRINTF = re.compile(r"%[-#0 +]*(?:[0-9]+|\*)?(?:\.[0-9]+)?[A-Za-z%]")  # "%s", "%.2f", strftime's "%Y-%m-%d"


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
                    todo.append((*python_references(files[path].content), posixpath.dirname(path)))
    return tuple(path for path in files if path in found)


@functools.lru_cache(maxsize=256)
def python_references(content: str) -> tuple[frozenset[str], tuple[str, ...]]:
    """The string literals and imported dotted names of a Python file (nothing if it does not parse)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scopes = analyze_scopes(ast.parse(content))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return frozenset(), ()
    return frozenset(scopes.string_literals), tuple(scopes.imported)


def looks_like_path(text: str) -> bool:
    """Whether a string literal could name a file or directory (relative or absolute); errs on the side of yes.

    No: empty or blank text, several lines, 4096 characters or more, a NUL, a template with ``{``/``}``, a printf or
    strftime pattern (``%s``, ``%Y-%m-%d``), a URL, and paths made only of ``/``, ``.`` and ``..``.
    """
    if not text or len(text) >= _MAX_PATH or not text.strip():
        return False
    if any(char in text for char in "\n\r\x00{}") or "://" in text or _PRINTF.search(text):
        return False
    return not all(part in ("", ".", "..") for part in text.split("/"))


def path_literals(literals: Iterable[str]) -> tuple[str, ...]:
    """The literals that may be paths (:func:`looks_like_path`), as written, sorted and without repeats."""
    return tuple(sorted({text for text in literals if looks_like_path(text)}))
