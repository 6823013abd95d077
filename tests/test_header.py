"""The one header parser: %%step options, %%parameters, %%writefile, split_cell, help, and robustness."""

from __future__ import annotations

import contextlib
import re
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jupyter_pipelines.authoring.header import (
    STEP_HELP,
    STEP_OPTIONS,
    ParametersHeader,
    StepHeader,
    WritefileHeader,
    format_step_line,
    parse_header,
    parse_parameters_line,
    parse_step_line,
    parse_writefile_line,
    split_cell,
)
from jupyter_pipelines.errors import HeaderError
from jupyter_pipelines.model import STEP_NAME_PATTERN

# ---- %%step: what each option does ---------------------------------------------------------------------------


def test_name_alone_gives_defaults() -> None:
    assert parse_step_line(" train ") == StepHeader(name="train")


def test_every_option() -> None:
    header = parse_step_line(
        "train --after load,prep --outputs model,score --script code/t.py --env A=1 "
        "--executor kernel --retry 2 --timeout 1.5 --cache 30d --cache-scope shared --inputs data/train.csv"
    )
    assert header == StepHeader(
        name="train",
        after=("load", "prep"),
        outputs=("model", "score"),
        script="code/t.py",
        env=(("A", "1"),),
        executor="kernel",
        retry=2,
        timeout=1.5,
        cache="P30D",
        cache_scope="shared",
        inputs=("data/train.csv",),
    )


def test_equals_form() -> None:
    header = parse_step_line("train --retry=3 --after=load --env=A=b=c --timeout=10")
    assert (header.retry, header.after, header.env, header.timeout) == (3, ("load",), (("A", "b=c"),), 10.0)


def test_repeated_list_options_are_merged_without_duplicates() -> None:
    header = parse_step_line("train --after a,b --after c --after a --outputs x --outputs y")
    assert header.after == ("a", "b", "c")
    assert header.outputs == ("x", "y")


def test_repeated_env_and_quoted_values() -> None:
    header = parse_step_line("s --env A=1 --env 'GREETING=hello world' --env EMPTY=")
    assert header.env == (("A", "1"), ("GREETING", "hello world"), ("EMPTY", ""))


def test_options_may_come_before_the_name() -> None:
    assert parse_step_line("--retry 1 train") == StepHeader(name="train", retry=1)


def test_trailing_comment_is_ignored_but_hash_inside_a_value_is_kept() -> None:
    header = parse_step_line("train --env A=x#y  # trains the model")
    assert header.env == (("A", "x#y"),)


def test_script_path_is_normalized() -> None:
    assert parse_step_line("s --script ./code//run.py").script == "code/run.py"


def test_integer_timeout_is_a_float() -> None:
    assert parse_step_line("s --timeout 600").timeout == 600.0


# ---- %%step: caching and data inputs ---------------------------------------------------------------------------


def test_caching_defaults() -> None:
    header = parse_step_line("train")
    assert (header.no_cache, header.cache, header.cache_scope, header.inputs) == (False, None, "pipeline", ())


def test_no_cache_is_a_flag() -> None:
    assert parse_step_line("train --no-cache").no_cache is True
    assert parse_step_line("--no-cache train").name == "train"  # the flag takes no value: 'train' is the name
    assert parse_step_line("train --no-cache --retry 1") == StepHeader(name="train", no_cache=True, retry=1)


@pytest.mark.parametrize(
    ("value", "iso"),
    [("30d", "P30D"), ("5y", "P5Y"), ("T16m", "PT16M"), ("30dT5h", "P30DT5H"), ("PT1H", "PT1H"), ("p2w", "P2W"),
     ("P1Y2M10DT2H30M", "P1Y2M10DT2H30M")],
)  # fmt: skip
def test_cache_duration_is_stored_as_iso(value: str, iso: str) -> None:
    assert parse_step_line(f"train --cache {value}").cache == iso
    assert parse_step_line(f"train --cache={value}").cache == iso


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("soon", "--cache: 'soon' is not a valid duration"),
        ("90m", "SageMaker reads it as 90 months"),
        ("1h", "come after a 'T'"),
        ("PT1.5H", "whole numbers"),
        ("P0D", "would never reuse a result. Use --no-cache"),
        ("T0m", "would never reuse a result"),
    ],
)
def test_bad_cache_duration(value: str, message: str) -> None:
    with pytest.raises(HeaderError, match=re.escape(message)) as caught:
        parse_step_line(f"train --cache {value}")
    assert str(caught.value).startswith("%%step train: ")


