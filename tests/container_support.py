"""Container engines for the container executor's tests: each test runs against Podman's Docker-compatible service
and against Docker Engine, both started for the session on private sockets (Podman with
``scripts/containers.conf``; dockerd with its own data root, the test images imported from the rootfs tarball), or
only against the engine ``DOCKER_HOST`` names when it is set.

Where no engine can be had, the container tests are skipped with one reason, "no container engine", and the rest
of the suite runs; ``scripts/test.sh`` sets ``JP_REQUIRE_CONTAINERS=1`` (its set-up installed both engines), which
makes a missing engine a failure, so CI really runs them.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

IMAGE = "jupyter-pipelines-test:py3"  # python3 + numpy (Debian bookworm), JP_TEST_IMAGE=main
ALT_IMAGE = "jupyter-pipelines-test:py3-alt"  # the same files, another image id, JP_TEST_IMAGE=alt
REPO = Path(__file__).resolve().parent.parent
TARBALL = REPO / ".cache" / "containers" / "rootfs-bookworm-py3.tar"  # made by scripts/setup-containers.sh
NO_ENGINE = "skipped: no container engine"


def _client(address: str) -> Any:
    import docker

    client = docker.DockerClient(base_url=address, timeout=60)
    client.ping()
    return client


def _try(address: str) -> Any | None:
    try:
        return _client(address)
    except Exception:  # noqa: BLE001 - not there: try the next way
        return None


def _start_podman(directory: Path) -> tuple[subprocess.Popen[bytes], str] | None:
    podman = shutil.which("podman")
    if podman is None:
        return None
    address = f"unix://{directory / 'podman.sock'}"
    env = dict(os.environ)
    env.setdefault("CONTAINERS_CONF", str(REPO / "scripts" / "containers.conf"))
    log = open(directory / "service.log", "wb")  # noqa: SIM115 - the service's whole life
    process = subprocess.Popen(
        [podman, "system", "service", "--time=0", address],
        env=env,
        cwd=directory,  # conmon drops an empty "oom" file in its working directory when a container is OOM-killed
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    log.close()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and process.poll() is None:
        if _try(address) is not None:
            return process, address
        time.sleep(0.1)
    _stop(process)
    return None


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _start_dockerd(directory: Path) -> tuple[subprocess.Popen[bytes], str] | None:
    """Docker Engine on a private socket and data root (root only: dockerd needs it), with the test images
    imported from the rootfs tarball ``scripts/setup-containers.sh`` keeps (no registry)."""
    dockerd = shutil.which("dockerd")
    if dockerd is None or os.getuid() != 0 or not TARBALL.is_file():
        return None
    address = f"unix://{directory / 'docker.sock'}"
    log = open(directory / "dockerd.log", "wb")  # noqa: SIM115 - the daemon's whole life
    process = subprocess.Popen(
        [dockerd, "--host", address, "--data-root", str(directory / "data"), "--exec-root", str(directory / "x"),
         "--pidfile", str(directory / "dockerd.pid"), "--iptables=false", "--bridge=none"],
        cwd=directory, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
    )  # fmt: skip
    log.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        client = _try(address)
        if client is not None:
            for image, variant in ((IMAGE, "main"), (ALT_IMAGE, "alt")):
                repository, tag = image.split(":")
                changes = [f"ENV JP_TEST_IMAGE={variant}", 'CMD ["python3"]']
                client.api.import_image(src=str(TARBALL), repository=repository, tag=tag, changes=changes)
            client.close()
            return process, address
        time.sleep(0.2)
    _stop(process)
    return None


@dataclass
class _Found:
    kind: str
    address: str
    service: subprocess.Popen[bytes] | None
    directory: Path


# The engines every container test runs against: Podman's Docker-compatible service and Docker Engine, each
# started for the session on a private socket; or, when DOCKER_HOST is set, just the engine it names.
ENGINES: tuple[str, ...] = ("DOCKER_HOST",) if os.environ.get("DOCKER_HOST") else ("podman", "docker")
_found: dict[str, _Found | None] = {}  # filled by find_engine(), once per kind and session


def find_engine(kind: str | None = None) -> _Found | None:
    """An engine of ``kind`` (one of :data:`ENGINES`; None: the first that can be had), started if need be."""
    if kind is None:
        return next((found for k in ENGINES if (found := find_engine(k)) is not None), None)
    if kind in _found:
        return _found[kind]
    directory = Path(tempfile.mkdtemp(prefix="jp-engine-"))
    found = None
    if kind == "DOCKER_HOST":
        address = os.environ["DOCKER_HOST"]
        if (client := _try(address)) is not None:
            client.close()
            found = _Found(kind, address, None, directory)
    else:
        started = _start_podman(directory) if kind == "podman" else _start_dockerd(directory)
        if started is not None:
            found = _Found(kind, started[1], started[0], directory)
            atexit.register(_stop, started[0])  # the fixture stops it; this, if the session ends otherwise
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    if found is None:
        shutil.rmtree(directory, ignore_errors=True)
    _found[kind] = found
    return found


def _no_engine(reason: str, *, module: bool = False) -> None:
    """Skip with one line; but where the set-up installed an engine (``scripts/test.sh`` says so with
    ``JP_REQUIRE_CONTAINERS=1``), a missing one is a failure: CI must really run these tests."""
    if os.environ.get("JP_REQUIRE_CONTAINERS") == "1":
        pytest.fail(f"{reason}, but scripts/setup-containers.sh should have provided it (JP_REQUIRE_CONTAINERS=1)")
    pytest.skip(reason, allow_module_level=module)


def skip_without_engine() -> None:
    """At a test module's top: skip the whole module, with one line, where no engine can be had."""
    if find_engine() is None:
        _no_engine(NO_ENGINE, module=True)


@pytest.fixture(scope="session", params=ENGINES)
def container_engine(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A docker SDK client of one engine (each test runs once per engine), with ``DOCKER_HOST`` set to it."""
    found = find_engine(request.param)
    if found is None:
        _no_engine(f"{NO_ENGINE} ({request.param})")
        return
    saved = os.environ.get("DOCKER_HOST")
    os.environ["DOCKER_HOST"] = found.address
    client = _client(found.address)
    try:
        for image in (IMAGE, ALT_IMAGE):
            try:
                client.images.get(image)
            except Exception:  # noqa: BLE001
                _no_engine(f"skipped: the test image {image} is missing: run `bash scripts/setup-containers.sh`")
        yield client
    finally:
        client.close()
        if saved is None:
            os.environ.pop("DOCKER_HOST", None)
        else:
            os.environ["DOCKER_HOST"] = saved
        if found.service is not None:
            _stop(found.service)
            _found.pop(found.kind, None)
        shutil.rmtree(found.directory, ignore_errors=True)


def containers_of(client: Any, label: str, value: str | None = None) -> list[Any]:
    """The containers (running or not) with this label (and value)."""
    selector = label if value is None else f"{label}={value}"
    return list(client.containers.list(all=True, filters={"label": selector}, ignore_removed=True))
