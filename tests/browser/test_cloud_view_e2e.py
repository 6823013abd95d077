"""How a cloud run looks in the browser, driven by the events the SageMaker follow loop publishes.

The kernel's widget is fed a cloud run's events by hand (``jupyter_pipelines.current().handle_event``), so this
checks the frontend's drawing without AWS: the run bar's badge and console link, statuses on the same graph, a
step's console link in its node menu and log pane (new tab, ``rel="noopener noreferrer"``), the run's note as text,
Stop enabled while the cloud run lasts. A ``javascript:`` URL pushed straight into the synced state (past the
kernel's own filter) never becomes a link. test_promote_e2e.py drives the real promotion against moto.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from ..notebooks import write_notebook
from .lab import LabPage, LabServer, expect, opened_notebook

pytestmark = pytest.mark.browser

NOTEBOOK = "cloud-view.ipynb"
WORKSPACE = "cloud-view-e2e"
ARN = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/cloud-view/execution/exec42"
CONSOLE = (
    "https://us-east-1.console.aws.amazon.com/sagemaker/home?region=us-east-1#/pipelines/cloud-view/executions/x"
)
JOB = "https://us-east-1.console.aws.amazon.com/sagemaker/home?region=us-east-1#/processing-jobs/prepare-job"
NOTE = "<b>step statuses</b> are late: <img src=x onerror=window.__pipelinesXss=1>"
CELLS = [
    "%load_ext jupyter_pipelines",
    "%pipeline show",
    "%%step prepare\nrows = [1, 2, 3]",
    "%%step total\nresult = sum(rows)",
    "# scratch: run_cell_code puts its code here",
]
STEP_CELLS = 4
EVENTS = """
import jupyter_pipelines
from jupyter_pipelines.engine.events import RunStarted, StepStarted, StepFinished, RunNote, RunFinished
w = jupyter_pipelines.current()
ARN = {arn!r}
steps = ("prepare", "total")
"""


@pytest.fixture(scope="module")
def lab(lab_server: LabServer, browser: Any) -> Iterator[LabPage]:
    write_notebook(lab_server.root / NOTEBOOK, CELLS)
    with opened_notebook(lab_server, browser, NOTEBOOK, workspace=WORKSPACE, viewport=(1300, 900)) as lab:
        yield lab


def test_a_cloud_run_in_the_same_graph(lab: LabPage) -> None:
    for index in range(STEP_CELLS):
        lab.run_cell(index)
    lab.wait_statuses({"prepare": "cached", "total": "succeeded"}, timeout=60_000)  # upstream from the cache
    lab.run_cell_code(
        EVENTS.format(arn=ARN)
        + f"w.handle_event(RunStarted(ARN, 'cloud-view', steps, location='sagemaker', url={CONSOLE!r}))\n"
        + f"w.handle_event(StepStarted(ARN, 'prepare', executor='sagemaker', url={JOB!r}))\n"
        + f"w.handle_event(RunNote(ARN, {NOTE!r}))\n"
    )
    run = lab.page.locator('.jp-Pipelines-run[data-location="sagemaker"]')
    expect(run).to_be_visible(timeout=10_000)
    expect(run.locator(".jp-Pipelines-runBadge")).to_have_text("SageMaker run")
    expect(run.locator(".jp-Pipelines-runDetail")).to_have_text("exec42 · running")
    link = run.locator("a.jp-Pipelines-runLink")
    assert link.get_attribute("href") == CONSOLE
    assert (link.get_attribute("target"), link.get_attribute("rel")) == ("_blank", "noopener noreferrer")
    expect(run.locator(".jp-Pipelines-runNote")).to_have_text(NOTE)  # text, not markup
    assert lab.page.locator(".jp-Pipelines-run img, .jp-Pipelines-run b").count() == 0
    assert lab.page.evaluate("window.__pipelinesXss") is None
    lab.wait_statuses({"prepare": "running", "total": "pending"})
    expect(lab.node("prepare").locator(".jp-Pipelines-nodeDetail")).to_have_text("cell · SageMaker processing")
    expect(lab.button("Stop")).to_be_enabled()
    expect(lab.button("Run")).to_be_disabled()

    lab.node("prepare").click()
    menu_link = lab.page.locator(".jp-Pipelines-menu a.jp-Pipelines-menuLink")
    expect(menu_link).to_be_visible()
    assert menu_link.get_attribute("href") == JOB
    assert (menu_link.get_attribute("target"), menu_link.get_attribute("rel")) == ("_blank", "noopener noreferrer")
    lab.screenshot_widget("cloud-view-menu")
    lab.page.locator(".jp-Pipelines-menu").get_by_role("menuitem", name="Show logs").click()
    logs_link = lab.page.locator(".jp-Pipelines-logsNote a.jp-Pipelines-logsLink")
    expect(logs_link).to_have_attribute("href", JOB)
    lab.node("total").click()  # no console page: no link item
    expect(lab.page.locator(".jp-Pipelines-menu")).to_be_visible()
    expect(menu_link).to_be_hidden()
    lab.page.keyboard.press("Escape")

    lab.run_cell_code(
        EVENTS.format(arn=ARN)
        + "w.handle_event(StepFinished(ARN, 'prepare', 'succeeded', 61.0))\n"
        + "w.handle_event(RunFinished(ARN, 'failed', 90.0))\n"
    )
    expect(run).to_have_attribute("data-status", "failed")
    lab.wait_statuses({"prepare": "succeeded", "total": "pending"})
    expect(lab.button("Stop")).to_be_disabled()
    expect(lab.page.locator(".jp-Pipelines-status")).to_have_text("SageMaker run exec42 failed in 90.0s")
    lab.screenshot_widget("cloud-view-finished")


def test_an_unsafe_url_in_the_synced_state_is_no_link(lab: LabPage) -> None:
    """The kernel drops such URLs (tests/test_ui_cloud.py); the frontend checks again, should one get through."""
    run = {"id": "x", "location": "sagemaker", "status": "running", "notes": [], "url": "javascript:alert(1)"}
    lab.run_cell_code(
        "import jupyter_pipelines\n"
        f"g = jupyter_pipelines.current().graph\ng.run = {json.dumps(run)}\n"
        "g.links = {'s_total': 'javascript:window.__pipelinesXss=1'}\n"
    )
    bar = lab.page.locator(".jp-Pipelines-run")
    expect(bar.locator(".jp-Pipelines-runDetail")).to_have_text("x · running")
    assert bar.locator("a").count() == 0
    lab.node("total").click()
    expect(lab.page.locator(".jp-Pipelines-menu")).to_be_visible()
    expect(lab.page.locator(".jp-Pipelines-menu a.jp-Pipelines-menuLink")).to_be_hidden()
    assert lab.page.locator('.jp-Pipelines a[href^="javascript"]').count() == 0
    lab.page.keyboard.press("Escape")
