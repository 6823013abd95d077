"""The step runtime: run ONE step from a JSON spec, save its outputs to the object store, write a result record.

The same module runs a step in a forked zygote child, in a fresh interpreter (``python -m
jupyter_pipelines.engine.runtime SPEC``), in the kernel (``run_cell`` with the live namespace), and inside a
container (``engine/containers.py``) or a SageMaker job, driven there by ``sagemaker/entry.py``. So it is
stdlib-only with Python 3.8 syntax; cloudpickle, numpy and xxhash are used only when importable, and the fallback
chosen is recorded in each object's ``format`` and ``hash`` prefix.

Cell steps: a fresh namespace gets the prelude parts, the parameter values and the inputs; the body is compiled
under ``<step NAME>`` padded with blank lines so traceback line numbers are the cell's line numbers.

Script steps (``python PATH --input-dir DIR --output-dir DIR``, cwd = the notebook directory) get the contract of a
SageMaker processing job:

- ``JP_OUTPUT_DIR``: a fresh empty directory; whatever the script writes there becomes the step's output (one
  directory object named ``output``).
- ``JP_INPUT_DIR``: one subdirectory per direct upstream step, named after it, holding that step's output files
  (a script upstream: its output directory's files; a cell upstream: ``<name>.npy`` / ``<name>.pkl`` per output).
  ``JP_INPUT_<UPSTREAM>`` (upper case, ``-`` as ``_``) points at each subdirectory. Files are read-only links.
- ``JP_PARAMETERS``: JSON of every parameter value; ``JP_PARAM_<NAME>`` (upper case) each value as text
  (``true``/``false`` for booleans).
- the step's ``env``; the same two directories are also passed as ``--input-dir`` / ``--output-dir``.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import errno
import hashlib
import io
import itertools
import json
import linecache
import os
import pickle
import shutil
import subprocess
import sys
import time
import traceback

try:
    import xxhash as _xxhash
except ImportError:  # pragma: no cover - xxhash is a dependency of the package, not of a SageMaker image
    _xxhash = None  # type: ignore[assignment]

try:
    import cloudpickle as _cloudpickle
except ImportError:  # pragma: no cover
    _cloudpickle = None  # type: ignore[assignment]

try:
    import fcntl as _fcntl
except ImportError:  # pragma: no cover - Windows: no gc running beside a run there
    _fcntl = None  # type: ignore[assignment]

HASH_ALGORITHM = "xxh3_128" if _xxhash is not None else "blake2b_128"
EXTENSIONS = {"npy": "npy", "cloudpickle": "pkl", "pickle": "pkl", "dir": "dir"}
SCRIPT_OUTPUT = "output"
_CHUNK = 64 * 1024 * 1024
_temp_counter = itertools.count()
_INTERNAL_FILES = set()  # type: set


def open_temp(directory: str, mode: str = "wb", buffering: int = -1):  # type: ignore[no-untyped-def]
    """A new temp file in ``directory`` (same filesystem as its final name, for an atomic ``os.replace``).

    Named by pid and counter rather than ``tempfile``'s random names, whose generator reseeds after every fork.
    """
    while True:
        path = os.path.join(directory, ".tmp-%d-%d" % (os.getpid(), next(_temp_counter)))
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:  # pragma: no cover - left by a crashed process with the same pid
            continue
        return os.fdopen(fd, mode, buffering=buffering), path


def new_hasher():  # type: ignore[no-untyped-def]
    """A streaming 128-bit hasher: xxh3_128 when xxhash is importable, else blake2b."""
    if _xxhash is not None:
        return _xxhash.xxh3_128()
    return hashlib.blake2b(digest_size=16)


def type_name(value: object) -> str:
    cls = type(value)
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else "%s.%s" % (module, cls.__qualname__)


class Unserializable(Exception):
    """A value that cannot be written to the store (a connection, a lock, a generator, ...)."""

    def __init__(self, type_: str, reason: str) -> None:
        super().__init__(reason)
        self.type = type_
        self.reason = reason


# --- objects -------------------------------------------------------------------------------------------------


class _HashingWriter:
    """A write-only file object that hashes what passes through, so an object is hashed while written."""

    def __init__(self, raw) -> None:  # type: ignore[no-untyped-def]
        self.raw = raw
        self.hasher = new_hasher()
        self.size = 0

    def write(self, data) -> int:  # type: ignore[no-untyped-def]
        view = memoryview(data).cast("B")
        self.hasher.update(view)
        offset = 0
        while offset < len(view):
            offset += self.raw.write(view[offset : offset + _CHUNK])
        self.size += len(view)
        return len(view)

    def flush(self) -> None:
        pass


def _numpy_array(value: object) -> bool:
    numpy = sys.modules.get("numpy")  # a step that never imported numpy cannot have made an array
    return numpy is not None and isinstance(value, numpy.ndarray) and not value.dtype.hasobject


def _write_npy(array, out: _HashingWriter) -> None:  # type: ignore[no-untyped-def]
    import numpy
    from numpy.lib import format as npformat

    if not (array.flags.c_contiguous or array.flags.f_contiguous):
        array = numpy.ascontiguousarray(array)
    header = npformat.header_data_from_array_1_0(array)
    try:
        npformat.write_array_header_1_0(out, header)
    except ValueError:  # header too long for format 1.0
        npformat.write_array_header_2_0(out, header)
    data = array.T if header["fortran_order"] else array
    flat = data.reshape(-1).view(numpy.uint8) if data.size else b""
    for start in range(0, len(flat), _CHUNK):
        out.write(memoryview(flat[start : start + _CHUNK]))


def _dump(value: object, out: _HashingWriter) -> str:
    if _numpy_array(value):
        _write_npy(value, out)
        return "npy"
    if _cloudpickle is not None:
        _cloudpickle.dump(value, out, protocol=pickle.HIGHEST_PROTOCOL)
        return "cloudpickle"
    pickle.dump(value, out, protocol=pickle.HIGHEST_PROTOCOL)
    return "pickle"


class _ObjectsLock(object):
    """A shared ``flock`` on ``<store>/locks/objects.lock`` while an object is put in place: ``gc`` takes it
    exclusively while it deletes, so it never deletes an object that a commit has just found already stored."""

    def __init__(self, store_root: str) -> None:
        self.path = os.path.join(store_root, "locks", "objects.lock")
        self.fd = -1

    def __enter__(self) -> "_ObjectsLock":
        if _fcntl is not None:
            try:
                self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except FileNotFoundError:
                os.makedirs(os.path.dirname(self.path), exist_ok=True)
                self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            _fcntl.flock(self.fd, _fcntl.LOCK_SH)
        return self

    def __exit__(self, *exc) -> None:  # type: ignore[no-untyped-def]
        if self.fd >= 0:
            os.close(self.fd)


def _commit(temp: str, digest: str, fmt: str, store_root: str, size: int, type_: str) -> dict:
    relative = "objects/%s/%s.%s" % (digest[:2], digest, EXTENSIONS[fmt])
    destination = os.path.join(store_root, relative)
    os.makedirs(os.path.dirname(destination), exist_ok=True)
    with _ObjectsLock(store_root):
        if os.path.exists(destination):  # same content already stored: mark it as just used (gc spares it)
            if os.path.isdir(temp):
                shutil.rmtree(temp, ignore_errors=True)
            else:
                os.unlink(temp)
            with contextlib.suppress(OSError):  # not ours to touch: another user's gc cannot remove it either
                os.utime(destination)
        else:
            try:
                os.replace(temp, destination)
            except OSError:  # a directory raced in by a concurrent run: same content
                shutil.rmtree(temp, ignore_errors=True)
    return {"hash": "%s:%s" % (HASH_ALGORITHM, digest), "format": fmt, "path": relative, "type": type_, "size": size}


def save_value(value: object, store_root: str) -> dict:
    """Write ``value`` to the content-addressed store (hashed while written, atomic rename) and return its ref."""
    objects = os.path.join(store_root, "objects")
    os.makedirs(objects, exist_ok=True)
    raw, temp = open_temp(objects, "wb", 0)
    try:
        with raw:
            out = _HashingWriter(raw)
            try:
                fmt = _dump(value, out)
            except OSError as error:
                if error.errno in _DISK_FULL:
                    raise  # the store's problem, not the value's
                raise Unserializable(type_name(value), "%s: %s" % (type(error).__name__, error)) from None
            except Exception as error:
                raise Unserializable(type_name(value), "%s: %s" % (type(error).__name__, error)) from None
        os.chmod(temp, 0o444)
        return _commit(temp, out.hasher.hexdigest(), fmt, store_root, out.size, type_name(value))
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise


def save_directory(path: str, store_root: str) -> dict:
    """Move a finished output directory into the store as a directory object (hash of names and contents)."""
    hasher = new_hasher()
    size = 0
    for relative in _walk_files(path):
        full = os.path.join(path, relative)
        hasher.update(relative.encode("utf-8") + b"\0")
        file_hasher = new_hasher()
        with open(full, "rb") as handle:
            for block in iter(lambda: handle.read(_CHUNK), b""):  # noqa: B023
                file_hasher.update(block)
                size += len(block)
        hasher.update(file_hasher.digest())
        os.chmod(full, 0o444)
    return _commit(path, hasher.hexdigest(), "dir", store_root, size, "directory")


def _walk_files(root: str) -> list:
    found = []
    for directory, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in filenames:
            found.append(os.path.relpath(os.path.join(directory, name), root).replace(os.sep, "/"))
    return sorted(found)


def load_value(ref: dict, store_root: str) -> object:
    """Load an object: ``.npy`` memory-mapped copy-on-write (no copy, writes stay private), pickles unpickled."""
    path = os.path.join(store_root, ref["path"])
    fmt = ref["format"]
    if fmt == "npy":
        import numpy

        try:
            return numpy.load(path, mmap_mode="c", allow_pickle=False)
        except ValueError:  # an empty array cannot be memory-mapped
            return numpy.load(path, allow_pickle=False)
    if fmt in ("cloudpickle", "pickle"):
        with open(path, "rb") as handle:
            return pickle.load(handle)
    if fmt == "dir":
        return path
    raise ValueError("unknown object format %r" % fmt)


# --- running a cell step -------------------------------------------------------------------------------------


def _register_source(filename: str, source: str) -> None:
    """Let tracebacks show the cell's source lines (mtime None: ``linecache.checkcache`` keeps the entry)."""
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)


