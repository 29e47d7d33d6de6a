"""The loop that follows remote batches, shared by `batchdash poll` and `submit --wait`.

Each cycle is `core.sync.run_cycle` (poll, ingest, reconcile, rescue); `core.sync`, and
`openai` with it, is imported only when the loop starts.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING

from batchdash.core.db.ports import Store, Tx
from batchdash.tui.cli.common import EXIT_ATTENTION, EXIT_ERROR, EXIT_OK
from batchdash.tui.cli.progress import ingest_bars
from batchdash.tui.fmt import one_line

if TYPE_CHECKING:  # core.sync loads the providers: imported when a cycle runs
    from batchdash.core.sync import CycleReport


async def poll_loop(
    db: Store,
    interval: float,
    *,
    until_done: bool,
    ids: list[int] | None = None,
    after_cycle: Callable[[], Awaitable[None]] | None = None,
) -> int:
    """Run cycles every `interval` seconds until SIGINT/SIGTERM; with `until_done`, until
    no batch (of `ids`, or any) is left to follow. `after_cycle` runs after each cycle
    (notices: it must only queue work, never wait on it). Returns the exit code.
    """
    from batchdash.core.sync import run_cycle

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    had_errors = False
    while True:
        with ingest_bars():  # a bar per batch ingested this cycle, on a terminal
            report = await run_cycle(db)
        had_errors = bool(report.errors)
        if report.busy:
            _print_report(report)
        if after_cycle is not None:
            await after_cycle()
        blocked = [
            why for batch_id, why in report.blocked.items() if ids is None or batch_id in ids
        ]
        if until_done and blocked:
            # Waiting cannot finish these (bad key, unknown batch): say why and stop.
            for why in blocked:
                print(f"batchdash: error: {one_line(why, 300)}", file=sys.stderr, flush=True)
            return EXIT_ERROR
        if stop.is_set() or (until_done and not await db.read(partial(_unfinished, ids=ids))):
            return EXIT_ATTENTION if had_errors else EXIT_OK
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval)
        except TimeoutError:
            continue
        return EXIT_OK


def _unfinished(tx: Tx, ids: list[int] | None) -> bool:
    """True while some batch (of `ids`, or any) still needs polling or ingesting."""
    pending = tx.batches.batches_due(float("inf")) + tx.batches.submitting_batches()
    return any(ids is None or b.id in ids for b in pending)


def _print_report(report: CycleReport) -> None:
    stamp = time.strftime("%H:%M:%S")
    print(
        f"{stamp} polled {report.polled}, ingested {report.ingested}, "
        f"reconciled {report.reconciled}, rescued {report.rescued}",
        flush=True,
    )
    for error in report.errors:
        print(f"{stamp} error: {one_line(error, 200)}", flush=True)
