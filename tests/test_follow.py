"""Following a SageMaker execution: status changes become the engine's events, with backoff, stop and degrade.

Stubbed (botocore's ``Stubber`` on a real boto3 SageMaker client): ``DescribePipelineExecution``,
``ListPipelineExecutionSteps``, ``ListPipelineParametersForExecution`` and ``StopPipelineExecution`` answers for a run
in progress. moto does not simulate step transitions (every execution is "Succeeded" at once and
``ListPipelineExecutionSteps`` answers HTTP 500), so the transitions can only be tested with answers shaped like
the service's; the Stubber checks every answer (and every request) against botocore's service model. The tests at
the end run against moto's real HTTP endpoint for what moto does implement: the degraded follow, ``runs --remote``
and the clear error when stopping is not supported.
"""

from __future__ import annotations

import datetime
import io
import json
from collections.abc import Iterator
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.stub import Stubber

from jupyter_pipelines.cli import main
from jupyter_pipelines.engine.events import (
    Event,
    RunFinished,
    RunNote,
    RunStarted,
    StepFailed,
    StepFinished,
    StepSkipped,
    StepStarted,
)
from jupyter_pipelines.engine.runs import CancelToken
from jupyter_pipelines.errors import PipelineError
from jupyter_pipelines.model import Pipeline
from jupyter_pipelines.sagemaker.follow import console_url, follow_execution, list_executions, stop_execution

from .aws_support import REGION, ROLE_ARN, MotoServer
from .export_support import build
from .notebooks import write_notebook

ACCOUNT = "123456789012"
PIPELINE_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/demo"
ARN = f"{PIPELINE_ARN}/execution/abc123"
EARLIER = f"{PIPELINE_ARN}/execution/earlier1"
T0 = datetime.datetime(2026, 11, 23, 10, 0, 0, tzinfo=datetime.timezone.utc)
CONSOLE = f"https://{REGION}.console.aws.amazon.com/sagemaker/home?region={REGION}#/"


def at(seconds: float) -> datetime.datetime:
    return T0 + datetime.timedelta(seconds=seconds)


def demo() -> Pipeline:
    """prepare (processing) -> train (training) -> serve (model, exported as 'serve-CreateModel')."""
    return build(
        "demo",
        "%%step prepare\nx = 3",
        "%%step train --kind training\nmodel = x",
        "%%step serve --kind model\ndef predict(features):\n    return model",
    )


def gated() -> Pipeline:
    """prepare -> deploy under `--when 'x < 4' --else-fail`: a condition step and a fail step in the definition."""
    return build("demo", "%%step prepare\nx = 3", "%%step deploy --when 'x < 4' --else-fail 'x is {value}'\nd = x")


@pytest.fixture
def sm() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client(
        "sagemaker",
        region_name=REGION,
        config=Config(retries={"max_attempts": 1}),
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - never sent: the Stubber answers
        endpoint_url="https://sagemaker.invalid",
    )
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def describe(status: str, *, modified: float = 0.0, reason: str | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "PipelineArn": PIPELINE_ARN,
        "PipelineExecutionArn": ARN,
        "PipelineExecutionStatus": status,
        "CreationTime": T0,
        "LastModifiedTime": at(modified),
    }
    if reason is not None:
        answer["FailureReason"] = reason
    return answer


def step(name: str, status: str, start: float = 0.0, end: float | None = None, **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"StepName": name, "StepStatus": status, "StartTime": at(start), "AttemptCount": 1}
    if end is not None:
        entry["EndTime"] = at(end)
    entry.update(extra)
    return entry


def job(kind: str, name: str) -> dict[str, Any]:
    resource = {"ProcessingJob": "processing-job", "TrainingJob": "training-job", "Model": "model"}[kind]
    return {kind: {"Arn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:{resource}/{name}"}}