def _padded(source: str, first_line: int) -> str:
    return "\n" * max(first_line - 1, 0) + source


def format_user_traceback(error: BaseException) -> str:
    """The traceback of the user's code only: frames of the runtime and the zygote are dropped."""
    tb = error.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename in _INTERNAL_FILES:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(error), error, tb))


def _exec_prelude(spec: dict, namespace: dict) -> None:
    for part in spec.get("prelude", []):
        filename = "<prelude %s>" % part["key"]
        source = _padded(part["source"], part.get("line", 1))
        _register_source(filename, source)
        exec(compile(source, filename, "exec"), namespace)


def _exec_body(spec: dict, namespace: dict):  # type: ignore[no-untyped-def]
    """Run the body; if it ends in an expression (and the spec says so), return that value's ``repr``."""
    filename = "<step %s>" % spec["step"]
    source = _padded(spec["code"], spec.get("code_line", 1))
    _register_source(filename, source)
    tree = ast.parse(source, filename)
    last = None
    final = tree.body[-1] if tree.body else None
    if spec.get("last_expression") and isinstance(final, ast.Expr):
        tree.body.pop()
        last = ast.Expression(final.value)
    try:
        exec(compile(tree, filename, "exec"), namespace)
        value = eval(compile(last, filename, "eval"), namespace) if last is not None else None
    except SystemExit as stop:
        if stop.code in (None, 0):
            return None
        raise
    return None if value is None else repr(value)


