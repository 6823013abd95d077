"""``jupyter-pipelines runs NOTEBOOK --remote``: the notebook's pipeline executions in SageMaker, one line each.

The pipeline name and region come from the notebook's settings as for the export (flags win), credentials from
boto3's standard chain (environment, ``--profile``, SSO, instance role): nothing is stored here.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from ..errors import PipelineError
from .aws import connect, default_region
from .config import pipeline_name_from
from .follow import list_executions

__all__ = ["remote_runs_text"]

_DONE = "nothing was listed"


def _when(value: Any) -> str:
    if isinstance(value, datetime.datetime):
        return value.astimezone(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    return "-"


def remote_runs_text(pipeline_model_name: str, settings: Mapping[str, str], profile: str | None = None) -> str:
    """One line per execution, newest first: id, status, start time, duration, console page."""
    profile = profile or settings.get("profile") or None
    name = settings.get("name") or pipeline_name_from(pipeline_model_name)
    region = settings.get("region") or ""
    if not region:
        region = default_region(profile)
    if not region:
        raise PipelineError(
            "runs --remote needs the AWS region of the pipeline.",
            hint="Pass --region (e.g. us-east-1), or save it in the notebook's settings with %pipeline config.",
        )
    executions = list_executions(connect(region, profile, done=_DONE).sagemaker, name)
    if not executions:
        return f"the SageMaker pipeline {name!r} in {region} has no executions yet."
    lines = []
    for run in executions:
        duration = f"{run['duration']:8.1f}s" if run["duration"] is not None else "        -"
        lines.append(f"{run['id']}  {run['status']:<10}  {_when(run['start'])}  {duration}  {run['url']}")
    return "\n".join(lines)
