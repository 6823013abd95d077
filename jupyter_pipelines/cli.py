"""The command-line skin: ``jupyter-pipelines run | show | export | graph | logs ... NOTEBOOK.ipynb``.

It builds the same pipeline from the saved notebook that the magics build in a kernel (one reader, one parser)
and runs it with the same engine. Exit codes: 0 success, 1 a step failed, 2 bad input (one line, no traceback),
130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import PipelineError

if TYPE_CHECKING:
    from .engine import RunResult

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jupyter-pipelines",
        description="Run, inspect and export the pipeline that a notebook's %%step cells define.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the notebook's pipeline locally (cached steps are reused)")
    run.add_argument("notebook", help="the .ipynb file")
    run.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE", help="override a parameter")
    run.add_argument("--jobs", type=int, metavar="N", help="steps run in parallel (default: number of cores)")
    run.add_argument("--json", action="store_true", help="print a machine-readable summary instead of progress")
    run.add_argument("-v", "--verbose", action="store_true", help="stream every step's output")
    _add_selection(run)

    export = sub.add_parser("export", help="write the SageMaker pipeline definition JSON (and its code bundles)")
    export.add_argument("notebook")
    export.add_argument("-o", "--output", required=True, metavar="FILE", help="the definition, e.g. pipeline.json")
    _add_export_settings(export)

    _add_promote(sub.add_parser("promote", help="upload to S3, create or update the SageMaker pipeline, start it"))

    why = sub.add_parser("why", help="explain why a step will rerun or come from the cache")
    why.add_argument("notebook")
    why.add_argument("step")
    why.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE")

    runs = sub.add_parser("runs", help="list the notebook's recorded runs, newest first")
    runs.add_argument("notebook")
    runs.add_argument("--remote", action="store_true", help="list the pipeline's executions in SageMaker instead")
    runs.add_argument("--region", metavar="REGION", help="with --remote: AWS region (default: notebook settings)")
    runs.add_argument("--profile", metavar="PROFILE", help="with --remote: AWS profile (default: the standard chain)")
    runs.add_argument("--name", metavar="NAME", help="with --remote: pipeline name (default: notebook settings)")

    gc = sub.add_parser("gc", help="remove runs beyond the newest N and the objects no kept run or cache entry needs")
    gc.add_argument("notebook")
    gc.add_argument("--keep", type=int, default=10, metavar="N", help="runs to keep (default 10)")

    cache = sub.add_parser("cache", help="show or clear the step cache")
    cache_sub = cache.add_subparsers(dest="cache_command", required=True, metavar="ACTION")
    cache_show = cache_sub.add_parser("show", help="size and entries")
    cache_show.add_argument("notebook")
    cache_clear = cache_sub.add_parser("clear", help="forget cached results (all, or one step's)")
    cache_clear.add_argument("notebook")
    cache_clear.add_argument("step", nargs="?")

    show = sub.add_parser("show", help="print the steps, their dependencies and why")
    show.add_argument("notebook")

    graph = sub.add_parser("graph", help="draw the pipeline's DAG to a .svg, .png or .dot file")
    graph.add_argument("notebook")
    graph.add_argument("-o", "--output", required=True, metavar="FILE", help="dag.svg, dag.png or dag.dot")

    logs = sub.add_parser("logs", help="print a step's output from the latest (or a given) run")
    logs.add_argument("notebook")
    logs.add_argument("step", nargs="?", help="the step (default: every step of the run)")
    logs.add_argument("--run", metavar="ID", help="a run id (default: the latest run)")
    return parser


def _add_selection(parser: argparse.ArgumentParser) -> None:
    """Selective execution, as SageMaker has it: the other steps' outputs come from the latest successful run."""
    parser.add_argument("--only", action="append", default=[], metavar="A,B", help="run only these steps")
    parser.add_argument("--from", dest="from_step", metavar="STEP", help="run this step and everything after it")
    parser.add_argument("--to", dest="to_step", metavar="STEP", help="run this step and everything it needs")
    parser.add_argument("--force", action="append", default=[], metavar="A,B", help="rerun these, ignoring the cache")


