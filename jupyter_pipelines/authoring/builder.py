"""Cells in, a validated Pipeline out: which cell is what, and who depends on whom.

Cells are a notebook's code cells in notebook order; ``Cell.index`` is the position among *all* its cells (0-based)
and messages say ``cell N`` with ``N = index + 1``, the number a user counts to in JupyterLab.

The one dependency rule: a name a step reads is bound by the **latest earlier** cell that binds it -- a step (its
outputs), a ``%%parameters`` cell, or a plain cell's import/def/class/constant (the prelude). Prelude parts pull in,
transitively, what they themselves use (and a helper reading a parameter makes the step read it). A name bound only
by a computation outside any step, or by nothing above, is an error: hidden kernel state never leaks into a run.
"""

from __future__ import annotations

import bisect
import posixpath
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from ..errors import AnalysisError, HeaderError, ParameterError
from ..model import (
    STEP_NAME_PATTERN,
    CacheConfig,
    Condition,
    Operand,
    Parameter,
    ParameterRef,
    Pipeline,
    PreludePart,
    Step,
    StepInput,
    TrackedFile,
    ValueRef,
)
from .analysis import CodeInfo, analyze_code, parse_code
from .conditions import GRAMMAR, parse_condition
from .describe import describe_pipeline
from .files import files_used, path_literals, python_references
from .header import ParametersHeader, StepHeader, WritefileHeader, split_cell
from .ordering import check_after, sort_steps
from .parameters import declared_parameters
from .prelude import PlainCell, plain_cell_parts

__all__ = ["Cell", "build_pipeline", "cell_label", "describe_pipeline"]


@dataclass(frozen=True)
class Cell:
    """A notebook code cell: ``index`` is its 0-based position among all cells (shown as ``cell index+1``)."""

    index: int
    source: str
    id: str | None = None


def cell_label(index: int) -> str:
    """How messages name a cell: 1-based, as a user counts cells in the notebook."""
    return f"cell {index + 1}"


# ---- what each cell turned out to be ----------------------------------------------------------------------------


@dataclass
class _StepCell:
    header: StepHeader
    cell: Cell
    body: str
    first_line: int
    info: CodeInfo | None  # None for a script step
    script: str | None = None

    @property
    def label(self) -> str:
        return f"step {self.header.name!r} ({cell_label(self.cell.index)})"

    @property
    def outputs(self) -> tuple[str, ...]:
        """Published names: top-level binds minus imported names and ``_private`` ones."""
        if self.info is None:
            return ()
        return tuple(n for n in self.info.binds if n not in self.info.imports and not n.startswith("_"))


@dataclass(frozen=True)
class _Binder:
    """Who binds a name: a step, a parameter, a prelude part, or a computation in a plain cell."""

    kind: str  # "step" | "parameter" | "part" | "computed"
    cell: int
    ref: str  # step name, parameter name, part key, or "" for computed
    line: int = 0

    def describe(self) -> str:
        where = cell_label(self.cell)
        return {
            "step": f"step {self.ref!r} ({where}) binds it",
            "parameter": f"the %%parameters cell ({where}) declares it",
            "part": f"{where} defines it",
            "computed": f"{where} computes it",
        }[self.kind]


@dataclass
class _Notebook:
    """Everything collected from the cells, before dependencies are resolved."""

    steps: list[_StepCell] = field(default_factory=list)
    parameters: list[Parameter] = field(default_factory=list)
    plain: dict[int, PlainCell] = field(default_factory=dict)
    files: dict[str, TrackedFile] = field(default_factory=dict)
    binders: dict[str, list[_Binder]] = field(default_factory=dict)  # name -> binders in notebook order
    hidden: dict[str, list[tuple[int, str, str]]] = field(default_factory=dict)  # name -> (cell, step, why)

    def bind(self, name: str, binder: _Binder) -> None:
        self.binders.setdefault(name, []).append(binder)

    def latest(self, name: str, before: int) -> _Binder | None:
        """The latest binder of ``name`` in a cell strictly before ``before``."""
        binders = self.binders.get(name, [])
        position = bisect.bisect_left([b.cell for b in binders], before)
        return binders[position - 1] if position else None

    def later(self, name: str, after: int) -> _Binder | None:
        return next((b for b in self.binders.get(name, []) if b.cell >= after), None)


# ---- reading the cells ------------------------------------------------------------------------------------------


