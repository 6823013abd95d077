"""Promotion benchmark (issue 7): a second, no-op promote of the abalone notebook against moto's server.

Everything is already in S3 and the pipeline exists, so the promote exports, checks every object with one
``head_object`` (in parallel), finds nothing to upload and updates the pipeline. Figures, in-process, best of N,
against baselines measured in the same run: the export alone (``build_definition``), and one ``head_object``
round trip times the number of objects checked (what a sequential check would cost).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from common import best_of, report

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from jupyter_pipelines.authoring.notebook import pipeline_from_notebook  # noqa: E402
from jupyter_pipelines.sagemaker.config import ExportConfig  # noqa: E402
from jupyter_pipelines.sagemaker.export import build_definition  # noqa: E402
from jupyter_pipelines.sagemaker.promote import PromoteOptions, promote  # noqa: E402
from tests.aws_support import BUCKET, REGION, ROLE_ARN, start_moto  # noqa: E402

REPEAT = 7
ABALONE = ROOT / "notebooks" / "abalone.ipynb"


def timed(action) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = start_moto(Path(tmp))
        try:
            os.environ.update(server.env())
            measure(server.endpoint)
        finally:
            server.stop()


def measure(endpoint: str) -> None:
    import boto3

    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    pipeline = pipeline_from_notebook(ABALONE)
    config = ExportConfig(role_arn=ROLE_ARN, bucket=BUCKET, region=REGION, source_dir=ABALONE.parent)
    options = PromoteOptions(config, start=False)
    first = promote(pipeline, options)  # uploads everything, creates the pipeline
    objects = len(first.uploaded)
    second = promote(pipeline, options)
    assert second.uploaded == () and second.skipped == objects, "the second promote uploaded something"

    ours = best_of(REPEAT, lambda: timed(lambda: promote(pipeline, options)))
    export = best_of(REPEAT, lambda: timed(lambda: build_definition(pipeline, config)))
    key = first.uploaded[0]
    s3.head_object(Bucket=BUCKET, Key=key)  # a warm connection, as the promote's clients have
    head = best_of(REPEAT * 3, lambda: timed(lambda: s3.head_object(Bucket=BUCKET, Key=key)))
    report(
        f"no-op promote of abalone ({objects} objects already in S3, pipeline updated), in-process",
        ours,
        None,
        {
            "the export alone (build_definition)": export,
            f"{objects} sequential head_object round trips (one: {head * 1000:.2f} ms)": head * objects,
        },
    )
    print(f"    endpoint: moto's server at {endpoint} (loopback HTTP)")


if __name__ == "__main__":
    main()
