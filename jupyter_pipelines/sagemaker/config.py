"""Where and as whom an exported pipeline runs: the settings, their checks, and SageMaker's naming rules.

Every check here mirrors a rule SageMaker enforces, so a bad setting is an error before anything is uploaded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .errors import ExportError
from .images import DEFAULT_FRAMEWORK

__all__ = [
    "MAX_DEFINITION_BYTES",
    "ExportConfig",
    "Settings",
    "check_sagemaker_name",
    "pipeline_name_from",
    "resolve_config",
    "STAND_INS",
    "setting_problem",
]

MAX_DEFINITION_BYTES = 1_048_576  # CreatePipeline's PipelineDefinition: at most 1 MB
_PIPELINE_NAME = re.compile(r"[A-Za-z0-9](-*[A-Za-z0-9]){0,255}")
_MODEL_PACKAGE_GROUP = re.compile(r"[A-Za-z0-9](-*[A-Za-z0-9]){0,62}")
_SAGEMAKER_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")  # step and parameter names
_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_REGION = re.compile(r"[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]")
_PREFIX_PART = re.compile(r"[A-Za-z0-9!_.*'()-]+")
_HOW = "Set it with `%pipeline config {flag} VALUE` in the notebook, or `{flag} VALUE` on the command line."


@dataclass(frozen=True, kw_only=True)
class ExportConfig:
    """What the export needs besides the pipeline. ``pipeline_name`` and ``prefix`` default from the notebook's
    name; ``source_dir`` (the notebook directory) is where ``--requirements`` files not written by a
    ``%%writefile`` cell are read from."""

    pipeline_name: str | None = None
    role_arn: str = ""
    bucket: str = ""
    region: str = ""
    prefix: str | None = None  # S3 key prefix for code and outputs; default: the pipeline name
    default_framework: str = DEFAULT_FRAMEWORK
    default_instance_type: str = "ml.m5.large"
    model_package_group: str | None = None  # for --kind register; default: the pipeline name
    source_dir: Path | None = None


@dataclass(frozen=True)
class Settings:
    """An ExportConfig checked and with its defaults filled in."""

    pipeline_name: str
    role_arn: str
    bucket: str
    region: str
    prefix: str
    default_framework: str
    default_instance_type: str
    model_package_group: str
    source_dir: Path | None


def pipeline_name_from(stem: str) -> str:
    """A notebook's file name made a valid pipeline name: runs of anything but ASCII letters and digits become one
    hyphen (``churn_model v2`` -> ``churn-model-v2``); ExportError if nothing is left."""
    name = re.sub(r"[^A-Za-z0-9]+", "-", stem).strip("-")[:256].strip("-")
    if not name:
        raise ExportError(
            f"cannot make a SageMaker pipeline name from the notebook name {stem!r}: it has no ASCII letters or "
            "digits.",
            hint=_HOW.format(flag="--name"),
        )
    return name


def check_sagemaker_name(name: str, what: str) -> str:
    """Step and parameter names: 1-64 ASCII letters, digits, '_' or '-'."""
    if not _SAGEMAKER_NAME.fullmatch(name):
        raise ExportError(
            f"{what} {name!r} is not a valid SageMaker name.",
            hint="SageMaker allows 1-64 ASCII letters, digits, '_' and '-'.",
        )
    return name


def _required(value: str, flag: str, what: str, pattern: re.Pattern[str], example: str) -> str:
    if not value:
        raise ExportError(f"the export needs {what}.", hint=_HOW.format(flag=flag))
    if not pattern.fullmatch(value):
        raise ExportError(f"{flag} {value!r} is not a valid {what}, e.g. {example}.", hint=_HOW.format(flag=flag))
    return value


def _prefix(prefix: str) -> str:
    if prefix and not all(_PREFIX_PART.fullmatch(part) for part in prefix.split("/")):
        raise ExportError(
            f"--prefix {prefix!r} is not a valid S3 key prefix.",
            hint="Use words of letters, digits and !_.*'()- separated by single '/', without a leading or trailing "
            "'/', e.g. team/churn.",
        )
    return prefix


def resolve_config(config: ExportConfig, notebook_name: str) -> Settings:
    """Check every setting and fill in the defaults (``notebook_name`` is the pipeline model's name)."""
    if config.pipeline_name is None:
        name = pipeline_name_from(notebook_name)
    elif not _PIPELINE_NAME.fullmatch(config.pipeline_name):
        raise ExportError(
            f"{config.pipeline_name!r} is not a valid SageMaker pipeline name.",
            hint="Use 1-256 ASCII letters, digits and hyphens, starting and ending with a letter or digit "
            "(no underscores).",
        )
    else:
        name = config.pipeline_name
    group = config.model_package_group if config.model_package_group is not None else name[:63].rstrip("-")
    if not _MODEL_PACKAGE_GROUP.fullmatch(group):
        raise ExportError(
            f"{group!r} is not a valid model package group name.",
            hint="Use 1-63 ASCII letters, digits and hyphens, starting and ending with a letter or digit.",
        )
    return Settings(
        pipeline_name=name,
        role_arn=_required(
            config.role_arn, "--role-arn", "IAM role ARN", _ROLE_ARN, "arn:aws:iam::123456789012:role/SageMakerRole"
        ),
        bucket=_required(config.bucket, "--bucket", "S3 bucket name", _BUCKET, "my-ml-bucket"),
        region=_required(config.region, "--region", "AWS region", _REGION, "us-east-1"),
        prefix=_prefix(config.prefix if config.prefix is not None else name),
        default_framework=config.default_framework,
        default_instance_type=config.default_instance_type,
        model_package_group=group,
        source_dir=config.source_dir,
    )


# Valid stand-ins for the settings not being judged, so a check judges only the given ones.
STAND_INS = {"role_arn": "arn:aws:iam::123456789012:role/Check", "bucket": "check-bucket", "region": "us-east-1"}


def setting_problem(key: str, value: str) -> str:
    """What is wrong with one setting's value (``role_arn``, ``bucket``, ``region``, ``prefix``) by the checks the
    export makes, without the hint about command-line flags (a form shows it next to its field); "" if fine."""
    if key not in ("role_arn", "bucket", "region", "prefix"):
        return ""
    settings = {**STAND_INS, key: value}
    config = ExportConfig(
        role_arn=settings["role_arn"],
        bucket=settings["bucket"],
        region=settings["region"],
        prefix=settings.get("prefix"),
    )
    try:
        resolve_config(config, "notebook")
    except ExportError as error:
        text = str(error)
        if error.hint and text.endswith(error.hint):
            text = text[: -len(error.hint)].rstrip()
        return text
    return ""
