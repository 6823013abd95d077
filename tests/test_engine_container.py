"""``--executor container``: steps run in real containers (Podman's or Docker's engine, local images, no registry).

The engine comes from ``container_support.container_engine``; without one, these tests are skipped with the one
reason "no container engine".
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from jupyter_pipelines.engine import CancelToken
from jupyter_pipelines.engine.containers import LABEL_RUN, LABEL_STEP, Engine, failure_message
from jupyter_pipelines.errors import (
    ContainerEngineError,
    ContainerError,
    ContainerImageError,
    ContainerPermissionError,
)
from jupyter_pipelines.local_jobs import job_files
from jupyter_pipelines.model import Parameter, Step, TrackedFile

from .container_support import ALT_IMAGE, IMAGE, containers_of, skip_without_engine
from .test_engine_support import NUMPY, pipeline, run, step, wait_for

skip_without_engine()
pytestmark = [pytest.mark.container, pytest.mark.usefixtures("container_engine")]


def boxed(name: str, code: str = "", **fields: Any) -> Step:
    """A step that runs in the test image."""
    fields.setdefault("image", IMAGE)
    return step(name, code, executor="container", **fields)


def failed(ran: Any) -> dict[str, str | None]:
    return {name: s.error for name, s in ran.result.steps.items() if s.status == "failed"}


SCRIPT = """
import json, os, pathlib, sys
import numpy
prep = pathlib.Path("/opt/ml/processing/input/prep")
values = numpy.load(prep / "values.npy")
out = pathlib.Path("/opt/ml/processing/output/total")
(out / "total.txt").write_text(str(int(values.sum()) * int(os.environ["JP_PARAM_SCALE"])))
(out / "seen.json").write_text(json.dumps({
    "inputs": sorted(os.listdir("/opt/ml/processing/input")),
    "prep": sorted(os.listdir(prep)),
    "code": sorted(os.listdir("/opt/ml/processing/input/code")),
    "argv": sys.argv[1:],
    "region": os.environ["REGION"],
}))
print("summed", values.tolist(), flush=True)
"""


def test_script_with_hard_coded_sagemaker_paths_feeds_a_process_step(tmp_path: Path, container_engine: Any) -> None:
    pipe = pipeline(
        step("prep", "values = np.arange(5)", binds=("values",), prelude=("0:0",)),
        Step(
            "total", "", script="total.py", after=("prep",), executor="container", image=IMAGE,
            env=(("REGION", "eu-west-1"),), parameters=("scale",),
        ),
        step("check", "total = int(open(output + '/total.txt').read())", reads=[("output", "total")],
             binds=("total",)),
        prelude=[NUMPY],
        files=[TrackedFile("total.py", SCRIPT, step="total")],
        parameters=[Parameter("scale", "int", 2)],
    )  # fmt: skip
    ran = run(tmp_path, pipe, parameters={"scale": 3})
    assert ran.result.status == "succeeded", failed(ran)
    assert ran.outputs("check")["total"] == 30
    seen = json.loads((Path(str(ran.outputs("total")["output"])) / "seen.json").read_text())
    assert seen["inputs"] == ["code", "prep"]
    assert seen["prep"] == ["values.npy"]
    assert {"entry.py", "runtime.py", "step.json", "src"} <= set(seen["code"])
    assert seen["argv"] == [
        "--input-dir",
        "/opt/ml/processing/input",
        "--output-dir",
        "/opt/ml/processing/output/total",
    ]
    assert seen["region"] == "eu-west-1"
    assert "summed [0, 1, 2, 3, 4]" in "".join(e.text for e in ran.of("step_log", "total"))  # streamed live
    assert [e.executor for e in ran.of("step_started", "total")] == ["container"]
    assert containers_of(container_engine, LABEL_RUN, ran.result.run_id) == []  # removed after the step


def test_cell_step_in_a_container_gives_values_to_a_process_step(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        import os, sys
        total = int(np.sum(values)) * factor
        variant = os.environ["JP_TEST_IMAGE"]
        where = sys.executable
        def double(x):
            return 2 * x
        squares = np.arange(3) ** 2
        print("in the container", total)
        total
        """
    )
    pipe = pipeline(
        step("prep", "values = np.arange(4)", binds=("values",), prelude=("0:0",)),
        boxed("boxed", code, reads=[("values", "prep")], parameters=("factor",), prelude=("0:0",),
              binds=("total", "variant", "where", "double", "squares"), last_expression=True),
        step("after", "result = double(total) + int(squares.sum())",
             reads=[("double", "boxed"), ("total", "boxed"), ("squares", "boxed")], binds=("result",)),
        prelude=[NUMPY],
        parameters=[Parameter("factor", "int", 10)],
    )  # fmt: skip
    ran = run(tmp_path, pipe)
    assert ran.result.status == "succeeded", failed(ran)
    boxed_outputs = ran.outputs("boxed")
    assert boxed_outputs["variant"] == "main" and boxed_outputs["where"] == "/usr/bin/python3"  # the image's python
    assert boxed_outputs["total"] == 60 and list(boxed_outputs["squares"]) == [0, 1, 4]  # type: ignore[call-overload]
    assert ran.result.steps["boxed"].outputs["squares"].format == "npy"
    assert ran.result.steps["boxed"].display == "60"
    assert ran.outputs("after")["result"] == 125
    assert "in the container 60" in "".join(e.text for e in ran.of("step_log", "boxed"))
    again = run(tmp_path, pipe)
    assert {name: s.status for name, s in again.result.steps.items()} == dict.fromkeys(
        ["prep", "boxed", "after"], "cached"
    )


