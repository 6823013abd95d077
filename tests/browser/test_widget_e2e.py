"""The widget end to end: a real JupyterLab, Debian's chromium, a 4-step notebook built with the magics.

The tests share one notebook page and run in order: the graph appears and the cells' runs turn it green; Run from
the toolbar; click a node to rerun just that step; the log pane shows a step's output as text (no markup runs);
keyboard access; Stop on a long step. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from .lab import LabPage, LabServer, expect, opened_notebook
from .notebook import (
    FIRST_STEP_CELL,
    LONG_RUN_CELL,
    NEW_PARAMETER_RUN_CELL,
    STEPS,
    WIDGET_CELL,
    XSS,
    write_pipeline_notebook,
)

pytestmark = pytest.mark.browser

GREEN = dict.fromkeys(STEPS, "succeeded")
RECORD_STATUSES_JS = """
(sel) => {
  window.__pipelinesStatusLog = [];
  const observer = new MutationObserver(records => {
    for (const record of records) {
      const node = record.target;
      window.__pipelinesStatusLog.push([node.dataset.name, node.dataset.status]);
    }
  });
  document.querySelectorAll(sel).forEach(node =>
    observer.observe(node, { attributes: true, attributeFilter: ['data-status'] }));
  window.__pipelinesObserver = observer;
}
"""


@pytest.fixture(scope="module")
def lab(lab_server: LabServer, browser: Any) -> Iterator[LabPage]:
    write_pipeline_notebook(lab_server.root)
    with opened_notebook(
        lab_server, browser, "pipeline.ipynb", viewport=(1400, 1000), screenshot="widget-last"
    ) as lab:
        yield lab


def test_graph_grows_as_step_cells_run(lab: LabPage) -> None:
    lab.run_cell(0)
    lab.run_cell(WIDGET_CELL)
    lab.page.wait_for_selector(".jp-Pipelines-widget .jp-Pipelines-message", timeout=30_000)  # "No steps yet"
    lab.run_cell(FIRST_STEP_CELL - 1)  # %%parameters
    for index, name in enumerate(STEPS):
        lab.run_cell(FIRST_STEP_CELL + index)
        lab.wait_statuses({name: "succeeded"}, timeout=30_000)
        assert lab.page.locator('.jp-Pipelines .jp-Pipelines-node[data-kind="step"]').count() == index + 1
    # the last cell's run took its upstream from the cache
    lab.wait_statuses({"load": "cached", "double": "cached", "slow": "cached", "report": "succeeded"})
    assert lab.page.locator('.jp-Pipelines .jp-Pipelines-node[data-kind="parameter"]').count() == 2
    edge_titles = lab.page.locator(".jp-Pipelines-edge title").all_text_contents()
    assert "doubled" in edge_titles and "rows" in edge_titles  # edges show the names that flow, on hover
    legend = lab.page.locator(".jp-Pipelines-legend").inner_text()
    for label in ("pending", "running", "cached", "succeeded", "failed", "skipped", "condition false"):
        assert label in legend
    lab.screenshot_widget("widget-after-cells")


def test_run_button_reuses_the_cache(lab: LabPage) -> None:
    run = lab.button("Run")
    assert run.is_enabled()
    run.click()
    lab.wait_statuses(dict.fromkeys(STEPS, "cached"))
    lab.wait_not_running()
    expect(lab.button("Run")).to_be_enabled()
    expect(lab.button("Stop")).to_be_disabled()
    expect(lab.button("Promote")).to_be_enabled()  # it opens the form: test_promote_e2e.py
    assert "opens a form" in (lab.button("Promote").get_attribute("title") or "")


def test_a_run_turns_the_nodes_green(lab: LabPage) -> None:
    lab.run_cell(NEW_PARAMETER_RUN_CELL)  # %pipeline run -p rows=6: every step runs again
    lab.wait_statuses(GREEN)
    lab.wait_not_running()
    fill = lab.node("load").locator("rect").evaluate("r => getComputedStyle(r).fill")
    assert fill == "rgb(102, 187, 106)"  # green
    assert all("succeeded · " in (lab.node(name).text_content() or "") for name in STEPS)  # with durations
    rows = lab.page.locator('.jp-Pipelines .jp-Pipelines-node[data-kind="parameter"][data-name="rows"]')
    expect(rows).to_have_class(re.compile("jp-Pipelines-nodeOverridden"))  # the value this run started with
    assert rows.locator(".jp-Pipelines-nodeDetail").text_content() == "rows: int = 6"
    assert "declared rows: int = 5" in (rows.locator("title").text_content() or "")
    lab.screenshot_widget("widget-green")


def test_clicking_a_node_reruns_just_that_step(lab: LabPage) -> None:
    lab.page.evaluate(RECORD_STATUSES_JS, '.jp-Pipelines .jp-Pipelines-node[data-kind="step"]')
    lab.node("double").click()
    menu = lab.page.locator(".jp-Pipelines-menu")
    assert menu.is_visible()
    lab.screenshot_widget("widget-node-menu")
    menu.get_by_role("menuitem", name="Run this step").click()
    lab.page.wait_for_function(
        """() => {
            const seen = window.__pipelinesStatusLog.filter(([name]) => name === 'double').map(([, s]) => s);
            return seen.includes('running') && seen[seen.length - 1] === 'succeeded';
        }""",
        timeout=60_000,
    )
    lab.wait_not_running()
    # upstream came from the cache in this run; downstream was not part of it and keeps its status
    lab.wait_statuses({"load": "cached", "slow": "succeeded", "report": "succeeded"})
    changes: list[list[str]] = lab.page.evaluate("window.__pipelinesStatusLog")
    double = [status for name, status in changes if name == "double"]
    assert double[-2:] == ["running", "succeeded"], changes
    assert {name for name, _ in changes} <= {"load", "double"}, changes


def test_log_pane_shows_output_as_text(lab: LabPage) -> None:
    lab.node("double").click()
    lab.page.locator(".jp-Pipelines-menu").get_by_role("menuitem", name="Show logs").click()
    logs = lab.page.locator(".jp-Pipelines-logsText")
    lab.page.wait_for_function(
        "(xss) => (document.querySelector('.jp-Pipelines-logsText') || {}).textContent?.includes(xss)", arg=XSS
    )
    assert "doubled 5" in logs.inner_text()
    assert XSS in logs.inner_text()
    assert lab.page.locator(".jp-Pipelines img, .jp-Pipelines-logs img").count() == 0
    time.sleep(0.3)  # an onerror handler would have run by now
    assert lab.page.evaluate("window.__pipelinesXss") is None
    assert "double" in lab.page.locator(".jp-Pipelines-logsTitle").inner_text()
    lab.screenshot_widget("widget-logs")


def test_keyboard_opens_the_menu(lab: LabPage) -> None:
    lab.node("load").focus()
    lab.page.keyboard.press("Enter")
    menu = lab.page.locator(".jp-Pipelines-menu")
    assert menu.is_visible()
    focused = lab.page.evaluate("document.activeElement.textContent")
    assert focused == "Run this step"
    lab.page.keyboard.press("ArrowDown")
    lab.page.keyboard.press("ArrowDown")
    assert lab.page.evaluate("document.activeElement.textContent") == "Show logs"
    lab.page.keyboard.press("Enter")
    lab.page.wait_for_function(
        "() => document.querySelector('.jp-Pipelines-logs').dataset.step === 'load'", timeout=10_000
    )
    assert menu.is_hidden()
    assert "cached from run" in lab.page.locator(".jp-Pipelines-logsNote").inner_text()
    lab.node("report").focus()
    lab.page.keyboard.press("Enter")
    lab.page.keyboard.press("Escape")
    assert menu.is_hidden()
    assert lab.page.evaluate("document.activeElement.dataset.name") == "report"


def test_kernel_interrupt_stops_a_step_cell(lab: LabPage) -> None:
    parameters = FIRST_STEP_CELL - 1
    lab.set_cell_source(parameters, "%%parameters\nrows: int = 5\ndelay: float = 120")
    lab.run_cell(parameters)
    lab.start_cell(FIRST_STEP_CELL + STEPS.index("slow"))  # a %%step cell runs in the foreground
    lab.wait_statuses({"slow": "running"}, timeout=60_000)
    lab.interrupt_kernel()
    lab.wait_statuses({"slow": "cancelled"}, timeout=30_000)
    lab.wait_not_running()
    lab.wait_kernel_idle()
    lab.screenshot_widget("widget-interrupted")
    lab.set_cell_source(parameters, "%%parameters\nrows: int = 5\ndelay: float = 0.2")
    lab.run_cell(parameters)


def test_stop_cancels_a_long_step(lab: LabPage) -> None:
    lab.run_cell(LONG_RUN_CELL)  # %pipeline run -p delay=120: a background run, the kernel stays free
    lab.wait_statuses({"slow": "running"}, timeout=60_000)
    expect(lab.button("Run")).to_be_disabled()
    expect(lab.button("Stop")).to_be_enabled()
    lab.page.wait_for_timeout(1500)  # the running step shows its elapsed time
    assert "running · " in (lab.node("slow").text_content() or "")
    lab.screenshot_widget("widget-running")
    started = time.monotonic()
    lab.button("Stop").click()
    lab.wait_statuses({"slow": "cancelled"}, timeout=30_000)
    lab.wait_not_running()
    assert time.monotonic() - started < 20
    assert lab.statuses()["report"] in ("cancelled", "skipped")
    expect(lab.button("Run")).to_be_enabled()
    expect(lab.button("Stop")).to_be_disabled()
    lab.screenshot_widget("widget-stopped")
