"""Plain cells into prelude parts, and cells into a validated pipeline: dependencies, files, errors, description."""

from __future__ import annotations

import textwrap

import pytest

from jupyter_pipelines.authoring.builder import Cell, build_pipeline, describe_pipeline
from jupyter_pipelines.authoring.prelude import plain_cell_parts
from jupyter_pipelines.errors import AnalysisError, HeaderError
from jupyter_pipelines.model import CacheConfig, Pipeline, Step, StepInput


def cells(*sources: str) -> list[Cell]:
    return [Cell(i, textwrap.dedent(source).lstrip("\n"), f"id{i}") for i, source in enumerate(sources)]


def build(*sources: str) -> Pipeline:
    return build_pipeline(cells(*sources), "demo")


def build_error(*sources: str, kind: type[Exception] = AnalysisError) -> str:
    with pytest.raises(kind) as caught:
        build(*sources)
    return str(caught.value)


# ---- plain cells -> prelude parts ------------------------------------------------------------------------------


def test_plain_cell_parts_kinds_sources_and_lines() -> None:
    body = textwrap.dedent(
        """\
        import numpy as np
        %matplotlib inline
        @functools.cache
        @other  # note
        def f(x):
            return np.sum(x) + K  # tail
        K = -3; L = (1, "a", None, b"x", {1: [2.5]})
        class Model(Base):
            pass
        """
    )
    plain = plain_cell_parts(body, cell_index=4, first_line=2)
    assert [(p.key, p.kind, p.binds, p.line) for p in plain.parts] == [
        ("4:0", "import", ("np",), 2),
        ("4:1", "function", ("f",), 4),
        ("4:2", "constant", ("K",), 8),
        ("4:3", "constant", ("L",), 8),
        ("4:4", "class", ("Model",), 9),
    ]
    assert plain.parts[1].source == "@functools.cache\n@other  # note\ndef f(x):\n    return np.sum(x) + K"
    assert plain.parts[1].uses == {"np", "K", "functools", "other"}
    assert plain.parts[2].source == "K = -3"
    assert plain.parts[4].uses == {"Base"}
    assert plain.parts[0].modules == ("numpy",)
    assert plain.computed == {}


def test_computed_names_and_ignored_scratch_work() -> None:
    body = 'df2 = df.dropna()\nx = f(3)\ndf.head()\nprint(x)\nif __name__ == "__main__":\n    main()\n'
    body += "for i in r:\n    pass\n"
    plain = plain_cell_parts(body, cell_index=0, first_line=1)
    assert plain.parts == ()
    assert plain.computed == {"df2": 1, "x": 2, "i": 7}


def test_only_the_final_binding_in_a_cell_counts() -> None:
    plain = plain_cell_parts("x = 1\nx = load()\ny = load()\ny = 2\n", cell_index=0, first_line=1)
    assert plain.computed == {"x": 2}
    assert [p.source for p in plain.parts] == ["y = 2"]


def test_guarded_import_is_an_import_part() -> None:
    body = "try:\n    import ujson as json\nexcept (ImportError, ModuleNotFoundError):\n    import json\n"
    (part,) = plain_cell_parts(body, cell_index=0, first_line=1).parts
    assert (part.kind, part.binds, part.modules, part.source) == ("import", ("json",), ("ujson", "json"), body[:-1])


def test_other_try_blocks_are_computed() -> None:
    plain = plain_cell_parts("try:\n    import x\nexcept Exception:\n    x = None\n", cell_index=0, first_line=1)
    assert plain.parts == () and plain.computed == {"x": 1}


def test_plain_cell_syntax_error_names_the_cell_and_line() -> None:
    with pytest.raises(AnalysisError) as caught:
        plain_cell_parts("x = 1\ny = (\n", cell_index=2, first_line=1)
    assert str(caught.value).startswith("cell 3, line 2: '(' was never closed")
    assert str(caught.value).endswith("Fix the code and run the cell again.")


# ---- steps and what flows between them -------------------------------------------------------------------------


