"""A container engine for the container executor's tests: the one ``DOCKER_HOST`` names, else Docker's socket, else
Podman's Docker-compatible service started for the session on a private socket (``scripts/containers.conf``).

Where none can be had, every container test is skipped with one reason, "no container engine", and the rest of
the suite runs. ``scripts/setup-containers.sh`` (run by ``scripts/setup.sh``) installs Podman and builds the test
images, so CI always has them.
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


@dataclass
class _Found:
    address: str
    service: subprocess.Popen[bytes] | None
    directory: Path


_found: list[_Found | None] = []  # filled by find_engine(), once per session


def find_engine() -> _Found | None:
    """The engine's address (``DOCKER_HOST``, Docker's socket, else a Podman service started now), or None."""
    if _found:
        return _found[0]
    directory = Path(tempfile.mkdtemp(prefix="jp-engine-"))
    saved = os.environ.get("DOCKER_HOST")
    address = saved or "unix:///var/run/docker.sock"
    found = None
    client = _try(address)
    if client is not None:
        client.close()
        found = _Found(address, None, directory)
    elif saved is None:
        started = _start_podman(directory)
        if started is not None:
            found = _Found(started[1], started[0], directory)
            atexit.register(_stop, started[0])  # the fixture stops it; this, if the session ends otherwise
    if found is None:
        shutil.rmtree(directory, ignore_errors=True)
    _found.append(found)
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


@pytest.fixture(scope="session")
def container_engine() -> Iterator[Any]:
    """A docker SDK client of the engine, with ``DOCKER_HOST`` set to it for the session's runs."""
    found = find_engine()
    if found is None:
        _no_engine(NO_ENGINE)
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
        shutil.rmtree(found.directory, ignore_errors=True)


def containers_of(client: Any, label: str, value: str | None = None) -> list[Any]:
    """The containers (running or not) with this label (and value)."""
    selector = label if value is None else f"{label}={value}"
    return list(client.containers.list(all=True, filters={"label": selector}))
