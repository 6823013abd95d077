"""`%pipeline promote` in a real kernel, the widget's Promote action, and Stop during a followed cloud run."""

from __future__ import annotations

import datetime
import json
import time
from pathlib import Path

import boto3
from botocore.stub import Stubber

from jupyter_pipelines.engine.events import Event, RunFinished, RunNote, RunStarted
from jupyter_pipelines.model import Pipeline, Step
from jupyter_pipelines.sagemaker.aws import connect
from jupyter_pipelines.sagemaker.cloud_run import follow_in_background
from jupyter_pipelines.sagemaker.promote import Promoted
from jupyter_pipelines.session import LiveSession

from .aws_support import ACCESS_KEY, BUCKET, REGION, ROLE_ARN, SECRET_KEY, MotoServer
from .kernel import Kernel
from .notebooks import write_notebook

FLAGS = f"--role-arn {ROLE_ARN} --bucket {BUCKET} --region {REGION}"


def test_promote_magic_end_to_end(aws: MotoServer, kernel: Kernel, tmp_path: Path) -> None:
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
    kernel.execute("%load_ext jupyter_pipelines")
    kernel.execute("%%parameters\nrows: int = 2", cell_id="p")
    assert kernel.execute("%%step grow\nitems = list(range(rows))", cell_id="a").status == "ok"
    waited = kernel.execute(f"%pipeline promote {FLAGS} -p rows=4 --wait")
    assert waited.status == "ok", waited.text
    assert "created pipeline notebook" in waited.stdout and "the execution succeeded" in waited.stdout
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    arn = sagemaker.list_pipeline_executions(PipelineName="notebook")["PipelineExecutionSummaries"][0]
    sent = sagemaker.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn["PipelineExecutionArn"])
    assert sent["PipelineParameters"] == [{"Name": "rows", "Value": "4"}]

    again = kernel.execute(f"%pipeline promote {FLAGS} --no-start")
    assert again.status == "ok" and "uploaded 0 objects" in again.stdout and "updated pipeline" in again.stdout

    bad = kernel.execute(f"%pipeline promote {FLAGS} --only nope")
    assert bad.status == "error" and "--only names no step 'nope'" in bad.error
    assert "Traceback" not in bad.error and "File " not in bad.error
    missing = kernel.execute("%pipeline promote --unschedule --region us-east-1")
    assert missing.status == "error" and "has no schedule" in missing.error


def test_config_remembers_the_profile_never_credentials(aws: MotoServer, kernel: Kernel, tmp_path: Path) -> None:
    path = write_notebook(tmp_path / "nb.ipynb", ["%%step one\nx = 1"])
    kernel.execute(f"__session__ = {str(path)!r}\n%load_ext jupyter_pipelines")
    shown = kernel.execute("%pipeline config --profile ml-dev --region eu-west-1")
    assert shown.status == "ok", shown.text
    assert "profile: ml-dev" in shown.stdout
    settings = json.loads(path.read_text())["metadata"]["jupyter_pipelines"]
    assert settings == {"profile": "ml-dev", "region": "eu-west-1"}


