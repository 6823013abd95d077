"""The step cache on real notebooks and real step processes: exactly the affected steps rerun, nothing else.

Pipelines come from notebooks written to disk (the authoring layer fills in code digests, literals and modules
as it does for users); runs are in-process ``run_pipeline`` calls whose steps run in forked processes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jupyter_pipelines.authoring.notebook import pipeline_from_notebook
from jupyter_pipelines.engine import Store, packages
from jupyter_pipelines.engine.why import explain
from jupyter_pipelines.model import Parameter, Pipeline

from .notebooks import write_notebook
from .test_engine_support import Ran, pipeline, run, step


def nb(tmp_path: Path, cells: Sequence[str], name: str = "flow") -> Pipeline:
    return pipeline_from_notebook(write_notebook(tmp_path / f"{name}.ipynb", cells))


def ran_steps(ran: Ran) -> set[str]:
    """The steps that executed (not from the cache)."""
    return {name for name, result in ran.result.steps.items() if result.status == "succeeded"}


def statuses(ran: Ran) -> dict[str, str]:
    return {name: result.status for name, result in ran.result.steps.items()}


FLOW = [
    "%%parameters\nrate: float = 0.5\nlabel: str = 'x'",
    "def helper(v):\n    return v + 1",
    "%%step load\nrows = [1, 2, 3]",
    "%%step clean\nclean_rows = [helper(r) for r in rows]",
    "%%step fit\nmodel = sum(clean_rows) * rate",
    "%%step report\ntext = f'{label}: {model}'",
    "%%step other\nside = 42",
]
ALL = {"load", "clean", "fit", "report", "other"}


def edited(index: int, source: str) -> list[str]:
    cells = list(FLOW)
    cells[index] = source
    return cells


def test_unchanged_pipeline_reruns_nothing(tmp_path: Path) -> None:
    first = run(tmp_path, nb(tmp_path, FLOW))
    assert ran_steps(first) == ALL
    second = run(tmp_path, nb(tmp_path, FLOW))
    assert statuses(second) == dict.fromkeys(ALL, "cached")
    assert {r.cached_from for r in second.result.steps.values()} == {first.result.run_id}


def test_editing_a_steps_code_reruns_it_and_its_downstream_only(tmp_path: Path) -> None:
    run(tmp_path, nb(tmp_path, FLOW))
    again = run(tmp_path, nb(tmp_path, edited(3, "%%step clean\nclean_rows = [helper(r) * 2 for r in rows]")))
    assert ran_steps(again) == {"clean", "fit", "report"}
    assert statuses(again)["load"] == statuses(again)["other"] == "cached"


def test_editing_a_comment_or_whitespace_reruns_nothing(tmp_path: Path) -> None:
    run(tmp_path, nb(tmp_path, FLOW))
    source = "%%step clean\n# cleaning, explained\nclean_rows = [helper(r)   for r in rows]  # one each\n\n"
    again = run(tmp_path, nb(tmp_path, edited(3, source)))
    assert ran_steps(again) == set()


def test_changing_a_parameter_reruns_only_its_readers_and_their_downstream(tmp_path: Path) -> None:
    pipe = nb(tmp_path, FLOW)
    run(tmp_path, pipe)
    assert ran_steps(run(tmp_path, pipe, parameters={"rate": 2.0})) == {"fit", "report"}
    assert ran_steps(run(tmp_path, pipe, parameters={"rate": 2.0, "label": "y"})) == {"report"}
    assert ran_steps(run(tmp_path, pipe, parameters={"rate": 2.0, "label": "y"})) == set()


def test_editing_a_helper_reruns_the_steps_that_use_it(tmp_path: Path) -> None:
    run(tmp_path, nb(tmp_path, FLOW))
    again = run(tmp_path, nb(tmp_path, edited(1, "def helper(v):\n    return v + 2")))
    assert ran_steps(again) == {"clean", "fit", "report"}


def test_early_cut_off_keeps_downstream_cached(tmp_path: Path) -> None:
    run(tmp_path, nb(tmp_path, FLOW))
    same_output = "%%step clean\nclean_rows = [r + 1 for r in rows]"  # new code, same values as helper(r)
    again = run(tmp_path, nb(tmp_path, edited(3, same_output)))
    assert ran_steps(again) == {"clean"}
    assert statuses(again)["fit"] == statuses(again)["report"] == "cached"


def test_force_reruns_a_step_and_downstream_only_if_its_outputs_change(tmp_path: Path) -> None:
    pipe = nb(tmp_path, FLOW)
    run(tmp_path, pipe)
    forced = run(tmp_path, pipe, force=frozenset({"clean"}))
    assert ran_steps(forced) == {"clean"}


def test_no_cache_step_always_reruns_and_is_never_stored(tmp_path: Path) -> None:
    cells = ["%%step a --no-cache\nx = 1", "%%step b\ny = x + 1"]
    run(tmp_path, nb(tmp_path, cells))
    again = run(tmp_path, nb(tmp_path, cells))
    assert statuses(again) == {"a": "succeeded", "b": "cached"}  # same x: b's signature is unchanged
    assert {e.step for e in Store(tmp_path / ".pipelines").cache_entries("flow")} == {"b"}


def test_expired_entries_are_not_reused(tmp_path: Path) -> None:
    cells = ["%%step a --cache PT1S\nx = 1", "%%step b --cache P30D\ny = x + 1"]
    run(tmp_path, nb(tmp_path, cells))
    assert statuses(run(tmp_path, nb(tmp_path, cells))) == {"a": "cached", "b": "cached"}
    time.sleep(1.2)
    assert statuses(run(tmp_path, nb(tmp_path, cells))) == {"a": "succeeded", "b": "cached"}
    entries = {e.step: e for e in Store(tmp_path / ".pipelines").cache_entries("flow")}
    assert entries["a"].expires is not None and entries["a"].expires - entries["a"].created == pytest.approx(1.0)


def test_failed_steps_are_never_cached(tmp_path: Path) -> None:
    marker = tmp_path / "fixed"
    cells = [f"%%step a\nimport os\nif not os.path.exists({str(marker)!r}): raise RuntimeError('not yet')\nx = 1"]
    first = run(tmp_path, nb(tmp_path, cells))
    assert statuses(first) == {"a": "failed"}
    assert Store(tmp_path / ".pipelines").cache_entries("flow") == []
    marker.write_text("")
    assert statuses(run(tmp_path, nb(tmp_path, cells))) == {"a": "succeeded"}
    assert statuses(run(tmp_path, nb(tmp_path, cells))) == {"a": "cached"}


def test_unserializable_output_that_no_step_reads_is_cached(tmp_path: Path) -> None:
    cells = ["%%step a\nimport threading\nlock = threading.Lock()\nn = 3", "%%step b\nm = n * 2"]
    run(tmp_path, nb(tmp_path, cells))
    again = run(tmp_path, nb(tmp_path, cells))
    assert statuses(again) == {"a": "cached", "b": "cached"}
    assert set(again.result.steps["a"].outputs) == {"n"}  # the lock is simply absent
    assert again.outputs("b") == {"m": 6}


# --- data files ------------------------------------------------------------------------------------------------


def _restore_mtime(path: Path, st: os.stat_result) -> None:
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


@pytest.mark.parametrize("declared", [True, False], ids=["--inputs", "literal"])
def test_changed_data_file_with_same_size_and_mtime_is_detected(tmp_path: Path, declared: bool) -> None:
    data = tmp_path / "data.csv"
    data.write_text("a,b\n1,2\n")
    option = " --inputs data.csv" if declared else ""
    cells = [
        f"%%step read{option}\nwith open('data.csv') as f:\n    text = f.read()",
        "%%step use\nn = text.count('1')",
    ]
    run(tmp_path, nb(tmp_path, cells))
    before = data.stat()
    data.write_text("a,b\n1,1\n")  # same size
    _restore_mtime(data, before)
    assert data.stat().st_mtime_ns == before.st_mtime_ns and data.stat().st_size == before.st_size
    assert ran_steps(run(tmp_path, nb(tmp_path, cells))) == {"read", "use"}


def test_touching_a_data_file_reruns_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    data.write_text("a,b\n1,2\n")
    cells = ["%%step read --inputs data.csv\ntext = open('data.csv').read()"]
    run(tmp_path, nb(tmp_path, cells))
    time.sleep(0.02)
    data.touch()
    assert ran_steps(run(tmp_path, nb(tmp_path, cells))) == set()


def test_declared_directory_is_hashed_but_a_directory_literal_is_not(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "part.txt").write_text("one")
    cells = [
        "%%step declared --inputs data\nimport os\na = sorted(os.listdir('data'))",
        "%%step literal\nimport os\nb = sorted(os.listdir('data/'))",
    ]
    run(tmp_path, nb(tmp_path, cells))
    (tmp_path / "data" / "part.txt").write_text("two")
    assert ran_steps(run(tmp_path, nb(tmp_path, cells))) == {"declared"}
    (tmp_path / "data" / "new.txt").write_text("new")  # a literal directory is not tracked: declare it
    assert ran_steps(run(tmp_path, nb(tmp_path, cells))) == {"declared"}


def test_parameter_value_naming_a_file_is_fingerprinted(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("first")
    cells = ["%%parameters\nsource: str = 'in.txt'", "%%step read\ntext = open(source).read()"]
    run(tmp_path, nb(tmp_path, cells))
    (tmp_path / "in.txt").write_text("second")
    again = run(tmp_path, nb(tmp_path, cells))
    assert ran_steps(again) == {"read"} and again.outputs("read") == {"text": "second"}


def test_a_step_writing_a_file_it_names_is_cached_next_run(tmp_path: Path) -> None:
    cells = ["%%step write\nimport json\nwith open('report.json', 'w') as f:\n    json.dump({'a': 1}, f)\ndone = 1"]
    assert ran_steps(run(tmp_path, nb(tmp_path, cells))) == {"write"}
    assert ran_steps(run(tmp_path, nb(tmp_path, cells))) == set()
    assert ran_steps(run(tmp_path, nb(tmp_path, cells))) == set()
    (tmp_path / "report.json").write_text('{"a": 2}')  # someone else changed it: the step reruns
    assert ran_steps(run(tmp_path, nb(tmp_path, cells))) == {"write"}


def test_file_read_by_several_steps_is_hashed_once_per_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from jupyter_pipelines.engine import fileindex

    (tmp_path / "shared.txt").write_text("x" * 1000)
    cells = [f"%%step s{i} --inputs shared.txt\nv{i} = {i}" for i in range(4)]
    hashed: list[str] = []
    real = fileindex.hash_file

    def counting(path: str) -> str:
        hashed.append(str(path))
        return real(path)

    monkeypatch.setattr(fileindex, "hash_file", counting)
    run(tmp_path, nb(tmp_path, cells))
    assert [Path(p).name for p in hashed].count("shared.txt") == 1
    hashed.clear()
    time.sleep(0.15)  # past the racy window: the remembered hash is trusted
    run(tmp_path, nb(tmp_path, cells))
    run(tmp_path, nb(tmp_path, cells))
    assert [Path(p).name for p in hashed].count("shared.txt") <= 1  # at most once more, then a stat suffices


# --- packages and interpreter ----------------------------------------------------------------------------------


def test_package_version_change_reruns_the_steps_importing_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cells = ["import numpy as np", "%%step arr\nvalues = np.arange(3)", "%%step plain\nn = 3"]
    run(tmp_path, nb(tmp_path, cells))
    assert ran_steps(run(tmp_path, nb(tmp_path, cells))) == set()
    real = packages.lookup_versions

    def upgraded(modules, cache_file=None):  # type: ignore[no-untyped-def]
        return {m: ("numpy 99.0.0" if m == "numpy" else v) for m, v in real(modules, cache_file).items()}

    monkeypatch.setattr(packages, "lookup_versions", upgraded)
    assert ran_steps(run(tmp_path, nb(tmp_path, cells))) == {"arr"}
    text = explain(nb(tmp_path, cells), Store(tmp_path / ".pipelines"), tmp_path, "arr", {}).text()
    assert "will come from the cache" in text
    monkeypatch.setattr(packages, "lookup_versions", real)
    text = explain(nb(tmp_path, cells), Store(tmp_path / ".pipelines"), tmp_path, "arr", {}).text()
    assert "will come from the cache" in text  # the first run's entry is still there


def test_python_version_change_reruns_everything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cells = ["%%step a\nx = 1", "%%step b\ny = x"]
    run(tmp_path, nb(tmp_path, cells))
    monkeypatch.setattr(packages, "python_version", lambda: "CPython 9.9.9")
    assert ran_steps(run(tmp_path, nb(tmp_path, cells))) == {"a", "b"}
    text = explain(nb(tmp_path, cells), Store(tmp_path / ".pipelines"), tmp_path, "b", {}).text()
    assert "will come from the cache" in text


# --- scope ---------------------------------------------------------------------------------------------------


def test_shared_scope_reuses_an_identical_step_of_another_pipeline(tmp_path: Path) -> None:
    shared = ["%%step expensive --cache-scope shared\nvalue = sum(range(1000))"]
    plain = ["%%step expensive\nvalue = sum(range(1000))"]
    first = run(tmp_path, nb(tmp_path, shared, "one"))
    assert statuses(run(tmp_path, nb(tmp_path, shared, "two"))) == {"expensive": "cached"}
    second = run(tmp_path, nb(tmp_path, plain, "three"))
    assert statuses(second) == {"expensive": "succeeded"}  # per-pipeline scope: no sharing of results
    assert (
        second.result.steps["expensive"].outputs["value"].hash
        == first.result.steps["expensive"].outputs["value"].hash
    )  # objects are shared by content anyway


# --- why ---------------------------------------------------------------------------------------------------------


def why(tmp_path: Path, cells: Sequence[str], step_name: str, **parameters: object) -> str:
    pipe = nb(tmp_path, cells)
    return explain(pipe, Store(tmp_path / ".pipelines"), tmp_path, step_name, parameters).text()  # type: ignore[arg-type]


def test_why_never_ran_and_cached(tmp_path: Path) -> None:
    assert "never ran" in why(tmp_path, FLOW, "fit")
    first = run(tmp_path, nb(tmp_path, FLOW))
    text = why(tmp_path, FLOW, "fit")
    assert "will come from the cache" in text and first.result.run_id in text and "kept until cleared" in text


def test_why_names_each_kind_of_change(tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_text("1,2\n")
    cells = [*FLOW, "%%step readdata --inputs data.csv --cache P1D\ntext = open('data.csv').read()"]
    run(tmp_path, nb(tmp_path, cells))
    assert "will come from the cache" in why(tmp_path, cells, "readdata") and "expires 20" in why(
        tmp_path, cells, "readdata"
    )
    code = why(tmp_path, [*cells[:3], "%%step clean\nclean_rows = [helper(r) * 2 for r in rows]", *cells[4:]], "fit")
    assert "will rerun" in code
    assert (
        "input 'clean_rows' will change if clean's outputs change (early cut-off may still keep this cached)" in code
    )
    assert "clean will rerun (its code changed" in code
    assert "its code changed (comments and whitespace do not count)" in why(
        tmp_path, [*cells[:3], "%%step clean\nclean_rows = [helper(r) * 2 for r in rows]", *cells[4:]], "clean"
    )
    assert "prelude part `helper` changed" in why(tmp_path, edited(1, "def helper(v):\n    return v + 2"), "clean")
    assert "parameter rate: 0.5 → 0.3" in why(tmp_path, cells, "fit", rate=0.3)
    assert "option cache expire after: P1D → P2D" in why(
        tmp_path, [*cells[:-1], cells[-1].replace("P1D", "P2D")], "readdata"
    )
    (tmp_path / "data.csv").write_text("1,3\n")
    assert "data file data.csv changed" in why(tmp_path, cells, "readdata")


def test_why_says_no_cache_and_expired(tmp_path: Path) -> None:
    cells = ["%%step a --no-cache\nx = 1", "%%step b --cache PT1S\ny = 2"]
    run(tmp_path, nb(tmp_path, cells))
    assert "--no-cache" in why(tmp_path, cells, "a")
    time.sleep(1.1)
    assert "expired at" in why(tmp_path, cells, "b")


def test_why_names_a_changed_package_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cells = ["import numpy as np", "%%step arr\nvalues = np.arange(3)"]
    run(tmp_path, nb(tmp_path, cells))
    real = packages.lookup_versions
    monkeypatch.setattr(
        packages,
        "lookup_versions",
        lambda modules, cache_file=None: {**real(modules, cache_file), "numpy": "numpy 99"},
    )
    text = why(tmp_path, cells, "arr")
    assert "package numpy: numpy " in text and "→ numpy 99" in text


def test_why_names_a_changed_input_from_a_cached_upstream(tmp_path: Path) -> None:
    run(tmp_path, nb(tmp_path, FLOW))
    changed = edited(3, "%%step clean\nclean_rows = [helper(r) * 2 for r in rows]")
    run(tmp_path, nb(tmp_path, changed), selected=frozenset({"clean"}))  # clean's new result is cached, fit's not
    text = why(tmp_path, changed, "fit")
    assert "will rerun (compared with its cached result from run" in text
    assert "input 'clean_rows' from step clean changed" in text


# --- property: random DAGs, random edits -------------------------------------------------------------------------

EDITS = ("none", "value", "cosmetic")


@st.composite
def dags_with_edits(draw: st.DrawFn) -> tuple[list[tuple[list[int], list[str]]], list[str], dict[str, int]]:
    """Steps (which earlier steps and which parameters each reads), an edit per step, new parameter values."""
    count = draw(st.integers(1, 6))
    shape = []
    for index in range(count):
        reads = [j for j in range(index) if draw(st.booleans())]
        params = [p for p in ("a", "b") if draw(st.integers(0, 3)) == 0]
        shape.append((reads, params))
    edits = [draw(st.sampled_from(EDITS)) for _ in range(count)]
    new_values = draw(st.fixed_dictionaries({}, optional={"a": st.integers(1, 3), "b": st.integers(1, 3)}))
    return shape, edits, new_values


def _random_pipeline(shape: list[tuple[list[int], list[str]]], edits: list[str] | None) -> Pipeline:
    steps = []
    for index, (reads, params) in enumerate(shape):
        edit = edits[index] if edits else "none"
        constant = index * 10 + (1 if edit == "value" else 0)  # the output always shows the code's constant
        code = f"o{index} = ({constant}, {', '.join([*params, *(f'o{j}' for j in reads)])})"
        if edit == "cosmetic":
            code += "  # reformatted"  # hand-built steps have no normalized digest: the step reruns, same output
        steps.append(
            step(
                f"s{index}",
                code,
                reads=[(f"o{j}", f"s{j}") for j in reads],
                binds=(f"o{index}",),
                parameters=tuple(params),
            )
        )
    return pipeline(*steps, parameters=[Parameter("a", "int", 0), Parameter("b", "int", 0)])


def _expected_reruns(shape: list[tuple[list[int], list[str]]], edits: list[str], changed: set[str]) -> set[str]:
    """Computed from the edit alone: a step's output changes if its constant, a parameter it reads or an input
    changed; it reruns if its output changes or its code was reformatted (whose downstream early cut-off keeps)."""
    output_changed: set[int] = set()
    for index, (reads, params) in enumerate(shape):
        if edits[index] == "value" or changed & set(params) or output_changed & set(reads):
            output_changed.add(index)
    return {f"s{i}" for i in output_changed} | {f"s{i}" for i, edit in enumerate(edits) if edit == "cosmetic"}


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(dags_with_edits())
def test_random_edits_rerun_exactly_the_affected_steps(
    tmp_path_factory: pytest.TempPathFactory,
    case: tuple[list[tuple[list[int], list[str]]], list[str], dict[str, int]],
) -> None:
    shape, edits, new_values = case
    workdir = tmp_path_factory.mktemp("dag")
    first = run(workdir, _random_pipeline(shape, None))
    assert first.result.status == "succeeded"
    again = run(workdir, _random_pipeline(shape, edits), parameters=new_values)
    assert again.result.status == "succeeded"
    changed = {name for name, value in new_values.items() if value != 0}
    assert ran_steps(again) == _expected_reruns(shape, edits, changed)
    assert {n for n, r in again.result.steps.items() if r.status == "cached"} == set(again.result.steps) - ran_steps(
        again
    )
