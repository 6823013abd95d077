"""The live pipeline widget (``PipelineWidget``) and the static graph file (``render_graph_file``).

Importing this package needs ipywidgets; ``graph_file`` and ``dot`` need only the ``graphviz`` package.
"""

from __future__ import annotations

from .graph_file import render_graph_file
from .widget import PipelineWidget, WidgetActions

__all__ = ["PipelineWidget", "WidgetActions", "render_graph_file"]
