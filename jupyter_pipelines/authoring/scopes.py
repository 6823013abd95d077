"""Python's scoping rules, enough to know which global names a piece of module-level code reads and binds.

A cell runs top to bottom as module code, so at top level a name is *read* when it is loaded before the cell has
bound it (``print(x); x = 1`` reads ``x``; ``x = 1; print(x)`` does not; ``x += 1`` does; after ``del x`` a load
reads it again). Code that runs later -- function and lambda bodies -- reads a global only if the cell never binds it
at top level: ``def f(): return g()`` followed by ``def g(): ...`` reads nothing. Class bodies and comprehensions run
at once; default arguments, decorators and annotations are evaluated in the enclosing scope. Names local to a
function (anything it binds, unless declared ``global``/``nonlocal``) are never reads, and class-level names are
invisible to the functions and comprehensions nested in the class, exactly as in Python.
"""

from __future__ import annotations

import ast
import builtins
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["BUILTIN_NAMES", "ScopeResult", "analyze_scopes"]

# IPython puts ``display`` and ``get_ipython`` into builtins; steps may call ``display`` wherever they run.
BUILTIN_NAMES: frozenset[str] = frozenset(dir(builtins)) | {"display", "get_ipython"}

_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)
ScopeKind = Literal["module", "class", "function", "comprehension"]


@dataclass
class _Scope:
    kind: ScopeKind
    local: set[str] = field(default_factory=set)  # function/comprehension: every name bound in the scope
    declared_global: set[str] = field(default_factory=set)
    declared_nonlocal: set[str] = field(default_factory=set)
    bound: set[str] = field(default_factory=set)  # module/class: names bound so far, in execution order


@dataclass
class ScopeResult:
    """Names a module's top-level code reads from outside and binds, plus what its imports load."""

    reads: set[str] = field(default_factory=set)
    binds: dict[str, None] = field(default_factory=dict)  # ordered: first binding first
    imports: dict[str, str] = field(default_factory=dict)  # top-level bound name -> module or module.member
    modules: dict[str, None] = field(default_factory=dict)  # top-level module names any import loads
    imported: dict[str, None] = field(default_factory=dict)  # dotted names imports mention (to find local files)
    functions: dict[str, None] = field(default_factory=dict)
    classes: dict[str, None] = field(default_factory=dict)
    string_literals: set[str] = field(default_factory=set)


def _target_names(node: ast.AST) -> Iterator[str]:
    """Names a binding target stores (``a, (b, *c)`` -> a, b, c); attributes and subscripts bind nothing."""
    if isinstance(node, ast.Name):
        yield node.id
    elif isinstance(node, (ast.Tuple, ast.List)):
        for element in node.elts:
            yield from _target_names(element)
    elif isinstance(node, ast.Starred):
        yield from _target_names(node.value)


def _import_binds(node: ast.Import | ast.ImportFrom) -> Iterator[tuple[str, str]]:
    """(bound name, what it refers to) for each alias: ``import a.b`` -> (a, a); ``from a import b`` -> (b, a.b)."""
    for alias in node.names:
        if alias.name == "*":
            continue
        if isinstance(node, ast.Import):
            if alias.asname:
                yield alias.asname, alias.name
            else:
                first = alias.name.split(".")[0]
                yield first, first
        else:
            module = "." * node.level + (node.module or "")
            qualified = f"{module}.{alias.name}" if module and not module.endswith(".") else module + alias.name
            yield alias.asname or alias.name, qualified


