"""The container executor: a step runs in its image through a Docker-compatible engine, as SageMaker's local mode.

The container runs what the SageMaker export ships: the step's code bundle (``sagemaker/entry.py``, the engine's
``runtime.py``, cloudpickle's source, ``step.json`` and the tracked files under ``src/``), mounted read-only at
``/opt/ml/processing/input/code`` (``/opt/ml/code`` for ``--kind training``), with the job's layout:

- each direct upstream step's outputs read-only at ``/opt/ml/processing/input/<upstream>/`` (training:
  ``/opt/ml/input/data/<upstream>/``): ``<name>.npy`` / ``<name>.pkl`` per value, a script's output files as they are;
- each declared ``--inputs`` path read-only where its job input lands on SageMaker,
  ``/opt/ml/processing/input/data-<n>/<name>`` (training: ``/opt/ml/input/data/data-<n>/<name>``); the entry links
  the declared relative path to it in the step's working directory;
- the outputs at ``/opt/ml/processing/output/<step>/`` (training: ``/opt/ml/model/``), collected into the store
  when the container exits 0; ``/opt/ml/output/`` receives the failure message (and the local result record);
- parameters as ``JP_PARAM_<NAME>`` variables (training: ``/opt/ml/input/config/hyperparameters.json``).

So a script with hard-coded ``/opt/ml/processing/...`` paths runs unchanged here and in the cloud. Objects are
the store's own ``.npy`` and cloudpickle files (the bundle ships cloudpickle, so an image needs only ``python3``).

The engine is found as the docker SDK finds it (``DOCKER_HOST``, else ``/var/run/docker.sock``): Docker Engine, or
Podman's Docker-compatible service. Each job's container is created, attached to (its output streams into the
step's log pipes live), started, waited for and removed on a thread of its own; the pool reports the exit to the
engine's selector loop through a pipe. Containers carry labels naming their run; a run that starts removes the
containers of runs on this host that are no longer alive (a killed kernel leaves its containers behind).

``docker`` is imported only when a container step runs, so the CLI stays fast.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import selectors
import shutil
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ContainerEngineError, ContainerError, ContainerImageError, ContainerPermissionError
from . import runtime
from .executors import ExitCallback, ProcessPool

LABEL_RUN = "jupyter-pipelines.run"
LABEL_RUN_DIR = "jupyter-pipelines.run-dir"
LABEL_HOST = "jupyter-pipelines.host"
LABEL_STEP = "jupyter-pipelines.step"
RESULT_FILE = "jp-result.json"
KILLED = 137  # 128 + SIGKILL: what the engine reports for a container the kernel's OOM killer (or we) killed
CLIENT_TIMEOUT = 60  # seconds for one API call (streams and waits have none)

START_HINT = (
    "Start Docker (e.g. `sudo systemctl start docker`), or Podman's Docker-compatible service: "
    "`podman system service --time=0 unix:///tmp/podman.sock &` then `export DOCKER_HOST=unix:///tmp/podman.sock`."
)


def engine_address() -> str:
    """Where the docker SDK looks for the engine: ``DOCKER_HOST``, else Docker's default socket."""
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def _causes(error: BaseException) -> list[BaseException]:
    found: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in found:
        found.append(current)
        current = current.__cause__ or current.__context__
    return found


def connect_error(address: str, error: BaseException) -> ContainerError:
    """The user's words for a failed connection: a permission problem, or no engine at the address."""
    chain = _causes(error)
    text = " ".join(str(item) for item in chain)
    if any(isinstance(item, PermissionError) for item in chain) or "Permission denied" in text:
        return ContainerPermissionError(
            f"permission denied on the container engine's socket ({address}).",
            hint="Add your user to the `docker` group and log in again, or use Podman's service as your own user: "
            "`podman system service --time=0 unix://$XDG_RUNTIME_DIR/podman.sock &` and point DOCKER_HOST at it.",
        )
    if any(isinstance(item, FileNotFoundError) for item in chain) or "No such file" in text:
        reason = "the socket does not exist"
    elif any(isinstance(item, ConnectionRefusedError) for item in chain) or "refused" in text:
        reason = "the connection was refused"
    else:
        reason = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
    return ContainerEngineError(f"no container engine answers at {address} ({reason}).", hint=START_HINT)