def _unsaved_message(spec: dict, name: str, unsaved: dict) -> str:
    if spec.get("executor") == "kernel":
        fix = "run the steps that read it with --executor kernel too"
    else:
        fix = "run this step with --executor kernel"
    return (
        "step %r output %r (%s) cannot be saved: %s. Keep it inside one step, recreate it in the step that needs "
        "it, or %s." % (spec["step"], name, unsaved["type"], unsaved["error"], fix)
    )


def _save_outputs(spec: dict, namespace: dict, result: dict) -> None:
    store_root = spec["store"]
    missing = [n for n in spec.get("outputs", []) if n not in namespace]
    if missing:
        raise _StepError("step %r: --outputs names %s but the step did not bind it" % (spec["step"], missing[0]))
    needed = spec.get("needed", [])
    absent = [n for n in needed if n not in namespace]
    if absent:
        raise _StepError("step %r did not bind %r, which a downstream step reads" % (spec["step"], absent[0]))
    names = [n for n in spec.get("binds", []) if n in namespace]
    names += [n for n in spec.get("outputs", []) if n not in names]
    for name in names:
        try:
            result["outputs"][name] = save_value(namespace[name], store_root)
        except Unserializable as error:
            result["unsaved"][name] = {"type": error.type, "error": error.reason}
        except OSError as error:
            if error.errno not in _DISK_FULL:
                raise
            raise _StepError(
                "step %r: %s while saving its output %r (nothing already stored was lost)"
                % (spec["step"], disk_full_message(os.path.join(store_root, "objects"), error), name)
            ) from None
    for name in needed:
        if name in result["unsaved"]:
            raise _StepError(_unsaved_message(spec, name, result["unsaved"][name]))


