"""``%pipeline config`` made per-notebook: the settings live in the notebook's ``metadata.jupyter_pipelines``.

In JupyterLab the frontend owns the open notebook, so the kernel never rewrites the .ipynb under it: it opens a comm
(target :data:`COMM_TARGET`) when the extension loads; the labextension answers with the notebook's current
settings and, on a ``set`` message, puts the new ones in the notebook model's metadata (saved with the notebook).
When no frontend has answered (nbclient, a console, a kernel run from the command line), ``%pipeline config`` keeps
the values in the kernel and, when the kernel knows its notebook file, writes them into that file's metadata with an
atomic read-modify-write that leaves everything else as it was. In a Jupyter Server session whose frontend has not
answered *yet* ("Run All" queues the config cell ahead of the answer), the kernel sends the settings anyway and
writes the file only if the frontend refuses the comm (no extension): writing it under JupyterLab would make it say
the file changed on disk.

Only the known settings (the export ones, the default executor and image), as strings, ever go there: they are not
secrets, and nothing else is accepted.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .authoring.defaults import check_defaults
from .authoring.notebook import SETTINGS_KEY, read_settings
from .errors import PipelineError
from .sagemaker.config import STAND_INS, ExportConfig, resolve_config
from .sagemaker.settings import SETTINGS

COMM_TARGET = "jupyter_pipelines.settings"


def clean_settings(raw: object) -> dict[str, str]:
    """The known settings among ``raw`` (a frontend's message, a file's metadata), strings only."""
    if not isinstance(raw, Mapping):
        return {}
    return {key: raw[key] for key in SETTINGS if isinstance(raw.get(key), str) and raw[key]}


def check_settings(updates: Mapping[str, str]) -> dict[str, str]:
    """Refuse unknown keys and bad values now, with the exporter's messages (the same checks the export runs)."""
    unknown = sorted(set(updates) - set(SETTINGS))
    if unknown:
        raise PipelineError(
            f"unknown export setting(s): {', '.join(unknown)}.", hint=f"The settings are {', '.join(SETTINGS)}."
        )
    config = ExportConfig(
        pipeline_name=updates.get("name") or None,
        role_arn=updates.get("role_arn") or STAND_INS["role_arn"],
        bucket=updates.get("bucket") or STAND_INS["bucket"],
        region=updates.get("region") or STAND_INS["region"],
        prefix=updates.get("prefix") or None,
    )
    resolve_config(config, "notebook")  # raises ExportError (a PipelineError) naming the flag and its fix
    check_defaults(updates)  # --executor / --image: the pipeline-wide step defaults
    return dict(updates)


