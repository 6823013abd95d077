"""Turning notebook cells into the pipeline model; builds pipelines, never runs them.

``header`` parses ``%%step`` / ``%%parameters`` / ``%%writefile`` lines, ``analysis`` (on ``scopes``) reads a cell
body with ``ast``, ``prelude`` splits plain cells into shareable parts, ``parameters`` declares and checks parameter
values, ``builder`` resolves dependencies into a :class:`~jupyter_pipelines.model.Pipeline` (with ``files`` finding
the tracked files a step uses and ``ordering`` the run order), ``describe`` prints it, and ``notebook`` (the only
module doing I/O) reads ``.ipynb`` files. Nothing here imports IPython or the engine.
"""

from __future__ import annotations

from .builder import Cell, build_pipeline, describe_pipeline
from .header import STEP_HELP, ParametersHeader, StepHeader, WritefileHeader, parse_header, split_cell
from .notebook import notebook_dir, pipeline_from_notebook, read_cells
from .parameters import coerce_parameter, parse_overrides, resolve_parameters

__all__ = [
    "STEP_HELP",
    "Cell",
    "ParametersHeader",
    "StepHeader",
    "WritefileHeader",
    "build_pipeline",
    "coerce_parameter",
    "describe_pipeline",
    "notebook_dir",
    "parse_header",
    "parse_overrides",
    "pipeline_from_notebook",
    "read_cells",
    "resolve_parameters",
    "split_cell",
]
