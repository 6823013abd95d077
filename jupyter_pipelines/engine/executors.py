"""Executors: where a step's runtime runs. Process steps go to a pool (zygote fork, or spawned interpreter);
kernel steps run in the live namespace on the engine's thread.

Pools are driven by the engine's selector loop: they register their file descriptors with a callback and report
``on_exit(job, exit_code)`` (None when the worker vanished). Every step process leads its own process group, so
``signal_job`` reaches whatever the step started too.

``prestart(workdir)`` starts a zygote before the run is even known (the CLI calls it before it parses the
notebook), so its interpreter start-up overlaps that work; the run's ``ZygotePool`` adopts it. This module stays
light to import for that reason (the step runtime is imported on first use).
"""

from __future__ import annotations

import abc
import contextlib
import io
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .interrupt import StepInterrupted, ThreadInterrupter

ExitCallback = Callable[[str, int | None], None]


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:  # not yet its own group leader (just forked), or already gone
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
    except PermissionError:
        pass


class ProcessPool(abc.ABC):
    """The interface the scheduler drives; ``poll_interval`` is how often ``poll()`` must be called (or None)."""

    poll_interval: float | None = None

    @abc.abstractmethod
    def start(self, job: str, spec: dict[str, Any], stdout: int, stderr: int) -> None:
        """Launch the step ``spec`` as ``job`` with its stdout/stderr going to these descriptors."""

    @abc.abstractmethod
    def signal_job(self, job: str, sig: int) -> None:
        """Send ``sig`` to the job's process group (if it is still running)."""

    def poll(self) -> None:  # noqa: B027 - optional hook: most pools are told of exits, not polled
        """Check for finished jobs (only pools with a ``poll_interval`` need it)."""

    def close(self) -> None:  # noqa: B027 - optional hook: a pool without resources has nothing to release
        """Release the pool's processes and descriptors."""


def _spawn_zygote(workdir: Path, modules: list[str] | None) -> tuple[subprocess.Popen[bytes], socket.socket]:
    """A zygote for ``workdir`` and the engine's end of its socket; ``modules=None`` makes it wait for a preload."""
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        command = [sys.executable, "-m", "jupyter_pipelines.engine.zygote", str(child.fileno())]
        if modules is not None:
            command.append(json.dumps(modules))
        process = subprocess.Popen(
            command, pass_fds=(child.fileno(),), cwd=workdir, stdin=subprocess.DEVNULL, start_new_session=True
        )
    except BaseException:
        parent.close()
        raise
    finally:
        child.close()
    return process, parent


class _Prestarted:
    """A zygote started ahead of its run, not adopted yet: it waits (without forking) for its preload message."""

    def __init__(self, workdir: Path) -> None:
        self.key = _prestart_key(workdir)
        self.process, self.sock = _spawn_zygote(workdir, None)

    def discard(self) -> None:
        """Stop it now (it has no children before its preload); closing the socket alone would do, eventually."""
        self.sock.close()
        with contextlib.suppress(OSError):
            self.process.kill()
        self.process.wait()


_prestarted: _Prestarted | None = None
_prestart_lock = threading.Lock()
_atexit_registered = False


def _prestart_key(workdir: Path) -> tuple[str, str]:
    return sys.executable, os.path.realpath(workdir)


def prestart(workdir: Path) -> None:
    """Start the zygote of a run in ``workdir`` now, before the run (and its modules) are known.

    The next ``ZygotePool`` for the same workdir (and interpreter) adopts it and sends it the modules to preload;
    one for another workdir, or no run at all, leaves it waiting until this process exits (or the next
    ``prestart`` replaces it): it then exits without having forked anything. Never raises: without it the run
    starts its own zygote, as it would anyway."""
    global _prestarted, _atexit_registered
    if not hasattr(os, "fork"):  # the zygote launcher is not available here
        return
    key = _prestart_key(workdir)
    with _prestart_lock:
        old = _prestarted
        if old is not None and old.key == key and old.process.poll() is None:
            return
        _prestarted = None
        if old is not None:
            old.discard()
        try:
            _prestarted = _Prestarted(workdir)
        except (OSError, subprocess.SubprocessError):  # e.g. the directory does not exist: the run will say so
            return
        if not _atexit_registered:
            import atexit

            atexit.register(_discard_prestarted)
            _atexit_registered = True


