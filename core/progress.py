"""Progress of long core work, for whoever draws it (the CLI's bars); core draws nothing.

Ingestion runs deep inside a poll cycle (sync → provider session → ingest), so rather than
threading a callback through every provider's interface, the caller that wants to show
progress sets one for the duration of its work (`reporting_ingest`) and the shared ingest
code reports to it (`ingested`). A context variable keeps each task's own reporter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from batchdash.core.models import Batch

#: Told (batch, result lines ingested so far) as a batch's results are written.
IngestProgress = Callable[["Batch", int], None]

_reporter: ContextVar[IngestProgress | None] = ContextVar("batchdash_ingest", default=None)


@contextmanager
def reporting_ingest(reporter: IngestProgress) -> Iterator[None]:
    """Inside the block, ingestion in this task (and tasks it starts) reports to `reporter`."""
    token = _reporter.set(reporter)
    try:
        yield
    finally:
        _reporter.reset(token)


def ingested(batch: Batch, lines: int) -> None:
    """Say that `lines` result lines of `batch` are written (no-op when nobody listens)."""
    reporter = _reporter.get()
    if reporter is not None:
        reporter(batch, lines)
