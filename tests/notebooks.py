"""Test helpers: write small notebooks to disk the way JupyterLab saves them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook


def write_notebook(path: Path, sources: Sequence[str]) -> Path:
    """An .ipynb whose code cells are ``sources`` (each with a cell id, as nbformat 4.5 has)."""
    cells = [new_code_cell(source, id=uuid.uuid4().hex[:8]) for source in sources]
    notebook = new_notebook(
        cells=cells,
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, str(path))
    return path
