"""``jupyter-pipelines graph NOTEBOOK -o dag.svg|dag.png|dag.dot``: the pipeline's DAG as a file.

DOT comes from the same builder as the widget's (edges labelled with the names that flow). SVG and PNG need
Graphviz's ``dot`` program; without it the user is told to write ``.dot`` instead (or install Graphviz).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from ..errors import PipelineError
from ..model import Pipeline
from .dot import build_graph

FORMATS = {".dot": None, ".gv": None, ".svg": "svg", ".png": "png", ".pdf": "pdf"}
DOT_TIMEOUT = 120.0


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _layout(dot_source: str, fmt: str, output: Path) -> bytes:
    program = shutil.which("dot")
    if program is None:
        raise PipelineError(
            f"cannot write {output.name}: Graphviz's `dot` program is not installed.",
            hint=f"Write DOT instead (-o {output.with_suffix('.dot').name}) and lay it out elsewhere, "
            "or install Graphviz (apt-get install graphviz, brew install graphviz).",
        )
    try:
        done = subprocess.run(
            [program, f"-T{fmt}"], input=dot_source.encode(), capture_output=True, timeout=DOT_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        raise PipelineError(f"cannot write {output.name}: `dot` took over {DOT_TIMEOUT:.0f}s.") from None
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip()
        raise PipelineError(f"cannot write {output.name}: `dot` failed: {message}")
    return done.stdout


def render_graph_file(pipeline: Pipeline, output_path: str | os.PathLike[str]) -> None:
    """Write the pipeline's graph to ``output_path``; its suffix (.dot, .gv, .svg, .png, .pdf) picks the format."""
    output = Path(output_path)
    suffix = output.suffix.lower()
    if suffix not in FORMATS:
        raise PipelineError(
            f"cannot write {output.name}: unknown graph format {suffix or '(no suffix)'}.",
            hint="Use one of " + ", ".join(FORMATS) + ".",
        )
    dot_source = build_graph(pipeline, interactive=False).dot
    fmt = FORMATS[suffix]
    data = dot_source.encode() if fmt is None else _layout(dot_source, fmt, output)
    _write_atomically(output, data)