_DISK_FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))


def disk_full_message(path: str, error: OSError) -> str:
    """The words for a full disk, naming the path and the free space: what a user needs to free space and retry."""
    try:
        free = "%.1f MB free" % (shutil.disk_usage(path).free / 1e6)
    except OSError:
        free = "free space unknown"
    return "the disk is full (%s) writing %s, %s" % (error.strerror or error, path, free)


class _StepError(Exception):
    """A failure the runtime detected itself (not the user's code): the message is the whole error."""


def new_result() -> dict:
    return {"status": "failed", "error": None, "display": None, "outputs": {}, "unsaved": {}, "duration": 0.0}


def run_cell(spec: dict, namespace=None) -> dict:  # type: ignore[no-untyped-def]
    """Run a cell step in ``namespace`` (a fresh one by default) and return its result record."""
    started = time.time()
    result = new_result()
    if namespace is None:
        namespace = {"__name__": "__main__", "__builtins__": builtins}
    try:
        _exec_prelude(spec, namespace)
        namespace.update(spec.get("parameters", {}))
        for name, ref in spec.get("inputs", {}).items():
            try:
                namespace[name] = load_value(ref, spec["store"])
            except Exception as error:
                raise _StepError("step %r could not load its input %r: %s" % (spec["step"], name, error)) from None
        result["display"] = _exec_body(spec, namespace)
        _save_outputs(spec, namespace, result)
        result["status"] = "succeeded"
    except KeyboardInterrupt:
        raise
    except _StepError as error:
        result["error"] = str(error)
    except BaseException as error:  # the user's code raised (SystemExit with a non-zero code included)
        result["error"] = format_user_traceback(error)
    result["duration"] = time.time() - started
    return result


def warm_up() -> None:
    """Exercise what every step uses (parse, compile, exec, pickle, JSON) in a freshly forked spare child, so the
    copy-on-write page faults are paid before a step is handed over rather than while it runs."""
    namespace = {"__name__": "__main__", "__builtins__": builtins}
    tree = ast.parse("value = [1, 'a', None]\nvalue", "<warm-up>")
    final = tree.body.pop()
    exec(compile(tree, "<warm-up>", "exec"), namespace)
    if isinstance(final, ast.Expr):
        repr(eval(compile(ast.Expression(final.value), "<warm-up>", "eval"), namespace))
    out = _HashingWriter(io.BytesIO())
    _dump(namespace["value"], out)
    out.hasher.hexdigest()
    pickle.loads(pickle.dumps(namespace["value"]))
    json.loads(json.dumps({"status": "succeeded", "outputs": {"value": [1.5, True]}}))


# --- running a script step -----------------------------------------------------------------------------------


