"""Selective execution (SageMaker's): only the selected steps run, the others' outputs come from their latest run."""

from __future__ import annotations

from pathlib import Path

import pytest

from jupyter_pipelines.engine.selection import select_steps, split_names
from jupyter_pipelines.errors import RunError
from jupyter_pipelines.model import Parameter

from .test_engine_support import pipeline, run, step

# a -> b -> c -> d, and e on its own; b reads the parameter
PIPE = pipeline(
    step("a", "x = 1", binds=("x",)),
    step("b", "y = x + k", reads=[("x", "a")], binds=("y",), parameters=("k",)),
    step("c", "z = y * 2", reads=[("y", "b")], binds=("z",)),
    step("d", "w = z + 1", reads=[("z", "c")], binds=("w",)),
    step("e", "v = 5", binds=("v",)),
    parameters=[Parameter("k", "int", 1)],
)


def test_split_names() -> None:
    assert split_names(["a,b", "c", " d , ", ",,"]) == ["a", "b", "c", "d"]
    assert split_names([]) == []


def test_select_steps_only_from_to_and_their_intersection() -> None:
    assert select_steps(PIPE) is None
    assert select_steps(PIPE, only=["b", "e"]) == {"b", "e"}
    assert select_steps(PIPE, from_="b") == {"b", "c", "d"}
    assert select_steps(PIPE, to="c") == {"a", "b", "c"}
    assert select_steps(PIPE, from_="b", to="c") == {"b", "c"}
    assert select_steps(PIPE, only=["a", "c"], from_="b") == {"c"}


def test_select_steps_rejects_unknown_steps_listing_the_steps() -> None:
    with pytest.raises(RunError, match="'nope'.*Its steps: a, b, c, d, e"):
        select_steps(PIPE, only=["a", "nope"])
    with pytest.raises(RunError, match="--from"):
        select_steps(PIPE, from_="zzz")
    with pytest.raises(RunError, match="no step"):
        select_steps(PIPE, from_="d", to="a")


def test_only_runs_the_selected_steps_and_reuses_the_latest_run_of_the_rest(tmp_path: Path) -> None:
    first = run(tmp_path, PIPE)
    assert first.result.status == "succeeded"
    selective = run(tmp_path, PIPE, selected=frozenset({"c"}), parameters={"k": 10})
    statuses = {name: r.status for name, r in selective.result.steps.items()}
    assert statuses == {"b": "cached", "c": "cached"}  # b from its latest run despite k; c hits the cache
    (finished,) = selective.of("step_finished", "b")
    assert finished.status == "cached" and finished.cached_from == first.result.run_id
    assert selective.outputs("c") == {"z": 4}


def test_selected_step_consults_the_cache_unless_forced(tmp_path: Path) -> None:
    run(tmp_path, PIPE)
    forced = run(tmp_path, PIPE, selected=frozenset({"c", "d"}), force=frozenset({"c"}))
    assert {n: r.status for n, r in forced.result.steps.items()} == {"b": "cached", "c": "succeeded", "d": "cached"}


def test_from_reruns_changed_steps_and_takes_upstream_from_the_latest_run(tmp_path: Path) -> None:
    first = run(tmp_path, PIPE)
    changed = run(tmp_path, PIPE, selected=frozenset({"b", "c", "d"}), parameters={"k": 2})
    assert {n: r.status for n, r in changed.result.steps.items()} == {
        "a": "cached",
        "b": "succeeded",
        "c": "succeeded",
        "d": "succeeded",
    }
    assert changed.result.steps["a"].cached_from == first.result.run_id
    assert changed.outputs("d") == {"w": 7}
    # the latest run of b is now the k=2 one: a later selective run of d alone uses it
    later = run(tmp_path, PIPE, selected=frozenset({"d"}))
    assert later.result.steps["c"].cached_from == changed.result.run_id
    assert later.outputs("d") == {"w": 7}


def test_a_needed_step_without_a_successful_run_must_run_first(tmp_path: Path) -> None:
    with pytest.raises(RunError, match="step 'b' has no successful run.*'c' needs them.*Run 'b' first"):
        run(tmp_path, PIPE, selected=frozenset({"c"}))
    assert not (tmp_path / ".pipelines" / "demo" / "runs").exists() or not list(
        (tmp_path / ".pipelines" / "demo" / "runs").iterdir()
    )  # nothing ran
    broken = pipeline(step("a", "x = 1", binds=("x",)), step("b", "y = x / 0", reads=[("x", "a")], binds=("y",)))
    run(tmp_path, broken)
    with pytest.raises(RunError, match="'b'"):
        run(tmp_path, pipeline(*broken.steps, step("c", "z = y", reads=[("y", "b")], binds=("z",))), selected={"c"})


def test_selection_with_targets_and_independent_steps(tmp_path: Path) -> None:
    run(tmp_path, PIPE)
    only_e = run(tmp_path, PIPE, selected=frozenset({"e", "a"}))
    assert set(only_e.result.steps) == {"a", "e"}
    with pytest.raises(RunError, match="selected step 'zz'"):
        run(tmp_path, PIPE, selected=frozenset({"zz"}))
