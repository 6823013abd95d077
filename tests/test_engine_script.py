"""Script steps: ``python PATH`` under the processing-job contract (env, arguments, input and output dirs)."""

from __future__ import annotations

import json
from pathlib import Path

from jupyter_pipelines.model import Parameter, Step, TrackedFile

from .test_engine_support import pipeline, run, step

PREPARE = """
import argparse, json, os, pathlib, sys
parser = argparse.ArgumentParser()
parser.add_argument("--input-dir")
parser.add_argument("--output-dir")
args = parser.parse_args()
out = pathlib.Path(os.environ["JP_OUTPUT_DIR"])
assert str(out) == args.output_dir and out.is_dir() and not any(out.iterdir())
seen = {
    "cwd": os.getcwd(),
    "params": json.loads(os.environ["JP_PARAMETERS"]),
    "size": os.environ["JP_PARAM_SIZE"],
    "verbose": os.environ["JP_PARAM_VERBOSE"],
    "region": os.environ["REGION"],
    "inputs": sorted(os.listdir(os.environ["JP_INPUT_DIR"])),
    "from_cell": os.listdir(os.environ["JP_INPUT_SEED"]),
}
(out / "seen.json").write_text(json.dumps(seen))
(out / "data").mkdir()
(out / "data" / "numbers.txt").write_text("1\\n2\\n3\\n")
print("prepared", flush=True)
"""

TRAIN = """
import os, pathlib, sys
assert sys.argv[1:3] == ["--input-dir", os.environ["JP_INPUT_DIR"]]
numbers = pathlib.Path(os.environ["JP_INPUT_PREPARE"], "data", "numbers.txt").read_text().split()
pathlib.Path(os.environ["JP_OUTPUT_DIR"], "total.txt").write_text(str(sum(map(int, numbers))))
"""


def test_script_steps_follow_the_processing_job_contract(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(TRAIN)  # on disk only: not tracked
    pipe = pipeline(
        step("seed", "seed = 7", binds=("seed",)),
        Step("prepare", "", script="prepare.py", after=("seed",), env=(("REGION", "eu-west-1"),)),
        Step("train", "", script="train.py", after=("prepare",)),
        step("check", "import os\nseen_files = sorted(os.listdir('.'))", after=("train",), binds=("seen_files",)),
        parameters=[Parameter("size", "int", 3), Parameter("verbose", "bool", False)],
        files=[TrackedFile("prepare.py", PREPARE, step="prepare")],
    )
    ran = run(tmp_path, pipe, parameters={"size": 5})
    assert ran.result.status == "succeeded", {n: s.error for n, s in ran.result.steps.items()}
    assert (tmp_path / "prepare.py").read_text() == PREPARE  # the notebook's version was written out
    prepared = ran.outputs("prepare")["output"]
    assert isinstance(prepared, Path) and prepared.is_dir() and prepared.suffix == ".dir"
    seen = json.loads((prepared / "seen.json").read_text())
    assert seen == {
        "cwd": str(tmp_path),
        "params": {"size": 5, "verbose": False},
        "size": "5",
        "verbose": "false",
        "region": "eu-west-1",
        "inputs": ["seed"],
        "from_cell": ["seed.pkl"],
    }
    assert (ran.outputs("train")["output"] / "total.txt").read_text() == "6"
    assert any("prepared" in e.text for e in ran.of("step_log", "prepare"))
    assert ran.outputs("check")["seen_files"] == sorted(p.name for p in tmp_path.iterdir())


def test_failing_script_fails_the_step_with_its_exit_code(tmp_path: Path) -> None:
    (tmp_path / "boom.py").write_text("import sys\nprint('bad input', file=sys.stderr)\nsys.exit(3)\n")
    ran = run(tmp_path, pipeline(Step("boom", "", script="boom.py")))
    result = ran.result.steps["boom"]
    assert result.status == "failed" and "exited with code 3" in result.error
    assert result.stderr_path is not None and "bad input" in result.stderr_path.read_text()


def test_editing_an_untracked_script_invalidates_its_cache(tmp_path: Path) -> None:
    script = tmp_path / "job.py"
    script.write_text("print('v1')\n")
    pipe = pipeline(Step("job", "", script="job.py"))
    assert run(tmp_path, pipe).result.steps["job"].status == "succeeded"
    assert run(tmp_path, pipe).result.steps["job"].status == "cached"
    script.write_text("print('v2')\n")
    assert run(tmp_path, pipe).result.steps["job"].status == "succeeded"