def test_step_fields_come_from_the_cell_and_header() -> None:
    pipeline = build(
        "%%step load --env A=1 --executor kernel --retry 2 --timeout 30 --outputs df\ndf = 1\ndf\n",
    )
    (step,) = pipeline.steps
    assert step.name == "load"
    assert step.code == "df = 1\ndf\n"
    assert (step.cell_index, step.cell_id, step.code_line) == (0, "id0", 2)
    assert (step.env, step.executor, step.retry, step.timeout) == ((("A", "1"),), "kernel", 2, 30.0)
    assert step.outputs == ("df",) and step.binds == ("df",)
    assert step.last_expression is True
    assert len(step.code_digest) == 32


def test_reads_come_from_the_latest_earlier_binder() -> None:
    pipeline = build(
        "%%step a\nx = 1\ny = 2",
        "%%step b\nx = 10",
        "%%step c\nz = x + y",
        "%%step d\nx = 100",  # later: does not count for c
    )
    assert pipeline.step("c").inputs == (StepInput("x", "b"), StepInput("y", "a"))
    assert pipeline.step("c").upstream == ("b", "a")


def test_a_step_reading_its_own_name_before_binding_reads_upstream() -> None:
    pipeline = build("%%step a\ncount = 1", "%%step b\ncount = count + 1")
    assert pipeline.step("b").inputs == (StepInput("count", "a"),)


def test_binds_exclude_imports_and_private_names() -> None:
    step = build("%%step a\nimport os\nfrom math import pi\n_tmp = 1\nresult = _tmp + pi\ndef f(): pass").steps[0]
    assert step.binds == ("result", "f")


def test_parameters_reach_steps_directly_and_through_helpers() -> None:
    pipeline = build(
        "%%parameters\nseed: int = 0\nrate: float = 0.1\nname = 'x'",
        "def noisy(v):\n    return v + seed",
        "%%step a\nout = noisy(rate)",
        "%%step b\nother = 1",
    )
    assert pipeline.step("a").parameters == ("seed", "rate")  # in declaration order
    assert pipeline.step("b").parameters == ()
    assert [p.name for p in pipeline.parameters] == ["seed", "rate", "name"]


def test_prelude_is_transitive_in_notebook_order_and_only_what_is_used() -> None:
    pipeline = build(
        "import numpy as np\nimport pandas as pd\nimport os",
        "SCALE = 2\ndef scale(v):\n    return np.asarray(v) * SCALE",
        "def double(v):\n    return scale(v) * 2\nUNUSED = 1",
        "%%step a\nout = double([1])",
    )
    step = pipeline.steps[0]
    assert step.prelude == ("0:0", "1:0", "1:1", "2:0")
    assert [p.key for p in pipeline.prelude] == ["0:0", "1:0", "1:1", "2:0"]
    assert pipeline.prelude_part("1:1").source == "def scale(v):\n    return np.asarray(v) * SCALE"


def test_helper_may_call_a_helper_defined_in_a_later_cell_above_the_step() -> None:
    pipeline = build("def f():\n    return g()", "def g():\n    return 1", "%%step a\nout = f()")
    assert pipeline.steps[0].prelude == ("0:0", "1:0")


def test_helper_may_read_a_name_the_step_itself_binds() -> None:
    pipeline = build("def show():\n    return model", "%%step a\nmodel = 1\nout = show()")
    assert pipeline.steps[0].prelude == ("0:0",) and pipeline.steps[0].inputs == ()


def test_helper_reading_a_step_output_makes_it_an_input() -> None:
    pipeline = build("%%step load\ndf = 1", "def first():\n    return df", "%%step use\nout = first()")
    assert pipeline.step("use").inputs == (StepInput("df", "load"),)


def test_prelude_constant_after_a_step_shadows_its_output() -> None:
    pipeline = build("%%step a\nx = 1", "x = 5", "%%step b\ny = x")
    assert pipeline.step("b").inputs == () and pipeline.step("b").prelude == ("1:0",)


def test_other_cell_magics_and_ipython_lines_are_ignored() -> None:
    pipeline = build(
        "%%time\nthis is not python (",
        "%%bash\necho hi",
        "%load_ext jupyter_pipelines\n!pip install x",
        "%%step a\n%time y = 1\nout = 2",
    )
    assert pipeline.step_names == ("a",)


# ---- errors: names not defined where they should be --------------------------------------------------------------


