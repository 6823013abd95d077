"""The --when grammar: parsing into the model, what is outside it, evaluation, and the builder's name resolution."""

from __future__ import annotations

import contextlib
import shlex
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jupyter_pipelines.authoring.builder import Cell, build_pipeline
from jupyter_pipelines.authoring.conditions import (
    ConditionError,
    condition_problem,
    evaluate,
    fail_message,
    first_read,
    parse_condition,
    value_refs,
)
from jupyter_pipelines.authoring.header import StepHeader, format_step_line, parse_step_line
from jupyter_pipelines.errors import AnalysisError, HeaderError
from jupyter_pipelines.model import (
    And,
    Compare,
    InList,
    JsonLiteral,
    Not,
    Operand,
    Or,
    ParameterRef,
    Pipeline,
    StepInput,
    ValueRef,
)


def resolve(name: str, path: tuple[str | int, ...]) -> Operand:
    """Names ending in _p are parameters; the others are values of step 'up'."""
    return ParameterRef(name) if name.endswith("_p") else ValueRef("up", name, path)


def parse(text: str):  # type: ignore[no-untyped-def]
    return parse_condition(text, resolve, where="step 's'")


MSE = ValueRef("up", "report", ("regression_metrics", "mse", "value"))


# ---- parsing ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("report['regression_metrics']['mse']['value'] <= t_p", Compare("<=", MSE, ParameterRef("t_p"))),
        ("x == 'a'", Compare("==", ValueRef("up", "x"), JsonLiteral("a"))),
        ("x != 3", Compare("!=", ValueRef("up", "x"), JsonLiteral(3))),
        ("x < -2.5", Compare("<", ValueRef("up", "x"), JsonLiteral(-2.5))),
        ("x > +1", Compare(">", ValueRef("up", "x"), JsonLiteral(1))),
        ("x >= True", Compare(">=", ValueRef("up", "x"), JsonLiteral(True))),
        ("x['a'][0] in [1, 'b', n_p]", InList(ValueRef("up", "x", ("a", 0)), (JsonLiteral(1), JsonLiteral("b"),
                                                                                 ParameterRef("n_p")))),
        ("x not in ('a',)", Not(InList(ValueRef("up", "x"), (JsonLiteral("a"),)))),
        ("not x == 1", Not(Compare("==", ValueRef("up", "x"), JsonLiteral(1)))),
        ("x == 1 and y == 2 or z == 3", Or((And((Compare("==", ValueRef("up", "x"), JsonLiteral(1)),
                                                 Compare("==", ValueRef("up", "y"), JsonLiteral(2)))),
                                            Compare("==", ValueRef("up", "z"), JsonLiteral(3))))),
        ("0 < x <= 5", And((Compare("<", JsonLiteral(0), ValueRef("up", "x")),
                            Compare("<=", ValueRef("up", "x"), JsonLiteral(5))))),
        ("  (x == 1)  ", Compare("==", ValueRef("up", "x"), JsonLiteral(1))),
    ],
)  # fmt: skip
def test_parse(text: str, expected: object) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("len(x) > 1", "the call 'len(x)'"),
        ("x + 1 > 2", "arithmetic 'x + 1'"),
        ("-x > 2", "arithmetic '-x'"),
        ("x.mse > 1", "the attribute 'x.mse'"),
        ("x in {1, 2}", "`in` needs a literal list"),
        ("x in y", "`in` needs a literal list"),
        ("x == None", "None (null) is not a JSON value"),
        ("x == b'a'", "is not a JSON value"),
        ("x == 1j", "complex '1j' is not a JSON value"),
        ("x == 1e999", "not a finite number"),
        ("x[k] > 1", "key 'k' is not a literal string or index"),
        ("x[1:2] > 1", "is not a literal string or index"),
        ("x[-1] > 1", "negative"),
        ("x is True", "'Is' comparisons are not allowed"),
        ("x", "is not a comparison. Compare it explicitly"),
        ("x == [1]", "the collection '[1]'"),
        ("lambda: 1", "is not allowed in a condition"),
        ("x == 1 if y else 2", "is not allowed in a condition"),
        ("x ==", "is not a valid expression"),
        ("", "needs an expression"),
        ("x == 1; import os", "is not a valid expression"),
        ("x\x00 == 1", "null bytes"),
        ("(" * 5000 + "x" + ")" * 5000 + " == 1", "--when"),
        ("not " * 5000 + "x == 1", "--when"),
        ("x == 1 " + "and x == 1 " * 400, "longer than"),
    ],
)
def test_outside_the_grammar_is_one_clear_error(text: str, says: str) -> None:
    with pytest.raises(AnalysisError) as caught:
        parse(text)
    message = str(caught.value)
    assert message.startswith("step 's': ")
    assert says in message
    assert "A condition compares upstream step values" in message  # the grammar, every time
    assert condition_problem(text) is not None


