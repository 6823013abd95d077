"""A zygote prestarted before the run is known: adopted by the run, told its modules late, never leaked."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from jupyter_pipelines.engine import executors, prestart
from jupyter_pipelines.model import PreludePart
from tests.test_engine_support import alive, pipeline, run, step, wait_for

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the zygote launcher needs fork")

# A module that records, at import, the pid of the process importing it: the zygote if it was preloaded there.
MARKER = "import os\nwith open('imported_by.txt', 'a') as f:\n    f.write(f'{os.getpid()}\\n')\n"
PRELUDE = PreludePart("0:0", "import", "import prestart_marker", ("prestart_marker",), modules=("prestart_marker",))


@pytest.fixture(autouse=True)
def _no_leftover() -> Iterator[None]:
    yield
    executors._discard_prestarted()


def _marker_pipeline(tmp_path: Path):  # type: ignore[no-untyped-def]
    (tmp_path / "prestart_marker.py").write_text(MARKER)
    return pipeline(
        step("first", "import os\nparent = os.getppid()", binds=("parent",), prelude=("0:0",)),
        step("second", "import os\nparent2 = os.getppid()", binds=("parent2",), prelude=("0:0",)),
        prelude=[PRELUDE],
    )


def test_the_run_adopts_the_prestarted_zygote_and_preloads_its_modules(tmp_path: Path) -> None:
    prestart(tmp_path)
    zygote = executors.prestarted_pid()
    assert zygote is not None and alive(zygote)
    ran = run(tmp_path, _marker_pipeline(tmp_path), launcher="zygote")
    assert ran.result.status == "succeeded", ran.result.steps
    assert ran.outputs("first")["parent"] == zygote  # the step was forked by the prestarted process
    assert ran.outputs("second")["parent2"] == zygote
    # the module sent in the late preload message was imported once, in the zygote, not again in any step
    assert (tmp_path / "imported_by.txt").read_text().split() == [str(zygote)]
    assert executors.prestarted_pid() is None  # adopted: the slot is empty
    assert wait_for(lambda: not alive(zygote), timeout=5)  # and the run closed it like its own


def test_a_prestart_for_another_workdir_is_not_adopted(tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    prestart(other)
    waiting = executors.prestarted_pid()
    ran = run(tmp_path, _marker_pipeline(tmp_path), launcher="zygote")
    assert ran.result.status == "succeeded"
    assert ran.outputs("first")["parent"] != waiting
    assert executors.prestarted_pid() == waiting  # still waiting for its own run
    assert waiting is not None and alive(waiting)


def test_prestart_twice_for_the_same_workdir_keeps_one(tmp_path: Path) -> None:
    prestart(tmp_path)
    first = executors.prestarted_pid()
    prestart(tmp_path)
    assert executors.prestarted_pid() == first
    prestart(tmp_path / "missing")  # another workdir replaces it; this one cannot start (no such directory)
    assert first is not None and wait_for(lambda: not alive(first), timeout=5)
    assert executors.prestarted_pid() is None


def test_a_dead_prestarted_zygote_is_replaced(tmp_path: Path) -> None:
    prestart(tmp_path)
    zygote = executors.prestarted_pid()
    assert zygote is not None
    os.kill(zygote, 9)
    assert wait_for(lambda: not alive(zygote), timeout=5)
    ran = run(tmp_path, _marker_pipeline(tmp_path), launcher="zygote")
    assert ran.result.status == "succeeded"
    assert ran.outputs("first")["parent"] != zygote


@pytest.mark.parametrize("how", ["exit", "os._exit", "killed"])
def test_an_unadopted_prestarted_zygote_exits_with_its_parent(tmp_path: Path, how: str) -> None:
    code = textwrap.dedent(
        f"""
        import os, signal, sys
        from pathlib import Path
        from jupyter_pipelines.engine import executors, prestart
        prestart(Path({str(tmp_path)!r}))
        print(executors.prestarted_pid(), flush=True)
        sys.stdin.readline()  # the zygote is busy starting up (or already waiting) when we go
        if {how!r} == "exit":
            sys.exit(0)
        elif {how!r} == "os._exit":
            os._exit(0)  # no atexit: the zygote sees its socket close
        else:
            os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=tmp_path
    )
    assert parent.stdout is not None and parent.stdin is not None
    zygote = int(parent.stdout.readline())
    assert alive(zygote)
    parent.stdin.write("\n")
    parent.stdin.flush()
    parent.wait(timeout=10)
    assert wait_for(lambda: not alive(zygote), timeout=5)


def test_a_prestarted_zygote_treats_a_fork_first_as_no_modules(tmp_path: Path) -> None:
    """Protocol robustness: an engine that sends no preload still gets its step run."""
    prestart(tmp_path)
    slot = executors._prestarted
    assert slot is not None
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    spec = {"kind": "probe"}  # not a real spec: the step fails, but it is forked and reaped
    payload = (json.dumps({"op": "fork", "id": "x#1", "spec": spec}) + "\n").encode()
    socket.send_fds(slot.sock, [payload], [out_w, err_w])
    os.close(out_w)
    os.close(err_w)
    slot.sock.settimeout(10)
    received = b""
    while received.count(b"\n") < 2:
        received += slot.sock.recv(65536)
    messages = [json.loads(line) for line in received.splitlines()]
    assert messages[0]["id"] == "x#1" and "pid" in messages[0]
    assert messages[1]["id"] == "x#1" and "status" in messages[1]
    os.close(out_r)
    os.close(err_r)
