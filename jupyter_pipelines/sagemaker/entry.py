"""The entry point of a step inside a SageMaker processing or training job; shipped in the step's code bundle.

It is never imported by the package. Beside it in the bundle: ``runtime.py`` (the engine's step runtime, copied
unchanged), ``cloudpickle/`` (pure Python, copied from the installed package), ``step.json`` (the step: code,
prelude, names, parameter types) and the step's tracked files under ``src/`` (the working directory, as the
notebook directory is locally). Stdlib-only, Python 3.8 syntax: it runs on the framework images' Python.

It adapts SageMaker's file layout to the runtime, which runs the cell exactly as it runs locally:

- inputs: ``/opt/ml/processing/input/<upstream>/`` (processing) or ``/opt/ml/input/data/<upstream>/`` (training)
  hold ``<name>.npy`` / ``<name>.pkl`` per value; a training upstream's ``model.tar.gz`` is unpacked first; a
  script upstream's directory is passed as the value of ``output``;
- outputs: ``<name>.npy`` / ``<name>.pkl`` in ``/opt/ml/processing/output/<step>/`` or ``/opt/ml/model/``, plus
  ``properties.json`` (the values ``--when`` conditions read, as JSON) for SageMaker's property file;
- parameters: ``JP_PARAM_<NAME>`` environment variables (processing) or ``jp_param_<name>`` hyperparameters
  (training), converted back to their declared types;
- declared data (``--inputs data/train.csv``): the n-th path arrives in the job input ``data-<n>`` (as
  ``<input root>/data-<n>/train.csv``); the step then runs in a fresh working directory that mirrors ``src/`` with
  symlinks, where ``data/train.csv`` is a symlink to it, so the cell opens the path it opens locally. Links are
  made only inside that directory (paths are relative and checked; a path through another input or a tracked
  file is refused).

``JP_SAGEMAKER_ROOT`` replaces ``/opt/ml`` (tests run a job on a local directory tree). ``JP_RESULT_FILE``, set
only by the local container executor (engine/containers.py), names a JSON file to receive what the engine records
besides the output files: each output's format and type, the displayed value, the outputs that could not be saved.
"""

import builtins
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import runtime  # noqa: E402  (the engine's step runtime, beside this file in the bundle)

ROOT = os.environ.get("JP_SAGEMAKER_ROOT", "/opt/ml")
PROPERTY_FILE = "properties.json"
FORMATS = (("npy", "npy"), ("pkl", "cloudpickle"))


class StepFailure(Exception):
    """A problem this adapter found (not the user's code): its message is the whole error."""


def load_spec():  # type: ignore[no-untyped-def]
    with open(os.path.join(HERE, "step.json")) as handle:
        return json.load(handle)


def coerce(name, kind, text):  # type: ignore[no-untyped-def]
    """A parameter's text as SageMaker passes it, back to its declared type."""
    if text is None:
        raise StepFailure("parameter %r has no value in the job" % name)
    try:
        if kind == "int":
            return int(text)
        if kind == "float":
            return float(text)
        if kind == "bool":
            lowered = text.strip().lower()
            if lowered in ("true", "1"):
                return True
            if lowered in ("false", "0"):
                return False
            raise ValueError(text)
    except ValueError:
        raise StepFailure("parameter %r should be %s, got %r" % (name, kind, text)) from None
    return text


def env_name(name):  # type: ignore[no-untyped-def]
    return "JP_PARAM_" + name.upper()


def parameters(spec):  # type: ignore[no-untyped-def]
    types = spec.get("parameters", {})
    if spec["mode"] == "training":
        path = os.path.join(ROOT, "input", "config", "hyperparameters.json")
        with open(path) as handle:
            raw = json.load(handle)
        return {name: coerce(name, kind, raw.get("jp_param_" + name)) for name, kind in types.items()}
    return {name: coerce(name, kind, os.environ.get(env_name(name))) for name, kind in types.items()}


def layout(spec):  # type: ignore[no-untyped-def]
    """(input root, output directory) for this kind of job."""
    if spec["mode"] == "training":
        return os.path.join(ROOT, "input", "data"), os.environ.get("SM_MODEL_DIR", os.path.join(ROOT, "model"))
    return os.path.join(ROOT, "processing", "input"), os.path.join(ROOT, "processing", "output", spec["step"])


def unpacked(directory):  # type: ignore[no-untyped-def]
    """A training upstream arrives as ``model.tar.gz``: unpack it once and use that directory instead."""
    archive = os.path.join(directory, "model.tar.gz")
    if not os.path.isfile(archive):
        return directory
    target = tempfile.mkdtemp(prefix="jp-model-")
    with tarfile.open(archive) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(target, filter="data")
        else:  # pragma: no cover - Python before 3.8.17 / 3.9.17
            tar.extractall(target)
    return target