def test_a_failing_container_step_fails_and_skips_downstream(tmp_path: Path) -> None:
    pipe = pipeline(
        boxed("bad", "x = 1\nraise ValueError('no good data')", binds=("x",)),
        step("later", "y = x + 1", reads=[("x", "bad")], binds=("y",)),
        Step("exits", "", script="exits.py", executor="container", image=IMAGE),
        files=[TrackedFile("exits.py", "import sys\nprint('giving up', file=sys.stderr)\nsys.exit(3)\n")],
    )
    ran = run(tmp_path, pipe)
    assert ran.result.status == "failed"
    bad = ran.result.steps["bad"]
    assert bad.status == "failed" and "ValueError: no good data" in (bad.error or "")
    assert 'File "<step bad>", line 3' in (bad.error or "")  # the cell's own line numbers
    assert ran.result.steps["later"].status == "skipped"
    exits = ran.result.steps["exits"]
    assert exits.status == "failed" and "exited with code 3" in (exits.error or "")
    assert exits.stderr_path is not None and "giving up" in exits.stderr_path.read_text()


def test_stop_kills_the_container(tmp_path: Path, container_engine: Any) -> None:
    cancel = CancelToken()
    started = threading.Event()

    def watch(event: Any) -> None:
        if event.type == "step_log" and "sleeping" in event.text:
            started.set()

    def stop_when_started() -> None:
        if started.wait(60):
            cancel.cancel()

    stopper = threading.Thread(target=stop_when_started)
    stopper.start()
    pipe = pipeline(boxed("sleepy", "import time\nprint('sleeping', flush=True)\ntime.sleep(120)"))
    began = time.monotonic()
    from jupyter_pipelines.engine import RunOptions, Store, run_pipeline

    options = RunOptions(job_files=job_files)
    result = run_pipeline(pipe, store=Store(tmp_path / ".pipelines"), workdir=tmp_path, options=options,
                          subscribers=[watch], cancel=cancel)  # fmt: skip
    stopper.join()
    assert started.is_set()
    assert result.status == "cancelled" and result.steps["sleepy"].status == "cancelled"
    assert time.monotonic() - began < 60
    assert containers_of(container_engine, LABEL_RUN, result.run_id) == []