def test_reading_a_computed_name_is_an_error() -> None:
    message = build_error("%%step load\ndf = 1", "x = 1", "df2 = df.dropna()", "", "", "%%step train\nm = df2")
    assert message == (
        "step 'train' (cell 6) reads 'df2', which cell 3 computes outside a step. Make cell 3 a step "
        "(start it with %%step NAME) so its result is tracked, or compute it inside 'train'."
    )


def test_reading_a_computed_name_through_a_helper() -> None:
    message = build_error("rows = load()", "def count():\n    return len(rows)", "%%step s\nn = count()")
    assert message.startswith(
        "step 's' (cell 3) reads 'rows' (through 'count', defined in cell 2), which cell 1 computes outside a step."
    )


def test_undefined_name_is_an_error_with_the_fix() -> None:
    message = build_error("%%step train\nmodel = fit(data)\n")
    assert message.startswith("step 'train' (cell 1) reads 'data', but no cell above it defines 'data'.")
    assert "Hidden kernel state cannot leak into a pipeline." in message
    assert "Define 'data' in a step, a %%parameters cell, or an import/def cell above cell 1." in message


def test_name_bound_by_a_later_step_says_move_it() -> None:
    message = build_error("%%step train\nmodel = data", "", "%%step load\ndata = 1")
    assert message == (
        "step 'train' (cell 1) reads 'data', but no cell above it defines 'data': step 'load' (cell 3) binds it "
        "but comes after 'train' (cell 1). Move cell 3 above cell 1."
    )


def test_name_imported_later_says_move_it() -> None:
    message = build_error("%%step a\nx = np.zeros(1)", "import numpy as np")
    assert "cell 2 defines it but comes after 'a' (cell 1). Move cell 2 above cell 1." in message


def test_private_name_of_an_earlier_step() -> None:
    message = build_error("%%step a\n_cache = 1", "%%step b\ny = _cache")
    assert "step 'a' (cell 1) binds it, but names starting with '_' stay inside their step." in message
    assert "Rename it without the leading '_' in step 'a'" in message


def test_module_imported_by_an_earlier_step() -> None:
    message = build_error("%%step a\nimport json", "%%step b\ny = json.dumps(1)")
    assert "step 'a' (cell 1) imports it, but imports are not step outputs." in message
    assert "Import it in a plain cell above cell 2 (shared by every step) or inside 'b'." in message


def test_undefined_name_after_a_star_import_says_import_it_by_name() -> None:
    message = build_error("from math import *", "%%step a\nx = sqrt(2)")
    assert message == (
        "step 'a' (cell 2) reads 'sqrt', but no cell above it defines 'sqrt': cell 1 has `from math import *`, "
        "whose names cannot be known before anything runs. "
        "Import 'sqrt' by name (from math import sqrt) in a plain cell above cell 2."
    )


def test_undefined_name_through_a_helper() -> None:
    message = build_error("def f():\n    return missing", "%%step s\nv = f()")
    assert message.startswith("step 's' (cell 2) reads 'missing' (through 'f', defined in cell 1), but no cell")


def test_missing_outputs_is_an_error() -> None:
    message = build_error("%%step a --outputs model,score\nmodel = 1")
    assert message == (
        "step 'a' (cell 1) lists 'score' in --outputs but never assigns it at top level. "
        "Assign each output in the cell (e.g. model = fit(...)) or remove it from --outputs."
    )


def test_private_name_may_be_an_explicit_output() -> None:
    step = build("%%step a --outputs _x\n_x = 1").steps[0]
    assert step.output_names == ("_x",)


def test_duplicate_step_names_name_both_cells() -> None:
    message = build_error("%%step a\nx = 1", "%%step b\ny = 1", "%%step a\nz = 1")
    assert message == "step 'a' is defined twice: cell 1 and cell 3. Rename one of them; step names must be unique."


def test_rebinding_a_parameter_is_an_error() -> None:
    message = build_error("%%parameters\nrate: float = 0.1", "%%step a\nrate = rate * 2")
    assert message == (
        "step 'a' (cell 2) assigns 'rate', which is a parameter (cell 1). "
        "Parameters are inputs: give the changed value another name (e.g. rate_2 = ...)."
    )


def test_header_errors_name_the_cell() -> None:
    message = build_error("x = 1", "%%step train --retries 2\ny = 1", kind=HeaderError)
    assert message.startswith("cell 2: %%step train: unknown option '--retries'.")
    assert "Valid options:" in message


