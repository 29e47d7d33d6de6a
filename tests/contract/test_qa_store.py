"""QA verdicts on every back end: the same summary and the same deterministic sample from
the same data, skip/replace of verdicts with their scores and spend, and success numbers
that stay unique and gap-free while two connections number at once."""

from __future__ import annotations

import threading

import pytest

from batchdash.core import queue
from batchdash.core.db.ports import Store, Tx
from batchdash.core.errors import NotFoundError
from batchdash.core.models import ALL_JOBS, JobFilter
from batchdash.core.qa_models import QAResult, QAStat
from tests.contract.backends import Backend, events, jobs


def verdict(
    job_id: int, judge: str, overall: float | None, cost: float = 0.5, **kw: object
) -> QAResult:
    """A verdict with an overall score and one more dimension (or an error when None)."""
    scores = {} if overall is None else {"overall": overall, "tone": overall / 2}
    error = "judge said nonsense" if overall is None else None
    return QAResult(job_id, judge, scores, None, error, None, 10, 4, cost, 1.0, **kw)  # type: ignore[arg-type]


def save(tx: Tx, *results: QAResult, replace: bool = False) -> list[bool]:
    return [tx.qa.save_qa_result(r, replace=replace) for r in results]


async def test_the_summary_is_the_same_figures_on_every_back_end(db: Store) -> None:
    await queue.enqueue(db, "a", jobs(4))
    await queue.enqueue(db, "b", jobs(1, "b"))
    await db.write(
        lambda tx: save(
            tx,
            verdict(1, "j1", 6.5),  # rounds half away from zero on both: bucket 7
            verdict(1, "j2", 2.0),  # the judges disagree by 4.5 on job 1
            verdict(2, "j1", 7.5),  # bucket 8
            verdict(3, "j1", None),  # an error, not a score
            verdict(5, "j1", 1.0),  # queue b
        )
    )
    summary = await db.read(lambda tx: tx.qa.qa_summary())
    assert (summary.results, summary.errors) == (4, 1)
    assert summary.distribution == {7: 1, 2: 1, 8: 1, 1: 1}
    assert summary.stats == [
        QAStat("j1", "overall", 3, pytest.approx(5.0), 1.0, 7.5),  # type: ignore[arg-type]
        QAStat("j1", "tone", 3, pytest.approx(2.5), 0.5, 3.75),  # type: ignore[arg-type]
        QAStat("j2", "overall", 1, 2.0, 2.0, 2.0),
        QAStat("j2", "tone", 1, 1.0, 1.0, 1.0),
    ]
    assert summary.worst[:2] == [(5, "b0", "j1", 1.0), (1, "k0", "j2", 2.0)]
    assert summary.disagreements == [(1, "k0", 2.0, 6.5)]
    only_a = await db.read(lambda tx: tx.qa.qa_summary(queue="a", worst=1))
    assert (only_a.results, only_a.errors, only_a.distribution) == (3, 1, {7: 1, 2: 1, 8: 1})
    assert only_a.worst == [(1, "k0", "j2", 2.0)]


def fibonacci_order(ids: list[int]) -> list[int]:
    """The sample order both back ends use: ids by their 32-bit Fibonacci hash."""
    return sorted(ids, key=lambda i: (i * 2654435761) % 2**32)


async def test_the_sample_is_the_same_deterministic_ids_on_every_back_end(db: Store) -> None:
    await queue.enqueue(db, "work", jobs(60))
    await queue.enqueue(db, "qa-work", jobs(5, "qa"))
    work = list(range(1, 61))

    def sample(**kw: object) -> list[int]:
        return db.read(lambda tx: tx.qa.qa_sample_ids(ALL_JOBS, skip_queue_prefix="qa-", **kw))  # type: ignore[arg-type, return-value]

    assert await sample(limit=7) == fibonacci_order(work)[:7]  # type: ignore[misc]
    fifth = [i for i in work if (i * 2654435761) % 2**32 < 0.2 * 2**32]
    assert await sample(fraction=0.2) == fifth  # type: ignore[misc]
    assert set(fifth) <= set(await sample(fraction=0.5))  # type: ignore[misc]
    named = JobFilter(queues=("qa-work",), key_glob="QA*")  # a named queue is not skipped
    assert await db.read(lambda tx: tx.qa.qa_sample_ids(named)) == [61, 62, 63, 64, 65]


