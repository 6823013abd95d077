"""jupyter-pipelines: notebook cells become a cached, runnable pipeline.

``%load_ext jupyter_pipelines`` registers the magics. This module stays import-light (no IPython at import
time) because worker processes and the CLI import the package too.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def current() -> Any:
    """The pipeline graph widget of this notebook's kernel (display it, or keep it to watch runs)."""
    from .magics import current_session

    return current_session().widget()


def load_ipython_extension(ipython: Any) -> None:
    from .magics import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    from .magics import unload_ipython_extension as unload

    unload(ipython)
