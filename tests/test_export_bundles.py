"""The exported code bundles really run: the abalone pipeline's jobs, played on a local ``/opt/ml`` tree.

Each job gets what SageMaker would give it (its inputs copied where the definition mounts them, the parameters in
the environment or the hyperparameters file) and runs the bundle's entry with this Python; the model step's
serving handlers are called the way the inference toolkit calls them.
"""

from __future__ import annotations

import ast
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from dataclasses import replace
from pathlib import Path

import pytest

from jupyter_pipelines.sagemaker import build_definition
from jupyter_pipelines.sagemaker.bundles import Bundle

from .export_support import CONFIG, abalone, bundle_files

numpy = pytest.importorskip("numpy")
pytest.importorskip("pandas")

HERE = Path(__file__).resolve().parent.parent / "jupyter_pipelines" / "sagemaker"


@pytest.mark.parametrize("name", ["entry.py", "inference.py"])
def test_entries_are_python_38(name: str) -> None:
    ast.parse((HERE / name).read_text(), feature_version=(3, 8))


def _unpack(bundle: Bundle, target: Path) -> Path:
    for name, content in bundle_files(bundle).items():
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        (target / name).write_bytes(content)
    return target


def _run(code: Path, root: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("JP_", "SM_"))}
    environment.update({"JP_SAGEMAKER_ROOT": str(root), "PYTHONPATH": ""}, **(env or {}))
    root.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [sys.executable, str(code / "entry.py")],
        cwd=root,
        env=environment,
        capture_output=True,
        text=True,
        timeout=240,
    )


