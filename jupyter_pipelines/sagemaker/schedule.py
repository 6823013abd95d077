"""Run a promoted pipeline on a schedule: one EventBridge Scheduler schedule per pipeline, named after it.

What Azure ML users know as a pipeline ``Schedule``: ``rate(1 day)`` or ``cron(0 6 * * ? *)`` starts the pipeline
with the given parameter values. The scheduler assumes its own role (``--schedule-role-arn``), which needs
``sagemaker:StartPipelineExecution`` on the pipeline. The expression's shape is checked here, before any call.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from .aws import translate
from .errors import PromoteError

__all__ = ["check_expression", "schedule_name", "schedule_pipeline", "unschedule_pipeline"]

_RATE = re.compile(r"rate\(\s*(?P<n>[0-9]+)\s+(?P<unit>minutes?|hours?|days?)\s*\)")
_CRON = re.compile(r"cron\((?P<fields>[^()]+)\)")
_CRON_FIELD = re.compile(r"[0-9A-Za-z*?,/#L W-]+")
_NAME = re.compile(r"[^0-9A-Za-z_.-]+")
_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}")
_FIX = 'Use rate(N minutes|hours|days), e.g. "rate(1 day)", or cron(MIN HOUR DAY MONTH WEEKDAY YEAR), e.g. ' \
       '"cron(0 6 * * ? *)" (06:00 UTC daily).'  # fmt: skip


def check_expression(expression: str) -> str:
    """The expression if it has EventBridge Scheduler's shape (rate: N >= 1 and a singular unit for 1; cron: six
    fields, one of day-of-month or day-of-week "?"); PromoteError otherwise."""
    text = expression.strip()
    rate = _RATE.fullmatch(text)
    if rate:
        n, unit = int(rate["n"]), rate["unit"]
        if n < 1:
            raise PromoteError(f"--schedule {expression!r}: the rate must be at least 1.", hint=_FIX)
        if (n == 1) != (not unit.endswith("s")):
            right = unit.rstrip("s") if n == 1 else unit + "s"
            raise PromoteError(f"--schedule {expression!r}: write rate({n} {right}).", hint=_FIX)
        return text
    cron = _CRON.fullmatch(text)
    if cron:
        fields = cron["fields"].split()
        if len(fields) != 6 or not all(_CRON_FIELD.fullmatch(f) for f in fields):
            raise PromoteError(
                f"--schedule {expression!r}: a cron expression has six fields "
                "(minutes hours day-of-month month day-of-week year).",
                hint=_FIX,
            )
        if "?" not in (fields[2], fields[4]):
            raise PromoteError(
                f"--schedule {expression!r}: day-of-month or day-of-week must be '?'.",
                hint='E.g. "cron(0 6 * * ? *)" or "cron(0 6 ? * MON-FRI *)".',
            )
        return text
    raise PromoteError(f"--schedule {expression!r} is not a rate(...) or cron(...) expression.", hint=_FIX)


def check_schedule_role(role_arn: str | None) -> str:
    if not role_arn:
        raise PromoteError(
            "--schedule needs --schedule-role-arn: the role EventBridge Scheduler assumes to start the pipeline.",
            hint="Create a role trusted by scheduler.amazonaws.com allowed sagemaker:StartPipelineExecution.",
        )
    if not _ROLE_ARN.fullmatch(role_arn):
        raise PromoteError(
            f"--schedule-role-arn {role_arn!r} is not an IAM role ARN.",
            hint="E.g. arn:aws:iam::123456789012:role/SchedulerRole.",
        )
    return role_arn


def schedule_name(pipeline_name: str) -> str:
    """Scheduler names allow 1-64 of ``[0-9A-Za-z_.-]``; pipeline names are longer-allowed but a subset."""
    return _NAME.sub("-", pipeline_name)[:64]


def _target(pipeline_arn: str, role_arn: str, parameters: Mapping[str, str]) -> dict[str, Any]:
    target: dict[str, Any] = {"Arn": pipeline_arn, "RoleArn": role_arn}
    if parameters:
        values = [{"Name": name, "Value": value} for name, value in sorted(parameters.items())]
        target["SageMakerPipelineParameters"] = {"PipelineParameterList": values}
    return target


def schedule_pipeline(
    scheduler: Any,
    pipeline_name: str,
    pipeline_arn: str,
    *,
    expression: str,
    role_arn: str,
    parameters: Mapping[str, str],
    done: str,
) -> Literal["created", "updated"]:
    """Create the pipeline's schedule, or update it if it exists; ``done`` says what promotion already did."""
    from botocore.exceptions import BotoCoreError, ClientError

    name = schedule_name(pipeline_name)
    request = {
        "Name": name,
        "ScheduleExpression": check_expression(expression),
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "Target": _target(pipeline_arn, check_schedule_role(role_arn), parameters),
        "Description": f"Starts the SageMaker pipeline {pipeline_name} (jupyter-pipelines).",
    }
    try:
        try:
            scheduler.create_schedule(**request)
            return "created"
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConflictException":
                raise
        scheduler.update_schedule(**request)
        return "updated"
    except (BotoCoreError, ClientError) as error:
        raise translate(error, action=f"scheduling the pipeline ({name})", done=done) from None


def unschedule_pipeline(scheduler: Any, pipeline_name: str) -> str:
    """Delete the pipeline's schedule; PromoteError if there is none. Returns the schedule's name."""
    from botocore.exceptions import BotoCoreError, ClientError

    name = schedule_name(pipeline_name)
    try:
        scheduler.delete_schedule(Name=name)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            raise PromoteError(
                f"pipeline {pipeline_name!r} has no schedule (no EventBridge Scheduler schedule named {name!r} in "
                "this region); nothing was deleted.",
                hint="Check --name and --region; `aws scheduler list-schedules` lists them.",
            ) from None
        raise translate(error, action=f"deleting the schedule {name}", done="nothing was deleted") from None
    except BotoCoreError as error:
        raise translate(error, action=f"deleting the schedule {name}", done="nothing was deleted") from None
    return name
