"""A pipeline as plain text (``%pipeline show --text``, ``jupyter-pipelines show``): what runs, and why in that order.

Deterministic: the same pipeline always gives the same text, so it can be diffed and tested.
"""

from __future__ import annotations

from ..model import Pipeline, Step

__all__ = ["describe_pipeline"]


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _seconds(value: float) -> str:
    return f"{value:g}s"


def _summary(step: Step) -> str:
    kind = f"script {step.script}" if step.script is not None else "cell step"
    details = [kind, f"{step.executor} executor"]
    if step.kind != "processing":
        details.append(f"kind {step.kind}")
    if step.retry:
        details.append(f"retry {step.retry}")
    if step.timeout is not None:
        details.append(f"timeout {_seconds(step.timeout)}")
    return f"{step.name} (cell {step.cell_index + 1}): " + ", ".join(details)


def _cache(step: Step) -> str:
    """The cache settings when they differ from the default (cached, no expiry, this pipeline only)."""
    if not step.cache.enabled:
        return "off"
    details = []
    if step.cache.expire_after is not None:
        details.append(f"expires after {step.cache.expire_after}")
    if step.cache_scope == "shared":
        details.append("shared with other pipelines")
    return ", ".join(details)


def _step_lines(pipeline: Pipeline, step: Step) -> list[str]:
    lines = [f"  {_summary(step)}"]
    edges = [e for e in pipeline.edges if e.downstream == step.name]
    if not edges:
        lines.append("    upstream: none")
    for edge in edges:
        why = "reads " + ", ".join(edge.names) if edge.reason == "reads" else "--after"
        if edge.reason == "reads" and edge.upstream in step.after:
            why += " (and --after)"
        lines.append(f"    after {edge.upstream}: {why}")
    if step.parameters:
        lines.append("    parameters: " + ", ".join(step.parameters))
    if step.prelude:
        used = []
        for key in step.prelude:
            part = pipeline.prelude_part(key)
            names = ", ".join(part.binds) if part.binds else part.source.splitlines()[0]
            used.append(f"{names} (cell {part.cell_index + 1})")
        lines.append("    prelude: " + "; ".join(used))
    if step.output_names:
        lines.append("    outputs: " + ", ".join(step.output_names))
    if step.files:
        lines.append("    files: " + ", ".join(step.files))
    if step.data_inputs:
        lines.append("    data inputs: " + ", ".join(step.data_inputs))
    cache = _cache(step)
    if cache:
        lines.append(f"    cache: {cache}")
    if step.env:
        lines.append("    env: " + " ".join(f"{name}={value!r}" for name, value in step.env))
    lines += _sagemaker_lines(step)
    return lines


def _sagemaker_lines(step: Step) -> list[str]:
    """The condition and the SageMaker settings, when given."""
    lines = []
    if step.condition is not None:
        lines.append(f"    when: {step.condition_text} (condition step {step.condition_step})")
        if step.else_fail is not None:
            lines.append(f"    else fail: {step.else_fail!r} (fail step {step.fail_step})")
    sagemaker = [
        f"image {step.image}" if step.image else "",
        f"framework {step.framework}" if step.framework else "",
        f"instance type {step.instance_type}" if step.instance_type else "",
        f"instance count {step.instance_count}" if step.instance_count is not None else "",
        f"requirements {step.requirements}" if step.requirements else "",
    ]
    if any(sagemaker):
        lines.append("    sagemaker: " + ", ".join(item for item in sagemaker if item))
    return lines


def describe_pipeline(pipeline: Pipeline) -> str:
    """Parameters, then each step in run order with its upstream steps and the names that flow along each edge."""
    counts = f"{_plural(len(pipeline.steps), 'step')}, {_plural(len(pipeline.parameters), 'parameter')}"
    lines = [f"pipeline {pipeline.name!r}: {counts}"]
    if pipeline.parameters:
        lines += ["", "parameters:"]
        lines += [f"  {p.name}: {p.type} = {p.default!r}" for p in pipeline.parameters]
    lines += ["", "steps (in run order):"]
    for step in pipeline.steps:
        lines += _step_lines(pipeline, step)
    if not pipeline.steps:
        lines.append("  none: start a cell with %%step NAME to make it a step")
    if pipeline.files:
        lines += ["", "tracked files:"]
        for tracked in pipeline.files:
            size = _plural(len(tracked.content.splitlines()), "line")
            lines.append(f"  {tracked.path} (cell {tracked.cell_index + 1}, {size})")
    return "\n".join(lines) + "\n"
