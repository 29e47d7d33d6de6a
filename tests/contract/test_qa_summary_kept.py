"""The summary of every queue stays the figures of the verdicts as they are now, through
rescores and replaced errors (PostgreSQL keeps it in trigger-maintained tables, migration
0006; SQLite reads the rows): the same as the summary computed from the rows of one queue
that holds every verdict."""

from __future__ import annotations

import pytest

from batchdash.core import queue
from batchdash.core.db.ports import Store
from batchdash.core.qa_models import QAStat
from tests.contract.backends import jobs
from tests.contract.test_qa_store import save, verdict


async def test_the_summary_follows_rescores_and_replaced_errors(db: Store) -> None:
    await queue.enqueue(db, "a", jobs(4))
    await db.write(
        lambda tx: save(
            tx,
            verdict(1, "j1", 3.0),
            verdict(1, "j2", 9.0),  # 6 apart: a disagreement
            verdict(2, "j1", 1.0),  # j1's lowest score, about to be taken out
            verdict(3, "j1", None),  # an error
            verdict(4, "j1", 10.0),
        )
    )
    first = await db.read(lambda tx: tx.qa.qa_summary())
    assert first.disagreements == [(1, "k0", 3.0, 9.0)]
    assert first.stats[0] == QAStat("j1", "overall", 3, pytest.approx(14 / 3), 1.0, 10.0)  # type: ignore[arg-type]

    await db.write(
        lambda tx: save(
            tx,
            verdict(2, "j1", 5.0),  # rescored: 1.0 leaves
            verdict(1, "j2", 4.0),  # rescored: the judges now agree within the threshold
            verdict(4, "j1", 2.0),  # rescored: the highest leaves
            replace=True,
        )
    )
    await db.write(lambda tx: save(tx, verdict(3, "j1", 8.0)))  # an error is always replaced

    summary = await db.read(lambda tx: tx.qa.qa_summary())
    assert (summary.results, summary.errors) == (5, 0)
    assert summary.distribution == {3: 1, 4: 1, 5: 1, 8: 1, 2: 1}
    assert summary.stats == [
        QAStat("j1", "overall", 4, pytest.approx(4.5), 2.0, 8.0),  # type: ignore[arg-type]
        QAStat("j1", "tone", 4, pytest.approx(2.25), 1.0, 4.0),  # type: ignore[arg-type]
        QAStat("j2", "overall", 1, 4.0, 4.0, 4.0),
        QAStat("j2", "tone", 1, 2.0, 2.0, 2.0),
    ]
    assert summary.disagreements == []
    assert summary.worst[:2] == [(4, "k3", "j1", 2.0), (1, "k0", "j1", 3.0)]
    assert summary == await db.read(lambda tx: tx.qa.qa_summary(queue="a"))