def test_bad_cache_duration_lists_accepted_forms() -> None:
    with pytest.raises(HeaderError, match=r"P30D.*PT1H.*30d.*5y.*T16m.*30dT5h"):
        parse_step_line("train --cache forever")


@pytest.mark.parametrize(
    ("line", "pair"),
    [
        ("train --no-cache --cache 1d", "--no-cache and --cache"),
        ("train --cache 1d --no-cache", "--no-cache and --cache"),
        ("train --no-cache --cache-scope shared", "--no-cache and --cache-scope"),
        ("train --cache-scope pipeline --no-cache", "--no-cache and --cache-scope"),
    ],
)
def test_no_cache_conflicts(line: str, pair: str) -> None:
    with pytest.raises(HeaderError, match=f"{pair} contradict each other. Keep one"):
        parse_step_line(line)


def test_no_cache_takes_no_value() -> None:
    with pytest.raises(HeaderError, match="--no-cache takes no value"):
        parse_step_line("train --no-cache=yes")
    with pytest.raises(HeaderError, match="--no-cache is given twice"):
        parse_step_line("train --no-cache --no-cache")


def test_cache_scope() -> None:
    assert parse_step_line("train --cache-scope shared").cache_scope == "shared"
    assert parse_step_line("train --cache-scope pipeline --cache 1d").cache_scope == "pipeline"
    with pytest.raises(HeaderError, match="--cache-scope takes one of: pipeline, shared, got 'global'"):
        parse_step_line("train --cache-scope global")


def test_inputs_relative_are_normalized_and_merged() -> None:
    header = parse_step_line("train --inputs data/./a.csv,data/raw/ --inputs 'my data/b.csv' --inputs data/a.csv")
    assert header.inputs == ("data/a.csv", "data/raw", "my data/b.csv")
    assert parse_step_line("train --inputs ' a.csv , b '").inputs == ("a.csv", "b")


def test_inputs_absolute_paths_are_allowed_for_data_outside_the_project() -> None:
    assert parse_step_line("train --inputs /mnt/data//x/../train.csv,//srv/d").inputs == (
        "/mnt/data/train.csv",
        "/srv/d",
    )


@pytest.mark.parametrize(
    "value", ["../data.csv", "a/../../b", "~/data.csv", "C:/data.csv", "\\\\server\\d", "/", "//", ".", "a/.."]
)
def test_inputs_rejects_paths_leaving_the_project_relatively(value: str) -> None:
    with pytest.raises(HeaderError, match="absolute path, e.g. --inputs /data/train.csv"):
        parse_step_line(f"train --inputs '{value}'")


@pytest.mark.parametrize("value", ["a,,b", "a,", ",", ""])
def test_inputs_rejects_empty_items(value: str) -> None:
    with pytest.raises(HeaderError, match="--inputs"):
        parse_step_line(f"train --inputs '{value}'")


@pytest.mark.parametrize(
    "line",
    [
        "train --no-cache --inputs data/a.csv,/abs/b",
        "train --cache P1Y2M10DT2H30M --cache-scope shared",
        "train --cache-scope shared",
        "train --inputs -odd.csv",
    ],
)
def test_cache_and_inputs_round_trip(line: str) -> None:
    header = parse_step_line(line)
    assert parse_header(format_step_line(header)) == header


def test_cache_format_is_normalized() -> None:
    assert format_step_line(parse_step_line("train --cache 30dT5h")) == "%%step train --cache P30DT5H"
    assert format_step_line(parse_step_line("train --no-cache")) == "%%step train --no-cache"


