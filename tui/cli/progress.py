"""Progress bars for long commands: on a terminal only, with rate and ETA (rich.progress).

The bar goes to stderr, so `batchdash export > out.jsonl` still shows it; when stderr is
not a terminal (a pipe, a log file, cron) nothing is drawn and rich is never imported.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from batchdash.core.progress import reporting_ingest

if TYPE_CHECKING:
    from batchdash.core.models import Batch

T = TypeVar("T")

#: Items between two bar updates: a million rows are not a million redraw requests.
EVERY = 256


def on_terminal() -> bool:
    """Whether stderr is a terminal that can draw a bar."""
    return sys.stderr.isatty() and os.environ.get("TERM") != "dumb"


@contextmanager
def progress_bar(description: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """Yield `done(count)`, to say how many are done; draw a bar (count, rate, ETA) only
    on a terminal.

    `total=None` draws a pulsing bar with the count and rate, for work of unknown size.
    """
    if not on_terminal():
        yield _ignore
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns: list[Any] = [
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn() if total is not None else _counted_column(),
        _rate_column(),
        TimeRemainingColumn() if total is not None else TimeElapsedColumn(),
    ]
    with Progress(*columns, console=Console(file=sys.stderr), transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda count: bar.update(task, completed=count)


@contextmanager
def byte_bar(description: str) -> Iterator[Callable[[int, int], None]]:
    """Yield `sent(done, size)` for a transfer in bytes; draw a bar (bytes, rate, ETA) only
    on a terminal. `done` going back to 0 starts a new transfer (next file, or a retry).
    """
    if not on_terminal():
        yield _ignore_bytes
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    # Started by the first transfer, so that nothing says "uploading" while the input is
    # still being checked.
    bar = Progress(*columns, console=Console(file=sys.stderr), transient=True)
    task = bar.add_task(description, total=None)

    def sent(done: int, size: int) -> None:
        bar.start()  # idempotent
        if done == 0:  # a new transfer: its own total, rate and ETA
            bar.reset(task, total=size)
        bar.update(task, completed=done)

    try:
        yield sent
    finally:
        bar.stop()


@contextmanager
def ingest_bars() -> Iterator[None]:
    """Inside, each batch whose results are being ingested gets a bar (lines, rate, ETA) on
    a terminal: `poll --until-done`, `submit --wait` and the `poll` daemon."""
    if not on_terminal():
        yield
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskID,
        TextColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        _rate_column(),
        TimeRemainingColumn(),
    )
    bar = Progress(*columns, console=Console(file=sys.stderr), transient=True)
    tasks: dict[int, TaskID] = {}

    def ingested(batch: Batch, lines: int) -> None:
        bar.start()  # idempotent: started by the first ingest
        if batch.id not in tasks:
            tasks[batch.id] = bar.add_task(f"ingesting batch {batch.id}", total=batch.total)
        bar.update(tasks[batch.id], completed=lines)

    try:
        with reporting_ingest(ingested):
            yield
    finally:
        bar.stop()


def tracked(items: Iterable[T], description: str, total: int | None) -> Iterator[T]:
    """`items`, unchanged, advancing a progress bar as each one is consumed."""
    count = 0
    with progress_bar(description, total) as done:
        for item in items:
            yield item
            count += 1
            if count % EVERY == 0:
                done(count)
        done(count)


def count_lines(path: Path) -> int | None:
    """Lines in `path` (the total of a file's bar), or None when it cannot be read."""
    try:
        with path.open("rb") as handle:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
    except OSError:
        return None


def _ignore(count: int) -> None:
    """`done` when no bar is drawn."""


def _ignore_bytes(done: int, size: int) -> None:
    """`sent` when no bar is drawn."""


def _counted_column() -> Any:
    """How many so far, when work of unknown size counts anything (blank until it does)."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class CountedColumn(ProgressColumn):
        def render(self, task: Any) -> Text:
            return Text(f"{task.completed:,.0f}" if task.completed else "", style="green")

    return CountedColumn()


def _rate_column() -> Any:
    """Items per second (rich's own speed column counts bytes)."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task: Any) -> Text:
            speed = task.finished_speed or task.speed
            return Text("" if speed is None else f"{speed:,.0f}/s", style="cyan")

    return RateColumn()
