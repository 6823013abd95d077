"""Static analysis of a cell body: reads, binds, imports, digest, IPython syntax, syntax errors."""

from __future__ import annotations

import contextlib
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jupyter_pipelines.authoring.analysis import CodeInfo, analyze_code, without_ipython_syntax
from jupyter_pipelines.errors import AnalysisError


def info(source: str) -> CodeInfo:
    return analyze_code(textwrap.dedent(source), where="step 'train' (cell 5)", first_line=2)


def reads(source: str) -> set[str]:
    return set(info(source).reads)


# ---- reads at top level: order matters ---------------------------------------------------------------------------


def test_read_before_bind_is_a_read() -> None:
    assert reads("print(x)\nx = 1") == {"x"}
    assert reads("x = 1\nprint(x)") == set()


def test_assignment_evaluates_the_value_first() -> None:
    assert reads("x = x + 1") == {"x"}


def test_augmented_assignment_reads_its_target() -> None:
    assert reads("x += 1") == {"x"}
    assert info("x += 1").binds == ("x",)


def test_del_unbinds() -> None:
    assert reads("x = 1\ndel x\nprint(x)") == {"x"}
    assert info("x = 1\ndel x").binds == ()
    assert reads("del y") == {"y"}


def test_builtins_are_not_reads_unless_nothing_else() -> None:
    assert reads("print(len([1]), display)") == set()


def test_attribute_and_subscript_targets_read_their_object() -> None:
    assert reads("df.columns = ['a']\ncache['k'] = 1") == {"df", "cache"}
    assert info("df.columns = ['a']").binds == ()


# ---- nested scopes ----------------------------------------------------------------------------------------------


def test_function_bodies_read_globals_the_cell_does_not_bind() -> None:
    source = """
    def f(a, *args, b=1, **kw):
        local = a + b
        return g(local) + threshold + len(args) + len(kw)

    def g(v):
        return v
    """
    assert reads(source) == {"threshold"}


def test_default_arguments_decorators_and_annotations_are_read_in_the_enclosing_scope() -> None:
    source = """
    @register(registry)
    def f(a: Frame = default, *, b: int = other) -> Result:
        return a
    """
    assert reads(source) == {"register", "registry", "Frame", "default", "other", "Result"}


def test_function_reading_a_global_bound_later_in_the_cell_is_not_a_read() -> None:
    assert reads("def f():\n    return y\ny = 1") == set()


def test_lambda_and_comprehension_scopes() -> None:
    assert reads("f = lambda q, r=s: q + r + t") == {"s", "t"}
    assert reads("out = [i * k for i in data if i > low]") == {"data", "k", "low"}
    assert reads("out = {k: v for k, v in pairs.items()}") == {"pairs"}
    assert reads("out = [j for i in rows for j in i]") == {"rows"}
    assert info("out = [i for i in range(3)]").binds == ("out",)  # comprehension variables stay inside


def test_comprehension_reads_a_global_bound_later_is_a_read() -> None:
    assert reads("out = [i + later for i in range(3)]\nlater = 1") == {"later"}


def test_class_bodies_run_at_once_and_are_invisible_to_methods() -> None:
    source = """
    class Model(Base, metaclass=Meta):
        size = 3
        double = size * 2
        def fit(self):
            return size + self.double
    """
    assert reads(source) == {"Base", "Meta", "size"}  # the method's `size` is the global one
    assert info(source).classes == ("Model",)


def test_global_and_nonlocal() -> None:
    source = """
    def setup():
        global CONFIG
        CONFIG = load()
    def counter():
        n = 0
        def inc():
            nonlocal n
            n += step
            return n
        return inc
    print(CONFIG)
    """
    result = info(source)
    assert result.binds == ("setup", "CONFIG", "counter")
    assert set(result.reads) == {"load", "step"}


def test_walrus_binds_in_the_enclosing_scope() -> None:
    result = info("if (n := len(rows)) > 1:\n    pass\nflags = [(last := v) for v in values]\nprint(n, last)")
    assert set(result.reads) == {"rows", "values"}
    assert result.binds == ("n", "last", "flags")  # the comprehension runs before flags is assigned


def test_binding_forms() -> None:
    source = """
    a, (b, *c) = 1, (2, 3)
    for i, j in pairs:
        pass
    with open(path) as fh, lock:
        pass
    import os.path
    from collections import OrderedDict as OD
    def f(): pass
    class K: pass
    try:
        pass
    except ValueError as error:
        pass
    x: int = 1
    y: Annotation
    """
    result = info(source)
    assert result.binds == ("a", "b", "c", "i", "j", "fh", "os", "OD", "f", "K", "x")
    assert set(result.reads) == {"pairs", "path", "lock", "Annotation"}


