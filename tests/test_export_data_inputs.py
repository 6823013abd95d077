"""Declared data (``--inputs``) on SageMaker: content-addressed job inputs in the definition, and the entry making
the declared path resolve to them in the job, so the cell opens ``data/train.csv`` there as it does locally."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import pickle
import time
from pathlib import Path
from typing import Any

import pytest

from jupyter_pipelines.model import Parameter
from jupyter_pipelines.sagemaker import ExportError, build_definition
from jupyter_pipelines.sagemaker.export import Exported
from jupyter_pipelines.sagemaker.upload import local_data
from jupyter_pipelines.sagemaker.validate import definition_problems

from .export_support import CONFIG, build, bundle_files
from .test_export_bundles import _run, _unpack

TRAIN = "%%step train --inputs data/train.csv,data/images/\nimport os\ntext = open('data/train.csv').read()\n" \
        "images = {n: open('data/images/' + n).read() for n in sorted(os.listdir('data/images'))}"  # fmt: skip


def project(tmp_path: Path, content: str = "a,b\n1,2\n") -> Path:
    (tmp_path / "data" / "images").mkdir(parents=True)
    (tmp_path / "data" / "train.csv").write_text(content)
    (tmp_path / "data" / "images" / "one.txt").write_text("one")
    (tmp_path / "data" / "images" / "two.txt").write_text("two")
    return tmp_path


def export(source_dir: Path, *cells: str) -> Exported:
    return build_definition(build("demo", *cells), dataclasses.replace(CONFIG, source_dir=source_dir))


def step_json(exported: Exported, name: str) -> Any:
    return json.loads(bundle_files(exported.bundles[name])["step.json"])


def folder(*files: tuple[str, bytes]) -> str:
    """The data folder promotion's scheme gives these files (computed here independently)."""
    combined = hashlib.sha256()
    for name, content in files:
        combined.update(name.encode() + b"\0" + hashlib.sha256(content).digest())
    return f"s3://my-bucket/demo/data/{combined.hexdigest()[:32]}/"


def processing_inputs(exported: Exported) -> dict[str, Any]:
    (step,) = exported.definition["Steps"]
    return {item["InputName"]: item["S3Input"] for item in step["Arguments"]["ProcessingInputs"]}


def test_processing_inputs_are_content_addressed_and_land_beside_the_upstream_inputs(tmp_path: Path) -> None:
    exported = export(project(tmp_path), TRAIN)
    inputs = processing_inputs(exported)
    assert list(inputs) == ["data-0", "data-1", "code"]
    assert inputs["data-0"]["S3Uri"] == folder(("train.csv", b"a,b\n1,2\n"))
    assert inputs["data-1"]["S3Uri"] == folder(("images/one.txt", b"one"), ("images/two.txt", b"two"))
    assert inputs["data-0"]["LocalPath"] == "/opt/ml/processing/input/data-0"
    assert inputs["data-1"]["LocalPath"] == "/opt/ml/processing/input/data-1"
    assert {(i["S3DataType"], i["S3InputMode"]) for i in inputs.values()} == {("S3Prefix", "File")}
    assert definition_problems(exported.definition) == []
    assert step_json(exported, "train")["data_inputs"] == [
        {"path": "data/train.csv", "input": "data-0", "name": "train.csv"},
        {"path": "data/images", "input": "data-1", "name": "images"},
    ]
    # the same folder promotion computes for a parameter naming the file (one scheme, one hasher)
    pipeline = dataclasses.replace(build("demo", TRAIN), parameters=(Parameter("p", "str", "data/train.csv"),))
    (shipped,) = local_data(pipeline, exported, tmp_path)
    assert shipped.uri == inputs["data-0"]["S3Uri"] + "train.csv"
    assert [blob.key for blob in exported.data["data/images"].blobs] == [
        inputs["data-1"]["S3Uri"].removeprefix("s3://my-bucket/") + f"images/{n}.txt" for n in ("one", "two")
    ]


def test_deterministic_and_a_changed_file_changes_only_its_uri(tmp_path: Path) -> None:
    first = export(project(tmp_path / "a"), TRAIN)
    again = export(tmp_path / "a", TRAIN)
    assert first.text == again.text
    changed = export(project(tmp_path / "b", content="a,b\n1,3\n"), TRAIN)
    before, after = processing_inputs(first), processing_inputs(changed)
    assert before["data-0"]["S3Uri"] != after["data-0"]["S3Uri"]
    assert before["data-1"] == after["data-1"] and before["code"] == after["code"]


def test_training_steps_get_a_channel(tmp_path: Path) -> None:
    exported = export(
        project(tmp_path), "%%step fit --kind training --inputs data/train.csv\nrows = open('data/train.csv').read()"
    )
    (step,) = exported.definition["Steps"]
    (channel,) = step["Arguments"]["InputDataConfig"]
    assert channel["ChannelName"] == "data-0"
    assert channel["DataSource"]["S3DataSource"]["S3Uri"] == folder(("train.csv", b"a,b\n1,2\n"))
    assert definition_problems(exported.definition) == []