class Script:
    """The answers of one follow, in call order (the Stubber also checks each request's parameters)."""

    def __init__(self, stubber: Stubber) -> None:
        self.stubber = stubber

    def describe(self, status: str, **kwargs: Any) -> Script:
        self.stubber.add_response(
            "describe_pipeline_execution", describe(status, **kwargs), {"PipelineExecutionArn": ARN}
        )
        return self

    def parameters(self, **values: str) -> Script:
        answer = {"PipelineParameters": [{"Name": k, "Value": v} for k, v in values.items()]}
        self.stubber.add_response("list_pipeline_parameters_for_execution", answer, {"PipelineExecutionArn": ARN})
        return self

    def steps(self, *entries: dict[str, Any], token: str | None = None, next_token: str | None = None) -> Script:
        expected: dict[str, Any] = {"PipelineExecutionArn": ARN, "SortOrder": "Ascending"}
        if token:
            expected["NextToken"] = token
        answer: dict[str, Any] = {"PipelineExecutionSteps": list(entries)}
        if next_token:
            answer["NextToken"] = next_token
        self.stubber.add_response("list_pipeline_execution_steps", answer, expected)
        return self

    def error(self, operation: str, code: str, status: int = 400) -> Script:
        self.stubber.add_client_error(operation, service_error_code=code, http_status_code=status)
        return self


def follow(
    client: Any, pipeline: Pipeline, cancel: CancelToken | None = None, on_sleep: Any = None
) -> tuple[str, list[Event], list[float]]:
    events: list[Event] = []
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if on_sleep is not None:
            on_sleep(len(sleeps))

    status = follow_execution(client, ARN, pipeline, events.append, region=REGION, cancel=cancel, sleep=sleep)
    return status, events, sleeps


def brief(events: list[Event]) -> list[tuple[Any, ...]]:
    """Each event as (type, step or text, status/duration ...) for readable comparisons."""
    out: list[tuple[Any, ...]] = []
    for e in events:
        if isinstance(e, StepStarted):
            out.append(("started", e.step, e.url))
        elif isinstance(e, StepFinished):
            out.append((e.status, e.step, e.duration, e.cached_from))
        elif isinstance(e, StepFailed):
            out.append(("failed", e.step, e.error))
        elif isinstance(e, StepSkipped):
            out.append((e.status, e.step, e.reason))
        elif isinstance(e, RunFinished):
            out.append(("run", e.status, e.duration))
        elif isinstance(e, RunNote):
            out.append(("note", e.text))
        elif isinstance(e, RunStarted):
            out.append(("start", e.run_id, e.location))
    return out


def test_executing_to_succeeded_with_durations_links_and_backoff(sm: tuple[Any, Stubber]) -> None:
    client, stubber = sm
    prepare_job = job("ProcessingJob", "pipelines-abc123-prepare-x1")
    (
        Script(stubber)
        .describe("Executing")
        .parameters(threshold="4")
        .steps()  # nothing started yet; the status is new: wait 2 s
        .describe("Executing")
        .steps(step("prepare", "Executing", 1, Metadata=prepare_job))  # changed: 2 s again
        .describe("Executing")
        .steps(step("prepare", "Executing", 1, Metadata=prepare_job))  # unchanged: 4 s
        .describe("Executing")
        .steps(step("prepare", "Executing", 1, Metadata=prepare_job))  # unchanged: 8 s
        .describe("Executing")
        .steps(
            step("prepare", "Succeeded", 1, 11.5, Metadata=prepare_job),
            step("train", "Executing", 12, Metadata=job("TrainingJob", "pipelines-abc123-train-x2")),
        )
        .describe("Succeeded", modified=95)
        .steps(
            step("prepare", "Succeeded", 1, 11.5, Metadata=prepare_job),
            step("train", "Succeeded", 12, 72, Metadata=job("TrainingJob", "pipelines-abc123-train-x2")),
            step("serve-CreateModel", "Succeeded", 73, 75, Metadata=job("Model", "demo-model-1")),
            step("SomeStepWeNeverExported", "Succeeded", 73, 74),
        )
    )
    status, events, sleeps = follow(client, demo())
    assert status == "succeeded"
    assert sleeps == [2, 2, 4, 8, 2]
    started = events[0]
    assert isinstance(started, RunStarted)
    assert (started.run_id, started.pipeline, started.steps) == (ARN, "demo", ("prepare", "train", "serve"))
    assert (started.location, started.parameters) == ("sagemaker", {"threshold": "4"})
    assert started.url == CONSOLE + "pipelines/demo/executions/abc123"
    assert brief(events[1:]) == [
        ("started", "prepare", CONSOLE + "processing-jobs/pipelines-abc123-prepare-x1"),
        ("succeeded", "prepare", 10.5, None),
        ("started", "train", CONSOLE + "jobs/pipelines-abc123-train-x2"),
        ("succeeded", "train", 60.0, None),
        ("succeeded", "serve", 2.0, None),
        ("run", "succeeded", 95.0),
    ]


