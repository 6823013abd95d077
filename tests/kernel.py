"""A real IPython kernel driven over ZMQ, as JupyterLab drives it: execute requests may carry a cell id.

nbclient sends no cell ids, so the tests of "renaming a step in the same cell replaces it" talk to the kernel
here, with ``metadata.cellId`` set exactly as JupyterLab sets it.
"""

from __future__ import annotations

import queue
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_client.manager import KernelManager

ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass
class Reply:
    status: str
    stdout: str = ""
    stderr: str = ""
    results: list[str] = field(default_factory=list)  # text/plain of execute_result and display_data
    error: str = ""  # ename: evalue + traceback text, as the user sees it

    @property
    def text(self) -> str:
        return "\n".join([self.stdout, self.stderr, *self.results, self.error])


class Kernel:
    def __init__(self, cwd: Path) -> None:
        self.manager = KernelManager(kernel_name="python3")
        self.manager.start_kernel(cwd=str(cwd))
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)

    def execute(self, code: str, *, cell_id: str | None = None, timeout: float = 120) -> Reply:
        metadata: dict[str, Any] = {"cellId": cell_id} if cell_id else {}
        content = {"code": code, "silent": False, "store_history": True, "user_expressions": {}, "allow_stdin": False}
        message = self.client.session.msg("execute_request", content, metadata=metadata)
        self.client.shell_channel.send(message)
        msg_id = message["header"]["msg_id"]
        reply = Reply(status="")
        deadline = time.monotonic() + timeout
        while True:
            try:
                msg = self.client.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty as error:
                raise TimeoutError(f"no reply to {code[:40]!r} in {timeout}s") from error
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, body = msg["msg_type"], msg["content"]
            if kind == "stream":
                if body["name"] == "stdout":
                    reply.stdout += body["text"]
                else:
                    reply.stderr += body["text"]
            elif kind in ("execute_result", "display_data"):
                reply.results.append(body["data"].get("text/plain", ""))
            elif kind == "error":
                text = f"{body['ename']}: {body['evalue']}\n" + "\n".join(body["traceback"])
                reply.error = ANSI.sub("", text)
            elif kind == "status" and body["execution_state"] == "idle":
                break
        shell = self.client.get_shell_msg(timeout=10)
        reply.status = shell["content"]["status"]
        for payload in shell["content"].get("payload", []):  # the pager (e.g. `%%step?`) answers here
            if payload.get("source") == "page":
                reply.results.append(ANSI.sub("", payload["data"].get("text/plain", "")))
        return reply

    def interrupt(self) -> None:
        self.manager.interrupt_kernel()

    def close(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)
