"""Pipeline-wide step defaults from the notebook's settings (``%pipeline config --executor E --image I``).

They live with the export settings in the notebook's metadata, so the magics, the widget and the CLI build the same
pipeline. A default fills in only what a step's own header leaves out: ``executor`` for steps without
``--executor``, ``image`` for steps with neither ``--image`` nor ``--framework``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace

from ..errors import HeaderError
from ..model import EXECUTORS, Pipeline, Step

DEFAULT_SETTINGS = ("executor", "image")
_IMAGE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@-]{0,254}")


def check_defaults(settings: Mapping[str, str]) -> None:
    """Raise a HeaderError naming the fix if a default setting has a value no step could take."""
    executor = settings.get("executor")
    if executor and executor not in EXECUTORS:
        raise HeaderError(
            f"the default executor must be one of {', '.join(EXECUTORS)}, got {executor!r}.",
            where="%pipeline config",
            hint="E.g. %pipeline config --executor container --image python:3.11-slim.",
        )
    image = settings.get("image")
    if image and not _IMAGE.fullmatch(image):
        raise HeaderError(
            f"--image takes a container image name (no spaces), got {image!r}.", where="%pipeline config"
        )


def apply_defaults(pipeline: Pipeline, settings: Mapping[str, str]) -> Pipeline:
    """The pipeline with the settings' defaults filled into the steps that do not say otherwise."""
    executor = settings.get("executor") or None
    image = settings.get("image") or None
    if executor is None and image is None:
        return pipeline
    check_defaults(settings)
    steps = tuple(_with_defaults(step, executor, image) for step in pipeline.steps)
    return replace(pipeline, steps=steps)


def _with_defaults(step: Step, executor: str | None, image: str | None) -> Step:
    changes: dict[str, object] = {}
    if executor is not None and not step.executor_given:
        changes["executor"] = executor
    if image is not None and step.image is None and step.framework is None:
        changes["image"] = image
    return replace(step, **changes) if changes else step  # type: ignore[arg-type]
