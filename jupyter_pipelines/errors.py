"""User-facing errors.

Every mistake a user can make (a bad header, an unknown name, a cycle, a bad parameter value, a missing notebook)
is a :class:`PipelineError` whose message names the cell or step and says how to fix it. The magics and the CLI
print the message and never a traceback; anything that is not a ``PipelineError`` is a bug in this package.
"""

from __future__ import annotations


class PipelineError(Exception):
    """A problem the user can fix; ``str(error)`` is the whole message shown to them."""

    def __init__(self, message: str, *, where: str | None = None, hint: str | None = None) -> None:
        self.where = where
        self.hint = hint
        text = f"{where}: {message}" if where else message
        super().__init__(f"{text} {hint}" if hint else text)


class HeaderError(PipelineError):
    """A ``%%step`` / ``%%parameters`` / ``%%writefile`` header line that cannot be parsed."""


class AnalysisError(PipelineError):
    """The cells do not form a valid pipeline: unknown names, cycles, duplicate steps, syntax errors."""


class ParameterError(PipelineError):
    """A parameter declaration or an override value of the wrong type."""


class NotebookError(PipelineError):
    """A notebook file that is missing, unreadable, not a notebook, or has no steps."""


class StoreError(PipelineError):
    """The ``.pipelines/`` store cannot be read or written (disk full, corrupt record, newer format)."""


class SerializationError(PipelineError):
    """A step output that another step reads cannot be serialized to the store."""


class RunError(PipelineError):
    """A run cannot start or continue: nothing to run, a selected step has no earlier result, and the like."""


class ContainerError(PipelineError):
    """A ``--executor container`` step cannot run: no image named, or one of the problems below."""


class ContainerEngineError(ContainerError):
    """No Docker-compatible engine answers (``DOCKER_HOST``, else the default socket), or the SDK is missing."""


class ContainerPermissionError(ContainerError):
    """The engine's socket exists but this user may not use it."""


class ContainerImageError(ContainerError):
    """The image is not on this machine and cannot be pulled (no registry reachable, or no such image)."""
