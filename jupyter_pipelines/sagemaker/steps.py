"""One pipeline step to one SageMaker step definition, per ``--kind``; plus condition and fail steps.

Keys come in the SDK's order (``Name``, ``Type``, ``Arguments``, then ``DependsOn``, ``CacheConfig``,
``RetryPolicies``, ``PropertyFiles``); maps whose order means nothing (environments, hyperparameters) are sorted.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..authoring.conditions import value_refs
from ..engine.redact import is_secret_name
from ..model import Pipeline, Step
from .bundles import ARCHIVE, Bundle, code_inputs, data_input_name
from .config import Settings
from .data import DataLocation
from .errors import ExportError
from .expressions import (
    PROPERTY_FILE,
    PROPERTY_FILE_NAME,
    condition_json,
    fail_message_json,
    get,
    join,
    model_artifacts,
    output_destination,
    parameter_text,
    processing_output,
)
from .images import Use, resolve_image
from .plan import Branch, Plan

__all__ = ["Context", "condition_step", "step_definition"]

Json = Any
_CODE_DIR = "/opt/ml/processing/input/code"
_VOLUME_GB = 30
_MAX_RETRIES = 20  # SageMaker's MaxAttempts limit
_STEP_FAULTS = ["Step.SERVICE_FAULT", "Step.THROTTLING"]
_JOB_FAULTS = ["SageMaker.JOB_INTERNAL_ERROR", "SageMaker.CAPACITY_ERROR", "SageMaker.RESOURCE_LIMIT"]
_JOB_KINDS = ("processing", "training", "transform")
_REQUEST_TYPES = ["application/x-npy", "text/csv"]


@dataclass(frozen=True)
class Context:
    pipeline: Pipeline
    plan: Plan
    settings: Settings
    bundles: Mapping[str, Bundle]  # step name -> its code bundle (not for transform steps)
    data: Mapping[str, DataLocation]  # a declared --inputs path -> where it is in S3


def _where(step: Step) -> str:
    return f"step {step.name!r} (cell {step.cell_index + 1})"


# ---- pieces shared by the kinds -----------------------------------------------------------------------------------


def _image(ctx: Context, step: Step, use: Use) -> str:
    if step.image is not None:
        return step.image
    framework = step.framework or ctx.settings.default_framework
    return resolve_image(framework, ctx.settings.region, use, where=_where(step))


def _instance_count(step: Step) -> Json:
    if isinstance(step.instance_count, str):
        return get(f"Parameters.{step.instance_count}")
    return step.instance_count or 1


def _instance_type(ctx: Context, step: Step) -> str:
    return step.instance_type or ctx.settings.default_instance_type


def _parameters_read(ctx: Context, step: Step) -> list[str]:
    """Parameters the step's code receives: what a cell reads; every parameter for a script."""
    return [p.name for p in ctx.pipeline.parameters] if step.script is not None else list(step.parameters)


def _environment(ctx: Context, step: Step, extra: Mapping[str, Json] | None = None) -> dict[str, Json]:
    """``JP_PARAM_<NAME>`` for each parameter the step reads, the entry's settings, then ``--env``; sorted."""
    env: dict[str, Json] = dict(extra or {})
    for name in _parameters_read(ctx, step):
        env[f"JP_PARAM_{name.upper()}"] = parameter_text(ctx.pipeline.parameter(name))
    env.update(dict(step.env))
    return dict(sorted(env.items()))


def _reads_from(step: Step) -> list[str]:
    """Upstream steps whose outputs flow in: those it reads names from (every upstream step, for a script)."""
    if step.script is not None:
        return list(step.upstream)
    return list(dict.fromkeys(item.step for item in code_inputs(step)))


def _upstream_uri(ctx: Context, step: Step, upstream: str) -> Json:
    source = ctx.pipeline.step(upstream)
    if source.kind == "processing":
        return processing_output(upstream)
    if source.kind == "training":
        return model_artifacts(upstream)
    raise ExportError(
        f"{_where(step)} reads from step {upstream!r}, a --kind {source.kind} step; on SageMaker only a --kind "
        "transform step can use what a model step makes.",
        hint=f"Read the values from the step upstream of {upstream!r} instead.",
    )