def prestarted_pid() -> int | None:
    """The pid of the zygote ``prestart`` left waiting for adoption, if any (for tests and diagnostics)."""
    current = _prestarted
    return None if current is None else current.process.pid


def _discard_prestarted() -> None:
    global _prestarted
    with _prestart_lock:
        current, _prestarted = _prestarted, None
    if current is not None:
        current.discard()


def _adopt(workdir: Path, modules: list[str]) -> tuple[subprocess.Popen[bytes], socket.socket] | None:
    """The prestarted zygote for ``workdir``, told which modules to preload; None if there is none (or it died)."""
    global _prestarted
    with _prestart_lock:
        current = _prestarted
        if current is None or current.key != _prestart_key(workdir):
            return None
        _prestarted = None
    if current.process.poll() is None:
        try:
            current.sock.sendall((json.dumps({"op": "preload", "modules": modules}) + "\n").encode("utf-8"))
        except OSError:  # it died just now
            pass
        else:
            return current.process, current.sock
    current.discard()
    return None


class ZygotePool(ProcessPool):
    """Forks each step from one warm, single-threaded zygote process (see ``zygote.py`` for the protocol): the
    one ``prestart`` started for this workdir if there is one, else a new one."""

    def __init__(self, selector: selectors.BaseSelector, on_exit: ExitCallback, workdir: Path, modules: list[str]):
        self._selector = selector
        self._on_exit = on_exit
        self._pids: dict[str, int] = {}
        self._pending: dict[str, int] = {}  # signals asked for before the pid was known
        self._signalled: set[str] = set()
        self._live: set[str] = set()
        self._buffer = b""
        self.dead = False
        self._process, self._sock = _adopt(workdir, modules) or _spawn_zygote(workdir, modules)
        selector.register(self._sock, selectors.EVENT_READ, self._on_readable)

    @property
    def pid(self) -> int:
        """The zygote's pid (every step process is its child)."""
        return self._process.pid

    def start(self, job: str, spec: dict[str, Any], stdout: int, stderr: int) -> None:
        payload = (json.dumps({"op": "fork", "id": job, "spec": spec}) + "\n").encode("utf-8")
        sent = socket.send_fds(self._sock, [payload], [stdout, stderr])
        if sent < len(payload):
            self._sock.sendall(payload[sent:])
        self._live.add(job)

    def signal_job(self, job: str, sig: int) -> None:
        if job not in self._live:
            return
        self._signalled.add(job)
        pid = self._pids.get(job)
        if pid is None:
            self._pending[job] = sig
        else:
            _signal_group(pid, sig)

    def _on_readable(self) -> None:
        data = self._sock.recv(65536)
        if not data:  # the zygote died: every step it ran is lost
            self.dead = True
            self._selector.unregister(self._sock)
            for job in sorted(self._live):
                self._live.discard(job)
                self._on_exit(job, None)
            return
        self._buffer += data
        while b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            message = json.loads(line)
            job = message["id"]
            if "pid" in message:
                self._pids[job] = message["pid"]
                if job in self._pending:
                    _signal_group(message["pid"], self._pending.pop(job))
            else:
                pid = self._pids.pop(job, None)
                if job in self._signalled and pid is not None:  # finish off what the step left running
                    _signal_group(pid, signal.SIGKILL)
                self._live.discard(job)
                self._on_exit(job, os.waitstatus_to_exitcode(message["status"]))

    def close(self) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(self._sock)
        self._sock.close()  # EOF: the zygote kills whatever still runs and exits
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


