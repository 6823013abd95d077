"""The offline reader: an ``.ipynb`` file's code cells, and the pipeline they describe.

``jupyter-pipelines run`` must start fast, and ``import nbformat`` alone costs ~160 ms, so nbformat 4 files (all
current ones) are read with ``json`` and a few structural checks; nbformat is imported only to convert older
formats. This is the only authoring module that touches the file system.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import NotebookError
from ..model import Pipeline
from .builder import Cell, build_pipeline

__all__ = ["notebook_dir", "pipeline_from_notebook", "read_cells"]

_RESAVE = "Open it in JupyterLab and save it again, or restore it from version control."


def _read_text(path: Path, shown: str) -> str:
    if path.is_dir():
        raise NotebookError(f"{shown} is a directory, not a notebook.", hint="Give the path of an .ipynb file.")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise NotebookError(
            f"{shown} does not exist.", hint="Check the path (relative paths start from the current directory)."
        ) from None
    except OSError as error:
        raise NotebookError(
            f"cannot read {shown}: {error.strerror or error}.", hint="Check the file's permissions."
        ) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise NotebookError(
            f"{shown} is not UTF-8 text (bad byte at offset {error.start}), so it is not a notebook.", hint=_RESAVE
        ) from None


def _not_a_notebook(shown: str, why: str) -> NotebookError:
    return NotebookError(f"{shown} is not a Jupyter notebook: {why}.", hint=_RESAVE)


def _cells_v4(document: dict[str, Any], shown: str) -> list[Cell]:
    cells = document.get("cells")
    if not isinstance(cells, list):
        raise _not_a_notebook(shown, "it has no 'cells' list")
    result = []
    for index, cell in enumerate(cells):
        if not isinstance(cell, dict) or not isinstance(cell.get("cell_type"), str):
            raise _not_a_notebook(shown, f"cell {index + 1} has no cell_type")
        source = cell.get("source", "")
        if isinstance(source, list) and all(isinstance(line, str) for line in source):
            source = "".join(source)
        if not isinstance(source, str):
            raise _not_a_notebook(shown, f"the source of cell {index + 1} is not text")
        if cell["cell_type"] == "code":
            cell_id = cell.get("id")
            result.append(Cell(index, source, cell_id if isinstance(cell_id, str) else None))
    return result


def _convert(text: str, version: object, shown: str) -> dict[str, Any]:
    """Older notebooks (nbformat 1-3) go through nbformat itself, imported only now."""
    try:
        import nbformat

        converted = nbformat.reads(text, as_version=4, capture_validation_error={})
    except Exception:  # nbformat raises many kinds of errors for documents it cannot read
        raise _unsupported(shown, version) from None
    return dict(converted)


def _unsupported(shown: str, version: object) -> NotebookError:
    return NotebookError(
        f"{shown} has nbformat version {version!r}, which jupyter-pipelines cannot read.",
        hint="Open it in JupyterLab and save it again (that writes nbformat 4).",
    )


def read_cells(path: str | Path) -> list[Cell]:
    """The code cells of a notebook in order; ``Cell.index`` counts all cells, markdown included."""
    shown = str(path)
    text = _read_text(Path(path), shown)
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise NotebookError(
            f"{shown} is not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}.", hint=_RESAVE
        ) from None
    except RecursionError:
        raise _not_a_notebook(shown, "its JSON is nested too deeply") from None
    if not isinstance(document, dict):
        raise _not_a_notebook(shown, "its JSON is not an object")
    version = document.get("nbformat")
    if version is None:
        raise _not_a_notebook(shown, "it has no 'nbformat' field")
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= 4:
        raise _unsupported(shown, version)
    if version == 4:
        return _cells_v4(document, shown)
    return _cells_v4(_convert(text, version, shown), shown)


def notebook_dir(path: str | Path) -> Path:
    """The directory tracked files and the ``.pipelines/`` store are relative to."""
    return Path(path).resolve().parent


def pipeline_from_notebook(path: str | Path) -> Pipeline:
    """The pipeline a notebook file describes, named after the file (``notebooks/churn.ipynb`` -> ``churn``)."""
    pipeline = build_pipeline(read_cells(path), Path(path).stem)
    if not pipeline.steps:
        raise NotebookError(
            f"{path} has no steps: start a cell with %%step NAME to make it a pipeline step.",
        )
    return pipeline


SETTINGS_KEY = "jupyter_pipelines"


def read_settings(path: str | Path) -> dict[str, str]:
    """Per-notebook settings (``metadata.jupyter_pipelines``: role_arn, bucket, region, prefix, name), or ``{}``.

    The export and promotion read them so the magics, the widget and the CLI agree; anything that is not a
    string-to-string mapping is ignored rather than trusted.
    """
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    settings = document.get("metadata", {}).get(SETTINGS_KEY, {}) if isinstance(document, dict) else {}
    if not isinstance(settings, dict):
        return {}
    return {str(k): v for k, v in settings.items() if isinstance(v, str)}
