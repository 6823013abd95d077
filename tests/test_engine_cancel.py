"""Stopping a run: Stop from another thread (the widget) and the kernel's interrupt on the main thread."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path

import pytest

from jupyter_pipelines.engine import CancelToken

from .test_engine_support import alive, pipeline, run, step, wait_for


def _long_step(pid_file: Path) -> str:
    """A step that starts a child process (recording its pid) and then sleeps a minute."""
    return (
        "import subprocess, time, pathlib\n"
        "child = subprocess.Popen(['sleep', '60'])\n"
        f"pathlib.Path({str(pid_file)!r}).write_text(str(child.pid))\n"
        "time.sleep(60)\n"
        "done = True\n"
    )


def _pipe(pid_file: Path):  # type: ignore[no-untyped-def]
    return pipeline(
        step("long", _long_step(pid_file), binds=("done",)),
        step("after", "x = done", reads=[("done", "long")], binds=("x",)),
    )


def test_cancel_from_another_thread_stops_the_step_and_its_children(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    token = CancelToken()

    def stop_when_started() -> None:
        if wait_for(pid_file.exists):
            token.cancel()

    threading.Thread(target=stop_when_started, daemon=True).start()
    ran = run(tmp_path, _pipe(pid_file), cancel=token)
    assert ran.result.status == "cancelled"
    assert ran.wall < 10
    assert ran.result.steps["long"].status == "cancelled"
    assert ran.result.steps["after"].status == "cancelled"
    child = int(pid_file.read_text())
    assert wait_for(lambda: not alive(child), timeout=5), "the step's subprocess survived the cancel"
    assert not list((tmp_path / ".pipelines" / "demo" / "cache").glob("*.json"))
    summary = json.loads((ran.result.run_dir / "summary.json").read_text())
    assert summary["status"] == "cancelled"
    assert ran.events[-1].type == "run_finished" and ran.events[-1].status == "cancelled"


def test_keyboard_interrupt_kills_workers_and_is_reraised(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    main = threading.main_thread().ident
    assert main == threading.get_ident()

    def interrupt_when_started() -> None:
        if wait_for(pid_file.exists):
            signal.pthread_kill(main, signal.SIGINT)  # type: ignore[arg-type]

    threading.Thread(target=interrupt_when_started, daemon=True).start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, _pipe(pid_file))
    assert time.monotonic() - started < 10
    child = int(pid_file.read_text())
    assert wait_for(lambda: not alive(child), timeout=5), "the step's subprocess survived the interrupt"
    (run_dir,) = (tmp_path / ".pipelines" / "demo" / "runs").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "cancelled"
    assert summary["steps"]["long"]["status"] == "cancelled"
    assert not list((tmp_path / ".pipelines" / "demo" / "cache").glob("*.json"))


def test_cancel_before_start_runs_nothing(tmp_path: Path) -> None:
    token = CancelToken()
    token.cancel()
    marker = tmp_path / "ran"
    ran = run(tmp_path, pipeline(step("a", f"open({str(marker)!r}, 'w').close()")), cancel=token)
    assert ran.result.status == "cancelled"
    assert ran.result.steps["a"].status == "cancelled"
    assert not marker.exists()