class SpawnPool(ProcessPool):
    """Runs each step in a fresh interpreter (``python -m jupyter_pipelines.engine.runtime SPEC``): no fork needed."""

    def __init__(self, selector: selectors.BaseSelector, on_exit: ExitCallback, workdir: Path, spec_dir: Path):
        self._selector = selector
        self._on_exit = on_exit
        self._workdir = workdir
        self._spec_dir = spec_dir
        self._processes: dict[str, subprocess.Popen[bytes]] = {}
        self._pidfds: dict[str, int] = {}
        self._signalled: set[str] = set()
        self.poll_interval = None if hasattr(os, "pidfd_open") else 0.02

    def start(self, job: str, spec: dict[str, Any], stdout: int, stderr: int) -> None:
        self._spec_dir.mkdir(parents=True, exist_ok=True)
        path = self._spec_dir / f"{job.replace('#', '.')}.json"
        path.write_text(json.dumps(spec), encoding="utf-8")
        process = subprocess.Popen(  # the runtime makes stdout line-buffered itself
            [sys.executable, "-m", "jupyter_pipelines.engine.runtime", str(path)],
            cwd=self._workdir,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
        self._processes[job] = process
        if self.poll_interval is None:
            fd = os.pidfd_open(process.pid)
            self._pidfds[job] = fd
            self._selector.register(fd, selectors.EVENT_READ, lambda: self._reap(job))

    def signal_job(self, job: str, sig: int) -> None:
        process = self._processes.get(job)
        if process is not None and process.returncode is None:
            self._signalled.add(job)
            _signal_group(process.pid, sig)

    def _reap(self, job: str) -> None:
        process = self._processes.pop(job, None)
        if process is None:  # reaped already earlier in the same select batch
            return
        code = process.wait()
        fd = self._pidfds.pop(job, None)
        if fd is not None:
            self._selector.unregister(fd)
            os.close(fd)
        if job in self._signalled:
            _signal_group(process.pid, signal.SIGKILL)
        self._on_exit(job, code)

    def poll(self) -> None:
        for job, process in list(self._processes.items()):
            if job not in self._pidfds and process.poll() is not None:
                self._reap(job)

    def close(self) -> None:
        for job, process in list(self._processes.items()):
            _signal_group(process.pid, signal.SIGKILL)
            process.wait()
            fd = self._pidfds.pop(job, None)
            if fd is not None:
                with contextlib.suppress(KeyError, ValueError):
                    self._selector.unregister(fd)
                os.close(fd)
        self._processes.clear()


# --- kernel executor -------------------------------------------------------------------------------------------

Sink = Callable[[str, str], None]


class _LineWriter(io.TextIOBase):
    """A text stream that hands complete lines (and whatever is left on flush) to ``sink(stream, text)``."""

    def __init__(self, stream: str, sink: Sink) -> None:
        self._stream = stream
        self._sink = sink
        self._pending = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._pending += text
        if "\n" in self._pending:
            head, _, self._pending = self._pending.rpartition("\n")
            self._sink(self._stream, head + "\n")
        return len(text)

    def flush(self) -> None:
        if self._pending:
            text, self._pending = self._pending, ""
            self._sink(self._stream, text)


@contextlib.contextmanager
def _environment(env: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run_in_kernel(
    spec: dict[str, Any], namespace: dict[str, Any], sink: Sink, interrupter: ThreadInterrupter | None = None
) -> dict[str, Any]:
    """Run a cell step in the live namespace on this thread, stdout/stderr captured line by line into ``sink``.

    ``interrupter`` (made on this thread) may stop it from another one: the result then fails with its reason."""
    from . import runtime

    out, err = _LineWriter("stdout", sink), _LineWriter("stderr", sink)
    try:
        try:
            with (
                contextlib.redirect_stdout(out),
                contextlib.redirect_stderr(err),
                _environment(spec.get("env", {})),
                interrupter or contextlib.nullcontext(),  # innermost: only the step itself is ever interrupted
            ):
                result = runtime.run_cell(spec, namespace)
        except StepInterrupted:
            assert interrupter is not None and interrupter.reason is not None
            result = runtime.new_result()
            result["error"] = interrupter.reason
    finally:
        out.flush()
        err.flush()
    if result["error"]:
        sink("stderr", result["error"].rstrip("\n") + "\n")
    return result