# ---- %%step: errors name the step, the problem and what is valid ----------------------------------------------


def _error(line: str) -> str:
    with pytest.raises(HeaderError) as caught:
        parse_step_line(line)
    return str(caught.value)


def test_unknown_option_lists_valid_ones_and_suggests() -> None:
    message = _error("train --retries 2")
    assert message.startswith("%%step train: unknown option '--retries'.")
    assert "Did you mean --retry?" in message
    assert "Valid options: " + ", ".join(o.flag for o in STEP_OPTIONS) in message


def test_bad_retry_value() -> None:
    assert _error("train --retry x") == "%%step train: --retry takes a whole number >= 0, got 'x'."
    assert "got '-1'" in _error("train --retry -1")
    assert "got '1.5'" in _error("train --retry 1.5")


@pytest.mark.parametrize("value", ["0", "-3", "abc", "nan", "inf"])
def test_bad_timeout_value(value: str) -> None:
    assert _error(f"train --timeout {value}") == (
        f"%%step train: --timeout takes a number of seconds > 0, got '{value}'."
    )


def test_bad_executor_lists_choices() -> None:
    assert _error("train --executor docker") == (
        "%%step train: --executor takes one of: process, kernel, container, got 'docker'."
    )


@pytest.mark.parametrize("value", ["1A=x", "NOEQUALS", "=x", "A-B=1"])
def test_bad_env(value: str) -> None:
    message = _error(f"train --env {value}")
    assert message.startswith("%%step train: --env takes NAME=VALUE with NAME like [A-Za-z_][A-Za-z0-9_]*, got ")


def test_conflicting_env_names() -> None:
    assert "--env sets A twice" in _error("train --env A=1 --env A=2")
    assert parse_step_line("train --env A=1 --env A=1").env == (("A", "1"),)


def test_bad_after_and_outputs_items() -> None:
    assert "--after takes a comma-separated list of step names" in _error("train --after 'a b'")
    assert "got 'a,'" in _error("train --after a,")
    assert "--outputs takes a comma-separated list of Python names, got '1x'" in _error("train --outputs 1x")


def test_missing_value() -> None:
    message = _error("train --retry")
    assert message.startswith("%%step train: --retry needs a value: --retry N.")
    assert "retry a failing step" in message
    assert _error("train --after --retry 1").startswith("%%step train: --after needs a value")


def test_single_valued_option_twice() -> None:
    assert _error("train --retry 1 --retry 2") == "%%step train: --retry is given twice. Give it once."


def test_missing_name() -> None:
    message = _error("--retry 1")
    assert message.startswith("%%step: needs a step name. Write %%step NAME [options]")
    assert "Valid options:" in message
    assert _error("").startswith("%%step: needs a step name")


def test_extra_positional() -> None:
    message = _error("train model")
    assert message.startswith("%%step train: unexpected word 'model': a step has one name.")
    assert "Quote values that contain spaces" in message


@pytest.mark.parametrize("name", ["bad!name", "x" * 65, "caf\u00e9"])
def test_invalid_name(name: str) -> None:
    message = _error(name)
    assert message.startswith(f"%%step: {name!r} is not a valid step name.")
    assert "1-64 letters, digits, '_' or '-'" in message


def test_unclosed_quote() -> None:
    message = _error("train --env 'A=1")
    assert message.startswith("%%step: cannot split the line into words (No closing quotation).")
    assert "Close the quote" in message


@pytest.mark.parametrize("path", ["/abs/x.py", "../x.py", "a/../../x.py", "~/x.py", ".", "C:x.py"])
def test_script_path_must_stay_inside_the_notebook_directory(path: str) -> None:
    message = _error(f"train --script {path}")
    assert "--script takes a relative file path inside the notebook directory" in message
    assert "Write a path like code/train.py." in message


# ---- %%parameters and %%writefile ------------------------------------------------------------------------------


