"""Selective execution options (``--only``, ``--from``, ``--to``) turned into the set of steps that run.

SageMaker's selective execution: only the selected steps run; every step they need that is not selected gives its
outputs from its latest successful run. Both skins turn their options into ``RunOptions.selected`` here, so the
CLI and the magics agree on what ``--from a --to c`` means (the intersection of the two ranges).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import RunError
from ..model import Pipeline

__all__ = ["select_steps", "split_names"]


def split_names(values: Sequence[str]) -> list[str]:
    """``["a,b", "c"]`` -> ``["a", "b", "c"]``: repeated options and comma lists alike, blanks dropped."""
    return [name.strip() for value in values for name in value.split(",") if name.strip()]


def select_steps(
    pipeline: Pipeline, *, only: Sequence[str] = (), from_: str | None = None, to: str | None = None
) -> frozenset[str] | None:
    """The steps to run, or None when no option was given (run everything, the cache decides).

    ``only``: those steps; ``from_``: it and everything downstream; ``to``: it and everything upstream. Several
    options: the steps every one of them selects. An unknown step name is a ``RunError`` listing the steps.
    """
    names = set(pipeline.step_names)
    for option, given in (("--only", only), ("--from", [from_] if from_ else []), ("--to", [to] if to else [])):
        unknown = [name for name in given if name not in names]
        if unknown:
            raise RunError(
                f"{option} names {unknown[0]!r}, which is not a step of pipeline {pipeline.name!r}.",
                hint=f"Its steps: {', '.join(pipeline.step_names)}.",
            )
    ranges: list[set[str]] = []
    if only:
        ranges.append(set(only))
    if from_:
        ranges.append(pipeline.downstream_of({from_}))
    if to:
        ranges.append(pipeline.upstream_of({to}))
    if not ranges:
        return None
    selected = set.intersection(*ranges)
    if not selected:
        raise RunError(
            "the selection (" + _describe(only, from_, to) + ") leaves no step to run.",
            hint="--from must come before --to in the pipeline, and --only must name steps in that range.",
        )
    return frozenset(selected)


def _describe(only: Sequence[str], from_: str | None, to: str | None) -> str:
    parts = [f"--only {','.join(only)}"] if only else []
    parts += [f"--from {from_}"] if from_ else []
    parts += [f"--to {to}"] if to else []
    return " ".join(parts)
