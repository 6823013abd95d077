"""The 4-step notebook the browser tests and the benchmark drive, and the cell that shows the widget."""

from __future__ import annotations

from pathlib import Path

from ..notebooks import write_notebook

XSS = "<img src=x onerror=window.__pipelinesXss=1>"

# The cell that displays the graph widget, wired by the magics to the live session.
SHOW_WIDGET = "%pipeline show"

CELLS = [
    "%load_ext jupyter_pipelines",
    SHOW_WIDGET,
    "%%parameters\nrows: int = 5\ndelay: float = 0.2",
    '%%step load\ndata = list(range(rows))\nprint("loaded", len(data), "rows")',
    f'%%step double\ndoubled = [x * 2 for x in data]\nprint("{XSS}")\nprint("doubled", len(doubled))',
    "%%step slow\nimport time\nfor _ in range(int(delay * 10)):\n    time.sleep(0.1)\n"
    'total = sum(doubled)\nprint("slept", delay)',
    '%%step report\nsummary = f"{len(data)} rows, total {total}"\nprint(summary)',
    "%pipeline run -p rows=6",
    "%pipeline run -p delay=120",
]
STEPS = ["load", "double", "slow", "report"]
WIDGET_CELL, FIRST_STEP_CELL, NEW_PARAMETER_RUN_CELL, LONG_RUN_CELL = 1, 3, 7, 8


def write_pipeline_notebook(root: Path, name: str = "pipeline.ipynb") -> Path:
    return write_notebook(root / name, CELLS)
