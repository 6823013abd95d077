"""The kernel executor: steps run in the live namespace on the engine's thread, outputs still stored."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .test_engine_support import pipeline, run, step


def test_kernel_steps_write_into_the_namespace(tmp_path: Path) -> None:
    namespace: dict[str, Any] = {"__name__": "__main__"}
    pipe = pipeline(
        step(
            "load",
            "import os\nrows = [1, 2, 3]\npid = os.getpid()\nprint('loaded', len(rows))",
            binds=("rows", "pid"),
            executor="kernel",
        ),
        step(
            "double",
            "doubled = [r * 2 for r in rows]",
            reads=[("rows", "load")],
            binds=("doubled",),
            executor="kernel",
        ),
        step(
            "total",
            "import os\ntotal = sum(doubled)\nworker = os.getpid()",
            reads=[("doubled", "double")],
            binds=("total", "worker"),
        ),
    )
    ran = run(tmp_path, pipe, kernel_namespace=namespace)
    assert ran.result.status == "succeeded", {n: s.error for n, s in ran.result.steps.items()}
    import os

    assert namespace["rows"] == [1, 2, 3] and namespace["doubled"] == [2, 4, 6]
    assert namespace["pid"] == os.getpid()  # ran right here
    assert ran.outputs("total")["worker"] != os.getpid()  # the process step ran elsewhere, loading from the store
    assert ran.outputs("total")["total"] == 12
    assert ran.outputs("double") == {"doubled": [2, 4, 6]}  # kernel outputs are stored too
    assert [e.executor for e in ran.of("step_started")] == ["kernel", "kernel", "process"]
    assert "".join(e.text for e in ran.of("step_log", "load")) == "loaded 3\n"
    assert "total" not in namespace


def test_unserializable_kernel_output_stays_in_the_namespace(tmp_path: Path) -> None:
    namespace: dict[str, Any] = {}
    pipe = pipeline(
        step("connect", "import sqlite3\nconn = sqlite3.connect(':memory:')", binds=("conn",), executor="kernel"),
        step(
            "query",
            "answer = conn.execute('select 41 + 1').fetchone()[0]",
            reads=[("conn", "connect")],
            binds=("answer",),
            executor="kernel",
        ),
    )
    ran = run(tmp_path, pipe, kernel_namespace=namespace)
    assert ran.result.status == "succeeded", {n: s.error for n, s in ran.result.steps.items()}
    assert namespace["answer"] == 42
    assert ran.result.steps["connect"].unsaved == {"conn": "sqlite3.Connection"}


def test_unserializable_kernel_output_read_by_a_process_step_is_an_error(tmp_path: Path) -> None:
    pipe = pipeline(
        step("connect", "import sqlite3\nconn = sqlite3.connect(':memory:')", binds=("conn",), executor="kernel"),
        step("query", "answer = conn.execute('select 1').fetchone()", reads=[("conn", "connect")], binds=("answer",)),
    )
    ran = run(tmp_path, pipe, kernel_namespace={})
    error = ran.result.steps["connect"].error
    assert "output 'conn' (sqlite3.Connection) cannot be saved" in error
    assert ran.result.steps["query"].status == "skipped"


def test_kernel_step_error_has_cell_line_numbers(tmp_path: Path) -> None:
    ran = run(
        tmp_path, pipeline(step("k", "a = 1\nraise KeyError(a)", code_line=3, executor="kernel")), kernel_namespace={}
    )
    error = ran.result.steps["k"].error
    assert 'File "<step k>", line 4' in error and "KeyError: 1" in error
    assert "runtime.py" not in error and "scheduler.py" not in error


def test_kernel_step_without_a_namespace_runs_as_a_process(tmp_path: Path) -> None:
    import os

    ran = run(tmp_path, pipeline(step("k", "import os\npid = os.getpid()", binds=("pid",), executor="kernel")))
    assert ran.outputs("k")["pid"] != os.getpid()
    assert ran.of("step_started")[0].executor == "process"


def test_cached_kernel_step_restores_its_outputs_into_the_namespace(tmp_path: Path) -> None:
    pipe = pipeline(step("k", "value = {'a': 1}", binds=("value",), executor="kernel"))
    run(tmp_path, pipe, kernel_namespace={})
    namespace: dict[str, Any] = {}
    ran = run(tmp_path, pipe, kernel_namespace=namespace)
    assert ran.result.steps["k"].status == "cached"
    assert namespace["value"] == {"a": 1}


def test_interrupting_a_kernel_step_cancels_the_run_and_reraises(tmp_path: Path) -> None:
    import json

    import pytest

    code = "import os, signal, time\nos.kill(os.getpid(), signal.SIGINT)\ntime.sleep(5)\nx = 1"
    pipe = pipeline(step("k", code, binds=("x",), executor="kernel"), step("after", "y = x", reads=[("x", "k")]))
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, pipe, kernel_namespace={})
    (run_dir,) = (tmp_path / ".pipelines" / "demo" / "runs").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "cancelled"
    assert summary["steps"]["k"]["status"] == "cancelled" and summary["steps"]["after"]["status"] == "cancelled"