def test_widget_promote_remembers_settings_and_promotes_in_the_background(
    aws: MotoServer, kernel: Kernel, tmp_path: Path
) -> None:
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
    path = write_notebook(tmp_path / "nb.ipynb", ["%%step one\nx = 1"])
    kernel.execute(f"__session__ = {str(path)!r}\n%load_ext jupyter_pipelines")
    cell_id = json.loads(path.read_text())["cells"][0]["id"]  # the file's cell, or it would be a deleted one
    assert kernel.execute("%%step one\nx = 1", cell_id=cell_id).status == "ok"
    values = {"role_arn": ROLE_ARN, "bucket": BUCKET, "region": REGION, "prefix": "team/nb", "profile": ""}
    code = (
        "import jupyter_pipelines\n"
        "s = _jupyter_pipelines_session\n"
        "notes = []\n"
        "w = jupyter_pipelines.current()\n"
        "s.subscribers.append(lambda e: notes.append(getattr(e, 'text', None)))\n"
        f"print(w.actions.promote({values!r}))\n"
        "s._promoting.join(60)\n"
        "s.cloud is not None and s.cloud.thread.join(60)\n"
        "print([n for n in notes if n])"
    )
    reply = kernel.execute(code)
    assert reply.status == "ok", reply.text
    assert "promoting 'nb' to SageMaker (us-east-1)" in reply.stdout
    assert "created pipeline nb" in reply.stdout and "step statuses are unavailable" in reply.stdout
    settings = json.loads(path.read_text())["metadata"]["jupyter_pipelines"]
    assert settings == {"role_arn": ROLE_ARN, "bucket": BUCKET, "region": REGION, "prefix": "team/nb"}
    keys = [o["Key"] for o in boto3.client("s3", region_name=REGION).list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert keys and all(key.startswith("team/nb/code/") for key in keys)
    for text in (path.read_text(), *(p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file())):
        assert SECRET_KEY not in text and ACCESS_KEY not in text

    failed = kernel.execute(
        "notes.clear()\n"
        "w.actions.promote({'bucket': 'no-such-bucket-here'})\n"
        "s._promoting.join(60)\n"
        "print([n for n in notes if n])"
    )
    assert "promotion failed: the S3 bucket does not exist" in failed.stdout


def test_stop_during_a_cloud_run_stops_the_execution(aws: MotoServer, tmp_path: Path) -> None:
    # Stubbed SageMaker: moto's executions are "Succeeded" at once and its StopPipelineExecution answers HTTP 500,
    # so a run that is still executing when Stop is pressed only exists with stubbed answers.
    arn = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/flow/execution/abc123"
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    clients = connect(REGION, max_attempts=1)
    described = {"PipelineExecutionArn": arn, "CreationTime": now, "LastModifiedTime": now}
    executing = {**described, "PipelineExecutionStatus": "Executing"}
    stub = Stubber(clients.sagemaker)
    stub.add_response("describe_pipeline_execution", executing)
    stub.add_response("list_pipeline_parameters_for_execution", {"PipelineParameters": []})
    stub.add_response("list_pipeline_execution_steps", {"PipelineExecutionSteps": []})
    stub.add_response("describe_pipeline_execution", executing)  # after Stop wakes the wait
    stub.add_response("list_pipeline_execution_steps", {"PipelineExecutionSteps": []})
    stub.add_response("stop_pipeline_execution", {"PipelineExecutionArn": arn}, {"PipelineExecutionArn": arn})
    stub.add_response("describe_pipeline_execution", {**described, "PipelineExecutionStatus": "Stopped"})
    stub.add_response("list_pipeline_execution_steps", {"PipelineExecutionSteps": []})
    stub.activate()

    session = LiveSession(namespace={}, workdir=tmp_path)
    events: list[Event] = []
    session.subscribers.append(events.append)
    pipeline = Pipeline("flow", steps=(Step("one", "x = 1"),))
    promoted = Promoted("flow", "arn:aws:sagemaker:us-east-1:123456789012:pipeline/flow", True, REGION, BUCKET, (),
                        0, (), {}, "https://console", arn, "https://console/exec")  # fmt: skip
    session.cloud = follow_in_background(promoted, pipeline, clients, session._publisher(None))
    deadline = time.monotonic() + 10
    while not any(isinstance(e, RunStarted) for e in events) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # now in the follow loop's first wait
    assert session.stop() is True
    session.cloud.thread.join(30)
    assert session.cloud.status == "cancelled" and session.cloud.error is None
    stub.assert_no_pending_responses()
    notes = [e.text for e in events if isinstance(e, RunNote)]
    assert any("asked SageMaker to stop" in note for note in notes)
    assert isinstance(events[-1], RunFinished) and events[-1].status == "cancelled"
    assert session.stop() is False  # nothing followed any more
