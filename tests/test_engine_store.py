"""The store and the cache: content-addressed objects, memory-mapped arrays, unserializable outputs, cache hits."""

from __future__ import annotations

import json
import mmap
import time
from pathlib import Path

import numpy as np
import pytest

from jupyter_pipelines.engine import Store
from jupyter_pipelines.errors import StoreError
from jupyter_pipelines.model import Parameter

from .test_engine_support import NUMPY, pipeline, run, step


def _memory_mapped(value: object) -> bool:
    return isinstance(value, np.memmap) and isinstance(value._mmap, mmap.mmap)


def test_large_array_is_handed_off_memory_mapped(tmp_path: Path) -> None:
    pipe = pipeline(
        step("make", "arr = np.full(100 * 2**20 // 8, 1.5)", binds=("arr",), prelude=("0:0",)),
        step(
            "use",
            "kind = type(arr).__name__\ntotal = float(arr.sum())\narr[0] = 0",
            reads=[("arr", "make")],
            binds=("kind", "total"),
            prelude=("0:0",),
        ),
        prelude=[NUMPY],
    )
    ran = run(tmp_path, pipe)
    assert ran.result.status == "succeeded", ran.result.steps
    ref = ran.result.steps["make"].outputs["arr"]
    assert ref.format == "npy" and ref.path.endswith(".npy") and ref.size >= 100 * 2**20
    arr = ran.outputs("make")["arr"]
    assert isinstance(arr, np.memmap) and _memory_mapped(arr)
    assert arr.shape == (100 * 2**20 // 8,) and arr[0] == 1.5
    arr[1] = 7.0  # copy-on-write: the stored object is untouched
    assert Store(tmp_path / ".pipelines").load_outputs(ran.result.steps["make"])["arr"][1] == 1.5
    assert ran.outputs("use") == {"kind": "memmap", "total": 1.5 * (100 * 2**20 // 8)}


def test_objects_are_content_addressed_and_read_only(tmp_path: Path) -> None:
    pipe = pipeline(step("a", "x = [1, 2]", binds=("x",)), step("b", "y = [1, 2]", binds=("y",)))
    ran = run(tmp_path, pipe)
    ref_a, ref_b = ran.result.steps["a"].outputs["x"], ran.result.steps["b"].outputs["y"]
    assert ref_a.hash == ref_b.hash and ref_a.hash.startswith("xxh3_128:")
    path = tmp_path / ".pipelines" / ref_a.path
    assert path.parent.name == ref_a.hash.split(":")[1][:2]
    assert not path.stat().st_mode & 0o222
    assert (tmp_path / ".pipelines" / "FORMAT").read_text().strip() == "1"
    assert not list((tmp_path / ".pipelines" / "objects").glob(".tmp-*"))


def test_unserializable_output_read_downstream_is_a_clear_error(tmp_path: Path) -> None:
    pipe = pipeline(
        step("load", "import sqlite3\nconn = sqlite3.connect(':memory:')", binds=("conn",)),
        step("query", "rows = conn.execute('select 1').fetchall()", reads=[("conn", "load")], binds=("rows",)),
    )
    ran = run(tmp_path, pipe)
    error = ran.result.steps["load"].error
    assert ran.result.steps["load"].status == "failed"
    assert "step 'load' output 'conn' (sqlite3.Connection) cannot be saved" in error
    assert "recreate it in the step that needs it" in error and "--executor kernel" in error
    assert ran.result.steps["query"].status == "skipped"


def test_unserializable_output_nobody_reads_is_fine(tmp_path: Path) -> None:
    pipe = pipeline(
        step(
            "load",
            "import threading\nlock = threading.Lock()\ngen = (i for i in range(3))\nn = 3",
            binds=("lock", "gen", "n"),
        ),
        step("use", "m = n * 2", reads=[("n", "load")], binds=("m",)),
    )
    ran = run(tmp_path, pipe)
    assert ran.result.status == "succeeded"
    load = ran.result.steps["load"]
    assert set(load.outputs) == {"n"}
    assert load.unsaved == {"lock": "_thread.lock", "gen": "generator"}
    assert ran.outputs("use") == {"m": 6}


def _counting_pipeline(tmp_path: Path):  # type: ignore[no-untyped-def]
    log = tmp_path / "executions.log"
    record = "with open({!r}, 'a') as f:\n    f.write({!r} + '\\n')\n"
    return log, pipeline(
        step("prep", record.format(str(log), "prep") + "base = 10", binds=("base",)),
        step(
            "fit",
            record.format(str(log), "fit") + "model = base * rate",
            reads=[("base", "prep")],
            parameters=("rate",),
            binds=("model",),
        ),
        step(
            "report",
            record.format(str(log), "report") + "text = f'model={model}'",
            reads=[("model", "fit")],
            binds=("text",),
        ),
        parameters=[Parameter("rate", "float", 0.5)],
    )


def test_rerun_comes_from_the_cache(tmp_path: Path) -> None:
    log, pipe = _counting_pipeline(tmp_path)
    first = run(tmp_path, pipe)
    second = run(tmp_path, pipe)
    assert log.read_text().split() == ["prep", "fit", "report"]  # nothing executed the second time
    assert {s.status for s in second.result.steps.values()} == {"cached"}
    for name, result in second.result.steps.items():
        assert result.cached_from == first.result.run_id
        (finished,) = second.of("step_finished", name)
        assert finished.status == "cached" and finished.cached_from == first.result.run_id
    assert second.outputs("report") == {"text": "model=5.0"}
    cache = tmp_path / ".pipelines" / "demo" / "cache"
    assert len(list(cache.glob("*.json"))) == 3


def test_changed_parameter_reruns_the_steps_that_depend_on_it(tmp_path: Path) -> None:
    log, pipe = _counting_pipeline(tmp_path)
    run(tmp_path, pipe)
    again = run(tmp_path, pipe, parameters={"rate": 2.0})
    assert log.read_text().split() == ["prep", "fit", "report", "fit", "report"]
    assert [s.status for s in again.result.steps.values()] == ["cached", "succeeded", "succeeded"]
    assert again.outputs("report") == {"text": "model=20.0"}


def test_force_and_use_cache_false_rerun(tmp_path: Path) -> None:
    log, pipe = _counting_pipeline(tmp_path)
    run(tmp_path, pipe)
    forced = run(tmp_path, pipe, force=frozenset({"prep"}))
    assert forced.result.steps["prep"].status == "succeeded"
    assert forced.result.steps["fit"].status == "cached"  # same output object: downstream signature unchanged
    run(tmp_path, pipe, use_cache=False)
    assert log.read_text().split() == ["prep", "fit", "report", "prep", "prep", "fit", "report"]


def test_failed_steps_are_not_cached(tmp_path: Path) -> None:
    run(tmp_path, pipeline(step("bad", "raise RuntimeError('no')")))
    assert not list((tmp_path / ".pipelines" / "demo" / "cache").glob("*.json"))


def test_cache_entry_whose_objects_are_gone_is_ignored(tmp_path: Path) -> None:
    pipe = pipeline(step("a", "x = 'value'", binds=("x",)))
    first = run(tmp_path, pipe)
    (tmp_path / ".pipelines" / first.result.steps["a"].outputs["x"].path).unlink()
    second = run(tmp_path, pipe)
    assert second.result.steps["a"].status == "succeeded"
    assert second.outputs("a") == {"x": "value"}


def test_newer_store_format_asks_for_an_upgrade(tmp_path: Path) -> None:
    (tmp_path / ".pipelines").mkdir()
    (tmp_path / ".pipelines" / "FORMAT").write_text("2\n")
    with pytest.raises(StoreError, match="pip install -U jupyter-pipelines"):
        Store(tmp_path / ".pipelines")


def test_run_records_latest_result_and_list_runs(tmp_path: Path) -> None:
    pipe = pipeline(step("a", "x = 1", binds=("x",)), step("b", "1/0", reads=[("x", "a")]))
    first = run(tmp_path, pipe)
    time.sleep(0.01)
    second = run(tmp_path, pipe)
    store = Store(tmp_path / ".pipelines")
    runs = store.list_runs("demo")
    assert [r.run_id for r in runs] == [second.result.run_id, first.result.run_id]
    assert runs[0].status == "failed" and runs[0].steps["b"].status == "failed"
    assert second.result.run_id > first.result.run_id
    latest = store.latest_result("demo", "a")
    assert latest is not None and store.load_outputs(latest) == {"x": 1}
    assert store.latest_result("demo", "b") is None
    record = json.loads((second.result.run_dir / "results" / "a.json").read_text())
    assert record["status"] == "cached" and record["cached_from"] == first.result.run_id
    assert (second.result.run_dir / "logs" / "b.stderr").read_text().strip().endswith("division by zero")