def _data_inputs(ctx: Context, step: Step) -> list[tuple[str, str]]:
    """(job input name, S3 folder URI) of each declared ``--inputs`` path; the names must not be upstream steps'."""
    found = []
    upstreams = set(_reads_from(step))
    for index, path in enumerate(step.data_inputs):
        name = data_input_name(index)
        if name in upstreams:
            raise ExportError(
                f"{_where(step)} reads from a step named {name!r}, the job input its --inputs {path} arrives in.",
                hint=f"Rename step {name!r}.",
            )
        found.append((name, ctx.data[path].folder_uri(ctx.settings.bucket)))
    return found


def _no_secrets(step: Step) -> None:
    """A secret-looking ``--env`` would sit in plain text in the definition (and in SageMaker's describe output)."""
    names = [name for name, _ in step.env if is_secret_name(name)]
    if names:
        raise ExportError(
            f"{_where(step)} sets --env {names[0]}=..., which looks like a secret (its name contains KEY, SECRET, "
            "TOKEN or PASSWORD); the export would write its value into the pipeline definition in plain text.",
            hint="Pass secrets at run time instead: store it in AWS Secrets Manager and read it in the step "
            "(boto3.client('secretsmanager').get_secret_value(SecretId=...)), and drop the --env.",
        )


def _only_processing_scripts(step: Step) -> None:
    if step.script is not None and step.kind != "processing":
        raise ExportError(
            f"{_where(step)} runs the script {step.script} with --kind {step.kind}; scripts export as processing "
            "steps only.",
            hint="Drop --kind, or make the step a cell.",
        )


def _retry_policies(step: Step) -> list[Json]:
    if step.retry > _MAX_RETRIES:
        raise ExportError(
            f"{_where(step)}: --retry {step.retry} is more than SageMaker's {_MAX_RETRIES} attempts.",
            hint=f"Use --retry {_MAX_RETRIES} or less.",
        )
    policy = {"IntervalSeconds": 1, "BackoffRate": 2.0, "MaxAttempts": step.retry}
    policies = [{"ExceptionType": list(_STEP_FAULTS), **policy}]
    if step.kind in _JOB_KINDS:
        policies.append({"ExceptionType": list(_JOB_FAULTS), **policy})
    return policies


def _finish(ctx: Context, step: Step, definition: dict[str, Json]) -> dict[str, Json]:
    """Add DependsOn (``--after``), CacheConfig (``--cache``), RetryPolicies (``--retry``), PropertyFiles."""
    if step.after:
        definition["DependsOn"] = [ctx.plan.exported[name] for name in step.after]
    if step.kind in _JOB_KINDS and step.cache.enabled and step.cache.expire_after is not None:
        definition["CacheConfig"] = {"Enabled": True, "ExpireAfter": step.cache.expire_after}
    if step.retry:
        definition["RetryPolicies"] = _retry_policies(step)
    if step.name in ctx.plan.properties:
        definition["PropertyFiles"] = [
            {"PropertyFileName": PROPERTY_FILE_NAME, "OutputName": step.name, "FilePath": PROPERTY_FILE}
        ]
    return definition


def _stopping(step: Step, default: int | None = None) -> dict[str, Json]:
    seconds = math.ceil(step.timeout) if step.timeout is not None else default
    return {"StoppingCondition": {"MaxRuntimeInSeconds": seconds}} if seconds is not None else {}


def _s3_input(name: str, uri: Json, local_path: str) -> Json:
    return {
        "InputName": name,
        "AppManaged": False,
        "S3Input": {
            "S3Uri": uri,
            "LocalPath": local_path,
            "S3DataType": "S3Prefix",
            "S3InputMode": "File",
            "S3DataDistributionType": "FullyReplicated",
            "S3CompressionType": "None",
        },
    }


# ---- the kinds ----------------------------------------------------------------------------------------------------