def test_parameters_line() -> None:
    assert parse_parameters_line("") == ParametersHeader()
    assert parse_parameters_line("   # the knobs") == ParametersHeader()
    with pytest.raises(HeaderError) as caught:
        parse_parameters_line("x=1")
    assert str(caught.value).startswith("%%parameters: takes no options, got 'x=1'.")
    assert "`name: type = default`" in str(caught.value)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("code/x.py", WritefileHeader("code/x.py")),
        ("-a code/x.py", WritefileHeader("code/x.py", append=True)),
        ("code/x.py --append", WritefileHeader("code/x.py", append=True)),
        ("'my dir/x.py'", WritefileHeader("my dir/x.py")),
        ('"x.py"', WritefileHeader("x.py")),
        ("--step train code/train.py", WritefileHeader("code/train.py", step="train")),
        ("--step=train -a ./t.py", WritefileHeader("t.py", step="train", append=True)),
    ],
)
def test_writefile_line(line: str, expected: WritefileHeader) -> None:
    assert parse_writefile_line(line) == expected


@pytest.mark.parametrize(
    ("line", "start", "fix"),
    [
        ("", "%%writefile: needs a file path.", "%%writefile [-a] [--step NAME] PATH"),
        ("a.py b.py", "%%writefile: takes one file path, got 'a.py' and 'b.py'.", "Quote a path"),
        ("--force a.py", "%%writefile: unknown option '--force'.", "Valid options: -a/--append, --step NAME"),
        ("/tmp/a.py", "%%writefile: PATH takes a relative file path", "%%writefile [-a]"),
        ("../a.py", "%%writefile: PATH takes a relative file path", "%%writefile [-a]"),
        ("--step a.py", "%%writefile: 'a.py' is not a valid step name.", "--step train code/train.py"),
        ("a.py --step", "%%writefile: --step needs a step name.", "%%writefile [-a]"),
        ("--step 'no good' a.py", "%%writefile: 'no good' is not a valid step name.", "1-64 letters"),
        ("--step a --step b x.py", "%%writefile: --step is given twice.", "%%writefile [-a]"),
        ("'a.py", "%%writefile: cannot split the line into words", "Close the quote"),
    ],
)
def test_writefile_errors(line: str, start: str, fix: str) -> None:
    with pytest.raises(HeaderError) as caught:
        parse_writefile_line(line)
    assert str(caught.value).startswith(start)
    assert fix in str(caught.value)


# ---- dispatch and splitting ------------------------------------------------------------------------------------


def test_parse_header_dispatch() -> None:
    assert parse_header("%%step train --retry 1") == StepHeader("train", retry=1)
    assert parse_header("%%step\ttrain") == StepHeader("train")
    assert parse_header("%%parameters") == ParametersHeader()
    assert parse_header("%%writefile -a x.py\n") == WritefileHeader("x.py", append=True)
    assert parse_header("  %%step train") == StepHeader("train")
    for other in ["%%time", "%%stepper x", "%%step?", "x = 1", "%step train", "", "# %%step train"]:
        assert parse_header(other) is None


def test_parse_header_errors_come_from_the_right_parser() -> None:
    with pytest.raises(HeaderError, match=r"^%%step: needs a step name"):
        parse_header("%%step")
    with pytest.raises(HeaderError, match=r"^%%parameters: takes no options"):
        parse_header("%%parameters x")
    with pytest.raises(HeaderError, match=r"^%%writefile: needs a file path"):
        parse_header("%%writefile")


def test_split_cell() -> None:
    assert split_cell("%%step a\nx = 1\n") == (StepHeader("a"), "x = 1\n", 2)
    assert split_cell("x = 1\ny = 2") == (None, "x = 1\ny = 2", 1)
    assert split_cell("\n  \n%%step a\nx = 1") == (StepHeader("a"), "x = 1", 4)
    assert split_cell("%%time\nx = 1") == (None, "%%time\nx = 1", 1)
    assert split_cell("%%parameters") == (ParametersHeader(), "", 2)
    assert split_cell("") == (None, "", 1)


