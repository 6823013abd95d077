"""Every promotion failure is one message naming the problem, its fix and what was already done.

Where moto can produce the failure (no credentials, a missing bucket, an unreachable endpoint, a missing
schedule) the test uses it over real HTTP. moto cannot expire a token, deny access or throttle: those are
produced on a real client with botocore's ``Stubber`` (or, for throttling, a ``before-send`` hook, because the
Stubber answers before botocore's retry logic and so could not show a throttled call being retried).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.stub import Stubber

from jupyter_pipelines.authoring import pipeline_from_notebook
from jupyter_pipelines.model import Pipeline
from jupyter_pipelines.sagemaker.aws import connect
from jupyter_pipelines.sagemaker.config import ExportConfig
from jupyter_pipelines.sagemaker.errors import ExportError, PromoteError
from jupyter_pipelines.sagemaker.promote import PromoteOptions, promote

from .aws_support import BUCKET, REGION, ROLE_ARN, MotoServer
from .notebooks import write_notebook


def pipeline(tmp_path: Path) -> Pipeline:
    path = write_notebook(tmp_path / "errs.ipynb", ["%%step one\nx = 1", "%%step two\ny = x + 1"])
    return pipeline_from_notebook(path)


def options(tmp_path: Path, **changes: Any) -> PromoteOptions:
    config = ExportConfig(role_arn=ROLE_ARN, bucket=BUCKET, region=REGION, source_dir=tmp_path)
    return PromoteOptions(config, **changes)


def make_bucket() -> None:
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)


def bucket_keys() -> list[str]:
    s3 = boto3.client("s3", region_name=REGION)
    return [item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]


def test_no_credentials(aws: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(PromoteError) as caught:
        promote(pipeline(tmp_path), options(tmp_path))
    assert "no AWS credentials were found" in str(caught.value)
    assert "nothing was uploaded or created" in str(caught.value) and "aws sso login" in str(caught.value)


def test_unknown_profile(aws: MotoServer, tmp_path: Path) -> None:
    with pytest.raises(PromoteError, match="the AWS profile 'nobody' is not in your AWS config"):
        promote(pipeline(tmp_path), options(tmp_path, profile="nobody"))


def test_missing_bucket(aws: MotoServer, tmp_path: Path) -> None:
    with pytest.raises(PromoteError) as caught:
        promote(pipeline(tmp_path), options(tmp_path))
    text = str(caught.value)
    assert "the S3 bucket does not exist" in text and "aws s3 mb" in text
    assert "uploaded 0 objects; the pipeline was not created" in text
    assert boto3.client("sagemaker", region_name=REGION).list_pipelines()["PipelineSummaries"] == []


def test_invalid_role_arn_is_refused_before_any_call(aws: MotoServer, tmp_path: Path) -> None:
    make_bucket()
    config = ExportConfig(role_arn="arn:aws:iam::12:role/x", bucket=BUCKET, region=REGION, source_dir=tmp_path)
    with pytest.raises(ExportError, match="--role-arn 'arn:aws:iam::12:role/x' is not a valid IAM role ARN"):
        promote(pipeline(tmp_path), PromoteOptions(config))
    assert bucket_keys() == []


def test_role_arn_rejected_by_sagemaker_after_the_upload(aws: MotoServer, tmp_path: Path) -> None:
    # Stubbed: moto accepts any well-formed role ARN; SageMaker answers ValidationException for a role it cannot
    # use. S3 stays the real moto endpoint, so the message can say what really went up.
    make_bucket()
    clients = connect(REGION, max_attempts=1)
    with Stubber(clients.sagemaker) as stub:
        stub.add_client_error("describe_pipeline", "ResourceNotFound", "Pipeline errs does not exist", 400)
        stub.add_client_error(
            "create_pipeline",
            "ValidationException",
            f"Could not assume role {ROLE_ARN}: ensure it trusts sagemaker.amazonaws.com",
            400,
        )
        with pytest.raises(PromoteError) as caught:
            promote(pipeline(tmp_path), options(tmp_path), clients=clients)
    text = str(caught.value)
    uploaded = len(bucket_keys())
    assert uploaded > 0
    assert "SageMaker rejected the role ARN while creating pipeline errs" in text
    assert f"uploaded {uploaded} objects to s3://{BUCKET}/; the pipeline was not created" in text


def test_region_without_sagemaker(aws: MotoServer, tmp_path: Path) -> None:
    config = ExportConfig(role_arn=ROLE_ARN, bucket=BUCKET, region="eu-nowhere-1", source_dir=tmp_path)
    with pytest.raises(PromoteError, match="SageMaker is not available in region 'eu-nowhere-1'"):
        promote(pipeline(tmp_path), PromoteOptions(config))


def test_expired_token(aws: MotoServer, tmp_path: Path) -> None:
    # Stubbed: moto never expires credentials.
    clients = connect(REGION, max_attempts=1)
    with Stubber(clients.sagemaker) as stub:
        stub.add_client_error(
            "describe_pipeline", "ExpiredTokenException", "The security token included in the request is expired"
        )
        with pytest.raises(PromoteError) as caught:
            promote(pipeline(tmp_path), options(tmp_path), clients=clients)
    assert "your AWS credentials have expired (DescribePipeline" in str(caught.value)
    assert "uploaded 0 objects; the pipeline was not created" in str(caught.value)


def test_access_denied_says_what_was_uploaded(aws: MotoServer, tmp_path: Path) -> None:
    # Stubbed: moto allows every call (no IAM policy evaluation by default).
    make_bucket()
    clients = connect(REGION, max_attempts=1)
    with Stubber(clients.sagemaker) as stub:
        stub.add_client_error("describe_pipeline", "ValidationException", "Could not find pipeline with name errs")
        stub.add_client_error(
            "create_pipeline", "AccessDeniedException", "User is not authorized to perform CreatePipeline", 403
        )
        with pytest.raises(PromoteError) as caught:
            promote(pipeline(tmp_path), options(tmp_path), clients=clients)
    text = str(caught.value)
    assert "access denied: your AWS identity may not call CreatePipeline (sagemaker:CreatePipeline)" in text
    assert f"uploaded {len(bucket_keys())} objects to s3://{BUCKET}/; the pipeline was not created" in text


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Any:
        yield self.body


def _throttle(times: int, seen: list[int]) -> Any:
    """A before-send hook: the first ``times`` sends of a call get SageMaker's throttling answer (HTTP 400
    ThrottlingException); later ones go to moto. botocore's retry logic sees it as from the service."""

    def hook(request: Any, **_: Any) -> AWSResponse | None:
        seen.append(1)
        if len(seen) > times:
            return None
        body = b'{"__type": "ThrottlingException", "message": "Rate exceeded"}'
        headers = {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": "throttled"}
        return AWSResponse(request.url, 400, headers, _Raw(body))

    return hook


def test_throttling_is_retried_then_succeeds(aws: MotoServer, tmp_path: Path) -> None:
    make_bucket()
    clients = connect(REGION, max_attempts=3)
    seen: list[int] = []
    clients.sagemaker.meta.events.register("before-send.sagemaker.CreatePipeline", _throttle(1, seen))
    promoted = promote(pipeline(tmp_path), options(tmp_path, start=False), clients=clients)
    assert promoted.created and len(seen) == 2  # throttled once, retried, created in moto
    assert boto3.client("sagemaker", region_name=REGION).describe_pipeline(PipelineName="errs")["PipelineArn"]


def test_throttling_after_retries(aws: MotoServer, tmp_path: Path) -> None:
    make_bucket()
    clients = connect(REGION, max_attempts=2)
    seen: list[int] = []
    clients.sagemaker.meta.events.register("before-send.sagemaker.CreatePipeline", _throttle(99, seen))
    with pytest.raises(PromoteError) as caught:
        promote(pipeline(tmp_path), options(tmp_path), clients=clients)
    assert len(seen) == 2
    assert "AWS kept throttling CreatePipeline (ThrottlingException) while creating pipeline errs" in str(
        caught.value
    )
    assert "the pipeline was not created" in str(caught.value)


def test_endpoint_unreachable(aws: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # the discard port: nothing listens
    with pytest.raises(PromoteError) as caught:
        promote(pipeline(tmp_path), options(tmp_path, max_attempts=1))
    assert "cannot reach the AWS endpoint while looking up pipeline errs" in str(caught.value)
    assert "AWS_ENDPOINT_URL" in str(caught.value)