KILLED_RUN = """
import sys
from pathlib import Path
from jupyter_pipelines.engine import RunOptions, Store, run_pipeline
from jupyter_pipelines.local_jobs import job_files
from jupyter_pipelines.model import Pipeline, Step
workdir = Path(sys.argv[1])
step = Step("sleepy", "import time\\nprint('sleeping', flush=True)\\ntime.sleep(300)", executor="container",
            image=sys.argv[2])
run_pipeline(Pipeline("demo", (step,)), store=Store(workdir / ".pipelines"), workdir=workdir,
             options=RunOptions(job_files=job_files))
"""


def test_the_next_run_removes_the_containers_of_a_killed_run(tmp_path: Path, container_engine: Any) -> None:
    engine = subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(tmp_path), IMAGE], start_new_session=True)
    try:
        running = lambda: [c for c in containers_of(container_engine, LABEL_STEP, "sleepy") if c.status == "running"]  # noqa: E731
        assert wait_for(running, timeout=60)
        os.kill(engine.pid, signal.SIGKILL)  # as when the kernel dies: nothing gets to clean up
        engine.wait()
        left = containers_of(container_engine, LABEL_STEP, "sleepy")
        assert len(left) == 1 and left[0].status == "running"
        ran = run(tmp_path, pipeline(boxed("quick", "x = 1", binds=("x",))))
        assert ran.result.status == "succeeded", failed(ran)
        assert containers_of(container_engine, LABEL_STEP, "sleepy") == []
    finally:
        if engine.poll() is None:
            engine.kill()
            engine.wait()
        for container in containers_of(container_engine, LABEL_STEP, "sleepy"):
            container.remove(force=True)


def test_the_cache_key_follows_the_image_id_not_its_tag(tmp_path: Path, container_engine: Any) -> None:
    repository, tag = "jupyter-pipelines-test-retag", "jupyter-pipelines-test-retag:latest"
    container_engine.images.get(IMAGE).tag(repository, "latest")
    try:
        pipe = pipeline(boxed("variant", "import os\nvariant = os.environ['JP_TEST_IMAGE']", binds=("variant",),
                              image=tag))  # fmt: skip
        first = run(tmp_path, pipe)
        assert first.result.status == "succeeded", failed(first)
        assert first.outputs("variant")["variant"] == "main"
        assert run(tmp_path, pipe).result.steps["variant"].status == "cached"
        container_engine.images.get(ALT_IMAGE).tag(repository, "latest")  # the same tag, another image
        from jupyter_pipelines.engine.why import explain

        main_id, alt_id = container_engine.images.get(IMAGE).id, container_engine.images.get(ALT_IMAGE).id
        text = explain(pipe, first.store, tmp_path, "variant", {}).text()
        assert f"container image: {main_id[7:19]} → {alt_id[7:19]}" in text, text
        third = run(tmp_path, pipe)
        result = third.result.steps["variant"]
        assert result.status == "succeeded" and third.outputs("variant")["variant"] == "alt"
        assert result.parts["image"] == alt_id and first.result.steps["variant"].parts["image"] == main_id
    finally:
        container_engine.images.remove(tag)


def test_local_image_replaces_the_image_for_local_runs(tmp_path: Path) -> None:
    pipe = pipeline(boxed("variant", "import os\nvariant = os.environ['JP_TEST_IMAGE']", binds=("variant",),
                          image="123456789012.dkr.ecr.eu-west-1.amazonaws.com/never-pulled:1",
                          local_image=ALT_IMAGE))  # fmt: skip
    ran = run(tmp_path, pipe)
    assert ran.result.status == "succeeded", failed(ran)
    assert ran.outputs("variant")["variant"] == "alt"


