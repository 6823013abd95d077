"""The container executor's header options and the pipeline-wide default executor/image (no engine needed)."""

from __future__ import annotations

import pytest

from jupyter_pipelines.authoring.builder import Cell, build_pipeline
from jupyter_pipelines.authoring.defaults import apply_defaults, check_defaults
from jupyter_pipelines.authoring.header import STEP_HELP, format_step_line, parse_header, parse_step_line
from jupyter_pipelines.errors import HeaderError
from jupyter_pipelines.settings_sync import check_settings


def test_container_options_parse_into_the_step() -> None:
    header = parse_step_line(
        "s --executor container --image a/b:1 --local-image c:2 --cpus 1.5 --memory 512M --network"
    )
    assert (header.executor, header.image, header.local_image) == ("container", "a/b:1", "c:2")
    assert (header.cpus, header.memory, header.network) == (1.5, "512m", True)
    assert parse_header(format_step_line(header)) == header
    (step,) = build_pipeline(
        [Cell(0, "%%step s --executor container --image i --cpus 2 --memory 1g\nx = 1")], "p"
    ).steps
    assert (step.executor, step.executor_given, step.image, step.cpus, step.memory) == (
        "container",
        True,
        "i",
        2.0,
        "1g",
    )
    (plain,) = build_pipeline([Cell(0, "%%step s\nx = 1")], "p").steps
    assert (plain.executor, plain.executor_given, plain.network) == ("process", False, False)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("s --cpus 0", "--cpus takes a number of CPUs > 0, e.g. 1.5, got '0'"),
        ("s --cpus many", "--cpus takes a number of CPUs > 0, e.g. 1.5, got 'many'"),
        ("s --memory 2x", "--memory takes a size like 512m or 2g (b, k, m, g), got '2x'"),
        ("s --memory 1m", "--memory 1m is below 6m, the least a container can have"),
        ("s --network=yes", "--network takes no value"),
        ("s --executor docker", "--executor takes one of: process, kernel, container, got 'docker'"),
    ],
)
def test_bad_container_options_say_what_is_valid(line: str, expected: str) -> None:
    with pytest.raises(HeaderError) as caught:
        parse_step_line(line)
    assert expected in str(caught.value)


def test_help_lists_the_container_options() -> None:
    for flag in ("--local-image IMAGE", "--cpus N", "--memory SIZE", "--network", "process|kernel|container"):
        assert flag in STEP_HELP


CELLS = [
    Cell(0, "%%step a\nx = 1"),
    Cell(1, "%%step b --executor process\ny = x"),
    Cell(2, "%%step c --image own:1\nz = y"),
    Cell(3, "%%step d --framework sklearn:1.2-1\nw = z"),
    Cell(4, "%%step e --executor kernel\nv = w"),
]


def test_the_default_executor_and_image_fill_in_what_steps_leave_out() -> None:
    pipeline = apply_defaults(build_pipeline(CELLS, "p"), {"executor": "container", "image": "base:1", "bucket": "b"})
    got = {s.name: (s.executor, s.image) for s in pipeline.steps}
    assert got == {
        "a": ("container", "base:1"),
        "b": ("process", "base:1"),
        "c": ("container", "own:1"),
        "d": ("container", None),  # a framework image is resolved at export
        "e": ("kernel", "base:1"),
    }
    assert apply_defaults(build_pipeline(CELLS, "p"), {"bucket": "b"}) == build_pipeline(CELLS, "p")


def test_bad_defaults_are_refused_when_configured() -> None:
    with pytest.raises(HeaderError, match="the default executor must be one of process, kernel, container"):
        check_defaults({"executor": "boat"})
    with pytest.raises(HeaderError, match="--image takes a container image name"):
        check_settings({"image": "has space"})
    assert check_settings({"executor": "container", "image": "python:3.11-slim"}) == {
        "executor": "container",
        "image": "python:3.11-slim",
    }