def test_step_syntax_error_names_the_step_cell_and_line() -> None:
    message = build_error("x = 1", "%%step train\na = 1\nb = = 2")
    assert message == "step 'train' (cell 2), line 3: invalid syntax: 'b = = 2'. Fix the code and run the cell again."


# ---- --after and ordering ---------------------------------------------------------------------------------------


def test_after_adds_an_edge_and_may_point_at_a_later_step() -> None:
    pipeline = build("%%step report --after train\nr = 1", "%%step prep\np = 1", "%%step train\nt = 1")
    assert pipeline.step_names == ("prep", "train", "report")
    assert pipeline.step("report").upstream == ("train",)


def test_order_is_stable_by_notebook_order() -> None:
    pipeline = build("%%step a\nx = 1", "%%step b --after d\ny = 1", "%%step c\nz = 1", "%%step d\nw = 1")
    assert pipeline.step_names == ("a", "c", "d", "b")


def test_after_unknown_step_lists_steps() -> None:
    message = build_error("%%step a\nx = 1", "%%step b --after c\ny = 1")
    assert message == "step 'b' (cell 2): --after names 'c', which is not a step. Steps: a, b."


def test_after_itself() -> None:
    message = build_error("%%step a --after a\nx = 1")
    assert message == "step 'a' (cell 1): --after names the step itself. Remove it from --after."


def test_cycle_names_the_steps_and_the_fix() -> None:
    message = build_error("%%step a --after c\nx = 1", "%%step b\ny = x", "%%step c --after b\nz = 1")
    assert message == (
        "steps form a cycle: a -> c -> b -> a: 'a' (cell 1) runs after 'c' (--after); 'c' (cell 3) runs after "
        "'b' (--after); 'b' (cell 2) runs after 'a' (reads 'x'). "
        "Remove one of these --after options so the steps can run in order."
    )


# ---- scripts and tracked files ----------------------------------------------------------------------------------


def test_writefile_tracks_files_append_and_overwrite() -> None:
    pipeline = build(
        "%%writefile code/a.py\nA = 1",
        "%%writefile -a code/a.py\nB = 2\n",
        "%%writefile notes.txt\nold",
        "%%writefile notes.txt\nnew\n",
        "%%step s\nx = 1",
    )
    assert [(f.path, f.content, f.cell_index) for f in pipeline.files] == [
        ("code/a.py", "A = 1\nB = 2\n", 1),
        ("notes.txt", "new\n", 3),
    ]


def test_writefile_step_is_a_script_step_with_all_parameters() -> None:
    pipeline = build("%%parameters\na = 1\nb = 'x'", "%%writefile --step train code/train.py\nprint(1)")
    (step,) = pipeline.steps
    assert (step.name, step.code, step.script, step.files) == ("train", "", "code/train.py", ("code/train.py",))
    assert step.parameters == ("a", "b")
    assert pipeline.file("code/train.py").step == "train"


def test_step_with_script_option() -> None:
    pipeline = build(
        "%%writefile code/helpers.py\nX = 1",
        "%%writefile code/run.py\nfrom helpers import X\nprint(open('data.csv'))",
        "%%writefile data.csv\na,b",
        "%%step prep\np = 1",
        "%%step run --script code/run.py --after prep --retry 1\n# runs the script\n",
        "%%step other --script untracked.py",
    )
    run = pipeline.step("run")
    assert (run.script, run.after, run.retry, run.inputs, run.prelude) == ("code/run.py", ("prep",), 1, (), ())
    assert run.files == ("code/helpers.py", "code/run.py", "data.csv")  # the script's own imports and reads too
    assert pipeline.step("other").files == ()


def test_script_step_with_code_in_its_body_is_an_error() -> None:
    message = build_error("%%step run --script code/run.py\nx = 1")
    assert message == (
        "step 'run' (cell 1) runs code/run.py (--script), so its cell body must be empty; comments are fine. "
        "Move this code into code/run.py, or drop --script to run the cell itself."
    )


