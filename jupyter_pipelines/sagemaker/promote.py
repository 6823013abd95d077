"""Promotion: the exported pipeline uploaded, created or updated in SageMaker Pipelines, started, scheduled.

Order matters for "nothing half-done": everything that can be checked locally (the export, ``--only``, parameter
values, the schedule expression) is checked before the first call; then the pipeline's existence and, for
``--only``, the execution to select from are read before anything is written; then the uploads (each object
once, content-addressed), the pipeline, the execution, the schedule. Any failure is one :class:`PromoteError`
saying what was already done.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..authoring.parameters import resolve_parameters
from ..engine.events import Event, RunStatus
from ..engine.runs import CancelToken
from ..model import ParameterValue, Pipeline
from .aws import DEFAULT_ATTEMPTS, Clients, check_region, connect, new_session, translate
from .config import MAX_DEFINITION_BYTES, ExportConfig
from .errors import PromoteError
from .export import build_definition
from .plan import plan_pipeline
from .schedule import check_expression, check_schedule_role, schedule_pipeline
from .upload import Blob, LocalData, Uploaded, code_blobs, input_blobs, local_data, upload_blobs

__all__ = ["PromoteOptions", "Promoted", "parameter_strings", "promote"]

Progress = Callable[[str], None]


@dataclass(frozen=True)
class PromoteOptions:
    """What to promote where, and what to do once it is there. ``parameters`` are typed overrides (as
    ``parse_overrides`` returns them); ``only`` are notebook step names for a selective execution."""

    config: ExportConfig
    profile: str | None = None
    start: bool = True
    parameters: Mapping[str, ParameterValue] = field(default_factory=dict)
    only: tuple[str, ...] = ()
    wait: bool = False
    schedule: str | None = None
    schedule_role_arn: str | None = None
    max_attempts: int = DEFAULT_ATTEMPTS


@dataclass(frozen=True)
class Promoted:
    """What promotion did: the pipeline, what went up, the execution it started, the definition as sent."""

    pipeline_name: str
    pipeline_arn: str
    created: bool  # False: an existing pipeline was updated
    region: str
    bucket: str
    uploaded: tuple[str, ...]  # S3 keys written this time
    skipped: int  # objects already there with the same hash
    data: tuple[LocalData, ...]  # parameters whose local file defaults (or -p values) became S3 URIs
    definition: dict[str, Any]  # exactly what was sent as PipelineDefinition (parsed)
    pipeline_url: str
    execution_arn: str | None = None
    execution_url: str | None = None
    schedule: str | None = None  # "created" / "updated" when --schedule was given
    status: RunStatus | None = None  # the execution's end status when it was followed (--wait)

    def lines(self) -> list[str]:
        """A short account for a person: uploads, the pipeline, the execution, the schedule, console links."""
        n = len(self.uploaded)
        lines = [
            f"uploaded {n} object{'' if n == 1 else 's'} to s3://{self.bucket}/ ({self.skipped} already there)",
            *(
                f"parameter {item.parameter}{' (this execution)' if item.override else ''}: {item.path} -> {item.uri}"
                for item in self.data
            ),
            f"{'created' if self.created else 'updated'} pipeline {self.pipeline_name}: {self.pipeline_url}",
        ]
        if self.execution_arn:
            lines.append(f"started execution {self.execution_arn}: {self.execution_url}")
        if self.schedule:
            lines.append(f"{self.schedule} the schedule {self.pipeline_name}")
        if self.status:
            lines.append(f"the execution {self.status}")
        return lines


def parameter_strings(values: Mapping[str, ParameterValue]) -> dict[str, str]:
    """Typed values as the API takes them: strings (booleans ``true``/``false``, as the step entry reads them)."""
    return {
        name: ("true" if value else "false") if isinstance(value, bool) else str(value)
        for name, value in values.items()
    }


MAX_SELECTED = 50  # SelectiveExecutionConfig.SelectedSteps


def _selected(pipeline: Pipeline, only: tuple[str, ...]) -> list[str]:
    """``--only`` as the definition's step names; the notebook's names are checked first."""
    unknown = [name for name in only if name not in pipeline.step_names]
    if unknown:
        raise PromoteError(
            f"--only names no step {', '.join(repr(n) for n in unknown)}.",
            hint=f"The steps: {', '.join(pipeline.step_names)}.",
        )
    selected = set(only)
    if len(selected) > MAX_SELECTED:
        raise PromoteError(
            f"--only names {len(selected)} steps; SageMaker's selective execution takes at most {MAX_SELECTED}.",
            hint="Run the whole pipeline instead (no --only).",
        )
    between = (pipeline.downstream_of(selected) & pipeline.upstream_of(selected)) - selected
    if between:  # SageMaker: "all steps in all paths between two selected steps should be included"
        missing = [name for name in pipeline.step_names if name in between]
        wanted = [name for name in pipeline.step_names if name in selected | between]
        raise PromoteError(
            f"--only leaves out {', '.join(repr(n) for n in missing)}, between steps it names; SageMaker runs a "
            "selection only with every step on the paths between its steps.",
            hint=f"Select them too: --only {','.join(wanted)}.",
        )
    plan = plan_pipeline(pipeline)
    names = [plan.exported[name] for name in only]
    for name in only:  # a branch step selected with a step upstream of it: its condition step lies between them
        branch = plan.branch_of.get(name)
        if branch is not None and branch not in names and selected & (pipeline.upstream_of({name}) - {name}):
            names.append(branch)
    return names


def _with_data(definition: dict[str, Any], data: list[LocalData]) -> dict[str, Any]:
    uris = {item.parameter: item.uri for item in data}
    parameters = [
        {**parameter, "DefaultValue": uris[parameter["Name"]]} if parameter["Name"] in uris else parameter
        for parameter in definition["Parameters"]
    ]
    return {**definition, "Parameters": parameters}


def _each_once(blobs: list[Blob]) -> list[Blob]:
    """A file both an --inputs path and a parameter name is one object: check and upload it once."""
    return list({blob.key: blob for blob in blobs}.values())


@dataclass
class _Done:
    """What has happened so far, for the message of an error half-way."""

    uploaded: Uploaded
    pipeline: str = ""  # "created" / "updated" once done
    execution: str = ""

    def text(self) -> str:
        parts = [self.uploaded.text()]
        parts.append(f"the pipeline was {self.pipeline}" if self.pipeline else "the pipeline was not created")
        if self.pipeline:
            parts.append(f"execution {self.execution} was started" if self.execution else "no execution was started")
        return "; ".join(parts)


def _pipeline_arn(sagemaker: Any, name: str) -> str | None:
    """The pipeline's ARN, or None when it does not exist (moto says ValidationException, AWS ResourceNotFound)."""
    from botocore.exceptions import ClientError

    try:
        return str(sagemaker.describe_pipeline(PipelineName=name)["PipelineArn"])
    except ClientError as error:
        details = error.response.get("Error", {})
        code, message = details.get("Code", ""), str(details.get("Message", "")).lower()
        if code in ("ResourceNotFound", "ResourceNotFoundException") or (
            code == "ValidationException" and ("could not find" in message or "does not exist" in message)
        ):
            return None
        raise