def _walrus_targets(node: ast.AST) -> Iterator[str]:
    """Walrus targets inside a comprehension bind in the enclosing scope; find them (not inside lambdas)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.NamedExpr) and isinstance(child.target, ast.Name):
            yield child.target.id
        if not isinstance(child, ast.Lambda):
            yield from _walrus_targets(child)


def _scope_bindings(nodes: Iterable[ast.AST]) -> tuple[set[str], set[str], set[str]]:
    """(bound, declared global, declared nonlocal) for a function body, without entering nested scopes."""
    bound: set[str] = set()
    declared_global: set[str] = set()
    declared_nonlocal: set[str] = set()
    stack = list(nodes)
    while stack:
        node = stack.pop()
        if isinstance(node, (*_FUNCTIONS, ast.ClassDef)):
            bound.add(node.name)
            stack.extend(node.decorator_list)
            if isinstance(node, ast.ClassDef):
                stack.extend(node.bases)
            else:
                stack.extend(node.args.defaults)
                stack.extend(d for d in node.args.kw_defaults if d is not None)
            continue
        if isinstance(node, ast.Lambda):
            stack.extend(node.args.defaults)
            stack.extend(d for d in node.args.kw_defaults if d is not None)
            continue
        if isinstance(node, _COMPREHENSIONS):
            bound.update(_walrus_targets(node))
            stack.append(node.generators[0].iter)
            continue
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            bound.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update(name for name, _ in _import_binds(node))
        elif isinstance(node, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)) and node.name:
            bound.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            bound.add(node.rest)
        elif isinstance(node, ast.Global):
            declared_global.update(node.names)
        elif isinstance(node, ast.Nonlocal):
            declared_nonlocal.update(node.names)
        stack.extend(ast.iter_child_nodes(node))
    return bound - declared_global - declared_nonlocal, declared_global, declared_nonlocal


def _arguments_names(args: ast.arguments) -> set[str]:
    every = [*args.posonlyargs, *args.args, *args.kwonlyargs]
    every += [a for a in (args.vararg, args.kwarg) if a is not None]
    return {a.arg for a in every}


class _Visitor(ast.NodeVisitor):
    """Walks a module in execution order, resolving every load against a stack of scopes."""

    def __init__(self) -> None:
        self.result = ScopeResult()
        self.module = _Scope("module")
        self.scopes: list[_Scope] = [self.module]
        self.deferred: set[str] = set()  # globals read by code that runs later (function bodies)
        self.ever_bound: set[str] = set()  # every name bound at top level, even if deleted again
        self.in_format_spec = 0  # inside an f-string's ``:format spec``, whose text is no string literal

    # -- name resolution --------------------------------------------------------------------------------------

    def _load(self, name: str) -> None:
        deferred = False
        innermost = True
        for scope in reversed(self.scopes):
            if scope.kind == "module":
                break
            if scope.kind == "class":
                if innermost and name in scope.bound:
                    return
            elif name in scope.declared_global:
                deferred = deferred or scope.kind == "function"
                break
            elif name in scope.local:
                return
            elif scope.kind == "function":
                deferred = True
            innermost = False
        if deferred:
            self.deferred.add(name)
        elif name not in self.module.bound:
            self.result.reads.add(name)

    def _bind_global(self, name: str) -> None:
        self.module.bound.add(name)
        self.ever_bound.add(name)
        self.result.binds.setdefault(name, None)

    def _store(self, name: str) -> None:
        scope = self.scopes[-1]
        if scope.kind == "module" or (scope.kind == "function" and name in scope.declared_global):
            self._bind_global(name)
        elif scope.kind == "class":
            scope.bound.add(name)

    def _delete(self, name: str) -> None:
        scope = self.scopes[-1]
        if scope.kind in ("module", "class"):
            if name not in scope.bound:
                self._load(name)
            scope.bound.discard(name)
            if scope.kind == "module":
                self.result.binds.pop(name, None)
        elif scope.kind == "function" and name in scope.declared_global:
            self.result.binds.pop(name, None)
            self.module.bound.discard(name)

    # -- expressions ------------------------------------------------------------------------------------------

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self._load(node.id)
        elif isinstance(node.ctx, ast.Store):
            self._store(node.id)
        else:
            self._delete(node.id)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str) and not self.in_format_spec:
            self.result.string_literals.add(node.value)

    def visit_FormattedValue(self, node: ast.FormattedValue) -> None:
        self.visit(node.value)
        if node.format_spec is not None:  # f"{x:.2f}": ".2f" is not a string literal, but f"{x:{w}}" reads w
            self.in_format_spec += 1
            self.visit(node.format_spec)
            self.in_format_spec -= 1

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.visit(node.value)
        target = node.target.id
        index = len(self.scopes) - 1
        while self.scopes[index].kind == "comprehension":
            index -= 1
        saved, self.scopes = self.scopes, self.scopes[: index + 1]
        try:
            self._store(target)
        finally:
            self.scopes = saved

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._visit_defaults(node.args)
        bound, declared_global, declared_nonlocal = _scope_bindings([node.body])
        scope = _Scope("function", bound | _arguments_names(node.args), declared_global, declared_nonlocal)
        self._in_scope(scope, [node.body])

    def _visit_comprehension(self, node: ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp) -> None:
        generators = node.generators
        self.visit(generators[0].iter)  # evaluated in the enclosing scope
        local = {name for g in generators for name in _target_names(g.target)}
        self.scopes.append(_Scope("comprehension", local))
        try:
            for i, generator in enumerate(generators):
                if i:
                    self.visit(generator.iter)
                self.visit(generator.target)
                for condition in generator.ifs:
                    self.visit(condition)
            if isinstance(node, ast.DictComp):
                self.visit(node.key)
                self.visit(node.value)
            else:
                self.visit(node.elt)
        finally:
            self.scopes.pop()

    visit_ListComp = visit_SetComp = visit_GeneratorExp = visit_DictComp = _visit_comprehension

    # -- statements -------------------------------------------------------------------------------------------

    def visit_Assign(self, node: ast.Assign) -> None:
        self.visit(node.value)
        for target in node.targets:
            self.visit(target)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if isinstance(node.target, ast.Name):
            self._load(node.target.id)
        self.visit(node.value)
        self.visit(node.target)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self.visit(node.annotation)
        if node.value is not None:
            self.visit(node.value)
            self.visit(node.target)
        elif not isinstance(node.target, ast.Name):
            self.visit(node.target)

    def visit_For(self, node: ast.For | ast.AsyncFor) -> None:
        self.visit(node.iter)
        self.visit(node.target)
        self._visit_all(node.body)
        self._visit_all(node.orelse)

    visit_AsyncFor = visit_For

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.type is not None:
            self.visit(node.type)
        if node.name:
            self._store(node.name)
        self._visit_all(node.body)
        if node.name:  # Python deletes the name when the handler ends
            scope = self.scopes[-1]
            scope.bound.discard(node.name)
            if scope.kind == "module":
                self.result.binds.pop(node.name, None)

    def visit_Import(self, node: ast.Import | ast.ImportFrom) -> None:
        result = self.result
        if isinstance(node, ast.Import):
            for alias in node.names:
                result.modules.setdefault(alias.name.split(".")[0], None)
                result.imported.setdefault(alias.name, None)
        elif node.level == 0 and node.module:
            result.modules.setdefault(node.module.split(".")[0], None)
            result.imported.setdefault(node.module, None)
            for alias in node.names:
                if alias.name != "*":
                    result.imported.setdefault(f"{node.module}.{alias.name}", None)
        for name, qualified in _import_binds(node):
            if self.scopes[-1].kind == "module":
                result.imports[name] = qualified
            self._store(name)

    visit_ImportFrom = visit_Import

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self._visit_all(node.decorator_list)
        self._visit_defaults(node.args)
        self._visit_annotations(node.args)
        if node.returns is not None:
            self.visit(node.returns)
        self._store(node.name)
        if len(self.scopes) == 1:
            self.result.functions.setdefault(node.name, None)
        bound, declared_global, declared_nonlocal = _scope_bindings(node.body)
        scope = _Scope("function", bound | _arguments_names(node.args), declared_global, declared_nonlocal)
        self._in_scope(scope, node.body)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._visit_all(node.decorator_list)
        self._visit_all(node.bases)
        for keyword in node.keywords:
            self.visit(keyword.value)
        self._in_scope(_Scope("class"), node.body)
        self._store(node.name)
        if len(self.scopes) == 1:
            self.result.classes.setdefault(node.name, None)

    def visit_Global(self, node: ast.Global) -> None:
        """Declarations were collected when the function scope was entered."""

    def visit_Nonlocal(self, node: ast.Nonlocal) -> None:
        """Declarations were collected when the function scope was entered."""

    def visit_MatchAs(self, node: ast.MatchAs) -> None:
        if node.pattern is not None:
            self.visit(node.pattern)
        if node.name:
            self._store(node.name)

    def visit_MatchStar(self, node: ast.MatchStar) -> None:
        if node.name:
            self._store(node.name)

    def visit_MatchMapping(self, node: ast.MatchMapping) -> None:
        self._visit_all(node.keys)
        self._visit_all(node.patterns)
        if node.rest:
            self._store(node.rest)

    # -- helpers ----------------------------------------------------------------------------------------------

    def _visit_all(self, nodes: Iterable[ast.AST]) -> None:
        for node in nodes:
            self.visit(node)

    def _visit_defaults(self, args: ast.arguments) -> None:
        self._visit_all(args.defaults)
        self._visit_all(d for d in args.kw_defaults if d is not None)

    def _visit_annotations(self, args: ast.arguments) -> None:
        every = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
        self._visit_all(a.annotation for a in every if a is not None and a.annotation is not None)

    def _in_scope(self, scope: _Scope, body: Iterable[ast.AST]) -> None:
        self.scopes.append(scope)
        try:
            self._visit_all(body)
        finally:
            self.scopes.pop()


def analyze_scopes(tree: ast.Module) -> ScopeResult:
    """Which outside globals ``tree`` reads (builtins excluded) and which names its top level binds, in order."""
    visitor = _Visitor()
    visitor.visit(tree)
    result = visitor.result
    result.reads |= visitor.deferred - visitor.ever_bound
    result.reads -= BUILTIN_NAMES
    return result