def _read_cell(notebook: _Notebook, cell: Cell) -> None:
    try:
        header, body, first_line = split_cell(cell.source)
    except HeaderError as error:
        raise HeaderError(str(error), where=cell_label(cell.index)) from None
    if isinstance(header, StepHeader):
        _read_step(notebook, cell, header, body, first_line)
    elif isinstance(header, ParametersHeader):
        notebook.parameters.extend(declared_parameters(body, cell_index=cell.index, first_line=first_line))
    elif isinstance(header, WritefileHeader):
        _read_writefile(notebook, cell, header, body, first_line)
    elif not body.lstrip().startswith("%%"):  # another cell magic (%%time, %%bash, ...) is not Python
        notebook.plain[cell.index] = plain_cell_parts(body, cell_index=cell.index, first_line=first_line)


def _read_step(notebook: _Notebook, cell: Cell, header: StepHeader, body: str, first_line: int) -> None:
    label = f"step {header.name!r} ({cell_label(cell.index)})"
    if header.script is not None:
        tree, _ = parse_code(body, where=label, first_line=first_line)
        if tree.body:
            raise AnalysisError(
                f"{label} runs {header.script} (--script), so its cell body must be empty; comments are fine.",
                hint=f"Move this code into {header.script}, or drop --script to run the cell itself.",
            )
        notebook.steps.append(_StepCell(header, cell, body, first_line, None, header.script))
        return
    info = analyze_code(body, where=label, first_line=first_line)
    missing = [name for name in header.outputs if name not in info.binds]
    if missing:
        raise AnalysisError(
            f"{label} lists {', '.join(map(repr, missing))} in --outputs but never assigns "
            f"{'it' if len(missing) == 1 else 'them'} at top level.",
            hint="Assign each output in the cell (e.g. model = fit(...)) or remove it from --outputs.",
        )
    notebook.steps.append(_StepCell(header, cell, body, first_line, info))


def _read_writefile(notebook: _Notebook, cell: Cell, header: WritefileHeader, body: str, first_line: int) -> None:
    content = body if not body or body.endswith("\n") else body + "\n"  # as IPython writes it
    earlier = notebook.files.get(header.path)
    if header.append and earlier is not None:
        content = earlier.content + content
    step = header.step or (earlier.step if earlier is not None else None)
    notebook.files[header.path] = TrackedFile(header.path, content, cell.index, step)
    if header.step is not None:
        step_header = StepHeader(name=header.step, script=header.path)
        notebook.steps.append(_StepCell(step_header, cell, "", first_line, None, header.path))


def _collect(cells: Sequence[Cell]) -> _Notebook:
    notebook = _Notebook()
    for cell in sorted(cells, key=lambda c: c.index):
        _read_cell(notebook, cell)
    _check_unique(notebook)
    # binders in notebook order: one per name and cell (a plain cell counts with its final binding of the name)
    entries: list[tuple[int, str, _Binder]] = []
    for step in notebook.steps:
        entries += [(step.cell.index, n, _Binder("step", step.cell.index, step.header.name)) for n in step.outputs]
        if step.info is not None:
            for name in step.info.binds:
                if name in step.info.imports:
                    notebook.hidden.setdefault(name, []).append((step.cell.index, step.header.name, "import"))
                elif name.startswith("_"):
                    notebook.hidden.setdefault(name, []).append((step.cell.index, step.header.name, "private"))
    entries += [(p.cell_index, p.name, _Binder("parameter", p.cell_index, p.name)) for p in notebook.parameters]
    for index, plain in notebook.plain.items():
        entries += [(index, n, _Binder("part", index, key)) for n, key in plain.binders.items()]
        entries += [(index, n, _Binder("computed", index, "", line)) for n, line in plain.computed.items()]
    for _, name, binder in sorted(entries, key=lambda e: e[0]):
        notebook.bind(name, binder)
    return notebook


def _check_unique(notebook: _Notebook) -> None:
    seen: dict[str, _StepCell] = {}
    for step in notebook.steps:
        first = seen.setdefault(step.header.name, step)
        if first is not step:
            raise AnalysisError(
                f"step {step.header.name!r} is defined twice: {cell_label(first.cell.index)} and "
                f"{cell_label(step.cell.index)}.",
                hint="Rename one of them; step names must be unique.",
            )
    parameters: dict[str, Parameter] = {}
    for parameter in notebook.parameters:
        first_parameter = parameters.setdefault(parameter.name, parameter)
        if first_parameter is not parameter:
            raise ParameterError(
                f"parameter {parameter.name!r} is declared twice: {cell_label(first_parameter.cell_index)} and "
                f"{cell_label(parameter.cell_index)}.",
                hint="Keep one declaration (supported types are str, int, float, bool).",
            )
    for step in notebook.steps:
        rebound = [n for n in (step.info.binds if step.info else ()) if n in parameters]
        if rebound:
            name = rebound[0]
            raise AnalysisError(
                f"{step.label} assigns {name!r}, which is a parameter ({cell_label(parameters[name].cell_index)}).",
                hint=f"Parameters are inputs: give the changed value another name (e.g. {name}_2 = ...).",
            )


