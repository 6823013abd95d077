"""Benchmark the live widget in a real JupyterLab and Debian's chromium.

1. Graph render time: ``set_pipeline`` with 20, 100 and 300 steps; the browser's own measure of Graphviz-wasm
   layout plus drawing (``data-layout-ms`` on the widget), and the wall time from the kernel call to the nodes
   being in the DOM.
2. Event-to-DOM latency: a background thread in the kernel feeds ``handle_event`` step events (as the engine
   does); a MutationObserver in the page stamps each status change; latency = DOM time - event time (one clock:
   the same machine). Measured quiet and under a flood of log output.

Run: ``.venv/bin/python benchmarks/bench_widget.py`` (needs ``bash scripts/setup-browser.sh``).
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.browser.lab import LabPage, LabServer, check_browser, launch_browser  # noqa: E402
from tests.notebooks import write_notebook  # noqa: E402

SIZES = (20, 100, 300)
REPEATS = 3
EVENTS = 60  # status changes per latency scenario
SPACING = 0.05  # seconds between two events

SETUP = """\
import json, random, threading, time
from jupyter_pipelines.engine.events import RunStarted, StepStarted, StepFinished, StepLog, RunFinished
from jupyter_pipelines.model import Pipeline, Step, StepInput
from jupyter_pipelines.ui import PipelineWidget, WidgetActions

def make(n, tag, prefix="step"):
    rng = random.Random(n)
    steps = []
    for i in range(n):
        ups = sorted({max(0, i - 1 - rng.randrange(8)) for _ in range(rng.randrange(1, 3))}) if i else []
        inputs = tuple(StepInput(f"out{u}", f"{prefix}{u}") for u in ups)
        steps.append(Step(f"{prefix}{i}", f"out{i} = 1", inputs=inputs, binds=(f"out{i}",)))
    return Pipeline(tag, steps=tuple(steps))

_noop = lambda *a: None
_w = PipelineWidget(make(4, "warmup"), WidgetActions(run=_noop, run_step=_noop, run_from=_noop, stop=_noop))
_w
"""

FEED = """\
_times = []
def _feed(n_events, spacing, flood):
    run = "bench-%f" % time.time()
    _w.handle_event(RunStarted(run, "bench", tuple(s.name for s in _w.pipeline.steps)))
    stop = threading.Event()
    def flood_logs():
        while not stop.is_set():
            for _ in range(20):
                _w.handle_event(StepLog(run, "step0", "stdout", "x" * 80 + "\\n"))
            time.sleep(0.01)
    if flood:
        threading.Thread(target=flood_logs, daemon=True).start()
    time.sleep(0.3)
    for i in range(n_events):
        name = f"step{i // 2 + 1}"
        event = StepStarted(run, name) if i % 2 == 0 else StepFinished(run, name, "succeeded", 0.01)
        _times.append((name, "running" if i % 2 == 0 else "succeeded", event.time))
        _w.handle_event(event)
        time.sleep(spacing)
    stop.set()
    _w.handle_event(RunFinished(run, "succeeded", 1.0))
