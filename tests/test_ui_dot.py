"""The DOT builder: safe node ids, escaped labels, parameters as inputs, edges with the names that flow."""

from __future__ import annotations

import re

from jupyter_pipelines.model import Parameter, Pipeline, Step, StepInput
from jupyter_pipelines.ui.dot import build_graph, node_id, one_line

XSS = "<img src=x onerror=alert(1)>"


def pipeline() -> Pipeline:
    return Pipeline(
        "demo nb",
        steps=(
            Step("load", "df = 1", binds=("df", "meta"), parameters=("path",)),
            Step("train-2", "m = df", inputs=(StepInput("df", "load"), StepInput("meta", "load")), binds=("m",)),
            Step("report", "print(m)", inputs=(StepInput("m", "train-2"),), after=("load",)),
            Step("notify", "", script="notify.py", after=("report",)),
        ),
        parameters=(Parameter("path", "str", XSS + '\\"\n"'),),
    )


def test_node_ids_are_safe_for_dot_and_attributes() -> None:
    assert node_id("step", "train-2") == "s_train-2"
    assert node_id("parameter", "lr") == "p_lr"
    weird = node_id("step", 'a b"<x>')
    assert re.fullmatch(r"s_x[0-9a-f]{16}", weird)
    assert node_id("step", 'a b"<x>') == weird  # stable


def test_nodes_and_edges() -> None:
    spec = build_graph(pipeline())
    assert [(n.id, n.kind) for n in spec.nodes] == [
        ("p_path", "parameter"),
        ("s_load", "step"),
        ("s_train-2", "step"),
        ("s_report", "step"),
        ("s_notify", "step"),
    ]
    edges = {(e.tail, e.head): (e.names, e.reason) for e in spec.edges}
    assert edges == {
        ("p_path", "s_load"): (("path",), "parameter"),
        ("s_load", "s_train-2"): (("df", "meta"), "reads"),
        ("s_train-2", "s_report"): (("m",), "reads"),
        ("s_load", "s_report"): ((), "after"),
        ("s_report", "s_notify"): ((), "after"),
    }
    details = {n.name: n.detail for n in spec.nodes}
    assert details["notify"] == "script · process"
    assert details["load"] == "cell · process"


def test_user_text_is_escaped_in_dot() -> None:
    spec = build_graph(pipeline())
    parameter = next(n for n in spec.nodes if n.kind == "parameter")
    assert "\n" not in parameter.detail  # one line
    assert parameter.detail.startswith("path: str = '<img")
    line = next(line for line in spec.dot.splitlines() if line.strip().startswith("p_path"))
    # an HTML-like label would be <...> unquoted; ours is a quoted string whose backslashes and quotes are escaped
    assert 'label="path: str = ' in line
    assert "\\\\" in line and '\\"' in line
    assert "<<" not in spec.dot


def test_interactive_dot_reserves_a_status_line_and_static_dot_labels_edges() -> None:
    interactive = build_graph(pipeline()).dot
    static = build_graph(pipeline(), interactive=False).dot
    assert "condition false" in interactive and "label=df" not in interactive
    assert 'label="df, meta"' in static
    assert "style=dashed" in static  # --after edges


def test_dot_lays_out_with_graphviz(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import shutil
    import subprocess

    if shutil.which("dot") is None:
        return  # the browser lays it out in the e2e tests; this is an extra check where dot exists
    done = subprocess.run(["dot", "-Tjson"], input=build_graph(pipeline()).dot.encode(), capture_output=True)
    assert done.returncode == 0, done.stderr


def test_one_line() -> None:
    assert one_line("a\nb\tc") == "a b c"
    assert one_line("x" * 100, 10) == "x" * 9 + "…"