# ---- resolving what each step reads ------------------------------------------------------------------------------


@dataclass
class _Needs:
    inputs: dict[str, str] = field(default_factory=dict)  # name -> upstream step
    parameters: set[str] = field(default_factory=set)
    parts: set[str] = field(default_factory=set)


def _part_name(part: PreludePart) -> str:
    return part.binds[0] if part.binds else part.key


def _resolve(notebook: _Notebook, parts: Mapping[str, PreludePart], step: _StepCell) -> _Needs:
    needs = _Needs()
    assert step.info is not None
    cell = step.cell.index
    pending: list[tuple[str, _Binder | None, PreludePart | None]] = [
        (name, notebook.latest(name, cell), None) for name in sorted(step.info.reads)
    ]
    while pending:
        name, binder, via = pending.pop(0)
        if binder is None and via is not None:
            binder = notebook.latest(name, cell)  # a helper's body runs later: anything above the step will do
            if binder is None and name in step.info.binds:
                continue
        if binder is None:
            raise _unbound(notebook, step, name, via)
        if binder.kind == "computed":
            raise _computed(step, name, binder, via)
        if binder.kind == "step":
            needs.inputs.setdefault(name, binder.ref)
        elif binder.kind == "parameter":
            needs.parameters.add(name)
        elif binder.ref not in needs.parts:
            needs.parts.add(binder.ref)
            part = parts[binder.ref]
            for use in sorted(part.uses):
                pending.append((use, notebook.latest(use, part.cell_index + 1), part))
    return needs


def _through(via: PreludePart | None) -> str:
    if via is None:
        return ""
    return f" (through {_part_name(via)!r}, defined in {cell_label(via.cell_index)})"


def _computed(step: _StepCell, name: str, binder: _Binder, via: PreludePart | None) -> AnalysisError:
    where = cell_label(binder.cell)
    return AnalysisError(
        f"{step.label} reads {name!r}{_through(via)}, which {where} computes outside a step.",
        hint=f"Make {where} a step (start it with %%step NAME) so its result is tracked, "
        f"or compute it inside {step.header.name!r}.",
    )


def _unbound(notebook: _Notebook, step: _StepCell, name: str, via: PreludePart | None) -> AnalysisError:
    here = cell_label(step.cell.index)
    message = f"{step.label} reads {name!r}{_through(via)}, but no cell above it defines {name!r}"
    later = notebook.later(name, step.cell.index + 1)
    hidden = [h for h in notebook.hidden.get(name, []) if h[0] < step.cell.index]
    if hidden:
        cell, owner, why = hidden[-1]
        if why == "private":
            return AnalysisError(
                f"{message}: step {owner!r} ({cell_label(cell)}) binds it, but names starting with '_' stay "
                "inside their step.",
                hint=f"Rename it without the leading '_' in step {owner!r} to pass it on.",
            )
        return AnalysisError(
            f"{message}: step {owner!r} ({cell_label(cell)}) imports it, but imports are not step outputs.",
            hint=f"Import it in a plain cell above {here} (shared by every step) or inside {step.header.name!r}.",
        )
    if later is not None:
        return AnalysisError(
            f"{message}: {later.describe()} but comes after {step.header.name!r} ({here}).",
            hint=f"Move {cell_label(later.cell)} above {here}.",
        )
    stars = [(i, m) for i, plain in notebook.plain.items() if i < step.cell.index for m in plain.star_imports]
    if stars:
        cell, module = stars[-1]
        return AnalysisError(
            f"{message}: {cell_label(cell)} has `from {module} import *`, whose names cannot be known before "
            "anything runs.",
            hint=f"Import {name!r} by name (from {module} import {name}) in a plain cell above {here}.",
        )
    return AnalysisError(
        f"{message}. Hidden kernel state cannot leak into a pipeline.",
        hint=f"Define {name!r} in a step, a %%parameters cell, or an import/def cell above {here}.",
    )


# ---- assembling the pipeline ------------------------------------------------------------------------------------


def _part_order(key: str) -> tuple[int, int]:
    cell, _, statement = key.partition(":")
    return int(cell), int(statement)


def _top_modules(dotted: Iterable[str]) -> tuple[str, ...]:
    """``a.b.c`` -> ``a``, sorted, without repeats (relative imports never get here)."""
    return tuple(sorted({name.split(".")[0] for name in dotted if name and not name.startswith(".")}))


