"""The scheduler: runs a pipeline's steps in dependency order, in parallel, on one thread, and says what happened.

One selector loop on the caller's thread watches every step's log pipes, the worker pool and the cancel token, so
events reach subscribers from that thread and a KeyboardInterrupt (the kernel's interrupt) lands here: running
step process groups are terminated, the run is recorded as cancelled, and the interrupt is re-raised.

Whether a ready step must run at all is the rebuilder's call (``cache.py`` with ``signature.py``); this module
only decides when.

Conditions (``--when``). When a step with a condition is ready, the condition is evaluated on the upstream values
it reads (loaded from the store) and the run's parameter values, once per distinct condition per run, before the
cache is consulted: the decision is never cached. False: the step and everything downstream of it are reported
``condition_false`` and do not run; the run still succeeds, unless the condition has ``--else-fail``, which adds
a failed result for the fail step (its error is the message) and so fails the run. A condition that cannot be
evaluated (a missing key, text ordered against a number) fails the step. A ``register`` step that runs and
succeeds records a new version in the local model registry (``Store.add_model_version``).
"""

from __future__ import annotations

import codecs
import contextlib
import dataclasses
import json
import logging
import os
import selectors
import signal
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ..condition_eval import ConditionError, evaluate, explain, fail_message, first_read, read_value, value_refs
from ..errors import ContainerError, ParameterError, PipelineError, RunError
from ..model import Condition, ParameterValue, Pipeline, Step, ValueRef
from . import specs
from .cache import Cache, may_reuse, may_store
from .events import (
    RunFinished,
    RunStarted,
    StepFailed,
    StepFinished,
    StepLog,
    StepSkipped,
    StepStarted,
    Subscriber,
)
from .executors import ProcessPool, SpawnPool, ZygotePool, run_in_kernel
from .interrupt import ThreadInterrupter
from .publish import Publisher
from .records import RecordWriter
from .redact import Redactor, StreamRedactor, secret_values
from .runs import CancelToken, ObjectRef, RunOptions, RunResult, StepResult
from .signature import Signature, SignatureContext, step_signature
from .store import Store, try_read_json

log = logging.getLogger(__name__)

KILL_GRACE = 2.0  # seconds between SIGTERM and SIGKILL
DONE = ("succeeded", "cached")
BROKEN = ("failed", "skipped", "cancelled", "condition_false")
APPROVAL = "PendingManualApproval"  # a new local model version's approval status, as SageMaker's registry starts


def run_pipeline(
    pipeline: Pipeline,
    *,
    store: Store,
    workdir: Path,
    options: RunOptions | None = None,
    subscribers: Iterable[Subscriber] = (),
    cancel: CancelToken | None = None,
) -> RunResult:
    """Run (or reuse from the cache) the selected steps of ``pipeline``; see ``RunOptions`` for the choices."""
    options = options or RunOptions()
    return _Run(pipeline, store, Path(workdir).absolute(), options, subscribers, cancel or CancelToken()).execute()


class _LazyLog:
    """A step's log file, created at its first write: most steps print nothing, and creating a file costs
    ~60 us here (two per step)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[bytes] | None = None

    def write(self, data: bytes) -> None:
        if self._file is None:
            self._file = open(self.path, "ab")  # noqa: SIM115 - open for the rest of the run
        self._file.write(data)

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


class _LogPump:
    """Copies one pipe of a running step to its log file and publishes the text as StepLog events, with the
    values of secret-looking environment variables masked (``redact.py``) in both."""

    def __init__(self, fd: int, stream: str, file: _LazyLog, publish: Any, secrets: tuple[str, ...] = ()) -> None:
        self.fd = fd
        self.stream = stream
        self.file = file
        self.publish = publish
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.redactor = StreamRedactor(secrets)
        self.open = True
        os.set_blocking(fd, False)

    def read(self) -> bool:
        """Read what is there; False once the pipe is at EOF (or would block)."""
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return False
        if not data:
            return False
        text = self.decoder.decode(data)
        if self.redactor.active:  # the file gets the masked text too (raw bytes only when there is no secret)
            text = self.redactor.feed(text)
            data = text.encode("utf-8", "replace")
        self.file.write(data)
        self.file.flush()
        if text:
            self.publish(self.stream, text)
        return True

    def finish(self) -> None:
        """Write and publish what the redactor held back (a tail that might have begun a secret)."""
        text = self.redactor.flush()
        if text:
            self.file.write(text.encode("utf-8", "replace"))
            self.file.flush()
            self.publish(self.stream, text)


@dataclass
class _Job:
    step: Step
    attempt: int
    id: str
    started: float
    result_path: Path
    pumps: list[_LogPump] = field(default_factory=list)
    deadline: float | None = None
    kill_reason: str | None = None  # "timeout" or "cancel"
    kill_at: float | None = None  # when to escalate to SIGKILL
    inputs: dict[str, ObjectRef] = field(default_factory=dict)
    pool: ProcessPool | None = None  # the pool running it (process steps: zygote/spawn; container steps)


@dataclass(frozen=True)
class _Decision:
    """A condition's outcome in this run: holds or not (with the reason and the fail message), or an error."""

    holds: bool = False
    values: dict[str, Any] = field(default_factory=dict)  # the upstream values it read, by output name
    reason: str = ""
    message: str = ""  # the --else-fail message, when there is one
    error: str | None = None


