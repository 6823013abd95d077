"""Scheduler and process executor: real runs of hand-built pipelines in forked (or spawned) step processes."""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from pathlib import Path

import pytest

from jupyter_pipelines.engine.events import event_from_json, event_to_dict
from jupyter_pipelines.errors import RunError
from jupyter_pipelines.model import Parameter, PreludePart

from .test_engine_support import NUMPY, alive, pipeline, run, step, wait_for


def test_chain_passes_values_downstream(tmp_path: Path) -> None:
    pipe = pipeline(
        step("load", "rows = [1, 2, 3]", binds=("rows",)),
        step("double", "doubled = [r * 2 for r in rows]", reads=[("rows", "load")], binds=("doubled",)),
        step(
            "total",
            "total = sum(doubled) + offset",
            reads=[("doubled", "double")],
            binds=("total",),
            parameters=("offset",),
        ),
        parameters=[Parameter("offset", "int", 0)],
    )
    ran = run(tmp_path, pipe, parameters={"offset": 100})
    assert ran.result.status == "succeeded"
    assert [s.status for s in ran.result.steps.values()] == ["succeeded"] * 3
    assert ran.outputs("double") == {"doubled": [2, 4, 6]}
    assert ran.outputs("total") == {"total": 112}
    assert [e.type for e in ran.events][0] == "run_started" and ran.events[-1].type == "run_finished"


def test_diamond_joins_both_branches(tmp_path: Path) -> None:
    pipe = pipeline(
        step("a", "n = 3", binds=("n",)),
        step("b", "left = n + 1", reads=[("n", "a")], binds=("left",)),
        step("c", "right = n * 10", reads=[("n", "a")], binds=("right",)),
        step("d", "both = (left, right)", reads=[("left", "b"), ("right", "c")], binds=("both",)),
    )
    ran = run(tmp_path, pipe)
    assert ran.result.status == "succeeded"
    assert ran.outputs("d") == {"both": (4, 30)}


def test_independent_steps_run_in_parallel(tmp_path: Path) -> None:
    pipe = pipeline(
        step("one", "import time\ntime.sleep(1)\na = 1", binds=("a",)),
        step("two", "import time\ntime.sleep(1)\nb = 2", binds=("b",)),
    )
    ran = run(tmp_path, pipe, jobs=2)
    assert ran.result.status == "succeeded"
    assert ran.wall < 1.7, f"two 1 s steps took {ran.wall:.2f} s: not parallel"


def test_jobs_one_runs_steps_one_at_a_time(tmp_path: Path) -> None:
    pipe = pipeline(
        step("one", "import time\ntime.sleep(0.4)", binds=()),
        step("two", "import time\ntime.sleep(0.41)", binds=()),  # not the same code: no shared cache entry
    )
    ran = run(tmp_path, pipe, jobs=1)
    assert ran.wall >= 0.8


def test_failure_shows_cell_line_numbers_and_skips_downstream(tmp_path: Path) -> None:
    pipe = pipeline(
        step("train", "x = 1\ny = 2\nz = x / (y - 2)", code_line=2, binds=("z",)),
        step("score", "s = z", reads=[("z", "train")], binds=("s",)),
        step("report", "r = s", reads=[("s", "score")], binds=("r",)),
        step("other", "o = 1", binds=("o",)),
    )
    ran = run(tmp_path, pipe)
    assert ran.result.status == "failed"
    train = ran.result.steps["train"]
    assert train.status == "failed"
    assert 'File "<step train>", line 4' in train.error
    assert "z = x / (y - 2)" in train.error  # the source line, from linecache
    assert "ZeroDivisionError" in train.error
    assert "runtime.py" not in train.error and "zygote" not in train.error
    assert ran.result.steps["other"].status == "succeeded"
    for name in ("score", "report"):
        assert ran.result.steps[name].status == "skipped"
        (skipped,) = ran.of("step_skipped", name)
        assert "'train'" in skipped.reason
    summary = json.loads((ran.result.run_dir / "summary.json").read_text())
    assert summary["status"] == "failed"
    assert summary["steps"]["report"]["status"] == "skipped" and "train" in summary["steps"]["report"]["error"]
    assert "ZeroDivisionError" in (ran.result.run_dir / "logs" / "train.stderr").read_text()