def _with_references(
    step: Step, literals: Iterable[str], imported: Iterable[str], files: Mapping[str, TrackedFile]
) -> Step:
    """Fill ``path_literals`` and ``modules`` from the code's and the tracked Python files' literals and imports.

    Literals naming one of the step's tracked files are left out: their content is part of the pipeline already.
    """
    texts, dotted = set(literals), set(imported)
    for path in step.files:
        if path.endswith(".py"):
            file_literals, file_imported = python_references(files[path].content)
            texts.update(file_literals)
            dotted.update(file_imported)
    tracked = set(step.files)  # their content is in the pipeline already
    texts = {text for text in texts if posixpath.normpath(text) not in tracked}
    return replace(step, path_literals=path_literals(texts), modules=_top_modules(dotted))


def _make_step(
    notebook: _Notebook, parts: Mapping[str, PreludePart], step: _StepCell, parameter_names: tuple[str, ...]
) -> Step:
    header = step.header
    base = Step(
        name=header.name,
        code="",
        cell_index=step.cell.index,
        cell_id=step.cell.id,
        code_line=step.first_line,
        outputs=header.outputs,
        after=header.after,
        env=header.env,
        executor=header.executor or "process",
        executor_given=header.executor is not None,
        retry=header.retry,
        timeout=header.timeout,
        cache=CacheConfig(enabled=not header.no_cache, expire_after=header.cache),
        cache_scope=header.cache_scope,
        data_inputs=header.inputs,
        kind=header.kind,
        image=header.image,
        local_image=header.local_image,
        cpus=header.cpus,
        memory=header.memory,
        network=header.network,
        framework=header.framework,
        instance_type=header.instance_type,
        instance_count=_instance_count(notebook, step),
        requirements=header.requirements,
        condition_text=header.when,
        else_fail=header.else_fail,
    )
    condition, condition_inputs = _condition(notebook, step)
    base = replace(base, condition=condition)
    if step.info is None:  # a script receives every parameter and reads nothing from other steps
        assert step.script is not None
        files = files_used([step.script], (), notebook.files)
        inputs = tuple(StepInput(name, upstream) for name, upstream in sorted(condition_inputs.items()))
        script = replace(base, script=step.script, parameters=parameter_names, files=files, inputs=inputs)
        return _with_references(script, (), (), notebook.files)
    if header.kind in ("model", "register") and "predict" not in step.outputs:
        raise AnalysisError(
            f"{step.label} is a --kind {header.kind} step, so its cell must bind `predict`: the function that serves "
            "the model.",
            hint="E.g. def predict(features): return model.predict(features)",
        )
    needs = _resolve(notebook, parts, step)
    for name, upstream in condition_inputs.items():  # the condition reads them: they flow into the step
        needs.inputs.setdefault(name, upstream)
    prelude = tuple(sorted(needs.parts, key=_part_order))
    literals = set(step.info.string_literals)
    imported = list(step.info.imported)
    for key in prelude:
        plain = notebook.plain[parts[key].cell_index]
        literals.update(plain.literals.get(key, ()))
        imported += plain.imported.get(key, ())
    made = replace(
        base,
        code=step.body,
        code_digest=step.info.digest,
        last_expression=step.info.last_expression,
        inputs=tuple(StepInput(name, upstream) for name, upstream in sorted(needs.inputs.items())),
        parameters=tuple(name for name in parameter_names if name in needs.parameters),
        prelude=prelude,
        binds=step.outputs,
        files=files_used(literals, imported, notebook.files),
    )
    return _with_references(made, literals, imported, notebook.files)


# ---- --when: names in conditions, shared condition steps ----------------------------------------------------------


def _instance_count(notebook: _Notebook, step: _StepCell) -> int | str | None:
    count = step.header.instance_count
    if isinstance(count, str):
        declared = {p.name: p for p in notebook.parameters if p.cell_index < step.cell.index}
        if count not in declared or declared[count].type != "int":
            raise AnalysisError(
                f"{step.label}: --instance-count {count} names no int parameter declared above it.",
                hint="Give a whole number, or declare it in a %%parameters cell (e.g. instance_count: int = 1).",
            )
    return count


