"""``why STEP``: will a step come from the cache or rerun, and exactly which part of its signature changed.

The run is simulated up to the step, without running anything: each upstream step either has a cache hit (its
outputs, and so its downstream input hashes, are known) or will rerun (its outputs are not known until it runs).
The step's signature is computed as the scheduler would; if an unexpired entry with intact objects matches, it
comes from the cache. Otherwise its parts are compared with those of its latest cache entry (or run record), and
each difference becomes a reason: code, prelude part, tracked file, option, parameter value, input, data file,
package version, Python version. An input from a step that will rerun is "unknown": it changes only if that
step's outputs change (early cut-off may keep this step cached).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from ..model import ParameterValue, Pipeline, Step
from .cache import Cache
from .runs import StepResult
from .signature import SignatureContext, step_signature
from .store import Store, try_read_json

Verdict = Literal["cached", "rerun"]


@dataclass(frozen=True)
class Explanation:
    step: str
    verdict: Verdict
    reasons: tuple[str, ...] = ()
    cached_from: str | None = None
    expires: float | None = None
    compared_with: str | None = None  # "its cached result from run X" / "its run X"
    unknown_inputs: tuple[str, ...] = field(default=())

    def text(self) -> str:
        if self.verdict == "cached":
            if self.expires is None:
                expiry = "kept until cleared"
            else:
                moment = datetime.fromtimestamp(self.expires, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
                expiry = f"expires {moment}"
            lines = [f"step {self.step!r} will come from the cache: the result of run {self.cached_from} ({expiry})."]
            lines += [f"  - {reason}" for reason in self.reasons]
            return "\n".join(lines)
        head = f"step {self.step!r} will rerun"
        if self.compared_with:
            head += f" (compared with {self.compared_with})"
        return "\n".join([head + ":", *(f"  - {reason}" for reason in self.reasons)])


@dataclass
class _Plan:
    """What the simulated run knows about one step."""

    will_run: bool
    result: StepResult | None = None  # a cache hit: its outputs
    why: str = ""  # one-line reason it reruns (for its downstream's explanation)


def explain(
    pipeline: Pipeline, store: Store, workdir: Path, step_name: str, parameters: Mapping[str, ParameterValue]
) -> Explanation:
    """Why ``step_name`` will rerun or come from the cache with these parameter values (nothing is run)."""
    workdir = Path(workdir).absolute()
    index = store.file_index()
    context = SignatureContext(workdir, index, store.packages_path)
    wanted = pipeline.upstream_of({step_name})
    steps = [s for s in pipeline.steps if s.name in wanted]
    context.prepare(steps)
    cache = Cache(store, pipeline.name, index)
    values = {p.name: parameters.get(p.name, p.default) for p in pipeline.parameters}
    plans: dict[str, _Plan] = {}
    explanation: Explanation | None = None
    for step in steps:
        explanation, hit = _explain_step(pipeline, step, cache, context, values, plans)
        why = explanation.reasons[0] if explanation.reasons else ""
        plans[step.name] = _Plan(will_run=hit is None, result=hit, why=why)
    with contextlib.suppress(OSError):
        index.save()
    assert explanation is not None
    return explanation


def _explain_step(
    pipeline: Pipeline,
    step: Step,
    cache: Cache,
    context: SignatureContext,
    parameters: Mapping[str, ParameterValue],
    plans: dict[str, _Plan],
) -> tuple[Explanation, StepResult | None]:
    hashes: dict[str, str] = {}
    unknown: dict[str, str] = {}  # input key -> upstream step that will rerun
    read = {item.step for item in step.inputs}
    for item in step.inputs:
        _add_input(plans[item.step], item.step, item.name, hashes, unknown)
    for name in step.upstream:
        if name in read and step.script is None:
            continue
        plan = plans[name]
        if plan.result is None:
            unknown[f"{name}.*"] = name
        else:
            for output, ref in plan.result.outputs.items():
                hashes[f"{name}.{output}"] = ref.hash
    image_id = None
    if step.executor == "container" and (step.local_image or step.image):
        from .containers import local_image_id

        image_id = local_image_id(step.local_image or step.image or "")
    signature = step_signature(
        pipeline, step, parameters=parameters, input_hashes=hashes, context=context, image_id=image_id
    )
    if not step.cache.enabled:
        return Explanation(step.name, "rerun", ("it has --no-cache: it always reruns and is never stored",)), None
    now = time.time()
    expired_note: str | None = None
    missing_note: str | None = None
    if not unknown:
        for data in cache.entries(step, signature.digest, now, expired=True):
            expires = data.get("expires")
            result = StepResult.from_dict(data["result"], cache.store.root)
            if expires is not None and now >= expires:
                moment = datetime.fromtimestamp(expires, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
                expired_note = f"its cached result from run {result.run_id} expired at {moment} (--cache)"
                continue
            problems = [cache.store.object_problem(ref, cache.index) for ref in result.outputs.values()]
            if any(problems):
                missing_note = f"its cached outputs from run {result.run_id} are gone or corrupt; it is recomputed"
                continue
            return Explanation(step.name, "cached", cached_from=result.run_id, expires=expires), result
    reasons: list[str] = [note for note in (expired_note, missing_note) if note]
    baseline, compared_with = _baseline(cache, step)
    if baseline is None:
        reasons.append("it never ran (no cache entry or successful run of it)")
    else:
        reasons += _differences(pipeline, baseline, signature.parts, unknown, plans)
    for key, upstream in sorted(unknown.items()):
        name = key.split(".", 1)[1]
        what = "its inputs" if name == "*" else f"input {name!r}"
        because = f": {upstream} will rerun ({plans[upstream].why})" if plans[upstream].why else ""
        reasons.append(
            f"{what} will change if {upstream}'s outputs change (early cut-off may still keep this cached){because}"
        )
    if not reasons:
        reasons.append("no part of its signature changed, but its cached result is gone (cache cleared or gc)")
    explanation = Explanation(
        step.name, "rerun", tuple(reasons), compared_with=compared_with, unknown_inputs=tuple(sorted(unknown))
    )
    return explanation, None


def _add_input(plan: _Plan, upstream: str, name: str, hashes: dict[str, str], unknown: dict[str, str]) -> None:
    if plan.result is None:
        unknown[f"{upstream}.{name}"] = upstream
        return
    ref = plan.result.outputs.get(name)
    if ref is not None:
        hashes[f"{upstream}.{name}"] = ref.hash


def _baseline(cache: Cache, step: Step) -> tuple[dict[str, str] | None, str | None]:
    """The signature parts of the step's latest cache entry, else of its latest recorded run."""
    for data in cache.step_entries(step):
        parts = data["result"].get("parts")
        if parts:
            return dict(parts), f"its cached result from run {data['result'].get('run_id')}"
    store = cache.store
    runs_dir = store.runs_dir(cache.pipeline)
    if runs_dir.is_dir():
        for run_dir in sorted(runs_dir.iterdir(), reverse=True):
            data = try_read_json(run_dir / "results" / f"{step.name}.json")
            if isinstance(data, dict) and data.get("parts"):
                return dict(data["parts"]), f"its run {run_dir.name}"
    return None, None


