"""The zygote: a single-threaded worker that imports a run's modules once, then forks one child per step.

Forking a warm interpreter costs about a millisecond; starting a fresh one (and importing numpy again) costs
hundreds. The kernel itself is never forked (it has threads); this process has none.

Started as ``python -m jupyter_pipelines.engine.zygote FD MODULES_JSON`` with FD one end of a Unix stream socket,
or *prestarted* as ``python -m jupyter_pipelines.engine.zygote FD`` before the run knows its modules (see
``executors.prestart``): it then imports only what every step needs and waits for a ``preload`` message before it
forks anything, so an engine that never adopts it costs nothing but the wait (EOF ends it).
Protocol, one JSON object per line:

- engine -> zygote: ``{"op": "preload", "modules": [...]}`` first (prestarted zygote only; a later one discards
  the spare so the next step sees the new modules too);
- engine -> zygote: ``{"op": "fork", "id": ID, "spec": {...}}`` with two file descriptors attached (the write
  ends of the step's stdout and stderr pipes, sent with ``SCM_RIGHTS`` in that order);
- zygote -> engine: ``{"id": ID, "pid": PID}`` once forked, ``{"id": ID, "status": WAIT_STATUS}`` once reaped.

Each child calls ``os.setsid()`` (so killing its process group also kills what the step started), points fds 1
and 2 at the pipes and runs the step runtime. The child is forked *ahead* of its request (a "spare" that has
already detached and warmed up, see ``runtime.warm_up``) so a step does not wait for the fork or for its
copy-on-write page faults; the next spare is forked while the step runs. When the engine goes away (EOF) every
child's group is killed. Stdlib-only, Python 3.8 syntax.
"""

from __future__ import annotations

import array
import contextlib
import errno
import gc
import importlib
import json
import os
import select
import signal
import socket
import sys
import traceback
from collections import deque

from jupyter_pipelines.engine import runtime

_MAX_FDS = 64


def preload(modules: list) -> None:
    """Import what the prelude imports, so every forked step starts warm; failures are the step's business."""
    for name in ["cloudpickle"] + list(modules):
        try:
            importlib.import_module(name)
        except BaseException:  # noqa: S112 - an import error will surface in the step that needs the module
            continue


def freeze() -> None:
    gc.collect()
    gc.freeze()  # children then do not dirty (copy) every preloaded object's page when their gc runs


def _recv(sock: socket.socket, fds: deque) -> bytes:
    data, ancillary, _flags, _address = sock.recvmsg(65536, socket.CMSG_SPACE(_MAX_FDS * 4))
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            numbers = array.array("i")
            numbers.frombytes(payload[: len(payload) - len(payload) % numbers.itemsize])
            fds.extend(numbers)
    return data


def _send(sock: socket.socket, message: dict) -> None:
    sock.sendall((json.dumps(message) + "\n").encode("utf-8"))


