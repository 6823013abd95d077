"""``%pipeline config`` stores the notebook's export settings in its metadata (``metadata.jupyter_pipelines``).

With a frontend that answers the settings comm (JupyterLab's extension) the kernel only sends it the settings; with
none (nbclient, a console, these tests' plain client) it keeps them and writes them into the notebook file it knows.
The browser test (tests/browser/test_settings_e2e.py) covers the JupyterLab side.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest

from jupyter_pipelines.authoring.notebook import read_settings
from jupyter_pipelines.errors import PipelineError
from jupyter_pipelines.settings_sync import COMM_TARGET, check_settings, clean_settings, write_notebook_settings

from .kernel import Kernel
from .notebooks import write_notebook

ROLE = "arn:aws:iam::123456789012:role/R"
CONFIG = f"%pipeline config --role-arn {ROLE} --bucket bucket-one --region us-east-1"
EXPECTED = {"role_arn": ROLE, "bucket": "bucket-one", "region": "us-east-1"}
CELLS = ["%load_ext jupyter_pipelines", "%%step one\nx = 1", CONFIG]


def _notebook(tmp_path: Path, name: str = "flow.ipynb") -> Path:
    path = write_notebook(tmp_path / name, CELLS)
    notebook = nbformat.read(str(path), as_version=4)
    notebook.metadata["language_info"] = {"name": "python"}
    notebook.metadata["other_tool"] = {"keep": [1, 2, 3]}
    nbformat.write(notebook, str(path))
    return path


def _attach_to(kernel: Kernel, path: Path) -> None:
    # Jupyter Server tells the kernel its notebook through JPY_SESSION_NAME; set it as the server would.
    kernel.execute(f"import os; os.environ['JPY_SESSION_NAME'] = {path.name!r}")
    assert kernel.execute("%load_ext jupyter_pipelines").status == "ok"


def _comm_id(kernel: Kernel) -> str:
    msg_id = kernel.client.comm_info(target_name=COMM_TARGET)
    comms = _shell_reply(kernel, msg_id)["content"]["comms"]
    assert len(comms) == 1
    return str(next(iter(comms)))


def _send_comm(kernel: Kernel, kind: str, content: dict[str, Any]) -> None:
    """Send a comm message from this client, as a frontend would."""
    kernel.client.shell_channel.send(kernel.client.session.msg(kind, content))


def test_a_frontend_without_the_extension_gets_the_settings_written_into_the_file(
    kernel: Kernel, tmp_path: Path
) -> None:
    """In a Jupyter Server session the kernel first sends the settings to the frontend (which may answer only after
    the queued cells); a frontend that closes the comm (JupyterLab does, for a target it does not know) has no
    extension, so the kernel writes the file then, and from then on at once."""
    path = _notebook(tmp_path)
    before = nbformat.read(str(path), as_version=4)
    _attach_to(kernel, path)
    configured = kernel.execute(CONFIG)
    assert configured.status == "ok", configured.text
    assert "bucket: bucket-one" in configured.stdout and "sent to the notebook's frontend" in configured.stdout
    assert read_settings(path) == {}  # not yet: a frontend with the extension would take them
    _send_comm(kernel, "comm_close", {"comm_id": _comm_id(kernel), "data": {}})
    assert kernel.execute("1").status == "ok"  # the kernel has handled the close by the time this runs
    after = nbformat.read(str(path), as_version=4)
    assert after.metadata["jupyter_pipelines"] == EXPECTED
    # everything else is as it was
    assert after.cells == before.cells
    assert {k: v for k, v in after.metadata.items() if k != "jupyter_pipelines"} == dict(before.metadata)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".flow.ipynb")] == []  # no temporary left
    # a later change goes straight into the file, merged with what it has
    later = kernel.execute("%pipeline config --prefix team/churn")
    assert later.status == "ok" and "no frontend answered" in later.stdout and str(path.resolve()) in later.stdout
    assert read_settings(path) == {**EXPECTED, "prefix": "team/churn"}
    # and the CLI sees them with no flags
    exported = subprocess.run(
        [sys.executable, "-m", "jupyter_pipelines", "export", str(path), "-o", str(tmp_path / "x.json")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert exported.returncode == 0, exported.stderr
    assert json.loads((tmp_path / "x.json").read_text())["Steps"]


def test_a_late_answer_keeps_the_settings_sent_before_it_and_the_file_alone(kernel: Kernel, tmp_path: Path) -> None:
    """ "Run All": the config cell runs before the extension's answer is processed. The kernel sends the settings
    and waits; the answer (the notebook as it was when the frontend said hello) then counts with them applied."""
    path = _notebook(tmp_path)
    _attach_to(kernel, path)
    mtime = path.stat().st_mtime_ns
    assert "sent to the notebook's frontend" in kernel.execute(CONFIG).stdout
    _send_comm(
        kernel,
        "comm_msg",
        {"comm_id": _comm_id(kernel), "data": {"type": "notebook", "settings": {"prefix": "team/x"}}},
    )
    shown = kernel.execute("%pipeline config").stdout
    assert "prefix: team/x" in shown and "bucket: bucket-one" in shown, shown
    configured = kernel.execute("%pipeline config --region eu-west-1")
    assert "by JupyterLab" in configured.stdout, configured.text  # answered: the frontend owns the notebook now
    assert path.stat().st_mtime_ns == mtime and read_settings(path) == {}  # the kernel never wrote the file


def test_bad_values_fail_at_once_with_the_exporters_message(kernel: Kernel, tmp_path: Path) -> None:
    path = _notebook(tmp_path)
    _attach_to(kernel, path)
    for flags, message in (
        ("--bucket X!", "--bucket 'X!' is not a valid S3 bucket name"),
        ("--role-arn not-an-arn", "is not a valid IAM role ARN"),
        ("--region mars", "is not a valid AWS region"),
        ("--prefix /bad/", "is not a valid S3 key prefix"),
        ("--name under_score", "is not a valid SageMaker pipeline name"),
    ):
        failed = kernel.execute(f"%pipeline config {flags}")
        assert failed.status == "error" and message in failed.error, failed.text
        assert "Traceback" not in failed.error
    assert "jupyter_pipelines" not in nbformat.read(str(path), as_version=4).metadata
    assert "no settings yet." in kernel.execute("%pipeline config").stdout


def test_without_a_notebook_file_the_kernel_keeps_them(kernel: Kernel) -> None:
    kernel.execute("%load_ext jupyter_pipelines")
    configured = kernel.execute(CONFIG)
    assert configured.status == "ok" and "kept in this kernel only" in configured.stdout, configured.text
    assert "region: us-east-1" in kernel.execute("%pipeline config").stdout


def _shell_reply(kernel: Kernel, msg_id: str) -> dict[str, Any]:
    while True:
        reply: dict[str, Any] = kernel.client.get_shell_msg(timeout=10)
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply


def test_with_a_frontend_the_kernel_leaves_the_file_alone(kernel: Kernel, tmp_path: Path) -> None:
    """Answer the settings comm as the labextension does: the notebook's (unsaved) settings win over the file's."""
    path = _notebook(tmp_path)
    write_notebook_settings(path, {"bucket": "bucket-on-disk"})
    _attach_to(kernel, path)
    assert "bucket: bucket-on-disk" in kernel.execute("%pipeline config").stdout  # nothing answered yet
    msg_id = kernel.client.comm_info(target_name=COMM_TARGET)
    comms = _shell_reply(kernel, msg_id)["content"]["comms"]
    assert len(comms) == 1
    comm_id = next(iter(comms))
    open_settings = {"bucket": "bucket-in-lab", "region": "eu-west-1", "secret": "never"}
    message = kernel.client.session.msg(
        "comm_msg", {"comm_id": comm_id, "data": {"type": "notebook", "settings": open_settings}}
    )
    kernel.client.shell_channel.send(message)
    mtime = path.stat().st_mtime_ns
    shown = kernel.execute("%pipeline config").stdout
    assert "bucket: bucket-in-lab" in shown and "region: eu-west-1" in shown and "secret" not in shown, shown
    configured = kernel.execute(f"%pipeline config --role-arn {ROLE}")
    assert configured.status == "ok" and "by JupyterLab" in configured.stdout, configured.text
    assert f"role_arn: {ROLE}" in configured.stdout and "bucket: bucket-in-lab" in configured.stdout
    assert path.stat().st_mtime_ns == mtime and read_settings(path) == {"bucket": "bucket-on-disk"}


def test_only_the_five_settings_are_accepted(tmp_path: Path) -> None:
    assert clean_settings({"bucket": "b", "aws_secret_access_key": "x", "region": 3, "name": ""}) == {"bucket": "b"}
    assert clean_settings(["bucket"]) == {}
    with pytest.raises(PipelineError, match="unknown export setting"):
        check_settings({"aws_secret_access_key": "x"})
    path = _notebook(tmp_path)
    write_notebook_settings(path, {"bucket": "b", "token": "t"})
    assert nbformat.read(str(path), as_version=4).metadata["jupyter_pipelines"] == {"bucket": "b"}
