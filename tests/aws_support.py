"""A real local AWS endpoint for the promotion tests: moto's server on 127.0.0.1, reached by boto3 over HTTP.

One server per test session (start-up ≈ 1 s); every test that takes the ``aws`` fixture starts from an empty
account (``POST /moto-api/reset``) with the standard credential chain pointed at it through the environment, the
way a user's shell would (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID`` ...), so the code under test never knows it
talks to moto.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/SageMakerRole"
SCHEDULER_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/SchedulerRole"
BUCKET = "jp-test-bucket"
# Obviously fake credentials: moto accepts any. Never real ones in a file.
ACCESS_KEY = "AKIATESTTESTTESTTEST"
SECRET_KEY = "moto-test-secret-not-a-real-one"


@dataclass(frozen=True)
class MotoServer:
    endpoint: str
    process: subprocess.Popen[bytes]
    log: Path

    def env(self) -> dict[str, str]:
        """The environment a shell pointed at this endpoint has (what the tests set, and a kernel inherits)."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            # no ~/.aws files of the machine may change what the tests see
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST", data=b"")
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_moto(log_dir: Path) -> MotoServer:
    """Start ``python -m moto.server`` on a free loopback port and wait until it answers."""
    port = _free_port()
    log = log_dir / "moto-server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1) as response:
                response.read()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                tail = log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"moto's server did not start: {tail}") from None
            time.sleep(0.1)
    return MotoServer(endpoint, process, log)


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    server = start_moto(tmp_path_factory.mktemp("moto"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def aws(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    """An empty moto account, with this process's credential chain pointed at it."""
    moto_server.reset()
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in moto_server.env().items():
        monkeypatch.setenv(name, value)
    return moto_server
