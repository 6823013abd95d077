"""Shared benchmark helpers: timing whole commands, best-of-N, and printing figures against baselines."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

CLI = [str(Path(sys.executable).with_name("jupyter-pipelines"))]


def write_notebook(path: Path, sources: Sequence[str]) -> Path:
    cells = [new_code_cell(s, id=uuid.uuid4().hex[:8]) for s in sources]
    nbformat.write(new_notebook(cells=cells), str(path))
    return path


def time_command(
    command: Sequence[str], *, cwd: Path | None = None, before: Callable[[], None] | None = None
) -> float:
    """Wall time of one run of a command (``before`` runs untimed first, e.g. to empty the store)."""
    if before is not None:
        before()
    started = time.perf_counter()
    done = subprocess.run(list(command), cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"benchmark command failed: {' '.join(command)}\n{done.stdout}\n{done.stderr}")
    return elapsed


def best_of(repeat: int, measure: Callable[[], float]) -> float:
    return min(measure() for _ in range(repeat))


def clean_store(directory: Path) -> Callable[[], None]:
    def clean() -> None:
        shutil.rmtree(directory / ".pipelines", ignore_errors=True)

    return clean


def seconds(value: float) -> str:
    """``0.123 s``, or ``4.56 ms`` below a tenth of a second (so a 5 ms target does not read 0.00 s)."""
    return f"{value * 1000:.2f} ms" if value < 0.1 else f"{value:.3f} s"


def report(title: str, value: float, target: float | None, baselines: dict[str, float]) -> None:
    """One figure: the absolute time, the target, and the ratio to each baseline measured in this run."""
    target_text = f" (target < {seconds(target)}: {'met' if value < target else 'NOT met'})" if target else ""
    print(f"{title}: {seconds(value)}{target_text}")
    for name, base in baselines.items():
        print(f"    {value / base:7.2f}x  {name} ({seconds(base)})")
