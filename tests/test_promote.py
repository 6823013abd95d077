"""Promotion against a real local endpoint (moto's server over HTTP): uploads, create/update, start, selection.

moto answers every execution "Succeeded" at once and accepts any definition, so these tests check what was sent
and stored; the definition itself is validated by the exporter's own tests.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import boto3
import pytest

from jupyter_pipelines.authoring import pipeline_from_notebook
from jupyter_pipelines.sagemaker.aws import connect
from jupyter_pipelines.sagemaker.config import ExportConfig
from jupyter_pipelines.sagemaker.errors import PromoteError
from jupyter_pipelines.sagemaker.export import build_definition
from jupyter_pipelines.sagemaker.promote import PromoteOptions, promote

from .aws_support import BUCKET, REGION, ROLE_ARN, MotoServer
from .notebooks import write_notebook

ABALONE = Path(__file__).resolve().parent.parent / "notebooks" / "abalone.ipynb"


def config(source_dir: Path, **changes: Any) -> ExportConfig:
    return ExportConfig(role_arn=ROLE_ARN, bucket=BUCKET, region=REGION, source_dir=source_dir, **changes)


def small(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Two steps, a parameter naming a local CSV, one naming a directory, one plain string, an int."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "rows.csv").write_text("a,b\n1,2\n")
    (tmp_path / "refs").mkdir()
    (tmp_path / "refs" / "one.txt").write_text("one\n")
    (tmp_path / "refs" / "sub").mkdir()
    (tmp_path / "refs" / "sub" / "two.txt").write_text("two\n")
    path = write_notebook(
        tmp_path / "small.ipynb",
        [
            '%%parameters\ninput_data: str = "data/rows.csv"\nrefs: str = "refs"\nlabel: str = "plain"\n'
            "rows: int = 3\nshuffle: bool = False",
            "%%step prepare\nvalues = list(range(rows))",
            "%%step total\nresult = sum(values)",
        ],
    )
    return pipeline_from_notebook(path)


def s3_keys() -> set[str]:
    s3 = boto3.client("s3", region_name=REGION)
    return {item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])}


def test_promote_uploads_creates_and_a_second_promote_uploads_nothing(aws: MotoServer, tmp_path: Path) -> None:
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
    pipeline = small(tmp_path)
    options = PromoteOptions(config(tmp_path), start=False)
    lines: list[str] = []
    first = promote(pipeline, options, progress=lines.append)

    assert first.created and first.execution_arn is None
    keys = s3_keys()
    assert set(first.uploaded) == keys and first.skipped == 0
    exported = build_definition(pipeline, options.config)
    code_keys = {f"small/code/{b.key}/{name}" for b in exported.bundles.values() for name in b.files}
    assert code_keys <= keys
    data_keys = keys - code_keys
    assert {key.split("/", 3)[-1] for key in data_keys} == {"rows.csv", "refs/one.txt", "refs/sub/two.txt"}
    assert all(key.startswith("small/data/") for key in data_keys)
    csv_key = next(key for key in data_keys if key.endswith("rows.csv"))
    body = boto3.client("s3", region_name=REGION).get_object(Bucket=BUCKET, Key=csv_key)
    assert body["Body"].read() == b"a,b\n1,2\n"

    sagemaker = boto3.client("sagemaker", region_name=REGION)
    described = sagemaker.describe_pipeline(PipelineName="small")
    stored = json.loads(described["PipelineDefinition"])
    # identical to the export, except that local-file defaults became their S3 URIs
    uris = {item.parameter: item.uri for item in first.data}
    assert uris["input_data"].startswith(f"s3://{BUCKET}/small/data/") and uris["input_data"].endswith("/rows.csv")
    assert uris["refs"].endswith("/refs/")
    expected = json.loads(json.dumps(exported.definition))
    for parameter in expected["Parameters"]:
        parameter["DefaultValue"] = uris.get(parameter["Name"], parameter["DefaultValue"])
    assert stored == expected == first.definition
    assert described["RoleArn"] == ROLE_ARN and "jupyter-pipelines" in described["PipelineDescription"]
    assert any(line.startswith("checking ") for line in lines)  # live progress (what was done: first.lines())
    assert any(line.startswith("created pipeline small: https://") for line in first.lines())

    second = promote(pipeline, options)
    assert second.uploaded == () and second.skipped == len(keys) and not second.created
    assert second.pipeline_arn == first.pipeline_arn
    assert sagemaker.describe_pipeline(PipelineName="small")["PipelineDefinition"] == described["PipelineDefinition"]


def test_a_changed_object_is_uploaded_again(aws: MotoServer, tmp_path: Path) -> None:
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
    pipeline = small(tmp_path)
    options = PromoteOptions(config(tmp_path), start=False)
    first = promote(pipeline, options)
    key = first.uploaded[0]
    boto3.client("s3", region_name=REGION).put_object(Bucket=BUCKET, Key=key, Body=b"tampered")  # no hash metadata
    again = promote(pipeline, options)
    assert again.uploaded == (key,)


def test_start_with_parameter_overrides_and_selective_execution(aws: MotoServer, tmp_path: Path) -> None:
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
    pipeline = small(tmp_path)
    first = promote(pipeline, PromoteOptions(config(tmp_path), parameters={"rows": 7, "shuffle": True}))
    assert first.execution_arn and first.execution_arn.startswith(first.pipeline_arn + "/execution/")
    assert first.execution_url and "executions/" in first.execution_url
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    sent = sagemaker.list_pipeline_parameters_for_execution(PipelineExecutionArn=first.execution_arn)
    assert {p["Name"]: p["Value"] for p in sent["PipelineParameters"]} == {"rows": "7", "shuffle": "true"}

    # moto ignores SelectiveExecutionConfig: read the request body the real client put on the wire, with
    # botocore's own event hook (the call still goes to moto)
    clients = connect(REGION, max_attempts=2)
    calls: list[dict[str, Any]] = []
    clients.sagemaker.meta.events.register(
        "before-call.sagemaker.StartPipelineExecution", lambda params, **_: calls.append(json.loads(params["body"]))
    )
    second = promote(pipeline, PromoteOptions(config(tmp_path), only=("total",)), clients=clients)
    assert second.execution_arn and second.execution_arn != first.execution_arn
    assert calls[0]["SelectiveExecutionConfig"] == {
        "SourcePipelineExecutionArn": first.execution_arn,
        "SelectedSteps": [{"StepName": "total"}],
    }


def test_a_parameter_value_naming_a_local_file_is_uploaded_and_sent_as_its_uri(
    aws: MotoServer, tmp_path: Path
) -> None:
    """``-p input_data=data/other.csv`` ships that file as a default naming a file is shipped; the definition's
    default stays the default's own URI, and a plain string value is sent as it is."""
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
    pipeline = small(tmp_path)
    (tmp_path / "data" / "other.csv").write_text("a,b\n3,4\n")
    values = {"input_data": "data/other.csv", "label": "data/not-here.csv"}
    promoted = promote(pipeline, PromoteOptions(config(tmp_path), parameters=values))
    (default,) = [item for item in promoted.data if item.parameter == "input_data" and not item.override]
    (given,) = [item for item in promoted.data if item.override]
    assert given.parameter == "input_data" and given.path == (tmp_path / "data" / "other.csv").resolve()
    assert given.uri != default.uri and given.uri.endswith("/other.csv")
    body = boto3.client("s3").get_object(Bucket=BUCKET, Key=given.uri.split(f"s3://{BUCKET}/", 1)[1])["Body"]
    assert body.read() == b"a,b\n3,4\n"
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    sent = sagemaker.list_pipeline_parameters_for_execution(PipelineExecutionArn=promoted.execution_arn)
    assert {p["Name"]: p["Value"] for p in sent["PipelineParameters"]} == {
        "input_data": given.uri,
        "label": "data/not-here.csv",  # names no file here: a value like any other
    }
    stored = json.loads(sagemaker.describe_pipeline(PipelineName="small")["PipelineDefinition"])
    assert {p["Name"]: p["DefaultValue"] for p in stored["Parameters"]}["input_data"] == default.uri
    assert any("parameter input_data (this execution): " in line for line in promoted.lines())


