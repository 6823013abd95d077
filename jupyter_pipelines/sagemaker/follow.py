"""Following a SageMaker pipeline execution from here: its status changes become the local engine's run events.

The CLI's progress, the magics and the widget then show a cloud run exactly as a local one (``RunStarted.location
== "sagemaker"``, console links on the run and on each step). The loop polls ``DescribePipelineExecution`` and
``ListPipelineExecutionSteps`` with backoff (2 s doubling to 30 s, back to 2 s whenever something changed; throttling
retried) and maps each exported step name back to the notebook's step it came from (see ``plan.py``).

An endpoint that cannot list steps (moto answers HTTP 500; an IAM policy may deny that one action) does not stop
the follow: one ``RunNote`` says why step statuses are unavailable, and the run's overall status still arrives.

Console links use the SageMaker console's hash routes (``https://REGION.console.aws.amazon.com/sagemaker/home?
region=REGION#/...``): ``pipelines/NAME`` and ``pipelines/NAME/executions/ID`` for pipelines, and a step's job page
(``processing-jobs/``, ``jobs/`` for training, ``transform-jobs/``, ``models/``) when it runs one.
"""

from __future__ import annotations

import datetime
import os
import select
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ..engine.events import (
    Event,
    RunFinished,
    RunNote,
    RunStarted,
    RunStatus,
    StepFailed,
    StepFinished,
    StepSkipped,
    StepStarted,
)
from ..engine.runs import CancelToken
from ..errors import PipelineError
from ..model import Pipeline
from .plan import Branch, plan_pipeline

__all__ = ["RUN_STATUS", "console_url", "follow_execution", "list_executions", "stop_execution"]

FIRST_WAIT = 2.0
MAX_WAIT = 30.0
STOP_WAIT = 600.0  # after asking SageMaker to stop: how long (in waits) to follow until it says Stopped
THROTTLE_ATTEMPTS = 8
# PipelineExecutionStatus -> the engine's RunStatus ("running" while it may still change)
RUN_STATUS: dict[str, RunStatus] = {
    "Executing": "running",
    "Stopping": "running",
    "Stopped": "cancelled",
    "Failed": "failed",
    "CompletedWithFailures": "failed",
    "Succeeded": "succeeded",
}
_THROTTLED = {"Throttling", "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded"}
_DENIED = {"AccessDenied", "AccessDeniedException"}
_NOT_THERE = {"NotImplemented", "UnknownOperationException", "InvalidAction"}
_JOB_PAGES = {
    "ProcessingJob": "processing-jobs",
    "TrainingJob": "jobs",
    "TransformJob": "transform-jobs",
    "Model": "models",
}


# ---- console links ------------------------------------------------------------------------------------------------


def _pipeline_of(execution_arn: str) -> tuple[str, str]:
    """``arn:aws:sagemaker:R:A:pipeline/NAME/execution/ID`` -> (NAME, ID)."""
    resource = execution_arn.split(":", 5)[-1]
    parts = resource.split("/")
    if len(parts) == 4 and parts[0] == "pipeline" and parts[2] == "execution":
        return parts[1], parts[3]
    return "", resource


def console_url(
    region: str,
    pipeline: str | None = None,
    *,
    execution_arn: str | None = None,
    job_arn: str | None = None,
    job_kind: str | None = None,
) -> str:
    """The SageMaker console page of a pipeline, an execution (``execution_arn``), or a step's job (``job_arn`` of
    ``job_kind`` ProcessingJob / TrainingJob / TransformJob / Model; other kinds get the execution's page)."""
    base = f"https://{region}.console.aws.amazon.com/sagemaker/home?region={region}#/"
    quote = urllib.parse.quote
    if job_arn and job_kind in _JOB_PAGES:
        return base + f"{_JOB_PAGES[job_kind]}/{quote(job_arn.rsplit('/', 1)[-1], safe='')}"
    if execution_arn:
        name, execution = _pipeline_of(execution_arn)
        return base + f"pipelines/{quote(name or pipeline or '', safe='')}/executions/{quote(execution, safe='')}"
    return base + f"pipelines/{quote(pipeline or '', safe='')}"


