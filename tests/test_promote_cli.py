"""`jupyter-pipelines promote` end to end against moto's server, and schedules (EventBridge Scheduler)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from jupyter_pipelines.cli import main
from jupyter_pipelines.sagemaker.errors import PromoteError
from jupyter_pipelines.sagemaker.schedule import check_expression

from .aws_support import BUCKET, REGION, ROLE_ARN, SCHEDULER_ROLE_ARN, MotoServer
from .notebooks import write_notebook

CLI = [sys.executable, "-m", "jupyter_pipelines"]


def notebook(tmp_path: Path) -> Path:
    return write_notebook(
        tmp_path / "flow.ipynb",
        ["%%parameters\nrows: int = 3", "%%step make\nvalues = list(range(rows))", "%%step add\ntotal = sum(values)"],
    )


def flags(*extra: str) -> list[str]:
    return ["--role-arn", ROLE_ARN, "--bucket", BUCKET, "--region", REGION, *extra]


def test_cli_promote_start_and_again(aws: MotoServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
    path = notebook(tmp_path)
    assert main(["promote", str(path), *flags("-p", "rows=5")]) == 0
    out = capsys.readouterr()
    assert "created pipeline flow: https://us-east-1.console.aws.amazon.com/sagemaker/" in out.out
    assert "started execution arn:aws:sagemaker:us-east-1:123456789012:pipeline/flow/execution/" in out.out
    assert "uploaded" in out.out and "(0 already there)" in out.out
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    executions = sagemaker.list_pipeline_executions(PipelineName="flow")["PipelineExecutionSummaries"]
    sent = sagemaker.list_pipeline_parameters_for_execution(
        PipelineExecutionArn=executions[0]["PipelineExecutionArn"]
    )
    assert sent["PipelineParameters"] == [{"Name": "rows", "Value": "5"}]

    assert main(["promote", str(path), *flags("--no-start")]) == 0
    again = capsys.readouterr().out
    assert "uploaded 0 objects" in again and "updated pipeline flow" in again and "started" not in again


def test_cli_wait_follows_the_execution_in_a_subprocess(aws: MotoServer, tmp_path: Path) -> None:
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
    path = notebook(tmp_path)
    done = subprocess.run([*CLI, "promote", str(path), *flags("--wait")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "the SageMaker execution succeeded" in done.stdout
    # moto cannot list steps (HTTP 500): the follow says so instead of failing
    assert "step statuses are unavailable" in done.stderr + done.stdout


def test_cli_user_errors_exit_2(aws: MotoServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = notebook(tmp_path)
    assert main(["promote", str(path), *flags()]) == 2  # no bucket
    assert "the S3 bucket does not exist" in capsys.readouterr().err
    assert main(["promote", str(path), "--bucket", BUCKET, "--region", REGION]) == 2
    assert "--role-arn" in capsys.readouterr().err
    assert main(["promote", str(path), *flags("--schedule", "every day", "--schedule-role-arn", ROLE_ARN)]) == 2
    assert "is not a rate(...) or cron(...) expression" in capsys.readouterr().err


def test_schedule_created_updated_and_deleted(
    aws: MotoServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
    path = notebook(tmp_path)
    scheduler = boto3.client("scheduler", region_name=REGION)
    schedule = ["--schedule", "rate(1 day)", "--schedule-role-arn", SCHEDULER_ROLE_ARN]
    assert main(["promote", str(path), *flags("--no-start", "-p", "rows=9", *schedule)]) == 0
    assert "created the schedule flow" in capsys.readouterr().out
    created = scheduler.get_schedule(Name="flow")
    pipeline_arn = boto3.client("sagemaker", region_name=REGION).describe_pipeline(PipelineName="flow")["PipelineArn"]
    assert created["ScheduleExpression"] == "rate(1 day)"
    assert created["Target"]["Arn"] == pipeline_arn and created["Target"]["RoleArn"] == SCHEDULER_ROLE_ARN
    assert created["Target"]["SageMakerPipelineParameters"] == {
        "PipelineParameterList": [{"Name": "rows", "Value": "9"}]
    }

    schedule[1] = "cron(0 6 ? * MON-FRI *)"
    assert main(["promote", str(path), *flags("--no-start", *schedule)]) == 0
    assert "updated the schedule flow" in capsys.readouterr().out
    assert scheduler.get_schedule(Name="flow")["ScheduleExpression"] == "cron(0 6 ? * MON-FRI *)"

    assert main(["promote", str(path), "--region", REGION, "--unschedule"]) == 0
    assert "deleted the schedule flow" in capsys.readouterr().out
    with pytest.raises(scheduler.exceptions.ResourceNotFoundException):
        scheduler.get_schedule(Name="flow")
    assert main(["promote", str(path), "--region", REGION, "--unschedule"]) == 2
    assert "pipeline 'flow' has no schedule" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("rate(1 days)", "write rate(1 day)"),
        ("rate(2 hour)", "write rate(2 hours)"),
        ("rate(0 minutes)", "at least 1"),
        ("cron(0 6 * * *)", "six fields"),
        ("cron(0 6 * * MON *)", "must be '?'"),
        ("daily", "is not a rate(...) or cron(...)"),
    ],
)
def test_schedule_expressions_are_checked(expression: str, message: str) -> None:
    with pytest.raises(PromoteError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        check_expression(expression)
    assert check_expression("rate(5 minutes)") == "rate(5 minutes)"
    assert check_expression("cron(15 10 ? * 6L 2026)") == "cron(15 10 ? * 6L 2026)"


def test_schedule_needs_its_role(aws: MotoServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = notebook(tmp_path)
    assert main(["promote", str(path), *flags("--schedule", "rate(1 day)")]) == 2
    assert "--schedule needs --schedule-role-arn" in capsys.readouterr().err


def test_no_secret_is_written_to_the_definition_or_settings(aws: MotoServer, tmp_path: Path) -> None:
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
    path = notebook(tmp_path)
    assert main(["promote", str(path), *flags()]) == 0
    stored = boto3.client("sagemaker", region_name=REGION).describe_pipeline(PipelineName="flow")
    from .aws_support import ACCESS_KEY, SECRET_KEY

    for text in (stored["PipelineDefinition"], json.dumps(json.loads(path.read_text())), *_tree_text(tmp_path)):
        assert SECRET_KEY not in text and ACCESS_KEY not in text


def _tree_text(root: Path) -> list[str]:
    return [p.read_text(errors="replace") for p in root.rglob("*") if p.is_file()]
