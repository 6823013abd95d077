"""The CLI on notebook files, as a user runs it: a real subprocess, real exit codes, real output."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jupyter_pipelines.cli import main

from .notebooks import write_notebook

CLI = [sys.executable, "-m", "jupyter_pipelines"]


def cli(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=120)


@pytest.fixture
def flow(tmp_path: Path) -> Path:
    return write_notebook(
        tmp_path / "flow.ipynb",
        [
            "%load_ext jupyter_pipelines",
            "%%parameters\nrows: int = 4\nlabel: str = 'demo'",
            "import json\n\ndef squares(n):\n    return [i * i for i in range(n)]",
            "%%step make\nnumbers = squares(rows)\nprint('made', len(numbers))",
            "%%step total\nsum_ = sum(numbers)\nprint('total', sum_)",
            "%%step tag\ntitle = label.upper()",
            "%%step report --after tag\nwith open('report.json', 'w') as f:\n    json.dump({'sum': sum_}, f)",
        ],
    )


def test_run_succeeds_writes_results_and_exits_0(flow: Path) -> None:
    done = cli("run", flow, "-p", "rows=5")
    assert done.returncode == 0, done.stderr
    assert json.loads((flow.parent / "report.json").read_text()) == {"sum": 30}
    assert "total" in done.stderr and "succeeded" in done.stderr


def test_run_json_summary(flow: Path) -> None:
    done = cli("run", flow, "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["status"] == "succeeded"
    assert set(summary["steps"]) == {"make", "total", "tag", "report"}
    for step in summary["steps"].values():
        assert step["status"] in ("succeeded", "cached")
        assert isinstance(step["duration"], float)
        assert "cached_from" in step and "stdout" in step
    again = json.loads(cli("run", flow, "--json").stdout)
    assert {s["status"] for s in again["steps"].values()} == {"cached"}
    assert {s["cached_from"] for s in again["steps"].values()} == {summary["run_id"]}


def test_parameter_override_is_type_checked(flow: Path) -> None:
    done = cli("run", flow, "-p", "rows=many")
    assert done.returncode == 2
    assert "rows" in done.stderr and "int" in done.stderr and "Traceback" not in done.stderr
    done = cli("run", flow, "-p", "colour=red")
    assert done.returncode == 2 and "colour" in done.stderr and "rows" in done.stderr


def test_failing_step_exits_1_with_cell_line_and_skips_downstream(tmp_path: Path) -> None:
    path = write_notebook(
        tmp_path / "bad.ipynb",
        ["%%step ok\na = 1", "%%step boom\nb = a + 1\nc = b / 0", "%%step later\nd = c + 1"],
    )
    done = cli("run", path, "--json")
    assert done.returncode == 1
    summary = json.loads(done.stdout)
    assert summary["steps"]["boom"]["status"] == "failed"
    assert summary["steps"]["later"]["status"] == "skipped"
    assert "line 3" in summary["steps"]["boom"]["error"]
    assert "ZeroDivisionError" in summary["steps"]["boom"]["error"]
    plain = cli("run", path)
    assert plain.returncode == 1 and "line 3" in plain.stderr and "skipped" in plain.stderr


def test_independent_steps_run_in_parallel(tmp_path: Path) -> None:
    path = write_notebook(
        tmp_path / "par.ipynb",
        ["import time", "%%step a\ntime.sleep(1)\nx = 1", "%%step b\ntime.sleep(1)\ny = 2"],
    )
    started = time.monotonic()
    done = cli("run", path, "--jobs", "2")
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert elapsed < 1.8, f"two independent 1 s steps took {elapsed:.2f}s"


def test_show_prints_steps_edges_and_why(flow: Path) -> None:
    done = cli("show", flow)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for name in ("make", "total", "tag", "report"):
        assert name in out
    assert "numbers" in out  # why total depends on make
    assert "--after" in out or "after" in out
    assert "rows" in out and "label" in out


def test_logs_prints_a_steps_output(flow: Path) -> None:
    assert cli("run", flow).returncode == 0
    done = cli("logs", flow, "total")
    assert done.returncode == 0 and "total 14" in done.stdout
    everything = cli("logs", flow)
    assert "made 4" in everything.stdout and "total 14" in everything.stdout
    unknown = cli("logs", flow, "nope")
    assert unknown.returncode == 2 and "nope" in unknown.stderr and "make" in unknown.stderr


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "does not exist"),
        ("{not json", "JSON"),
        ('{"hello": 1}', "notebook"),
        ('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}', "no steps"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, content: str | None, expected: str) -> None:
    path = tmp_path / "x.ipynb"
    if content is not None:
        path.write_text(content)
    done = cli("run", path)
    assert done.returncode == 2
    assert expected.lower() in done.stderr.lower()
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert str(path.name) in done.stderr


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(max_size=60), min_size=1, max_size=4))
def test_cli_never_tracebacks_on_arbitrary_cells(tmp_path: Path, sources: list[str]) -> None:
    """Whatever the cells say, `show` answers with the pipeline or one clear message (exit 0 or 2)."""
    path = write_notebook(tmp_path / "any.ipynb", sources)
    try:
        code = main(["show", str(path)])
    except SystemExit as exit_:  # argparse never sees these arguments fail, but be explicit
        code = int(exit_.code or 0)
    assert code in (0, 2)


def test_graph_writes_dot_and_svg_and_rejects_unknown_formats(flow: Path, tmp_path: Path) -> None:
    dot = tmp_path / "dag.dot"
    assert cli("graph", flow, "-o", dot).returncode == 0
    text = dot.read_text()
    assert "digraph" in text and "numbers" in text  # the names flowing along make -> total
    svg = tmp_path / "dag.svg"
    done = cli("graph", flow, "-o", svg)
    assert done.returncode == 0, done.stderr  # scripts/setup-browser.sh installs Graphviz's dot
    assert svg.read_text().lstrip().startswith(("<?xml", "<svg"))
    bad = cli("graph", flow, "-o", tmp_path / "dag.txt")
    assert bad.returncode == 2 and ".dot" in bad.stderr and "Traceback" not in bad.stderr


def test_jupyter_subcommand_form_works(flow: Path) -> None:
    """`jupyter pipelines ...` reaches the same CLI (jupyter finds `jupyter-pipelines` on PATH)."""
    jupyter = Path(sys.executable).with_name("jupyter")
    done = subprocess.run([str(jupyter), "pipelines", "show", str(flow)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "total" in done.stdout and "numbers" in done.stdout


def _statuses(done: subprocess.CompletedProcess[str]) -> dict[str, str]:
    assert done.returncode in (0, 1), done.stderr
    return {name: step["status"] for name, step in json.loads(done.stdout)["steps"].items()}


def test_selective_execution_only_from_to_and_force(flow: Path) -> None:
    assert cli("run", flow).returncode == 0
    only = _statuses(cli("run", flow, "--json", "--only", "total", "--force", "total"))
    assert only["total"] == "succeeded" and only["make"] == "cached"
    assert "tag" not in only and "report" not in only  # not needed by the selection: not considered
    start = _statuses(cli("run", flow, "--json", "--from", "tag", "--force", "tag"))
    assert start["tag"] == "succeeded" and start["report"] == "cached"  # same outputs: early cut-off
    upto = _statuses(cli("run", flow, "--json", "--to", "total", "--force", "make,total"))
    assert upto == {"make": "succeeded", "total": "succeeded"}
    unknown = cli("run", flow, "--only", "nope")
    assert unknown.returncode == 2 and "nope" in unknown.stderr and "Traceback" not in unknown.stderr


def test_selective_run_says_which_step_must_run_first(flow: Path) -> None:
    done = cli("run", flow, "--only", "total")
    assert done.returncode == 2
    assert "make" in done.stderr and "Traceback" not in done.stderr


def test_why_explains_a_parameter_change(flow: Path) -> None:
    assert cli("run", flow).returncode == 0
    same = cli("why", flow, "make")
    assert same.returncode == 0 and "cache" in same.stdout.lower()
    changed = cli("why", flow, "make", "-p", "rows=7")
    assert changed.returncode == 0 and "rows" in changed.stdout and "7" in changed.stdout


def test_runs_gc_and_cache_commands(flow: Path) -> None:
    for rows in ("1", "2", "3"):
        assert cli("run", flow, "-p", f"rows={rows}").returncode == 0
    listed = cli("runs", flow)
    assert listed.returncode == 0 and len(listed.stdout.strip().splitlines()) == 3
    shown = cli("cache", "show", flow)
    assert shown.returncode == 0 and "make" in shown.stdout and "entries" in shown.stdout
    collected = cli("gc", flow, "--keep", "1")
    assert collected.returncode == 0 and "removed 2 runs" in collected.stdout
    assert len(cli("runs", flow).stdout.strip().splitlines()) == 1
    cleared = cli("cache", "clear", flow, "make")
    assert cleared.returncode == 0 and "cleared" in cleared.stdout
    again = _statuses(cli("run", flow, "--json", "-p", "rows=3"))
    assert again["make"] == "succeeded" and again["tag"] == "cached"


EXPORT_FLAGS = [
    "--role-arn",
    "arn:aws:iam::123456789012:role/SageMakerRole",
    "--bucket",
    "bucket-a",
    "--region",
    "eu-west-1",
]


def test_export_writes_a_definition_from_flags_or_notebook_metadata(flow: Path, tmp_path: Path) -> None:
    missing = cli("export", flow, "-o", tmp_path / "p.json")
    assert missing.returncode == 2 and "--role-arn" in missing.stderr and "Traceback" not in missing.stderr
    done = cli("export", flow, "-o", tmp_path / "p.json", *EXPORT_FLAGS)
    assert done.returncode == 0, done.stderr
    definition = json.loads((tmp_path / "p.json").read_text())
    assert definition["Version"] == "2020-12-01"
    assert {step["Name"] for step in definition["Steps"]} >= {"make", "total"}
    assert (tmp_path / "p.bundles").is_dir()
    # The same settings saved in the notebook's metadata are used when no flag is given.
    notebook = json.loads(flow.read_text())
    notebook["metadata"]["jupyter_pipelines"] = dict(zip(["role_arn", "bucket", "region"], EXPORT_FLAGS[1::2]))
    flow.write_text(json.dumps(notebook))
    again = cli("export", flow, "-o", tmp_path / "q.json")
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "q.json").read_bytes() == (tmp_path / "p.json").read_bytes()  # deterministic
