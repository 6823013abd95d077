"""Engine benchmarks (issue 3): whole `jupyter-pipelines run` invocations, cold (empty store).

1. a 50-step chain of trivial steps, against the same code in one process and against 50 bare interpreter spawns;
2. a 1 -> 16 -> 1 diamond whose 16 middle steps each sleep 0.2 s, with --jobs 16, against the 0.2 s critical path;
3. a step that writes a 1 GB numpy array read by the next, against writing it once with np.save in one process.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from common import CLI, best_of, clean_store, report, time_command, write_notebook

REPEAT = 5


def chain(root: Path) -> None:
    steps = ["%%step s0\nv0 = 0"] + [f"%%step s{i}\nv{i} = v{i - 1} + 1" for i in range(1, 50)]
    path = write_notebook(root / "chain.ipynb", steps)
    ours = best_of(REPEAT, lambda: time_command([*CLI, "run", str(path)], cwd=root, before=clean_store(root)))
    one_process_code = "\n".join(s.split("\n", 1)[1] for s in steps)
    one_process = best_of(REPEAT, lambda: time_command([sys.executable, "-c", one_process_code]))
    spawn_once = best_of(REPEAT, lambda: time_command([sys.executable, "-c", "pass"]))
    report(
        "50-step chain, cold, whole CLI run",
        ours,
        0.35,
        {"same code in one process": one_process, "50 x `python -c pass` spawns": 50 * spawn_once},
    )
    print(
        f"    per-step overhead ≈ {(ours - one_process) / 50 * 1000:.1f} ms (bare spawn {spawn_once * 1000:.1f} ms)"
    )


def diamond(root: Path) -> None:
    steps = ["import time", "%%step top\nseed = 1"]
    steps += [f"%%step mid{i}\ntime.sleep(0.2)\nm{i} = seed + {i}" for i in range(16)]
    steps.append("%%step bottom\ntotal = " + " + ".join(f"m{i}" for i in range(16)))
    path = write_notebook(root / "diamond.ipynb", steps)
    ours = best_of(
        REPEAT, lambda: time_command([*CLI, "run", str(path), "--jobs", "16"], cwd=root, before=clean_store(root))
    )
    report("1 -> 16 -> 1 diamond (0.2 s sleeps), --jobs 16", ours, 0.35, {"critical path (one 0.2 s sleep)": 0.2})


def big_handoff(root: Path) -> None:
    code = "import numpy as np\nbig = np.ones(1024**3 // 8)"
    path = write_notebook(
        root / "handoff.ipynb",
        ["import numpy as np", "%%step write\nbig = np.ones(1024**3 // 8)", "%%step read\nfirst = float(big[0])"],
    )
    ours = best_of(3, lambda: time_command([*CLI, "run", str(path)], cwd=root, before=clean_store(root)))
    once = best_of(3, lambda: time_command([sys.executable, "-c", f"{code}\nnp.save({str(root / 'b.npy')!r}, big)"]))
    report("1 GB numpy array handed to the next step", ours, 1.0, {"create + np.save once in one process": once})
    (root / "b.npy").unlink(missing_ok=True)


def main() -> None:
    with tempfile.TemporaryDirectory(dir=Path.cwd() / "build" if (Path.cwd() / "build").is_dir() else None) as tmp:
        root = Path(tmp)
        chain(root)
        diamond(root)
        big_handoff(root)


if __name__ == "__main__":
    main()
