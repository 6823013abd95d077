"""The one parser for a cell's header line: ``%%step``, ``%%parameters`` and ``%%writefile``.

The magics (live, in a kernel) and the offline notebook reader both call it, so a notebook means the same thing in
JupyterLab and on the command line. The ``%%step`` options live in one table, :data:`STEP_OPTIONS`: parsing, error
messages, ``%%step?`` help and rendering back to text all read it, so a new option is one row (plus its field).

Every malformed line raises :class:`HeaderError` with one message that names the problem and what is valid; no other
exception (and never ``SystemExit``, which is why this is not argparse) escapes for any input text.
"""

from __future__ import annotations

import math
import posixpath
import re
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any

from ..durations import DurationError, parse_duration
from ..errors import HeaderError
from ..model import CACHE_SCOPES, EXECUTORS, STEP_KINDS, STEP_NAME_PATTERN, CacheScope, Executor, StepKind
from .conditions import GRAMMAR, condition_problem

__all__ = [
    "STEP_HELP",
    "STEP_OPTIONS",
    "Header",
    "Option",
    "ParametersHeader",
    "StepHeader",
    "WritefileHeader",
    "check_relative_path",
    "check_step_name",
    "format_step_line",
    "parse_header",
    "parse_parameters_line",
    "parse_step_line",
    "parse_writefile_line",
    "split_cell",
]


@dataclass(frozen=True)
class StepHeader:
    """What a ``%%step NAME [options]`` line says."""

    name: str
    after: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    script: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    executor: Executor | None = None  # None: not given (the pipeline's default executor, else "process")
    retry: int = 0
    timeout: float | None = None
    no_cache: bool = False
    cache: str | None = None  # normalized ISO 8601 expiry (``--cache 30d`` -> "P30D")
    cache_scope: CacheScope = "pipeline"
    inputs: tuple[str, ...] = ()  # data paths: relative (normalized, inside the notebook directory) or absolute
    kind: StepKind = "processing"
    image: str | None = None
    local_image: str | None = None  # --executor container: the image for local runs only
    cpus: float | None = None
    memory: str | None = None  # normalized: a whole number with b/k/m/g ("512m")
    network: bool = False
    framework: str | None = None  # NAME:VERSION, resolved to an image URI at export
    instance_type: str | None = None
    instance_count: int | str | None = None  # a number or the name of an int parameter
    requirements: str | None = None
    when: str | None = None  # the condition as written (its shape is checked here, its names by the builder)
    else_fail: str | None = None
    condition_step: str | None = None
    fail_step: str | None = None


@dataclass(frozen=True)
class ParametersHeader:
    """A ``%%parameters`` line (it takes no options)."""


@dataclass(frozen=True)
class WritefileHeader:
    """A ``%%writefile [-a] [--step NAME] PATH`` line; ``--step`` makes the written script a pipeline step."""

    path: str
    step: str | None = None
    append: bool = False


Header = StepHeader | ParametersHeader | WritefileHeader

_STEP_NAME = re.compile(STEP_NAME_PATTERN)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_WHOLE_NUMBER = re.compile(r"[0-9]+")
_MAGIC = re.compile(r"%%(\S*)(.*)", re.DOTALL)
_IMAGE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@-]{0,254}")
_FRAMEWORK = re.compile(r"[a-z][a-z0-9-]*:[A-Za-z0-9][A-Za-z0-9._-]*")
_INSTANCE_TYPE = re.compile(r"ml\.[a-z0-9]+\.[a-z0-9]+")
_MEMORY = re.compile(r"([0-9]+)([bkmg])", re.IGNORECASE)


class _BadValue(ValueError):
    """Raised by an option's converter; the parser turns it into a HeaderError using the option's ``expects``."""