def test_match_statement() -> None:
    source = """
    match command:
        case Point(x=0, y=yy):
            print(yy)
        case {"key": value, **rest}:
            print(value, rest)
        case [first, *others] if first > limit:
            print(others)
        case Color.RED | None:
            pass
        case str() as text:
            print(text)
    """
    result = info(source)
    assert set(result.reads) == {"command", "Point", "limit", "Color"}
    assert result.binds == ("yy", "value", "rest", "first", "others", "text")


def test_async_constructs() -> None:
    source = """
    async def main():
        async with session() as s:
            async for item in s:
                await handle(item)
    """
    assert reads(source) == {"session", "handle"}


# ---- imports, functions, literals, last expression ----------------------------------------------------------------


def test_imports_and_modules() -> None:
    result = info("import numpy as np\nimport os.path\nfrom sklearn.model_selection import train_test_split\n"
                  "from . import sibling\ndef f():\n    import json\n    return json")  # fmt: skip
    assert result.imports == {
        "np": "numpy",
        "os": "os",
        "train_test_split": "sklearn.model_selection.train_test_split",
        "sibling": ".sibling",
    }
    assert result.modules == ("numpy", "os", "sklearn", "json")
    assert "sklearn.model_selection" in result.imported and "os.path" in result.imported
    assert result.functions == ("f",)


def test_string_literals() -> None:
    assert info("df = read('data/x.csv', sep=',')\nname = f'out/{k}.csv'").string_literals == {
        "data/x.csv",
        ",",
        "out/",
        ".csv",
    }


def test_format_specs_are_not_string_literals_but_names_in_them_are_read() -> None:
    result = info("s = f'{x:.2f} and {y!r:>{width}}'")
    assert result.string_literals == {" and "}
    assert result.reads == {"x", "y", "width"}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("x = 1\nx", True),
        ("df.head()", True),
        ("df.head();", False),
        ("df.head()  ;  # quiet", False),
        ("x = 1", False),
        ("x = 1\nx  # shown", True),
        ("", False),
    ],
)
def test_last_expression(source: str, expected: bool) -> None:
    assert info(source).last_expression is expected


# ---- digest -------------------------------------------------------------------------------------------------------


def test_digest_ignores_comments_and_formatting_but_not_code_or_docstrings() -> None:
    base = info("def f(a, b):\n    '''doc'''\n    return a+b\n").digest
    assert info("# note\ndef f( a , b ):  # c\n\n    '''doc'''\n    return (a + b)\n").digest == base
    assert info("def f(a, b):\n    '''other'''\n    return a+b\n").digest != base
    assert info("def f(a, b):\n    '''doc'''\n    return a-b\n").digest != base
    assert len(base) == 32 and int(base, 16) >= 0


# ---- IPython syntax -----------------------------------------------------------------------------------------------


def test_line_magics_and_shell_escapes_are_blanked_keeping_line_numbers() -> None:
    source = "%matplotlib inline\n  !pip install x\nfiles = !ls\nout = %sx echo\ny = x\n?df\n"
    assert without_ipython_syntax(source) == "\n\nfiles = None\nout = None\ny = x\n\n"
    result = info(source)
    assert result.binds == ("files", "out", "y")
    assert set(result.reads) == {"x"}


def test_valid_python_is_never_rewritten() -> None:
    result = info("x = (a\n% b)")
    assert set(result.reads) == {"a", "b"}


# ---- syntax errors ------------------------------------------------------------------------------------------------


def test_syntax_error_names_the_step_cell_line_text_and_fix() -> None:
    with pytest.raises(AnalysisError) as caught:
        analyze_code("a = 1\nb = 2\nx = = 1\n", where="step 'train' (cell 5)", first_line=2)
    assert str(caught.value) == (
        "step 'train' (cell 5), line 4: invalid syntax: 'x = = 1'. Fix the code and run the cell again."
    )


def test_unclosed_bracket_and_bad_indent() -> None:
    with pytest.raises(AnalysisError, match=r"^step 'train' \(cell 5\), line 2: '\(' was never closed"):
        info("f(1,\n")
    with pytest.raises(AnalysisError, match=r"line 3: .*indent.*Fix the code"):
        info("if x:\npass\n")


def test_null_byte_is_an_analysis_error() -> None:
    with pytest.raises(AnalysisError, match=r"^step 'train' \(cell 5\), line 2: .*Fix the code"):
        info("x = 1\x00")


def test_deep_nesting_is_an_analysis_error() -> None:
    with pytest.raises(AnalysisError, match=r"^step 'train' \(cell 5\): the code is nested too deeply.*Split"):
        info("x = " + "+".join(["1"] * 100_000))
    with pytest.raises(AnalysisError, match=r"line 2: too many nested parentheses: 'x = \(\(\(.*\.\.\.'\."):
        info("x = " + "(" * 5000 + ")" * 5000)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_arbitrary_text_gives_code_info_or_analysis_error(text: str) -> None:
    with contextlib.suppress(AnalysisError):
        analyze_code(text, where="cell 1", first_line=1)
