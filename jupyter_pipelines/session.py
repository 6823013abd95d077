"""The live session behind the magics: registry of cells, building the pipeline, running it, binding results.

It knows IPython only through what it is handed (a namespace dict and callbacks), so the same object serves the
magics, the widget's buttons and tests. Runs started by ``%pipeline run`` (and later the widget) happen on a
background thread so the kernel stays free to receive clicks and Stop; a ``%%step`` cell runs in the foreground
and is stopped with the kernel's interrupt.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .authoring.builder import Cell, build_pipeline
from .authoring.notebook import read_cells
from .authoring.parameters import resolve_parameters
from .engine import CancelToken, RunOptions, RunResult, Store, run_pipeline
from .engine.events import Subscriber
from .engine.selection import select_steps
from .errors import PipelineError, RunError
from .local_jobs import job_files
from .model import Pipeline
from .settings_sync import SettingsSync


def find_notebook(namespace: Mapping[str, Any], cwd: Path) -> Path | None:
    """The notebook file this kernel serves, from ``__session__`` / ``JPY_SESSION_NAME`` (set by Jupyter Server).

    Jupyter Server passes either an absolute path or one relative to its root; the kernel runs in the notebook's
    directory, so a relative path is tried as is, then by its file name.
    """
    name = namespace.get("__session__") or os.environ.get("JPY_SESSION_NAME")
    if not isinstance(name, str) or not name.endswith(".ipynb"):
        return None
    path = Path(name)
    for candidate in (path, cwd / path, cwd / path.name):
        if candidate.is_file():
            return candidate.resolve()
    return None


def pipeline_name_for(notebook: Path | None) -> str:
    return notebook.stem if notebook else "notebook"


@dataclass
class BackgroundRun:
    thread: threading.Thread
    cancel: CancelToken
    result: RunResult | None = None
    error: BaseException | None = None


@dataclass
class LiveSession:
    """Everything the magics keep between cells."""

    namespace: dict[str, Any]
    workdir: Path
    notebook: Path | None = None
    registry_cells: list[Cell] = field(default_factory=list)
    subscribers: list[Subscriber] = field(default_factory=list)
    background: BackgroundRun | None = None
    last_result: RunResult | None = None
    jobs: int | None = None

    def __post_init__(self) -> None:
        from .registry import CellRegistry

        self.registry = CellRegistry()
        self.store = Store(self.workdir / ".pipelines")
        self._bound: dict[str, str] = {}  # kernel name -> object hash last bound, to skip reloading it
        self._lock = threading.Lock()
        self._widget: Any = None
        self.settings: dict[str, str] = {}  # %pipeline config in this kernel (over the notebook's metadata)
        self.settings_sync = SettingsSync()  # the notebook's metadata as the frontend has it (settings_sync.py)
        self.cloud: Any = None  # the SageMaker execution followed in the background (sagemaker/cloud_run.py)
        self._promoting: threading.Thread | None = None  # the widget's promotion, while it uploads and creates

    # -- building ---------------------------------------------------------------------------------------------
    @property
    def pipeline_name(self) -> str:
        return pipeline_name_for(self.notebook)

    def saved_cells(self) -> tuple[list[Cell] | None, float | None]:
        """The saved notebook's cells and its mtime, or (None, None) when there is no readable file."""
        if self.notebook is None or not self.notebook.is_file():
            return None, None
        try:
            return read_cells(self.notebook), self.notebook.stat().st_mtime
        except PipelineError:
            return None, None

    def cells(self) -> list[Cell]:
        saved, saved_at = self.saved_cells()
        return self.registry.cells(saved, saved_at)

    def build(self, settings: Mapping[str, str] | None = None) -> Pipeline:
        """The pipeline of the cells, with the default executor/image of ``settings`` (default: the notebook's)."""
        from .authoring.defaults import apply_defaults

        settings = self.export_settings() if settings is None else settings
        pipeline = apply_defaults(build_pipeline(self.cells(), self.pipeline_name), settings)
        if self._widget is not None:
            self._widget.set_pipeline(pipeline)  # the graph grows as step cells run
        return pipeline

    def widget(self) -> Any:
        """The graph widget for this notebook (one per kernel), wired to this session's actions."""
        from .sagemaker.config import setting_problem
        from .ui import PipelineWidget, WidgetActions

        try:
            pipeline = self.build()
        except PipelineError:
            pipeline = Pipeline(self.pipeline_name)  # the graph fills in as valid step cells run
        if self._widget is None:
            actions = WidgetActions(
                run=lambda: self._start_from_widget(),
                run_step=lambda name: self._start_from_widget(targets=[name], force=[name]),
                run_from=lambda name: self._start_from_widget(from_step=name),
                stop=self.stop,
                export=lambda: str(self.export()),
                promote=lambda values: self.promote_from_widget(values),
                promote_settings=self.export_settings,
                check_setting=setting_problem,
            )
            self._widget = PipelineWidget(pipeline, actions)
            self.subscribers.append(self._widget.handle_event)
        return self._widget

    def _start_from_widget(
        self, targets: Sequence[str] | None = None, force: Iterable[str] = (), from_step: str | None = None
    ) -> None:
        pipeline = self.build()
        selected = None
        if from_step is not None:
            # SageMaker's "run from here" (selective execution): this step and what depends on it run, the rest
            # comes from the latest successful run; the step itself reruns, downstream unless its inputs are the same.
            selected, force = select_steps(pipeline, from_=from_step), [from_step]
        overrides = self._widget.parameter_values() if self._widget is not None else {}
        self.start(pipeline, overrides=overrides, targets=targets, force=force, selected=selected)

    def reload(self) -> int:
        """Rebuild the registry from the saved notebook file; returns how many code cells it read."""
        saved, _ = self.saved_cells()
        if saved is None:
            raise RunError(
                "cannot reload: this kernel does not know its notebook file.",
                hint="Open the notebook in JupyterLab (it tells the kernel its path), or run the cells again.",
            )
        self.registry.replace_all(saved)
        return len(saved)

    def reset(self) -> None:
        self.registry.clear()
        self._bound.clear()

    # -- running ----------------------------------------------------------------------------------------------
    def _options(
        self,
        pipeline: Pipeline,
        overrides: Mapping[str, object] | None,
        targets: Sequence[str] | None,
        force: Iterable[str],
        jobs: int | None,
        selected: frozenset[str] | None = None,
    ) -> RunOptions:
        return RunOptions(
            parameters=resolve_parameters(pipeline, overrides or {}),
            targets=frozenset(targets) if targets else None,
            selected=selected,
            force=frozenset(force),
            jobs=jobs or self.jobs,
            kernel_namespace=self.namespace,
            job_files=job_files,
        )

    # -- export -----------------------------------------------------------------------------------------------
    def export_settings(self) -> dict[str, str]:
        """The notebook's settings (as the frontend has them, else the saved file's), then this kernel's own."""
        return {**self.settings_sync.notebook_settings(self.notebook), **self.settings}

    def export(self, output: Path | None = None, overrides: Mapping[str, str] | None = None) -> Path:
        """Write the SageMaker definition (default: ``<notebook>.pipeline.json`` beside the notebook)."""
        from .sagemaker.settings import write_export

        settings = {**self.export_settings(), **{k: v for k, v in (overrides or {}).items() if v}}
        target = output if output is not None else self.workdir / f"{self.pipeline_name}.pipeline.json"
        if not target.is_absolute():
            target = self.workdir / target
        return write_export(self.build(settings), settings, self.workdir, target)

    # -- promotion (sagemaker/promote.py) ---------------------------------------------------------------------
    def promote(
        self,
        flags: Mapping[str, str] | None = None,
        *,
        params: Sequence[str] = (),
        overrides: Mapping[str, object] | None = None,
        only: Sequence[str] = (),
        start: bool = True,
        wait: bool = False,
        schedule: str | None = None,
        schedule_role_arn: str | None = None,
        on_event: Subscriber | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> Any:
        """Promote with the notebook's settings (``flags`` win); a started execution is followed: in the
        foreground with ``wait``, else on a background thread publishing to the subscribers. Returns Promoted."""
        from dataclasses import replace

        from .authoring.parameters import parse_overrides
        from .engine.selection import split_names
        from .sagemaker.aws import connect
        from .sagemaker.cloud_run import follow_in_background
        from .sagemaker.promote import follow, options_from_settings, promote

        if start and self.cloud is not None and self.cloud.running():
            raise RunError(
                f"the SageMaker execution {self.cloud.promoted.execution_arn} is still being followed.",
                hint="Stop it (%pipeline stop) or let it finish before starting another.",
            )
        settings = {**self.export_settings(), **{k: v for k, v in (flags or {}).items() if v}}
        pipeline = self.build(settings)
        resolved = resolve_parameters(pipeline, overrides or {})  # checked and typed
        typed = {**{name: resolved[name] for name in overrides or {}}, **parse_overrides(pipeline, params)}
        options = options_from_settings(
            settings, self.workdir, parameters=typed, only=tuple(split_names(list(only))), start=start,
            schedule=schedule, schedule_role_arn=schedule_role_arn,
        )  # fmt: skip
        promoted = promote(pipeline, options, progress=progress)
        if promoted.execution_arn is None:
            return promoted
        clients = connect(promoted.region, options.profile)
        publish = self._publisher(on_event)
        if not wait:
            self.cloud = follow_in_background(promoted, pipeline, clients, publish)
            return promoted
        try:
            return replace(promoted, status=follow(promoted, pipeline, clients, publish))
        except KeyboardInterrupt:
            raise RunError(
                f"stopped following; the execution goes on in SageMaker: {promoted.execution_url}",
                hint="Stop it there, or promote without --wait and use %pipeline stop.",
            ) from None

    def unschedule(self, flags: Mapping[str, str] | None = None) -> str:
        from .sagemaker.promote import unschedule

        settings = {**self.export_settings(), **{k: v for k, v in (flags or {}).items() if v}}
        return unschedule(settings, self.pipeline_name)

    def promote_from_widget(self, values: Mapping[str, str]) -> str:
        """The Promote form: remember its values as the notebook's settings (never credentials: there are none
        in the form), then promote and start on a background thread; progress and errors arrive as run notes."""
        from .engine.events import RunNote
        from .sagemaker.settings import SETTINGS

        updates = {k: v.strip() for k, v in values.items() if k in SETTINGS and isinstance(v, str) and v.strip()}
        self.settings_sync.configure(updates, self.settings, self.notebook)
        if self._promoting is not None and self._promoting.is_alive():
            raise RunError("a promotion is already in progress.", hint="Wait for it to start the execution.")
        pipeline = self.build()
        defaults = {p.name: p.default for p in pipeline.parameters}
        shown = self._widget.parameter_values() if self._widget is not None else {}
        overrides = {k: v for k, v in shown.items() if k in defaults and v != defaults[k]}
        publish = self._publisher(None)

        def work() -> None:
            try:
                promoted = self.promote(overrides=overrides, progress=None)
            except PipelineError as error:
                publish(RunNote("promote", f"promotion failed: {error}", level="error"))
                return
            except Exception as error:  # a bug: said, never lost silently
                bug = f"promotion failed (a bug in jupyter-pipelines): {error!r}"
                publish(RunNote("promote", bug, level="error"))
                return
            publish(RunNote("promote", "; ".join(promoted.lines())))

        self._promoting = threading.Thread(target=work, name="jupyter-pipelines-promote", daemon=True)
        self._promoting.start()
        region = self.export_settings().get("region", "")
        return f"promoting '{pipeline.name}' to SageMaker ({region}): uploading, then starting an execution…"

    def _publisher(self, on_event: Subscriber | None) -> Callable[[Any], None]:
        """Events to every subscriber (the widget) and ``on_event``; one failing subscriber does not stop the rest."""
        subscribers = [*self.subscribers, *([on_event] if on_event else [])]

        def publish(event: Any) -> None:
            for subscriber in subscribers:
                try:
                    subscriber(event)
                except Exception:  # noqa: S112 - a display problem must not stop following the cloud run
                    continue

        return publish

    def load(self, step: str, run_id: str | None = None) -> list[str]:
        """Bring a step's outputs from a past run (default: its latest successful one) into the namespace."""
        if run_id is None:
            result = self.store.latest_result(self.pipeline_name, step)
            if result is None:
                raise RunError(f"step '{step}' has no successful run yet.", hint="Run it first.")
        else:
            runs = [r for r in self.store.list_runs(self.pipeline_name) if r.run_id == run_id]
            if not runs:
                raise RunError(f"there is no run '{run_id}'.", hint="%pipeline runs lists them.")
            found = runs[0].steps.get(step)
            if found is None or found.status not in ("succeeded", "cached"):
                raise RunError(f"step '{step}' did not succeed in run {run_id}.", hint="%pipeline runs lists runs.")
            result = found
        for name, ref in result.outputs.items():
            self.namespace[name] = self.store.load_value(ref)
            self._bound[name] = ref.hash
        return list(result.outputs)

    def run(
        self,
        pipeline: Pipeline,
        *,
        overrides: Mapping[str, object] | None = None,
        targets: Sequence[str] | None = None,
        force: Iterable[str] = (),
        jobs: int | None = None,
        on_event: Subscriber | None = None,
        cancel: CancelToken | None = None,
        selected: frozenset[str] | None = None,
    ) -> RunResult:
        """Run in the calling thread (a ``%%step`` cell), then bind the produced outputs in the namespace."""
        self._refuse_while_running()
        options = self._options(pipeline, overrides, targets, force, jobs, selected)
        return self._execute(pipeline, options, on_event, cancel)

    def _execute(
        self, pipeline: Pipeline, options: RunOptions, on_event: Subscriber | None, cancel: CancelToken | None
    ) -> RunResult:
        """Run with this session's subscribers (plus ``on_event``), remember the result, bind its outputs."""
        subscribers = [*self.subscribers, *([on_event] if on_event else [])]
        result = run_pipeline(
            pipeline, store=self.store, workdir=self.workdir, options=options, subscribers=subscribers, cancel=cancel
        )
        self.last_result = result
        self.bind_outputs(result)
        return result

    def start(
        self,
        pipeline: Pipeline,
        *,
        overrides: Mapping[str, object] | None = None,
        targets: Sequence[str] | None = None,
        force: Iterable[str] = (),
        jobs: int | None = None,
        on_event: Subscriber | None = None,
        on_done: Callable[[RunResult | None, BaseException | None], None] | None = None,
        selected: frozenset[str] | None = None,
    ) -> BackgroundRun:
        """Start a run on a background thread so the kernel stays free (widget clicks, Stop)."""
        self._refuse_while_running()
        options = self._options(pipeline, overrides, targets, force, jobs, selected)  # bad overrides fail now
        cancel = CancelToken()

        def work() -> None:
            try:
                run.result = self._execute(pipeline, options, on_event, cancel)
            except BaseException as error:  # reported through on_done / wait(), never lost
                run.error = error
            finally:
                if on_done is not None:
                    on_done(run.result, run.error)

        run = BackgroundRun(threading.Thread(target=work, name="jupyter-pipelines-run", daemon=True), cancel)
        with self._lock:
            self.background = run
        run.thread.start()
        return run

    def running(self) -> bool:
        return self.background is not None and self.background.thread.is_alive()

    def stop(self) -> bool:
        """Cancel the background run, if any (a followed SageMaker execution is asked to stop); whether there was
        one."""
        cloud = self.cloud is not None and bool(self.cloud.stop())
        if not self.running() or self.background is None:
            return cloud
        self.background.cancel.cancel()
        return True

    def wait(self, timeout: float | None = None) -> RunResult | None:
        """Block until the background run ends; re-raises what it raised (a user error, say)."""
        run = self.background
        if run is None:
            return None
        run.thread.join(timeout)
        if run.error is not None:
            raise run.error
        return run.result

    def _refuse_while_running(self) -> None:
        if self.running():
            raise RunError(
                "a pipeline run is already in progress.",
                hint="Wait for it (%pipeline wait) or stop it (%pipeline stop) first.",
            )

    # -- results ----------------------------------------------------------------------------------------------
    def bind_outputs(self, result: RunResult) -> list[str]:
        """Put every output the run produced (or took from cache) into the kernel namespace.

        Values already bound from the same object are not loaded again, so a downstream cell does not re-read its
        upstream's data each time it runs.
        """
        bound: list[str] = []
        for step_result in result.steps.values():
            if step_result.status not in ("succeeded", "cached"):
                continue
            stale = {
                name: ref
                for name, ref in step_result.outputs.items()
                if self._bound.get(name) != ref.hash or name not in self.namespace
            }
            if not stale:
                continue
            for name, ref in stale.items():
                self.namespace[name] = self.store.load_value(ref)
                self._bound[name] = ref.hash
                bound.append(name)
        return bound