def test_cell_step_files_from_literals_imports_and_prelude() -> None:
    pipeline = build(
        "%%writefile code/helpers.py\nimport code.util\ndef f(): return 1",
        "%%writefile code/util.py\nU = 1",
        "%%writefile data/params.json\n{}",
        "%%writefile other.py\nO = 1",
        "from code.helpers import f",
        "%%step a\nout = f()\nconfig = open('./data/params.json').read()",
        "%%step b\nimport other\nv = other.O",
        "%%step c\nv = 1",
    )
    assert pipeline.step("a").files == ("code/helpers.py", "code/util.py", "data/params.json")
    assert pipeline.step("b").files == ("other.py",)
    assert pipeline.step("c").files == ()


def test_paths_must_stay_inside_the_notebook_directory() -> None:
    message = build_error("%%writefile ../escape.py\nx = 1", kind=HeaderError)
    assert message.startswith("cell 1: %%writefile: PATH takes a relative file path inside the notebook directory")


# ---- caching options, data inputs, path literals, modules -------------------------------------------------------


def test_cache_options_and_data_inputs_reach_the_model() -> None:
    pipeline = build(
        "%%step a --cache 30d --cache-scope shared --inputs data/raw/,/mnt/shared/x.parquet\nx = 1",
        "%%step b --no-cache\ny = 2",
        "%%step c\nz = 3",
        "%%step d --script code/run.py --cache T16m --inputs data/d.csv",
    )
    a, b, c, d = (pipeline.step(n) for n in "abcd")
    assert (a.cache, a.cache_scope, a.data_inputs) == (
        CacheConfig(enabled=True, expire_after="P30D"),
        "shared",
        ("data/raw", "/mnt/shared/x.parquet"),
    )
    assert (b.cache, b.cache_scope, b.data_inputs) == (CacheConfig(enabled=False), "pipeline", ())
    assert (c.cache, c.cache_scope, c.data_inputs) == (CacheConfig(), "pipeline", ())
    assert (d.cache, d.data_inputs) == (CacheConfig(expire_after="PT16M"), ("data/d.csv",))


def test_bad_cache_option_names_the_cell() -> None:
    message = build_error("x = 1", "%%step a --cache 90m\ny = 2", kind=HeaderError)
    assert message.startswith("cell 2: %%step a: --cache: '90m' is not a valid duration")


_PRELUDE = """\
import numpy as np
import os.path
from sklearn.linear_model import Ridge
DATA = "data/train.csv"
def load(name):
    import pandas as pd
    return pd.read_csv(f"data/{name}.csv", sep=",")
def unused():
    import torch
    return open("never.txt")
"""


def test_path_literals_come_from_the_step_and_the_prelude_it_uses() -> None:
    pipeline = build(
        _PRELUDE,
        "%%step a\nframe = load('train')\nraw = open(DATA).read()",
        "%%step b\nwith open('/etc/app/config.yaml') as f:\n    conf = f.read()\n"
        "note = '%d rows' % 3 + '{} done'.format(1) + f'{conf:>10}' + '''two\nlines''' + '  ' + ''\n"
        "when = conf.strftime('%Y-%m-%d')\nurl = 'https://example.com/data.csv'\nroot = '/'\nhere = './'\nup = '..'",
    )
    a = pipeline.step("a")
    assert a.path_literals == (",", ".csv", "data/", "data/train.csv", "train")  # the helper's literals too
    assert "never.txt" not in a.path_literals  # a prelude part the step does not use
    assert pipeline.step("b").path_literals == ("/etc/app/config.yaml",)


def test_path_literals_skip_very_long_strings() -> None:
    long_path = "d/" * 2047 + "x"  # 4095 characters: kept
    too_long = "d/" * 2048  # 4096: skipped
    pipeline = build(f"%%step a\np = {long_path!r}\nq = {too_long!r}")
    assert pipeline.step("a").path_literals == (long_path,)


def test_modules_come_from_the_step_and_the_prelude_it_uses() -> None:
    pipeline = build(
        _PRELUDE,
        "%%step a\nframe = load('train')\nm = Ridge()",
        "%%step b\nimport json, xml.etree.ElementTree as ET\nfrom . import sibling\n"
        "def inner():\n    from scipy import stats\n    return stats\nv = np.zeros(1) + os.path.sep.count('/')",
        "%%step c\nv2 = 1",
    )
    assert pipeline.step("a").modules == ("pandas", "sklearn")  # pandas: imported inside the helper load()
    assert pipeline.step("b").modules == ("json", "numpy", "os", "scipy", "xml")
    assert pipeline.step("c").modules == ()


