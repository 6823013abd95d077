"""The magics in a real kernel: steps run through the engine, values come back, errors read as messages."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from .kernel import Kernel
from .notebooks import write_notebook

PRELUDE = "import math\n\ndef double(x):\n    return 2 * x"


def test_notebook_runs_in_a_real_kernel_and_binds_step_values(tmp_path: Path) -> None:
    path = write_notebook(
        tmp_path / "flow.ipynb",
        [
            "%load_ext jupyter_pipelines",
            "%%parameters\nbase: int = 3\nscale: float = 1.5",
            PRELUDE,
            "%%step first\nvalue = double(base)\nprint('first says', value)",
            "%%step second\nscaled = value * scale + math.floor(0.5)\nscaled",
            "%pipeline run --wait -p base=5",
            "assert (value, scaled) == (10, 15.0), (value, scaled)",
        ],
    )
    notebook = nbformat.read(str(path), as_version=4)
    NotebookClient(notebook, timeout=120, resources={"metadata": {"path": str(tmp_path)}}).execute()
    cells = notebook.cells
    first_out = "".join(o.get("text", "") for o in cells[3].outputs)
    assert "first says 6" in first_out
    second_result = [o for o in cells[4].outputs if o.output_type == "execute_result"]
    assert second_result and second_result[0]["data"]["text/plain"] == "9.0"
    run_out = "".join(o.get("text", "") for o in cells[5].outputs)
    assert "succeeded" in run_out and "first" in run_out and "second" in run_out


def test_failing_step_shows_cell_line_and_skips_downstream(tmp_path: Path) -> None:
    path = write_notebook(
        tmp_path / "fail.ipynb",
        [
            "%load_ext jupyter_pipelines",
            "%%step broken\nx = 1\ny = 2\nz = x / 0",
            "%%step after\nw = z + 1",
        ],
    )
    notebook = nbformat.read(str(path), as_version=4)
    client = NotebookClient(notebook, timeout=120, resources={"metadata": {"path": str(tmp_path)}})
    with pytest.raises(CellExecutionError) as caught:
        client.execute()
    text = str(caught.value)
    assert "ZeroDivisionError" in text
    assert "line 4" in text  # the cell's own line number: header is line 1
    assert "jupyter_pipelines/engine" not in text  # the user's traceback, not ours


def test_renaming_a_step_in_the_same_cell_leaves_no_ghost(kernel: Kernel) -> None:
    assert kernel.execute("%load_ext jupyter_pipelines").status == "ok"
    assert kernel.execute("%%step alpha\nx = 1", cell_id="cell-a").status == "ok"
    assert kernel.execute("%%step beta\nx = 2", cell_id="cell-a").status == "ok"
    shown = kernel.execute("%pipeline show --text")
    assert "beta" in shown.stdout
    assert "alpha" not in shown.stdout
    # The same cell edited again (same name, new code) replaces its step too.
    assert kernel.execute("%%step beta\nx = 3\ny = x", cell_id="cell-a").status == "ok"
    assert kernel.execute("%%step gamma\nz = y + x", cell_id="cell-b").status == "ok"
    assert kernel.execute("assert z == 6, z").status == "ok"


def test_hidden_kernel_state_never_leaks_into_a_step(kernel: Kernel) -> None:
    kernel.execute("%load_ext jupyter_pipelines")
    kernel.execute("get_ipython().user_ns['secret'] = 41")
    reply = kernel.execute("%%step leak\nanswer = secret + 1", cell_id="c1")
    assert reply.status == "error"
    assert "secret" in reply.error and "leak" in reply.error
    assert "Traceback" not in reply.error


def test_plain_cell_computing_a_value_must_become_a_step(kernel: Kernel) -> None:
    kernel.execute("%load_ext jupyter_pipelines")
    kernel.execute("import math\nroot = math.sqrt(2)", cell_id="c1")
    reply = kernel.execute("%%step use\ny = root * 2", cell_id="c2")
    assert reply.status == "error"
    assert "root" in reply.error and "%%step" in reply.error


def test_bad_header_and_bad_parameter_are_one_clear_message(kernel: Kernel) -> None:
    kernel.execute("%load_ext jupyter_pipelines")
    reply = kernel.execute("%%step train --retries 3\nx = 1")
    assert reply.status == "error" and "--retries" in reply.error and "--retry" in reply.error
    assert "Traceback" not in reply.error
    kernel.execute("%%parameters\nrate: float = 0.1")
    kernel.execute("%%step use_rate\ny = rate * 2")
    reply = kernel.execute("%pipeline run --wait -p rate=fast")
    assert reply.status == "error" and "rate" in reply.error and "float" in reply.error
    reply = kernel.execute("%pipeline run --wait -p nope=1")
    assert reply.status == "error" and "nope" in reply.error and "rate" in reply.error


def test_step_help_is_printed(kernel: Kernel) -> None:
    kernel.execute("%load_ext jupyter_pipelines")
    reply = kernel.execute("%%step?")
    assert "--after" in reply.text and "--executor" in reply.text


def test_unchanged_step_cell_comes_from_the_cache(kernel: Kernel, tmp_path: Path) -> None:
    kernel.execute("%load_ext jupyter_pipelines")
    code = "%%step count\nwith open('ran.txt', 'a') as f:\n    f.write('x')\nn = 1"
    assert kernel.execute(code, cell_id="c1").status == "ok"
    reply = kernel.execute(code, cell_id="c1")
    assert reply.status == "ok" and "cached" in reply.stdout
    assert (tmp_path / "ran.txt").read_text() == "x"


def test_background_run_keeps_the_kernel_free_and_stops(kernel: Kernel, tmp_path: Path) -> None:
    kernel.execute("%load_ext jupyter_pipelines")
    kernel.execute("import os, time", cell_id="c0")
    kernel.execute("%%parameters\ndelay: float = 0.0", cell_id="c1")
    code = "%%step nap\nopen('nap.pid', 'w').write(str(os.getpid()))\ntime.sleep(delay)\nslept = delay"
    assert kernel.execute(code, cell_id="c2").status == "ok"
    (tmp_path / "nap.pid").unlink()
    started = time.monotonic()
    reply = kernel.execute("%pipeline run -p delay=60")
    assert reply.status == "ok" and time.monotonic() - started < 5, reply.text
    assert kernel.execute("1 + 1").results == ["2"]  # the kernel answers while the run goes on
    deadline = time.monotonic() + 30
    while not (tmp_path / "nap.pid").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    worker = int((tmp_path / "nap.pid").read_text())
    assert "stopping" in kernel.execute("%pipeline stop").stdout
    waited = kernel.execute("%pipeline wait")
    assert "cancelled" in waited.text
    assert time.monotonic() - started < 30
    assert not _alive(worker)
    # Nothing was cached from the cancelled run: running again with the same delay would rerun (checked cheaply
    # by the parameter it was given: the kernel still holds the value from the successful run).
    assert kernel.execute("slept").results == ["0.0"]


def test_interrupting_a_step_cell_terminates_its_worker(kernel: Kernel, tmp_path: Path) -> None:
    kernel.execute("%load_ext jupyter_pipelines")
    kernel.execute("import os, time", cell_id="c0")
    pid_file = tmp_path / "worker.pid"

    def interrupt_when_started() -> None:
        deadline = time.monotonic() + 30
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)
        kernel.interrupt()

    threading.Thread(target=interrupt_when_started, daemon=True).start()
    started = time.monotonic()
    reply = kernel.execute(
        "%%step sleeper\nopen('worker.pid', 'w').write(str(os.getpid()))\ntime.sleep(120)\ndone = 1", cell_id="c1"
    )
    assert reply.status == "error" and "KeyboardInterrupt" in reply.error
    assert time.monotonic() - started < 30
    worker = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while _alive(worker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(worker), "the step's worker process survived the interrupt"
    assert kernel.execute("1 + 1").results == ["2"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purpose (its parent reaps it later).
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return False
    return state != "Z"


def test_reload_rebuilds_the_pipeline_from_the_saved_notebook(kernel: Kernel, tmp_path: Path) -> None:
    write_notebook(
        tmp_path / "saved.ipynb",
        ["%load_ext jupyter_pipelines", "%%step one\na = 1", "%%step two\nb = a + 1"],
    )
    # Jupyter Server tells the kernel its notebook through JPY_SESSION_NAME; set it as the server would.
    kernel.execute("import os; os.environ['JPY_SESSION_NAME'] = 'saved.ipynb'")
    kernel.execute("%load_ext jupyter_pipelines")
    assert "step one" not in kernel.execute("%pipeline show --text").stdout
    assert "one (cell" not in kernel.execute("%pipeline show --text").stdout
    reloaded = kernel.execute("%pipeline reload")
    assert reloaded.status == "ok" and "2 steps" in reloaded.stdout, reloaded.text
    shown = kernel.execute("%pipeline show --text").stdout
    assert "one" in shown and "two" in shown and "reads a" in shown
    assert kernel.execute("%pipeline reset").status == "ok"
    assert "one (cell" not in kernel.execute("%pipeline show --text").stdout


def test_why_load_and_cache_magics(kernel: Kernel) -> None:
    kernel.execute("%load_ext jupyter_pipelines")
    kernel.execute("%%parameters\nn: int = 2", cell_id="p")
    assert kernel.execute("%%step grow\nitems = list(range(n))", cell_id="a").status == "ok"
    assert kernel.execute("%pipeline run --wait -p n=5").status == "ok"
    why = kernel.execute("%pipeline why grow -p n=9")
    assert why.status == "ok" and "n" in why.stdout and "9" in why.stdout, why.text
    runs = kernel.execute("%pipeline runs").stdout.strip().splitlines()
    first_run = runs[-1].split()[0]
    loaded = kernel.execute(f"%pipeline load grow --run {first_run}")
    assert loaded.status == "ok" and "items" in loaded.stdout
    assert kernel.execute("items").results == ["[0, 1]"]
    assert "grow" in kernel.execute("%pipeline cache").stdout
    assert "cleared" in kernel.execute("%pipeline cache clear").stdout
    assert "empty" in kernel.execute("%pipeline cache").stdout


def test_export_and_config_magics(kernel: Kernel, tmp_path: Path) -> None:
    kernel.execute("%load_ext jupyter_pipelines")
    assert kernel.execute("%%step one\nx = 1", cell_id="a").status == "ok"
    missing = kernel.execute("%pipeline export out/p.json")
    assert missing.status == "error" and "%pipeline config --role-arn" in missing.error
    configured = kernel.execute(
        "%pipeline config --role-arn arn:aws:iam::123456789012:role/R --bucket bucket-one --region us-east-1"
    )
    assert "bucket: bucket-one" in configured.stdout
    written = kernel.execute("%pipeline export out/p.json")
    assert written.status == "ok", written.text
    definition = json.loads((tmp_path / "out" / "p.json").read_text())
    assert [step["Name"] for step in definition["Steps"]] == ["one"]


def test_widget_export_button_writes_the_definition(kernel: Kernel, tmp_path: Path) -> None:
    kernel.execute("%load_ext jupyter_pipelines")
    assert kernel.execute("%%step one\nx = 1", cell_id="a").status == "ok"
    kernel.execute(
        "%pipeline config --role-arn arn:aws:iam::123456789012:role/R --bucket bucket-one --region us-east-1"
    )
    clicked = kernel.execute("import jupyter_pipelines\nw = jupyter_pipelines.current()\nw.export_button.click()")
    assert clicked.status == "ok", clicked.text
    written = tmp_path / "notebook.pipeline.json"  # no notebook file: the pipeline is named "notebook"
    assert json.loads(written.read_text())["Steps"][0]["Name"] == "one"
    assert kernel.execute("w.export_button.disabled").results == ["False"]


def test_widget_run_uses_the_parameter_inputs(kernel: Kernel) -> None:
    kernel.execute("%load_ext jupyter_pipelines")
    kernel.execute("%%parameters\nrows: int = 2", cell_id="p")
    assert kernel.execute("%%step grow\nitems = list(range(rows))", cell_id="a").status == "ok"
    code = "import jupyter_pipelines\nw = jupyter_pipelines.current()\nw.parameter_inputs.inputs['rows'].value = 4"
    assert kernel.execute(code).status == "ok"
    assert kernel.execute("w.run_button.click()").status == "ok"
    assert kernel.execute("%pipeline wait").status == "ok"
    assert kernel.execute("items").results == ["[0, 1, 2, 3]"]


def test_kernel_executor_step_cell_prints_once_and_binds(kernel: Kernel) -> None:
    """A ``--executor kernel`` step redirects stdout into its log while it runs; the cell's own printer must not
    write its log events back into that capture (it used to loop forever and hang the cell)."""
    assert kernel.execute("%load_ext jupyter_pipelines").status == "ok"
    reply = kernel.execute("%%step here --executor kernel\nx = 41 + 1\nprint('here says', x)", timeout=30)
    assert reply.status == "ok", reply.text
    assert reply.stdout.count("here says 42") == 1, reply.stdout
    reply = kernel.execute("%%step there\ny = x + 1\nprint('there says', y)", timeout=30)
    assert reply.status == "ok" and "there says 43" in reply.stdout, reply.text
