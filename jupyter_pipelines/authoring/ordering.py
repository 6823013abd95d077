"""Checking ``--after`` and putting steps in a run order: topological, stable by notebook order, cycles explained."""

from __future__ import annotations

import heapq
from collections.abc import Sequence

from ..errors import AnalysisError
from ..model import Step

__all__ = ["check_after", "sort_steps"]


def _cell(step: Step) -> str:
    return f"cell {step.cell_index + 1}"


def check_after(steps: Sequence[Step]) -> None:
    """Every ``--after`` must name another existing step (it may be a later one)."""
    names = [s.name for s in steps]
    for step in steps:
        for upstream in step.after:
            if upstream == step.name:
                raise AnalysisError(
                    f"step {step.name!r} ({_cell(step)}): --after names the step itself.",
                    hint="Remove it from --after.",
                )
            if upstream not in names:
                raise AnalysisError(
                    f"step {step.name!r} ({_cell(step)}): --after names {upstream!r}, which is not a step.",
                    hint=f"Steps: {', '.join(names)}.",
                )


def sort_steps(steps: Sequence[Step]) -> tuple[Step, ...]:
    """Topological order, stable by notebook order (``--after`` may name a later step)."""
    position = {s.name: i for i, s in enumerate(steps)}
    waiting = {s.name: set(s.upstream) for s in steps}
    downstream: dict[str, list[str]] = {s.name: [] for s in steps}
    for step in steps:
        for upstream in step.upstream:
            downstream[upstream].append(step.name)
    ready = [position[name] for name, ups in waiting.items() if not ups]
    heapq.heapify(ready)
    ordered: list[Step] = []
    while ready:
        step = steps[heapq.heappop(ready)]
        ordered.append(step)
        for name in downstream[step.name]:
            waiting[name].discard(step.name)
            if not waiting[name]:
                heapq.heappush(ready, position[name])
    if len(ordered) < len(steps):
        raise _cycle(steps, {name for name, ups in waiting.items() if ups})
    return tuple(ordered)


def _cycle(steps: Sequence[Step], stuck: set[str]) -> AnalysisError:
    by_name = {s.name: s for s in steps}
    start = min(stuck, key=lambda n: by_name[n].cell_index)
    path = [start]
    while True:  # every stuck step waits on a stuck step, so walking upstream must revisit one
        upstream = next(u for u in by_name[path[-1]].upstream if u in stuck)
        if upstream in path:
            path = path[path.index(upstream) :] + [upstream]
            break
        path.append(upstream)
    reasons = []
    for downstream, upstream in zip(path, path[1:]):
        flowing = [i.name for i in by_name[downstream].inputs if i.step == upstream]
        why = f"reads {', '.join(map(repr, flowing))}" if flowing else "--after"
        reasons.append(f"{downstream!r} ({_cell(by_name[downstream])}) runs after {upstream!r} ({why})")
    return AnalysisError(
        f"steps form a cycle: {' -> '.join(path)}: " + "; ".join(reasons) + ".",
        hint="Remove one of these --after options so the steps can run in order.",
    )