def test_a_failure_carries_its_reason_and_skips_what_never_ran(sm: tuple[Any, Stubber]) -> None:
    client, stubber = sm
    reason = "ClientError: AlgorithmError: ValueError: could not convert string to float: 'n/a'"
    (
        Script(stubber)
        .describe("Executing")
        .parameters()
        .steps(step("prepare", "Executing", 1))
        .describe("Failed", modified=30, reason="Step failure: One or multiple steps failed.")
        .steps(step("prepare", "Failed", 1, 21, FailureReason=reason))
    )
    status, events, sleeps = follow(client, demo())
    assert status == "failed"
    assert sleeps == [2]
    assert brief(events[1:]) == [
        ("started", "prepare", CONSOLE + "pipelines/demo/executions/abc123"),  # no job yet: the execution's page
        ("failed", "prepare", reason),
        ("skipped", "train", "the run failed before it ran"),
        ("skipped", "serve", "the run failed before it ran"),
        ("run", "failed", 30.0),
    ]
    failed = next(e for e in events if isinstance(e, StepFailed))
    assert failed.duration == 20.0


def test_a_cache_hit_is_cached_from_the_earlier_execution(sm: tuple[Any, Stubber]) -> None:
    client, stubber = sm
    hit = {"CacheHitResult": {"SourcePipelineExecutionArn": EARLIER}}
    (
        Script(stubber)
        .describe("Succeeded", modified=5)
        .parameters()
        .steps(
            step("prepare", "Succeeded", 1, 2, **hit),
            step("train", "Succeeded", 2, 3, **hit),
            step("serve-CreateModel", "Succeeded", 3, 5),
        )
    )
    status, events, sleeps = follow(client, demo())
    assert (status, sleeps) == ("succeeded", [])
    assert brief(events[1:]) == [
        ("cached", "prepare", 1.0, EARLIER),
        ("cached", "train", 1.0, EARLIER),
        ("succeeded", "serve", 2.0, None),
        ("run", "succeeded", 5.0),
    ]


def test_condition_false_skips_its_branch_and_the_fail_step_fails_with_its_message(sm: tuple[Any, Stubber]) -> None:
    client, stubber = sm
    (
        Script(stubber)
        .describe("Failed", modified=40)
        .parameters()
        .steps(
            step("prepare", "Succeeded", 1, 10),
            step("deploy-Condition", "Succeeded", 11, 12, Metadata={"Condition": {"Outcome": "False"}}),
            step(
                "deploy-Condition-Fail",
                "Failed",
                12,
                13,
                FailureReason="x is 7",
                Metadata={"Fail": {"ErrorMessage": "x is 7"}},
            ),
        )
    )
    status, events, _ = follow(client, gated())
    assert status == "failed"
    assert brief(events[1:]) == [
        ("succeeded", "prepare", 9.0, None),
        ("condition_false", "deploy", "condition is false: x < 4"),
        ("failed", "deploy-Condition-Fail", "x is 7"),
        ("run", "failed", 40.0),
    ]


def test_condition_true_runs_the_branch(sm: tuple[Any, Stubber]) -> None:
    client, stubber = sm
    (
        Script(stubber)
        .describe("Succeeded", modified=20)
        .parameters()
        .steps(
            step("prepare", "Succeeded", 1, 10),
            step("deploy-Condition", "Succeeded", 11, 12, Metadata={"Condition": {"Outcome": "True"}}),
            step("deploy", "Succeeded", 12, 18),
        )
    )
    status, events, _ = follow(client, gated())
    assert status == "succeeded"
    assert [b[:2] for b in brief(events[1:])] == [
        ("succeeded", "prepare"),
        ("succeeded", "deploy"),
        ("run", "succeeded"),
    ]


