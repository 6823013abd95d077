"""Parameters: declaring them in %%parameters cells, and checking the values users pass."""

from __future__ import annotations

import pytest

from jupyter_pipelines.authoring.builder import Cell, build_pipeline
from jupyter_pipelines.authoring.parameters import (
    coerce_parameter,
    declared_parameters,
    parse_overrides,
    resolve_parameters,
)
from jupyter_pipelines.errors import ParameterError
from jupyter_pipelines.model import Parameter, Pipeline

# ---- declarations ---------------------------------------------------------------------------------------------


def declare(body: str) -> tuple[Parameter, ...]:
    return declared_parameters(body, cell_index=1, first_line=2)


def test_typed_declarations() -> None:
    body = "name: str = 'x'\nepochs: int = 3\nrate: float = 0.5\nverbose: bool = False\nneg: float = -2.5\n"
    assert declare(body) == (
        Parameter("name", "str", "x", 1),
        Parameter("epochs", "int", 3, 1),
        Parameter("rate", "float", 0.5, 1),
        Parameter("verbose", "bool", False, 1),
        Parameter("neg", "float", -2.5, 1),
    )


def test_int_default_is_widened_for_a_float() -> None:
    (parameter,) = declare("rate: float = 1")
    assert parameter.default == 1.0 and isinstance(parameter.default, float)


def test_unannotated_literal_infers_the_type() -> None:
    assert [(p.type, p.default) for p in declare("a = 1\nb = 0.5\nc = 'x'\nd = True\ne = -3")] == [
        ("int", 1),
        ("float", 0.5),
        ("str", "x"),
        ("bool", True),
        ("int", -3),
    ]


def test_comments_and_magics_are_fine() -> None:
    assert len(declare("# the knobs\n%who\nseed: int = 0  # reproducible\n")) == 1


def _declaration_error(body: str) -> str:
    with pytest.raises(ParameterError) as caught:
        declare(body)
    return str(caught.value)


@pytest.mark.parametrize("annotation", ["list", "dict", "Optional[int]", "int | None", "'int'", "np.float64"])
def test_unsupported_type(annotation: str) -> None:
    message = _declaration_error(f"x: {annotation} = 1")
    assert message.startswith(f"%%parameters (cell 2), line 2: parameter 'x' is declared as {annotation};")
    assert "supported types are str, int, float, bool" in message
    assert "e.g. test_fraction: float = 0.2" in message


@pytest.mark.parametrize("default", ["compute()", "[1, 2]", "None", "2 ** 3", "other", "b'x'"])
def test_default_must_be_a_literal_of_a_supported_type(default: str) -> None:
    message = _declaration_error(f"\nx = {default}")
    assert message.startswith("%%parameters (cell 2), line 3: parameter 'x' needs a literal default")
    assert f"got {default}" in message
    assert "Compute derived values inside a step" in message


@pytest.mark.parametrize(
    ("declaration", "words"),
    [
        ("n: int = True", "parameter 'n' is an int but its default True is a bool"),
        ("n: int = 0.5", "parameter 'n' is an int but its default 0.5 is a float"),
        ("f: float = True", "parameter 'f' is a float but its default True is a bool"),
        ("s: str = 1", "parameter 's' is a str but its default 1 is an int"),
        ("b: bool = 1", "parameter 'b' is a bool but its default 1 is an int"),
    ],
)
def test_default_of_the_wrong_type(declaration: str, words: str) -> None:
    message = _declaration_error(declaration)
    assert words in message
    assert "Make the default match the type" in message


def test_missing_default() -> None:
    message = _declaration_error("seed: int")
    assert "parameter 'seed' needs a default value." in message
    assert "seed: int = ..." in message


@pytest.mark.parametrize("statement", ["print(1)", "a = b = 1", "a, b = 1, 2", "import os", "x.y = 1", "x += 1"])
def test_other_statements_are_rejected(statement: str) -> None:
    message = _declaration_error(statement)
    assert message.startswith("%%parameters (cell 2), line 2: only `name: type = default` lines belong here")
    assert "move other code to a step" in message


def test_duplicate_parameter_names_both_cells() -> None:
    cells = [Cell(0, "%%parameters\nseed: int = 0"), Cell(3, "%%parameters\nseed: int = 1")]
    with pytest.raises(ParameterError) as caught:
        build_pipeline(cells, "p")
    assert str(caught.value).startswith("parameter 'seed' is declared twice: cell 1 and cell 4.")
    assert "supported types are str, int, float, bool" in str(caught.value)