class Engine:
    """One connection to the engine through the docker SDK, and what a run asks of it."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self._ids: dict[str, str] = {}
        self.address = engine_address()
        self._rootless: bool | None = None

    @property
    def rootless(self) -> bool:
        """Whether the engine maps the container's root to its user (asked once, when it matters: ~0.3 s)."""
        if self._rootless is None:
            try:
                options = self.client.info().get("SecurityOptions") or []
            except Exception:  # noqa: BLE001 - only decides the files' owner
                options = []
            self._rootless = any("rootless" in str(option) for option in options)
        return self._rootless

    @classmethod
    def connect(cls) -> Engine:
        """Connect (and check with a ping), or raise the ContainerError saying how to get an engine."""
        try:
            import docker
        except ImportError:  # pragma: no cover - a dependency of the package
            raise ContainerEngineError(
                "the `docker` Python package, which --executor container needs, is not installed.",
                hint="pip install 'docker>=7,<8'.",
            ) from None
        address = engine_address()
        try:
            # The API version from the ping's header: the SDK's own negotiation asks /version, which Podman
            # answers in ~0.5 s; the ping takes milliseconds (and is the reachability check anyway).
            probe = docker.from_env(version="1.24", timeout=CLIENT_TIMEOUT)  # no request yet
            answer = probe.api.get(probe.api.base_url + "/_ping")
            answer.raise_for_status()
            version = answer.headers.get("Api-Version") or "auto"
            probe.close()
            client = docker.from_env(version=version, timeout=CLIENT_TIMEOUT)
        except Exception as error:  # DockerException, requests' ConnectionError, OSError: all mean "not there"
            raise connect_error(address, error) from None
        return cls(client)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()

    def image_id(self, name: str, step: str) -> str:
        """The id (``sha256:...``) of image ``name``, pulled first if it is not here: what the cache signs."""
        from docker.errors import DockerException, ImageNotFound

        if name in self._ids:
            return self._ids[name]
        try:
            try:
                image = self.client.images.get(name)
            except ImageNotFound:
                self._pull(name, step)
                image = self.client.images.get(name)
        except ContainerError:
            raise
        except ImageNotFound:
            raise _image_error(step, name, "the pull found nothing") from None
        except DockerException as error:
            raise ContainerError(
                f"step {step!r}: the container engine failed to look up image {name!r}: {error}."
            ) from None
        self._ids[name] = image.id
        return str(image.id)

    def _pull(self, name: str, step: str) -> None:
        from docker.utils import parse_repository_tag

        repository, tag = parse_repository_tag(name)
        problem = None
        try:
            for line in self.client.api.pull(repository, tag=tag or "latest", stream=True, decode=True):
                if isinstance(line, dict) and line.get("error"):
                    problem = str(line["error"])
        except Exception as error:  # noqa: BLE001 - the registry's answer, whatever it is, goes to the user
            problem = str(error)
        if problem is not None:
            raise _image_error(step, name, problem)

    def remove_leftovers(self, is_live: Callable[[Path], bool]) -> list[str]:
        """Remove the containers of this host's runs that are over (killed kernels leave theirs behind)."""
        host = socket.gethostname()
        removed = []
        # ignore_removed: another run may remove its container between the listing and its inspection
        for container in self.client.containers.list(all=True, filters={"label": LABEL_RUN}, ignore_removed=True):
            labels = container.labels or {}
            run_dir = labels.get(LABEL_RUN_DIR)
            if labels.get(LABEL_HOST) != host or (run_dir and is_live(Path(run_dir))):
                continue
            with contextlib.suppress(Exception):
                container.remove(force=True)
                removed.append(container.name)
        return removed


def local_image_id(name: str) -> str | None:
    """The id of image ``name`` if an engine answers and has it here (never pulls, never raises): for ``why``."""
    try:
        engine = Engine.connect()
    except ContainerError:
        return None
    try:
        return str(engine.client.images.get(name).id)
    except Exception:  # noqa: BLE001 - not here: "why" then says the image is unknown
        return None
    finally:
        engine.close()


def _image_error(step: str, name: str, problem: str) -> ContainerImageError:
    return ContainerImageError(
        f"step {step!r}: image {name!r} is not on this machine and could not be pulled ({problem}).",
        hint="Build or load it here first (docker build / docker load / podman import), or make its registry "
        "reachable (docker login); --local-image IMAGE runs the step locally in another image than the export names.",
    )


