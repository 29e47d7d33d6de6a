"""The status line: filter, "N of M", sort, marks (and how many are off this page), last
refresh and the latest error; in an empty database, what to do next."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from batchdash.core.filters import format_filter
from batchdash.core.models import JobFilter
from batchdash.core.snapshot import ORDERS, JobPage
from batchdash.tui import styles
from batchdash.tui.fmt import count, one_line
from batchdash.tui.widgets.detail import clock_time
from batchdash.tui.widgets.quiet import update_if_changed

#: What an empty database says: how to get jobs into it.
EMPTY_HINT = "enqueue a file (batchdash enqueue FILE), or run batchdash demo"


class StatusLine(Static):
    """One line under the panes; errors (refresh or remote polling) show here, never crash."""

    def show(
        self,
        page: JobPage | None,
        flt: JobFilter,
        *,
        marks: int,
        unseen: int = 0,
        all_marked: bool,
        refreshed_at: float | None,
        error: str | None,
        read_only: bool,
        batch_span: tuple[int, int, int] | None = None,
        note: str | None = None,
        slow_read: float | None = None,
        pause: float = 0.0,
    ) -> None:
        """Render the line; `batch_span` (offset, shown, total) when the batches pane is up,
        `note` for what the last action left undone, `slow_read` the seconds of a read slow
        enough that refreshes wait `pause` times as long after it."""
        text = Text()
        if read_only:
            text.append(" READ-ONLY ", "bold reverse yellow")
            text.append(" ")
        if batch_span is not None:
            offset, shown, total = batch_span
            first = offset + 1 if shown else 0
            text.append(f"{count(first)}–{count(offset + shown)} of {count(total)} batches", "bold")
            text.append("  [ ] pages", styles.MUTED)
        elif page is not None and page.total == 0 and flt.is_empty:
            text.append("no jobs yet: ", "bold")
            text.append(EMPTY_HINT, "bold yellow")
        elif page is not None:
            text.append(page_span(page), "bold")
            if page.matching_text != count(page.total) or not flt.is_empty:
                text.append(f" matching ({count(page.total)} jobs)")
            text.append(f"  sort: {ORDERS.get(page.order, page.order)}")
        filter_text = format_filter(flt)
        if batch_span is None:  # the filter is the jobs pane's
            text.append("  filter: ")
            text.append(
                one_line(filter_text, 40) if filter_text else "none",
                "" if filter_text else styles.MUTED,
            )
        if all_marked:
            text.append("  all matching marked", "bold magenta")
        elif marks:
            text.append(f"  {marks} marked", "bold magenta")
            if unseen:
                text.append(f" ({unseen} not on this page)", "bold magenta")
        if refreshed_at is not None:
            text.append(f"  updated {clock_time(refreshed_at)}", styles.MUTED)
            if slow_read is not None:
                text.append(
                    f" (read took {slow_read:.1f} s: refreshes wait {pause * slow_read:.0f} s)",
                    "yellow",
                )
        if error:
            text.append("  ")
            text.append(one_line(error, 80), styles.ALERT)
        if note:
            text.append("  ")
            text.append(one_line(note, 160), "bold yellow")
        update_if_changed(self, text)


def page_span(page: JobPage) -> str:
    """`101–200 of 52,106`, or where the page is as far as it is known: `100 after the
    first 10,000+ of 52,106` (a deep keyset page whose rows in front were not all counted),
    `page 51 · 100 rows of 1,000+` (a keyset page under a free-text filter, numbered as the
    reader turned to it: nothing in front of it was counted)."""
    if page.number is not None:
        return f"page {count(page.number)} · {count(len(page.rows))} rows of {page.matching_text}"
    if not page.offset_exact:
        return (
            f"{count(len(page.rows))} after the first {count(page.offset)}+ of {page.matching_text}"
        )
    first = page.offset + 1 if page.rows else 0
    return f"{count(first)}–{count(page.offset + len(page.rows))} of {page.matching_text}"