def _step_url(region: str, execution_arn: str, entry: Mapping[str, Any]) -> str:
    for kind, value in (entry.get("Metadata") or {}).items():
        if kind in _JOB_PAGES and isinstance(value, Mapping) and value.get("Arn"):
            return console_url(region, execution_arn=execution_arn, job_arn=value["Arn"], job_kind=kind)
    return console_url(region, execution_arn=execution_arn)


# ---- calls and their errors ---------------------------------------------------------------------------------------


def _code(error: Exception) -> tuple[str, int]:
    response = getattr(error, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", ""))
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return code, status


def _problem(error: Exception, action: str) -> PipelineError:
    """One clear message for an AWS error (no traceback, no HTML body some endpoints answer with)."""
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError, NoRegionError

    if isinstance(error, NoCredentialsError):
        return PipelineError(
            f"cannot {action}: no AWS credentials found.",
            hint="Log in (aws sso login / aws configure), set AWS_PROFILE or pass --profile.",
        )
    if isinstance(error, NoRegionError):
        return PipelineError(f"cannot {action}: no AWS region set.", hint="Pass --region (e.g. us-east-1).")
    if isinstance(error, EndpointConnectionError):
        return PipelineError(f"cannot {action}: {error}.", hint="Check the network and the region.")
    if not isinstance(error, ClientError):
        return PipelineError(f"cannot {action}: {error}")
    code, status = _code(error)
    message = str(error.response.get("Error", {}).get("Message", ""))
    if code in _DENIED:
        return PipelineError(
            f"cannot {action}: access denied ({message or code}).",
            hint="Use credentials whose IAM policy allows it, or ask your AWS administrator.",
        )
    if code in ("ExpiredToken", "ExpiredTokenException", "RequestExpired"):
        return PipelineError(
            f"cannot {action}: the AWS session token has expired.", hint="Log in again (e.g. aws sso login)."
        )
    if message.lstrip().startswith("<") or not message:
        message = f"HTTP {status}" if status else code
    return PipelineError(f"cannot {action}: {code or status}: {message}")


@dataclass
class _Caller:
    """Calls the client, retrying throttled calls with backoff; every wait goes through ``sleep``."""

    client: Any
    sleep: Callable[[float], None]

    def __call__(self, operation: str, action: str, **kwargs: Any) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        wait = FIRST_WAIT
        for attempt in range(1, THROTTLE_ATTEMPTS + 1):
            try:
                return getattr(self.client, operation)(**kwargs)  # type: ignore[no-any-return]
            except ClientError as error:
                if _code(error)[0] not in _THROTTLED or attempt == THROTTLE_ATTEMPTS:
                    raise
            except BotoCoreError as error:
                raise _problem(error, action) from None
            self.sleep(wait)
            wait = min(wait * 2, MAX_WAIT)
        raise AssertionError("unreachable")

    def pages(self, operation: str, key: str, action: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        token: str | None = None
        while True:
            response = self(operation, action, **kwargs, **({"NextToken": token} if token else {}))
            yield from response.get(key, [])
            token = response.get("NextToken")
            if not token:
                return


def stop_execution(client: Any, execution_arn: str) -> None:
    """Ask SageMaker to stop the execution (it goes Stopping, then Stopped); PipelineError if it cannot."""
    _stop(_Caller(client, time.sleep), execution_arn)


def _stop(call: _Caller, execution_arn: str) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    action = f"stop the SageMaker execution {execution_arn}"
    try:
        call("stop_pipeline_execution", action, PipelineExecutionArn=execution_arn)
    except ClientError as error:
        code, status = _code(error)
        if status in (500, 501) or code in _NOT_THERE:
            raise PipelineError(
                f"cannot {action}: the endpoint does not support StopPipelineExecution "
                f"({code or 'HTTP ' + str(status)}; a local test endpoint such as moto does not implement it). "
                "The execution goes on.",
                hint="Stop it in the SageMaker console, or with: aws sagemaker stop-pipeline-execution "
                f"--pipeline-execution-arn {execution_arn}",
            ) from None
        raise _problem(error, action) from None
    except BotoCoreError as error:
        raise _problem(error, action) from None


def _seconds(start: Any, end: Any) -> float:
    if isinstance(start, datetime.datetime) and isinstance(end, datetime.datetime):
        return max(0.0, (end - start).total_seconds())
    return 0.0


def list_executions(client: Any, pipeline_name: str, *, limit: int = 50) -> list[dict[str, Any]]:
    """The pipeline's executions, newest first: ``arn``, ``id``, ``status`` (SageMaker's), ``start`` (datetime),
    ``duration`` (seconds, once finished; else None) and ``url`` (console page)."""
    from botocore.exceptions import ClientError

    call = _Caller(client, time.sleep)
    region = client.meta.region_name
    action = f"list the executions of the SageMaker pipeline {pipeline_name!r} in {region}"
    found: list[dict[str, Any]] = []
    try:
        for summary in call.pages(
            "list_pipeline_executions", "PipelineExecutionSummaries", action,
            PipelineName=pipeline_name, SortBy="CreationTime", SortOrder="Descending",
        ):  # fmt: skip
            arn, status = summary["PipelineExecutionArn"], summary.get("PipelineExecutionStatus", "")
            duration = None
            if RUN_STATUS.get(status, "running") != "running":
                described = call("describe_pipeline_execution", action, PipelineExecutionArn=arn)
                duration = _seconds(described.get("CreationTime"), described.get("LastModifiedTime"))
            found.append(
                {
                    "arn": arn,
                    "id": _pipeline_of(arn)[1],
                    "status": status,
                    "start": summary.get("StartTime"),
                    "duration": duration,
                    "url": console_url(region, pipeline_name, execution_arn=arn),
                }
            )
            if len(found) >= limit:
                break
    except ClientError as error:
        code, _ = _code(error)
        message = str(error.response.get("Error", {}).get("Message", ""))
        if code == "ResourceNotFound" or (code == "ValidationException" and "could not find" in message.lower()):
            raise PipelineError(
                f"there is no SageMaker pipeline {pipeline_name!r} in {region}.",
                hint="Promote the notebook first (jupyter-pipelines promote), or pass the right --name / --region.",
            ) from None
        raise _problem(error, action) from None
    return found


# ---- the follow loop ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    """What an exported step name stands for: a notebook step, a condition step, or a ``--else-fail`` step."""

    kind: str  # "step" | "condition" | "fail"
    name: str  # the notebook step (or the fail step's own name)
    branch: Branch | None = None


def _targets(pipeline: Pipeline) -> dict[str, _Target]:
    """Exported step name -> what it is locally (names the exporter never writes are ignored when seen)."""
    try:
        plan = plan_pipeline(pipeline)
    except PipelineError:  # not exportable as it is now: the cloud names are the step names at best
        return {step.name: _Target("step", step.name) for step in pipeline.steps}
    targets = {exported: _Target("step", local) for local, exported in plan.exported.items()}
    for branch in plan.branches:
        targets[branch.name] = _Target("condition", branch.name, branch)
        if branch.fail_step is not None:
            targets[branch.fail_step] = _Target("fail", branch.fail_step, branch)
    return targets


class _Follower:
    def __init__(
        self,
        client: Any,
        execution_arn: str,
        pipeline: Pipeline,
        publish: Callable[[Event], None],
        region: str,
        cancel: CancelToken | None,
        sleep: Callable[[float], None],
    ) -> None:
        self.arn = execution_arn
        self.pipeline = pipeline
        self.publish = publish
        self.region = region
        self.cancel = cancel
        self.sleep = sleep
        self.call = _Caller(client, self._pause)
        self.targets = _targets(pipeline)
        self.seen: dict[str, tuple[str, int]] = {}  # exported name -> (StepStatus, AttemptCount) last published
        self.done: dict[str, str] = {}  # notebook step -> the terminal status published for it
        self.steps_available = True
        self.stop_asked = False
        self.waited_since_stop = 0.0
        self.action = f"follow the SageMaker execution {execution_arn}"

    # -- waiting: a real wait wakes up at once on cancel; an injected one (tests) is called as is
    def _pause(self, seconds: float) -> None:
        if self.sleep is not time.sleep or self.cancel is None or self.stop_asked:
            self.sleep(seconds)
            return
        read, write = os.pipe()
        try:
            self.cancel.attach(write)
            select.select([read], [], [], seconds)
        finally:
            self.cancel.detach(write)
            os.close(read)
            os.close(write)

    def run(self) -> RunStatus:
        described: dict[str, Any] | None = self._describe()
        self.publish(
            RunStarted(
                self.arn,
                self.pipeline.name,
                tuple(step.name for step in self.pipeline.steps),
                self._parameters(),
                location="sagemaker",
                url=console_url(self.region, execution_arn=self.arn),
            )
        )
        wait = FIRST_WAIT
        last_status = ""
        while True:
            changed = False
            if described is None:
                described = self._describe()
            status = str(described.get("PipelineExecutionStatus", ""))
            changed |= status != last_status
            last_status = status
            if self.steps_available:
                changed |= self._poll_steps()
            run_status = RUN_STATUS.get(status, "running")
            if run_status != "running":
                return self._finish(described, run_status)
            if self.cancel is not None and self.cancel.cancelled and not self.stop_asked:
                self._stop()
                changed = True
            if self.stop_asked and self.waited_since_stop >= STOP_WAIT:
                return self._give_up(status)
            wait = FIRST_WAIT if changed else min(wait * 2, MAX_WAIT)
            self._pause(wait)
            if self.stop_asked:
                self.waited_since_stop += wait
            described = None

    def _describe(self) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        try:
            return self.call("describe_pipeline_execution", self.action, PipelineExecutionArn=self.arn)
        except ClientError as error:
            raise _problem(error, self.action) from None

    def _parameters(self) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        try:
            pages = self.call.pages(
                "list_pipeline_parameters_for_execution", "PipelineParameters", self.action,
                PipelineExecutionArn=self.arn,
            )  # fmt: skip
            return {item["Name"]: item.get("Value") for item in pages}
        except (ClientError, PipelineError):  # only shown beside the run: not worth failing the follow for
            return {}

    def _poll_steps(self) -> bool:
        from botocore.exceptions import ClientError

        try:
            entries = list(
                self.call.pages(
                    "list_pipeline_execution_steps",
                    "PipelineExecutionSteps",
                    self.action,
                    PipelineExecutionArn=self.arn,
                    SortOrder="Ascending",
                )  # fmt: skip
            )
        except ClientError as error:
            code, status = _code(error)
            if code in _DENIED:
                why = "your credentials may not call sagemaker:ListPipelineExecutionSteps (access denied)"
            elif status in (500, 501) or code in _NOT_THERE:
                why = f"the endpoint does not implement ListPipelineExecutionSteps ({code or status})"
            else:
                raise _problem(error, self.action) from None
            self.steps_available = False
            self.publish(
                RunNote(self.arn, f"step statuses are unavailable: {why}; only the run's overall status will show.")
            )
            return True
        changed = False
        for entry in entries:
            changed |= self._step_entry(entry)
        return changed

    def _step_entry(self, entry: Mapping[str, Any]) -> bool:
        name = str(entry.get("StepName", ""))
        target = self.targets.get(name)
        status = str(entry.get("StepStatus", ""))
        key = (status, int(entry.get("AttemptCount") or 1))
        if target is None or self.seen.get(name) == key:
            return False
        self.seen[name] = key
        duration = _seconds(entry.get("StartTime"), entry.get("EndTime"))
        reason = str(entry.get("FailureReason") or "")
        if target.kind == "condition":
            assert target.branch is not None
            if status == "Succeeded":
                outcome = str((entry.get("Metadata") or {}).get("Condition", {}).get("Outcome", ""))
                if outcome.lower() == "false":
                    text = f"condition is false: {target.branch.text}" if target.branch.text else "condition is false"
                    for step in target.branch.steps:
                        self._skip(step, text, "condition_false")
            elif status == "Failed":
                for step in target.branch.steps:
                    self._fail(step, f"condition step {name!r} failed: {reason or 'no reason given'}", 0.0)
            return True
        if target.kind == "fail":
            if status in ("Failed", "Succeeded"):
                message = str((entry.get("Metadata") or {}).get("Fail", {}).get("ErrorMessage") or reason)
                self._fail(target.name, message or "the fail step ran", duration)
            return True
        step = target.name
        if status == "Executing" and step not in self.done:
            url = _step_url(self.region, self.arn, entry)
            self.publish(StepStarted(self.arn, step, key[1], "sagemaker", url=url))
        elif status == "Succeeded":
            source = (entry.get("CacheHitResult") or {}).get("SourcePipelineExecutionArn")
            self.done[step] = "cached" if source else "succeeded"
            self.publish(StepFinished(self.arn, step, "cached" if source else "succeeded", duration, source or None))
        elif status == "Failed":
            self._fail(step, reason or "failed in SageMaker (no reason given)", duration, key[1])
        elif status in ("Stopping", "Stopped"):
            self._skip(step, reason or "stopped in SageMaker", "cancelled")
        return True

    def _fail(self, step: str, error: str, duration: float, attempt: int = 1) -> None:
        self.done[step] = "failed"
        self.publish(StepFailed(self.arn, step, error, duration, attempt))

    def _skip(self, step: str, reason: str, status: str) -> None:
        if step not in self.done:
            self.done[step] = status
            self.publish(StepSkipped(self.arn, step, reason, status))  # type: ignore[arg-type]

    def _stop(self) -> None:
        self.stop_asked = True
        _stop(self.call, self.arn)  # a PipelineError ends the follow: the caller shows it (cloud_run.py: a note)
        self.publish(RunNote(self.arn, "asked SageMaker to stop the execution; waiting until it has stopped."))

    def _give_up(self, status: str) -> RunStatus:
        self.publish(
            RunNote(
                self.arn,
                f"asked SageMaker to stop the execution {STOP_WAIT:g}s ago and it is still {status}; no longer "
                f"following it here. See {console_url(self.region, execution_arn=self.arn)}",
            )
        )
        self.publish(RunFinished(self.arn, "cancelled", 0.0))
        return "cancelled"

    def _finish(self, described: Mapping[str, Any], status: RunStatus) -> RunStatus:
        if self.steps_available and status != "succeeded":
            reason = "the run was stopped" if status == "cancelled" else "the run failed before it ran"
            for step in self.pipeline.steps:
                if step.name not in self.done:
                    self._skip(step.name, reason, "cancelled" if status == "cancelled" else "skipped")
        if status == "failed" and described.get("FailureReason") and "failed" not in self.done.values():
            self.publish(RunNote(self.arn, f"the execution failed: {described['FailureReason']}"))
        duration = _seconds(described.get("CreationTime"), described.get("LastModifiedTime"))
        self.publish(RunFinished(self.arn, status, duration))
        return status


def follow_execution(
    client: Any,
    execution_arn: str,
    pipeline: Pipeline,
    publish: Callable[[Event], None],
    *,
    region: str,
    cancel: CancelToken | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> RunStatus:
    """Publish the execution's progress as run events until it ends; its final status ("succeeded", "failed",
    "cancelled"). ``cancel`` set -> ask SageMaker to stop it and follow until it has (PipelineError if the endpoint
    cannot stop it). ``sleep`` is every wait (tests pass one that records them)."""
    return _Follower(client, execution_arn, pipeline, publish, region, cancel, sleep).run()
