"""A keyed diff for DataTable: update changed cells in place, keep the cursor on its row.

Clearing and refilling a table every second resets the cursor and repaints everything;
this applies only what changed, by row key, so a refresh is invisible when nothing moved.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

from textual.widgets import DataTable
from textual.widgets.data_table import RowKey

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

    The first cell of every row must read as its key (an id column): DataTable sorts by
    cell values only, so that is how rows that moved are put back in order.
    """
    cursor_key = highlighted_key(table)
    cursor_index = table.cursor_row
    wanted = {key for key, _ in rows}
    for key in [k.value for k in table.rows if k.value not in wanted]:
        table.remove_row(RowKey(key))
    columns = list(table.columns)
    for key, cells in rows:
        if key in table.rows:
            old = table.get_row(key)
            for column, old_cell, new_cell in zip(columns, old, cells, strict=True):
                if old_cell != new_cell:
                    table.update_cell(key, column, new_cell)
        else:
            table.add_row(*cells, key=key)
    order = [key for key, _ in rows]
    if [k.value for k in table.rows] != order:
        position: dict[Hashable, int] = {key: i for i, key in enumerate(order)}
        table.sort(columns[0], key=lambda cell: position[str(cell)])
    if cursor_key is not None and cursor_key in table.rows:
        table.move_cursor(row=table.get_row_index(cursor_key), animate=False)
    elif table.row_count:
        table.move_cursor(row=min(cursor_index, table.row_count - 1), animate=False)