def test_syntax_error_points_at_the_cell_line(tmp_path: Path) -> None:
    ran = run(tmp_path, pipeline(step("bad", "a = 1\nb = (", code_line=5)))
    error = ran.result.steps["bad"].error
    assert "SyntaxError" in error and "line 6" in error


def test_timeout_kills_the_step(tmp_path: Path) -> None:
    ran = run(tmp_path, pipeline(step("slow", "import time\ntime.sleep(30)", timeout=0.5)))
    assert ran.result.status == "failed"
    assert "timed out after 0.5s" in ran.result.steps["slow"].error
    assert ran.wall < 5


def test_retry_runs_a_failing_step_again(tmp_path: Path) -> None:
    marker = tmp_path / "attempted"
    code = (
        "import pathlib\n"
        f"marker = pathlib.Path({str(marker)!r})\n"
        "if not marker.exists():\n"
        "    marker.write_text('once')\n"
        "    raise RuntimeError('first attempt fails')\n"
        "value = 42\n"
    )
    ran = run(tmp_path, pipeline(step("flaky", code, binds=("value",), retry=1)))
    assert ran.result.status == "succeeded"
    failed = ran.of("step_failed", "flaky")
    assert len(failed) == 1 and failed[0].will_retry and "first attempt fails" in failed[0].error
    assert [e.attempt for e in ran.of("step_started", "flaky")] == [1, 2]
    assert ran.result.steps["flaky"].attempts == 2
    assert ran.outputs("flaky") == {"value": 42}


def test_retry_gives_up_after_its_attempts(tmp_path: Path) -> None:
    ran = run(tmp_path, pipeline(step("broken", "raise ValueError('always')", retry=2)))
    failed = ran.of("step_failed", "broken")
    assert [e.will_retry for e in failed] == [True, True, False]
    assert ran.result.steps["broken"].status == "failed"


def test_logs_stream_live_while_the_step_runs(tmp_path: Path) -> None:
    code = "print('first line', flush=True)\nimport time\ntime.sleep(1)\nprint('done')"
    ran = run(tmp_path, pipeline(step("talk", code)))
    received = {id(e): t for t, e in ran.received}
    (first,) = [e for e in ran.of("step_log", "talk") if "first line" in e.text]
    (finished,) = ran.of("step_finished", "talk")
    assert received[id(finished)] - received[id(first)] > 0.7, "the log line arrived only when the step ended"
    assert first.stream == "stdout"
    stdout = ran.result.steps["talk"].stdout_path
    assert stdout is not None and stdout.read_text() == "first line\ndone\n"


def test_events_log_round_trips(tmp_path: Path) -> None:
    pipe = pipeline(step("a", "print('hi')\nx = 1", binds=("x",)), step("b", "1/0", reads=[("x", "a")]))
    ran = run(tmp_path, pipe)
    lines = (ran.result.run_dir / "events.jsonl").read_text().splitlines()
    assert [event_to_dict(event_from_json(line)) for line in lines] == [event_to_dict(e) for e in ran.events]
    assert [event_to_dict(e) for e in ran.store.read_events(ran.result.run_dir)] == [
        event_to_dict(e) for e in ran.events
    ]


def test_last_expression_is_displayed(tmp_path: Path) -> None:
    ran = run(tmp_path, pipeline(step("show", "x = 20\nx + 1", binds=("x",), last_expression=True)))
    assert ran.result.steps["show"].display == "21"
    assert ran.outputs("show") == {"x": 20}


def test_missing_declared_output_is_an_error(tmp_path: Path) -> None:
    ran = run(tmp_path, pipeline(step("s", "a = 1", binds=("a",), outputs=("model",))))
    assert ran.result.status == "failed"
    assert "--outputs" in ran.result.steps["s"].error and "model" in ran.result.steps["s"].error