# ---- help --------------------------------------------------------------------------------------------------------


def test_step_help_documents_every_option_and_has_an_example() -> None:
    assert STEP_HELP.startswith("%%step NAME [options]")
    for option in STEP_OPTIONS:
        assert re.search(rf"^  {re.escape(option.flag)} {re.escape(option.metavar)} +{re.escape(option.help)}$",
                         STEP_HELP, re.MULTILINE)  # fmt: skip
    assert "Example:\n  %%step train" in STEP_HELP
    parse_header(STEP_HELP.split("Example:\n")[1].splitlines()[0].strip())  # the example itself parses


# ---- robustness and round-tripping -------------------------------------------------------------------------------

_words = st.sampled_from([o.flag for o in STEP_OPTIONS] + ["--", "-", "-a", "--step", "=", "'", '"', "#", "\\"])
_tokens = st.lists(st.one_of(_words, st.text(max_size=12), _words.map(lambda w: w + "=")), max_size=8)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_arbitrary_text_never_raises_anything_but_header_error(text: str) -> None:
    for line in (text, "%%step " + text, "%%writefile " + text, "%%parameters " + text):
        with contextlib.suppress(HeaderError):
            parse_header(line)
    with contextlib.suppress(HeaderError):
        parse_step_line(text)


@settings(max_examples=300, deadline=None)
@given(_tokens)
def test_option_like_tokens_never_raise_anything_but_header_error(tokens: list[str]) -> None:
    line = " ".join(tokens)
    for parse in (parse_step_line, parse_writefile_line):
        with contextlib.suppress(HeaderError):
            parse(line)


_name = st.from_regex(re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,20}"), fullmatch=True)
_identifier = st.from_regex(re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,10}"), fullmatch=True)
_path = st.lists(st.text(string.ascii_letters + string.digits + " _-", min_size=1, max_size=8), min_size=1,
                 max_size=3).map(lambda parts: "/".join(parts) + ".py")  # fmt: skip


_duration = st.sampled_from(["P30D", "PT1H", "P1Y2M10DT2H30M", "P2W", "PT16M", "P30DT5H", "PT1S"])
_cache_fields = st.one_of(
    st.just({"no_cache": True}),
    st.fixed_dictionaries({"cache": st.none() | _duration, "cache_scope": st.sampled_from(["pipeline", "shared"])}),
)
_data_part = st.from_regex(re.compile(r"[A-Za-z0-9_-]([A-Za-z0-9 ._-]{0,6}[A-Za-z0-9_-])?"), fullmatch=True).filter(
    lambda part: part not in (".", "..")
)
_data_path = st.builds(lambda absolute, parts: "/" * absolute + "/".join(parts), st.booleans(),
                       st.lists(_data_part, min_size=1, max_size=3))  # fmt: skip


@st.composite
def _step_headers(draw: st.DrawFn) -> StepHeader:
    env_names = draw(st.lists(_identifier, unique=True, max_size=3))
    return StepHeader(
        name=draw(_name),
        after=tuple(draw(st.lists(_name, unique=True, max_size=3))),
        outputs=tuple(draw(st.lists(_identifier, unique=True, max_size=3))),
        script=draw(st.none() | _path),
        env=tuple((n, draw(st.text(max_size=10).filter(lambda t: "\x00" not in t))) for n in env_names),
        executor=draw(st.sampled_from(["process", "kernel"])),
        retry=draw(st.integers(min_value=0, max_value=10**6)),
        timeout=draw(st.none() | st.floats(min_value=1e-3, max_value=1e9)),
        **draw(_cache_fields),
        inputs=tuple(draw(st.lists(_data_path, unique=True, max_size=3))),
    )


@settings(max_examples=300, deadline=None)
@given(_step_headers())
def test_valid_headers_round_trip(header: StepHeader) -> None:
    line = format_step_line(header)
    assert parse_header(line) == header
    assert re.fullmatch(STEP_NAME_PATTERN, header.name)
