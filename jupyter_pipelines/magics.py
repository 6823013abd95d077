"""The IPython skin: ``%%step``, ``%%parameters``, ``%%writefile [--step NAME]`` and ``%pipeline ...``.

Thin on purpose: it records executed cells, hands them to the live session, prints what the session returns.
User errors are :class:`PipelineError`: IPython shows their one-line message (``_render_traceback_``), never an
internal traceback, and the cell still counts as failed so "Run all" stops there.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from IPython.core.interactiveshell import InteractiveShell
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class

from .authoring.builder import Cell, build_pipeline
from .authoring.describe import describe_pipeline
from .authoring.header import STEP_HELP, parse_parameters_line, parse_step_line, parse_writefile_line
from .authoring.parameters import parse_overrides, resolve_parameters
from .engine import RunResult
from .engine.events import Event, RunFinished, StepLog
from .engine.selection import select_steps, split_names
from .engine.why import explain
from .errors import HeaderError, PipelineError, RunError
from .model import Pipeline
from .progress import cache_table, step_line, summary_table
from .sagemaker.settings import SETTINGS
from .session import LiveSession, find_notebook

PIPELINE_HELP = """\
%pipeline COMMAND [options]

  run [-p NAME=VALUE]... [--jobs N] [--wait]   run the whole pipeline on a background thread (--wait: block)
      [--only A,B] [--from STEP] [--to STEP]    selective execution: the rest comes from the latest run
      [--force A,B]                             rerun these steps, ignoring the cache
  why STEP [-p NAME=VALUE]...                 why the step will rerun or come from the cache
  load STEP [--run ID]                        bring a past run's outputs of STEP into the kernel
  runs                                        the recorded runs, newest first
  cache [show | clear [STEP]]                 the cache's size and entries; clear it (all or one step)
  export [PATH] [--role-arn ARN] [--bucket B] [--region R] [--prefix P] [--name N]
                                              write the SageMaker pipeline definition JSON and its code bundles
  config [--role-arn ARN] [--bucket B] [--region R] [--prefix P] [--name N]
         [--executor E] [--image IMAGE]       the notebook's settings (saved in its metadata); --executor and
                                              --image: the default for steps that do not say (e.g. container)
  promote [--role-arn ARN] [--bucket B] [--region R] [--prefix P] [--name N] [--profile P]
          [--no-start] [--wait] [-p NAME=VALUE]... [--only A,B]
          [--schedule EXPR --schedule-role-arn ARN] [--unschedule]
                                              upload to S3, create or update the SageMaker pipeline, start it
                                              (followed here; --wait: block until it ends)
  wait                                        wait for the background run and show its summary
  stop                                        stop the background run (its running steps are terminated)
  show [--text]                               the pipeline: steps, dependencies and why (graph widget later)
  logs STEP                                   the step's output from its latest run
  reset                                       forget every recorded cell (run them again to rebuild)
  reload                                      rebuild the pipeline from the saved notebook file
"""


class StepCellError(PipelineError):
    """A step failed while its cell ran: the message is the user's own traceback with cell line numbers."""


