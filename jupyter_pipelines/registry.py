"""The live registry of executed cells, without ghosts.

A kernel never sees the notebook, only cells as they are executed (JupyterLab sends each cell's id with the
request). The registry keeps the latest source of every cell it has seen, keyed by cell id, so re-running an
edited cell replaces it and renaming a step in the same cell replaces the old step instead of leaving a ghost.
When the saved notebook file is known, it orders cells as the file does and forgets cells that were deleted
from the notebook (an id that is absent from a file saved after the cell ran).

Requests without a cell id (nbclient, the plain console) fall back to a key derived from the content: a step
cell by its step name, any other cell by its source, so running the same cell twice does not duplicate it.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from .authoring.builder import Cell
from .authoring.header import StepHeader, parse_header
from .errors import HeaderError


@dataclass
class RecordedCell:
    key: str
    source: str
    cell_id: str | None
    recorded_at: float = field(default_factory=time.time)
    valid: bool = True  # False while the cell's last execution failed validation: left out, keeps its place


def cell_key(source: str, cell_id: str | None) -> str:
    """The identity of a cell in the registry (see the module docstring)."""
    if cell_id:
        return f"id:{cell_id}"
    first_line = source.lstrip().split("\n", 1)[0]
    try:
        header = parse_header(first_line)
    except HeaderError:
        header = None
    if isinstance(header, StepHeader):
        return f"step:{header.name}"
    return "src:" + hashlib.blake2b(source.encode(), digest_size=12).hexdigest()


class CellRegistry:
    """Ordered record of the latest version of every cell executed in this kernel."""

    def __init__(self) -> None:
        self._cells: dict[str, RecordedCell] = {}

    def __len__(self) -> int:
        return len(self._cells)

    def record(self, source: str, cell_id: str | None = None) -> RecordedCell:
        """Remember a cell's latest source; a known key keeps its place, a new one goes last."""
        key = cell_key(source, cell_id)
        if key.startswith("id:"):
            # A cell that ran without an id before (e.g. seeded from history) is the same cell now.
            self._cells.pop(cell_key(source, None), None)
        recorded = RecordedCell(key, source, cell_id)
        self._cells[key] = recorded  # an existing key keeps its place in a dict
        return recorded

    def set_valid(self, key: str, valid: bool) -> None:
        """Leave a cell out of the pipeline (it failed validation) without losing its place in the order."""
        if key in self._cells:
            self._cells[key].valid = valid

    def forget_step(self, name: str, keep_key: str) -> None:
        """Drop other cells that define step ``name`` (a step moved to another cell, or a cell without id)."""
        for key, cell in list(self._cells.items()):
            if key == keep_key:
                continue
            header_line = cell.source.lstrip().split("\n", 1)[0]
            try:
                header = parse_header(header_line)
            except HeaderError:
                continue
            if isinstance(header, StepHeader) and header.name == name:
                del self._cells[key]

    def clear(self) -> None:
        self._cells.clear()

    def replace_all(self, cells: Iterable[Cell]) -> None:
        """Start over from a saved notebook's cells (``%pipeline reload``)."""
        self._cells.clear()
        for cell in cells:
            self.record(cell.source, cell.id)

    def cells(self, saved: Sequence[Cell] | None = None, saved_at: float | None = None) -> list[Cell]:
        """The cells in notebook order, as the builder wants them.

        With the saved notebook's cells: cells whose id the file has are ordered as in the file; cells with an id the
        file lacks are ghosts (deleted) if they ran before the file was saved, else new and kept in execution order.
        """
        records = [r for r in self._cells.values() if r.valid]
        if saved:
            position = {c.id: i for i, c in enumerate(saved) if c.id}
            if saved_at is not None:
                records = [
                    r for r in records if not (r.cell_id and r.cell_id not in position and r.recorded_at < saved_at)
                ]
            slots = [i for i, r in enumerate(records) if r.cell_id in position]
            in_file = sorted((records[i] for i in slots), key=lambda r: position[r.cell_id or ""])
            for slot, record in zip(slots, in_file):
                records[slot] = record
        return [Cell(index=i, source=r.source, id=r.cell_id) for i, r in enumerate(records)]
