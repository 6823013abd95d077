"""The one error the SageMaker layer raises for what a user can fix."""

from __future__ import annotations

from ..errors import PipelineError

__all__ = ["ExportError"]


class ExportError(PipelineError):
    """The pipeline cannot become a SageMaker definition as it is: a setting is missing or invalid, a name or the
    definition breaks a SageMaker limit, or a step's shape has no SageMaker equivalent."""