class ShownText:
    """A value whose repr is given text: how a step's last expression is displayed as the cell's ``Out``."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


class _ArgumentError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting the kernel."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        raise _ArgumentError(message)


def _pipeline_parser() -> _Parser:
    parser = _Parser(prog="%pipeline", add_help=False)
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", add_help=False)
    run.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE")
    run.add_argument("--jobs", type=int)
    run.add_argument("--wait", action="store_true")
    run.add_argument("--only", action="append", default=[])
    run.add_argument("--from", dest="from_step")
    run.add_argument("--to", dest="to_step")
    run.add_argument("--force", action="append", default=[])
    why = sub.add_parser("why", add_help=False)
    why.add_argument("step")
    why.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE")
    load = sub.add_parser("load", add_help=False)
    load.add_argument("step")
    load.add_argument("--run", metavar="ID")
    export = sub.add_parser("export", add_help=False)
    export.add_argument("output", nargs="?")
    config = sub.add_parser("config", add_help=False)
    promote = sub.add_parser("promote", add_help=False)
    promote.add_argument("--no-start", action="store_true")
    promote.add_argument("--wait", action="store_true")
    promote.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE")
    promote.add_argument("--only", action="append", default=[])
    promote.add_argument("--schedule")
    promote.add_argument("--schedule-role-arn")
    promote.add_argument("--unschedule", action="store_true")
    for p in (export, config, promote):
        p.add_argument("--role-arn")
        p.add_argument("--bucket")
        p.add_argument("--region")
        p.add_argument("--prefix")
        p.add_argument("--name")
        p.add_argument("--executor")  # the pipeline-wide step defaults (authoring/defaults.py)
        p.add_argument("--image")
        p.add_argument("--profile")  # promotion's AWS profile: a name, never a credential
    cache = sub.add_parser("cache", add_help=False)
    cache.add_argument("action", nargs="?", choices=["show", "clear"], default="show")
    cache.add_argument("step", nargs="?")
    show = sub.add_parser("show", add_help=False)
    show.add_argument("--text", action="store_true")
    logs = sub.add_parser("logs", add_help=False)
    logs.add_argument("step")
    for name in ("wait", "stop", "reset", "reload", "runs", "help"):
        sub.add_parser(name, add_help=False)
    return parser


def _cell_printer(target: str | None = None) -> Callable[[Event], None]:
    """What a cell shows while steps run: the target step's output as is, other steps as state lines.

    The cell's streams are taken now, before the run: a ``--executor kernel`` step redirects ``sys.stdout`` to its
    own log capture while it runs, and printing its log events there would feed them back into it forever."""
    out, err = sys.stdout, sys.stderr

    def show(event: Event) -> None:
        if isinstance(event, StepLog):
            stream = out if event.stream == "stdout" else err
            if event.step == target:
                stream.write(event.text)
            else:
                stream.write("".join(f"[{event.step}] {line}\n" for line in event.text.splitlines()))
            stream.flush()
            return
        if getattr(event, "step", None) == target or (isinstance(event, RunFinished) and target is not None):
            return
        line = step_line(event)
        if line is not None:
            print(line, file=out, flush=True)

    return show


def _failure_message(result: RunResult, target: str | None) -> str:
    failed = [s for s in result.steps.values() if s.status == "failed"]
    parts = []
    for step in failed:
        prefix = "" if step.name == target else f"upstream step '{step.name}' failed:\n"
        parts.append(prefix + (step.error or f"step '{step.name}' failed"))
    return "\n".join(parts) or f"run {result.run_id} {result.status}"


@magics_class
class PipelineMagics(Magics):
    def __init__(self, shell: InteractiveShell, session: LiveSession) -> None:
        super().__init__(shell)
        self.session = session
        self._recorded_key: str | None = None
        self._original_writefile = shell.find_cell_magic("writefile")

    # -- recording every executed cell --------------------------------------------------------------------------
    def pre_run_cell(self, info: Any) -> None:
        """Record each cell the kernel executes (plain cells become prelude candidates)."""
        source = getattr(info, "raw_cell", None)
        if not isinstance(source, str):
            return
        self._recorded_key = self.session.registry.record(source, getattr(info, "cell_id", None)).key

    def _build_with_this_cell(self) -> Pipeline:
        """Build the pipeline including the cell being run; if only this cell makes it invalid, leave it out.

        A cell that fails validation keeps its place in the registry but is not part of the pipeline until it is
        fixed and run again, so one broken cell does not block every other cell. The error is raised either way.
        """
        key = self._recorded_key or ""
        self.session.registry.set_valid(key, True)
        try:
            return self.session.build()
        except PipelineError:
            self._leave_out_this_cell()
            try:
                self.session.build()
            except PipelineError:
                self.session.registry.set_valid(key, True)  # broken without it too: the fault is elsewhere
            raise

    def _leave_out_this_cell(self) -> None:
        self.session.registry.set_valid(self._recorded_key or "", False)

    # -- %%step -------------------------------------------------------------------------------------------------
    @cell_magic
    def step(self, line: str, cell: str) -> Any:
        """Define a pipeline step and run it through the engine (see %%step? for the options)."""
        try:
            header = parse_step_line(line)
            self.session.registry.forget_step(header.name, self._recorded_key or "")
            pipeline = self._build_with_this_cell()
            result = self.session.run(
                pipeline,
                targets=[header.name],
                on_event=_cell_printer(header.name),
            )
        except HeaderError as error:
            self._leave_out_this_cell()
            raise _clean(error) from None
        except PipelineError as error:
            raise _clean(error) from None
        step = result.steps.get(header.name)
        if result.status != "succeeded" or step is None:
            raise StepCellError(_failure_message(result, header.name))
        if step.status == "cached":
            print(f"(cached from run {step.cached_from}: unchanged code, inputs and parameters)")
        if step.display is not None:
            return ShownText(step.display)
        return None

    # -- %%parameters -------------------------------------------------------------------------------------------
    @cell_magic
    def parameters(self, line: str, cell: str) -> None:
        """Declare typed pipeline parameters (``name: type = default``); binds the defaults in the kernel."""
        try:
            parse_parameters_line(line)
            source = f"%%parameters {line}".rstrip() + "\n" + cell
            pipeline = build_pipeline([Cell(index=0, source=source)], self.session.pipeline_name)
        except PipelineError as error:
            self._leave_out_this_cell()
            raise _clean(error) from None
        for parameter in pipeline.parameters:
            self.session.namespace[parameter.name] = parameter.default

    # -- %%writefile [--step NAME] ----------------------------------------------------------------------------
    @cell_magic
    def writefile(self, line: str, cell: str) -> Any:
        """IPython's %%writefile, plus tracking: the file is part of the pipeline; ``--step NAME`` makes it a step."""
        try:
            header = parse_writefile_line(line)
            if header.step:
                self.session.registry.forget_step(header.step, self._recorded_key or "")
            self._build_with_this_cell()  # validates the path (no escaping the notebook directory) first
        except HeaderError as error:
            self._leave_out_this_cell()
            raise _clean(error) from None
        except PipelineError as error:
            raise _clean(error) from None
        Path(header.path).parent.mkdir(parents=True, exist_ok=True)
        rest = ("-a " if header.append else "") + shlex.quote(header.path)
        return self._original_writefile(rest, cell)

    # -- %pipeline ----------------------------------------------------------------------------------------------
    @line_magic
    def pipeline(self, line: str) -> Any:
        """Run, stop, show and inspect the notebook's pipeline. ``%pipeline help`` lists the commands."""
        try:
            args = _pipeline_parser().parse_args(shlex.split(line))
        except (_ArgumentError, ValueError) as error:
            raise _clean(PipelineError(f"%pipeline {line.strip()}: {error}.", hint="\n" + PIPELINE_HELP)) from None
        try:
            return self._pipeline_command(args)
        except PipelineError as error:
            raise _clean(error) from None

    def _pipeline_command(self, args: argparse.Namespace) -> Any:
        session = self.session
        command = args.command or "help"
        if command == "help":
            print(PIPELINE_HELP)
        elif command == "run":
            pipeline = session.build()
            overrides = parse_overrides(pipeline, args.param)
            selected = select_steps(pipeline, only=split_names(args.only), from_=args.from_step, to=args.to_step)
            force = split_names(args.force)
            if args.wait:
                result = session.run(
                    pipeline,
                    overrides=overrides,
                    jobs=args.jobs,
                    on_event=_cell_printer(),
                    selected=selected,
                    force=force,
                )
                return self._finish(result)
            session.start(
                pipeline,
                overrides=overrides,
                jobs=args.jobs,
                on_event=_cell_printer(),
                selected=selected,
                force=force,
            )
            print(f"pipeline '{pipeline.name}' running in the background: %pipeline stop to stop, %pipeline wait.")
        elif command == "wait":
            waited = session.wait()
            if waited is None:
                print("no pipeline run has been started in this kernel.")
                return None
            return self._finish(waited)
        elif command == "stop":
            print("stopping the run…" if session.stop() else "no run in progress.")
        elif command == "show":
            if args.text or not _widgets_available():
                print(describe_pipeline(session.build()))
            else:
                from IPython.display import display

                display(session.widget())
        elif command == "logs":
            self._logs(args.step)
        elif command == "why":
            pipeline = session.build()
            self._known_step(pipeline, args.step)
            parameters = resolve_parameters(pipeline, parse_overrides(pipeline, args.param))
            print(explain(pipeline, session.store, session.workdir, args.step, parameters).text())
        elif command == "load":
            names = session.load(args.step, run_id=args.run)
            print(f"loaded {', '.join(names) or 'nothing'} from step '{args.step}'.")
        elif command == "export":
            flags: dict[str, str] = {key: getattr(args, key) for key in SETTINGS if getattr(args, key)}
            written = session.export(Path(args.output) if args.output else None, flags)
            print(f"wrote {written} (code bundles in {written.with_suffix('.bundles')})")
        elif command == "promote":
            self._promote(args)
        elif command == "config":
            updates = {key: getattr(args, key) for key in SETTINGS if getattr(args, key)}
            where = session.settings_sync.configure(updates, session.settings, session.notebook)
            current = session.export_settings()
            print("\n".join(f"{key}: {current[key]}" for key in SETTINGS if key in current) or "no settings yet.")
            if where:
                print(f"({where})")
        elif command == "runs":
            for run in session.store.list_runs(session.pipeline_name):
                print(f"{run.run_id}  {run.status:<9}  {run.duration:7.2f}s")
        elif command == "cache":
            if args.action == "clear":
                removed = session.store.clear_cache(session.pipeline_name, step=args.step)
                print(f"cleared {removed} cache entr{'y' if removed == 1 else 'ies'}.")
            else:
                print(cache_table(session.store.cache_entries(session.pipeline_name)))
        elif command == "reset":
            session.reset()
            print("pipeline registry cleared: run the notebook's cells again (or %pipeline reload).")
        elif command == "reload":
            count = session.reload()
            pipeline = session.build()
            print(f"rebuilt from {session.notebook}: {count} code cells, {len(pipeline.steps)} steps.")
        return None

    def _promote(self, args: argparse.Namespace) -> None:
        flags = {key: getattr(args, key) for key in SETTINGS if getattr(args, key, None)}
        if args.unschedule:
            print(self.session.unschedule(flags))
            return
        promoted = self.session.promote(
            flags, params=args.param, only=args.only, start=not args.no_start, wait=args.wait,
            schedule=args.schedule, schedule_role_arn=args.schedule_role_arn,
            on_event=_cell_printer(), progress=lambda line: print(line, flush=True),
        )  # fmt: skip
        print("\n".join(promoted.lines()))
        if promoted.status not in (None, "succeeded"):
            raise RunError(f"the SageMaker execution {promoted.status}.", hint=f"See {promoted.execution_url}")
        if promoted.execution_arn and not args.wait:
            print("followed in the background: %pipeline stop stops the execution.")

    @staticmethod
    def _known_step(pipeline: Pipeline, step: str) -> None:
        if step not in pipeline.step_names:
            raise RunError(f"there is no step '{step}'.", hint=f"The steps: {', '.join(pipeline.step_names)}.")

    def _finish(self, result: RunResult) -> None:
        print(summary_table(result))
        if result.status == "failed":
            raise StepCellError(_failure_message(result, None))

    def _logs(self, step: str) -> None:
        latest = self.session.store.latest_result(self.session.pipeline_name, step)
        if latest is None:
            raise RunError(f"step '{step}' has not run yet.", hint="Run its cell or %pipeline run first.")
        for path in (latest.stdout_path, latest.stderr_path):
            if path and Path(path).is_file():
                sys.stdout.write(Path(path).read_text(errors="replace"))