def value_ref(directory, name, upstream):  # type: ignore[no-untyped-def]
    for extension, fmt in FORMATS:
        path = os.path.join(directory, "%s.%s" % (name, extension))
        if os.path.exists(path):
            return {"path": path, "format": fmt}
    raise StepFailure("step %r did not output %r, which this step reads" % (upstream, name))


def input_refs(spec, input_root):  # type: ignore[no-untyped-def]
    refs = {}
    directories = {}
    for name, upstream in sorted(spec.get("inputs", {}).items()):
        if upstream not in directories:
            directories[upstream] = unpacked(os.path.join(input_root, upstream))
        if upstream in spec.get("script_upstreams", []):
            refs[name] = {"path": directories[upstream], "format": "dir"}
        else:
            refs[name] = value_ref(directories[upstream], name, upstream)
    return refs


def jsonable(value, where):  # type: ignore[no-untyped-def]
    """A value as plain JSON data: numpy scalars and arrays become numbers and lists."""
    if isinstance(value, dict):
        return {str(key): jsonable(item, where) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item, where) for item in value]
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    for method in ("tolist", "item"):
        convert = getattr(value, method, None)
        if callable(convert):
            return jsonable(convert(), where)
    raise StepFailure("%s is a %s, which a condition cannot read as JSON" % (where, type(value).__name__))


def write_properties(spec, namespace, output_dir):  # type: ignore[no-untyped-def]
    names = spec.get("properties", [])
    if not names:
        return
    data = {}
    for name in names:
        if name not in namespace:
            raise StepFailure("step %r did not bind %r, which a --when condition reads" % (spec["step"], name))
        data[name] = jsonable(namespace[name], repr(name))
    try:
        text = json.dumps(data, sort_keys=True, allow_nan=False)
    except ValueError:
        raise StepFailure("a value a --when condition reads is NaN or infinite, which is not JSON") from None
    with open(os.path.join(output_dir, PROPERTY_FILE), "w") as handle:
        handle.write(text)


def run_cell(spec, input_root, output_dir):  # type: ignore[no-untyped-def]
    # the runtime's scratch store inside the output directory: each output is then renamed into place, not copied
    # (a 1 GB array is written once); the scratch directory is gone before the job uploads its outputs
    store = tempfile.mkdtemp(prefix=".jp-store-", dir=output_dir)
    cell = {
        "kind": "cell",
        "step": spec["step"],
        "code": spec["code"],
        "code_line": spec.get("code_line", 1),
        "last_expression": spec.get("last_expression", False),
        "prelude": spec.get("prelude", []),
        "parameters": parameters(spec),
        "inputs": input_refs(spec, input_root),
        "binds": spec.get("binds", []),
        "outputs": spec.get("outputs", []),
        "needed": spec.get("needed", []),
        "executor": "process",
        "env": {},
        "store": store,
    }
    namespace = {"__name__": "__main__", "__builtins__": builtins}
    try:
        result = runtime.run_cell(cell, namespace)
        if result["status"] != "succeeded":
            raise StepFailure(result["error"] or "the step failed")
        local_result = os.environ.get("JP_RESULT_FILE")
        if result.get("display") and not local_result:
            print(result["display"])
        for name, unsaved in sorted(result.get("unsaved", {}).items()):
            print("output %r (%s) was not saved: %s" % (name, unsaved["type"], unsaved["error"]), file=sys.stderr)
        place_outputs(result["outputs"], store, output_dir)
        write_properties(spec, namespace, output_dir)
    finally:
        shutil.rmtree(store, ignore_errors=True)
    if local_result:
        outputs = {name: {"format": ref["format"], "type": ref["type"]} for name, ref in result["outputs"].items()}
        with open(local_result, "w") as handle:
            json.dump({"display": result.get("display"), "outputs": outputs, "unsaved": result["unsaved"]}, handle)


def place_outputs(outputs, store, output_dir):  # type: ignore[no-untyped-def]
    """Each output as ``<name>.npy`` / ``<name>.pkl`` in the output directory: renamed out of the scratch store
    (the last name of an object shared by several gets the object itself, the others copies)."""
    uses = {}
    for ref in outputs.values():
        uses[ref["path"]] = uses.get(ref["path"], 0) + 1
    for name, ref in sorted(outputs.items()):
        source = os.path.join(store, ref["path"])
        target = os.path.join(output_dir, "%s.%s" % (name, runtime.EXTENSIONS[ref["format"]]))
        uses[ref["path"]] -= 1
        if uses[ref["path"]]:
            shutil.copyfile(source, target)
            continue
        try:
            os.replace(source, target)
        except OSError:  # another file system after all
            shutil.copyfile(source, target)