def test_cancel_stops_the_execution_and_follows_until_stopped(sm: tuple[Any, Stubber]) -> None:
    client, stubber = sm
    cancel = CancelToken()
    (
        Script(stubber)
        .describe("Executing")
        .parameters()
        .steps(step("prepare", "Executing", 1))
        .describe("Executing")
        .steps(step("prepare", "Executing", 1))
    )
    stubber.add_response("stop_pipeline_execution", {"PipelineExecutionArn": ARN}, {"PipelineExecutionArn": ARN})
    (
        Script(stubber)
        .describe("Stopping")
        .steps(step("prepare", "Stopping", 1))
        .describe("Stopped", modified=50)
        .steps(step("prepare", "Stopped", 1, 49, FailureReason="Stopped by the user"))
    )
    status, events, sleeps = follow(client, demo(), cancel, on_sleep=lambda n: cancel.cancel())
    assert status == "cancelled"
    assert sleeps == [2, 2, 2]
    assert brief(events[1:]) == [
        ("started", "prepare", CONSOLE + "pipelines/demo/executions/abc123"),
        ("note", "asked SageMaker to stop the execution; waiting until it has stopped."),
        ("cancelled", "prepare", "stopped in SageMaker"),
        ("cancelled", "train", "the run was stopped"),
        ("cancelled", "serve", "the run was stopped"),
        ("run", "cancelled", 50.0),
    ]


def test_cancel_on_an_endpoint_that_cannot_stop_is_a_clear_error(sm: tuple[Any, Stubber]) -> None:
    client, stubber = sm
    cancel = CancelToken()
    cancel.cancel()
    Script(stubber).describe("Executing").parameters().steps(step("prepare", "Executing", 1))
    stubber.add_client_error("stop_pipeline_execution", service_error_code="NotImplemented", http_status_code=501)
    with pytest.raises(PipelineError, match="does not support StopPipelineExecution .*The execution goes on"):
        follow(client, demo(), cancel)


def test_throttling_is_retried_with_backoff(sm: tuple[Any, Stubber]) -> None:
    client, stubber = sm
    (
        Script(stubber)
        .error("describe_pipeline_execution", "ThrottlingException")
        .error("describe_pipeline_execution", "ThrottlingException")
        .describe("Executing")
        .parameters()
        .error("list_pipeline_execution_steps", "ThrottlingException")
        .steps(step("prepare", "Executing", 1))
        .describe("Succeeded", modified=9)
        .steps(
            step("prepare", "Succeeded", 1, 4),
            step("train", "Succeeded", 4, 8),
            step("serve-CreateModel", "Succeeded", 8, 9),
        )
    )
    status, events, sleeps = follow(client, demo())
    assert status == "succeeded"
    assert sleeps == [2, 4, 2, 2]  # describe throttled twice, the steps once, then the regular poll
    assert [b[:2] for b in brief(events[1:])][-1] == ("run", "succeeded")


def test_throttled_for_good_is_a_clear_error(sm: tuple[Any, Stubber]) -> None:
    client, stubber = sm
    for _ in range(8):
        Script(stubber).error("describe_pipeline_execution", "ThrottlingException")
    with pytest.raises(PipelineError, match="cannot follow the SageMaker execution .*ThrottlingException"):
        follow(client, demo())


def test_steps_come_from_every_page(sm: tuple[Any, Stubber]) -> None:
    client, stubber = sm
    (
        Script(stubber)
        .describe("Succeeded", modified=9)
        .parameters()
        .steps(step("prepare", "Succeeded", 1, 4), next_token="page-2")
        .steps(step("train", "Succeeded", 4, 8), token="page-2", next_token="page-3")
        .steps(step("serve-CreateModel", "Succeeded", 8, 9), token="page-3")
    )
    _, events, _ = follow(client, demo())
    assert [b[:2] for b in brief(events[1:])] == [
        ("succeeded", "prepare"),
        ("succeeded", "train"),
        ("succeeded", "serve"),
        ("run", "succeeded"),
    ]


def test_access_denied_for_step_listing_degrades_to_the_overall_status(sm: tuple[Any, Stubber]) -> None:
    client, stubber = sm
    (
        Script(stubber)
        .describe("Executing")
        .parameters()
        .error("list_pipeline_execution_steps", "AccessDeniedException")
        .describe("Executing")
        .describe("Succeeded", modified=60)
    )
    status, events, sleeps = follow(client, demo())
    assert status == "succeeded"
    assert sleeps == [2, 4]
    assert brief(events[1:]) == [
        (
            "note",
            "step statuses are unavailable: your credentials may not call sagemaker:ListPipelineExecutionSteps "
            "(access denied); only the run's overall status will show.",
        ),
        ("run", "succeeded", 60.0),
    ]


