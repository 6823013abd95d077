"""Helpers for the export tests: small pipelines, the export settings, bundle contents."""

from __future__ import annotations

import io
import json
import tarfile
import textwrap
from pathlib import Path
from typing import Any

from jupyter_pipelines.authoring import pipeline_from_notebook
from jupyter_pipelines.authoring.builder import Cell, build_pipeline
from jupyter_pipelines.model import Pipeline
from jupyter_pipelines.sagemaker import ExportConfig
from jupyter_pipelines.sagemaker.bundles import ARCHIVE, Bundle
from jupyter_pipelines.sagemaker.export import Exported

ROOT = Path(__file__).resolve().parent.parent
ABALONE = ROOT / "notebooks" / "abalone.ipynb"
GOLDEN = Path(__file__).resolve().parent / "golden"
CONFIG = ExportConfig(role_arn="arn:aws:iam::123456789012:role/SageMakerRole", bucket="my-bucket", region="us-east-1")


def build(name: str, *sources: str) -> Pipeline:
    cells = [Cell(i, textwrap.dedent(source).lstrip("\n"), f"id{i}") for i, source in enumerate(sources)]
    return build_pipeline(cells, name)


def abalone() -> Pipeline:
    return pipeline_from_notebook(ABALONE)


def bundle_files(bundle: Bundle) -> dict[str, bytes]:
    """A bundle's files, with a training or serving bundle's archive unpacked."""
    if ARCHIVE not in bundle.files:
        return dict(bundle.files)
    with tarfile.open(fileobj=io.BytesIO(bundle.files[ARCHIVE])) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


def normalized(exported: Exported) -> tuple[str, dict[str, Any]]:
    """The definition with bundle keys named after their steps, and a manifest of each bundle: its files (the
    copied runtime and cloudpickle left out: they change with those packages) and its step.json."""
    text = exported.text
    manifest: dict[str, Any] = {}
    for step, bundle in exported.bundles.items():
        text = text.replace(bundle.key, f"<code:{step}>")
        files = bundle_files(bundle)
        manifest[step] = {
            "archive": ARCHIVE in bundle.files,
            "files": sorted(name for name in files if not name.startswith("cloudpickle/")),
            "step.json": json.loads(files["step.json"]),
        }
    return text, manifest