def _processing(ctx: Context, step: Step) -> Json:
    settings = ctx.settings
    bundle = ctx.bundles[step.name]
    inputs = []
    for upstream in _reads_from(step):
        if upstream == "code":
            raise ExportError(
                f"{_where(step)} reads from a step named 'code', the name SageMaker's code input takes.",
                hint="Rename step 'code'.",
            )
        inputs.append(_s3_input(upstream, _upstream_uri(ctx, step, upstream), f"/opt/ml/processing/input/{upstream}"))
    for name, uri in _data_inputs(ctx, step):
        inputs.append(_s3_input(name, uri, f"/opt/ml/processing/input/{name}"))
    inputs.append(_s3_input("code", bundle.uri(settings.bucket, settings.prefix) + "/", _CODE_DIR))
    arguments: dict[str, Json] = {
        "ProcessingResources": {
            "ClusterConfig": {
                "InstanceType": _instance_type(ctx, step),
                "InstanceCount": _instance_count(step),
                "VolumeSizeInGB": _VOLUME_GB,
            }
        },
        "AppSpecification": {
            "ImageUri": _image(ctx, step, "job"),
            "ContainerEntrypoint": ["python3", f"{_CODE_DIR}/entry.py"],
        },
        "RoleArn": settings.role_arn,
        "ProcessingInputs": inputs,
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": step.name,
                    "AppManaged": False,
                    "S3Output": {
                        "S3Uri": output_destination(settings.bucket, settings.prefix, step.name, step.name),
                        "LocalPath": f"/opt/ml/processing/output/{step.name}",
                        "S3UploadMode": "EndOfJob",
                    },
                }
            ]
        },
    }
    environment = _environment(ctx, step)
    if environment:
        arguments["Environment"] = environment
    arguments.update(_stopping(step))
    return arguments


def _channel(name: str, uri: Json) -> Json:
    return {
        "ChannelName": name,
        "DataSource": {
            "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri, "S3DataDistributionType": "FullyReplicated"}
        },
    }


def _training(ctx: Context, step: Step) -> Json:
    settings = ctx.settings
    bundle = ctx.bundles[step.name]
    channels = [_channel(upstream, _upstream_uri(ctx, step, upstream)) for upstream in _reads_from(step)]
    channels += [_channel(name, uri) for name, uri in _data_inputs(ctx, step)]
    hyperparameters: dict[str, Json] = {
        "sagemaker_container_log_level": "20",
        "sagemaker_program": json.dumps("entry.py"),
        "sagemaker_region": json.dumps(settings.region),
        "sagemaker_submit_directory": json.dumps(bundle.uri(settings.bucket, settings.prefix, ARCHIVE)),
    }
    hyperparameters.update({f"jp_param_{name}": get(f"Parameters.{name}") for name in step.parameters})
    arguments: dict[str, Json] = {
        "AlgorithmSpecification": {"TrainingImage": _image(ctx, step, "job"), "TrainingInputMode": "File"},
        "OutputDataConfig": {"S3OutputPath": output_destination(settings.bucket, settings.prefix, step.name)},
        **_stopping(step, 86400),
        "ResourceConfig": {
            "VolumeSizeInGB": _VOLUME_GB,
            "InstanceCount": _instance_count(step),
            "InstanceType": _instance_type(ctx, step),
        },
        "RoleArn": settings.role_arn,
        "HyperParameters": dict(sorted(hyperparameters.items())),
    }
    if channels:
        arguments["InputDataConfig"] = channels
    if step.env:
        arguments["Environment"] = dict(sorted(step.env))
    return arguments


def _trained_by(ctx: Context, step: Step) -> str:
    """The one training step a model / register step serves (it must read only from that step)."""
    sources = _reads_from(step)
    if len(sources) != 1 or ctx.pipeline.step(sources[0]).kind != "training":
        found = ", ".join(f"{s!r} ({ctx.pipeline.step(s).kind})" for s in sources) or "none"
        raise ExportError(
            f"{_where(step)} is a --kind {step.kind} step, so it must read from exactly one --kind training step "
            f"(whose outputs are the model artifacts); it reads from: {found}.",
            hint="Read the trained model from the training step only; compute anything else in the training step.",
        )
    return sources[0]


def _container(ctx: Context, step: Step) -> Json:
    settings = ctx.settings
    bundle = ctx.bundles[step.name]
    serving = {
        "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
        "SAGEMAKER_PROGRAM": "inference.py",
        "SAGEMAKER_REGION": settings.region,
        "SAGEMAKER_SUBMIT_DIRECTORY": bundle.uri(settings.bucket, settings.prefix, ARCHIVE),
    }
    return {
        "Image": _image(ctx, step, "serving"),
        "Environment": _environment(ctx, step, serving),
        "ModelDataUrl": model_artifacts(_trained_by(ctx, step)),
    }


