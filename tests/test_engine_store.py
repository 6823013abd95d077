"""The store and the cache: content-addressed objects, memory-mapped arrays, unserializable outputs, cache hits."""

from __future__ import annotations

import errno
import json
import mmap
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from jupyter_pipelines.engine import ObjectRef, Store
from jupyter_pipelines.errors import StoreError
from jupyter_pipelines.model import CacheConfig, Parameter

from .notebooks import write_notebook
from .test_engine_support import NUMPY, pipeline, run, step, wait_for


def _memory_mapped(value: object) -> bool:
    return isinstance(value, np.memmap) and isinstance(getattr(value, "_mmap", None), mmap.mmap)


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
    reloaded = Store(tmp_path / ".pipelines").load_outputs(ran.result.steps["make"])["arr"]
    assert isinstance(reloaded, np.ndarray) and reloaded[1] == 1.5
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
    error = str(ran.result.steps["load"].error)
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
    record = json.loads((second.result.run_dir / "summary.json").read_text())["steps"]["a"]
    assert record["status"] == "cached" and record["cached_from"] == first.result.run_id
    assert not (second.result.run_dir / "results" / "a.json").exists()  # a cached step's record: the summary only
    assert (second.result.run_dir / "logs" / "b.stderr").read_text().strip().endswith("division by zero")


# --- crash safety, corruption, concurrency, housekeeping ---------------------------------------------------------


CLI = [sys.executable, "-m", "jupyter_pipelines"]


def _cli(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=120)


def _store_is_sound(store: Store, pipeline_name: str) -> None:
    """Every object a run record or cache entry names is there with the right content; no temp file is left."""
    index = store.file_index()
    for run_result in store.list_runs(pipeline_name):
        for result in run_result.steps.values():
            for ref in result.outputs.values():
                assert store.object_problem(ref, index) is None, (run_result.run_id, result.name, ref)
    for entry in store.cache_entries(pipeline_name):
        data = json.loads((store.cache_dir(pipeline_name) / f"{entry.signature}.json").read_text())
        for ref in data["result"]["outputs"].values():
            assert store.object_problem(ObjectRef.from_dict(ref), index) is None