def _differences(
    pipeline: Pipeline,
    before: dict[str, str],
    after: dict[str, str],
    unknown: dict[str, str],
    plans: dict[str, _Plan],
) -> list[str]:
    reasons: list[str] = []
    for key in sorted(set(before) | set(after), key=_order):
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        kind, _, name = key.partition(":")
        if kind == "input":
            upstream = name.split(".", 1)[0]
            if any(k.startswith(upstream + ".") for k in unknown):
                continue  # said below: it depends on what the rerun gives
            reasons.append(_input_reason(name, old, new))
        else:
            reasons.append(_reason(kind, name, old, new))
    return reasons


_KIND_ORDER = [
    "version",
    "code",
    "prelude",
    "file",
    "options",
    "param",
    "input",
    "data",
    "package",
    "python",
    "image",
]


def _order(key: str) -> tuple[int, str]:
    kind = key.partition(":")[0]
    return (_KIND_ORDER.index(kind) if kind in _KIND_ORDER else len(_KIND_ORDER), key)


def _change(old: str | None, new: str | None, thing: str) -> str:
    if old is None:
        return f"{thing} is new"
    if new is None:
        return f"{thing} is no longer used"
    return f"{thing} changed"


def _reason(kind: str, name: str, old: str | None, new: str | None) -> str:
    if kind == "version":
        return "the cache format changed (jupyter-pipelines was upgraded)"
    if kind == "code":
        return "its code changed (comments and whitespace do not count)"
    if kind == "prelude":
        return _change(old, new, f"prelude part `{name}`")
    if kind == "file":
        return _change(old, new, f"tracked file {name}")
    if kind == "options":
        return _options_reason(old, new)
    if kind == "param":
        if old is None or new is None:
            return _change(old, new, f"parameter {name}")
        return f"parameter {name}: {_value(old)} → {_value(new)}"
    if kind == "data":
        if old is None:
            return f"data file {name} is new (it exists now)"
        if new is None or new == "missing":
            return f"data file {name} no longer exists"
        return f"data file {name} changed"
    if kind == "package":
        return f"package {name}: {old or 'not imported'} → {new or 'not imported'}"
    if kind == "python":
        return f"Python version: {old} → {new}"
    if kind == "image":
        return f"container image: {_short_id(old)} → {_short_id(new)}"
    return _change(old, new, f"{kind} {name}".strip())


def _short_id(image_id: str | None) -> str:
    """``sha256:f817378bacd1...`` as the engines show it (12 hex digits)."""
    if not image_id:
        return "none"
    return image_id.partition(":")[2][:12] if ":" in image_id else image_id[:12]


def _value(text: str) -> str:
    if text.startswith("hash:"):
        return "(a long value)"
    return text.split(" ", 1)[1] if " " in text else text


def _options_reason(old: str | None, new: str | None) -> str:
    try:
        before: dict[str, Any] = json.loads(old or "{}")
        after: dict[str, Any] = json.loads(new or "{}")
    except ValueError:
        return "its options changed"
    changed = [
        f"{name.replace('_', ' ')}: {before.get(name)} → {after.get(name)}"
        for name in sorted(set(before) | set(after))
        if before.get(name) != after.get(name)
    ]
    return "option " + "; ".join(changed) if changed else "its options changed"


def _input_reason(name: str, old: str | None, new: str | None) -> str:
    upstream, _, value = name.partition(".")
    if old is None:
        return f"input {value!r} from step {upstream} is new"
    if new is None:
        return f"input {value!r} from step {upstream} is no longer read"
    return f"input {value!r} from step {upstream} changed (its cached result differs from the one used before)"