def test_verdicts_skip_or_replace_with_their_scores_and_spend(backend: Backend) -> None:
    with backend.open_sync() as s:
        s.write(lambda tx: tx.jobs.enqueue("q", "noop", jobs(2), 1.0, None))
        assert s.write(lambda tx: save(tx, verdict(1, "j", 7.0, cost=0.25))) == [True]
        assert s.write(lambda tx: save(tx, verdict(1, "j", 3.0, cost=9.0))) == [False]
        assert s.read(lambda tx: tx.stats.qa_spend()).cost == pytest.approx(0.25)
        rescored = QAResult(
            1, "j", {"overall": 4.0, "care": 1.0}, "ok", None, None, 20, 8, 1.5, 2.0
        )
        assert s.write(lambda tx: save(tx, rescored, replace=True)) == [True]
        [stored] = s.read(lambda tx: tx.qa.qa_results_for_job(1))
        assert (stored.scores, stored.comment, stored.cost) == (
            {"care": 1.0, "overall": 4.0},
            "ok",
            1.5,
        )
        spend = s.read(lambda tx: tx.stats.qa_spend())
        assert (spend.input_tokens, spend.output_tokens, spend.cost) == (20, 8, pytest.approx(1.5))
        # An error row is always replaced (an error is not a score), and its spend with it.
        assert s.write(lambda tx: save(tx, verdict(2, "j", None, cost=0.5))) == [True]
        assert s.read(lambda tx: tx.stats.qa_spend()).cost == pytest.approx(2.0)
        assert s.read(lambda tx: tx.qa.qa_scored_pairs([1, 2], ["j", "other"])) == {(1, "j")}
        assert s.write(lambda tx: save(tx, verdict(2, "j", 8.0, cost=0.125))) == [True]
        assert s.read(lambda tx: tx.stats.qa_spend()).cost == pytest.approx(1.625)
        assert s.read(lambda tx: tx.qa.qa_scored_pairs([1, 2], ["j"])) == {(1, "j"), (2, "j")}
        assert s.read(lambda tx: tx.qa.qa_dimensions()) == ["care", "overall", "tone"]
        rows = list(s.read(lambda tx: tx.qa.iter_qa_rows(JobFilter(ids=(2,)))))
        assert [(r["job_id"], r["key"], r["judge"], r["error"]) for r in rows] == [
            (2, "k1", "j", None)
        ]
        assert rows[0]["scores"] == {"overall": 8.0, "tone": 4.0}
        assert all(type(v) is float for v in rows[0]["scores"].values())
    assert events(backend, 1) == ["enqueued", "qa_scored", "qa_scored"]
    assert events(backend, 2) == ["enqueued", "qa_error", "qa_scored"]


def test_two_connections_number_successes_without_gaps_or_repeats(backend: Backend) -> None:
    with backend.open_sync() as s:
        s.write(lambda tx: tx.jobs.enqueue("a", "noop", jobs(40), 1.0, None))
        s.write(lambda tx: tx.jobs.enqueue("b", "noop", jobs(40), 1.0, None))
        with pytest.raises(NotFoundError, match="unknown job 999"):
            s.write(lambda tx: tx.qa.number_qa_successes([1, 999]))
    got: dict[str, list[int]] = {"a": [], "b": []}
    start = threading.Barrier(2)
    lock = threading.Lock()

    def number(ids: list[int]) -> None:
        with backend.open_sync() as s:
            start.wait()
            for i in range(0, len(ids), 4):  # a (a, a, b, b)-shaped batch per transaction
                chunk = ids[i : i + 4]
                numbers = s.write(lambda tx, c=chunk: tx.qa.number_qa_successes(c))  # type: ignore[misc]
                with lock:
                    for job_id, n in zip(chunk, numbers, strict=True):
                        got["a" if job_id <= 40 else "b"].append(n)

    def mixed(first: int) -> list[int]:
        return [j for k in range(first, 40, 4) for j in (k + 1, k + 3, k + 41, k + 43)]

    threads = [threading.Thread(target=number, args=(mixed(f),)) for f in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(got["a"]) == list(range(1, 41))
    assert sorted(got["b"]) == list(range(1, 41))