def _add_export_settings(parser: argparse.ArgumentParser) -> None:
    """Flags that override the notebook's saved settings (``metadata.jupyter_pipelines``)."""
    parser.add_argument("--role-arn", metavar="ARN", help="the SageMaker execution role")
    parser.add_argument("--bucket", metavar="BUCKET", help="S3 bucket for code and outputs")
    parser.add_argument("--region", metavar="REGION", help="AWS region, e.g. eu-west-1")
    parser.add_argument("--prefix", metavar="PREFIX", help="S3 key prefix (default: the pipeline name)")
    parser.add_argument("--name", metavar="NAME", help="pipeline name (default: from the notebook's file name)")
    parser.add_argument("--executor", metavar="E", help="default executor of steps without --executor")
    parser.add_argument("--image", metavar="IMAGE", help="default image of steps without --image or --framework")


def _add_promote(parser: argparse.ArgumentParser) -> None:
    """``promote``: the export settings plus what to do in SageMaker (sagemaker/promote.py)."""
    parser.add_argument("notebook")
    _add_export_settings(parser)
    parser.add_argument("--profile", metavar="P", help="AWS profile (default: the standard credential chain)")
    parser.add_argument("--no-start", action="store_true", help="create or update the pipeline, do not start it")
    parser.add_argument("--wait", action="store_true", help="follow the execution; exit 1 if it fails")
    parser.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE", help="a parameter value")
    parser.add_argument("--only", action="append", default=[], metavar="A,B", help="selective execution: these steps")
    parser.add_argument("--schedule", metavar="EXPR", help='start it on a schedule: "rate(1 day)" or "cron(...)"')
    parser.add_argument("--schedule-role-arn", metavar="ARN", help="the role EventBridge Scheduler assumes")
    parser.add_argument("--unschedule", action="store_true", help="delete the pipeline's schedule (and nothing else)")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "show":
            return _show(args)
        if args.command == "logs":
            return _logs(args)
        if args.command == "graph":
            return _graph(args)
        if args.command == "export":
            return _export(args)
        if args.command == "promote":
            return _promote(args)
        if args.command == "why":
            return _why(args)
        if args.command == "runs":
            return _runs(args)
        if args.command == "gc":
            return _gc(args)
        if args.command == "cache":
            return _cache(args)
    except PipelineError as error:
        print(f"jupyter-pipelines: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("jupyter-pipelines: interrupted; running steps were stopped and nothing was cached.", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_BAD_INPUT


def _load(notebook: str, flags: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    from .authoring.defaults import apply_defaults
    from .authoring.notebook import notebook_dir, pipeline_from_notebook, read_settings

    pipeline = pipeline_from_notebook(notebook)  # with the notebook's default executor/image (flags win)
    return apply_defaults(pipeline, {**read_settings(notebook), **(flags or {})}), notebook_dir(notebook)


def _run(args: argparse.Namespace) -> int:
    from .engine import prestart

    # Start the warm worker first, so its start-up overlaps importing and reading the notebook, not the first step.
    prestart(Path(args.notebook).resolve().parent)

    from .authoring.parameters import parse_overrides, resolve_parameters
    from .engine import RunOptions, Store, run_pipeline
    from .engine.selection import select_steps, split_names
    from .local_jobs import job_files
    from .progress import LinePrinter, summary_table

    pipeline, workdir = _load(args.notebook)
    if args.jobs is not None and args.jobs < 1:
        raise PipelineError(f"--jobs takes a whole number >= 1, got {args.jobs}.")
    options = RunOptions(
        parameters=resolve_parameters(pipeline, parse_overrides(pipeline, args.param)),
        jobs=args.jobs,
        selected=select_steps(pipeline, only=split_names(args.only), from_=args.from_step, to=args.to_step),
        force=frozenset(split_names(args.force)),
        job_files=job_files,
    )
    store = Store(workdir / ".pipelines")

    def execute(subscribers: list) -> RunResult:  # type: ignore[type-arg]
        return run_pipeline(pipeline, store=store, workdir=workdir, options=options, subscribers=subscribers)

    if args.json:
        result = execute([])
        print(json.dumps(_summary(result), indent=2, sort_keys=True))
    elif sys.stderr.isatty() and not args.verbose:
        from .progress import LiveTable

        with LiveTable() as table:
            result = execute([table])
    else:
        result = execute([LinePrinter(logs=args.verbose)])
        print(summary_table(result), file=sys.stderr)
    if not args.json:
        for step in result.steps.values():
            if step.status == "failed" and step.error:
                print(f"\nstep '{step.name}' failed:\n{step.error.rstrip()}", file=sys.stderr)
    return EXIT_OK if result.status == "succeeded" else EXIT_FAILED


def _summary(result: RunResult) -> dict[str, object]:
    return {
        "run_id": result.run_id,
        "status": result.status,
        "run_dir": str(result.run_dir),
        "steps": {
            name: {
                "status": step.status,
                "duration": round(step.duration, 4),
                "cached_from": step.cached_from,
                "stdout": str(step.stdout_path) if step.stdout_path else None,
                "stderr": str(step.stderr_path) if step.stderr_path else None,
                "error": step.error,
            }
            for name, step in result.steps.items()
        },
    }


def _show(args: argparse.Namespace) -> int:
    from .authoring.describe import describe_pipeline

    pipeline, _ = _load(args.notebook)
    print(describe_pipeline(pipeline))
    return EXIT_OK


def _graph(args: argparse.Namespace) -> int:
    from .ui.graph_file import render_graph_file

    pipeline, _ = _load(args.notebook)
    render_graph_file(pipeline, Path(args.output))
    print(f"wrote {args.output}", file=sys.stderr)
    return EXIT_OK


def _export(args: argparse.Namespace) -> int:
    from .authoring.notebook import read_settings
    from .sagemaker.settings import SETTINGS, write_export

    flags = {key: getattr(args, key) for key in SETTINGS if getattr(args, key, None)}
    pipeline, workdir = _load(args.notebook, flags)
    settings = read_settings(args.notebook)
    settings.update(flags)
    written = write_export(pipeline, settings, workdir, Path(args.output))
    print(f"wrote {written} (code bundles in {written.parent / (written.stem + '.bundles')})", file=sys.stderr)
    return EXIT_OK


def _promote(args: argparse.Namespace) -> int:
    from .authoring.notebook import read_settings
    from .authoring.parameters import parse_overrides
    from .engine.selection import split_names
    from .progress import LinePrinter
    from .sagemaker.aws import connect
    from .sagemaker.promote import follow, options_from_settings, promote, unschedule
    from .sagemaker.settings import SETTINGS

    flags = {key: getattr(args, key) for key in SETTINGS if getattr(args, key, None)}
    pipeline, workdir = _load(args.notebook, flags)
    settings = {**read_settings(args.notebook), **flags}
    if args.unschedule:
        print(unschedule(settings, pipeline.name))
        return EXIT_OK
    options = options_from_settings(
        settings, workdir, parameters=parse_overrides(pipeline, args.param), only=tuple(split_names(args.only)),
        start=not args.no_start, schedule=args.schedule, schedule_role_arn=args.schedule_role_arn,
    )  # fmt: skip
    promoted = promote(pipeline, options, progress=lambda line: print(line, file=sys.stderr))
    print("\n".join(promoted.lines()))
    if not args.wait or promoted.execution_arn is None:
        return EXIT_OK
    try:
        status = follow(promoted, pipeline, connect(promoted.region, options.profile), LinePrinter())
    except KeyboardInterrupt:
        print(
            f"jupyter-pipelines: stopped following; the execution goes on in SageMaker: {promoted.execution_url}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    print(f"the SageMaker execution {status}: {promoted.execution_url}")
    return EXIT_OK if status == "succeeded" else EXIT_FAILED


def _why(args: argparse.Namespace) -> int:
    from .authoring.parameters import parse_overrides, resolve_parameters
    from .engine import Store
    from .engine.why import explain

    pipeline, workdir = _load(args.notebook)
    if args.step not in pipeline.step_names:
        raise PipelineError(
            f"{args.notebook} has no step '{args.step}'.", hint=f"Its steps: {', '.join(pipeline.step_names)}."
        )
    parameters = resolve_parameters(pipeline, parse_overrides(pipeline, args.param))
    print(explain(pipeline, Store(workdir / ".pipelines"), workdir, args.step, parameters).text())
    return EXIT_OK


def _runs(args: argparse.Namespace) -> int:
    from .engine import Store

    pipeline, workdir = _load(args.notebook)
    if args.remote:
        from .authoring.notebook import read_settings
        from .sagemaker.remote_runs import remote_runs_text

        settings = read_settings(args.notebook)
        settings.update({key: getattr(args, key) for key in ("region", "name") if getattr(args, key)})
        print(remote_runs_text(pipeline.name, settings, args.profile))
        return EXIT_OK
    runs = Store(workdir / ".pipelines").list_runs(pipeline.name)
    if not runs:
        print(f"{args.notebook} has not run yet.")
    for run in runs:
        counts: dict[str, int] = {}
        for step in run.steps.values():
            counts[step.status] = counts.get(step.status, 0) + 1
        detail = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        print(f"{run.run_id}  {run.status:<9}  {run.duration:7.2f}s  {detail}")
    return EXIT_OK


def _gc(args: argparse.Namespace) -> int:
    from .engine import Store

    if args.keep < 0:
        raise PipelineError(f"--keep takes a whole number >= 0, got {args.keep}.")
    pipeline, workdir = _load(args.notebook)
    print(Store(workdir / ".pipelines").gc(pipeline.name, keep=args.keep).text())
    return EXIT_OK


def _cache(args: argparse.Namespace) -> int:
    from .engine import Store
    from .progress import cache_table

    pipeline, workdir = _load(args.notebook)
    store = Store(workdir / ".pipelines")
    if args.cache_command == "clear":
        if args.step and args.step not in pipeline.step_names:
            raise PipelineError(
                f"{args.notebook} has no step '{args.step}'.", hint=f"Its steps: {', '.join(pipeline.step_names)}."
            )
        removed = store.clear_cache(pipeline.name, step=args.step)
        print(
            f"cleared {removed} cache entr{'y' if removed == 1 else 'ies'}"
            + (f" of {args.step}" if args.step else "")
        )
        return EXIT_OK
    print(cache_table(store.cache_entries(pipeline.name)))
    return EXIT_OK


def _logs(args: argparse.Namespace) -> int:
    from .engine import Store

    pipeline, workdir = _load(args.notebook)
    if args.step and args.step not in pipeline.step_names:
        raise PipelineError(
            f"{args.notebook} has no step '{args.step}'.", hint=f"Its steps: {', '.join(pipeline.step_names)}."
        )
    runs = Store(workdir / ".pipelines").list_runs(pipeline.name)
    if args.run:
        runs = [r for r in runs if r.run_id == args.run]
        if not runs:
            raise PipelineError(f"{args.notebook} has no run '{args.run}'.", hint="List them with the CLI's `runs`.")
    if not runs:
        raise PipelineError(
            f"{args.notebook} has not run yet.", hint=f"Run it: jupyter-pipelines run {args.notebook}"
        )
    run = runs[0]
    for name in [args.step] if args.step else [n for n in pipeline.step_names if n in run.steps]:
        step = run.steps.get(name)
        if step is None:
            raise PipelineError(f"step '{name}' was not part of run {run.run_id}.")
        if not args.step:
            origin = f", cached from run {step.cached_from}" if step.cached_from else ""
            print(f"==> {name} ({step.status}{origin}) <==")
        for path in (step.stdout_path, step.stderr_path):
            if path is not None and Path(path).is_file():
                text = Path(path).read_text(errors="replace")
                sys.stdout.write(text if not text or text.endswith("\n") else text + "\n")
        if step.error:
            sys.stdout.write(step.error if step.error.endswith("\n") else step.error + "\n")
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