def _link_tree(source: str, target: str) -> None:
    for relative in _walk_files(source):
        _link(os.path.join(source, relative), os.path.join(target, relative))


def _link(source: str, target: str) -> None:
    os.makedirs(os.path.dirname(target), exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _env_suffix(name: str) -> str:
    return name.upper().replace("-", "_")


def _parameter_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _prepare_inputs(spec: dict, input_dir: str, env: dict) -> None:
    for upstream, refs in spec.get("input_dirs", {}).items():
        target = os.path.join(input_dir, upstream)
        os.makedirs(target, exist_ok=True)
        for name, ref in refs.items():
            path = os.path.join(spec["store"], ref["path"])
            if ref["format"] == "dir":
                _link_tree(path, target)
            else:
                _link(path, os.path.join(target, "%s.%s" % (name, EXTENSIONS[ref["format"]])))
        env["JP_INPUT_" + _env_suffix(upstream)] = target


def run_script(spec: dict) -> dict:
    """Run ``python SCRIPT`` under the processing-job contract and store its output directory."""
    started = time.time()
    result = new_result()
    work = spec["work_dir"]
    input_dir = os.path.join(work, "input")
    output_dir = os.path.join(work, "output")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(input_dir)
    os.makedirs(output_dir)
    env = dict(os.environ)
    _prepare_inputs(spec, input_dir, env)
    parameters = spec.get("parameters", {})
    env["JP_INPUT_DIR"] = input_dir
    env["JP_OUTPUT_DIR"] = output_dir
    env["JP_PARAMETERS"] = json.dumps(parameters, sort_keys=True)
    for name, value in parameters.items():
        env["JP_PARAM_" + _env_suffix(name)] = _parameter_text(value)
    env.update(spec.get("env", {}))
    env["PYTHONUNBUFFERED"] = "1"
    argv = [sys.executable, spec["script"], "--input-dir", input_dir, "--output-dir", output_dir]
    sys.stdout.flush()
    sys.stderr.flush()
    code = subprocess.call(argv, cwd=spec.get("workdir") or None, env=env)
    if code == 0:
        result["outputs"][SCRIPT_OUTPUT] = save_directory(output_dir, spec["store"])
        result["status"] = "succeeded"
    elif code < 0:
        result["error"] = "script %s was killed by signal %d" % (spec["script"], -code)
    else:
        result["error"] = "script %s exited with code %d (its stderr log says why)" % (spec["script"], code)
    shutil.rmtree(work, ignore_errors=True)
    result["duration"] = time.time() - started
    return result


# --- entry points ----------------------------------------------------------------------------------------------


def write_json_atomic(path: str, data: dict) -> None:
    handle, temp = open_temp(os.path.dirname(path), "w")
    try:
        with handle:
            json.dump(data, handle)
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise


def run_in_process(spec: dict) -> int:
    """Run a step in this (disposable) process: chdir, env, run, write the result record; return the exit code."""
    if spec.get("workdir"):
        os.chdir(spec["workdir"])
    os.environ.update(spec.get("env", {}))
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(line_buffering=True, write_through=False)  # print() reaches the live log line by line
    try:
        result = run_script(spec) if spec.get("kind") == "script" else run_cell(spec)
    except BaseException as error:  # a bug in the runtime, or the store is unwritable: still report it
        result = new_result()
        result["error"] = "the step runtime failed: %s" % "".join(traceback.format_exception_only(type(error), error))
    if result["error"]:
        sys.stderr.write(result["error"].rstrip("\n") + "\n")
    sys.stdout.flush()
    sys.stderr.flush()
    write_json_atomic(spec["result_path"], result)
    return 0 if result["status"] == "succeeded" else 1


def main(argv=None) -> int:  # type: ignore[no-untyped-def]
    args = sys.argv[1:] if argv is None else argv
    with open(args[0]) as handle:
        spec = json.load(handle)
    return run_in_process(spec)


_INTERNAL_FILES.add(os.path.abspath(__file__))
_INTERNAL_FILES.add(__file__)

if __name__ == "__main__":
    sys.exit(main())
