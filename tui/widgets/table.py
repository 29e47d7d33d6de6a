"""A keyed diff for DataTable: update changed cells in place, keep the cursor on its row.

Clearing and refilling a table every second resets the cursor and repaints everything;
this changes only the cells that changed while the same rows are shown, and replaces the
page in one step when they are not.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from textual.widgets import DataTable

Row = tuple[str, Sequence[Any]]


def highlighted_key(table: DataTable[Any]) -> str | None:
    """The key of the row under the cursor, if any."""
    if not table.row_count:
        return None
    try:
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
    except Exception:  # the cursor can sit past a row that just left
        return None
    return None if row_key.value is None else str(row_key.value)


def sync_rows(table: DataTable[Any], rows: Sequence[Row]) -> None:
    """Make `table` show `rows` (key, cells) in order, touching only what changed.

    The same rows in the same order have their changed cells updated in place (a refresh
    where nothing moved repaints nothing). Any other set or order replaces the page in one
    step: clearing the rows (columns kept) and adding the new ones costs what adding them
    costs, where removing rows one by one re-indexed the table per row (quadratic).
    The cursor stays on its row's key, or else at its index.
    """
    cursor_key = highlighted_key(table)
    cursor_index = table.cursor_row
    if [k.value for k in table.rows] == [key for key, _ in rows]:
        _update_cells(table, rows)
        return
    table.clear()
    for key, cells in rows:
        table.add_row(*cells, key=key)
    if cursor_key is not None and cursor_key in table.rows:
        table.move_cursor(row=table.get_row_index(cursor_key), animate=False)
    elif table.row_count:
        table.move_cursor(row=min(cursor_index, table.row_count - 1), animate=False)


def _update_cells(table: DataTable[Any], rows: Sequence[Row]) -> None:
    """Update the cells that differ, for rows already shown in this order."""
    columns = list(table.columns)
    for key, cells in rows:
        old = table.get_row(key)
        for column, old_cell, new_cell in zip(columns, old, cells, strict=True):
            if old_cell != new_cell:
                table.update_cell(key, column, new_cell)