# --- the pool --------------------------------------------------------------------------------------------------


@dataclass
class _Layout:
    """Where a job's parts go inside the container (SageMaker's paths; training jobs have their own)."""

    code: str
    inputs: str
    output: str


def layout(mode: str, step: str) -> _Layout:
    if mode == "training":
        return _Layout("/opt/ml/code", "/opt/ml/input/data", "/opt/ml/model")
    return _Layout("/opt/ml/processing/input/code", "/opt/ml/processing/input", f"/opt/ml/processing/output/{step}")


@dataclass
class _Job:
    id: str
    spec: dict[str, Any]
    stdout: int
    stderr: int
    container: Any = None
    killed: bool = False
    thread: threading.Thread | None = None


class ContainerPool(ProcessPool):
    """Runs each job in a container of its image; ``signal_job`` kills the container (nothing inside needs a
    graceful stop: its outputs are collected only after a clean exit)."""

    def __init__(
        self,
        selector: selectors.BaseSelector,
        on_exit: ExitCallback,
        engine: Engine,
        *,
        run_id: str,
        run_dir: Path,
    ) -> None:
        self._selector = selector
        self._on_exit = on_exit
        self._engine = engine
        self._labels = {LABEL_RUN: run_id, LABEL_RUN_DIR: str(run_dir), LABEL_HOST: socket.gethostname()}
        self._jobs: dict[str, _Job] = {}
        self._lock = threading.Lock()
        self._done: queue.SimpleQueue[tuple[str, int | None]] = queue.SimpleQueue()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        selector.register(self._wake_r, selectors.EVENT_READ, self._on_wake)

    def start(self, job: str, spec: dict[str, Any], stdout: int, stderr: int) -> None:
        state = _Job(job, spec, os.dup(stdout), os.dup(stderr))
        self._jobs[job] = state
        state.thread = threading.Thread(target=self._run, args=(state,), name=f"container {job}", daemon=True)
        state.thread.start()

    def signal_job(self, job: str, sig: int) -> None:
        state = self._jobs.get(job)
        if state is None:
            return
        with self._lock:
            state.killed = True
            container = state.container
        if container is not None:
            _kill(container)

    def _on_wake(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self._wake_r, 4096):
                pass
        while True:
            try:
                job, code = self._done.get_nowait()
            except queue.Empty:
                return
            self._jobs.pop(job, None)
            self._on_exit(job, code)

    def close(self) -> None:
        for state in list(self._jobs.values()):  # the run was abandoned with steps still running: stop them
            self.signal_job(state.id, 9)
        for state in list(self._jobs.values()):
            if state.thread is not None:
                state.thread.join(timeout=30)
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(self._wake_r)
        os.close(self._wake_r)
        os.close(self._wake_w)

    # --- on the job's thread -------------------------------------------------------------------------------------

    def _run(self, state: _Job) -> None:
        code: int | None = None
        spec = state.spec
        work = Path(spec["work_dir"])
        try:
            code = self._run_container(state, work)
        except ContainerError as error:  # ours: its message says what to fix
            code = _fail(spec, str(error))
        except Exception as error:  # noqa: BLE001 - the engine went away, the disk is full: the step fails
            code = _fail(spec, f"step {spec['step']!r}: the container engine failed: {error}")
        finally:
            container = state.container
            if container is not None:
                with contextlib.suppress(Exception):
                    container.remove(force=True)
            shutil.rmtree(work, ignore_errors=True)
            for fd in (state.stdout, state.stderr):
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._done.put((state.id, code))
            with contextlib.suppress(OSError):
                os.write(self._wake_w, b"x")

    def _run_container(self, state: _Job, work: Path) -> int | None:
        spec = state.spec
        where = layout(spec["mode"], spec["step"])
        volumes, output_dir, meta_dir = _prepare(spec, work, where)
        env = _environment(spec, where)
        options: dict[str, Any] = {
            "image": spec["image_id"],
            "command": ["python3", f"{where.code}/entry.py"],
            "environment": env,
            "volumes": volumes,
            "labels": {**self._labels, LABEL_STEP: spec["step"]},
            "network_mode": None if spec.get("network") else "none",
            "detach": True,
        }
        if spec.get("cpus"):
            options["nano_cpus"] = int(float(spec["cpus"]) * 1e9)
        if spec.get("memory"):
            options["mem_limit"] = spec["memory"]
            options["memswap_limit"] = spec["memory"]  # no swap beyond the limit: over it is over it
        if not self._engine.rootless and hasattr(os, "getuid") and os.getuid() != 0:
            options["user"] = f"{os.getuid()}:{os.getgid()}"  # outputs on the host stay the user's files
        container = self._engine.client.containers.create(**options)
        with self._lock:
            state.container = container
            killed = state.killed
        if killed:  # stopped before it started
            return None
        stream = self._engine.client.api.attach(container.id, stream=True, logs=True, demux=True)
        container.start()
        for out, err in stream:
            if out:
                _write_all(state.stdout, out)
            if err:
                _write_all(state.stderr, err)
        _until_exited(container)
        code = int(container.wait().get("StatusCode", -1))
        oom = bool((getattr(container, "attrs", None) or {}).get("State", {}).get("OOMKilled"))
        if state.killed:
            return code
        if code == 0:
            result = _collect(spec, output_dir, meta_dir)
        else:
            result = runtime.new_result()
            result["error"] = failure_message(spec, code, oom, _failure_text(meta_dir))
        runtime.write_json_atomic(spec["result_path"], result)
        return code


