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

    def build(self) -> Pipeline:
        pipeline = build_pipeline(self.cells(), self.pipeline_name)
        if self._widget is not None:
            self._widget.set_pipeline(pipeline)  # the graph grows as step cells run
        return pipeline

    def widget(self) -> Any:
        """The graph widget for this notebook (one per kernel), wired to this session's actions."""
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
                promote=None,
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
        return write_export(self.build(), settings, self.workdir, target)

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
        """Cancel the background run, if any; returns whether there was one."""
        if not self.running() or self.background is None:
            return False
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