def test_console_urls() -> None:
    assert console_url("eu-west-1", "churn") == (
        "https://eu-west-1.console.aws.amazon.com/sagemaker/home?region=eu-west-1#/pipelines/churn"
    )
    assert console_url("us-east-1", execution_arn=ARN) == CONSOLE + "pipelines/demo/executions/abc123"
    processing = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:processing-job/p-1"
    assert console_url(REGION, job_arn=processing, job_kind="ProcessingJob") == CONSOLE + "processing-jobs/p-1"


# ---- against moto's real HTTP endpoint ---------------------------------------------------------------------------


def _moto_client() -> Any:
    return boto3.client("sagemaker", config=Config(retries={"max_attempts": 1}))


def _start(name: str, executions: int = 1) -> list[str]:
    client = _moto_client()
    definition = {
        "Version": "2020-12-01",
        "Parameters": [{"Name": "threshold", "Type": "Integer", "DefaultValue": 4}],
        "Steps": [],
    }
    client.create_pipeline(PipelineName=name, PipelineDefinition=json.dumps(definition), RoleArn=ROLE_ARN)
    return [
        client.start_pipeline_execution(PipelineName=name, PipelineParameters=[{"Name": "threshold", "Value": "5"}])[
            "PipelineExecutionArn"
        ]
        for _ in range(executions)
    ]


def test_follow_degrades_against_moto(aws: MotoServer) -> None:
    (arn,) = _start("demo")
    events: list[Event] = []
    sleeps: list[float] = []
    status = follow_execution(_moto_client(), arn, demo(), events.append, region=REGION, sleep=sleeps.append)
    assert status == "succeeded"
    assert sleeps == []
    started, note, finished = events
    assert isinstance(started, RunStarted) and started.parameters == {"threshold": "5"}
    assert started.location == "sagemaker" and started.url == console_url(REGION, execution_arn=arn)
    assert isinstance(note, RunNote)
    assert note.text.startswith("step statuses are unavailable: the endpoint does not implement")
    assert "<" not in note.text  # moto's HTML error page stays out
    assert isinstance(finished, RunFinished) and finished.status == "succeeded"


def test_stop_on_an_endpoint_without_it_is_a_clear_error(aws: MotoServer) -> None:
    (arn,) = _start("demo")
    with pytest.raises(PipelineError) as raised:
        stop_execution(_moto_client(), arn)
    message = str(raised.value)
    assert "does not support StopPipelineExecution" in message and "The execution goes on." in message
    assert "aws sagemaker stop-pipeline-execution" in message and "<" not in message


def test_runs_remote_lists_the_executions(aws: MotoServer, tmp_path: Path) -> None:
    arns = _start("churn-model", executions=2)
    listed = list_executions(_moto_client(), "churn-model")
    assert {run["arn"] for run in listed} == set(arns)
    assert all(run["status"] == "Succeeded" and run["duration"] is not None for run in listed)
    notebook = write_notebook(tmp_path / "churn_model.ipynb", ["%%step prepare\nx = 1"])
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["runs", str(notebook), "--remote", "--region", REGION]) == 0
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    for arn in arns:
        execution = arn.rsplit("/", 1)[1]
        line = next(line for line in lines if line.startswith(execution))
        assert "Succeeded" in line and "UTC" in line
        assert line.endswith(CONSOLE + f"pipelines/churn-model/executions/{execution}")


def test_runs_remote_without_the_pipeline_says_to_promote(
    aws: MotoServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    notebook = write_notebook(tmp_path / "nothing_here.ipynb", ["%%step prepare\nx = 1"])
    assert main(["runs", str(notebook), "--remote", "--region", REGION]) == 2
    err = capsys.readouterr().err
    assert "no SageMaker pipeline 'nothing-here' in us-east-1" in err and "promote" in err


def test_runs_remote_without_credentials_is_one_clear_message(
    aws: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The listing checks the credential chain as promotion does, and says nothing was listed (not uploaded)."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    notebook = write_notebook(tmp_path / "churn_model.ipynb", ["%%step prepare\nx = 1"])
    assert main(["runs", str(notebook), "--remote", "--region", REGION]) == 2
    err = capsys.readouterr().err
    assert "no AWS credentials were found" in err and "nothing was listed" in err and "Traceback" not in err