def test_only_without_a_successful_execution_is_refused_before_any_upload(aws: MotoServer, tmp_path: Path) -> None:
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
    pipeline = small(tmp_path)
    with pytest.raises(PromoteError, match="does not exist yet; nothing was uploaded"):
        promote(pipeline, PromoteOptions(config(tmp_path), only=("total",)))
    promote(pipeline, PromoteOptions(config(tmp_path), start=False))
    with pytest.raises(PromoteError, match="there is none; nothing was uploaded or changed"):
        promote(pipeline, PromoteOptions(config(tmp_path), only=("total",)))
    with pytest.raises(PromoteError, match="--only names no step 'nope'"):
        promote(pipeline, PromoteOptions(config(tmp_path), only=("nope",)))


def test_the_abalone_notebook_promotes_and_waits(aws: MotoServer, tmp_path: Path) -> None:
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
    notebook = tmp_path / ABALONE.name  # beside its own data file (notebooks/data/ is made by runs, not in git)
    shutil.copyfile(ABALONE, notebook)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "abalone.csv").write_text("sex,length,rings\nM,0.455,15\nF,0.53,9\n")
    pipeline = pipeline_from_notebook(notebook)
    events: list[Any] = []
    clients = connect(REGION, max_attempts=1)  # moto answers ListPipelineExecutionSteps with HTTP 500
    options = PromoteOptions(config(tmp_path), wait=True)
    promoted = promote(pipeline, options, publish=events.append, clients=clients)
    assert promoted.status == "succeeded"
    assert [item.parameter for item in promoted.data] == ["input_data"]
    stored = json.loads(
        boto3.client("sagemaker", region_name=REGION).describe_pipeline(PipelineName="abalone")["PipelineDefinition"]
    )
    assert {s["Name"] for s in stored["Steps"]} >= {"AbaloneProcess", "AbaloneTrain", "AbaloneEval"}
    kinds = [type(event).__name__ for event in events]
    assert kinds[0] == "RunStarted" and kinds[-1] == "RunFinished" and "RunNote" in kinds


