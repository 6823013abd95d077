"""``render_graph_file``: .dot always, .svg/.png through a system ``dot``, a clear error otherwise."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from jupyter_pipelines.errors import PipelineError
from jupyter_pipelines.model import Pipeline, Step, StepInput
from jupyter_pipelines.ui import render_graph_file


def pipeline() -> Pipeline:
    return Pipeline("p", steps=(Step("a", "x = 1", binds=("x",)), Step("b", "y = x", inputs=(StepInput("x", "a"),))))


def test_dot_file(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "dag.dot"
    render_graph_file(pipeline(), out)
    text = out.read_text()
    assert text.startswith("digraph") and "s_a -> s_b [label=x tooltip=x]" in text


@pytest.mark.skipif(shutil.which("dot") is None, reason="needs Graphviz's dot (scripts/setup-browser.sh installs it)")
@pytest.mark.parametrize("suffix", [".svg", ".png"])
def test_svg_and_png(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"dag{suffix}"
    render_graph_file(pipeline(), out)
    data = out.read_bytes()
    assert data.startswith(b"\x89PNG") if suffix == ".png" else b"<svg" in data


def test_without_dot_suggests_dot_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    with pytest.raises(PipelineError, match=r"dot.*not installed.*-o dag\.dot"):
        render_graph_file(pipeline(), tmp_path / "dag.svg")
    assert not (tmp_path / "dag.svg").exists()


def test_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match="unknown graph format .jpg"):
        render_graph_file(pipeline(), tmp_path / "dag.jpg")