def _widgets_available() -> bool:
    try:
        import jupyter_pipelines.ui  # noqa: F401
    except ImportError:
        return False
    return True


def current_session() -> LiveSession:
    """The live session of the running kernel (``%load_ext jupyter_pipelines`` must have run)."""
    from IPython import get_ipython

    shell = get_ipython()
    magics = _loaded.get(id(shell)) if shell is not None else None
    if magics is None:
        raise RunError(
            "jupyter-pipelines is not loaded in this kernel.", hint="Run %load_ext jupyter_pipelines first."
        )
    return magics.session


def _clean(error: PipelineError) -> PipelineError:
    """Attach IPython's hook so the user sees the message alone, not a traceback into this package."""
    text = str(error)
    error._render_traceback_ = lambda: [f"{type(error).__name__}: {text}"]  # type: ignore[attr-defined]
    return error


_loaded: dict[int, PipelineMagics] = {}


def load_ipython_extension(ipython: InteractiveShell) -> None:
    cwd = Path.cwd()
    session = LiveSession(namespace=ipython.user_ns, workdir=cwd, notebook=find_notebook(ipython.user_ns, cwd))
    for source in _history_before_load(ipython):
        session.registry.record(source, None)
    magics = PipelineMagics(ipython, session)
    ipython.register_magics(magics)
    ipython.events.register("pre_run_cell", magics.pre_run_cell)
    ipython.user_ns["_jupyter_pipelines_session"] = session
    session.settings_sync.open()  # JupyterLab answers with the notebook's settings (%pipeline config)
    _loaded[id(ipython)] = magics
    step_magic = ipython.find_cell_magic("step")
    if step_magic is not None:
        step_magic.__func__.__doc__ = STEP_HELP  # type: ignore[attr-defined]


def _history_before_load(ipython: InteractiveShell) -> list[str]:
    """Cells run before ``%load_ext`` (imports, helpers) so they count as prelude like any plain cell."""
    history = list(getattr(ipython.history_manager, "input_hist_raw", []) or [])
    # Pipeline cells run before the extension was loaded failed (their magic did not exist): not part of it.
    return [s for s in history if s.strip() and not s.lstrip().startswith(("%%step", "%%parameters", "%%writefile"))]


def unload_ipython_extension(ipython: InteractiveShell) -> None:
    magics = _loaded.pop(id(ipython), None)
    if magics is not None:
        magics.session.stop()
        magics.session.settings_sync.close()
        ipython.events.unregister("pre_run_cell", magics.pre_run_cell)
    ipython.user_ns.pop("_jupyter_pipelines_session", None)
