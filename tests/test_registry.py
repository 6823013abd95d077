"""The live cell registry: latest source per cell, no ghosts, notebook order from the saved file."""

from __future__ import annotations

from jupyter_pipelines.authoring.builder import Cell
from jupyter_pipelines.registry import CellRegistry, cell_key


def sources(cells: list[Cell]) -> list[str]:
    return [c.source for c in cells]


def test_rerunning_an_edited_cell_replaces_it_in_place() -> None:
    registry = CellRegistry()
    registry.record("import math", "a")
    registry.record("%%step one\nx = 1", "b")
    registry.record("%%step two\ny = x", "c")
    registry.record("%%step one\nx = 2", "b")
    assert sources(registry.cells()) == ["import math", "%%step one\nx = 2", "%%step two\ny = x"]


def test_renaming_a_step_in_the_same_cell_replaces_the_old_step() -> None:
    registry = CellRegistry()
    registry.record("%%step old\nx = 1", "b")
    registry.record("%%step new\nx = 1", "b")
    assert sources(registry.cells()) == ["%%step new\nx = 1"]


def test_cells_without_ids_are_keyed_by_step_name_or_source() -> None:
    registry = CellRegistry()
    registry.record("%%step one\nx = 1")
    registry.record("%%step one\nx = 2")
    registry.record("import os")
    registry.record("import os")
    assert sources(registry.cells()) == ["%%step one\nx = 2", "import os"]
    assert cell_key("%%step one --retry 2\n", None) == "step:one"


def test_a_cell_seen_first_without_id_is_the_same_cell_when_its_id_arrives() -> None:
    registry = CellRegistry()
    registry.record("import os")  # from history, before the extension was loaded
    registry.record("import os", "a")
    assert len(registry) == 1


def test_saved_notebook_orders_cells_and_drops_deleted_ones() -> None:
    registry = CellRegistry()
    registry.record("%%step b\ny = 1", "cell-b")
    registry.record("%%step a\nx = 1", "cell-a")
    registry.record("%%step gone\nz = 1", "cell-gone")
    saved = [Cell(0, "%%step a\nx = 1", "cell-a"), Cell(1, "%%step b\ny = 1", "cell-b")]
    # The file was saved after every cell ran: "gone" was deleted from the notebook.
    cells = registry.cells(saved, saved_at=float("inf"))
    assert [c.id for c in cells] == ["cell-a", "cell-b"]


def test_a_new_cell_not_yet_saved_is_kept() -> None:
    registry = CellRegistry()
    registry.record("%%step a\nx = 1", "cell-a")
    saved = [Cell(0, "%%step a\nx = 1", "cell-a")]
    registry.record("%%step new\ny = x", "cell-new")
    cells = registry.cells(saved, saved_at=0.0)  # saved before "new" ran
    assert [c.id for c in cells] == ["cell-a", "cell-new"]


def test_forget_step_drops_other_cells_defining_the_same_step() -> None:
    registry = CellRegistry()
    registry.record("%%step a\nx = 1", "one")
    kept = registry.record("%%step a\nx = 2", "two")  # the step moved to another cell
    registry.forget_step("a", kept.key)
    assert [c.id for c in registry.cells()] == ["two"]