def _copy(source: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for path in source.iterdir():
        shutil.copyfile(path, target / path.name)


def _model_tar(model_dir: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(target / "model.tar.gz", "w:gz") as tar:
        for path in sorted(model_dir.iterdir()):
            tar.add(path, arcname=path.name)


def test_abalone_jobs_run_from_their_bundles(tmp_path: Path) -> None:
    bundles = build_definition(abalone(), CONFIG).bundles

    # AbaloneProcess: a processing job; the input_data parameter comes as JP_PARAM_INPUT_DATA
    process = tmp_path / "process"
    done = _run(_unpack(bundles["AbaloneProcess"], tmp_path / "code-process"), process,
                {"JP_PARAM_INPUT_DATA": "data/abalone.csv"})  # fmt: skip
    assert done.returncode == 0, done.stderr
    processed = process / "processing" / "output" / "AbaloneProcess"
    assert sorted(p.name for p in processed.iterdir()) == sorted(
        f"{n}.{'pkl' if n == 'feature_names' else 'npy'}"
        for n in ["feature_names", "train_X", "train_y", "validation_X", "validation_y", "test_X", "test_y"]
    )

    # AbaloneTrain: a training job in script mode: channels under input/data, outputs in the model directory
    train = tmp_path / "train"
    _copy(processed, train / "input" / "data" / "AbaloneProcess")
    (train / "input" / "config").mkdir(parents=True)
    (train / "input" / "config" / "hyperparameters.json").write_text(json.dumps({"sagemaker_program": '"entry.py"'}))
    done = _run(_unpack(bundles["AbaloneTrain"], tmp_path / "code-train"), train)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (train / "model").iterdir()) == ["model.pkl", "validation_mse.pkl"]

    # AbaloneEval: reads the model artifacts (model.tar.gz) and the test split, writes the property file
    evaluate = tmp_path / "eval"
    _model_tar(train / "model", evaluate / "processing" / "input" / "AbaloneTrain")
    _copy(processed, evaluate / "processing" / "input" / "AbaloneProcess")
    done = _run(_unpack(bundles["AbaloneEval"], tmp_path / "code-eval"), evaluate)
    assert done.returncode == 0, done.stderr
    properties = json.loads((evaluate / "processing" / "output" / "AbaloneEval" / "properties.json").read_text())
    mse = properties["report"]["regression_metrics"]["mse"]["value"]
    assert 0 < mse < 7.0  # the condition holds with the default threshold

    # AbaloneCreateModel: the inference toolkit's handlers on the unpacked model artifacts
    code = _unpack(bundles["AbaloneCreateModel"], tmp_path / "code-model")
    script = (
        "import sys, numpy\n"
        f"sys.path.insert(0, {str(code)!r})\n"
        "import inference\n"
        f"predict = inference.model_fn({str(train / 'model')!r})\n"
        f"body = open({str(processed / 'test_X.npy')!r}, 'rb').read()\n"
        "rows = inference.predict_fn(inference.input_fn(body, 'application/x-npy'), predict)\n"
        "print(inference.output_fn(rows, 'text/csv'), end='')\n"
    )
    served = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert served.returncode == 0, served.stderr
    test_X = numpy.load(processed / "test_X.npy")
    predictions = numpy.loadtxt(io.StringIO(served.stdout), delimiter=",")
    assert predictions.shape == (len(test_X),)


def test_a_failing_step_reports_the_users_traceback(tmp_path: Path) -> None:
    from .export_support import build

    pipeline = build("demo", "%%step boom\nx = 1\nraise ValueError('bad data')")
    bundle = build_definition(pipeline, CONFIG).bundles["boom"]
    done = _run(_unpack(bundle, tmp_path / "code"), tmp_path / "job")
    assert done.returncode == 1
    assert "ValueError: bad data" in done.stderr
    assert 'File "<step boom>", line 3' in done.stderr  # the cell's own line numbers
    assert "ValueError: bad data" in (tmp_path / "job" / "output" / "failure").read_text()


@pytest.mark.parametrize("inputs", ["", " --inputs data.csv"])
def test_a_cell_step_imports_a_tracked_module_in_the_job(tmp_path: Path, inputs: str) -> None:
    """``import helper`` of a ``%%writefile helper.py`` cell works in the notebook (its directory is on sys.path);
    in the job the tracked files are the working directory, which must be importable too."""
    from .export_support import build

    (tmp_path / "data.csv").write_text("a\n1\n")
    pipeline = build(
        "demo",
        "%%writefile helper.py\ndef double(x):\n    return 2 * x\n",
        f"%%step uses{inputs}\nimport helper\nvalue = helper.double(21)\nprint('value is', value)",
    )
    exported = build_definition(pipeline, replace(CONFIG, source_dir=tmp_path))
    job = tmp_path / "job"
    if inputs:  # what SageMaker downloads for the declared input
        _copy_file(tmp_path / "data.csv", job / "processing" / "input" / "data-0" / "data.csv")
    done = _run(_unpack(exported.bundles["uses"], tmp_path / "code"), job)
    assert done.returncode == 0, done.stderr
    assert "value is 42" in done.stdout


def _copy_file(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)


def test_outputs_are_moved_into_the_output_directory_and_no_scratch_is_left(tmp_path: Path) -> None:
    """The entry's scratch store lives in the output directory (outputs are renamed, not copied); two outputs of the
    same value share one object, and both files still arrive; nothing else is left to upload."""
    from .export_support import build

    pipeline = build(
        "demo", "%%step make\nimport numpy as np\nfirst = np.arange(5)\nsame = np.arange(5)\nother = 'x'"
    )
    exported = build_definition(pipeline, CONFIG)
    job = tmp_path / "job"
    done = _run(_unpack(exported.bundles["make"], tmp_path / "code"), job)
    assert done.returncode == 0, done.stderr
    (output_dir,) = [p for p in (job / "processing" / "output").iterdir() if p.is_dir()]
    assert sorted(p.name for p in output_dir.iterdir()) == ["first.npy", "other.pkl", "same.npy"]
    assert list(numpy.load(output_dir / "first.npy")) == list(numpy.load(output_dir / "same.npy")) == [0, 1, 2, 3, 4]