def _latest_succeeded(sagemaker: Any, name: str) -> str:
    paginator = sagemaker.get_paginator("list_pipeline_executions")
    for page in paginator.paginate(PipelineName=name, SortBy="CreationTime", SortOrder="Descending"):
        for summary in page.get("PipelineExecutionSummaries", []):
            if summary.get("PipelineExecutionStatus") == "Succeeded":
                return str(summary["PipelineExecutionArn"])
    raise PromoteError(
        f"--only needs a successful execution of pipeline {name!r} to take the other steps' results from, and "
        "there is none; nothing was uploaded or changed.",
        hint="Promote and run the whole pipeline once (without --only), then select steps.",
    )


def _client_token(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()


def promote(
    pipeline: Pipeline,
    options: PromoteOptions,
    *,
    progress: Progress | None = None,
    publish: Callable[[Event], None] | None = None,
    cancel: CancelToken | None = None,
    clients: Clients | None = None,
) -> Promoted:
    """Export, upload, create or update, start (and with ``options.wait`` follow, publishing events), schedule.

    ``progress`` gets one line per step of the way (and per big upload's quarter); ``clients`` (tests) replaces
    the session made from the standard credential chain. Raises ExportError / PromoteError / PipelineError."""
    say = progress or (lambda _line: None)
    if options.config.region:  # first: a region without SageMaker explains more than its missing images
        check_region(new_session(), options.config.region)
    exported = build_definition(pipeline, options.config)
    settings = exported.settings
    name = settings.pipeline_name
    selected = _selected(pipeline, options.only)
    values = parameter_strings(resolve_parameters(pipeline, options.parameters))
    overrides = {key: values[key] for key in options.parameters}
    if options.schedule is not None:
        check_expression(options.schedule)
        check_schedule_role(options.schedule_role_arn)
    data = local_data(pipeline, exported, options.config.source_dir or Path.cwd(), overrides)
    definition = _with_data(exported.definition, [item for item in data if not item.override])
    overrides.update({item.parameter: item.uri for item in data if item.override})  # a local file's S3 URI
    text = json.dumps(definition, indent=2, ensure_ascii=False) + "\n"
    if len(text.encode("utf-8")) > MAX_DEFINITION_BYTES:
        raise PromoteError(f"the definition with S3 URIs is over SageMaker's limit of {MAX_DEFINITION_BYTES} bytes.")
    if clients is None:
        clients = connect(settings.region, options.profile, max_attempts=options.max_attempts)
    sagemaker = clients.sagemaker
    done = _Done(Uploaded(settings.bucket))
    action = f"looking up pipeline {name}"
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        arn = _pipeline_arn(sagemaker, name)
        source = None
        if selected:
            if arn is None:
                _latest_succeeded_missing(name)
            action = "finding the latest successful execution for --only"
            source = _latest_succeeded(sagemaker, name)
        action = f"checking the bucket {settings.bucket}"
        clients.s3.head_bucket(Bucket=settings.bucket)
        blobs = _each_once(code_blobs(exported) + input_blobs(exported) + [b for item in data for b in item.blobs])
        action = f"uploading {len(blobs)} objects to s3://{settings.bucket}/{settings.prefix}/"
        say(f"checking {len(blobs)} objects under s3://{settings.bucket}/{settings.prefix}/")
        upload_blobs(clients.s3, settings.bucket, blobs, done.uploaded, progress)
        request = {
            "PipelineName": name,
            "PipelineDefinition": text,
            "RoleArn": settings.role_arn,
            "PipelineDescription": f"Pipeline {name}, promoted by jupyter-pipelines from notebook {pipeline.name}.",
        }
        if arn is None:
            action = f"creating pipeline {name}"
            token = _client_token(name, text, settings.role_arn)
            arn = str(sagemaker.create_pipeline(**request, ClientRequestToken=token)["PipelineArn"])
            done.pipeline = "created"
        else:
            action = f"updating pipeline {name}"
            arn = str(sagemaker.update_pipeline(**request)["PipelineArn"])
            done.pipeline = "updated"
        execution = None
        if options.start:
            action = f"starting an execution of pipeline {name}"
            start: dict[str, Any] = {"PipelineName": name, "ClientRequestToken": uuid.uuid4().hex}
            if overrides:
                start["PipelineParameters"] = [{"Name": k, "Value": v} for k, v in sorted(overrides.items())]
            if selected:
                start["SelectiveExecutionConfig"] = {
                    "SourcePipelineExecutionArn": source,
                    "SelectedSteps": [{"StepName": step} for step in selected],
                }
            execution = str(sagemaker.start_pipeline_execution(**start)["PipelineExecutionArn"])
            done.execution = execution
        scheduled = None
        if options.schedule is not None:
            assert options.schedule_role_arn is not None
            scheduled = schedule_pipeline(
                clients.scheduler, name, arn, expression=options.schedule, role_arn=options.schedule_role_arn,
                parameters=overrides, done=done.text(),
            )  # fmt: skip
    except (BotoCoreError, ClientError) as error:
        raise translate(error, action=action, done=done.text(), profile=clients.profile) from None
    from .follow import console_url

    promoted = Promoted(
        pipeline_name=name,
        pipeline_arn=arn,
        created=done.pipeline == "created",
        region=settings.region,
        bucket=settings.bucket,
        uploaded=tuple(sorted(done.uploaded.keys)),
        skipped=done.uploaded.skipped,
        data=tuple(data),
        definition=definition,
        pipeline_url=console_url(settings.region, name),
        execution_arn=execution,
        execution_url=console_url(settings.region, name, execution_arn=execution) if execution else None,
        schedule=scheduled,
    )
    if options.wait and execution is not None:
        status = follow(promoted, pipeline, clients, publish, cancel=cancel)
        promoted = _replace_status(promoted, status)
    return promoted


def _latest_succeeded_missing(name: str) -> None:
    raise PromoteError(
        f"--only selects steps of an earlier successful execution, but pipeline {name!r} does not exist yet; "
        "nothing was uploaded or created.",
        hint="Promote and run the whole pipeline once (without --only) first.",
    )


def _replace_status(promoted: Promoted, status: RunStatus) -> Promoted:
    from dataclasses import replace

    return replace(promoted, status=status)


def follow(
    promoted: Promoted,
    pipeline: Pipeline,
    clients: Clients,
    publish: Callable[[Event], None] | None,
    *,
    cancel: CancelToken | None = None,
) -> RunStatus:
    """Follow the started execution to its end, publishing run events (follow.py); its end status."""
    from .follow import follow_execution

    assert promoted.execution_arn is not None
    return follow_execution(
        clients.sagemaker,
        promoted.execution_arn,
        pipeline,
        publish or (lambda _event: None),
        region=clients.region,
        cancel=cancel,
    )


def options_from_settings(
    settings: Mapping[str, str],
    source_dir: Path,
    *,
    parameters: Mapping[str, ParameterValue] | None = None,
    only: tuple[str, ...] = (),
    start: bool = True,
    wait: bool = False,
    schedule: str | None = None,
    schedule_role_arn: str | None = None,
    max_attempts: int = DEFAULT_ATTEMPTS,
) -> PromoteOptions:
    """The options from merged notebook settings and flags (the CLI, the magic and the widget share this)."""
    from .settings import export_config

    return PromoteOptions(
        config=export_config(settings, source_dir),
        profile=settings.get("profile") or None,
        start=start,
        parameters=dict(parameters or {}),
        only=only,
        wait=wait,
        schedule=schedule,
        schedule_role_arn=schedule_role_arn,
        max_attempts=max_attempts,
    )


def unschedule(settings: Mapping[str, str], notebook_name: str, *, clients: Clients | None = None) -> str:
    """Delete the pipeline's schedule (needs only the region and, if set, the name and profile); a line saying so."""
    from .config import pipeline_name_from
    from .schedule import unschedule_pipeline

    region = settings.get("region", "")
    if not region:
        raise PromoteError(
            "--unschedule needs the region the schedule is in.",
            hint="Pass --region, or set it with `%pipeline config --region R`.",
        )
    name = settings.get("name") or pipeline_name_from(notebook_name)
    clients = clients or connect(region, settings.get("profile") or None)
    deleted = unschedule_pipeline(clients.scheduler, name)
    return f"deleted the schedule {deleted} of pipeline {name} in {region}."