class _Run:
    def __init__(
        self,
        pipeline: Pipeline,
        store: Store,
        workdir: Path,
        options: RunOptions,
        subscribers: Iterable[Subscriber],
        cancel: CancelToken,
    ) -> None:
        self.pipeline = pipeline
        self.store = store
        self.workdir = workdir
        self.options = options
        self.subscribers = list(subscribers)
        self.cancel = cancel
        self.parameters = self._parameter_values()
        self.index = store.file_index()
        self.context = SignatureContext(workdir, self.index, store.packages_path)
        self.reused: dict[str, StepResult] = {}  # steps a selective run takes from their latest successful run
        self.order = self._selected_steps()
        self.max_jobs = max(1, options.jobs or os.cpu_count() or 1)
        self.cache = Cache(store, pipeline.name, self.index, self._warn)
        self.read_names: dict[str, set[str]] = {step.name: set() for step in pipeline.steps}
        for step in pipeline.steps:
            for item in step.inputs:
                self.read_names.setdefault(item.step, set()).add(item.name)
        self.needed = specs.needed_outputs(pipeline, self._executor)
        self.status: dict[str, str] = {step.name: "pending" for step in self.order}
        self.upstream = {step.name: step.upstream for step in self.order}
        self.results: dict[str, StepResult] = {}
        self.signatures: dict[str, Signature | None] = {}
        self.input_hashes: dict[str, dict[str, str]] = {}
        self.failed_root: dict[str, str] = {}
        self.decisions: dict[Condition, _Decision] = {}
        self.false_reason: dict[str, str] = {}  # condition_false step -> the reason of the condition behind it
        self.fail_steps: list[str] = []  # --else-fail steps that failed this run (not steps of the pipeline)
        self.jobs: dict[str, _Job] = {}
        self.kernel_step: str | None = None
        self.pool: ProcessPool | None = None
        self.container_pool: ProcessPool | None = None
        self.engine: Any = None  # containers.Engine, connected when the run has container steps
        self.image_ids: dict[str, str] = {}  # container step -> the id of the image it runs in (signed)
        self.cancelled = False
        self.selector = selectors.DefaultSelector()
        self.logs: dict[str, tuple[_LazyLog, _LazyLog]] = {}

    # --- setup ------------------------------------------------------------------------------------------------

    def _parameter_values(self) -> dict[str, ParameterValue]:
        known = {p.name for p in self.pipeline.parameters}
        unknown = sorted(set(self.options.parameters) - known)
        if unknown:
            raise ParameterError(f"pipeline {self.pipeline.name!r} has no parameter {unknown[0]!r}")
        return {p.name: self.options.parameters.get(p.name, p.default) for p in self.pipeline.parameters}

    def _selected_steps(self) -> list[Step]:
        names = set(self.pipeline.step_names)
        for step in self.pipeline.steps:
            missing = sorted(set(step.upstream) - names)
            if missing:
                raise RunError(f"step {step.name!r} depends on {missing[0]!r}, which is not a step of the pipeline")
        given_options = (
            ("target", self.options.targets or ()),
            ("forced step", self.options.force),
            ("selected step", self.options.selected or ()),
        )
        for option, given in given_options:
            unknown = sorted(set(given) - names)
            if unknown:
                raise RunError(f"{option} {unknown[0]!r} is not a step of pipeline {self.pipeline.name!r}")
        wanted = names if self.options.targets is None else self.pipeline.upstream_of(set(self.options.targets))
        if self.options.selected is not None:
            wanted = self._plan_selection(wanted & self.options.selected)
        return [step for step in self.pipeline.steps if step.name in wanted]

    def _plan_selection(self, selected: set[str]) -> set[str]:
        """Selective execution: the selected steps run; each step they need that is not selected gives the
        outputs of its latest successful run, found now, before anything runs."""
        if not selected:
            raise RunError("the selection leaves no step to run", hint="Select steps that the targets need.")
        needed = {up for name in selected for up in self.pipeline.step(name).upstream} - selected
        for name in sorted(needed, key=self.pipeline.step_names.index):
            latest = self.store.latest_result(self.pipeline.name, name, self.index)
            if latest is None:
                users = sorted(n for n in selected if name in self.pipeline.step(n).upstream)
                raise RunError(
                    f"step {name!r} has no successful run to take its outputs from, and {users[0]!r} needs them",
                    hint=f"Run {name!r} first (e.g. --to {name}), or add it to the selection.",
                )
            self.reused[name] = latest
        return selected | needed

    def _executor(self, step: Step) -> str:
        if step.executor == "container":
            return "container"
        kernel = step.executor == "kernel" and step.script is None and self.options.kernel_namespace is not None
        return "kernel" if kernel else "process"

    def _prepare_containers(self) -> None:
        """Container steps: connect to the engine, remove what dead runs left, resolve each image to its id (the
        cache signs the id, not the tag). Problems stop the run before anything runs, with the fix."""
        steps = [s for s in self.order if s.name not in self.reused and self._executor(s) == "container"]
        if not steps:
            return
        for step in steps:
            if not (step.local_image or step.image):
                raise ContainerError(
                    f"step {step.name!r} runs with --executor container but names no image.",
                    hint="Add --image IMAGE (or --local-image IMAGE) to its %%step line, or set a default for the "
                    "pipeline: %pipeline config --image IMAGE.",
                )
            absolute = [path for path in step.data_inputs if os.path.isabs(path)]
            if absolute:
                raise ContainerError(
                    f"step {step.name!r} declares --inputs {absolute[0]}, an absolute path, which its container "
                    "(like a SageMaker job) cannot show at the same place: the job links its inputs only inside "
                    "its working directory.",
                    hint="Put the data (or a symlink to it) inside the notebook directory and declare it relative, "
                    f"e.g. --inputs data/{os.path.basename(absolute[0])}.",
                )
        if self.options.job_files is None:  # a caller's mistake, not the user's: the skins always pass it
            raise ContainerError(
                "container steps need their job bundle, and this run was started without RunOptions.job_files.",
                hint="Pass job_files=jupyter_pipelines.local_jobs.job_files.",
            )
        from .containers import Engine

        self.engine = Engine.connect()
        self.engine.remove_leftovers(self.store.run_is_live)
        for step in steps:
            image = step.local_image or step.image
            assert image is not None
            self.image_ids[step.name] = self.engine.image_id(image, step.name)

    def _write_tracked_files(self) -> None:
        """Put the notebook's version of each tracked file the run uses on disk, so what runs is what is hashed."""
        used = {path for step in self.order for path in (*step.files, *([step.script] if step.script else []))}
        for tracked in self.pipeline.files:
            if tracked.path not in used:
                continue
            path = self.workdir / tracked.path
            with contextlib.suppress(OSError):
                if path.read_text(encoding="utf-8") == tracked.content:
                    continue
            path.parent.mkdir(parents=True, exist_ok=True)
            temp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
            temp.write_text(tracked.content, encoding="utf-8")
            os.replace(temp, path)

    # --- the run ----------------------------------------------------------------------------------------------

    def execute(self) -> RunResult:
        self.started = time.time()
        self.run_id, self.run_dir = self.store.new_run(self.pipeline.name)
        self.results_dir = str(self.run_dir / "results")
        self.publisher = Publisher(self.run_dir / "events.jsonl", self.subscribers)
        self.records = RecordWriter()
        self.store.write_summary(self._result("running"), fsync=False)
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        self.selector.register(wake_r, selectors.EVENT_READ, lambda: _drain(wake_r))
        self.cancel.attach(wake_w)
        interrupted: BaseException | None = None
        try:
            try:
                self.publisher.publish(
                    RunStarted(self.run_id, self.pipeline.name, tuple(s.name for s in self.order), self.parameters)
                )
                self._write_tracked_files()
                self.context.prepare([s for s in self.order if s.name not in self.reused])
                self._prepare_containers()
                self._loop()
            except BaseException as error:  # KeyboardInterrupt above all: stop every worker before re-raising
                interrupted = error
                self._abort("run interrupted" if isinstance(error, KeyboardInterrupt) else f"engine error: {error}")
        finally:
            self.cancel.detach(wake_w)
            self._close()
            os.close(wake_r)
            os.close(wake_w)
        try:
            result = self._finish(failed=interrupted is not None and not isinstance(interrupted, KeyboardInterrupt))
        finally:
            self.store.end_run(self.run_dir)
        if interrupted is not None:
            raise interrupted
        return result

    def _loop(self) -> None:
        while True:
            if self.cancel.cancelled:
                self._abort("run cancelled")
                return
            self._schedule()
            if not self.jobs and all(status != "pending" for status in self.status.values()):
                return
            if not self.jobs and self.cancel.cancelled:
                continue
            self._wait()

    def _wait(self) -> None:
        """Wait for something to happen (log output, a worker exit, a deadline, cancel) and handle it."""
        timeout = self._next_timeout()
        self.publisher.flush()
        for key, _ in self.selector.select(timeout):
            key.data()
        if self.pool is not None:
            self.pool.poll()
        self._check_deadlines()

    def _next_timeout(self) -> float | None:
        moments = [m for job in self.jobs.values() for m in (job.deadline, job.kill_at) if m is not None]
        timeout = None if not moments else max(0.0, min(moments) - time.monotonic())
        interval = self.pool.poll_interval if self.pool is not None else None
        if interval is not None:
            timeout = interval if timeout is None else min(timeout, interval)
        return timeout

    def _check_deadlines(self) -> None:
        now = time.monotonic()
        for job in list(self.jobs.values()):
            if job.kill_reason is None and job.deadline is not None and now >= job.deadline:
                self._terminate(job, "timeout")
            elif job.kill_at is not None and now >= job.kill_at:
                job.kill_at = None
                assert job.pool is not None
                job.pool.signal_job(job.id, signal.SIGKILL)

    def _terminate(self, job: _Job, reason: str) -> None:
        if job.kill_reason is None:
            job.kill_reason = reason
        assert job.pool is not None
        job.pool.signal_job(job.id, signal.SIGTERM)
        job.kill_at = time.monotonic() + KILL_GRACE

    def _abort(self, reason: str) -> None:
        """Cancel: pending steps are reported cancelled, running ones terminated (and waited for)."""
        self.cancelled = True
        for step in self.order:
            if self.status[step.name] == "pending":
                self._stop_step(step.name, "cancelled", reason)
        if self.kernel_step is not None:
            self._stop_step(self.kernel_step, "cancelled", f"{reason} while the step was running")
            self.kernel_step = None
        for job in list(self.jobs.values()):
            self._terminate(job, "cancel")
        give_up = time.monotonic() + KILL_GRACE + 3.0
        while self.jobs and time.monotonic() < give_up:
            self._wait()
        for job in list(self.jobs.values()):  # a worker that never reported back: count it as stopped
            self._job_done(job, None)

    def _close(self) -> None:
        if self.pool is not None:
            self.pool.close()
        if self.container_pool is not None:
            self.container_pool.close()
        if self.engine is not None:
            self.engine.close()
        for job in list(self.jobs.values()):
            self._close_pumps(job)
        for out, err in self.logs.values():
            out.close()
            err.close()
        self.selector.close()

    def _finish(self, *, failed: bool = False) -> RunResult:
        if self.cancelled and not failed:
            status = "cancelled"
        elif failed or any(result.status == "failed" for result in self.results.values()):
            status = "failed"
        else:
            status = "succeeded"
        run = self._result(status)
        self.records.close()  # every result record and cache entry is on disk before the summary says so
        self.store.write_summary(run)
        try:
            self.index.save()
        except OSError as error:  # only a cache of hashes: the next run hashes again
            log.warning("could not save the file fingerprint index: %s", error)
        self.publisher.publish(RunFinished(self.run_id, status, run.duration))  # type: ignore[arg-type]
        self.publisher.close()
        return run

    def _result(self, status: str) -> RunResult:
        return RunResult(
            run_id=self.run_id,
            pipeline=self.pipeline.name,
            status=status,  # type: ignore[arg-type]
            run_dir=self.run_dir,
            steps={name: self.results[name] for name in self._result_names() if name in self.results},
            duration=time.time() - self.started,
            started=self.started,
            parameters=self.parameters,
        )

    def _result_names(self) -> list[str]:
        names = [s.name for s in self.order]
        return names + [name for name in self.fail_steps if name not in names]

    # --- scheduling -------------------------------------------------------------------------------------------

    def _schedule(self) -> None:
        progress = True
        while progress and not self.cancel.cancelled:
            progress = False
            for step in [s for s in self.order if self.status[s.name] == "pending"]:
                if self.status[step.name] != "pending":  # stopped meanwhile (a kernel step's run cancelled it)
                    continue
                broken, waiting = self._upstream_state(step)
                if broken is not None and self.status[broken] == "condition_false":
                    self.false_reason[step.name] = self.false_reason[broken]
                    self._stop_step(step.name, "condition_false", self.false_reason[broken])
                    progress = True
                elif broken is not None:
                    root = self.failed_root.get(broken, broken)
                    self.failed_root[step.name] = root
                    status = "cancelled" if self.status[broken] == "cancelled" else "skipped"
                    self._stop_step(step.name, status, f"upstream step {root!r} failed")
                    progress = True
                elif not waiting:
                    if self._kernel_busy_or_full(step):
                        continue
                    self._start(step)
                    progress = True

    def _upstream_state(self, step: Step) -> tuple[str | None, bool]:
        """The first upstream step that failed (or None), and whether some upstream step has not finished."""
        waiting = False
        for name in self.upstream[step.name]:
            state = self.status.get(name)  # None: not part of this run
            if state is None or state in DONE:
                continue
            if state in BROKEN:
                return name, waiting
            waiting = True
        return None, waiting

    def _kernel_busy_or_full(self, step: Step) -> bool:
        if self._executor(step) == "kernel":
            return False  # kernel steps run right here, one at a time
        return len(self.jobs) >= self.max_jobs

    def _start(self, step: Step) -> None:
        """Reuse a cached result, or run the step: in the kernel right now, else launch its process.

        The signature is computed now, when every upstream step is done, from its outputs' object hashes: a
        rerun upstream step whose outputs hash the same leaves this signature, and so this cache hit, unchanged
        (early cut-off).
        """
        if step.name in self.reused:
            self._reuse(step, self.reused[step.name])
            return
        if step.condition is not None and not self._condition_holds(step, step.condition):
            return
        try:
            inputs, hashes = specs.resolve_inputs(step, self.results, in_kernel=self._in_kernel(step))
        except specs.InputProblem as problem:
            self._fail_unrun(step, str(problem))
            return
        signature = None
        if hashes is not None:
            self.input_hashes[step.name] = hashes
            signature = self._signature(step, hashes)
        self.signatures[step.name] = signature
        forced = step.name in self.options.force
        if signature is not None and may_reuse(step, use_cache=self.options.use_cache, forced=forced):
            hit = self.cache.lookup(step, signature.digest)
            if hit is not None:
                self._cached(step, hit, signature)
                return
        self.status[step.name] = "running"
        if self._executor(step) == "kernel":
            self._run_kernel_step(step, inputs)
        else:
            self._launch(step, 1, inputs)

    # --- conditions ---------------------------------------------------------------------------------------------

    def _condition_holds(self, step: Step, condition: Condition) -> bool:
        """Whether ``step`` may run; if not, it is reported (condition_false, failed) here."""
        decision = self.decisions.get(condition)
        if decision is None:
            decision = self.decisions[condition] = self._decide(step, condition)
        if decision.error is not None:
            self._fail_unrun(step, decision.error)
            return False
        if decision.holds:
            return True
        self.false_reason[step.name] = decision.reason
        self._stop_step(step.name, "condition_false", decision.reason)
        if step.else_fail is not None:
            self._fail_run(step.fail_step or step.name, decision.message)
        return False

    def _decide(self, step: Step, condition: Condition) -> _Decision:
        text = step.condition_text or "--when"
        values: dict[str, Any] = {}
        try:
            for ref in value_refs(condition):
                if ref.name not in values:
                    values[ref.name] = self._condition_value(ref)
            holds = evaluate(condition, values, self.parameters)
            if holds:
                return _Decision(True, values)
            reason = f"condition is false: {text} ({explain(condition, values, self.parameters)})"
            message = ""
            if step.else_fail is not None:
                first = first_read(condition)
                value = "" if first is None else read_value(first, values, self.parameters)
                message = fail_message(step.else_fail, value)
            return _Decision(False, values, reason, message)
        except PipelineError as error:  # ConditionError, or a StoreError loading a value
            return _Decision(error=f"step {step.name!r}: cannot evaluate its condition `{text}`: {error}")

    def _condition_value(self, ref: ValueRef) -> Any:
        result = self.results.get(ref.step)
        if result is None:
            raise ConditionError(f"it reads {ref.name!r} from step {ref.step!r}, which is not part of this run.")
        stored = result.outputs.get(ref.name)
        if stored is not None:
            return self.store.load_value(stored)
        namespace = self.options.kernel_namespace
        if namespace is not None and ref.name in result.unsaved and ref.name in namespace:
            return namespace[ref.name]  # a kernel step's value that no process step needed: not stored
        raise ConditionError(f"it reads {ref.name!r} from step {ref.step!r}, which did not output it.")

    def _fail_run(self, name: str, message: str) -> None:
        """``--else-fail``: the fail step ``name`` fails with ``message`` (once per run), so the run fails."""
        if name in self.fail_steps:
            return
        self.fail_steps.append(name)
        self._record(StepResult(name, "failed", 0.0, error=message, run_id=self.run_id))
        self.publisher.publish(StepFailed(self.run_id, name, message, 0.0))

    def _in_kernel(self, step: Step) -> Any:
        downstream_in_kernel = self._executor(step) == "kernel"

        def check(upstream: str) -> bool:
            return downstream_in_kernel and self._executor(self.pipeline.step(upstream)) == "kernel"

        return check

    def _signature(self, step: Step, hashes: dict[str, str]) -> Signature:
        return step_signature(
            self.pipeline,
            step,
            parameters=self.parameters,
            input_hashes=hashes,
            context=self.context,
            image_id=self.image_ids.get(step.name),
        )

    def _cached(self, step: Step, hit: StepResult, signature: Signature) -> None:
        result = dataclasses.replace(
            hit,
            name=step.name,
            status="cached",
            cached_from=hit.run_id,
            signature=signature.digest,
            parts=signature.parts,
            duration=0.0,
        )
        self._use_past_result(step, result)

    def _reuse(self, step: Step, latest: StepResult) -> None:
        """A step outside a selective run's selection: its latest successful run's outputs stand in."""
        origin = latest.cached_from or latest.run_id
        result = dataclasses.replace(latest, name=step.name, status="cached", cached_from=origin, duration=0.0)
        self._use_past_result(step, result)

    def _use_past_result(self, step: Step, result: StepResult) -> None:
        if self._executor(step) == "kernel":
            assert self.options.kernel_namespace is not None
            self.options.kernel_namespace.update(self.store.load_outputs(result))
        self._record(result)
        self.publisher.publish(
            StepFinished(
                self.run_id,
                step.name,
                "cached",
                0.0,
                cached_from=result.cached_from,
                outputs=tuple(result.outputs),
            )
        )

    def _warn(self, step: str, message: str) -> None:
        """A problem the run works around (a corrupt object): in the step's stderr log, the events and the log."""
        log.warning("%s", message)
        with contextlib.suppress(OSError):
            err = self._log_files(self.pipeline.step(step))[1]
            err.write((message + "\n").encode("utf-8", "replace"))
            err.flush()
        self.publisher.publish(StepLog(self.run_id, step, "stderr", message + "\n"))

    def _log_files(self, step: Step) -> tuple[_LazyLog, _LazyLog]:
        if step.name not in self.logs:
            out = _LazyLog(self._log_path(step.name, "stdout"))
            err = _LazyLog(self._log_path(step.name, "stderr"))
            self.logs[step.name] = (out, err)
        return self.logs[step.name]

    def _publish_log(self, step: str) -> Any:
        def publish(stream: str, text: str) -> None:
            self.publisher.publish(StepLog(self.run_id, step, stream, text))  # type: ignore[arg-type]

        return publish

    def _spec(self, step: Step, inputs: dict[str, ObjectRef], result_path: Path) -> dict[str, Any]:
        if self._executor(step) == "container":
            assert self.options.job_files is not None  # checked before the run started
            return specs.container_spec(
                self.pipeline,
                step,
                parameters=self.parameters,
                results=self.results,
                store_root=self.store.root,
                result_path=result_path,
                work_dir=self.run_dir / "work" / step.name,
                workdir=self.workdir,
                image_id=self.image_ids[step.name],
                files=self.options.job_files(self.pipeline, step, self.workdir),
            )
        if step.script is not None:
            return specs.script_spec(
                step,
                parameters=self.parameters,
                results=self.results,
                store_root=self.store.root,
                result_path=result_path,
                work_dir=self.run_dir / "work" / step.name,
                workdir=self.workdir,
            )
        return specs.cell_spec(
            self.pipeline,
            step,
            parameters=self.parameters,
            inputs=inputs,
            needed=self.needed.get(step.name, set()),
            store_root=self.store.root,
            result_path=result_path,
            workdir=self.workdir,
            executor=self._executor(step),
        )

    def _ensure_pool(self) -> ProcessPool:
        if isinstance(self.pool, ZygotePool) and self.pool.dead:  # killed from outside (OOM killer): start anew
            self.pool.close()
            self.pool = None
        if self.pool is None:
            launcher = self.options.launcher
            if launcher == "auto":
                launcher = "zygote" if hasattr(os, "fork") else "spawn"
            if launcher == "zygote":
                self.pool = ZygotePool(self.selector, self._on_exit, self.workdir, self._modules())
            else:
                self.pool = SpawnPool(self.selector, self._on_exit, self.workdir, self.run_dir / "specs")
        return self.pool

    def _ensure_container_pool(self) -> ProcessPool:
        if self.container_pool is None:
            from .containers import ContainerPool

            self.container_pool = ContainerPool(
                self.selector, self._on_exit, self.engine, run_id=self.run_id, run_dir=self.run_dir
            )
        return self.container_pool

    def _modules(self) -> list[str]:
        keys = {key for step in self.order if self._executor(step) == "process" for key in step.prelude}
        modules = [m for part in self.pipeline.prelude if part.key in keys for m in part.modules]
        return list(dict.fromkeys(modules))

    def _launch(self, step: Step, attempt: int, inputs: dict[str, ObjectRef]) -> None:
        executor = self._executor(step)
        pool = self._ensure_container_pool() if executor == "container" else self._ensure_pool()
        result_path = self.run_dir / "results" / f".{step.name}.attempt{attempt}.json"
        job = _Job(step, attempt, f"{step.name}#{attempt}", time.monotonic(), result_path, inputs=inputs, pool=pool)
        if step.timeout is not None:
            job.deadline = job.started + step.timeout
        out_file, err_file = self._log_files(step)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            self.jobs[job.id] = job
            secrets = secret_values(step.env)
            for fd, stream, file in ((out_r, "stdout", out_file), (err_r, "stderr", err_file)):
                pump = _LogPump(fd, stream, file, self._publish_log(step.name), secrets)
                job.pumps.append(pump)
                self.selector.register(fd, selectors.EVENT_READ, lambda p=pump: self._pump(p))
            self.publisher.publish(StepStarted(self.run_id, step.name, attempt, executor))
            try:
                pool.start(job.id, self._spec(step, inputs, result_path), out_w, err_w)
            except OSError:  # the worker is gone
                self._job_done(job, None)
            except PipelineError as error:  # a container step's code bundle cannot be made (--requirements)
                job.result_path.parent.mkdir(parents=True, exist_ok=True)
                raw = {"status": "failed", "error": str(error), "outputs": {}}
                job.result_path.write_text(json.dumps(raw), encoding="utf-8")
                self._job_done(job, 1)
        finally:
            os.close(out_w)
            os.close(err_w)

    def _pump(self, pump: _LogPump) -> None:
        if pump.open and not pump.read():  # (closed already when its job ended earlier in this same select batch)
            self._close_pump(pump)

    def _close_pump(self, pump: _LogPump) -> None:
        if pump.open:
            pump.finish()
            pump.open = False
            self.selector.unregister(pump.fd)
            os.close(pump.fd)

    def _close_pumps(self, job: _Job) -> None:
        for pump in job.pumps:
            if pump.open:
                while pump.read():  # the process is gone: what it wrote is in the pipe
                    pass
                self._close_pump(pump)

    def _on_exit(self, job_id: str, code: int | None) -> None:
        job = self.jobs.get(job_id)
        if job is not None:
            self._job_done(job, code)

    def _job_done(self, job: _Job, code: int | None) -> None:
        del self.jobs[job.id]
        self._close_pumps(job)
        duration = time.monotonic() - job.started
        step = job.step
        if job.kill_reason == "cancel":
            self._stop_step(step.name, "cancelled", "run cancelled while the step was running", duration)
            return
        if job.kill_reason == "timeout":
            raw = None
            error = f"step {step.name!r} timed out after {step.timeout:g}s"
        else:
            raw = try_read_json(job.result_path)
            error = raw["error"] if raw is not None else _exit_message(step.name, code)
        job.result_path.unlink(missing_ok=True)
        if raw is not None and raw["status"] == "succeeded":
            self._succeeded(step, raw, duration, job.attempt)
        elif self._retry(step, error or "failed", duration, job.attempt):
            self._launch(step, job.attempt + 1, job.inputs)
        else:
            self._failed(step, error or "failed", duration, job.attempt)

    def _retry(self, step: Step, error: str, duration: float, attempt: int) -> bool:
        will_retry = attempt <= step.retry and not self.cancel.cancelled and not self.cancelled
        if will_retry:
            error = Redactor(secret_values(step.env))(error)
            self.publisher.publish(StepFailed(self.run_id, step.name, error, duration, attempt, will_retry=True))
        return will_retry

    def _run_kernel_step(self, step: Step, inputs: dict[str, ObjectRef]) -> None:
        namespace = self.options.kernel_namespace
        assert namespace is not None
        out_file, err_file = self._log_files(step)
        publish = self._publish_log(step.name)
        redactors = {name: StreamRedactor(secret_values(step.env)) for name in ("stdout", "stderr")}

        def emit(stream: str, text: str) -> None:
            (out_file if stream == "stdout" else err_file).write(text.encode("utf-8", "replace"))
            publish(stream, text)

        def sink(stream: str, text: str) -> None:
            text = redactors["stdout" if stream == "stdout" else "stderr"].feed(text)
            if text:
                emit(stream, text)

        self.kernel_step = step.name
        attempt = 1
        while True:
            self.publisher.publish(StepStarted(self.run_id, step.name, attempt, "kernel"))
            result_path = self.run_dir / "results" / f".{step.name}.attempt{attempt}.json"
            started = time.monotonic()
            raw = self._run_interruptible(step, self._spec(step, inputs, result_path), namespace, sink)
            for name, redactor in redactors.items():  # what a redactor held back
                if rest := redactor.flush():
                    emit(name, rest)
            out_file.flush()
            err_file.flush()
            duration = time.monotonic() - started
            if raw["status"] == "succeeded":
                self._succeeded(step, raw, duration, attempt)
                break
            if self.cancel.cancelled:  # Stop interrupted it: cancelled, as a process step's would be
                self.kernel_step = None
                self._stop_step(step.name, "cancelled", "run cancelled while the step was running", duration)
                self._abort("run cancelled")
                break
            if not self._retry(step, raw["error"], duration, attempt):
                self._failed(step, raw["error"], duration, attempt)
                break
            attempt += 1
        self.kernel_step = None

    def _run_interruptible(
        self, step: Step, spec: dict[str, Any], namespace: dict[str, Any], sink: Callable[[str, str], None]
    ) -> dict[str, Any]:
        """Run a kernel step so that its ``--timeout`` and Stop can interrupt it (it holds the engine's thread)."""
        interrupter = ThreadInterrupter()
        timer = None
        if step.timeout is not None:
            timer = threading.Timer(step.timeout, interrupter.fire, (f"step {step.name!r} timed out after "
                                                                     f"{step.timeout:g}s",))  # fmt: skip
            timer.daemon = True
            timer.start()
        stop = self.cancel.on_cancel(lambda: interrupter.fire("cancelled: the run was stopped"))
        try:
            return run_in_kernel(spec, namespace, sink, interrupter)
        finally:
            stop()
            if timer is not None:
                timer.cancel()

    # --- outcomes ---------------------------------------------------------------------------------------------

    def _log_path(self, name: str, stream: str) -> Path:
        return self.run_dir / "logs" / f"{name}.{stream}"

    def _succeeded(self, step: Step, raw: dict[str, Any], duration: float, attempt: int) -> None:
        if step.kind == "register":
            try:
                self._register(step, raw)
            except (PipelineError, OSError) as error:
                self._failed(
                    step, f"step {step.name!r}: could not record the model version: {error}", duration, attempt
                )
                return
        signature = self.signatures.get(step.name)
        result = StepResult(
            name=step.name,
            status="succeeded",
            duration=duration,
            display=raw.get("display"),
            outputs={name: ObjectRef.from_dict(ref) for name, ref in raw["outputs"].items()},
            run_id=self.run_id,
            signature=signature.digest if signature is not None else None,
            parts=signature.parts if signature is not None else {},
            attempts=attempt,
            unsaved={name: info["type"] for name, info in raw.get("unsaved", {}).items()},
            stdout_path=self._log_path(step.name, "stdout"),
            stderr_path=self._log_path(step.name, "stderr"),
        )
        self._record(result)
        if signature is not None and may_store(step):
            signatures = [signature]
            if any(key.startswith("data:") for key in signature.parts) or step.path_literals:
                # Only the files as the step left them: see "Files a step writes" in cache.py.
                signatures = [self._signature(step, self.input_hashes[step.name])]
            read_names = self.read_names[step.name]
            self.cache.save(step, signatures, result, read_names=read_names, write=self.records.submit)
        self.publisher.publish(
            StepFinished(self.run_id, step.name, "succeeded", duration, outputs=tuple(result.outputs))
        )

    def _register(self, step: Step, raw: dict[str, Any]) -> None:
        """A ``register`` step ran and succeeded: a new version in the local model registry."""
        decision = self.decisions.get(step.condition) if step.condition is not None else None
        self.store.add_model_version(
            self.pipeline.name,
            {
                "pipeline": self.pipeline.name,
                "step": step.name,
                "run_id": self.run_id,
                "outputs": dict(raw["outputs"]),
                "metrics": dict(decision.values) if decision is not None else {},
                "approval": APPROVAL,
                "created": time.time(),
            },
        )

    def _failed(self, step: Step, error: str, duration: float, attempt: int) -> None:
        error = Redactor(secret_values(step.env))(error)  # a traceback may quote a secret, as a log may
        result = StepResult(
            step.name,
            "failed",
            duration,
            error=error,
            run_id=self.run_id,
            attempts=attempt,
            stdout_path=self._log_path(step.name, "stdout"),
            stderr_path=self._log_path(step.name, "stderr"),
        )
        self._record(result)
        self.publisher.publish(StepFailed(self.run_id, step.name, error, duration, attempt))

    def _fail_unrun(self, step: Step, error: str) -> None:
        self._failed(step, error, 0.0, 0)

    def _stop_step(self, name: str, status: str, reason: str, duration: float = 0.0) -> None:
        """A step that did not (or did not finish to) run: skipped after a failure, or cancelled."""
        result = StepResult(name, status, duration, error=f"{status}: {reason}", run_id=self.run_id)  # type: ignore[arg-type]
        self._record(result)
        self.publisher.publish(StepSkipped(self.run_id, name, reason, status))  # type: ignore[arg-type]

    def _record(self, result: StepResult) -> None:
        """Note a step's outcome; write its record at once unless it came from the cache.

        A cached step's record only repeats an earlier one (the cache entry, the earlier run's record), so it goes
        to ``summary.json`` at the end of the run only: a fully cached run of 100 steps then creates no per-step
        files, which would cost more than the rest of the run (~100 us each here).
        """
        self.status[result.name] = result.status
        self.results[result.name] = result
        if result.status != "cached":
            path = os.path.join(self.results_dir, result.name + ".json")  # strings: Path objects cost here
            self.records.submit(path, result.to_dict(self.store.root), fsync=False)


def _exit_message(step: str, code: int | None) -> str:
    if code is None:
        return f"step {step!r}: its worker process died"
    if code < 0:
        return f"step {step!r} was killed by signal {-code}"
    return f"step {step!r} exited with code {code} without a result"


def _drain(fd: int) -> None:
    with contextlib.suppress(BlockingIOError):
        while os.read(fd, 4096):
            pass
