"""Container executor benchmarks (issue 8): whole `jupyter-pipelines run` invocations with `--executor container`
steps in the local test image (scripts/setup-containers.sh), cold (empty store) unless said otherwise.

1. a one-step container pipeline, against a bare docker-SDK `containers.run` of `python3 -c pass` in the same image
   and against the same pipeline with the process executor;
2. its fully cached rerun (connect, image id lookup, cache hit), against the process executor's cached rerun;
3. four independent container steps with --jobs 4, against four bare `containers.run` one after the other;
4. a 100 MB numpy array handed process -> container -> process, against the same pipeline in processes only.

The engine: DOCKER_HOST, else Docker's socket, else a Podman service started for the benchmark (as the tests do).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import CLI, best_of, clean_store, report, time_command, write_notebook

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.container_support import ENGINES, IMAGE, find_engine  # noqa: E402  (the tests' engine finder, reused)

REPEAT = 3


def bare_run(client: object, count: int = 1) -> float:
    """Wall time of ``count`` sequential ``containers.run`` of ``python3 -c pass`` (no network, removed)."""
    started = time.perf_counter()
    for _ in range(count):
        client.containers.run(IMAGE, ["python3", "-c", "pass"], network_mode="none", remove=True)  # type: ignore[attr-defined]
    return time.perf_counter() - started


def notebook(root: Path, name: str, executor: str, cells: list[str]) -> Path:
    """A notebook whose steps (cells starting with %%step) run with ``executor`` (the pipeline-wide default)."""
    import nbformat

    path = write_notebook(root / f"{name}.ipynb", cells)
    document = nbformat.read(str(path), as_version=4)
    document.metadata["jupyter_pipelines"] = {"executor": executor, "image": IMAGE}
    nbformat.write(document, str(path))
    return path


def one_step(root: Path, client: object) -> None:
    boxed = notebook(root, "one", "container", ["%%step one\nx = 1"])
    plain = notebook(root, "one_plain", "process", ["%%step one\nx = 1"])
    ours = best_of(REPEAT, lambda: time_command([*CLI, "run", str(boxed)], cwd=root, before=clean_store(root)))
    bare = best_of(REPEAT, lambda: bare_run(client))
    process = best_of(REPEAT, lambda: time_command([*CLI, "run", str(plain)], cwd=root, before=clean_store(root)))
    report(
        "one-step container pipeline, cold, whole CLI run",
        ours,
        None,
        {"bare SDK containers.run of `python3 -c pass`": bare, "the same pipeline, process executor": process},
    )
    print(f"    overhead over a bare container ≈ {(ours - bare) * 1000:.0f} ms")
    time_command([*CLI, "run", str(boxed)], cwd=root)  # fill the cache
    time_command([*CLI, "run", str(plain)], cwd=root)
    cached = best_of(REPEAT, lambda: time_command([*CLI, "run", str(boxed)], cwd=root))
    cached_process = best_of(REPEAT, lambda: time_command([*CLI, "run", str(plain)], cwd=root))
    report("its fully cached rerun, whole CLI run", cached, None, {"process executor, cached rerun": cached_process})


def parallel(root: Path, client: object) -> None:
    cells = [f"%%step s{i}\nv{i} = {i}" for i in range(4)]
    path = notebook(root, "four", "container", cells)
    ours = best_of(
        REPEAT, lambda: time_command([*CLI, "run", str(path), "--jobs", "4"], cwd=root, before=clean_store(root))
    )
    bare = best_of(REPEAT, lambda: bare_run(client, 4))
    report("4 independent container steps, --jobs 4, cold", ours, None, {"4 bare containers.run in sequence": bare})


def handoff(root: Path) -> None:
    cells = [
        "import numpy as np",
        "%%step make --executor process\nbig = np.ones(100 * 1024**2 // 8)",
        "%%step double\ndoubled = big * 2",
        "%%step check --executor process\ntotal = float(doubled[:10].sum())",
    ]
    boxed = notebook(root, "handoff", "container", cells)
    plain = notebook(root, "handoff_plain", "process", cells)
    ours = best_of(REPEAT, lambda: time_command([*CLI, "run", str(boxed)], cwd=root, before=clean_store(root)))
    process = best_of(REPEAT, lambda: time_command([*CLI, "run", str(plain)], cwd=root, before=clean_store(root)))
    report("100 MB array: process -> container -> process", ours, None, {"the same, all process steps": process})


def main() -> None:
    """Every engine the tests use (Podman's service, Docker Engine; or the one DOCKER_HOST names), in turn."""
    measured = False
    for kind in ENGINES:
        found = find_engine(kind)
        if found is None:
            print(f"({kind}: not available here)")
            continue
        try:
            measured = bench_engine(kind, found) or measured
        finally:
            if found.service is not None:
                found.service.terminate()
                found.service.wait()
    if not measured:
        print("skipped: no container engine (run scripts/setup-containers.sh, or set DOCKER_HOST)")


def bench_engine(kind: str, found: Any) -> bool:
    os.environ["DOCKER_HOST"] = found.address
    import docker

    client = docker.DockerClient(base_url=found.address, timeout=120)
    try:
        client.images.get(IMAGE)
    except docker.errors.ImageNotFound:
        print(f"skipped {kind}: the image {IMAGE} is missing (run scripts/setup-containers.sh)")
        return False
    print(f"-- engine: {kind} ({client.version().get('Version', '?')})")
    try:
        with tempfile.TemporaryDirectory() as directory:
            root = Path(directory)
            one_step(root, client)
            parallel(root, client)
            handoff(root)
    finally:
        client.close()
    return True


if __name__ == "__main__":
    main()