def test_resources_and_network_are_in_the_container_config(tmp_path: Path, container_engine: Any) -> None:
    seen: dict[str, Any] = {}

    def inspect(event: Any) -> None:
        if event.type == "step_log" and "ready" in event.text and event.step not in seen:
            (container,) = containers_of(container_engine, LABEL_STEP, event.step)
            seen[event.step] = container.attrs["HostConfig"]

    code = "import socket, time\ninterfaces = [n for _, n in socket.if_nameindex()]\nprint('ready', flush=True)\n"
    code += "time.sleep(2)"
    pipe = pipeline(
        boxed("limited", code, binds=("interfaces",), cpus=1.5, memory="256m"),
        boxed("networked", code, binds=("interfaces",), network=True),
    )
    from jupyter_pipelines.engine import RunOptions, Store, run_pipeline

    store = Store(tmp_path / ".pipelines")
    options = RunOptions(job_files=job_files)
    result = run_pipeline(pipe, store=store, workdir=tmp_path, options=options, subscribers=[inspect])
    limited = seen["limited"]
    assert limited["NanoCpus"] == 1_500_000_000
    assert limited["Memory"] == 256 * 1024 * 1024
    assert limited["NetworkMode"] == "none"
    assert seen["networked"]["NetworkMode"] != "none"
    assert seen["networked"]["NanoCpus"] == 0 and seen["networked"]["Memory"] == 0
    assert result.steps["limited"].status == "succeeded"
    assert store.load_outputs(result.steps["limited"])["interfaces"] == ["lo"]  # no network inside


def test_a_container_over_its_memory_limit_fails_as_killed_for_memory(tmp_path: Path) -> None:
    hog = "blocks = []\nfor _ in range(64):\n    blocks.append(bytearray(16 * 1024 * 1024))\nx = len(blocks)"
    ran = run(tmp_path, pipeline(boxed("hog", hog, binds=("x",), memory="64m")))
    result = ran.result.steps["hog"]
    assert result.status == "failed"
    assert "killed for using too much memory (--memory 64m)" in (result.error or ""), result.error


def test_failure_messages_name_the_cause() -> None:
    spec = {"step": "s", "image": "img", "memory": None}
    assert "killed for using too much memory" in failure_message(spec, 137, True, None)
    assert "host ran out of memory" in failure_message(spec, 137, False, None)
    assert failure_message(spec, 1, False, "Traceback...\nValueError: x\n") == "Traceback...\nValueError: x"
    assert "has no `python3`" in failure_message(spec, 127, False, None)
    assert "exited with code 2" in failure_message(spec, 2, False, None)


# --- clear errors ---------------------------------------------------------------------------------------------


def test_no_engine_at_docker_host_says_how_to_start_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/missing.sock")
    with pytest.raises(ContainerEngineError) as caught:
        run(tmp_path, pipeline(boxed("s", "x = 1", binds=("x",))))
    message = str(caught.value)
    assert f"no container engine answers at unix://{tmp_path}/missing.sock (the socket does not exist)" in message
    assert "podman system service" in message and "DOCKER_HOST" in message and "Docker" in message


def test_a_missing_image_that_cannot_be_pulled_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ContainerImageError) as caught:
        run(tmp_path, pipeline(boxed("s", "x = 1", binds=("x",), image="localhost/jupyter-pipelines-missing:nope")))
    message = str(caught.value)
    assert (
        "image 'localhost/jupyter-pipelines-missing:nope' is not on this machine and could not be pulled" in message
    )
    assert "docker load" in message and "--local-image" in message


def test_a_container_step_without_an_image_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ContainerError, match="names no image") as caught:
        run(tmp_path, pipeline(step("s", "x = 1", binds=("x",), executor="container")))
    assert "%pipeline config --image" in str(caught.value)


READS_DATA = """
import os
text = open("data/train.csv").read()
names = sorted(os.listdir("data/images"))
seen = sorted(os.listdir("/opt/ml/processing/input"))
"""


def test_a_container_step_reads_its_declared_inputs_where_the_export_puts_them(tmp_path: Path) -> None:
    (tmp_path / "data" / "images").mkdir(parents=True)
    (tmp_path / "data" / "train.csv").write_text("a,b\n1,2\n")
    (tmp_path / "data" / "images" / "one.txt").write_text("one")
    reader = boxed("read", READS_DATA, data_inputs=("data/train.csv", "data/images"), binds=("text", "names", "seen"))
    ran = run(tmp_path, pipeline(reader))
    assert ran.result.status == "succeeded", failed(ran)
    assert ran.outputs("read") == {"text": "a,b\n1,2\n", "names": ["one.txt"], "seen": ["code", "data-0", "data-1"]}
    assert run(tmp_path, pipeline(reader)).result.steps["read"].status == "cached"

    (tmp_path / "data" / "train.csv").write_text("a,b\n1,3\n")  # the signature has the data's fingerprint
    again = run(tmp_path, pipeline(reader))
    assert again.result.steps["read"].status == "succeeded" and again.outputs("read")["text"] == "a,b\n1,3\n"


