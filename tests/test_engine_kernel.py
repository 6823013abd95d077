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


def test_a_kernel_step_past_its_timeout_is_interrupted_and_the_kernel_is_left_as_it_was(tmp_path: Path) -> None:
    import os
    import sys
    import time

    namespace: dict[str, Any] = {}
    stdout, environ = sys.stdout, dict(os.environ)
    spin = "import time\nprint('spinning', flush=True)\nwhile True:\n    pass"
    pipe = pipeline(step("spin", spin, executor="kernel", timeout=0.5, env=(("JP_SPIN", "1"),), binds=()))
    started = time.monotonic()
    ran = run(tmp_path, pipe, kernel_namespace=namespace)
    assert time.monotonic() - started < 5
    result = ran.result.steps["spin"]
    assert ran.result.status == "failed" and result.error == "step 'spin' timed out after 0.5s"
    assert "".join(e.text for e in ran.of("step_log", "spin") if e.stream == "stdout") == "spinning\n"
    assert sys.stdout is stdout and dict(os.environ) == environ  # redirections and --env undone
    deadline = time.monotonic() + 0.3  # and nothing is left pending to land in the caller later
    while time.monotonic() < deadline:
        pass


def test_a_kernel_step_in_time_is_not_interrupted(tmp_path: Path) -> None:
    pipe = pipeline(step("quick", "x = sum(range(1000))", executor="kernel", timeout=5, binds=("x",)))
    ran = run(tmp_path, pipe, kernel_namespace={})
    assert ran.result.status == "succeeded" and ran.outputs("quick") == {"x": 499500}


def test_stop_interrupts_a_running_kernel_step(tmp_path: Path) -> None:
    """A kernel step holds the engine's thread; Stop (the cancel token, from the widget's thread) interrupts it."""
    import threading
    import time

    from jupyter_pipelines.engine import CancelToken

    cancel = CancelToken()
    spin = "import time\nwhile True:\n    time.sleep(0.01)"
    pipe = pipeline(
        step("spin", spin, executor="kernel", binds=()), step("after", "y = 1", binds=("y",), after=("spin",))
    )
    stopper = threading.Timer(0.5, cancel.cancel)
    stopper.start()
    started = time.monotonic()
    ran = run(tmp_path, pipe, kernel_namespace={}, cancel=cancel)
    stopper.join()
    assert time.monotonic() - started < 5
    assert ran.result.status == "cancelled", ran.result.status
    assert ran.result.steps["spin"].status == "cancelled", ran.result.steps["spin"]
    assert ran.result.steps["after"].status == "cancelled"