def _condition(notebook: _Notebook, step: _StepCell) -> tuple[Condition | None, dict[str, str]]:
    """Parse ``--when`` with its names resolved by the dependency rule; returns it and the inputs it reads."""
    text = step.header.when
    if text is None:
        return None, {}
    inputs: dict[str, str] = {}
    cell = step.cell.index

    def resolve(name: str, path: tuple[str | int, ...]) -> Operand:
        binder = notebook.latest(name, cell)
        if binder is not None and binder.kind == "step":
            inputs[name] = binder.ref
            return ValueRef(binder.ref, name, path)
        if binder is not None and binder.kind == "parameter":
            if path:
                raise AnalysisError(
                    f"{step.label}: --when subscripts parameter {name!r}, but parameters are single values.",
                    hint=GRAMMAR,
                )
            return ParameterRef(name)
        if binder is not None:
            why = f"{binder.describe()}, outside any step"
        else:
            later = notebook.later(name, cell + 1)
            why = f"{later.describe()}, after this step" if later is not None else "no cell above it defines it"
        raise AnalysisError(
            f"{step.label}: --when reads {name!r}, which is not an output of an upstream step or a parameter: {why}.",
            hint="A condition reads outputs of steps above it and %%parameters. " + GRAMMAR,
        )

    return parse_condition(text, resolve, where=step.label), inputs


_VALID_NAME = re.compile(STEP_NAME_PATTERN)


def _shared_name(group: list[Step], field_name: str, default: str, what: str, headers: Mapping[str, str]) -> str:
    """The one name a group of steps gives a shared condition or fail step (explicit, else the default)."""
    explicit = sorted({headers[s.name] for s in group if s.name in headers})
    if len(explicit) > 1:
        raise AnalysisError(
            f"steps {', '.join(repr(s.name) for s in group)} share the condition {group[0].condition_text!r} but "
            f"name its {what} differently: {', '.join(explicit)}.",
            hint=f"Give the same {field_name} (or give it once).",
        )
    name = explicit[0] if explicit else default
    if not _VALID_NAME.fullmatch(name):
        raise AnalysisError(
            f"step {group[0].name!r}: the default name of its {what}, {name!r}, is not a valid step name "
            "(more than 64 characters).",
            hint=f"Name it with {field_name} NAME.",
        )
    return name


def _name_conditions(steps: list[Step], headers: Mapping[str, StepHeader]) -> list[Step]:
    """Steps with equal conditions share one condition step (and fail step): give every one of them its names."""
    groups: dict[Condition, list[Step]] = {}
    for step in steps:
        if step.condition is not None:
            groups.setdefault(step.condition, []).append(step)
    taken = {s.name: f"step {s.name!r}" for s in steps}
    explicit = {n: h.condition_step for n, h in headers.items() if h.condition_step}
    explicit_fail = {n: h.fail_step for n, h in headers.items() if h.fail_step}
    named: dict[str, Step] = {}
    for group in groups.values():
        default = f"{group[0].name}-Condition"
        condition_step = _shared_name(group, "--condition-step", default, "condition step", explicit)
        messages = sorted({s.else_fail for s in group if s.else_fail is not None})
        if len(messages) > 1:
            raise AnalysisError(
                f"steps {', '.join(repr(s.name) for s in group)} share the condition {group[0].condition_text!r} "
                f"but give different --else-fail messages: {', '.join(map(repr, messages))}.",
                hint="Give the same message (or give it once).",
            )
        names = [condition_step]
        fail_step = None
        if messages:
            fail_step = _shared_name(group, "--fail-step", f"{condition_step}-Fail", "fail step", explicit_fail)
            names.append(fail_step)
        for name in names:
            if name in taken:
                raise AnalysisError(
                    f"the condition {group[0].condition_text!r} (step {group[0].name!r}) becomes a step named "
                    f"{name!r}, but that name is taken by {taken[name]}.",
                    hint="Choose another name with --condition-step / --fail-step.",
                )
            taken[name] = f"the condition {group[0].condition_text!r}"
        for step in group:
            named[step.name] = replace(
                step,
                condition_step=condition_step,
                else_fail=messages[0] if messages else None,
                fail_step=fail_step,
            )
    return [named.get(step.name, step) for step in steps]


def build_pipeline(cells: Sequence[Cell], name: str) -> Pipeline:
    """Build and validate the pipeline the cells describe (raises a PipelineError naming the cell and the fix)."""
    notebook = _collect(cells)
    parts = {part.key: part for plain in notebook.plain.values() for part in plain.parts}
    parameter_names = tuple(p.name for p in notebook.parameters)
    steps = [_make_step(notebook, parts, step, parameter_names) for step in notebook.steps]
    steps = _name_conditions(steps, {step.header.name: step.header for step in notebook.steps})
    check_after(steps)
    ordered = sort_steps(steps)
    used = {key for step in ordered for key in step.prelude}
    return Pipeline(
        name=name,
        steps=ordered,
        parameters=tuple(notebook.parameters),
        prelude=tuple(parts[key] for key in sorted(used, key=_part_order)),
        files=tuple(notebook.files.values()),
    )
