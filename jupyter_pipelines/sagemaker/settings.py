"""Per-notebook export settings (role, bucket, region, prefix, name) turned into an export on disk.

The settings come from the notebook's metadata, ``%pipeline config`` and command-line flags (later ones win); the
magics, the widget's Export button and the CLI all go through :func:`write_export`, so they write the same files.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

from ..model import Pipeline
from .config import ExportConfig
from .export import export_pipeline

# "executor" and "image": the pipeline-wide step defaults (authoring/defaults.py), kept with the export settings.
# "profile": the AWS profile promotion uses (a name in ~/.aws/config, never a credential).
SETTINGS = ("role_arn", "bucket", "region", "prefix", "name", "executor", "image", "profile")


def export_config(settings: Mapping[str, str], source_dir: Path) -> ExportConfig:
    """The exporter's config from merged settings; a missing one is reported by the exporter with its fix."""
    return ExportConfig(
        pipeline_name=settings.get("name") or None,
        role_arn=settings.get("role_arn", ""),
        bucket=settings.get("bucket", ""),
        region=settings.get("region", ""),
        prefix=settings.get("prefix") or None,
        source_dir=source_dir,
    )


def write_export(pipeline: Pipeline, settings: Mapping[str, str], workdir: Path, output: Path) -> Path:
    """Export into the folder of ``output``: the definition takes its name, the code bundles ``<stem>.bundles``."""
    output.parent.mkdir(parents=True, exist_ok=True)
    written = export_pipeline(pipeline, export_config(settings, workdir), output.parent)
    if written != output:
        bundles, target_bundles = written.with_suffix(".bundles"), output.with_suffix(".bundles")
        if bundles.exists():
            shutil.rmtree(target_bundles, ignore_errors=True)
            bundles.rename(target_bundles)
        written.replace(output)
    return output
