"""The pipeline model: the one intermediate representation every layer speaks.

Authoring builds it from cells (live in a kernel, or offline from an ``.ipynb``); the engine runs it; the widget
draws it; the SageMaker exporter translates it. It is plain frozen data with no I/O and no IPython, so each of
those layers can be tested on a model built by hand.

Everything the engine needs is already worked out here by authoring: each step's code and its normalized-code
digest, the prelude parts it uses (in execution order), the names it takes from which upstream step, the
parameters it reads, the tracked files it runs, the data files it declares or may name, the modules it imports.
The engine never parses a cell.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ParameterType = Literal["str", "int", "float", "bool"]
ParameterValue = str | int | float | bool
Executor = Literal["process", "kernel", "container"]
PreludeKind = Literal["import", "function", "class", "constant"]
EdgeReason = Literal["reads", "after"]
CacheScope = Literal["pipeline", "shared"]
StepKind = Literal["processing", "training", "model", "register", "transform"]
CompareOp = Literal["==", "!=", "<", "<=", ">", ">="]
JsonScalar = str | int | float | bool

PARAMETER_TYPES: tuple[ParameterType, ...] = ("str", "int", "float", "bool")
EXECUTORS: tuple[Executor, ...] = ("process", "kernel", "container")
CACHE_SCOPES: tuple[CacheScope, ...] = ("pipeline", "shared")
STEP_KINDS: tuple[StepKind, ...] = ("processing", "training", "model", "register", "transform")
COMPARE_OPS: tuple[CompareOp, ...] = ("==", "!=", "<", "<=", ">", ">=")
STEP_NAME_PATTERN = r"[A-Za-z0-9_-]{1,64}"


@dataclass(frozen=True)
class Parameter:
    """A typed pipeline parameter declared in a ``%%parameters`` cell (``name: type = default``)."""

    name: str
    type: ParameterType
    default: ParameterValue
    cell_index: int = 0


@dataclass(frozen=True)
class PreludePart:
    """One top-level statement of a plain cell that steps may use: an import, a ``def``, a ``class`` or a literal.

    ``binds`` are the names the statement defines (``import numpy as np`` binds ``np``; ``from a import b, c``
    binds ``b`` and ``c``). ``uses`` are the other prelude names its body needs, so a helper that calls another
    helper pulls that one in too.
    """

    key: str  # stable identity within the pipeline: "<cell_index>:<statement_index>"
    kind: PreludeKind
    source: str
    binds: tuple[str, ...]
    uses: frozenset[str] = frozenset()
    cell_index: int = 0
    line: int = 1  # first line of the statement within its cell (1-based)
    modules: tuple[str, ...] = ()  # top-level modules an import statement loads (for warm workers, versions)


@dataclass(frozen=True)
class TrackedFile:
    """A file written by a ``%%writefile`` cell: its content is part of the pipeline (and of a step's signature)."""

    path: str  # as written in the cell, relative to the notebook directory
    content: str
    cell_index: int = 0
    step: str | None = None  # set by ``%%writefile --step NAME PATH``


@dataclass(frozen=True)
class StepInput:
    """A name a step reads, and the upstream step that binds it (the latest one in an earlier cell)."""

    name: str
    step: str


@dataclass(frozen=True)
class CacheConfig:
    """Whether a step's successful result may be reused, and for how long.

    ``expire_after`` is a normalized ISO 8601 duration (``durations.parse_duration(...).iso``, e.g. ``"P30D"``), or
    None: kept until cleared. ``--no-cache`` is ``enabled=False``; ``--cache DURATION`` sets ``expire_after``.
    """

    enabled: bool = True
    expire_after: str | None = None


# ---- conditions (``--when``): one tree for the local engine and the SageMaker export ---------------------------


@dataclass(frozen=True)
class ValueRef:
    """An upstream step's output, optionally subscripted with literal keys: ``report['mse']['value']``."""

    step: str
    name: str
    path: tuple[str | int, ...] = ()


@dataclass(frozen=True)
class ParameterRef:
    """A pipeline parameter's value."""

    name: str


@dataclass(frozen=True)
class JsonLiteral:
    """A JSON scalar written in the condition (a string, a whole or finite number, true or false)."""

    value: JsonScalar


Operand = ValueRef | ParameterRef | JsonLiteral


@dataclass(frozen=True)
class Compare:
    """``left OP right`` with one of :data:`COMPARE_OPS`."""

    op: CompareOp
    left: Operand
    right: Operand


@dataclass(frozen=True)
class InList:
    """``operand in [v1, v2, ...]`` (``not in`` is ``Not(InList(...))``)."""

    operand: Operand
    values: tuple[Operand, ...]


@dataclass(frozen=True)
class Not:
    condition: Condition


@dataclass(frozen=True)
class And:
    conditions: tuple[Condition, ...]


@dataclass(frozen=True)
class Or:
    conditions: tuple[Condition, ...]


Condition = Compare | InList | Not | And | Or


@dataclass(frozen=True)
class Step:
    """One pipeline step: a ``%%step`` cell, or a script (``--script`` / ``%%writefile --step``)."""

    name: str
    code: str  # the cell body below the header ("" for a script step)
    cell_index: int = 0
    cell_id: str | None = None
    code_line: int = 2  # cell line number of the first line of ``code`` (the header is line 1)
    code_digest: str = ""  # hash of the normalized AST: comments and whitespace do not count
    inputs: tuple[StepInput, ...] = ()
    parameters: tuple[str, ...] = ()  # parameter names the step reads
    prelude: tuple[str, ...] = ()  # keys of the PreludePart s it needs (transitively), in notebook order
    binds: tuple[str, ...] = ()  # top-level names it binds that are outputs (no modules, no _private names)
    outputs: tuple[str, ...] = ()  # ``--outputs``: names that must be outputs (missing one is an error)
    after: tuple[str, ...] = ()  # ``--after``: explicit upstream steps
    script: str | None = None  # path of the script to run as ``python PATH``
    env: tuple[tuple[str, str], ...] = ()
    executor: Executor = "process"
    retry: int = 0
    timeout: float | None = None
    cache: CacheConfig = field(default_factory=CacheConfig)
    # ``--cache-scope``: "pipeline" reuses only results this pipeline stored; "shared" also those of an identical
    # step (same signature) in another pipeline of the same store.
    cache_scope: CacheScope = "pipeline"
    files: tuple[str, ...] = ()  # tracked files (paths) the step runs or reads, content in Pipeline.files
    # ``--inputs``: data files or directories the step reads, as declared: relative ones normalized and inside the
    # notebook directory, absolute ones (data outside the project) as normalized absolute paths. Only ever read.
    data_inputs: tuple[str, ...] = ()
    # String literals, as written, in the step's code, the prelude parts it uses and the tracked Python files it
    # runs or imports, that could be file paths (relative or absolute; one line, under 4096 characters; not
    # templates with "{", printf/strftime patterns, URLs, or just "/", "." and ".."). A superset: the engine keeps
    # those naming existing files (relative to the notebook directory) and fingerprints them.
    path_literals: tuple[str, ...] = ()
    # Sorted top-level modules imported (anywhere, also inside functions) by the step's code, the prelude parts it
    # uses and the tracked Python files it runs or imports; stdlib and local modules included (``import a.b`` ->
    # "a"; relative imports are not modules). The engine looks up their package versions for the cache key.
    modules: tuple[str, ...] = ()
    last_expression: bool = False  # the body ends in an expression whose value is displayed
    # ``--kind``: what SageMaker job the step becomes (locally every kind runs its cell; see the engine for the rest)
    kind: StepKind = "processing"
    image: str | None = None  # ``--image URI``: the image on SageMaker, and locally with ``--executor container``
    # ``--executor container`` (see engine/containers.py): ``--local-image`` replaces ``image`` for local runs only;
    # ``--cpus``/``--memory`` limit the container (memory as Docker writes it: "512m", "2g"); no network unless
    # ``--network``. ``executor_given``: the header said ``--executor`` (else a pipeline-wide default applies).
    local_image: str | None = None
    cpus: float | None = None
    memory: str | None = None
    network: bool = False
    executor_given: bool = False
    framework: str | None = None  # ``--framework NAME:VERSION``, resolved to an image URI per region at export
    instance_type: str | None = None  # ``--instance-type ml.m5.large``
    instance_count: int | str | None = None  # ``--instance-count``: a number, or the name of an int parameter
    requirements: str | None = None  # ``--requirements FILE``: pip requirements installed before the step runs
    # ``--when``: run the step only if the condition holds (its ValueRef steps are upstream, through ``inputs``)
    condition: Condition | None = None
    condition_text: str | None = None  # the ``--when`` expression as written
    condition_step: str | None = None  # name of the (shared) condition step; set whenever ``condition`` is
    # ``--else-fail``: the message ("{value}": the first value the condition reads). Like ``condition_step`` and
    # ``fail_step``, shared by every step with an equal condition (given on one of them, set on all).
    else_fail: str | None = None
    fail_step: str | None = None  # name of the fail step; set whenever ``else_fail`` is

    @property
    def upstream(self) -> tuple[str, ...]:
        """Direct upstream steps, in a stable order: those it reads from, then ``--after`` ones."""
        names = dict.fromkeys(i.step for i in self.inputs)
        names.update(dict.fromkeys(self.after))
        return tuple(names)

    @property
    def output_names(self) -> tuple[str, ...]:
        """Every name the step publishes: what it binds plus what ``--outputs`` insists on."""
        return tuple(dict.fromkeys(self.binds + self.outputs))


@dataclass(frozen=True)
class Edge:
    """Why ``downstream`` depends on ``upstream``: the names that flow along the edge, or an explicit ``--after``."""

    upstream: str
    downstream: str
    names: tuple[str, ...] = ()
    reason: EdgeReason = "reads"


@dataclass(frozen=True)
class Pipeline:
    """A whole pipeline. ``steps`` are in run order: topological, and in notebook order wherever the dependencies
    allow (a step moves below a later cell only when its ``--after`` names a step defined further down)."""

    name: str
    steps: tuple[Step, ...] = ()
    parameters: tuple[Parameter, ...] = ()
    prelude: tuple[PreludePart, ...] = ()
    files: tuple[TrackedFile, ...] = ()

    def step(self, name: str) -> Step:
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)

    def parameter(self, name: str) -> Parameter:
        for parameter in self.parameters:
            if parameter.name == name:
                return parameter
        raise KeyError(name)

    def prelude_part(self, key: str) -> PreludePart:
        for part in self.prelude:
            if part.key == key:
                return part
        raise KeyError(key)

    def file(self, path: str) -> TrackedFile:
        for tracked in self.files:
            if tracked.path == path:
                return tracked
        raise KeyError(path)

    @property
    def step_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.steps)

    @property
    def edges(self) -> tuple[Edge, ...]:
        """Every dependency edge with the names that flow along it (``reads``) or ``after`` when explicit."""
        result: list[Edge] = []
        for step in self.steps:
            by_upstream: dict[str, list[str]] = {}
            for item in step.inputs:
                by_upstream.setdefault(item.step, []).append(item.name)
            for upstream, names in by_upstream.items():
                result.append(Edge(upstream, step.name, tuple(names), "reads"))
            for upstream in step.after:
                if upstream not in by_upstream:
                    result.append(Edge(upstream, step.name, (), "after"))
        return tuple(result)

    def downstream_of(self, names: set[str] | frozenset[str]) -> set[str]:
        """The given steps and every step that depends on them, directly or not."""
        closed = set(names)
        for step in self.steps:  # steps are in topological order, so one pass suffices
            if closed.intersection(step.upstream):
                closed.add(step.name)
        return closed

    def upstream_of(self, names: set[str] | frozenset[str]) -> set[str]:
        """The given steps and every step they depend on, directly or not."""
        closed = set(names)
        for step in reversed(self.steps):
            if step.name in closed:
                closed.update(step.upstream)
        return closed
