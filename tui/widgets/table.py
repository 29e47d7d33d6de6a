"""A keyed diff for DataTable: update changed cells in place, keep the cursor on its row.

Clearing and refilling a table every second resets the cursor and repaints everything;
this changes only the cells that changed while the same rows are shown, and replaces the
page in one step when they are not.

`PlainCellsTable` draws the cheap cells itself: a live table whose rows come and go every
second (running jobs) re-renders every visible line each refresh, and DataTable renders
each cell through Rich's padding and style layers (about 100 µs a cell) and looks its
styles up again for every line (each lookup walks the widget's ancestors); a one-line cell
of plain text with one style is the same few segments built directly, and the styles are
looked up once per render pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual._types import SegmentLines
from textual.coordinate import Coordinate
from textual.geometry import Region
from textual.strip import Strip
from textual.widgets import DataTable
from textual.widgets._data_table import RowKey

Row = tuple[str, Sequence[Any]]


class PlainCellsTable(DataTable[Any]):
    """A DataTable that draws one-line plain-text cells itself (segment for segment what
    DataTable draws), and skips measuring new rows while every column has a fixed width.

    The hooks override DataTable internals (textual is pinned in pyproject.toml);
    tests/tui/test_table_cpu.py checks the drawn cells and lines against DataTable's own.
    """

    #: Styles looked up during the render pass under way (None outside one), by what they
    #: depend on: nothing restyles the table in the middle of a pass.
    _pass: dict[object, Style] | None = None

    def render_lines(self, crop: Region) -> list[Strip]:
        """Render the lines in `crop`, each style looked up once for all of them."""
        self._pass = {}
        try:
            return super().render_lines(crop)
        finally:
            self._pass = None

    @property
    def rich_style(self) -> Style:
        """The table's own style (DataTable asks for it once per line)."""
        if self._pass is None:
            return super().rich_style
        if "table" not in self._pass:
            self._pass["table"] = super().rich_style
        return self._pass["table"]

    def _get_row_style(self, row_index: int, base_style: Style) -> Style:
        if self._pass is None:
            return super()._get_row_style(row_index, base_style)
        kind = row_index % 2 if row_index >= self.fixed_rows else row_index
        key = ("row", kind, base_style)
        if key not in self._pass:
            self._pass[key] = super()._get_row_style(row_index, base_style)
        return self._pass[key]

    def _render_line_in_row(
        self,
        row_key: RowKey,
        line_no: int,
        base_style: Style,
        cursor_location: Coordinate,
        hover_location: Coordinate,
    ) -> tuple[SegmentLines, SegmentLines]:
        # DataTable's own, for a row cursor and no fixed or label columns, without the
        # lookups it makes per line for the columns this table never has.
        labels = self._labelled_row_exists and self.show_row_labels
        if self._pass is None or labels or self.fixed_columns or self.cursor_type != "row":
            return super()._render_line_in_row(
                row_key, line_no, base_style, cursor_location, hover_location
            )
        row_index = self._row_locations.get(row_key)
        row_index = -1 if row_index is None else row_index
        row_style = self._get_row_style(row_index, base_style)
        cursor, hover = cursor_location.row == row_index, hover_location.row == row_index
        widths = [column.get_render_width(self) for column in self.ordered_columns]
        line = [
            self._render_cell(row_index, index, row_style, width, cursor, hover)[line_no]
            for index, width in enumerate(widths)
        ]
        # The row's style carried on past the last column to the pane's edge.
        extend, _ = self._get_styles_to_render_cell(
            row_index == -1,
            False,
            False,
            hover,
            cursor,
            self.show_cursor,
            self._show_hover_cursor,
            False,
            False,
        )
        meta = Style.from_meta({"row": row_index, "column": 0, "out_of_bounds": True})
        remaining = max(0, self.size.width - sum(widths) - self._row_label_column_width)
        line.append([Segment(" " * remaining, row_style + extend + meta)])
        return [], line

    def _render_cell(
        self,
        row_index: int,
        column_index: int,
        base_style: Style,
        width: int,
        cursor: bool = False,
        hover: bool = False,
    ) -> SegmentLines:
        lines = self._plain_cell(row_index, column_index, base_style, width, cursor, hover)
        if lines is None:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        return lines

    def _plain_cell(
        self,
        row_index: int,
        column_index: int,
        base_style: Style,
        width: int,
        cursor: bool,
        hover: bool,
    ) -> SegmentLines | None:
        """The cell's one line, or None when DataTable must draw it (a header, label or
        fixed cell, a taller row, markup, spans, or text wider than its column)."""
        if min(row_index - self.fixed_rows, column_index - self.fixed_columns) < 0:
            return None
        row_key = self._row_locations.get_key(row_index)
        column_key = self._column_locations.get_key(column_index)
        if row_key is None or column_key is None or self.rows[row_key].height != 1:
            return None
        plain = _plain_text(self._data[row_key].get(column_key))
        pad = self.cell_padding
        if plain is None or cell_len(plain[0]) > width - 2 * pad:
            return None
        text, text_style = plain
        component, post = self._get_styles_to_render_cell(
            False,
            False,
            False,
            hover,
            cursor,
            self.show_cursor,
            self._show_hover_cursor,
            self.cursor_foreground_priority == "css",
            self.cursor_background_priority == "css",
        )
        # The layers DataTable stacks: row style, where the cell is, cursor/hover, then
        # (with "css" priority) the cursor's colours over the cell's own.
        pre = base_style + Style.from_meta({"row": row_index, "column": column_index}) + component
        around = pre + post
        line = [Segment(" " * pad, around)] if pad else []
        line.append(Segment(text, pre + self.app.console.get_style(text_style) + post))
        fill = width - 2 * pad - cell_len(text)
        if fill:
            line.append(Segment(" " * fill, around))
        if pad:
            line.append(Segment(" " * pad, around))
        return [line]

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        # Measuring every cell of every new row only widens auto-width columns; with fixed
        # widths and one-line unlabelled rows the size follows from the counts alone.
        fixed = not any(column.auto_width for column in self.columns.values())
        if fixed and all(_one_line_unlabelled(self, key) for key in new_rows):
            new_rows = ()
        super()._update_dimensions(new_rows)


def _one_line_unlabelled(table: DataTable[Any], key: RowKey) -> bool:
    row = table.rows.get(key)
    return row is None or (row.height == 1 and row.label is None)


def _plain_text(value: object) -> tuple[str, str | Style] | None:
    """(text, style) of a cell DataTable would draw as one styled run, else None.

    A str is parsed as markup by DataTable (`[` tags, `:emoji:` codes), so only one with
    neither is plain; a Text is plain without spans and left-justified.
    """
    if isinstance(value, str):
        if "[" in value or ":" in value or not value.isprintable():
            return None
        return value, ""
    if isinstance(value, Text):
        plain = value.plain
        if value.spans or value.justify not in (None, "default", "left"):
            return None
        return (plain, value.style) if plain.isprintable() else None
    return None


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
