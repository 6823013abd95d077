"""The errors the SageMaker layer raises for what a user can fix."""

from __future__ import annotations

from ..errors import PipelineError

__all__ = ["ExportError", "PromoteError"]


class ExportError(PipelineError):
    """The pipeline cannot become a SageMaker definition as it is: a setting is missing or invalid, a name or the
    definition breaks a SageMaker limit, or a step's shape has no SageMaker equivalent."""


class PromoteError(PipelineError):
    """Promotion to SageMaker stopped: credentials, permissions, a missing bucket, a region, throttling, the network.
    The message also says what was already done (uploaded objects, a created pipeline), so nothing is left
    half-done without a word."""