def test_declared_inputs_a_container_cannot_show(tmp_path: Path) -> None:
    with pytest.raises(ContainerError, match="--inputs /srv/x.csv, an absolute path") as caught:
        run(tmp_path, pipeline(boxed("s", "x = 1", binds=("x",), data_inputs=("/srv/x.csv",))))
    assert "declare it relative, e.g. --inputs data/x.csv" in str(caught.value)
    ran = run(tmp_path, pipeline(boxed("s", "x = 1", binds=("x",), data_inputs=("data/missing.csv",))))
    assert failed(ran)["s"] == (
        f"step 's': its --inputs {tmp_path}/data/missing.csv does not exist. Create it (or let an upstream step "
        "write it), or fix the path in --inputs."
    )

    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "data" / "x.csv").write_text("1")
    upstream = step("data-0", "y = 1", binds=("y",))
    clash = boxed("s", "x = y", reads=[("y", "data-0")], binds=("x",), data_inputs=("data/x.csv",))
    ran = run(tmp_path, pipeline(upstream, clash))  # both would mount at /opt/ml/processing/input/data-0
    assert failed(ran)["s"] == (
        "step 's' reads from a step named 'data-0', the job input its --inputs data/x.csv arrives in. "
        "Rename step 'data-0'."
    )


PERMISSION_CHECK = """
import sys
from jupyter_pipelines.engine.containers import Engine
from jupyter_pipelines.errors import ContainerPermissionError
try:
    Engine.connect()
except ContainerPermissionError as error:
    print(error)
    sys.exit(0)
sys.exit(1)
"""


def test_a_socket_without_permission_is_a_clear_error(container_engine: Any) -> None:
    import socket

    directory = Path(tempfile.mkdtemp(prefix="jp-socket-"))
    directory.chmod(0o755)
    path = directory / "engine.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.bind(str(path))
        server.listen(1)
        path.chmod(0)
        env = {**os.environ, "DOCKER_HOST": f"unix://{path}", "HOME": str(directory)}
        command = [sys.executable, "-c", PERMISSION_CHECK]
        if os.getuid() == 0:  # root opens any socket: ask as root without the capabilities that override modes
            # (not as another user: the checkout, its venv and the interpreter may be unreadable to anyone else)
            drop = "-dac_override,-dac_read_search"
            command = ["setpriv", f"--inh-caps={drop}", f"--bounding-set={drop}", *command]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, cwd=directory)
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"permission denied on the container engine's socket (unix://{path})" in done.stdout
        assert "docker` group" in done.stdout
    finally:
        server.close()
        path.unlink(missing_ok=True)
        directory.rmdir()


def test_engine_connects_to_docker_host(container_engine: Any) -> None:
    engine = Engine.connect()
    try:
        assert engine.image_id(IMAGE, "s") == container_engine.images.get(IMAGE).id
    finally:
        engine.close()


def test_connection_errors_are_not_permission_errors_unless_they_are() -> None:
    from jupyter_pipelines.engine.containers import connect_error

    assert isinstance(connect_error("unix:///x", PermissionError(13, "Permission denied")), ContainerPermissionError)
    refused = connect_error("tcp://127.0.0.1:1", ConnectionRefusedError(111, "Connection refused"))
    assert isinstance(refused, ContainerEngineError) and "connection was refused" in str(refused)


# --- from a notebook: the header options and the pipeline-wide default ----------------------------------------