# ---- coercion --------------------------------------------------------------------------------------------------

FLOAT = Parameter("test_fraction", "float", 0.2)
INT = Parameter("epochs", "int", 3)
BOOL = Parameter("verbose", "bool", False)
STR = Parameter("name", "str", "x")


@pytest.mark.parametrize(
    ("parameter", "raw", "expected"),
    [
        (FLOAT, "0.3", 0.3),
        (FLOAT, " 1 ", 1.0),
        (FLOAT, 2, 2.0),
        (FLOAT, 0.5, 0.5),
        (INT, "42", 42),
        (INT, "-1", -1),
        (INT, 7, 7),
        (STR, "hello world", "hello world"),
        (STR, "", ""),
        (BOOL, True, True),
    ]
    + [(BOOL, text, True) for text in ("true", "TRUE", "1", "yes", "Yes")]
    + [(BOOL, text, False) for text in ("false", "False", "0", "no", "NO")],
)
def test_coerce(parameter: Parameter, raw: object, expected: object) -> None:
    value = coerce_parameter(parameter, raw)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    ("parameter", "raw", "message"),
    [
        (FLOAT, "abc", "parameter 'test_fraction' is a float; 'abc' is not a float. Example: -p test_fraction=0.2"),
        (FLOAT, "nan", "parameter 'test_fraction' is a float; 'nan' is not a float."),
        (FLOAT, True, "parameter 'test_fraction' is a float; True is not a float."),
        (INT, "0.5", "parameter 'epochs' is an int; '0.5' is not an int. Example: -p epochs=3"),
        (INT, True, "parameter 'epochs' is an int; True is not an int."),
        (INT, 1.0, "parameter 'epochs' is an int; 1.0 is not an int."),
        (BOOL, "maybe", "parameter 'verbose' is a bool; 'maybe' is not a bool. Use true or false"),
        (BOOL, 1, "parameter 'verbose' is a bool; 1 is not a bool."),
        (STR, 3, "parameter 'name' is a str; 3 is not a str."),
        (STR, None, "parameter 'name' is a str; NoneType is not a str."),
    ],
)
def test_coerce_rejects(parameter: Parameter, raw: object, message: str) -> None:
    with pytest.raises(ParameterError) as caught:
        coerce_parameter(parameter, raw)
    assert str(caught.value).startswith(message)
    assert f"Example: -p {parameter.name}=" in str(caught.value)


def test_bool_example_is_lowercase() -> None:
    with pytest.raises(ParameterError, match="Example: -p verbose=false$"):
        coerce_parameter(BOOL, "x")


# ---- overrides -------------------------------------------------------------------------------------------------

PIPELINE = Pipeline("churn", parameters=(FLOAT, INT, BOOL))


def test_parse_overrides() -> None:
    assert parse_overrides(PIPELINE, ["test_fraction=0.3", " epochs =10", "verbose=yes"]) == {
        "test_fraction": 0.3,
        "epochs": 10,
        "verbose": True,
    }
    assert parse_overrides(Pipeline("p", parameters=(STR,)), ["name=a=b"]) == {"name": "a=b"}


def test_override_without_equals() -> None:
    with pytest.raises(ParameterError) as caught:
        parse_overrides(PIPELINE, ["test_fraction"])
    assert str(caught.value) == "-p takes name=value, got 'test_fraction'. Example: -p test_fraction=0.2"


def test_unknown_override_lists_parameters() -> None:
    with pytest.raises(ParameterError) as caught:
        parse_overrides(PIPELINE, ["epoch=3"])
    assert str(caught.value) == (
        "unknown parameter 'epoch'. Pipeline 'churn' has: test_fraction (float), epochs (int), verbose (bool)."
    )


def test_unknown_override_without_parameters() -> None:
    with pytest.raises(ParameterError, match="has no parameters. Declare it in a %%parameters cell"):
        parse_overrides(Pipeline("p"), ["x=1"])


def test_resolve_parameters() -> None:
    assert resolve_parameters(PIPELINE, {"epochs": "5"}) == {"test_fraction": 0.2, "epochs": 5, "verbose": False}
    assert resolve_parameters(PIPELINE, {}) == {"test_fraction": 0.2, "epochs": 3, "verbose": False}
    with pytest.raises(ParameterError, match="unknown parameter 'nope'"):
        resolve_parameters(PIPELINE, {"nope": 1})
    with pytest.raises(ParameterError, match="'epochs' is an int; 'x' is not an int"):
        resolve_parameters(PIPELINE, {"epochs": "x"})
