"""What SageMaker would reject is one clear ExportError before anything is written; the validator's own checks."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from jupyter_pipelines.errors import AnalysisError, PipelineError
from jupyter_pipelines.model import Parameter, Pipeline, Step
from jupyter_pipelines.sagemaker import (
    ExportConfig,
    ExportError,
    build_definition,
    export_pipeline,
    pipeline_name_from,
)
from jupyter_pipelines.sagemaker.images import resolve_image
from jupyter_pipelines.sagemaker.validate import consistency_problems

from .export_support import CONFIG, abalone, build


def export_error(pipeline: Pipeline, config: ExportConfig = CONFIG) -> str:
    with pytest.raises(ExportError) as caught:
        build_definition(pipeline, config)
    assert isinstance(caught.value, PipelineError)
    return str(caught.value)


def one_step(header: str = "", body: str = "x = 1", *before: str) -> Pipeline:
    return build("demo", *before, f"%%step s {header}\n{body}")


# ---- frameworks and images --------------------------------------------------------------------------------------


def test_framework_images() -> None:
    assert resolve_image("sklearn:1.2-1", "eu-west-1", "job") == (
        "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
    )
    assert resolve_image("xgboost:1.7-1", "ap-southeast-2", "serving") == (
        "783357654285.dkr.ecr.ap-southeast-2.amazonaws.com/sagemaker-xgboost:1.7-1"
    )
    assert resolve_image("pytorch:2.0.1-cpu-py310", "ap-northeast-1", "serving") == (
        "763104351884.dkr.ecr.ap-northeast-1.amazonaws.com/pytorch-inference:2.0.1-cpu-py310"
    )
    for region in ("us-east-1", "us-east-2", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-1",
                   "ap-southeast-2", "ap-northeast-1"):  # fmt: skip
        for framework in ("sklearn:1.2-1", "xgboost:1.7-1", "pytorch:2.0.1-cpu-py310"):
            assert region in resolve_image(framework, region, "job")


@pytest.mark.parametrize(
    ("framework", "region", "says"),
    [
        (
            "tensorflow:2.1",
            "us-east-1",
            "unknown framework 'tensorflow'. Known: sklearn:1.0-1, sklearn:1.2-1, xgboost",
        ),
        ("sklearn:0.1", "us-east-1", "unknown sklearn version '0.1'. Known sklearn versions: 1.0-1, 1.2-1"),
        ("sklearn:1.2-1", "me-south-1", "no image is known in region 'me-south-1'. Known regions: ap-"),
    ],
)
def test_unknown_framework_version_or_region(framework: str, region: str, says: str) -> None:
    config = dataclasses.replace(CONFIG, region=region)
    message = export_error(one_step(f"--framework {framework}"), config)
    assert message.startswith("step 's' (cell 1): --framework")
    assert says in message


# ---- names, settings and limits ---------------------------------------------------------------------------------


def test_pipeline_names() -> None:
    assert pipeline_name_from("churn_model v2") == "churn-model-v2"
    assert pipeline_name_from("__x__") == "x"
    with pytest.raises(ExportError, match="cannot make a SageMaker pipeline name from the notebook name 'ß_ü'"):
        pipeline_name_from("ß_ü")
    assert "the notebook name '__'" in export_error(dataclasses.replace(one_step(), name="__"))
    assert "'my_pipeline' is not a valid SageMaker pipeline name" in export_error(
        one_step(), dataclasses.replace(CONFIG, pipeline_name="my_pipeline")
    )


def test_a_step_name_sagemaker_rejects() -> None:
    long = "r" * 60
    message = export_error(build("demo", "%%step train --kind training\nm = 1", f"%%step {long} --kind register\n"
                                 "def predict(x):\n    return m"))  # fmt: skip
    assert f"step {long!r} (cell 2): the exported step name {long + '-RegisterModel'!r} is not a valid" in message
    assert "1-64 ASCII letters" in message
    by_hand = dataclasses.replace(one_step(), steps=(Step(name="bad name!", code="x = 1"),))
    assert "'bad name!' is not a valid SageMaker name" in export_error(by_hand)


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"role_arn": ""}, "the export needs IAM role ARN. Set it with `%pipeline config --role-arn VALUE`"),
        ({"role_arn": "admin"}, "--role-arn 'admin' is not a valid IAM role ARN"),
        ({"bucket": ""}, "the export needs S3 bucket name"),
        ({"bucket": "My_Bucket"}, "--bucket 'My_Bucket' is not a valid S3 bucket name"),
        ({"region": "moon"}, "--region 'moon' is not a valid AWS region"),
        ({"prefix": "/a//b"}, "--prefix '/a//b' is not a valid S3 key prefix"),
        ({"model_package_group": "x" * 70}, "is not a valid model package group name"),
    ],
)
def test_settings(change: dict[str, Any], says: str) -> None:
    assert says in export_error(one_step(), dataclasses.replace(CONFIG, **change))


def test_parameters_sagemaker_rejects() -> None:
    empty = one_step("", "x = label", '%%parameters\nlabel: str = ""')
    assert "parameter 'label' has an empty default value, which SageMaker rejects" in export_error(empty)
    cased = dataclasses.replace(
        one_step(), parameters=(Parameter("rate", "float", 1.0), Parameter("RATE", "float", 2.0))
    )
    assert "parameters 'rate' and 'RATE' differ only in case" in export_error(cased)
    inf = dataclasses.replace(one_step(), parameters=(Parameter("rate", "float", float("inf")),))
    assert "its default inf is not a finite number" in export_error(inf)


def test_definition_over_one_megabyte() -> None:
    small = build("demo", "%%step a\nm = {'v': 1}", "%%step b --when \"m['v'] > 1\" --else-fail boom\nx = 1")
    huge = dataclasses.replace(small.steps[1], else_fail="x" * 1_100_000)  # (a header that long is slow to split)
    pipeline = dataclasses.replace(small, steps=(small.steps[0], huge))
    assert "over SageMaker's limit of 1048576 (1 MB)" in export_error(pipeline)


def test_retry_limit() -> None:
    assert "--retry 21 is more than SageMaker's 20 attempts" in export_error(one_step("--retry 21"))


# ---- conditions -------------------------------------------------------------------------------------------------


def test_a_condition_referencing_a_name_that_is_not_upstream() -> None:
    with pytest.raises(AnalysisError) as caught:
        build("demo", "%%step gate --when \"report['mse'] < 1\"\nx = 1", "%%step evaluate\nreport = {'mse': 0.5}")
    assert "step 'gate' (cell 1): --when reads 'report', which is not an output of an upstream step or a " \
           "parameter: step 'evaluate' (cell 2) binds it, after this step." in str(caught.value)  # fmt: skip


def test_a_non_json_value_in_a_condition() -> None:
    with pytest.raises(PipelineError) as caught:
        build("demo", "%%step a\nm = 1", "%%step b --when 'm == {1, 2}'\nx = 1")
    assert "the collection '{1, 2}' is not allowed in a condition" in str(caught.value)


@pytest.mark.parametrize(
    ("sources", "says"),
    [
        (("%%step t --kind training\nm = {'v': 1}", "%%step b --when \"m['v'] > 0\"\nx = 1"),
         "reads 'm' from step 't', a training step; SageMaker conditions read property files"),
        (("%%step a\nm = {'v': 1}", "%%step b --when \"m['v'] > 0\"\nn = {'w': 2}",
          "%%step c --when \"n['w'] > 0\"\nx = 1"), "its --when reads step 'b', which itself runs under"),
        (("%%step a\nm = {'v': 1}", "%%step b --when \"m['v'] > 0\"\ny = 1", "%%step c --when \"m['v'] > 5\"\nz = 1",
          "%%step d\nw = y + z"), "downstream of steps under two conditions"),
        (("%%step a\nm = {'my key': 1}", "%%step b --when \"m['my key'] > 0\"\nx = 1"),
         "a key SageMaker's JSON paths cannot name"),
        (("%%step a\nm = 1", "%%step b --kind model\ndef predict(x):\n    return x"),
         "must read from exactly one --kind training step"),
        (("%%step t --kind training\nm = 1", "%%step d --kind model\ndef predict(x):\n    return m",
          "%%step b --kind transform\np = predict(m)"), "--kind transform step, so it must read `predict` from one"),
        (("%%step t --kind training\nm = 1", "%%step d --kind model\ndef predict(x):\n    return m",
          "%%step e\nq = predict"), "reads from step 'd', a --kind model step"),
        (("%%writefile a.py\nprint(1)", "%%step s --script a.py --kind training"), "scripts export as processing"),
        (("%%step s --requirements missing.txt\nx = 1",), "cannot read --requirements missing.txt"),
    ],
)  # fmt: skip
def test_shapes_sagemaker_cannot_express(sources: tuple[str, ...], says: str) -> None:
    assert says in export_error(build("demo", *sources))


def test_requirements_from_the_notebook_directory(tmp_path: Path) -> None:
    (tmp_path / "req.txt").write_text("tqdm\n")
    config = dataclasses.replace(CONFIG, source_dir=tmp_path)
    exported = build_definition(one_step("--requirements req.txt"), config)
    assert exported.bundles["s"].files["step-requirements.txt"] == b"tqdm\n"


def test_unwritable_output_directory(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ExportError, match="cannot write the export to"):
        export_pipeline(one_step(), CONFIG, blocker / "out")


# ---- the validator's consistency checks ---------------------------------------------------------------------------


def _abalone_definition():  # type: ignore[no-untyped-def]
    return copy.deepcopy(build_definition(abalone(), CONFIG).definition)


def test_consistency_problems() -> None:
    definition = _abalone_definition()
    steps = definition["Steps"]
    condition = steps[3]["Arguments"]
    condition["IfSteps"][0]["Name"] = "AbaloneProcess"  # duplicate, inside a branch
    steps[1]["DependsOn"] = ["Nope", "AbaloneTrain"]
    steps[0]["Arguments"]["Environment"]["X"] = {"Get": "Parameters.missing"}
    steps[0]["Arguments"]["Environment"]["Y"] = {"Get": "Steps.AbaloneEval.ProcessingOutputConfig.Outputs['x']"
                                                        ".S3Output.S3Uri"}  # fmt: skip
    steps[2]["Arguments"]["Environment"] = {"Z": {"Get": "Steps.AbaloneTransform.TransformOutput.S3OutputPath"}}
    steps[2]["Arguments"]["Environment"]["W"] = {"Get": "Execution.Nothing"}
    problems = consistency_problems(definition)
    assert "step name 'AbaloneProcess' is used twice (top and AbaloneMSECond.IfSteps)" in problems
    assert "step 'AbaloneTrain': DependsOn names 'Nope', which is not a step" in problems
    assert "step 'AbaloneTrain': DependsOn names the step itself" in problems
    assert "step 'AbaloneProcess': Get 'Parameters.missing' names no parameter" in problems
    assert any("a Processing step 'AbaloneEval' has no property" in p for p in problems)
    assert any("runs inside AbaloneMSECond.IfSteps, out of reach from top" in p for p in problems)
    assert "step 'AbaloneEval': Get 'Execution.Nothing' names no execution variable" in problems


def test_a_cycle_is_found() -> None:
    definition = _abalone_definition()
    definition["Steps"][0]["DependsOn"] = ["AbaloneEval"]
    assert any(p.startswith("steps depend on each other in a cycle: ") for p in consistency_problems(definition))