def test_the_pipeline_default_runs_steps_in_containers_from_the_cli(tmp_path: Path) -> None:
    import nbformat

    from jupyter_pipelines.cli import main

    from .notebooks import write_notebook

    path = write_notebook(
        tmp_path / "flow.ipynb",
        [
            "%%step boxed --cpus 1 --memory 256m\nimport os\nvariant = os.environ['JP_TEST_IMAGE']",
            f"%%step alt --local-image {ALT_IMAGE}\nimport os\nother = os.environ['JP_TEST_IMAGE']",
            "%%step host --executor process\nimport os\nseen = (variant, other, os.environ.get('JP_TEST_IMAGE'))",
        ],
    )
    notebook = nbformat.read(str(path), as_version=4)
    notebook.metadata["jupyter_pipelines"] = {"executor": "container", "image": IMAGE}
    nbformat.write(notebook, str(path))
    assert main(["run", str(path), "--json"]) == 0
    from jupyter_pipelines.engine import Store

    store = Store(tmp_path / ".pipelines")
    (latest,) = store.list_runs("flow")
    assert store.load_outputs(latest.steps["host"])["seen"] == ("main", "alt", None)
    events = [json.loads(line) for line in (latest.run_dir / "events.jsonl").read_text().splitlines()]
    executors = {e["step"]: e["executor"] for e in events if e["type"] == "step_started"}
    assert executors == {"boxed": "container", "alt": "container", "host": "process"}


def test_pipeline_config_sets_the_default_executor_in_a_kernel(kernel: Any, tmp_path: Path) -> None:
    assert kernel.execute("%load_ext jupyter_pipelines").status == "ok"
    configured = kernel.execute(f"%pipeline config --executor container --image {IMAGE}")
    assert configured.status == "ok", configured.text
    assert f"image: {IMAGE}" in configured.stdout and "executor: container" in configured.stdout
    ran = kernel.execute("%%step boxed\nimport os\nvariant = os.environ['JP_TEST_IMAGE']")
    assert ran.status == "ok", ran.text
    assert kernel.execute("print(variant)").stdout.strip() == "main"
    bad = kernel.execute("%pipeline config --executor boat")
    assert "the default executor must be one of process, kernel, container, got 'boat'" in bad.text


def test_a_training_step_gets_channels_hyperparameters_and_the_model_dir(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        import os
        channels = sorted(os.listdir("/opt/ml/input/data"))
        model = {"weights": [w * rate for w in values], "dir": os.environ["SM_MODEL_DIR"]}
        """
    )
    pipe = pipeline(
        step("prep", "values = [1, 2]", binds=("values",)),
        boxed("train", code, kind="training", reads=[("values", "prep")], parameters=("rate",),
              binds=("channels", "model")),
        step("use", "best = max(model['weights'])", reads=[("model", "train")], binds=("best",)),
        parameters=[Parameter("rate", "float", 0.5)],
    )  # fmt: skip
    ran = run(tmp_path, pipe)
    assert ran.result.status == "succeeded", failed(ran)
    assert ran.outputs("train")["channels"] == ["prep"]
    assert ran.outputs("train")["model"] == {"weights": [0.5, 1.0], "dir": "/opt/ml/model"}
    assert ran.outputs("use")["best"] == 1.0


def test_a_timeout_kills_the_container(tmp_path: Path, container_engine: Any) -> None:
    ran = run(tmp_path, pipeline(boxed("slow", "import time\ntime.sleep(60)", timeout=1.0)))
    result = ran.result.steps["slow"]
    assert result.status == "failed" and result.error == "step 'slow' timed out after 1s"
    assert ran.wall < 30
    assert containers_of(container_engine, LABEL_RUN, ran.result.run_id) == []


def test_a_run_without_the_job_packager_says_what_is_missing_before_anything_runs(tmp_path: Path) -> None:
    """The engine never imports the sagemaker layer: callers hand it the job bundle maker (the skins always do)."""
    with pytest.raises(ContainerError, match="RunOptions.job_files"):
        run(tmp_path, pipeline(boxed("boxed", "x = 1")), job_files=None)
    (record,) = (tmp_path / ".pipelines").glob("*/runs/*/results/boxed.json")
    assert json.loads(record.read_text())["status"] == "cancelled"  # it never ran