threading.Thread(target=_feed, args=(EVENTS, SPACING, FLOOD), daemon=True).start()
"""

OBSERVE_JS = """
() => {
  window.__benchStamps = [];
  const root = document.querySelector('.jp-Pipelines-graph');
  const observer = new MutationObserver(records => {
    const now = Date.now() / 1000;
    for (const r of records) {
      if (r.type === 'attributes' && r.attributeName === 'data-status') {
        window.__benchStamps.push([r.target.dataset.name, r.target.dataset.status, now]);
      }
    }
  });
  observer.observe(root, { attributes: true, subtree: true, attributeFilter: ['data-status'] });
}
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def render_times(lab: LabPage) -> dict[int, dict[str, float]]:
    results: dict[int, dict[str, float]] = {}
    for n in SIZES:
        layout_ms, wall_ms = [], []
        for repeat in range(REPEATS):
            generation = lab.page.evaluate("document.querySelector('.jp-Pipelines').dataset.layoutGeneration")
            started = time.monotonic()
            # A new graph each time (new step names): an identical one is rightly not laid out again.
            lab.run_cell_code(f"_w.set_pipeline(make({n}, 'bench{n}_{repeat}', prefix='r{repeat}_s'))")
            lab.page.wait_for_function(
                """([n, gen]) => {
                    const w = document.querySelector('.jp-Pipelines');
                    return w.dataset.layoutGeneration !== gen && Number(w.dataset.nodeCount) === n;
                }""",
                arg=[n, generation],
                timeout=120_000,
                polling="raf",
            )
            wall_ms.append((time.monotonic() - started) * 1000)
            layout_ms.append(float(lab.page.evaluate("document.querySelector('.jp-Pipelines').dataset.layoutMs")))
        lab.screenshot_widget(f"bench-{n}-steps")
        results[n] = {"layout_draw_ms": statistics.median(layout_ms), "kernel_to_dom_ms": statistics.median(wall_ms)}
    return results


def latency(lab: LabPage, flood: bool) -> dict[str, float]:
    lab.run_cell_code(f"_w.set_pipeline(make({EVENTS // 2 + 2}, 'latency{int(flood)}'))")
    lab.page.wait_for_function(
        f"() => Number(document.querySelector('.jp-Pipelines').dataset.nodeCount) === {EVENTS // 2 + 2}"
    )
    lab.page.evaluate(OBSERVE_JS)
    lab.run_cell_code(f"EVENTS, SPACING, FLOOD = {EVENTS}, {SPACING}, {flood}\n" + FEED)
    lab.page.wait_for_function(
        "() => document.querySelector('.jp-Pipelines').dataset.running === 'false'", timeout=60_000
    )
    outputs = lab.run_cell_code("print(json.dumps(_times))")
    sent = json.loads("".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream"))
    stamps: list[list[Any]] = lab.page.evaluate("window.__benchStamps")
    seen = {(name, status): at for name, status, at in stamps}
    delays = [(seen[(name, status)] - at) * 1000 for name, status, at in sent if (name, status) in seen]
    return {
        "events": len(sent),
        "seen": len(delays),
        "median_ms": statistics.median(delays),
        "p95_ms": percentile(delays, 0.95),
        "max_ms": max(delays),
    }


def main() -> None:
    check_browser()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        root, home = Path(tmp) / "root", Path(tmp) / "home"
        root.mkdir()
        write_notebook(root / "bench.ipynb", [SETUP])
        server = LabServer.start(root, home)
        try:
            with sync_playwright() as playwright:
                browser = launch_browser(playwright)
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                lab = LabPage(page, server)
                lab.open_notebook("bench.ipynb", workspace="bench-widget")
                lab.run_cell(0)
                page.wait_for_selector(".jp-Pipelines svg", timeout=60_000)
                renders = render_times(lab)
                quiet = latency(lab, flood=False)
                flooded = latency(lab, flood=True)
                browser.close()
        finally:
            server.stop()
    print(f"graph render in the browser, median of {REPEATS} (target: interactive, < 1 s at 300 steps)")
    print("  layout+draw = Graphviz-wasm layout and SVG drawing, measured in the page;")
    print("  wall = from the kernel's set_pipeline call (a cell run from the page) to the nodes in the DOM")
    for n, figures in renders.items():
        layout, wall = figures["layout_draw_ms"], figures["kernel_to_dom_ms"]
        print(f"  {n:4d} steps: layout+draw {layout:7.1f} ms   wall {wall:7.1f} ms")
    for label, figures in (("quiet", quiet), ("log flood ~2000 lines/s", flooded)):
        print(
            f"event-to-DOM latency (target < 100 ms), {label}: median {figures['median_ms']:.1f} ms, "
            f"p95 {figures['p95_ms']:.1f} ms, "
            f"max {figures['max_ms']:.1f} ms ({figures['seen']}/{figures['events']} status changes seen)"
        )


if __name__ == "__main__":
    main()
