"""``--when`` conditions, ``--else-fail`` and the local model registry, through real engine runs.

The abalone notebook runs with the CLI as a user runs it; the operator table runs as one small pipeline whose
conditional steps each either run or are reported ``condition_false``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from jupyter_pipelines.authoring.builder import Cell, build_pipeline
from jupyter_pipelines.engine import Store
from jupyter_pipelines.engine.events import StepSkipped
from jupyter_pipelines.model import Pipeline
from jupyter_pipelines.ui.state import RunState

from .test_engine_support import Ran, run

ABALONE = Path(__file__).parent.parent / "notebooks" / "abalone.ipynb"
CLI = [sys.executable, "-m", "jupyter_pipelines"]
IF_STEPS = ("AbaloneRegisterModel", "AbaloneCreateModel", "AbaloneTransform")


def cli(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=300)


def build(*sources: str, name: str = "conds") -> Pipeline:
    cells = [Cell(i, textwrap.dedent(source).lstrip("\n"), f"id{i}") for i, source in enumerate(sources)]
    return build_pipeline(cells, name)


# ---- the abalone pipeline, with the CLI ---------------------------------------------------------------------


def test_abalone_registers_when_the_mse_holds_and_fails_with_the_message_when_not(tmp_path: Path) -> None:
    notebook = tmp_path / "abalone.ipynb"
    shutil.copy(ABALONE, notebook)
    store = Store(tmp_path / ".pipelines")

    done = cli("run", notebook, "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["status"] == "succeeded"
    for name in IF_STEPS:
        assert summary["steps"][name]["status"] == "succeeded", name
    assert "AbaloneMSEFail" not in summary["steps"]

    versions = store.model_versions("abalone")
    assert [v["version"] for v in versions] == [1]
    version = versions[0]
    assert version["run_id"] == summary["run_id"]
    assert version["approval"] == "PendingManualApproval"
    assert version["step"] == "AbaloneRegisterModel" and set(version["outputs"]) == {"predict"}
    mse = version["metrics"]["report"]["regression_metrics"]["mse"]["value"]
    assert 0 < mse <= 7.0
    assert version["created"] > 0

    # transform ran its cell: batch predictions for the test split (15% of the 1000 rows), close to the rings
    run_dir = Path(summary["run_dir"])
    transform = store.read_summary(run_dir).steps["AbaloneTransform"]
    predictions = store.load_value(transform.outputs["predictions"])
    assert isinstance(predictions, np.ndarray) and predictions.shape == (150,)
    assert np.all((predictions > 1) & (predictions < 29))

    # all cached: the cached register step records no new version
    again = json.loads(cli("run", notebook, "--json", cwd=tmp_path).stdout)
    assert again["steps"]["AbaloneRegisterModel"]["status"] == "cached"
    assert len(store.model_versions("abalone")) == 1

    # the else-branch: the threshold lowered below the MSE
    low = cli("run", notebook, "--json", "-p", "mse_threshold=0.001", cwd=tmp_path)
    assert low.returncode == 1, low.stderr
    failed = json.loads(low.stdout)
    assert failed["status"] == "failed"
    fail = failed["steps"]["AbaloneMSEFail"]
    assert fail["status"] == "failed"
    assert fail["error"] == f"Execution failed due to MSE {mse} > threshold"
    for name in IF_STEPS:
        assert failed["steps"][name]["status"] == "condition_false", name
    for name in ("AbaloneProcess", "AbaloneTrain", "AbaloneEval"):
        assert failed["steps"][name]["status"] == "cached", name
    assert len(store.model_versions("abalone")) == 1

    plain = cli("run", notebook, "-p", "mse_threshold=0.001", cwd=tmp_path)
    assert plain.returncode == 1
    assert "Execution failed due to MSE" in plain.stderr
    assert "condition is false: report['regression_metrics']['mse']['value'] <= mse_threshold" in plain.stderr
    assert len(store.model_versions("abalone")) == 1


# ---- every operator, in one run ---------------------------------------------------------------------------------

UPSTREAM = """
%%step up
x = 5
s = "dev"
flag = True
m = {"a": [1, 2.5]}
"""
PARAMETERS = """
%%parameters
t: float = 5.0
stage: str = "dev"
"""
TABLE: list[tuple[str, bool]] = [
    ("x == 5", True),
    ("x == 4", False),
    ("x == 5.0", True),
    ("x == '5'", False),  # a number never equals a string
    ("x != 4", True),
    ("x != 5", False),
    ("x < 6", True),
    ("x < 5", False),
    ("x <= 5", True),
    ("x <= 4.9", False),
    ("x > 4", True),
    ("x > 5", False),
    ("x >= 5.0", True),
    ("x >= 6", False),
    ("x <= t", True),
    ("x > t", False),
    ("s == stage", True),
    ("s < 'e'", True),
    ("flag == True", True),
    ("flag != True", False),
    ("m['a'][1] > 2", True),
    ("m['a'][0] >= 2", False),
    ("s in ['dev', 'prod']", True),
    ("s in ['prod', 'test']", False),
    ("x in [1, 5.0]", True),
    ("s not in ['prod']", True),
    ("s not in ['prod', stage]", False),
    ("not x == 4", True),
    ("not x == 5", False),
    ("x == 5 and s == 'dev'", True),
    ("x == 5 and s == 'prod'", False),
    ("x == 4 or s == 'dev'", True),
    ("x == 4 or s == 'prod'", False),
    ("0 < x <= 5", True),
    ("0 < x < 5", False),
    ("not (x == 4 or flag == False) and s in ['dev']", True),
]


def when(expression: str) -> str:
    return json.dumps(expression)  # a double-quoted shell word (no expression above contains '"' or '\\')


def test_every_operator_through_a_run(tmp_path: Path) -> None:
    steps = [f"%%step c{i} --when {when(text)}\nc{i} = {i}" for i, (text, _) in enumerate(TABLE)]
    pipe = build(
        PARAMETERS,
        UPSTREAM,
        *steps,
        # downstream of a false condition (c1: x == 4) and of a true one (c0: x == 5)
        "%%step below_false\nd1 = c1 + 1",
        "%%step below_true\nd0 = c0 + 1",
        "%%step further\nd2 = d1 + 1",
    )
    ran = run(tmp_path, pipe)
    assert ran.result.status == "succeeded"
    statuses = {name: step.status for name, step in ran.result.steps.items()}
    expected = {f"c{i}": "succeeded" if holds else "condition_false" for i, (_, holds) in enumerate(TABLE)}
    assert {name: statuses[name] for name in expected} == expected
    assert statuses["below_true"] == "succeeded" and ran.outputs("below_true") == {"d0": 1}
    assert statuses["below_false"] == statuses["further"] == "condition_false"

    skipped = {e.step: e for e in ran.of("step_skipped")}
    assert skipped["c1"].status == "condition_false"
    assert skipped["c1"].reason == "condition is false: x == 4 (5 vs 4)"
    assert skipped["c7"].reason == "condition is false: x < 5 (5 vs 5)"
    assert skipped["c23"].reason == "condition is false: s in ['prod', 'test'] ('dev' vs ['prod', 'test'])"
    assert skipped["below_false"].reason == skipped["further"].reason == skipped["c1"].reason
    assert not ran.of("step_started", "c1") and not ran.of("step_started", "further")
    # nothing of them ran, so nothing of them is recorded with outputs or cached
    assert ran.result.steps["further"].outputs == {}
    cached_steps = {entry.step for entry in ran.store.cache_entries("conds")}
    assert "c1" not in cached_steps and "below_false" not in cached_steps and "c0" in cached_steps


def test_the_decision_is_never_cached(tmp_path: Path) -> None:
    pipe = build(PARAMETERS, UPSTREAM, "%%step gate --when 'x <= t'\nopened = x", "%%step after\nz = opened")
    first = run(tmp_path, pipe)
    assert first.result.steps["gate"].status == "succeeded"
    closed = run(tmp_path, pipe, parameters={"t": 1.0})
    assert closed.result.status == "succeeded"
    assert closed.result.steps["up"].status == "cached"
    assert closed.result.steps["gate"].status == closed.result.steps["after"].status == "condition_false"
    reopened = run(tmp_path, pipe)
    assert reopened.result.steps["gate"].status == reopened.result.steps["after"].status == "cached"


def test_steps_sharing_a_condition_evaluate_it_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pipe = build(
        UPSTREAM,
        "%%step one --when \"m['a'][0] == 1\"\nv1 = 1",
        "%%step two --when \"m['a'][0] == 1\"\nv2 = 2",
    )
    loads: list[str] = []
    original = Store.load_value

    def counting(self: Store, ref: Any) -> object:
        loads.append(ref.path)
        return original(self, ref)

    monkeypatch.setattr(Store, "load_value", counting)
    ran = run(tmp_path, pipe)
    assert ran.result.steps["one"].status == ran.result.steps["two"].status == "succeeded"
    m_path = ran.result.steps["up"].outputs["m"].path
    assert loads.count(m_path) == 1


def test_else_fail_fails_the_run_with_the_message_and_independent_steps_still_run(tmp_path: Path) -> None:
    pipe = build(
        PARAMETERS,
        UPSTREAM,
        "%%step deploy --when 'x < 4' --else-fail 'x is {value}, not below the threshold'",
        "%%step other\nw = s * 2",
    )
    ran = run(tmp_path, pipe)
    assert ran.result.status == "failed"
    fail_name = pipe.step("deploy").fail_step
    assert fail_name is not None
    fail = ran.result.steps[fail_name]
    assert (fail.status, fail.error) == ("failed", "x is 5, not below the threshold")
    assert [e.error for e in ran.of("step_failed", fail_name)] == ["x is 5, not below the threshold"]
    assert ran.result.steps["deploy"].status == "condition_false"
    assert ran.result.steps["other"].status == "succeeded"


def test_a_condition_that_cannot_be_evaluated_fails_its_step_with_the_expression(tmp_path: Path) -> None:
    pipe = build(
        UPSTREAM,
        "%%step missing --when \"m['b'] > 1\"\nv1 = 1",
        '%%step mismatch --when "s < 3"\nv2 = 2',
        "%%step below\nv3 = v1 + 1",
    )
    ran = run(tmp_path, pipe)
    assert ran.result.status == "failed"
    missing = ran.result.steps["missing"]
    assert missing.status == "failed" and missing.error is not None
    assert "cannot evaluate its condition `m['b'] > 1`" in missing.error
    assert "m['b'], which dict value from step 'up' does not have" in missing.error
    mismatch = ran.result.steps["mismatch"].error
    assert mismatch is not None and "`s < 3`" in mismatch and "orders a string ('dev') against a number" in mismatch
    assert ran.result.steps["below"].status == "skipped"
    assert not ran.of("step_started", "missing")


def test_conditions_on_kernel_steps_read_the_kernel_values(tmp_path: Path) -> None:
    pipe = build(
        "%%step up --executor kernel\nx = 5",
        "%%step yes --executor kernel --when 'x == 5'\ny = x",
        "%%step no --executor kernel --when 'x > 5'\nn = x",
    )
    namespace: dict[str, Any] = {}
    ran: Ran = run(tmp_path, pipe, kernel_namespace=namespace)
    assert ran.result.steps["yes"].status == "succeeded" and namespace["y"] == 5
    assert ran.result.steps["no"].status == "condition_false" and "n" not in namespace


def test_register_steps_add_versions_only_when_they_run(tmp_path: Path) -> None:
    pipe = build(
        PARAMETERS,
        "%%step evaluate\nscore = {'mse': 2.5}",
        "%%step register --kind register --when \"score['mse'] <= t\"\ndef predict(features):\n    return features",
    )
    store = Store(tmp_path / ".pipelines")
    run(tmp_path, pipe)
    run(tmp_path, pipe)  # cached: no new version
    run(tmp_path, pipe, parameters={"t": 1.0})  # condition false: no version
    run(tmp_path, pipe, force=frozenset({"register"}))  # ran again: version 2
    versions = store.model_versions("conds")
    assert [v["version"] for v in versions] == [1, 2]
    assert versions[0]["metrics"] == {"score": {"mse": 2.5}}
    assert versions[0]["run_id"] != versions[1]["run_id"]
    assert set(versions[1]["outputs"]) == {"predict"}


def test_the_widget_shows_condition_false_from_the_status() -> None:
    state = RunState()
    state.run_id = "r"
    state.apply(StepSkipped("r", "a", "the MSE is too high", "condition_false"))
    state.apply(StepSkipped("r", "b", "condition is false: x == 1 (2 vs 1)"))  # an older log: from the reason
    state.apply(StepSkipped("r", "c", "upstream step 'x' failed"))
    assert [state.status(n) for n in "abc"] == ["condition_false", "condition_false", "skipped"]
