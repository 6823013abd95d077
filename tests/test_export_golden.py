"""Golden files of the SageMaker export (UPDATE_GOLDEN=1 rewrites them), their validity, determinism, and the
abalone pipeline's structure against the one the SageMaker Python SDK builds."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from jupyter_pipelines.model import Pipeline
from jupyter_pipelines.sagemaker import build_definition, definition_problems, export_pipeline
from jupyter_pipelines.sagemaker.validate import KNOWN_SCHEMA_GAPS, consistency_problems, schema_problems

from .export_support import CONFIG, GOLDEN, abalone, build, normalized

PIPELINES = {
    "basic": lambda: build(
        "basic",
        "import json",
        '%%parameters\nrows: int = 100\nrate: float = 0.5\nlabel: str = "demo"\ndebug: bool = False',
        "%%step load --env MODE=fast --env LEVEL=3 --cache 30d --retry 2 --instance-type ml.c5.xlarge\n"
        "data = list(range(rows))",
        "%%step audit --timeout 90.5\nstamp = json.dumps({'label': label, 'debug': debug})",
        "%%step summarize --after audit --instance-count 2\ntotal = sum(data) * rate",
    ),
    "conditions": lambda: build(
        "conditions",
        '%%parameters\nthreshold: float = 0.5\nstage: str = "dev"',
        "%%step score\nmetrics = {'auc': 0.8, 'labels': ['a', 'b'], 'ok': True}",
        "%%step publish --when \"metrics['auc'] >= threshold and stage in ['dev', 'prod']\" "
        "--else-fail 'AUC {value} is too low'\npublished = True",
        "%%step announce\nmessage = f'published: {published}'",
        "%%step archive --when \"not metrics['ok'] == True or metrics['labels'][1] != 'b'\" "
        "--condition-step NeedsArchive\narchived = 1",
        "%%step notify --when \"metrics['auc'] < 0.9 and (stage == 'prod' or metrics['auc'] > threshold)\"\n"
        "notified = 1",
    ),
    "script": lambda: build(
        "script",
        "%%writefile requirements.txt\nrequests==2.32.3",
        "%%writefile helpers.py\ndef double(x):\n    return 2 * x",
        "%%parameters\nfactor: int = 3",
        "%%step make --requirements requirements.txt\nfrom helpers import double\nvalues = [double(i) for i in "
        "range(factor)]",
        "%%writefile report.py\nimport os\nprint(os.environ['JP_INPUT_MAKE'])",
        "%%step report --script report.py --after make",
        "%%writefile --step tally tally.py\nprint('tally')",
        "%%step read --after tally --after report\nvalues_seen = len(values)",
    ),
    "training": lambda: build(
        "training",
        "import numpy as np",
        "%%parameters\nepochs: int = 5",
        "%%step features --framework xgboost:1.7-1\nX = np.ones((4, 2))\ny = np.zeros(4)\nX_new = np.ones((2, 2))",
        "%%step fit --kind training --framework xgboost:1.7-1 --instance-type ml.m5.xlarge --retry 1 --cache PT12H "
        "--env OMP_NUM_THREADS=1\n"
        "weights = np.linalg.lstsq(X, y, rcond=None)[0] * epochs",
        "%%step serve --kind model --image 123456789012.dkr.ecr.us-east-1.amazonaws.com/serve:1 --env A=1\n"
        "def predict(features):\n    return features @ weights",
        "%%step batch --kind transform --instance-count 2\nscores = predict(X_new)",
        "%%step check --after batch\nchecked = weights.sum()",
    ),
    "abalone": abalone,
}


def _golden(name: str, pipeline: Pipeline) -> None:
    text, manifest = normalized(build_definition(pipeline, CONFIG))
    manifest_text = json.dumps(manifest, indent=1, sort_keys=True) + "\n"
    definition_path, manifest_path = GOLDEN / f"{name}.json", GOLDEN / f"{name}.bundles.json"
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.mkdir(exist_ok=True)
        definition_path.write_text(text)
        manifest_path.write_text(manifest_text)
    assert definition_path.exists(), f"no golden file: run UPDATE_GOLDEN=1 pytest {__file__}"
    assert text == definition_path.read_text()
    assert manifest_text == manifest_path.read_text()


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_golden(name: str) -> None:
    _golden(name, PIPELINES[name]())


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_valid_against_the_schema_and_consistent(name: str) -> None:
    definition = build_definition(PIPELINES[name](), CONFIG).definition
    assert definition_problems(definition) == []


def test_every_schema_exception_is_needed() -> None:
    """Each documented gap is needed by some export: without it the schema rejects one of them."""
    definitions = [build_definition(make(), CONFIG).definition for make in PIPELINES.values()]
    for gap in KNOWN_SCHEMA_GAPS:
        without = frozenset(KNOWN_SCHEMA_GAPS) - {gap}
        assert any(schema_problems(d, without) for d in definitions), f"gap {gap!r} is never needed"


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_deterministic(name: str, tmp_path: Path) -> None:
    first = export_pipeline(PIPELINES[name](), CONFIG, tmp_path / "a")
    second = export_pipeline(PIPELINES[name](), CONFIG, tmp_path / "b")
    again = export_pipeline(PIPELINES[name](), CONFIG, tmp_path / "a")  # re-export replaces, leaves nothing stale
    assert first.read_bytes() == second.read_bytes() == again.read_bytes()

    def tree(root: Path) -> dict[str, bytes]:
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    assert tree(tmp_path / "a") == tree(tmp_path / "b")
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [f"{name}.bundles", f"{name}.json"]


def test_bundles_are_what_the_definition_references(tmp_path: Path) -> None:
    path = export_pipeline(abalone(), CONFIG, tmp_path)
    text = path.read_text()
    keys = sorted(p.name for p in (tmp_path / "abalone.bundles").iterdir())
    assert len(keys) == 5  # every step but the transform runs code
    for key in keys:
        assert f"s3://my-bucket/abalone/code/{key}/" in text
    contents = sorted(sorted(p.name for p in (tmp_path / "abalone.bundles" / key).iterdir()) for key in keys)
    loose = ["cloudpickle", "entry.py", "runtime.py", "step.json"]
    assert contents == [loose, loose] + [["sourcedir.tar.gz"]] * 3  # 2 processing; training, register, model


# ---- the abalone pipeline has the SageMaker Python SDK's structure -------------------------------------------------

# What the SDK (2.x) writes for the abalone pipeline of the seed document: ProcessingStep AbaloneProcess,
# TrainingStep AbaloneTrain, ProcessingStep AbaloneEval (property file), ConditionStep AbaloneMSECond with
# if_steps [ModelStep register -> "-RegisterModel", ModelStep create -> "-CreateModel", TransformStep] and
# else_steps [FailStep AbaloneMSEFail]; dependencies come from the property references.
SDK_STEPS = {
    "AbaloneProcess": ("Processing", "top"),
    "AbaloneTrain": ("Training", "top"),
    "AbaloneEval": ("Processing", "top"),
    "AbaloneMSECond": ("Condition", "top"),
    "AbaloneRegisterModel-RegisterModel": ("RegisterModel", "AbaloneMSECond.IfSteps"),
    "AbaloneCreateModel-CreateModel": ("Model", "AbaloneMSECond.IfSteps"),
    "AbaloneTransform": ("Transform", "AbaloneMSECond.IfSteps"),
    "AbaloneMSEFail": ("Fail", "AbaloneMSECond.ElseSteps"),
}
# Each step's upstream steps, all the way up (the SDK's direct edges differ only by redundant ones).
SDK_UPSTREAM = {
    "AbaloneProcess": set(),
    "AbaloneTrain": {"AbaloneProcess"},
    "AbaloneEval": {"AbaloneProcess", "AbaloneTrain"},
    "AbaloneMSECond": {"AbaloneProcess", "AbaloneTrain", "AbaloneEval"},
    "AbaloneRegisterModel-RegisterModel": {"AbaloneProcess", "AbaloneTrain", "AbaloneEval", "AbaloneMSECond"},
    "AbaloneCreateModel-CreateModel": {"AbaloneProcess", "AbaloneTrain", "AbaloneEval", "AbaloneMSECond"},
    "AbaloneTransform": {"AbaloneProcess", "AbaloneTrain", "AbaloneEval", "AbaloneMSECond",
                         "AbaloneCreateModel-CreateModel"},
    "AbaloneMSEFail": {"AbaloneProcess", "AbaloneTrain", "AbaloneEval", "AbaloneMSECond"},
}  # fmt: skip


def _placed(steps: list[Any], scope: str = "top") -> dict[str, tuple[str, str, Any]]:
    found = {}
    for step in steps:
        found[step["Name"]] = (step["Type"], scope, step)
        if step["Type"] == "Condition":
            for branch in ("IfSteps", "ElseSteps"):
                found.update(_placed(step["Arguments"][branch], f"{step['Name']}.{branch}"))
    return found


def _direct(step: Any, scope: str) -> set[str]:
    text = json.dumps({k: v for k, v in step.items() if k != "Arguments"} | {"Arguments": {
        k: v for k, v in step["Arguments"].items() if k not in ("IfSteps", "ElseSteps")}})  # fmt: skip
    names = {part.split(".")[1] for part in text.split('"Get": "')[1:] if part.startswith("Steps.")}
    names |= set(step.get("DependsOn", []))
    if scope != "top":
        names.add(scope.split(".")[0])
    return names


def test_abalone_matches_the_sdk_structure() -> None:
    definition = build_definition(abalone(), CONFIG).definition
    placed = _placed(definition["Steps"])
    assert {name: (kind, scope) for name, (kind, scope, _) in placed.items()} == SDK_STEPS
    assert [s["Name"] for s in definition["Steps"]] == [
        "AbaloneProcess",
        "AbaloneTrain",
        "AbaloneEval",
        "AbaloneMSECond",
    ]
    direct = {name: _direct(step, scope) for name, (_, scope, step) in placed.items()}
    upstream: dict[str, set[str]] = {}
    for name in SDK_STEPS:  # in an order where upstream steps come first
        upstream[name] = set(direct[name]).union(*(upstream[u] for u in direct[name]))
    assert upstream == SDK_UPSTREAM
    condition = placed["AbaloneMSECond"][2]["Arguments"]["Conditions"]
    assert condition == [
        {
            "Type": "LessThanOrEqualTo",
            "LeftValue": {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.AbaloneEval.PropertyFiles.Values"},
                                          "Path": "report.regression_metrics.mse.value"}},
            "RightValue": {"Get": "Parameters.mse_threshold"},
        }
    ]  # fmt: skip
    assert [(p["Name"], p["Type"]) for p in definition["Parameters"]] == [
        ("processing_instance_count", "Integer"),
        ("input_data", "String"),
        ("mse_threshold", "Float"),
    ]
    assert consistency_problems(definition) == []