def _fail(spec: Mapping[str, Any], message: str) -> int:
    """Record the step as failed with ``message``; the exit code the engine sees."""
    result = runtime.new_result()
    result["error"] = message
    with contextlib.suppress(OSError):
        runtime.write_json_atomic(spec["result_path"], result)
    return 1


def _until_exited(container: Any, limit: float = 2.0) -> None:
    """Wait for the engine to see the container exited (its streams have closed): Podman's ``wait`` polls every
    ~0.5 s, a reload every 10 ms sees it sooner. ``wait`` then answers at once; the reload gives OOMKilled."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            container.reload()
            if container.attrs.get("State", {}).get("Status") in ("exited", "dead", "stopped"):
                return
        time.sleep(0.01)


def _kill(container: Any) -> None:
    with contextlib.suppress(Exception):  # not running any more, or already removed
        container.kill()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except BrokenPipeError:  # the run stopped reading (it is over): drop the rest
            return
        view = view[written:]


def _prepare(spec: Mapping[str, Any], work: Path, where: _Layout) -> tuple[dict[str, dict[str, str]], Path, Path]:
    """Lay the job out on the host (code, upstream outputs as links, empty output dirs) and say what mounts where."""
    shutil.rmtree(work, ignore_errors=True)
    code_dir, input_dir, output_dir, meta_dir = (work / part for part in ("code", "input", "output", "meta"))
    for directory in (code_dir, input_dir, output_dir, meta_dir):
        directory.mkdir(parents=True)
    for relative, content in spec["bundle"].items():
        target = (code_dir / relative).resolve()
        if not target.is_relative_to(code_dir.resolve()):  # tracked-file paths are checked already: belt and braces
            raise ContainerError(f"step {spec['step']!r}: the file {relative!r} would land outside its code.")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    env: dict[str, str] = {}
    runtime._prepare_inputs({"store": spec["store"], "input_dirs": spec["input_dirs"]}, str(input_dir), env)
    volumes = {str(code_dir): {"bind": where.code, "mode": "ro"}}
    for upstream in spec["input_dirs"]:
        volumes[str(input_dir / upstream)] = {"bind": f"{where.inputs}/{upstream}", "mode": "ro"}
    volumes.update(_data_volumes(spec, where))
    volumes[str(output_dir)] = {"bind": where.output, "mode": "rw"}
    volumes[str(meta_dir)] = {"bind": "/opt/ml/output", "mode": "rw"}
    if spec["mode"] == "training":
        config = work / "config"
        config.mkdir()
        hyperparameters = {f"jp_param_{name}": _text(value) for name, value in spec["parameters"].items()}
        (config / "hyperparameters.json").write_text(json.dumps(hyperparameters), encoding="utf-8")
        volumes[str(config)] = {"bind": "/opt/ml/input/config", "mode": "ro"}
    return volumes, output_dir, meta_dir


def _data_volumes(spec: Mapping[str, Any], where: _Layout) -> dict[str, dict[str, str]]:
    """Each declared ``--inputs`` path, read-only where the SageMaker job gets it: ``<inputs>/data-<n>/<name>``."""
    volumes = {}
    for item in spec.get("data_inputs", ()):
        if not os.path.exists(item["host"]):
            raise ContainerError(
                f"step {spec['step']!r}: its --inputs {item['host']} does not exist.",
                hint="Create it (or let an upstream step write it), or fix the path in --inputs.",
            )
        volumes[item["host"]] = {"bind": f"{where.inputs}/{item['input']}/{item['name']}", "mode": "ro"}
    return volumes


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _environment(spec: Mapping[str, Any], where: _Layout) -> dict[str, str]:
    env = {f"JP_PARAM_{name.upper()}": _text(value) for name, value in spec["parameters"].items()}
    env.update(spec.get("env", {}))
    env.update(
        PYTHONUNBUFFERED="1",  # the log streams live
        PYTHONDONTWRITEBYTECODE="1",  # the code is mounted read-only
        HOME="/tmp",
        JP_RESULT_FILE=f"/opt/ml/output/{RESULT_FILE}",
    )
    if spec["mode"] == "training":
        env["SM_MODEL_DIR"] = where.output
    return env


def _failure_text(meta_dir: Path) -> str | None:
    try:
        return (meta_dir / "failure").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def failure_message(spec: Mapping[str, Any], code: int, oom: bool, failure: str | None) -> str:
    """The step's error for a container that exited with ``code``: the step's own message where it left one."""
    step = spec["step"]
    if oom or (code == KILLED and spec.get("memory")):
        limit = spec.get("memory")
        return (
            f"step {step!r}: its container was killed for using too much memory"
            + (f" (--memory {limit})" if limit else "")
            + ". Give it more with --memory SIZE, or make the step use less."
        )
    if code == KILLED:
        return (
            f"step {step!r}: its container was killed (exit code {KILLED}: SIGKILL, e.g. the host ran out of memory)"
        )
    if failure:
        return failure.rstrip("\n")
    if code == 127:
        return f"step {step!r}: the image {spec.get('image')!r} has no `python3`, which a container step runs in."
    return f"step {step!r}: its container exited with code {code} (its log says why)"


def _collect(spec: Mapping[str, Any], output_dir: Path, meta_dir: Path) -> dict[str, Any]:
    """Move what a successful job wrote into the store: the output directory (script), else each value's file."""
    store = spec["store"]
    result = runtime.new_result()
    if spec["script"]:
        result["outputs"][runtime.SCRIPT_OUTPUT] = runtime.save_directory(str(output_dir), store)
        result["status"] = "succeeded"
        return result
    try:
        meta = json.loads((meta_dir / RESULT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        result["error"] = f"step {spec['step']!r}: the container exited 0 but left no result record"
        return result
    result["display"] = meta.get("display")
    result["unsaved"] = dict(meta.get("unsaved") or {})
    for name, info in sorted((meta.get("outputs") or {}).items()):
        fmt = info.get("format")
        if not (isinstance(name, str) and name.isidentifier() and fmt in ("npy", "cloudpickle", "pickle")):
            result["error"] = f"step {spec['step']!r}: the container reported an unusable output {name!r}"
            return result
        path = output_dir / f"{name}.{runtime.EXTENSIONS[fmt]}"
        result["outputs"][name] = store_file(path, fmt, str(info.get("type") or "object"), store)
    result["status"] = "succeeded"
    return result


def store_file(path: Path, fmt: str, type_: str, store_root: str) -> dict[str, Any]:
    """Put a serialized object into the content-addressed store: hashed as the runtime hashes what it writes, then
    moved in (the job's directories are inside the store, so no copy), copied only across file systems."""
    objects = os.path.join(store_root, "objects")
    os.makedirs(objects, exist_ok=True)
    hasher = runtime.new_hasher()
    size = 0
    with open(path, "rb") as source:
        for block in iter(lambda: source.read(16 * 1024 * 1024), b""):
            hasher.update(block)
            size += len(block)
    raw, temp = runtime.open_temp(objects, "wb", 0)
    raw.close()
    try:
        try:
            os.replace(path, temp)
        except OSError:  # another file system
            shutil.copyfile(path, temp)
        os.chmod(temp, 0o444)
        return runtime._commit(temp, hasher.hexdigest(), fmt, store_root, size, type_)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise
