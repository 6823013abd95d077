"""Leaving the laptop: the pipeline model as a SageMaker pipeline definition (and, later, its promotion).

``export`` writes the definition JSON and the code bundles beside it; ``validate`` checks a definition against
AWS's schema and for consistency; ``images`` resolves ``--framework`` to image URIs; ``entry.py`` and
``inference.py`` are not imported here: they are shipped in the bundles and run inside SageMaker's containers.
"""

from __future__ import annotations

from .config import ExportConfig, pipeline_name_from
from .errors import ExportError
from .export import build_definition, export_pipeline
from .validate import definition_problems

__all__ = [
    "ExportConfig",
    "ExportError",
    "build_definition",
    "definition_problems",
    "export_pipeline",
    "pipeline_name_from",
]
