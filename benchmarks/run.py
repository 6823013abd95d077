"""Run every benchmark (`bench_*.py` in this folder) and print its figures."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

HERE = Path(__file__).parent


def main(names: list[str]) -> None:
    sys.path.insert(0, str(HERE))
    for script in sorted(HERE.glob("bench_*.py")):
        if names and script.stem not in names and script.stem.removeprefix("bench_") not in names:
            continue
        print(f"== {script.stem}")
        runpy.run_path(str(script), run_name="__main__")
        print()


if __name__ == "__main__":
    main(sys.argv[1:])
