"""A real JupyterLab for browser tests and the widget benchmark: the server, Debian's chromium, and a page.

``LabServer`` starts ``jupyter lab`` on 127.0.0.1 with a token in a temporary root (its own config, data and
runtime dirs, so nothing of the user's leaks in). ``LabPage`` opens a notebook there and runs its cells through
JupyterLab's own commands (the app is exposed as ``window.jupyterapp``), then reads the widget's DOM.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = os.environ.get("JUPYTER_PIPELINES_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SETUP_HINT = "run `bash scripts/setup-browser.sh` (installs chromium, fonts, graphviz and Playwright)"


class BrowserMissing(RuntimeError):
    pass


def check_browser() -> None:
    """Raise a clear error when chromium or Playwright is missing (browser tests fail, never skip)."""
    if shutil.which(CHROMIUM) is None and not Path(CHROMIUM).is_file():
        raise BrowserMissing(f"chromium not found at {CHROMIUM}: {SETUP_HINT}")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as error:
        raise BrowserMissing(f"Python Playwright is not installed ({error}): {SETUP_HINT}") from error
    extension = Path(sys.prefix) / "share" / "jupyter" / "labextensions" / "jupyter-pipelines" / "package.json"
    if not extension.is_file():
        raise BrowserMissing(
            f"the jupyter-pipelines JupyterLab extension is not installed ({extension} is missing): "
            "run `bash scripts/setup.sh` (pip install -e . builds and installs it)"
        )
    built = REPO / "jupyter_pipelines" / "labextension" / "package.json"
    if built.is_file() and built.read_bytes() != extension.read_bytes():
        raise BrowserMissing(
            f"the installed JupyterLab extension ({extension.parent}) is not the one built in {built.parent}: "
            "run `.venv/bin/pip install -e .` (it copies the build; `jlpm build` in labextension/ alone does not)"
        )


def expect(locator: Any) -> Any:
    """Playwright's retrying assertions, imported late so a missing Playwright fails with the setup hint."""
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LabServer:
    root: Path
    port: int
    token: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}?token={self.token}"

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    @classmethod
    def start(cls, root: Path, home: Path, extra_env: Mapping[str, str | None] | None = None) -> LabServer:
        """Start the server; ``extra_env`` reaches it and its kernels (e.g. a local AWS endpoint's settings; a
        None value removes that variable)."""
        port, token = free_port(), secrets.token_hex(16)
        env = dict(os.environ)
        for name, value in (extra_env or {}).items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        for name, sub in (
            ("JUPYTER_CONFIG_DIR", "config"),
            ("JUPYTER_DATA_DIR", "data"),
            ("JUPYTER_RUNTIME_DIR", "runtime"),
            ("IPYTHONDIR", "ipython"),
        ):
            env[name] = str(home / sub)
        env["PYTHONUNBUFFERED"] = "1"
        home.mkdir(parents=True, exist_ok=True)
        notification = home / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
        notification.parent.mkdir(parents=True, exist_ok=True)
        notification.write_text('{"fetchNews": "false", "checkForUpdates": false}')
        log_path = home / "jupyter-lab.log"
        command = [
            sys.executable,
            "-m",
            "jupyterlab",
            "--allow-root",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}",
            "--LabApp.expose_app_in_browser=True",
            f"--LabApp.user_settings_dir={home / 'settings'}",
            f"--LabApp.workspaces_dir={home / 'workspaces'}",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ]
        with log_path.open("wb") as log:
            process = subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
        server = cls(root, port, token, process, log_path)
        server._wait_ready()
        return server

    def _wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"jupyter lab exited ({self.process.returncode}):\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url("api/status"), timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"jupyter lab not ready after {timeout}s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def launch_browser(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


RUN_CELL_JS = """
async (index) => {
  const app = window.jupyterapp;
  const panel = app.shell.currentWidget;
  await panel.sessionContext.ready;
  panel.content.activeCellIndex = index;
  await app.commands.execute('notebook:run-cell');
  const cell = panel.content.widgets[index];
  return cell.model.sharedModel.outputs;
}
"""

WIDGET = ".jp-Pipelines"


class LabPage:
    """A JupyterLab page with one notebook open."""

    def __init__(self, page: Any, server: LabServer) -> None:
        self.page = page
        self.server = server

    def open_notebook(self, name: str, timeout: float = 60_000, workspace: str | None = None) -> None:
        """Open ``name``; a test module with its own ``workspace`` leaves the others' restored layout alone."""
        prefix = f"lab/workspaces/{workspace}" if workspace else "lab"
        self.page.goto(self.server.url(f"{prefix}/tree/{name}"))
        self.page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=timeout)
        self.page.wait_for_function(
            """() => {
                const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
                const kernel = panel && panel.sessionContext && panel.sessionContext.session
                    && panel.sessionContext.session.kernel;
                return kernel && kernel.connectionStatus === 'connected' && kernel.status === 'idle';
            }""",
            timeout=timeout,
        )

    def run_cell(self, index: int, *, expect_error: bool = False) -> list[dict[str, Any]]:
        """Run cell ``index`` through JupyterLab's command, wait for it, return its outputs (nbformat dicts)."""
        outputs: list[dict[str, Any]] = self.page.evaluate(RUN_CELL_JS, index)
        errors = [o for o in outputs if o.get("output_type") == "error"]
        if errors and not expect_error:
            text = "\n".join(f"{e.get('ename')}: {e.get('evalue')}" for e in errors)
            raise AssertionError(f"cell {index} failed: {text}")
        return outputs

    def run_cell_code(self, code: str) -> list[dict[str, Any]]:
        """Put ``code`` into the last cell (added if the notebook has only one) and run it."""
        outputs: list[dict[str, Any]] = self.page.evaluate(
            """async (code) => {
                const app = window.jupyterapp;
                const panel = app.shell.currentWidget;
                const notebook = panel.content;
                if (notebook.widgets.length < 2) {
                    notebook.activeCellIndex = 0;
                    await app.commands.execute('notebook:insert-cell-below');
                }
                const index = notebook.widgets.length - 1;
                notebook.widgets[index].model.sharedModel.setSource(code);
                notebook.activeCellIndex = index;
                await app.commands.execute('notebook:run-cell');
                return notebook.widgets[index].model.sharedModel.outputs;
            }""",
            code,
        )
        errors = [o for o in outputs if o.get("output_type") == "error"]
        if errors:
            raise AssertionError(f"code failed: {errors[0].get('ename')}: {errors[0].get('evalue')}")
        return outputs

    def start_cell(self, index: int) -> None:
        """Start cell ``index`` without waiting for it to finish."""
        self.page.evaluate(
            """(index) => {
                const app = window.jupyterapp;
                app.shell.currentWidget.content.activeCellIndex = index;
                void app.commands.execute('notebook:run-cell');
            }""",
            index,
        )

    def set_cell_source(self, index: int, source: str) -> None:
        self.page.evaluate(
            """([index, source]) => window.jupyterapp.shell.currentWidget.content.widgets[index]
                .model.sharedModel.setSource(source)""",
            [index, source],
        )

    def interrupt_kernel(self) -> None:
        self.page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.interrupt()")

    def wait_kernel_idle(self, timeout: float = 60_000) -> None:
        self.page.wait_for_function(
            "() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle'",
            timeout=timeout,
        )

    def node(self, name: str) -> Any:
        return self.page.locator(f'{WIDGET} .jp-Pipelines-node[data-kind="step"][data-name="{name}"]')

    def statuses(self) -> dict[str, str]:
        result: dict[str, str] = self.page.evaluate(
            """(sel) => Object.fromEntries([...document.querySelectorAll(sel)]
                .map(n => [n.dataset.name, n.dataset.status]))""",
            f'{WIDGET} .jp-Pipelines-node[data-kind="step"]',
        )
        return result

    def wait_statuses(self, expected: dict[str, str], timeout: float = 60_000) -> None:
        try:
            self.page.wait_for_function(
                """([sel, expected]) => Object.entries(expected).every(([name, status]) => {
                    const node = document.querySelector(`${sel}[data-name="${name}"]`);
                    return node !== null && node.dataset.status === status;
                })""",
                arg=[f'{WIDGET} .jp-Pipelines-node[data-kind="step"]', expected],
                timeout=timeout,
            )
        except Exception as error:
            raise AssertionError(f"expected statuses {expected}, have {self.statuses()}") from error

    def wait_not_running(self, timeout: float = 30_000) -> None:
        """Wait until the widget says no run is in progress (the run's last event arrived)."""
        self.page.wait_for_function(
            "() => [...document.querySelectorAll('.jp-Pipelines')].every(w => w.dataset.running === 'false')",
            timeout=timeout,
        )

    def button(self, label: str) -> Any:
        return self.page.locator(".jp-Pipelines-widget button.widget-button").filter(has_text=label).first

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=False)
        return path

    def screenshot_widget(self, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.locator(".jp-Pipelines-widget").first.screenshot(path=str(path))
        return path


def is_ours(error: str) -> bool:
    """A page error raised by this extension (JupyterLab's own noise is not ours to fail on)."""
    return "Pipelines" in error or "jupyter-pipelines" in error


@contextlib.contextmanager
def opened_notebook(
    server: LabServer,
    browser: Any,
    notebook: str,
    *,
    workspace: str | None = None,
    viewport: tuple[int, int] = (1300, 900),
    screenshot: str | None = None,
    page_errors: Any = is_ours,
) -> Iterator[LabPage]:
    """A fresh browser context with ``notebook`` open in JupyterLab; on leaving, a last screenshot (if named) and
    an assertion that the page raised no error ``page_errors`` counts."""
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    lab = LabPage(page, server)
    if workspace is None:
        lab.open_notebook(notebook)
    else:
        lab.open_notebook(notebook, workspace=workspace)
    try:
        yield lab
    finally:
        if screenshot:
            lab.screenshot(screenshot)
        context.close()
    assert not [e for e in errors if page_errors(e)], errors
