"""Secrets never leave the process: step logs mask secret-looking environment values, the export refuses them.

The end-to-end tests put a secret into the environment (as a user's shell or kernel would have it), run steps that
print ``os.environ``, then read every file under the project directory (notebook, ``.pipelines/`` store, run
records, logs, events, exports): the secret's bytes must be nowhere, while a plain variable's value printed the
same way must be there (else the test would pass for the wrong reason: nothing captured at all).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import boto3
import nbformat
import pytest
from nbclient import NotebookClient

from jupyter_pipelines.authoring import pipeline_from_notebook
from jupyter_pipelines.engine.events import Event, event_to_json
from jupyter_pipelines.engine.redact import MASK, Redactor, StreamRedactor, is_secret_name, secret_values
from jupyter_pipelines.sagemaker import ExportConfig, build_definition
from jupyter_pipelines.sagemaker.errors import ExportError
from jupyter_pipelines.sagemaker.promote import PromoteOptions, promote

from .aws_support import BUCKET, REGION, ROLE_ARN, MotoServer
from .export_support import CONFIG, build
from .notebooks import write_notebook
from .test_engine_support import pipeline, run, step

SECRET_NAME = "JP_TEST_API_TOKEN"
PLAIN_NAME = "JP_TEST_GREETING"

# prints the whole environment, then the secret alone split over two flushed writes (two reads of the pipe)
PRINTS_ENVIRONMENT = (
    "import os, sys, time\n"
    "print(dict(os.environ))\n"
    f"_token = os.environ[{SECRET_NAME!r}]  # private: not a step output, so never stored\n"
    "sys.stdout.write('token=' + _token[:7]); sys.stdout.flush(); time.sleep(0.2)\n"
    "sys.stdout.write(_token[7:] + '\\n'); sys.stdout.flush()\n"
    f"print(os.environ[{SECRET_NAME!r}], file=sys.stderr)\n"
    "seen = len(os.environ)"
)


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    secret = "s3cr3t-" + secrets.token_hex(12)
    plain = "plain-" + secrets.token_hex(12)
    monkeypatch.setenv(SECRET_NAME, secret)
    monkeypatch.setenv(PLAIN_NAME, plain)
    return secret, plain


def files_holding(root: Path, value: str) -> list[Path]:
    needle = value.encode()
    return [p for p in sorted(root.rglob("*")) if p.is_file() and needle in p.read_bytes()]


# ---- the rules ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("API_TOKEN", True),
        ("aws_secret_access_key", True),
        ("DB_Password", True),
        ("OPENAI_API_KEY", True),
        ("HOME", False),
        ("PATH", False),
        ("JP_TEST_GREETING", False),
    ],
)
def test_secret_looking_names(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret


def test_short_values_and_plain_words_are_not_masked() -> None:
    environ = {"A_KEY": "abc", "B_TOKEN": "true", "C_SECRET": "None", "D_PASSWORD": "hunter22", "HOME": "/root/x"}
    assert secret_values(environ=environ) == ("hunter22",)
    assert secret_values([("MY_TOKEN", "tok-1234"), ("LEVEL", "secretive")], environ={}) == ("tok-1234",)


def test_redactor_masks_longest_first() -> None:
    redact = Redactor(["abcd", "abcdefgh"])
    assert redact("x=abcdefgh y=abcd z=abc") == f"x={MASK} y={MASK} z=abc"
    assert Redactor([])("abcd") == "abcd" and not Redactor([]).active


def test_a_secret_split_across_any_two_chunks_is_masked() -> None:
    secret = "tok-0123456789"
    text = f"before {secret} between {secret}\nafter"
    for cut in range(len(text) + 1):
        stream = StreamRedactor([secret])
        out = stream.feed(text[:cut]) + stream.feed(text[cut:]) + stream.flush()
        assert out == f"before {MASK} between {MASK}\nafter", cut


def test_output_without_a_possible_secret_start_is_not_held_back() -> None:
    stream = StreamRedactor(["tok-0123456789"])
    assert stream.feed("progress 10%\n") == "progress 10%\n"
    assert stream.feed("value to") == "value "  # 'to' may begin the secret: held back
    assert stream.feed("day\n") == "today\n"


# ---- the engine ---------------------------------------------------------------------------------------------------


def test_engine_logs_and_events_mask_the_environment_and_env_flag_secrets(
    tmp_path: Path, secret_env: tuple[str, str]
) -> None:
    secret, plain = secret_env
    password = "pw-" + secrets.token_hex(8)
    code = f"import os\nprint(os.environ[{SECRET_NAME!r}], os.environ[{PLAIN_NAME!r}], os.environ['DB_PASSWORD'])"
    for executor in ("process", "kernel"):
        workdir = tmp_path / executor
        workdir.mkdir()
        show = step("show", code, env=(("DB_PASSWORD", password),), executor=executor)
        options = {"kernel_namespace": {}} if executor == "kernel" else {}
        ran = run(workdir, pipeline(show), **options)
        assert ran.result.status == "succeeded", ran.result.steps["show"].error
        logged = "".join(e.text for e in ran.events if e.type == "step_log")  # type: ignore[union-attr]
        assert logged == f"{MASK} {plain} {MASK}\n", executor
        assert files_holding(workdir, secret) == [], executor
        logs = [path for path in files_holding(workdir, plain) if path.parent.name == "logs"]
        assert logs, executor
        assert files_holding(workdir, password) == [], executor  # logs, events, run records, cache entries


def test_a_failing_steps_error_masks_secrets_in_records_and_events(
    tmp_path: Path, secret_env: tuple[str, str]
) -> None:
    """A traceback quoting a secret is user text like a log line: the error in events and run records is masked."""
    secret, _ = secret_env
    password = "pw-" + secrets.token_hex(8)
    code = (
        f"import os\nraise ValueError('bad login ' + os.environ[{SECRET_NAME!r}] + ' ' + os.environ['DB_PASSWORD'])"
    )
    ran = run(tmp_path, pipeline(step("login", code, env=(("DB_PASSWORD", password),), retry=1)))
    error = ran.result.steps["login"].error or ""
    assert ran.result.status == "failed" and f"bad login {MASK} {MASK}" in error, error
    failures = [e for e in ran.events if e.type == "step_failed"]
    assert len(failures) == 2 and all(f"bad login {MASK} {MASK}" in e.error for e in failures)  # type: ignore[union-attr]
    assert files_holding(tmp_path, secret) == [] and files_holding(tmp_path, password) == []


def test_cli_run_and_export_write_no_secret_anywhere(tmp_path: Path, secret_env: tuple[str, str]) -> None:
    secret, plain = secret_env
    project = tmp_path / "project"
    notebook = write_notebook(
        project / "flow.ipynb", [f"%%step show\n{PRINTS_ENVIRONMENT}", "%%step after\nn = seen"]
    )
    done = subprocess.run(
        [sys.executable, "-m", "jupyter_pipelines", "run", "-v", str(notebook)],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ.copy(),
    )
    assert done.returncode == 0, done.stderr
    assert secret not in done.stdout + done.stderr and plain in done.stderr
    (log,) = project.glob(".pipelines/*/runs/*/logs/show.stdout")
    assert f"token={MASK}\n" in log.read_text()  # the secret written in two pieces was masked whole
    exported = subprocess.run(
        [sys.executable, "-m", "jupyter_pipelines", "export", str(notebook), "-o", str(project / "out" / "p.json"),
         "--role-arn", CONFIG.role_arn, "--bucket", CONFIG.bucket, "--region", CONFIG.region],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert exported.returncode == 0, exported.stderr
    assert (project / "out" / "p.json").is_file()
    assert files_holding(project, secret) == []
    assert any(path.name.startswith("stdout") or "log" in str(path) for path in files_holding(project, plain))


def test_a_kernel_run_writes_no_secret_into_the_saved_notebook_or_the_store(
    tmp_path: Path, secret_env: tuple[str, str]
) -> None:
    """The kernel inherits the environment (as from the shell that started JupyterLab); the executed notebook is
    saved as JupyterLab would save it, outputs included. (``--executor kernel`` steps are covered at the engine
    level above: executing such a step cell in a real kernel hangs, on the committed code too.)"""
    secret, plain = secret_env
    path = write_notebook(
        tmp_path / "flow.ipynb",
        [
            "%load_ext jupyter_pipelines",
            f"%%step show\n{PRINTS_ENVIRONMENT}",
            "%pipeline run --wait",
        ],
    )
    notebook = nbformat.read(str(path), as_version=4)
    NotebookClient(notebook, timeout=120, resources={"metadata": {"path": str(tmp_path)}}).execute()
    nbformat.write(notebook, str(path))
    outputs = "".join(o.get("text", "") for cell in notebook.cells for o in cell.get("outputs", []))
    assert plain in outputs and MASK in outputs
    assert files_holding(tmp_path, secret) == []
    assert path in files_holding(tmp_path, plain)


def test_promote_sends_no_secret_to_s3_the_definition_or_the_events(
    aws: MotoServer, tmp_path: Path, secret_env: tuple[str, str]
) -> None:
    """Against moto's endpoint: every S3 object uploaded, the definition SageMaker holds, the follow's events."""
    secret, _ = secret_env
    project = tmp_path / "project"
    notebook = write_notebook(
        project / "flow.ipynb", [f"%%step show\n{PRINTS_ENVIRONMENT}", "%%step after\nn = seen"]
    )
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    config = ExportConfig(role_arn=ROLE_ARN, bucket=BUCKET, region=REGION, source_dir=project)
    events: list[Event] = []
    promoted = promote(
        pipeline_from_notebook(notebook),
        PromoteOptions(config=config, wait=True, max_attempts=1),
        publish=events.append,
    )
    assert promoted.status == "succeeded" and promoted.uploaded
    objects = s3.list_objects_v2(Bucket=BUCKET)["Contents"]
    assert len(objects) == len(promoted.uploaded)
    for item in objects:
        assert secret.encode() not in s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read(), item["Key"]
    described = boto3.client("sagemaker").describe_pipeline(PipelineName=promoted.pipeline_name)
    assert '"Name": "show"' in described["PipelineDefinition"]  # the definition is really there
    assert secret not in described["PipelineDefinition"]
    assert events and secret not in "".join(event_to_json(event) for event in events)
    assert files_holding(project, secret) == []


# ---- the export ---------------------------------------------------------------------------------------------------


def test_export_refuses_a_secret_looking_env_and_says_how_to_pass_it() -> None:
    pipe = build("demo", "%%step call --env SERVICE_API_TOKEN=tok-12345678 --env MODE=fast\nx = 1")
    with pytest.raises(ExportError) as raised:
        build_definition(pipe, CONFIG)
    message = str(raised.value)
    assert "--env SERVICE_API_TOKEN=..." in message and "Secrets Manager" in message
    assert "tok-12345678" not in message
    plain = build("demo", "%%step call --env MODE=fast\nx = 1")
    assert '"MODE": "fast"' in build_definition(plain, CONFIG).text
