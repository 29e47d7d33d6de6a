"""The jobs table draws its plain cells and its lines itself, exactly as DataTable does.

The running view re-renders every visible line each second (running jobs come and go), so
the table builds one-line plain cells from segments instead of Rich's padding layers and
looks its styles up once per render pass; what reaches the screen must not change: every
cell and line, with and without the cursor on it, in the default theme and under NO_COLOR.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.segment import Segment
from textual.coordinate import Coordinate
from textual.widgets import DataTable

from batchdash.tui.widgets.jobs import JobTable
from tests.tui.conftest import SIZE, make_app


def drawn(lines: list[list[Segment]]) -> list[tuple[str, object]]:
    """Each segment's text and style (the style compares colours, attributes and meta)."""
    return [(segment.text, segment.style) for line in lines for segment in line]


@pytest.mark.parametrize("no_color", [False, True])
async def test_plain_cells_draw_what_datatable_draws(
    showcase_db: Path, monkeypatch: pytest.MonkeyPatch, no_color: bool
) -> None:
    if no_color:
        monkeypatch.setenv("NO_COLOR", "1")
    app = make_app(showcase_db)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_for_snapshot()
        await pilot.press("space")  # a mark cell too
        await pilot.pause()
        table = app.query_one(JobTable)
        base = table.rich_style
        plain = 0
        for row in range(min(table.row_count, 20)):
            for column, spec in enumerate(table.ordered_columns):
                width = spec.get_render_width(table)
                for cursor in (False, True):
                    ours = table._plain_cell(row, column, base, width, cursor, False)
                    theirs = DataTable._render_cell(table, row, column, base, width, cursor)
                    if ours is not None:
                        plain += 1
                        where = Coordinate(row, column)
                        assert drawn(ours) == drawn(theirs), f"cell {where} cursor={cursor}"
        cells = 2 * min(table.row_count, 20) * len(table.ordered_columns)
        # Only cells DataTable must draw (markup-like text, spans) take its slow way.
        assert plain >= 0.9 * cells, f"{plain} of {cells} cells drawn the quick way"
        keys = [table._header_row_key, *list(table.rows)[:20]]
        for cursor_row in (0, 1):
            cursor, hover = Coordinate(cursor_row, 0), Coordinate(1, 0)
            for key in keys:
                table._pass = {}  # as inside a render pass
                ours = table._render_line_in_row(key, 0, base, cursor, hover)
                table._pass = None
                theirs = DataTable._render_line_in_row(table, key, 0, base, cursor, hover)
                assert [drawn(part) for part in ours] == [drawn(part) for part in theirs], key