class _Zygote:
    """The serving loop. One forked *spare* child always waits, already detached and warmed up, so a request
    only hands it the spec and pipes; the next spare is forked while that step runs (off the critical path)."""

    def __init__(self, sock: socket.socket, buffer: bytes = b"", fds: deque | None = None) -> None:
        self.sock = sock
        self.buffer = buffer  # received, not yet handled (what came with a prestarted zygote's preload)
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        self.children = {}  # type: dict  # pid -> job id
        self.fds = deque() if fds is None else fds  # type: deque
        self.spare = None  # type: object  # (pid, socket to hand it a request)

    def serve(self) -> None:
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the engine decides when steps stop
        buffer, self.buffer = self.buffer, b""
        try:
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                self._handle(line)
            while True:
                if self.spare is None:
                    self.spare = self._fork_spare()
                ready, _, _ = select.select([self.sock.fileno(), self.wake_r], [], [])
                if self.wake_r in ready:
                    _drain(self.wake_r)
                if self.sock.fileno() in ready:
                    data = _recv(self.sock, self.fds)
                    if not data:
                        return
                    buffer += data
                    while b"\n" in buffer:
                        line, buffer = buffer.split(b"\n", 1)
                        self._handle(line)
                self._reap()
        finally:
            self._kill_all()

    def _handle(self, line: bytes) -> None:
        message = json.loads(line)
        if message.get("op") == "preload":  # a late one: the spare forked before it would miss the modules
            preload(message.get("modules") or [])
            freeze()
            if self.spare is not None:
                self.spare[1].close()  # type: ignore[index]  # it sees EOF and exits; reaped as a non-job
                self.spare = None
        else:
            self._start(line, message["id"])

    def _start(self, line: bytes, job: str) -> None:
        out_fd, err_fd = self.fds.popleft(), self.fds.popleft()
        pid, channel = self.spare if self.spare is not None else self._fork_spare()  # type: ignore[misc]
        self.spare = None
        with contextlib.suppress(OSError):  # a dead spare's exit is reaped (and reported) like any child's
            _send_with_fds(channel, line + b"\n", [out_fd, err_fd])
        channel.close()
        os.close(out_fd)
        os.close(err_fd)
        self.children[pid] = job
        _send(self.sock, {"id": job, "pid": pid})

    def _fork_spare(self):  # type: ignore[no-untyped-def]
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        pid = os.fork()
        if pid == 0:
            ours.close()
            self._become_step(theirs)
        theirs.close()
        return pid, ours

    def _become_step(self, channel: socket.socket) -> None:
        """In the spare child: detach, warm up, wait for a request, run that step, never return."""
        code = 70
        try:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            self.sock.close()
            if self.spare is not None:
                self.spare[1].close()  # type: ignore[index]
            for fd in [self.wake_r, self.wake_w] + list(self.fds):
                os.close(fd)
            os.setsid()
            runtime.warm_up()
            fds = deque()  # type: deque
            buffer = b""
            while b"\n" not in buffer:
                data = _recv(channel, fds)
                if not data:  # the zygote is gone (or shutting down): nothing to run
                    code = 0
                    return
                buffer += data
            channel.close()
            request = json.loads(buffer.split(b"\n", 1)[0])
            out_fd, err_fd = fds.popleft(), fds.popleft()
            os.dup2(out_fd, 1)
            os.dup2(err_fd, 2)
            os.close(out_fd)
            os.close(err_fd)
            code = runtime.run_in_process(request["spec"])
        except BaseException:
            traceback.print_exc()
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if self.spare is not None and self.spare[0] == pid:  # type: ignore[index]
                self.spare[1].close()  # type: ignore[index]
                self.spare = None
            job = self.children.pop(pid, None)
            if job is not None:
                _send(self.sock, {"id": job, "status": status})

    def _kill_all(self) -> None:
        pids = list(self.children)
        if self.spare is not None:
            pids.append(self.spare[0])  # type: ignore[index]
        for pid in pids:
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
            with contextlib.suppress(OSError):  # a spare may not have called setsid yet
                os.kill(pid, signal.SIGKILL)
        for pid in pids:  # reap them: in a container nobody else might
            with contextlib.suppress(OSError):
                os.waitpid(pid, 0)


def _send_with_fds(sock: socket.socket, payload: bytes, fds: list) -> None:
    sent = sock.sendmsg([payload], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
    if sent < len(payload):
        sock.sendall(payload[sent:])


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except OSError as error:
        if error.errno not in (errno.EAGAIN, errno.EWOULDBLOCK):
            raise


def _await_modules(sock: socket.socket, fds: deque):  # type: ignore[no-untyped-def]
    """A prestarted zygote's first message: ``(modules, what was received after it)``, or None at EOF.

    Anything but a ``preload`` first (an engine that does not know the op) means no modules: it is left unread."""
    buffer = b""
    while b"\n" not in buffer:
        data = _recv(sock, fds)
        if not data:
            return None
        buffer += data
    line, rest = buffer.split(b"\n", 1)
    message = json.loads(line)
    if message.get("op") != "preload":
        return [], buffer
    return message.get("modules") or [], rest


def main(argv=None) -> None:  # type: ignore[no-untyped-def]
    args = sys.argv[1:] if argv is None else argv
    sock = socket.socket(fileno=int(args[0]))
    fds = deque()  # type: deque
    buffer = b""
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        if len(args) > 1:
            modules = json.loads(args[1])
        else:  # prestarted: warm up what every run needs while the engine finds out which modules this one needs
            preload([])
            received = _await_modules(sock, fds)
            if received is None:  # never adopted: the engine (or its whole process) is gone
                os._exit(0)
            modules, buffer = received
        preload(modules)
        freeze()
        _Zygote(sock, buffer, fds).serve()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # skip interpreter teardown: the engine waits for this exit


runtime._INTERNAL_FILES.add(os.path.abspath(__file__))

if __name__ == "__main__":
    main()
