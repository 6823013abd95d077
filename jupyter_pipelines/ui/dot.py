"""The pipeline as a graph: node and edge descriptions plus DOT source, built with the ``graphviz`` package.

One builder serves the widget (the browser lays the DOT out with Graphviz compiled to WebAssembly and draws the
nodes itself from :class:`GraphSpec`) and ``jupyter-pipelines graph`` (a static ``.dot``/``.svg``/``.png``).

Node ids are ours, never user text: ``s_NAME`` for a step and ``p_NAME`` for a parameter when the name is a
valid step name (``[A-Za-z0-9_-]``), else a digest. Labels are user text and go through ``graphviz.escape`` (so a
backslash or ``<...>`` means nothing to Graphviz); the browser renders them with ``textContent``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Literal

import graphviz

from ..model import Parameter, Pipeline, Step

NodeKind = Literal["step", "parameter"]
EdgeKind = Literal["reads", "after", "parameter"]

_SAFE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
DETAIL_LIMIT = 48
# The widget draws a status line ("condition false · 12.3s") under each step: reserve its width in the layout.
STATUS_PLACEHOLDER = "condition false · 00.00s"
# Above this many steps, cap Graphviz's crossing minimisation and network simplex so layout stays interactive.
LARGE_GRAPH = 120


@dataclass(frozen=True)
class GraphNode:
    id: str
    name: str
    kind: NodeKind
    detail: str


@dataclass(frozen=True)
class GraphEdge:
    tail: str
    head: str
    names: tuple[str, ...]
    reason: EdgeKind


@dataclass(frozen=True)
class GraphSpec:
    nodes: tuple[GraphNode, ...]
    edges: tuple[GraphEdge, ...]
    dot: str


def node_id(kind: NodeKind, name: str) -> str:
    """A DOT- and attribute-safe id for a step or parameter name."""
    prefix = "s_" if kind == "step" else "p_"
    if _SAFE_NAME.fullmatch(name):
        return prefix + name
    return prefix + "x" + hashlib.blake2b(name.encode("utf-8", "replace"), digest_size=8).hexdigest()


def one_line(text: str, limit: int = DETAIL_LIMIT) -> str:
    """User text for a label: control characters become spaces, long text ends in an ellipsis."""
    flat = _CONTROL.sub(" ", text).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def step_detail(step: Step, where: str | None = None) -> str:
    """``cell · process`` and the like; ``where`` replaces the executor (a cloud run's ``SageMaker processing``)."""
    kind = "script" if step.script else "cell"
    parts = [kind, where or step.executor]
    if getattr(step, "condition", None) is not None:
        parts.append("conditional")
    if not step.cache.enabled:
        parts.append("no cache")
    return " · ".join(parts)


def parameter_detail(parameter: Parameter) -> str:
    return one_line(f"{parameter.name}: {parameter.type} = {parameter.default!r}")


def graph_nodes(pipeline: Pipeline) -> tuple[GraphNode, ...]:
    parameters = tuple(
        GraphNode(node_id("parameter", p.name), p.name, "parameter", parameter_detail(p)) for p in pipeline.parameters
    )
    steps = tuple(GraphNode(node_id("step", s.name), s.name, "step", step_detail(s)) for s in pipeline.steps)
    return parameters + steps


def graph_edges(pipeline: Pipeline) -> tuple[GraphEdge, ...]:
    declared = {p.name for p in pipeline.parameters}
    edges: list[GraphEdge] = []
    for step in pipeline.steps:
        for name in step.parameters:
            if name in declared:
                edges.append(GraphEdge(node_id("parameter", name), node_id("step", step.name), (name,), "parameter"))
    for edge in pipeline.edges:
        edges.append(
            GraphEdge(node_id("step", edge.upstream), node_id("step", edge.downstream), edge.names, edge.reason)
        )
    return tuple(edges)


def _label(*lines: str) -> str:
    return graphviz.escape("\n".join(lines)).replace("\n", "\\n")


def _digraph(pipeline: Pipeline, *, titled: bool) -> graphviz.Digraph:
    dot = graphviz.Digraph(name="pipeline")
    dot.attr(rankdir="LR", nodesep="0.25", ranksep="0.45", fontname="Helvetica", fontsize="11")
    if titled:
        dot.attr(label=_label(f"pipeline {one_line(pipeline.name)}"), labelloc="t", fontsize="13")
    if len(pipeline.steps) > LARGE_GRAPH:
        dot.attr(mclimit="0.3", nslimit="3", nslimit1="3")
    dot.attr("node", shape="box", style="rounded", fontname="Helvetica", fontsize="11", margin="0.18,0.06")
    dot.attr("edge", arrowsize="0.7", fontname="Helvetica", fontsize="9")
    return dot


def build_graph(pipeline: Pipeline, *, interactive: bool = True) -> GraphSpec:
    """Nodes, edges and DOT for ``pipeline``.

    ``interactive`` is the widget's flavour: every step reserves a status line and edges carry no labels (the
    browser shows the names on hover). Otherwise edges are labelled with the names that flow, for a static file.
    """
    nodes = graph_nodes(pipeline)
    edges = graph_edges(pipeline)
    dot = _digraph(pipeline, titled=not interactive)
    for node in nodes:
        if node.kind == "parameter":
            dot.node(node.id, label=_label(node.detail), style="rounded,dashed", height="0.3")
        elif interactive:
            dot.node(node.id, label=_label(node.name, node.detail, STATUS_PLACEHOLDER), width="1.6")
        else:
            dot.node(node.id, label=_label(node.name, node.detail), tooltip=_label(node.name))
    for edge in edges:
        attributes = {"style": "dashed"} if edge.reason == "after" else {}
        if not interactive and edge.names and edge.reason != "parameter":
            attributes["label"] = _label(one_line(", ".join(edge.names)))
            attributes["tooltip"] = attributes["label"]
        dot.edge(edge.tail, edge.head, **attributes)
    return GraphSpec(nodes, edges, dot.source)