def test_steps_without_inputs_are_unchanged(tmp_path: Path) -> None:
    assert "data_inputs" not in step_json(export(tmp_path, "%%step s\nx = 1"), "s")


@pytest.mark.parametrize(
    ("cells", "message"),
    [
        (["%%step s --inputs data/missing.csv\nx = 1"], "declares --inputs data/missing.csv: there is no such file"),
        (["%%step s --inputs /srv/train.csv\nx = 1"], "--inputs /srv/train.csv: an absolute path, which a SageMaker"),
        (["%%step s --inputs data/empty\nx = 1"], "--inputs data/empty: an empty directory"),
        (
            [
                "%%step fit --kind training\nm = 1",
                "%%step s --kind model --inputs data/train.csv\ndef predict(x):\n    return m",
            ],
            "--inputs data/train.csv: a --kind model step has no job that could receive it",
        ),
        (
            ["%%step data-0\nv = 1", "%%step s --inputs data/train.csv\nx = v"],
            "reads from a step named 'data-0', the job input its --inputs data/train.csv arrives in",
        ),
    ],
)
def test_inputs_that_cannot_become_job_inputs(tmp_path: Path, cells: list[str], message: str) -> None:
    (project(tmp_path) / "data" / "empty").mkdir()
    with pytest.raises(ExportError) as caught:
        export(tmp_path, *cells)
    assert message in str(caught.value)


def test_an_unchanged_input_is_not_hashed_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project(tmp_path)
    time.sleep(0.15)  # older than the index's "racy" window: its remembered hash is trusted
    first = export(tmp_path, TRAIN)
    assert (tmp_path / ".pipelines" / "sha256.json").exists()

    def no_hashing(path: str) -> str:
        raise AssertionError(f"hashed {path} again")

    monkeypatch.setattr("jupyter_pipelines.engine.fileindex.sha256_file", no_hashing)
    assert export(tmp_path, TRAIN).text == first.text


# ---- the job: the entry makes the declared path resolve to the job input -------------------------------------


def _receive(exported: Exported, step: str, input_root: Path) -> None:
    """Put each input where SageMaker downloads it: the folder's objects under the input's directory."""
    for item in step_json(exported, step)["data_inputs"]:
        location = exported.data[item["path"]]
        for blob in location.blobs:
            target = input_root / item["input"] / blob.key.removeprefix(location.base + "/")
            target.parent.mkdir(parents=True, exist_ok=True)
            assert blob.path is not None
            target.write_bytes(blob.path.read_bytes())


def test_the_processing_job_reads_the_declared_paths(tmp_path: Path) -> None:
    source = project(tmp_path / "notebook")
    cells = [
        "%%writefile notes.txt\nloud",
        TRAIN + "\nloud = text.upper() if open('notes.txt').read().strip() == 'loud' else text",
    ]
    exported = export(source, *cells)
    root = tmp_path / "job"
    _receive(exported, "train", root / "processing" / "input")
    code = _unpack(exported.bundles["train"], tmp_path / "code")
    done = _run(code, root)
    assert done.returncode == 0, done.stderr
    out = root / "processing" / "output" / "train"
    assert pickle.loads((out / "text.pkl").read_bytes()) == "a,b\n1,2\n"
    assert pickle.loads((out / "images.pkl").read_bytes()) == {"one.txt": "one", "two.txt": "two"}
    assert pickle.loads((out / "loud.pkl").read_bytes()) == "A,B\n1,2\n"
    assert sorted(p.name for p in (code / "src").iterdir()) == ["notes.txt"]  # nothing written into the code


def test_the_training_job_reads_the_declared_path(tmp_path: Path) -> None:
    source = project(tmp_path / "notebook")
    exported = export(
        source, "%%step fit --kind training --inputs data/train.csv\nrows = open('data/train.csv').read()"
    )
    root = tmp_path / "job"
    _receive(exported, "fit", root / "input" / "data")
    (root / "input" / "config").mkdir(parents=True)
    (root / "input" / "config" / "hyperparameters.json").write_text("{}")
    done = _run(_unpack(exported.bundles["fit"], tmp_path / "code"), root)
    assert done.returncode == 0, done.stderr
    assert pickle.loads((root / "model" / "rows.pkl").read_bytes()) == "a,b\n1,2\n"


def test_the_job_refuses_an_input_inside_another(tmp_path: Path) -> None:
    source = project(tmp_path / "notebook")
    exported = export(source, "%%step s --inputs data,data/train.csv\nx = open('data/train.csv').read()")
    root = tmp_path / "job"
    _receive(exported, "s", root / "processing" / "input")
    done = _run(_unpack(exported.bundles["s"], tmp_path / "code"), root)
    assert done.returncode == 1
    assert "--inputs data/train.csv overlaps another input or a tracked file" in done.stderr
    assert "overlaps" in (root / "output" / "failure").read_text()


def test_a_missing_job_input_is_named(tmp_path: Path) -> None:
    exported = export(project(tmp_path / "notebook"), TRAIN)
    root = tmp_path / "job"
    done = _run(_unpack(exported.bundles["train"], tmp_path / "code"), root)
    assert done.returncode == 1
    assert "--inputs data/train.csv: the job did not receive it" in done.stderr