def test_prelude_parts_and_env_reach_the_step(tmp_path: Path) -> None:
    part = PreludePart("1:0", "function", "def helper(v):\n    return v * 3", ("helper",), cell_index=1)
    pipe = pipeline(
        step(
            "s",
            "import os\nout = (helper(2), os.environ['MODE'], os.getcwd())",
            binds=("out",),
            prelude=("1:0",),
            env=(("MODE", "fast"),),
        ),
        prelude=[part],
    )
    ran = run(tmp_path, pipe)
    assert ran.outputs("s") == {"out": (6, "fast", str(tmp_path))}


def test_targets_run_only_what_they_need(tmp_path: Path) -> None:
    pipe = pipeline(
        step("a", "x = 1", binds=("x",)),
        step("b", "y = x + 1", reads=[("x", "a")], binds=("y",)),
        step("c", "z = 5", binds=("z",)),
    )
    ran = run(tmp_path, pipe, targets=frozenset({"b"}))
    assert set(ran.result.steps) == {"a", "b"}
    with pytest.raises(RunError, match="nope"):
        run(tmp_path, pipe, targets=frozenset({"nope"}))


def test_a_raising_subscriber_does_not_break_the_run(tmp_path: Path) -> None:
    from jupyter_pipelines.engine import RunOptions, Store, run_pipeline

    def broken(event: object) -> None:
        raise RuntimeError("subscriber bug")

    result = run_pipeline(
        pipeline(step("a", "x = 1", binds=("x",))),
        store=Store(tmp_path / ".pipelines"),
        workdir=tmp_path,
        options=RunOptions(),
        subscribers=[broken],
    )
    assert result.status == "succeeded"


def test_spawn_launcher_runs_the_same_steps(tmp_path: Path) -> None:
    pipe = pipeline(
        step("a", "import numpy as np\narr = np.arange(5)", binds=("arr",), prelude=("0:0",)),
        step(
            "b",
            "total = int(arr.sum())\nprint('total', total)",
            reads=[("arr", "a")],
            binds=("total",),
            prelude=("0:0",),
        ),
        prelude=[NUMPY],
    )
    ran = run(tmp_path, pipe, launcher="spawn")
    assert ran.result.status == "succeeded"
    assert ran.outputs("b") == {"total": 10}
    assert "total 10\n" in "".join(e.text for e in ran.of("step_log", "b"))


def test_fifty_step_chain_is_fast(tmp_path: Path) -> None:
    steps = [step("s0", "v = 0", binds=("v",))]
    steps += [step(f"s{i}", "v = v + 1", reads=[("v", f"s{i - 1}")], binds=("v",)) for i in range(1, 50)]
    started = time.monotonic()
    ran = run(tmp_path, pipeline(*steps))
    elapsed = time.monotonic() - started
    assert ran.outputs("s49") == {"v": 49}
    assert elapsed < 1.0, f"50 trivial steps took {elapsed:.3f} s"  # ~0.18 s measured; loose for slow CI


def test_no_worker_process_outlives_the_run(tmp_path: Path) -> None:
    marker = f"no_such_module_{uuid.uuid4().hex}"  # lands in the zygote's argv (and its forked children's)
    part = PreludePart("0:0", "import", "import json", ("json",), modules=(marker,))
    pipe = pipeline(*(step(f"s{i}", f"v = {i}", binds=("v",), prelude=("0:0",)) for i in range(3)), prelude=[part])

    def workers() -> list[int]:
        found = []
        for proc in Path("/proc").iterdir():
            with contextlib.suppress(OSError):
                if proc.name.isdigit() and marker in (proc / "cmdline").read_text() and alive(int(proc.name)):
                    found.append(int(proc.name))
        return found

    assert run(tmp_path, pipe).result.status == "succeeded"
    assert wait_for(lambda: not workers(), timeout=3), workers()