@pytest.mark.parametrize("damage", ["overwrite", "truncate"])
def test_corrupt_object_is_detected_reported_and_recomputed(tmp_path: Path, damage: str) -> None:
    pipe = pipeline(
        step("make", "data = list(range(1000))", binds=("data",)),
        step("use", "total = sum(data)", reads=[("data", "make")], binds=("total",)),
    )
    first = run(tmp_path, pipe)
    path = tmp_path / ".pipelines" / first.result.steps["make"].outputs["data"].path
    size = path.stat().st_size
    os.chmod(path, 0o644)
    with open(path, "r+b") as handle:
        if damage == "overwrite":
            handle.seek(size // 2)
            handle.write(b"\xff\xfe\xfd\xfc")  # same size, different content
        else:
            handle.truncate(size - 10)
    again = run(tmp_path, pipe)
    assert again.result.steps["make"].status == "succeeded"  # recomputed, never loaded
    assert again.result.steps["use"].status == "cached"  # same value again: downstream stays cached
    warnings = [e.text for e in again.of("step_log", "make") if e.stream == "stderr"]
    assert any("corrupt" in text and "recomputed" in text for text in warnings), warnings
    assert "corrupt" in (again.result.run_dir / "logs" / "make.stderr").read_text()
    assert again.outputs("use") == {"total": sum(range(1000))}
    assert Store(tmp_path / ".pipelines").object_problem(again.result.steps["make"].outputs["data"]) is None
    _store_is_sound(Store(tmp_path / ".pipelines"), "demo")


def test_worker_killed_while_writing_an_output_leaves_nothing_trusted(tmp_path: Path) -> None:
    bomb = (
        "import os, signal\n"
        "class Bomb:\n"
        "    def __reduce__(self):\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "big = [b'x' * 5_000_000, Bomb()]\n"
    )
    pipe = pipeline(step("a", "x = 1", binds=("x",)), step("b", bomb, reads=[("x", "a")], binds=("big",)))
    killed = run(tmp_path, pipe)
    assert killed.result.steps["b"].status == "failed" and "signal 9" in str(killed.result.steps["b"].error)
    objects = tmp_path / ".pipelines" / "objects"
    leftovers = list(objects.glob(".tmp-*"))
    assert leftovers, "the kill should have interrupted a write"
    assert {e.step for e in Store(tmp_path / ".pipelines").cache_entries("demo")} == {"a"}
    fixed = pipeline(pipe.steps[0], step("b", "big = [b'x' * 5_000_000]", reads=[("x", "a")], binds=("big",)))
    again = run(tmp_path, fixed)
    assert {n: r.status for n, r in again.result.steps.items()} == {"a": "cached", "b": "succeeded"}
    assert again.outputs("b") == {"big": [b"x" * 5_000_000]}
    _store_is_sound(Store(tmp_path / ".pipelines"), "demo")
    old = time.time() - 2 * 3600
    for leftover in leftovers:
        os.utime(leftover, (old, old))
    Store(tmp_path / ".pipelines").gc("demo", keep=10)
    assert not list(objects.glob(".tmp-*"))


def test_cli_killed_mid_run_then_a_clean_rerun(tmp_path: Path) -> None:
    marker = tmp_path / "slow-started"
    path = write_notebook(
        tmp_path / "flow.ipynb",
        [
            "import time, pathlib",
            "%%step fast\nx = 41",
            f"%%step slow\npathlib.Path({str(marker)!r}).write_text('x')\ntime.sleep(60)\ny = x + 1",
        ],
    )
    process = subprocess.Popen([*CLI, "run", str(path)], cwd=tmp_path, stderr=subprocess.DEVNULL)
    cache = tmp_path / ".pipelines" / "flow" / "cache"
    try:  # slow is running and fast's cache entry is written (on the engine's record thread)
        assert wait_for(lambda: marker.exists() and any(cache.glob("*.json")), timeout=30)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    store = Store(tmp_path / ".pipelines")
    (killed,) = store.list_runs("flow")
    assert killed.status == "cancelled"  # its process died: nobody runs it any more
    path.write_text(path.read_text().replace("time.sleep(60)", "time.sleep(0)"))
    done = _cli("run", path, "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    steps = json.loads(done.stdout)["steps"]
    assert steps["fast"]["status"] == "cached" and steps["slow"]["status"] == "succeeded"
    _store_is_sound(store, "flow")


def test_two_processes_running_one_pipeline_at_once(tmp_path: Path) -> None:
    path = write_notebook(
        tmp_path / "flow.ipynb",
        [
            "import time",
            "%%step a\ntime.sleep(0.3)\nx = list(range(100))",
            "%%step b\ny = [v * 2 for v in x]",
            "%%step c\nz = sum(y)",
        ],
    )
    processes = [
        subprocess.Popen([*CLI, "run", str(path), "--json"], cwd=tmp_path, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120)[0] for p in processes]
    assert [p.returncode for p in processes] == [0, 0]
    for output in outputs:
        assert json.loads(output)["status"] == "succeeded"
    store = Store(tmp_path / ".pipelines")
    assert len(store.list_runs("flow")) == 2
    entries = store.cache_entries("flow")
    assert sorted(e.step for e in entries) == ["a", "b", "c"]  # both ran each step; the cache kept one
    _store_is_sound(store, "flow")
    again = json.loads(_cli("run", path, "--json", cwd=tmp_path).stdout)
    assert {s["status"] for s in again["steps"].values()} == {"cached"}


def test_gc_keeps_what_kept_runs_and_cache_entries_need(tmp_path: Path) -> None:
    def version(n: int):  # type: ignore[no-untyped-def]
        return pipeline(
            step("a", f"x = [{n}] * 1000", binds=("x",)), step("b", "y = len(x)", reads=[("x", "a")], binds=("y",))
        )

    runs = [run(tmp_path, version(n)) for n in (1, 2, 3)]
    store = Store(tmp_path / ".pipelines")
    report = store.gc("demo", keep=1)
    assert report.runs_removed == 2 and report.objects_removed == 0  # cache entries still name every object
    assert [r.run_id for r in store.list_runs("demo")] == [runs[-1].result.run_id]
    assert store.clear_cache("demo") == 6  # a and b of each run (b read a different x each time)
    report = store.gc("demo", keep=1)
    assert report.objects_removed == 2 and report.bytes_freed > 0  # x of runs 1 and 2
    assert report.text().startswith("removed 0 runs and 2 objects, freed ")
    latest = store.latest_result("demo", "a")
    assert latest is not None and store.load_outputs(latest) == {"x": [3] * 1000}
    for old in runs[:2]:
        assert not store.has_object(old.result.steps["a"].outputs["x"])
    last = store.gc("demo", keep=0)
    assert (last.runs_removed, last.objects_removed) == (1, 2)  # x and y: nothing refers to them any more
    assert not list((tmp_path / ".pipelines" / "objects").glob("*/*"))


def test_gc_beside_a_running_run_removes_nothing_it_uses(tmp_path: Path) -> None:
    marker = tmp_path / "waiting"
    path = write_notebook(
        tmp_path / "flow.ipynb",
        [
            "import time, pathlib",
            "%%step make\nx = list(range(5000))",
            f"%%step wait\npathlib.Path({str(marker)!r}).write_text('')\ntime.sleep(1.5)\ny = len(x)",
            "%%step use\nz = y + sum(x)",
        ],
    )
    process = subprocess.Popen([*CLI, "run", str(path), "--json"], cwd=tmp_path, stdout=subprocess.PIPE, text=True)
    assert wait_for(marker.exists, timeout=30)
    store = Store(tmp_path / ".pipelines")
    store.clear_cache("flow")  # make's entry gone: only the live run refers to its object
    report = store.gc("flow", keep=0)
    assert report.runs_removed == 0 and report.objects_removed == 0
    output = process.communicate(timeout=60)[0]
    assert process.returncode == 0 and json.loads(output)["status"] == "succeeded"
    _store_is_sound(store, "flow")


def test_cache_entries_and_clear(tmp_path: Path) -> None:
    pipe = pipeline(
        step("a", "x = 'a' * 1000", binds=("x",)),
        step("b", "y = x * 2", reads=[("x", "a")], binds=("y",), cache=CacheConfig(expire_after="P1D")),
    )
    first = run(tmp_path, pipe)
    store = Store(tmp_path / ".pipelines")
    entries = {e.step: e for e in store.cache_entries("demo")}
    assert set(entries) == {"a", "b"}
    assert entries["a"].run_id == first.result.run_id and entries["a"].expires is None
    assert entries["a"].size == first.result.steps["a"].outputs["x"].size
    assert entries["b"].expires == pytest.approx(entries["b"].created + 86400)
    assert "from run" in entries["a"].text() and "kept until cleared" in entries["a"].text()
    assert "expires in 1d" in entries["b"].text()
    assert store.clear_cache("demo", step="b") == 1
    assert [e.step for e in store.cache_entries("demo")] == ["a"]
    assert {n: r.status for n, r in run(tmp_path, pipe).result.steps.items()} == {"a": "cached", "b": "succeeded"}
    assert store.clear_cache("demo") == 2
    assert store.cache_entries("demo") == []


def test_disk_full_while_writing_a_record_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from jupyter_pipelines.engine import store as store_module

    target = tmp_path / "record.json"
    target.write_text('{"kept": true}')

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store_module.os, "fsync", full)  # where delayed allocation reports a full disk
    with pytest.raises(StoreError, match=r"disk is full.*record\.json.*MB free.*nothing already stored was lost"):
        store_module.write_json(target, {"new": 1})
    assert target.read_text() == '{"kept": true}' and [p.name for p in tmp_path.iterdir()] == ["record.json"]


def test_disk_full_while_a_step_saves_its_output(tmp_path: Path) -> None:
    """A real full filesystem (a 4 MB tmpfs): the step fails saying so; what was stored before is intact."""
    mount = tmp_path / "small"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here")
    try:
        pipe = pipeline(
            step("small", "x = [1, 2, 3]", binds=("x",)),
            step("huge", "import os\nblob = os.urandom(8 * 2**20)", reads=[("x", "small")], binds=("blob",)),
        )
        ran = run(mount, pipe)
        assert ran.result.steps["small"].status == "succeeded"
        error = str(ran.result.steps["huge"].error)
        assert ran.result.steps["huge"].status == "failed"
        assert "disk is full" in error and "objects" in error and "MB free" in error, error
        assert not list((mount / ".pipelines" / "objects").glob(".tmp-*"))
        assert ran.outputs("small") == {"x": [1, 2, 3]}
        again = run(mount, pipeline(pipe.steps[0]))
        assert again.result.steps["small"].status == "cached"
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
