"""What the skins hand the engine so container steps run the SageMaker job bundle: the engine never imports the
sagemaker layer (dependencies point down), the skins wire the two together (``RunOptions.job_files``).

The import is deferred to the first container step: a run without one never loads the exporter.
"""

from __future__ import annotations

from pathlib import Path

from .model import Pipeline, Step


def job_files(pipeline: Pipeline, step: Step, workdir: Path) -> dict[str, bytes]:
    """The files of ``step``'s job bundle (see ``sagemaker.bundles.local_job_files``)."""
    from .sagemaker.bundles import local_job_files

    return local_job_files(pipeline, step, workdir)