def run_script(spec, input_root, output_dir):  # type: ignore[no-untyped-def]
    """A script step gets the local processing-job contract: JP_INPUT_DIR, JP_INPUT_<UPSTREAM>, JP_OUTPUT_DIR."""
    values = parameters(spec)
    env = dict(os.environ)
    for upstream in spec.get("upstream", []):
        env["JP_INPUT_" + upstream.upper().replace("-", "_")] = unpacked(os.path.join(input_root, upstream))
    env["JP_INPUT_DIR"] = input_root
    env["JP_OUTPUT_DIR"] = output_dir
    env["JP_PARAMETERS"] = json.dumps(values, sort_keys=True)
    for name, value in values.items():
        env[env_name(name)] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    env["PYTHONUNBUFFERED"] = "1"
    argv = [sys.executable, spec["script"], "--input-dir", input_root, "--output-dir", output_dir]
    code = subprocess.call(argv, env=env)
    if code != 0:
        raise StepFailure("script %s exited with code %d (its log above says why)" % (spec["script"], code))


def mirror(source, work):  # type: ignore[no-untyped-def]
    """The tracked files under ``src/`` as symlinks in ``work`` (the code may be mounted read-only)."""
    for directory, _, names in os.walk(source):
        relative = os.path.relpath(directory, source)
        target_dir = os.path.normpath(os.path.join(work, relative))
        os.makedirs(target_dir, exist_ok=True)
        for name in names:
            os.symlink(os.path.join(directory, name), os.path.join(target_dir, name))


def inside(work, path):  # type: ignore[no-untyped-def]
    """``path`` (declared relative) under ``work``, or None if it would leave it."""
    if os.path.isabs(path) or "\0" in path:
        return None
    target = os.path.normpath(os.path.join(work, path))
    return target if target.startswith(work + os.sep) else None


def link_input(work, input_root, item):  # type: ignore[no-untyped-def]
    """Make the declared path, in the working directory, a symlink to where the job received it."""
    path = item["path"]
    target = inside(work, path)
    if target is None:
        raise StepFailure("--inputs %r is not a relative path inside the working directory" % path)
    source = os.path.join(input_root, item["input"], item["name"])
    if not os.path.exists(source):
        message = "--inputs %s: the job did not receive it (nothing at %s: its input %r is missing)"
        raise StepFailure(message % (path, source, item["input"]))
    parent = os.path.dirname(target)
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as error:
        raise StepFailure("--inputs %s: cannot create its directory: %s" % (path, error)) from None
    if os.path.realpath(parent) != parent or os.path.lexists(target):
        raise StepFailure(
            "--inputs %s overlaps another input or a tracked file; declare the enclosing directory alone" % path
        )
    os.symlink(source, target)


def working_directory(spec, input_root):  # type: ignore[no-untyped-def]
    """Where the step runs: ``src/``, as the notebook directory; with ``--inputs``, a mirror of it plus links."""
    source = os.path.join(HERE, "src")
    items = spec.get("data_inputs") or []
    if not items:
        return source if os.path.isdir(source) else tempfile.mkdtemp(prefix="jp-work-")
    work = os.path.realpath(tempfile.mkdtemp(prefix="jp-work-"))
    if os.path.isdir(source):
        mirror(source, work)
    for item in items:
        link_input(work, input_root, item)
    return work


def install_requirements(spec):  # type: ignore[no-untyped-def]
    if spec.get("requirements"):
        path = os.path.join(HERE, "step-requirements.txt")
        subprocess.check_call([sys.executable, "-m", "pip", "install", "--no-input", "-q", "-r", path])


def report_failure(message):  # type: ignore[no-untyped-def]
    """Print the error and leave it where SageMaker shows a job's failure reason."""
    sys.stderr.write(message.rstrip("\n") + "\n")
    for name in ("failure", "message"):
        try:
            os.makedirs(os.path.join(ROOT, "output"), exist_ok=True)
            with open(os.path.join(ROOT, "output", name), "w") as handle:
                handle.write(message[-1000:])
        except OSError:
            pass


def main():  # type: ignore[no-untyped-def]
    spec = load_spec()
    input_root, output_dir = layout(spec)
    try:
        install_requirements(spec)
        os.makedirs(output_dir, exist_ok=True)
        os.chdir(working_directory(spec, input_root))  # the step's tracked files, as in the notebook directory
        sys.path.insert(0, os.getcwd())  # and importable from there, as the notebook directory is locally
        if spec.get("script"):
            run_script(spec, input_root, output_dir)
        else:
            run_cell(spec, input_root, output_dir)
    except StepFailure as error:
        report_failure(str(error))
        return 1
    except subprocess.CalledProcessError as error:
        report_failure("installing the step's requirements failed: %s" % error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