def test_script_and_tracked_module_references() -> None:
    pipeline = build(
        "%%writefile code/helpers.py\nimport scipy.stats\nOUT = 'models/out.pkl'",
        "%%writefile code/params.json\n{}",
        "%%writefile --step c code/run.py\nimport helpers, json\nprint(open('data/x.csv').read())\n"
        "print(open('code/params.json').read())",
        "from code.helpers import OUT",
        "%%step e\nsaved = OUT",
    )
    c = pipeline.step("c")
    assert c.files == ("code/helpers.py", "code/params.json", "code/run.py")
    assert c.modules == ("helpers", "json", "scipy")
    assert c.path_literals == ("data/x.csv", "models/out.pkl")  # code/params.json is tracked: left out
    e = pipeline.step("e")
    assert e.modules == ("code", "scipy")  # what the imported tracked helper imports counts
    assert e.path_literals == ("models/out.pkl",)


def test_new_fields_default_for_hand_built_steps() -> None:
    step = Step(name="s", code="x = 1")
    assert (step.cache, step.cache_scope, step.data_inputs, step.path_literals, step.modules) == (
        CacheConfig(enabled=True, expire_after=None),
        "pipeline",
        (),
        (),
        (),
    )


def test_steps_are_in_run_order_when_after_names_a_later_step() -> None:
    pipeline = build("%%step a --after b\nx = 1", "%%step b\ny = 2", "%%step c\nz = 3")
    assert pipeline.step_names == ("b", "a", "c")
    assert pipeline.downstream_of({"b"}) == {"a", "b"}


# ---- describe ----------------------------------------------------------------------------------------------------


def test_describe_pipeline() -> None:
    pipeline = build(
        "import numpy as np",
        "%%parameters\nrate: float = 0.1",
        "%%step load\ndf = np.zeros(3)",
        "%%writefile --step report code/report.py\nprint(1)",
        "%%step train --after report --retry 2 --timeout 60 --env A=1\nmodel = df * rate",
    )
    assert describe_pipeline(pipeline) == textwrap.dedent(
        """\
        pipeline 'demo': 3 steps, 1 parameter

        parameters:
          rate: float = 0.1

        steps (in run order):
          load (cell 3): cell step, process executor
            upstream: none
            prelude: np (cell 1)
            outputs: df
          report (cell 4): script code/report.py, process executor
            upstream: none
            parameters: rate
            files: code/report.py
          train (cell 5): cell step, process executor, retry 2, timeout 60s
            after load: reads df
            after report: --after
            parameters: rate
            outputs: model
            env: A='1'

        tracked files:
          code/report.py (cell 4, 1 line)
        """
    )


def test_describe_cache_settings_and_data_inputs() -> None:
    pipeline = build(
        "%%step a --no-cache --inputs data/raw,/mnt/x.csv\nx = 1",
        "%%step b --cache 30d\ny = 2",
        "%%step c --cache PT1H --cache-scope shared\nz = 3",
        "%%step d --cache-scope shared\nw = 4",
        "%%step e\nv = 5",
    )
    text = describe_pipeline(pipeline)
    assert "    outputs: x\n    data inputs: data/raw, /mnt/x.csv\n    cache: off\n" in text
    assert "  b (cell 2): cell step, process executor\n    upstream: none\n    outputs: y\n" \
           "    cache: expires after P30D\n" in text  # fmt: skip
    assert "    outputs: z\n    cache: expires after PT1H, shared with other pipelines\n" in text
    assert "    outputs: w\n    cache: shared with other pipelines\n" in text
    assert text.endswith("  e (cell 5): cell step, process executor\n    upstream: none\n    outputs: v\n")
    assert text.count("cache:") == 4  # the default (cached, no expiry, this pipeline only) is not shown


def test_describe_empty_pipeline() -> None:
    assert describe_pipeline(build("x = 1")).splitlines() == [
        "pipeline 'demo': 0 steps, 0 parameters",
        "",
        "steps (in run order):",
        "  none: start a cell with %%step NAME to make it a step",
    ]