def write_notebook_settings(path: Path, settings: Mapping[str, str]) -> None:
    """Set ``metadata.jupyter_pipelines`` in the notebook file: read, modify, write a temporary file, rename."""
    import nbformat

    try:
        notebook = nbformat.read(str(path), as_version=nbformat.NO_CONVERT)
    except (OSError, ValueError) as error:
        raise PipelineError(f"cannot read {path} to store the settings in it: {error}.") from error
    notebook.metadata[SETTINGS_KEY] = clean_settings(settings)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            nbformat.write(notebook, handle, version=nbformat.NO_CONVERT)
        os.chmod(temporary, path.stat().st_mode & 0o7777)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class SettingsSync:
    """The kernel's end of the settings comm, and where ``%pipeline config`` puts what it is given."""

    def __init__(self) -> None:
        self.comm: Any = None
        self.frontend: dict[str, str] | None = None  # the open notebook's settings, once a frontend has answered
        # Settings sent to a frontend that has not answered yet (see configure), and the file they go to if it
        # turns out to have no extension; ``rejected``: a frontend closed the comm, so the file is the place.
        self.deferred: dict[str, str] | None = None
        self.deferred_path: Path | None = None
        self.rejected = False

    # -- the comm ---------------------------------------------------------------------------------------------
    def open(self) -> None:
        """Open the comm to the frontend (a no-op outside a kernel); its answer says a frontend has the notebook."""
        try:
            from comm import create_comm
        except ImportError:
            return
        try:
            comm = create_comm(target_name=COMM_TARGET, data={"type": "hello"})
        except Exception:  # no kernel behind this shell: no frontend either
            return
        comm.on_msg(self._on_msg)
        comm.on_close(self._on_close)
        self.comm = comm

    def close(self) -> None:
        if self.comm is not None:
            self.comm.close()
        self.comm, self.frontend = None, None

    def _on_msg(self, msg: Mapping[str, Any]) -> None:
        data = msg.get("content", {}).get("data", {})
        if isinstance(data, Mapping) and data.get("type") == "notebook":
            answer = clean_settings(data.get("settings"))
            if self.deferred is not None:  # it answered 'hello' before our 'set' reached it; it has applied both
                answer, self.deferred = {**answer, **self.deferred}, None
            self.frontend = answer

    def _on_close(self, msg: Mapping[str, Any]) -> None:
        self.comm, self.frontend = None, None
        if self.deferred is not None and self.deferred_path is not None:  # no extension at the other end after all
            settings, path, self.deferred = self.deferred, self.deferred_path, None
            self.rejected = True
            try:
                write_notebook_settings(path, {**clean_settings(read_settings(path)), **settings})
            except (PipelineError, OSError) as error:  # nothing to show it in: the kernel keeps them regardless
                print(f"jupyter-pipelines: could not write the settings into {path}: {error}", file=sys.stderr)

    @property
    def attached(self) -> bool:
        """A frontend answered on the open comm: it owns the notebook, so the kernel must not write the file."""
        return self.comm is not None and self.frontend is not None

    # -- %pipeline config -------------------------------------------------------------------------------------
    def notebook_settings(self, notebook: Path | None) -> dict[str, str]:
        """The notebook's settings: as the frontend has them (unsaved edits too), else as the file has them."""
        if self.attached and self.frontend is not None:
            return dict(self.frontend)
        return clean_settings(read_settings(notebook)) if notebook is not None else {}

    def configure(self, updates: Mapping[str, str], kernel: dict[str, str], notebook: Path | None) -> str:
        """Store ``updates`` (checked first) and say where they went; ``kernel`` is the session's own settings."""
        updates = check_settings(updates)
        if not updates:
            return ""
        if self.attached and self.frontend is not None:
            merged = {**self.frontend, **updates}
            self.comm.send({"type": "set", "settings": merged})
            self.frontend = merged
            for key in updates:
                kernel.pop(key, None)  # the notebook's metadata is the configuration now
            return "stored in the notebook's metadata by JupyterLab: saved with the notebook (it is now modified)."
        kernel.update(updates)
        if self.comm is None and not self.rejected:
            self.open()  # a frontend that appeared since may answer, for next time
        server_session = bool(os.environ.get("JPY_SESSION_NAME"))  # Jupyter Server started this kernel
        if self.comm is not None and notebook is not None and server_session and not self.rejected:
            # A Jupyter Server session: a frontend holds the notebook but has not answered yet (its answer waits
            # behind the queued cells, e.g. "Run All"). Writing the file now would make JupyterLab say it changed
            # on disk; send it the settings instead, and write the file only if the comm is refused (no extension).
            self.comm.send({"type": "set", "settings": {**self.notebook_settings(notebook), **kernel}})
            self.deferred, self.deferred_path = {**(self.deferred or {}), **kernel}, notebook
            return (
                "sent to the notebook's frontend, which stores them in its metadata (saved with the notebook); "
                "should it have no jupyter-pipelines extension, the kernel writes them into the file instead."
            )
        if self.comm is not None:  # opened, not answered, no server session: tell it anyway
            self.comm.send({"type": "set", "settings": {**self.notebook_settings(notebook), **kernel}})
        if notebook is None:
            return (
                "kept in this kernel only: no frontend answered and the kernel does not know its notebook file "
                "(pass the settings as flags to `jupyter-pipelines export`)."
            )
        write_notebook_settings(notebook, {**clean_settings(read_settings(notebook)), **kernel})
        return f"no frontend answered: kept in this kernel and written to the metadata of {notebook}."