def test_declared_inputs_are_uploaded_where_the_export_points_and_only_once(aws: MotoServer, tmp_path: Path) -> None:
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
    (tmp_path / "data" / "images").mkdir(parents=True)
    (tmp_path / "data" / "train.csv").write_text("a,b\n1,2\n")
    (tmp_path / "data" / "images" / "one.txt").write_text("one")
    path = write_notebook(
        tmp_path / "inputs.ipynb",
        ["%%step train --inputs data/train.csv,data/images\ntext = open('data/train.csv').read()"],
    )
    pipeline = pipeline_from_notebook(path)
    options = PromoteOptions(config(tmp_path), start=False)
    first = promote(pipeline, options)

    exported = build_definition(pipeline, options.config)
    assert first.definition == exported.definition  # the definition sent is the export, unchanged
    inputs = {
        i["InputName"]: i["S3Input"]["S3Uri"]
        for i in exported.definition["Steps"][0]["Arguments"]["ProcessingInputs"]
    }
    s3 = boto3.client("s3", region_name=REGION)
    for name, suffix, body in [("data-0", "train.csv", b"a,b\n1,2\n"), ("data-1", "images/one.txt", b"one")]:
        key = inputs[name].removeprefix(f"s3://{BUCKET}/") + suffix
        assert key in first.uploaded
        got = s3.get_object(Bucket=BUCKET, Key=key)
        assert got["Body"].read() == body
        assert got["Metadata"]["sha256"] == hashlib.sha256(body).hexdigest()

    second = promote(pipeline, options)
    assert second.uploaded == () and second.skipped == len(first.uploaded)
    assert second.definition == first.definition


def test_only_follows_sagemakers_selection_rules_before_anything_is_sent(tmp_path: Path) -> None:
    """SageMaker runs a selection only with every step on the paths between its steps (and at most 50 of them); a
    branch step selected with a step upstream of it brings its condition step, which lies between them."""
    from jupyter_pipelines.sagemaker.promote import _selected

    pipeline = pipeline_from_notebook(ABALONE)
    with pytest.raises(PromoteError) as raised:
        promote(pipeline, PromoteOptions(config(tmp_path), only=("AbaloneProcess", "AbaloneEval")))
    message = str(raised.value)
    assert "--only leaves out 'AbaloneTrain', between steps it names" in message
    assert "--only AbaloneProcess,AbaloneTrain,AbaloneEval" in message
    assert _selected(pipeline, ("AbaloneEval", "AbaloneRegisterModel")) == [
        "AbaloneEval",
        "AbaloneRegisterModel-RegisterModel",
        "AbaloneMSECond",
    ]
    assert _selected(pipeline, ("AbaloneRegisterModel",)) == ["AbaloneRegisterModel-RegisterModel"]
    from .export_support import build

    many = build("many", *[f"%%step s{i}\nv{i} = {i}" for i in range(51)])
    with pytest.raises(PromoteError, match="--only names 51 steps; SageMaker's selective execution takes at most 50"):
        _selected(many, tuple(many.step_names))