def _model(ctx: Context, step: Step) -> Json:
    return {"ExecutionRoleArn": ctx.settings.role_arn, "PrimaryContainer": _container(ctx, step)}


def _register(ctx: Context, step: Step) -> Json:
    instance_type = _instance_type(ctx, step)
    arguments: dict[str, Json] = {
        "ModelPackageGroupName": ctx.settings.model_package_group,
        "InferenceSpecification": {
            "Containers": [_container(ctx, step)],
            "SupportedContentTypes": list(_REQUEST_TYPES),
            "SupportedResponseMIMETypes": ["text/csv"],
            "SupportedRealtimeInferenceInstanceTypes": [instance_type],
            "SupportedTransformInstanceTypes": [instance_type],
        },
        "ModelApprovalStatus": "PendingManualApproval",
    }
    refs = value_refs(step.condition) if step.condition is not None else ()
    if refs:  # the values its condition judged it by are its quality metrics
        report = join([processing_output(refs[0].step), PROPERTY_FILE])
        arguments["ModelMetrics"] = {"ModelQuality": {"Statistics": {"ContentType": "application/json",
                                                                     "S3Uri": report}}}  # fmt: skip
    return arguments


def _transform(ctx: Context, step: Step) -> Json:
    inputs = code_inputs(step)
    models = [i for i in inputs if ctx.pipeline.step(i.step).kind == "model"]
    data = [i for i in inputs if ctx.pipeline.step(i.step).kind != "model"]
    if len({i.step for i in models}) != 1 or len(data) != 1 or ctx.pipeline.step(data[0].step).kind != "processing":
        raise ExportError(
            f"{_where(step)} is a --kind transform step, so it must read `predict` from one --kind model step and "
            "one array from one processing step (e.g. predictions = predict(test_features)); it reads "
            + (", ".join(f"{i.name!r} from {i.step!r}" for i in inputs) or "nothing")
            + ".",
            hint="Batch transform runs the model on one stored input; compute anything else in another step.",
        )
    settings = ctx.settings
    source = data[0]
    arguments: dict[str, Json] = {
        "ModelName": get(f"Steps.{ctx.plan.exported[models[0].step]}.ModelName"),
        "TransformInput": {
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": "S3Prefix",
                    "S3Uri": join([processing_output(source.step), f"{source.name}."]),
                }
            },
            "ContentType": "application/x-npy",
        },
        "TransformOutput": {
            "S3OutputPath": output_destination(settings.bucket, settings.prefix, step.name),
            "Accept": "text/csv",
            "AssembleWith": "Line",
        },
        "TransformResources": {"InstanceCount": _instance_count(step), "InstanceType": _instance_type(ctx, step)},
    }
    if step.env:
        arguments["Environment"] = dict(sorted(step.env))
    return arguments


_KINDS = {
    "processing": ("Processing", _processing),
    "training": ("Training", _training),
    "model": ("Model", _model),
    "register": ("RegisterModel", _register),
    "transform": ("Transform", _transform),
}


def step_definition(ctx: Context, step: Step) -> Json:
    _no_secrets(step)
    _only_processing_scripts(step)
    type_, build = _KINDS[step.kind]
    definition = {"Name": ctx.plan.exported[step.name], "Type": type_, "Arguments": build(ctx, step)}
    return _finish(ctx, step, definition)


def condition_step(ctx: Context, branch: Branch) -> Json:
    """The shared condition step: its IfSteps are the branch's steps, its ElseSteps the fail step if any."""
    else_steps = []
    if branch.fail_step is not None and branch.else_fail is not None:
        message = fail_message_json(branch.else_fail, branch.condition)
        else_steps.append({"Name": branch.fail_step, "Type": "Fail", "Arguments": {"ErrorMessage": message}})
    if_steps = [step_definition(ctx, ctx.pipeline.step(name)) for name in branch.steps]
    return {
        "Name": branch.name,
        "Type": "Condition",
        "Arguments": {"Conditions": condition_json(branch.condition), "IfSteps": if_steps, "ElseSteps": else_steps},
    }