class _Explained(_BadValue):
    """A bad value whose converter knows better than ``expects`` what is wrong: the message is used as it is."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


# ---- value converters: each takes the raw text and returns the field value, or raises _BadValue ---------------


def _comma_list(pattern: re.Pattern[str]) -> Callable[[str], tuple[str, ...]]:
    def convert(raw: str) -> tuple[str, ...]:
        items = tuple(item.strip() for item in raw.split(","))
        if not all(pattern.fullmatch(item) for item in items):
            raise _BadValue(raw)
        return items

    return convert


def _env_pair(raw: str) -> tuple[tuple[str, str], ...]:
    name, eq, value = raw.partition("=")
    if not eq or not _ENV_NAME.fullmatch(name):
        raise _BadValue(raw)
    return ((name, value),)


def _executor(raw: str) -> Executor:
    for executor in EXECUTORS:
        if raw == executor:
            return executor
    raise _BadValue(raw)


def _whole_number(raw: str) -> int:
    if not _WHOLE_NUMBER.fullmatch(raw):
        raise _BadValue(raw)
    return int(raw)


def _seconds(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise _BadValue(raw) from None
    if not (math.isfinite(value) and value > 0):
        raise _BadValue(raw)
    return value


def _script_path(raw: str) -> str:
    return check_relative_path(raw, option="--script")


def _flag(raw: str) -> bool:  # options without a value; the parser never calls it with text
    raise _BadValue(raw)


def _cache_scope(raw: str) -> CacheScope:
    for scope in CACHE_SCOPES:
        if raw == scope:
            return scope
    raise _BadValue(raw)


def _expiry(raw: str) -> str:
    try:
        duration = parse_duration(raw)
    except DurationError as error:
        raise _Explained(f"--cache: {error}") from None
    if duration.is_zero:
        raise _Explained(f"--cache {raw} would never reuse a result.", "Use --no-cache to turn caching off.")
    return duration.iso


def _data_path(item: str) -> str:
    """A declared data input: relative inside the notebook directory, or absolute (read-only data elsewhere)."""
    if item.startswith("/") and "\x00" not in item:
        normalized = "/" + posixpath.normpath(item).lstrip("/")
        if normalized != "/":
            return normalized
    try:
        return check_relative_path(item, option="--inputs")
    except _BadPath:
        raise _Explained(
            f"--inputs takes paths relative to the notebook directory or absolute paths, got {item!r}.",
            "For data outside the notebook directory write its absolute path, e.g. --inputs /data/train.csv "
            "(inputs are only read, never written).",
        ) from None


def _cpus(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise _BadValue(raw) from None
    if not (math.isfinite(value) and 0 < value <= 1024):
        raise _BadValue(raw)
    return value


def _memory(raw: str) -> str:
    """Docker's memory notation; at least 6m, the least Docker accepts (so the error comes here, not at run time)."""
    match = _MEMORY.fullmatch(raw.strip())
    if match is None:
        raise _BadValue(raw)
    number, unit = int(match.group(1)), match.group(2).lower()
    if number * {"b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[unit] < 6 * 1024**2:
        raise _Explained(f"--memory {raw} is below 6m, the least a container can have.", "Give e.g. --memory 512m.")
    return f"{number}{unit}"


def _kind(raw: str) -> StepKind:
    for kind in STEP_KINDS:
        if raw == kind:
            return kind
    raise _BadValue(raw)


def _pattern(pattern: re.Pattern[str]) -> Callable[[str], str]:
    def convert(raw: str) -> str:
        if not pattern.fullmatch(raw):
            raise _BadValue(raw)
        return raw

    return convert


def _instance_count(raw: str) -> int | str:
    if _WHOLE_NUMBER.fullmatch(raw) and int(raw) >= 1:
        return int(raw)
    if _IDENTIFIER.fullmatch(raw):
        return raw
    raise _BadValue(raw)


def _requirements_path(raw: str) -> str:
    return check_relative_path(raw, option="--requirements")


def _condition_text(raw: str) -> str:
    problem = condition_problem(raw)
    if problem is not None:
        raise _Explained(problem, GRAMMAR)
    return raw


def _message(raw: str) -> str:
    if not raw.strip():
        raise _BadValue(raw)
    return raw


def _data_paths(raw: str) -> tuple[str, ...]:
    items = [item.strip() for item in raw.split(",")]
    if not all(items):
        raise _BadValue(raw)
    return tuple(dict.fromkeys(_data_path(item) for item in items))


# ---- the option table -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    """One ``%%step`` option: how to read its value, which StepHeader field it sets, and its help text.

    ``multiple`` options may repeat and their tuples are merged (``key`` says which items must not conflict: two
    ``--env A=...`` with different values are an error, a repeated ``--after load`` is merged).
    """

    flag: str
    field: str
    metavar: str
    expects: str  # completes "--retry takes ..., got 'x'"
    convert: Callable[[str], Any]
    help: str
    multiple: bool = False
    key: Callable[[Any], object] = lambda item: item
    render: Callable[[Any], list[str]] | None = None  # field value -> option values (for round-tripping)
    takes_value: bool = True  # False: a flag that sets its field to True (``--no-cache``)
    conflicts: tuple[str, ...] = ()  # flags that cannot be given together with this one
    requires: str | None = None  # a flag that must be given too


def _render_list(value: tuple[str, ...]) -> list[str]:
    return [",".join(value)] if value else []


def _render_env(value: tuple[tuple[str, str], ...]) -> list[str]:
    return [f"{name}={text}" for name, text in value]


STEP_OPTIONS: tuple[Option, ...] = (
    Option("--after", "after", "STEP[,STEP...]", "a comma-separated list of step names ([A-Za-z0-9_-]{1,64})",
           _comma_list(_STEP_NAME), "also run after these steps, even if no name flows from them (repeatable)",
           multiple=True, render=_render_list),
    Option("--outputs", "outputs", "NAME[,NAME...]", "a comma-separated list of Python names",
           _comma_list(_IDENTIFIER), "names the step must bind; a missing one is an error (repeatable)",
           multiple=True, render=_render_list),
    Option("--script", "script", "PATH", "a relative path inside the notebook directory", _script_path,
           "run `python PATH` instead of the cell body (the body must be empty)"),
    Option("--env", "env", "NAME=VALUE", "NAME=VALUE with NAME like [A-Za-z_][A-Za-z0-9_]*", _env_pair,
           "set an environment variable for the step (repeatable)", multiple=True,
           key=lambda item: item[0], render=_render_env),
    Option("--executor", "executor", "|".join(EXECUTORS), "one of: " + ", ".join(EXECUTORS), _executor,
           "where the step runs: 'process' (isolated, the default), 'kernel' (in the live namespace) or "
           "'container' (in --image, with SageMaker's /opt/ml paths; needs Docker or Podman)"),
    Option("--retry", "retry", "N", "a whole number >= 0", _whole_number,
           "retry a failing step up to N more times (default 0)"),
    Option("--timeout", "timeout", "SECONDS", "a number of seconds > 0", _seconds,
           "fail the step if it runs longer than this"),
    Option("--no-cache", "no_cache", "", "no value", _flag,
           "always run the step, never reuse an earlier result", takes_value=False,
           conflicts=("--cache", "--cache-scope")),
    Option("--cache", "cache", "DURATION", "a duration", _expiry,
           "reuse a result only while younger than DURATION: P30D, PT1H, 30d, 5y, T16m, 30dT5h (default: no expiry)"),
    Option("--cache-scope", "cache_scope", "pipeline|shared", "one of: " + ", ".join(CACHE_SCOPES), _cache_scope,
           "'shared' also reuses results of an identical step in another pipeline (default: 'pipeline')"),
    Option("--inputs", "inputs", "PATH[,PATH...]",
           "a comma-separated list of paths, relative to the notebook directory or absolute", _data_paths,
           "data files or directories the step reads: a change to their content reruns it (repeatable)",
           multiple=True, render=_render_list),
    Option("--kind", "kind", "KIND", "one of: " + ", ".join(STEP_KINDS), _kind,
           "what SageMaker step it becomes: processing (default); training (its outputs are the model); model or "
           "register (creates or registers the model of the training step it reads: the cell binds `predict`); "
           "transform (batch predictions: result = predict(array))"),
    Option("--image", "image", "URI", "a container image URI (no spaces)", _pattern(_IMAGE),
           "the container image the step runs in on SageMaker (and locally with --executor container)",
           conflicts=("--framework",)),
    Option("--local-image", "local_image", "IMAGE", "a container image name (no spaces)", _pattern(_IMAGE),
           "--executor container: run locally in IMAGE instead of --image (the export keeps --image)"),
    Option("--cpus", "cpus", "N", "a number of CPUs > 0, e.g. 1.5", _cpus,
           "--executor container: limit the container to N CPUs"),
    Option("--memory", "memory", "SIZE", "a size like 512m or 2g (b, k, m, g)", _memory,
           "--executor container: limit the container's memory (over it, the step fails as killed for memory)"),
    Option("--network", "network", "", "no value", _flag,
           "--executor container: give the container the network (by default it has none)", takes_value=False),
    Option("--framework", "framework", "NAME:VERSION", "NAME:VERSION, e.g. sklearn:1.2-1", _pattern(_FRAMEWORK),
           "a SageMaker framework image, resolved per region at export: sklearn:1.2-1, xgboost:1.7-1, "
           "pytorch:2.0.1-cpu-py310 (default at export: sklearn:1.2-1)"),
    Option("--instance-type", "instance_type", "TYPE", "an instance type like ml.m5.large",
           _pattern(_INSTANCE_TYPE), "the SageMaker instance type (default at export: ml.m5.large)"),
    Option("--instance-count", "instance_count", "N|PARAMETER", "a whole number >= 1 or an int parameter's name",
           _instance_count, "how many instances run the step on SageMaker (default 1)"),
    Option("--requirements", "requirements", "FILE", "a relative path inside the notebook directory",
           _requirements_path, "a pip requirements file installed before the step runs on SageMaker"),
    Option("--when", "when", "EXPR", "a condition", _condition_text,
           "run the step (and the steps downstream of it) only if EXPR holds, e.g. "
           "\"report['mse'] <= mse_threshold\"; steps with the same EXPR share one condition step"),
    Option("--else-fail", "else_fail", "MESSAGE", "a non-empty message", _message,
           "when the --when condition is false, fail the run with MESSAGE ({value}: the value it read)",
           requires="--when"),
    Option("--condition-step", "condition_step", "NAME", "a step name ([A-Za-z0-9_-]{1,64})",
           _pattern(_STEP_NAME), "name of the condition step in the export (default: STEP-Condition)",
           requires="--when"),
    Option("--fail-step", "fail_step", "NAME", "a step name ([A-Za-z0-9_-]{1,64})", _pattern(_STEP_NAME),
           "name of the fail step in the export (default: CONDITION-Fail)", requires="--else-fail"),
)  # fmt: skip

_OPTIONS_BY_FLAG = {option.flag: option for option in STEP_OPTIONS}
_STEP_FIELDS = {f.name for f in fields(StepHeader)}
assert all(option.field in _STEP_FIELDS for option in STEP_OPTIONS)


def _help_text() -> str:
    width = max(len(f"{o.flag} {o.metavar}") for o in STEP_OPTIONS)
    rows = "\n".join(f"  {f'{o.flag} {o.metavar}':<{width}}  {o.help}" for o in STEP_OPTIONS)
    return (
        "%%step NAME [options]\n\n"
        "Make this cell a pipeline step called NAME (1-64 letters, digits, '_' or '-').\n"
        "The step reads the names that earlier steps, %%parameters cells and import/def cells define,\n"
        "and its own top-level names become its outputs. Options (also written --option=value):\n\n"
        f"{rows}\n\n"
        "Example:\n"
        "  %%step train --after load --retry 2 --timeout 600 --cache 30d --inputs data/train.csv\n"
        "  model = fit(features, labels, test_fraction)\n"
    )


STEP_HELP: str = _help_text()


# ---- helpers shared with the builder ----------------------------------------------------------------------------


def check_step_name(name: str, *, where: str = "%%step", example: str = "%%step train_model") -> str:
    """Return ``name`` if it is a valid step name (SageMaker's rule), else raise HeaderError saying what is valid."""
    if not _STEP_NAME.fullmatch(name):
        raise HeaderError(
            f"{name!r} is not a valid step name.",
            where=where,
            hint=f"Use 1-64 letters, digits, '_' or '-', e.g. {example}.",
        )
    return name


def check_relative_path(path: str, *, option: str = "PATH") -> str:
    """Normalize a tracked-file path; it must stay inside the notebook directory so the pipeline is portable."""
    normalized = posixpath.normpath(path) if path else ""
    if (
        not path
        or "\x00" in path
        or path.startswith(("/", "~", "\\"))
        or re.match(r"[A-Za-z]:", path)
        or normalized == "."
        or normalized == ".."
        or normalized.startswith("../")
    ):
        raise _BadPath(f"{option} takes a relative file path inside the notebook directory, got {path!r}")
    return normalized


class _BadPath(_BadValue):
    """A path that is absolute or leaves the notebook directory."""


# ---- tokenizing -------------------------------------------------------------------------------------------------


def _strip_comment(line: str) -> str:
    """Drop a trailing ``# comment`` (a ``#`` that starts a word outside quotes), so headers can be annotated."""
    quote: str | None = None
    escaped = False
    for i, char in enumerate(line):
        if escaped:
            escaped = False
        elif quote:
            if char == quote:
                quote = None
            elif char == "\\" and quote == '"':
                escaped = True
        elif char == "\\":
            escaped = True
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i]
    return line


def _tokens(line: str, where: str, *, comments: bool) -> list[str]:
    try:
        return shlex.split(_strip_comment(line) if comments else line)
    except ValueError as error:  # unclosed quote, trailing backslash
        raise HeaderError(
            f"cannot split the line into words ({error}).",
            where=where,
            hint="Close the quote, or quote values that contain spaces: --env GREETING='hello world'.",
        ) from None


def _first_positional(tokens: Sequence[str]) -> str | None:
    skip = False
    for token in tokens:
        if skip:
            skip = False
        elif token.startswith("-"):
            option = _OPTIONS_BY_FLAG.get(token)
            skip = option is not None and option.takes_value and "=" not in token
        else:
            return token
    return None


# ---- %%step -----------------------------------------------------------------------------------------------------


def _valid_options() -> str:
    return "Valid options: " + ", ".join(o.flag for o in STEP_OPTIONS) + " (see %%step? for help)."


def parse_step_line(line: str) -> StepHeader:
    """Parse what follows ``%%step`` (what IPython hands the cell magic) into a StepHeader."""
    tokens = _tokens(line, "%%step", comments=True)
    first = _first_positional(tokens)
    where = f"%%step {first}" if first is not None and _STEP_NAME.fullmatch(first) else "%%step"
    name: str | None = None
    values: dict[str, Any] = {}
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if not token.startswith("-") or token == "-":
            if name is not None:
                raise HeaderError(
                    f"unexpected word {token!r}: a step has one name.",
                    where=where,
                    hint="Quote values that contain spaces. " + _valid_options(),
                )
            name = check_step_name(token, where=where)
            continue
        flag, eq, raw = token.partition("=")
        option = _OPTIONS_BY_FLAG.get(flag)
        if option is None:
            import difflib  # only on this error path: it costs a millisecond at import time

            close = difflib.get_close_matches(flag, list(_OPTIONS_BY_FLAG), n=1)
            suggestion = f" Did you mean {close[0]}?" if close else ""
            raise HeaderError(f"unknown option {flag!r}.{suggestion}", where=where, hint=_valid_options())
        if not option.takes_value:
            if eq:
                raise HeaderError(f"{flag} takes no value, got {token!r}.", where=where, hint=f"Write {flag} alone.")
            values[option.field] = _merge(option, values.get(option.field), True, where)
            continue
        if not eq:
            if i >= len(tokens) or tokens[i].startswith("--"):
                raise HeaderError(
                    f"{flag} needs a value: {flag} {option.metavar}.", where=where, hint=f"{flag}: {option.help}."
                )
            raw = tokens[i]
            i += 1
        try:
            value = option.convert(raw)
        except _BadPath as error:
            raise HeaderError(f"{error}.", where=where, hint="Write a path like code/train.py.") from None
        except _Explained as error:
            raise HeaderError(error.message, where=where, hint=error.hint) from None
        except _BadValue:
            raise HeaderError(f"{flag} takes {option.expects}, got {raw!r}.", where=where) from None
        values[option.field] = _merge(option, values.get(option.field), value, where)
    if name is None:
        raise HeaderError(
            "needs a step name.",
            where="%%step",
            hint="Write %%step NAME [options], e.g. %%step train --after load. " + _valid_options(),
        )
    _check_conflicts(values, where)
    return StepHeader(name=name, **values)


def _check_conflicts(values: dict[str, Any], where: str) -> None:
    for option in STEP_OPTIONS:
        if option.field not in values:
            continue
        needed = _OPTIONS_BY_FLAG[option.requires] if option.requires else None
        if needed is not None and needed.field not in values:
            raise HeaderError(
                f"{option.flag} needs {needed.flag}.", where=where, hint=f"{needed.flag}: {needed.help}."
            )
        for flag in option.conflicts:
            other = _OPTIONS_BY_FLAG[flag]
            if other.field in values:
                raise HeaderError(
                    f"{option.flag} and {other.flag} contradict each other.",
                    where=where,
                    hint=f"Keep one. {option.flag}: {option.help}; {other.flag}: {other.help}.",
                )


def _merge(option: Option, old: Any, new: Any, where: str) -> Any:
    if old is None:
        return new
    if not option.multiple:
        raise HeaderError(f"{option.flag} is given twice.", where=where, hint="Give it once.")
    seen = {option.key(item): item for item in old}
    merged = list(old)
    for item in new:
        key = option.key(item)
        if key in seen:
            if seen[key] != item:
                raise HeaderError(
                    f"{option.flag} sets {key} twice, to different values.", where=where, hint="Keep one of them."
                )
            continue
        seen[key] = item
        merged.append(item)
    return tuple(merged)


def format_step_line(header: StepHeader) -> str:
    """Render a StepHeader as a ``%%step`` line that parses back to the same header."""
    words = ["%%step", header.name]
    defaults = StepHeader(name=header.name)
    for option in STEP_OPTIONS:
        value = getattr(header, option.field)
        if value == getattr(defaults, option.field):
            continue
        if not option.takes_value:
            words.append(option.flag)
            continue
        rendered = option.render(value) if option.render else [str(value)]
        for text in rendered:  # a value starting with "-" would read as an option: glue it on with "="
            words += [f"{option.flag}={text}"] if text.startswith("-") else [option.flag, text]
    return " ".join(_quote(word) if i > 0 else word for i, word in enumerate(words))


def _quote(word: str) -> str:
    """``shlex.quote``, but a word with single quotes and nothing special inside double quotes (a ``--when``
    subscript like ``report['mse']``) is written in double quotes, as a person would."""
    if "'" in word and not any(char in word for char in '"\\'):
        return f'"{word}"'
    return shlex.quote(word)


# ---- %%parameters and %%writefile ------------------------------------------------------------------------------


def parse_parameters_line(line: str) -> ParametersHeader:
    """``%%parameters`` takes nothing after it (a ``# comment`` is fine)."""
    tokens = _tokens(line, "%%parameters", comments=True)
    if tokens:
        raise HeaderError(
            f"takes no options, got {' '.join(tokens)!r}.",
            where="%%parameters",
            hint="Write %%parameters alone on the first line, then one `name: type = default` per line.",
        )
    return ParametersHeader()


def parse_writefile_line(line: str) -> WritefileHeader:
    """Parse IPython's ``%%writefile [-a|--append] PATH`` plus our ``--step NAME``."""
    where = "%%writefile"
    usage = "Write %%writefile [-a] [--step NAME] PATH, e.g. %%writefile --step train code/train.py."
    tokens = _tokens(line, where, comments=False)
    path: str | None = None
    step: str | None = None
    append = False
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if token in ("-a", "--append"):
            append = True
        elif token == "--step" or token.startswith("--step="):
            if step is not None:
                raise HeaderError("--step is given twice.", where=where, hint=usage)
            if token == "--step":
                if i >= len(tokens):
                    raise HeaderError("--step needs a step name.", where=where, hint=usage)
                token = "--step=" + tokens[i]
                i += 1
            step = check_step_name(
                token.partition("=")[2], where=where, example="%%writefile --step train code/train.py"
            )
        elif token.startswith("-") and token != "-":
            raise HeaderError(
                f"unknown option {token!r}.", where=where, hint="Valid options: -a/--append, --step NAME. " + usage
            )
        elif path is not None:
            raise HeaderError(
                f"takes one file path, got {path!r} and {token!r}.",
                where=where,
                hint="Quote a path that contains spaces. " + usage,
            )
        else:
            try:
                path = check_relative_path(token)
            except _BadPath as error:
                raise HeaderError(f"{error}.", where=where, hint=usage) from None
    if path is None:
        raise HeaderError("needs a file path.", where=where, hint=usage)
    return WritefileHeader(path=path, step=step, append=append)


_PARSERS: dict[str, Callable[[str], Header]] = {
    "step": parse_step_line,
    "parameters": parse_parameters_line,
    "writefile": parse_writefile_line,
}


def parse_header(first_line: str) -> Header | None:
    """Parse a cell's first line if it is one of our headers; None for anything else (plain code, other magics)."""
    match = _MAGIC.fullmatch(first_line.strip())
    if match is None:
        return None
    parser = _PARSERS.get(match.group(1))
    if parser is None:
        return None
    rest = match.group(2)
    if rest and not rest[0].isspace():
        return None
    return parser(rest)


def split_cell(source: str) -> tuple[Header | None, str, int]:
    """Split a cell into (header, body, body_first_line): the 1-based cell line where the body starts.

    Leading blank lines are skipped before looking for a header, as IPython does for cell magics.
    """
    lines = source.splitlines(keepends=True)
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        header = parse_header(line)
        if header is None:
            break
        return header, "".join(lines[number:]), number + 1
    return None, source, 1