def test_walking_a_condition() -> None:
    condition = parse("t_p > 1 or report['regression_metrics']['mse']['value'] in [1, 2] and x != report['a']")
    assert value_refs(condition) == (MSE, ValueRef("up", "x"), ValueRef("up", "report", ("a",)))
    assert first_read(condition) == ParameterRef("t_p")
    assert first_read(parse("1 == 1")) is None
    assert fail_message("MSE {value} > {max} {value}", 7.5) == "MSE 7.5 > {max} 7.5"
    assert fail_message("flag {value}", True) == "flag true"


# ---- evaluating -------------------------------------------------------------------------------------------------

VALUES = {"report": {"regression_metrics": {"mse": {"value": 6.5}}, "stage": "dev", "ok": True, "list": [3, 4]}}


@pytest.mark.parametrize(
    ("text", "parameters", "expected"),
    [
        ("report['regression_metrics']['mse']['value'] <= t_p", {"t_p": 7.0}, True),
        ("report['regression_metrics']['mse']['value'] <= t_p", {"t_p": 6.5}, True),
        ("report['regression_metrics']['mse']['value'] < t_p", {"t_p": 6.5}, False),
        ("report['regression_metrics']['mse']['value'] > 6", {}, True),
        ("report['regression_metrics']['mse']['value'] >= 6.5", {}, True),
        ("report['list'][1] == 4.0", {}, True),  # numbers compare as numbers
        ("report['ok'] == 1", {}, False),  # a boolean is not a number
        ("report['ok'] == True", {}, True),
        ("report['stage'] != 'prod'", {}, True),
        ("report['stage'] in ['dev', 'test']", {}, True),
        ("report['stage'] not in ['dev', 'test']", {}, False),
        ("report['list'][0] in [s_p, 3]", {"s_p": "3"}, True),
        ("report['stage'] < 'e'", {}, True),
        ("not report['ok'] == True or report['stage'] == 'dev'", {}, True),
        ("report['ok'] == True and report['stage'] == 'prod'", {}, False),
    ],
)
def test_evaluate(text: str, parameters: dict[str, object], expected: bool) -> None:
    assert evaluate(parse(text), VALUES, parameters) is expected


def test_evaluate_numpy_scalars() -> None:
    numpy = pytest.importorskip("numpy")
    values = {"report": {"mse": numpy.float32(2.5), "n": numpy.int64(3)}}
    assert evaluate(parse("report['mse'] < 3 and report['n'] == 3"), values, {})


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("report['missing'] > 1", "reads report['missing'], which dict value from step 'up' does not have"),
        ("report['list'][5] > 1", "which list value"),
        ("report['regression_metrics'] > 1", "compares report['regression_metrics'], a dict"),
        ("report['stage'] > 1", "orders a string ('dev') against a number (1)"),
        ("report['ok'] > False", "orders a boolean"),
        ("absent > 1", "reads 'absent' from step 'up', which has no value"),
        ("report['ok'] == t_p", "reads parameter 't_p', which has no value"),
    ],
)
def test_evaluate_errors(text: str, says: str) -> None:
    with pytest.raises(ConditionError, match=None) as caught:
        evaluate(parse(text), VALUES, {})
    assert says in str(caught.value)


# ---- robustness -------------------------------------------------------------------------------------------------

_PIECES = st.sampled_from(
    ["x", "y_p", "report", "['a']", "[0]", "[-1]", " == ", " != ", " < ", " <= ", " in ", " not in ", " and ",
     " or ", "not ", "(", ")", "[", "]", ",", "1", "-2.5", "'s'", "True", "None", "f(x)", ".a", "+", "*", "{1}",
     "lambda: 0", ":=", "\\", "\x00", "'", '"', "#", "\n", " is "]
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=60), st.lists(_PIECES, max_size=14).map("".join)))
def test_any_text_is_a_condition_or_a_clear_error(text: str) -> None:
    with contextlib.suppress(AnalysisError):
        parse(text)
    try:
        header = parse_step_line("s --when " + shlex.quote(text))
    except HeaderError:
        return
    assert header.when == text
    assert parse_step_line(format_step_line(header).removeprefix("%%step")) == header


# ---- header options and the builder -------------------------------------------------------------------------------


def test_header_round_trips_the_new_options() -> None:
    header = StepHeader(
        name="reg",
        kind="register",
        framework="xgboost:1.7-1",
        instance_type="ml.m5.xlarge",
        instance_count="n",
        requirements="code/requirements.txt",
        when="report['mse'] <= t and stage in ['dev', \"it's\"]",
        else_fail="MSE {value} is above the threshold",
        condition_step="Check",
        fail_step="Failed",
    )
    line = format_step_line(header)
    assert parse_step_line(line.removeprefix("%%step")) == header
    assert parse_step_line("s --image 123.dkr.ecr.us-east-1.amazonaws.com/x:1 --instance-count 3").instance_count == 3


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("s --kind lambda", "--kind takes one of: processing, training, model, register, transform"),
        ("s --image a:1 --framework sklearn:1.2-1", "--image and --framework contradict each other"),
        ("s --framework sklearn", "--framework takes NAME:VERSION"),
        ("s --instance-type m5.large", "--instance-type takes an instance type like ml.m5.large"),
        ("s --instance-count 0", "--instance-count takes a whole number >= 1"),
        ("s --requirements /etc/reqs.txt", "--requirements takes a relative file path"),
        ("s --else-fail boom", "--else-fail needs --when"),
        ("s --when 'x > 1' --fail-step F", "--fail-step needs --else-fail"),
        ("s --when 'x > 1' --else-fail ' '", "--else-fail takes a non-empty message"),
        ("s --when 'f(x)'", "the call 'f(x)' is not allowed"),
    ],
)
def test_header_errors(line: str, says: str) -> None:
    with pytest.raises(HeaderError) as caught:
        parse_step_line(line)
    assert says in str(caught.value)


