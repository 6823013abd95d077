"""``%pipeline config`` in a real JupyterLab: the settings go into the open notebook's metadata through the
labextension (the kernel never writes the file under it), are saved with the notebook, and the CLI reads them.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import nbformat
import pytest

from ..notebooks import write_notebook
from .lab import LabPage, LabServer, opened_notebook

pytestmark = pytest.mark.browser

NOTEBOOK = "configured.ipynb"
WORKSPACE = "settings-e2e"  # not the default one, which the widget tests' page restores
ROLE = "arn:aws:iam::123456789012:role/R"
CONFIG = f"%pipeline config --role-arn {ROLE} --bucket bucket-one --region us-east-1"
CELLS = ["%load_ext jupyter_pipelines", "%%step one\nx = 1", CONFIG, "%pipeline config"]
EXPECTED = {"role_arn": ROLE, "bucket": "bucket-one", "region": "us-east-1"}

MODEL_JS = """() => {
    const model = window.jupyterapp.shell.currentWidget.context.model;
    return { dirty: model.dirty, settings: model.getMetadata('jupyter_pipelines') ?? null };
}"""

# The extension asked the kernel for its settings comms when the page opened; once it has joined them all, its
# answer is on its way ahead of any cell this test runs next.
JOINED_JS = """async () => {
    const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
    for (let i = 0; i < 100; i++) {
        const reply = await kernel.requestCommInfo({ target_name: 'jupyter_pipelines.settings' });
        const ids = Object.keys(reply.content.comms);
        if (ids.length > 0 && ids.every(id => kernel.hasComm(id))) {
            return true;
        }
        await new Promise(resolve => setTimeout(resolve, 100));
    }
    return false;
}"""


@pytest.fixture(scope="module")
def lab(lab_server: LabServer, browser: Any) -> Iterator[LabPage]:
    write_notebook(lab_server.root / NOTEBOOK, CELLS)
    with opened_notebook(
        lab_server,
        browser,
        NOTEBOOK,
        workspace=WORKSPACE,
        viewport=(1200, 900),
        screenshot="settings-last",
        page_errors=lambda _error: True,
    ) as lab:
        yield lab


def _text(outputs: list[dict[str, Any]]) -> str:
    return "".join(str(o.get("text", "")) for o in outputs)


def test_config_goes_into_the_notebook_metadata_and_is_saved(lab: LabPage, lab_server: LabServer) -> None:
    path = lab_server.root / NOTEBOOK
    lab.run_cell(0)
    lab.run_cell(1)
    on_disk = path.read_bytes()
    shown = _text(lab.run_cell(2))
    assert "bucket: bucket-one" in shown and "by JupyterLab" in shown, shown
    lab.page.wait_for_function("() => window.jupyterapp.shell.currentWidget.context.model.dirty === true")
    model = lab.page.evaluate(MODEL_JS)
    assert model["settings"] == EXPECTED
    assert path.read_bytes() == on_disk  # the kernel did not write the file under JupyterLab

    lab.page.locator(".jp-NotebookPanel .jp-Notebook").first.click()  # focus the notebook, then save as a user does
    lab.page.keyboard.press("Control+s")
    lab.page.wait_for_function("() => window.jupyterapp.shell.currentWidget.context.model.dirty === false")
    saved = nbformat.read(str(path), as_version=4)
    assert saved.metadata["jupyter_pipelines"] == EXPECTED
    assert saved.metadata["kernelspec"]["name"] == "python3"

    exported = subprocess.run(
        [sys.executable, "-m", "jupyter_pipelines", "export", str(path), "-o", "x.json"],
        capture_output=True,
        text=True,
        cwd=lab_server.root,
    )
    assert exported.returncode == 0, exported.stderr
    assert (lab_server.root / "x.json").is_file()


def test_the_kernel_sees_the_notebooks_unsaved_settings(lab: LabPage, lab_server: LabServer) -> None:
    """An edit of the metadata in JupyterLab (e.g. the metadata editor) reaches the kernel before any save."""
    lab.page.evaluate(
        """() => window.jupyterapp.shell.currentWidget.context.model.setMetadata(
            'jupyter_pipelines', {...window.jupyterapp.shell.currentWidget.context.model
                .getMetadata('jupyter_pipelines'), bucket: 'bucket-two'})"""
    )
    shown = _text(lab.run_cell(3))  # %pipeline config, no arguments
    assert "bucket: bucket-two" in shown and f"role_arn: {ROLE}" in shown, shown
    assert nbformat.read(str(lab_server.root / NOTEBOOK), as_version=4).metadata["jupyter_pipelines"] == EXPECTED


def test_a_reloaded_page_joins_the_kernels_comm(lab: LabPage, lab_server: LabServer) -> None:
    """After a page reload the kernel (extension already loaded) still reaches the notebook through the new page."""
    lab.page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    lab.page.wait_for_function("() => window.jupyterapp.shell.currentWidget.context.model.dirty === false")
    lab.page.reload()
    lab.open_notebook(NOTEBOOK, workspace=WORKSPACE)
    lab.set_cell_source(3, "%pipeline config --prefix team/churn")
    assert lab.page.evaluate(JOINED_JS)  # the new page has joined the kernel's comm (so its answer is sent first)
    shown = _text(lab.run_cell(3))
    assert "prefix: team/churn" in shown and "bucket: bucket-two" in shown and "by JupyterLab" in shown, shown
    model = lab.page.evaluate(MODEL_JS)
    assert model["settings"] == {**EXPECTED, "bucket": "bucket-two", "prefix": "team/churn"}


RUN_ALL_NOTEBOOK = "run_all.ipynb"
ALL_RAN_JS = """() => {
    const panel = window.jupyterapp.shell.currentWidget;
    const cells = panel.content.model.cells;
    for (let i = 0; i < cells.length; i++) {
        if (cells.get(i).type === 'code' && !cells.get(i).executionCount) { return false; }
    }
    return panel.sessionContext.session.kernel.status === 'idle';
}"""


def test_run_all_puts_the_settings_in_the_notebook_without_touching_the_file(
    lab_server: LabServer, browser: Any
) -> None:
    """ "Run All" queues every cell before the extension's answer to ``%load_ext`` can reach the kernel, so the
    config cell runs unanswered: the kernel sends the settings to JupyterLab and leaves the file alone (writing it
    would make JupyterLab say the file changed on disk at the next save)."""
    path = write_notebook(lab_server.root / RUN_ALL_NOTEBOOK, ["%load_ext jupyter_pipelines", CONFIG, CELLS[1]])
    on_disk = path.read_bytes()
    with opened_notebook(lab_server, browser, RUN_ALL_NOTEBOOK, workspace="settings-run-all") as lab:
        lab.page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
        lab.page.wait_for_function(ALL_RAN_JS, timeout=60_000)
        outputs = lab.page.evaluate(
            "() => window.jupyterapp.shell.currentWidget.content.model.cells.get(1).toJSON().outputs"
        )
        assert "sent to the notebook's frontend" in _text(outputs), outputs
        lab.page.wait_for_function(
            "() => window.jupyterapp.shell.currentWidget.context.model.getMetadata('jupyter_pipelines')?.bucket"
            " === 'bucket-one'"
        )
        assert path.read_bytes() == on_disk  # the kernel did not write the file under JupyterLab
        lab.page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
        lab.page.wait_for_function("() => window.jupyterapp.shell.currentWidget.context.model.dirty === false")
        assert lab.page.locator(".jp-Dialog").count() == 0  # no "File Changed" question
        assert nbformat.read(str(path), as_version=4).metadata["jupyter_pipelines"] == EXPECTED
