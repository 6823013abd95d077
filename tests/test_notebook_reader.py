"""The offline reader: .ipynb files to cells to a pipeline, fast, with one-line errors for every bad file."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jupyter_pipelines.authoring.builder import Cell
from jupyter_pipelines.authoring.notebook import notebook_dir, pipeline_from_notebook, read_cells
from jupyter_pipelines.errors import NotebookError, PipelineError


def notebook(cells: list[tuple[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {},
        "cells": [
            {"cell_type": kind, "id": f"c{i}", "metadata": {}, "source": source}
            | ({"outputs": [], "execution_count": None} if kind == "code" else {})
            for i, (kind, source) in enumerate(cells)
        ],
        **extra,
    }


def write(path: Path, document: object) -> Path:
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def test_read_cells_keeps_positions_ids_and_joins_source_lists(tmp_path: Path) -> None:
    path = write(
        tmp_path / "n.ipynb",
        notebook([("markdown", "# title"), ("code", ["%%step a\n", "x = 1"]), ("raw", "r"), ("code", "y = 2")]),
    )
    assert read_cells(path) == [Cell(1, "%%step a\nx = 1", "c1"), Cell(3, "y = 2", "c3")]


def test_cell_without_id_or_source(tmp_path: Path) -> None:
    document = {"nbformat": 4, "nbformat_minor": 4, "cells": [{"cell_type": "code"}]}
    assert read_cells(write(tmp_path / "n.ipynb", document)) == [Cell(0, "", None)]


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "n.ipynb"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(notebook([("code", "x = 1")])).encode())
    assert read_cells(path) == [Cell(0, "x = 1", "c0")]


def test_pipeline_from_notebook_is_named_after_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "churn.ipynb", notebook([("code", "import math"), ("code", "%%step a\nx = math.pi")]))
    pipeline = pipeline_from_notebook(path)
    assert pipeline.name == "churn"
    assert pipeline.step("a").prelude == ("0:0",)
    assert pipeline.step("a").cell_id == "c1"


def test_notebook_dir(tmp_path: Path) -> None:
    assert notebook_dir(tmp_path / "sub" / "n.ipynb") == (tmp_path / "sub").resolve()


def test_older_nbformat_is_converted(tmp_path: Path) -> None:
    v3 = {
        "nbformat": 3,
        "nbformat_minor": 0,
        "metadata": {},
        "worksheets": [
            {
                "cells": [
                    {"cell_type": "markdown", "source": "hi", "metadata": {}},
                    {"cell_type": "code", "input": "%%step a\nx = 1", "language": "python", "outputs": [],
                     "metadata": {}},
                ]
            }
        ],
    }  # fmt: skip
    cells = read_cells(write(tmp_path / "old.ipynb", v3))
    assert [(c.index, c.source) for c in cells] == [(1, "%%step a\nx = 1")]


def test_v4_does_not_import_nbformat(tmp_path: Path) -> None:
    path = write(tmp_path / "n.ipynb", notebook([("code", "%%step a\nx = 1")]))
    code = (
        "import sys\nfrom jupyter_pipelines.authoring.notebook import pipeline_from_notebook\n"
        f"pipeline_from_notebook({str(path)!r})\nprint('nbformat' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_fifty_steps_read_and_build_quickly(tmp_path: Path) -> None:
    sources = [("code", "import math\ndef helper(v):\n    return math.sqrt(v)"), ("code", "%%parameters\nn: int = 3")]
    sources += [("code", "%%step s0\nx0 = helper(n)")]
    sources += [("code", f"%%step s{i}\nx{i} = helper(x{i - 1}) + n\nprint(x{i})") for i in range(1, 50)]
    path = write(tmp_path / "big.ipynb", notebook(sources))
    pipeline_from_notebook(path)  # warm up
    start = time.perf_counter()
    pipeline = pipeline_from_notebook(path)
    elapsed = time.perf_counter() - start
    assert len(pipeline.steps) == 50
    assert elapsed < 0.15, f"reading and building 50 steps took {elapsed:.3f}s"


# ---- errors: one line naming the file and the fix -----------------------------------------------------------------


def _error(path: Path | str) -> str:
    with pytest.raises(NotebookError) as caught:
        pipeline_from_notebook(path)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.ipynb"
    assert _error(path) == f"{path} does not exist. Check the path (relative paths start from the current directory)."


def test_directory(tmp_path: Path) -> None:
    assert _error(tmp_path) == f"{tmp_path} is a directory, not a notebook. Give the path of an .ipynb file."


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "n.ipynb"
    path.write_bytes(b'{"a": "\xff"}')
    assert _error(path).startswith(f"{path} is not UTF-8 text (bad byte at offset 7), so it is not a notebook.")
    assert "save it again" in _error(path)


def test_invalid_json_has_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "n.ipynb"
    path.write_text('{\n  "cells": [,]\n}')
    message = _error(path)
    assert message.startswith(f"{path} is not valid JSON: Expecting value at line 2, column 13.")
    assert "Open it in JupyterLab and save it again" in message


@pytest.mark.parametrize(
    ("document", "why"),
    [
        ([1, 2], "its JSON is not an object"),
        ({"cells": []}, "it has no 'nbformat' field"),
        ({"nbformat": 4}, "it has no 'cells' list"),
        ({"nbformat": 4, "cells": {}}, "it has no 'cells' list"),
        ({"nbformat": 4, "cells": ["x"]}, "cell 1 has no cell_type"),
        ({"nbformat": 4, "cells": [{"cell_type": 3}]}, "cell 1 has no cell_type"),
        ({"nbformat": 4, "cells": [{"cell_type": "code", "source": ["a", 1]}]}, "the source of cell 1 is not text"),
        ({"nbformat": 4, "cells": [{"cell_type": "code", "source": None}]}, "the source of cell 1 is not text"),
    ],
)
def test_json_that_is_not_a_notebook(tmp_path: Path, document: object, why: str) -> None:
    path = write(tmp_path / "n.ipynb", document)
    assert _error(path) == (
        f"{path} is not a Jupyter notebook: {why}. "
        "Open it in JupyterLab and save it again, or restore it from version control."
    )


@pytest.mark.parametrize("version", [5, 99, "4", True, 2.5])
def test_unsupported_version(tmp_path: Path, version: object) -> None:
    path = write(tmp_path / "n.ipynb", {"nbformat": version, "cells": []})
    assert _error(path) == (
        f"{path} has nbformat version {version!r}, which jupyter-pipelines cannot read. "
        "Open it in JupyterLab and save it again (that writes nbformat 4)."
    )


def test_no_steps(tmp_path: Path) -> None:
    (tmp_path / "notebooks").mkdir()
    path = write(tmp_path / "notebooks" / "x.ipynb", notebook([("code", "x = 1")]))
    assert _error(path) == f"{path} has no steps: start a cell with %%step NAME to make it a pipeline step."


def test_real_nbformat_notebook(tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("x"), nbformat.v4.new_code_cell("%%step a\nx = 1")]
    path = tmp_path / "real.ipynb"
    nbformat.write(nb, str(path))
    (cell,) = read_cells(path)
    assert (cell.index, cell.source, cell.id) == (1, "%%step a\nx = 1", nb.cells[1].id)


# ---- robustness ---------------------------------------------------------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
_headers = st.sampled_from(
    ["", "%%step a\n", "%%step b --after a\n", "%%step c --retry x\n", "%%parameters\n", "%%writefile f.py\n",
     "%%writefile --step w code/w.py\n", "%%step a --script s.py\n", "%%time\n", "%%step d --outputs q\n"]
)  # fmt: skip
_bodies = st.sampled_from(
    ["", "x = 1\n", "y = x + 1\n", "q = y\n", "import os\n", "def f():\n    return x\n", "n: int = 3\n",
     "x = = 1\n", "%ls\n", "z = f()\n", "k = n\n", "a = 'f.py'\n"]
) | st.text(max_size=30)  # fmt: skip


@st.composite
def _notebooks(draw: st.DrawFn) -> object:
    kinds = st.sampled_from(["code", "code", "code", "markdown", "raw"])
    cells = [(draw(kinds), draw(_headers) + draw(_bodies)) for _ in range(draw(st.integers(0, 8)))]
    return notebook(cells)


def _read(path: Path) -> None:
    with contextlib.suppress(PipelineError):
        pipeline_from_notebook(path)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(_json, _json.map(lambda d: {"nbformat": 4, "cells": d}), _notebooks()))
def test_arbitrary_documents_give_a_pipeline_or_a_pipeline_error(tmp_path: Path, document: object) -> None:
    _read(write(tmp_path / "n.ipynb", document))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=200))
def test_arbitrary_bytes_give_a_pipeline_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "n.ipynb"
    path.write_bytes(data)
    _read(path)