def cells(*sources: str) -> list[Cell]:
    return [Cell(i, textwrap.dedent(source).lstrip("\n"), f"id{i}") for i, source in enumerate(sources)]


def build(*sources: str) -> Pipeline:
    return build_pipeline(cells(*sources), "demo")


def build_error(*sources: str) -> str:
    with pytest.raises(AnalysisError) as caught:
        build(*sources)
    return str(caught.value)


PARAMETERS = "%%parameters\nthreshold: float = 7.0\ncount: int = 2\nlabel: str = 'x'"
EVAL = "%%step evaluate\nreport = {'mse': 1.0}"


def test_condition_names_are_resolved_and_become_inputs() -> None:
    pipeline = build(
        PARAMETERS,
        EVAL,
        "%%step other\nunused = 1",
        "%%step register --when \"report['mse'] <= threshold\" --else-fail 'MSE {value} too high'\nx = 1",
        "%%step deploy --when \"report['mse'] <= threshold\" --instance-count count\ny = x",
    )
    register = pipeline.step("register")
    assert register.condition == Compare("<=", ValueRef("evaluate", "report", ("mse",)), ParameterRef("threshold"))
    assert register.inputs == (StepInput("report", "evaluate"),)
    assert register.upstream == ("evaluate",)
    assert register.parameters == ()  # the condition reads it, not the code
    deploy = pipeline.step("deploy")
    assert deploy.instance_count == "count"
    assert deploy.inputs == (StepInput("report", "evaluate"), StepInput("x", "register"))
    # one shared condition step (and fail step) for equal conditions, the message shared too
    assert {(s.condition_step, s.fail_step, s.else_fail) for s in (register, deploy)} == {
        ("register-Condition", "register-Condition-Fail", "MSE {value} too high")
    }
    assert "when: report['mse'] <= threshold (condition step register-Condition)" in _describe(pipeline)


def _describe(pipeline: Pipeline) -> str:
    from jupyter_pipelines.authoring.describe import describe_pipeline

    return describe_pipeline(pipeline)


def test_condition_in_a_script_step() -> None:
    pipeline = build(
        EVAL, "%%writefile --step s run.py\nprint(1)", "%%step t --script run.py --when \"report['mse'] > 0\""
    )
    assert pipeline.step("t").inputs == (StepInput("report", "evaluate"),)


@pytest.mark.parametrize(
    ("sources", "says"),
    [
        ((EVAL, "%%step s --when 'absent > 1'\nx = 1"), "--when reads 'absent', which is not an output of an "
         "upstream step or a parameter: no cell above it defines it"),
        (("%%step s --when 'later > 1'\nx = 1", "%%step t\nlater = 2"),
         "step 't' (cell 2) binds it, after this step"),
        (("K = 3", "%%step s --when 'K > 1'\nx = 1"), "cell 1 defines it, outside any step"),
        ((PARAMETERS, "%%step s --when \"threshold['a'] > 1\"\nx = 1"), "subscripts parameter 'threshold'"),
        ((PARAMETERS, "%%step s --instance-count threshold\nx = 1"), "--instance-count threshold names no int "
         "parameter"),
        ((EVAL, "%%step a --when \"report['mse'] > 1\" --else-fail one\nx = 1",
          "%%step b --when \"report['mse'] > 1\" --else-fail two\ny = 1"), "give different --else-fail messages"),
        ((EVAL, "%%step a --when \"report['mse'] > 1\" --condition-step C1\nx = 1",
          "%%step b --when \"report['mse'] > 1\" --condition-step C2\ny = 1"), "name its condition step differently"),
        ((EVAL, "%%step a --when \"report['mse'] > 1\" --condition-step evaluate\nx = 1"),
         "taken by step 'evaluate'"),
        ((EVAL, "%%step " + "a" * 60 + " --when \"report['mse'] > 1\"\nx = 1"), "Name it with --condition-step"),
        (("%%step t\nm = 1", "%%step s --kind model\nserve = m"), "its cell must bind `predict`"),
    ],
)  # fmt: skip
def test_builder_errors(sources: tuple[str, ...], says: str) -> None:
    assert says in build_error(*sources)
