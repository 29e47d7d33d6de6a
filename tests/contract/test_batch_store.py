"""The batches repository on every back end: rows and pages, remote status that never goes
backwards, poll failures, resubmission trees, and poll and submit leases on real time."""

from __future__ import annotations

import time

import pytest

from batchdash.core.batch_records import NewBatch
from batchdash.core.db.ports import SyncStore, Tx
from batchdash.core.errors import NotFoundError, StoreError
from tests.conftest import wait_until
from tests.contract.backends import Backend

#: A lease long enough to hold during a few statements, short enough to wait out.
LEASE = 0.5


def new_batch(queue: str = "q", **kw: object) -> NewBatch:
    return NewBatch(queue, "/v1/chat/completions", "m", **kw)  # type: ignore[arg-type]


def add(s: SyncStore, new: NewBatch, now: float = 1.0) -> int:
    return s.write(lambda tx: tx.batches.add_batch(new, now))


def batch_kinds(s: SyncStore) -> list[str]:
    return [e.kind for e in s.read(lambda tx: tx.events.list_events(None)) if e.job_id is None]


def test_batches_list_newest_first_page_and_find_by_either_id(backend: Backend) -> None:
    with backend.open_sync() as s:
        a = add(s, new_batch(remote_id="batch_a", state="succeeded", raw_status="completed"), 1.0)
        b = add(s, new_batch(remote_id="batch_b", state="running"), 2.0)
        c = add(s, new_batch(submit_key="sk"), 3.0)
        assert s.read(lambda tx: tx.batches.count_batches()) == 3
        assert [x.id for x in s.read(lambda tx: tx.batches.list_batches())] == [c, b, a]
        page = s.read(lambda tx: tx.batches.list_batches(limit=1, offset=1))
        assert [x.id for x in page] == [b]
        active = s.read(lambda tx: tx.batches.list_batches(active_only=True))
        assert [x.id for x in active] == [c, b]
        first = s.read(lambda tx: tx.batches.list_batches(active_first=True))
        assert [x.id for x in first] == [c, b, a]
        assert s.read(lambda tx: tx.batches.get_batch("batch_b")).id == b
        assert s.read(lambda tx: tx.batches.get_batch(str(a))).remote_id == "batch_a"
        assert s.read(lambda tx: tx.batches.known_remote_ids()) == {"batch_a", "batch_b"}
        assert [x.id for x in s.read(lambda tx: tx.batches.submitting_batches())] == [c]
        assert batch_kinds(s) == ["batch_imported", "batch_imported", "batch_intent"]


def test_update_batch_checks_names_and_serializes_json(backend: Backend) -> None:
    with backend.open_sync() as s:
        batch_id = add(s, new_batch(metadata={"k": "v"}))
        fields = {"metadata": {"k": "w"}, "errors": [{"code": "x"}], "total": 5}
        s.write(lambda tx: tx.batches.update_batch(batch_id, fields, 2.0, ("note", "hi")))
        got = s.read(lambda tx: tx.batches.get_batch(batch_id))
        assert (got.metadata, got.errors, got.total, got.updated_at) == (
            {"k": "w"},
            [{"code": "x"}],
            5,
            2.0,
        )
        assert batch_kinds(s) == ["batch_intent", "note"]
        with pytest.raises(StoreError, match=r"update_batch: unknown columns \['x; DROP'\]"):
            s.write(lambda tx: tx.batches.update_batch(batch_id, {"x; DROP": 1}, 3.0))
        with pytest.raises(NotFoundError, match="unknown batch 99"):
            s.write(lambda tx: tx.batches.update_batch(99, {"total": 1}, 3.0))


def test_a_poll_is_recorded_forwards_only_and_failures_back_off(backend: Backend) -> None:
    with backend.open_sync() as s:
        batch_id = add(s, new_batch(remote_id="batch_r", state="validating"))

        def poll(raw: str) -> bool:
            return s.write(lambda tx: tx.batches.record_remote(batch_id, {"raw_status": raw}, 2.0))

        assert s.write(lambda tx: tx.batches.note_poll_failure(batch_id, "timeout", 1.5)) == 1
        assert s.write(lambda tx: tx.batches.note_poll_failure(batch_id, "timeout", 1.6)) == 2
        assert s.write(lambda tx: tx.batches.mark_unreachable(batch_id, 1.7))
        assert not s.write(lambda tx: tx.batches.mark_unreachable(batch_id, 1.8))
        assert poll("in_progress")
        got = s.read(lambda tx: tx.batches.get_batch(batch_id))
        assert (got.poll_failures, got.poll_error, got.unreachable_since) == (0, None, None)
        assert poll("in_progress") and not poll("validating")
        assert poll("some_other_word") and poll("completed") and not poll("in_progress")
        assert s.read(lambda tx: tx.batches.get_batch(batch_id)).raw_status == "completed"
        assert batch_kinds(s).count("batch_status") == 3
        assert batch_kinds(s).count("batch_unreachable") == 1
        with pytest.raises(StoreError, match="record_remote: unknown columns"):
            s.write(lambda tx: tx.batches.record_remote(batch_id, {"nope": 1}, 3.0))
        with pytest.raises(NotFoundError):
            s.write(lambda tx: tx.batches.record_remote(99, {"raw_status": "completed"}, 3.0))
        with pytest.raises(NotFoundError):
            s.write(lambda tx: tx.batches.note_poll_failure(99, "x", 3.0))


def test_resubmitted_batches_know_their_children(backend: Backend) -> None:
    with backend.open_sync() as s:
        parent = add(s, new_batch(state="partial"))
        other = add(s, new_batch(state="partial"))
        child = add(s, new_batch(parent_id=parent))
        assert s.read(lambda tx: tx.batches.batch_children(parent)) == [child]
        assert s.read(lambda tx: tx.batches.batch_children(other)) == []
        assert s.read(lambda tx: tx.batches.settled_batches([parent, other])) == {parent}
        assert s.read(lambda tx: tx.batches.settled_batches([])) == set()


def test_due_batches_and_an_exclusive_poll_lease_on_real_time(backend: Backend) -> None:
    with backend.open_sync() as s:
        running = add(s, new_batch(remote_id="b1", state="running"))
        later = add(s, new_batch(remote_id="b2", state="running"))
        add(s, new_batch(state="submitting"))  # not submitted yet: nothing to poll
        done = add(s, new_batch(remote_id="b3", state="succeeded"))  # results not in yet
        now = time.time()
        s.write(lambda tx: tx.batches.update_batch(later, {"next_poll_at": now + 3600}, now))
        due = s.read(lambda tx: tx.batches.batches_due(time.time()))
        assert [b.id for b in due] == [running, done]
        everything = s.read(lambda tx: tx.batches.batches_due(float("inf")))
        assert [b.id for b in everything] == [running, done, later]

        def claim(owner: str, dead: str | None = None, lease: float = LEASE) -> bool:
            t = time.time()
            got = s.write(
                lambda tx: tx.batches.claim_batch_poll(running, owner, t + lease, t, dead)
            )
            return got is not None

        assert claim("a:1:x") and claim("a:1:x")  # the holder may claim again
        assert not claim("b:2:y")
        assert claim("b:2:y", dead="a:1:x")  # the caller saw a:1 die
        assert not s.write(
            lambda tx: tx.batches.renew_batch_poll(running, "a:1:x", time.time() + LEASE)
        )
        assert s.write(
            lambda tx: tx.batches.renew_batch_poll(running, "b:2:y", time.time() + LEASE)
        )
        lease = s.read(lambda tx: tx.batches.get_batch(running)).poll_lease_until
        assert lease is not None and abs(lease - (time.time() + LEASE)) < 5  # server clock
        wait_until(lambda: claim("c:3:z", lease=60), timeout=5, what="the poll lease to expire")
        s.write(lambda tx: tx.batches.release_batch_poll(running, "b:2:y"))  # not the holder
        assert not claim("d:4:w")
        s.write(lambda tx: tx.batches.release_batch_poll(running, "c:3:z"))
        assert claim("d:4:w")
        t = time.time()
        assert s.write(lambda tx: tx.batches.claim_batch_poll(later, "d:4:w", t + 1, t)) is None


def test_a_submit_lease_is_taken_renewed_and_dropped_by_its_owner(backend: Backend) -> None:
    with backend.open_sync() as s:
        batch_id = add(s, new_batch())
        assert s.read(lambda tx: tx.batches.get_submit_lease(batch_id)) is None
        until = time.time() + 60
        s.write(lambda tx: tx.batches.put_submit_lease(batch_id, "a:1:x", until))
        lease = s.read(lambda tx: tx.batches.get_submit_lease(batch_id))
        assert lease is not None and lease[0] == "a:1:x" and abs(lease[1] - until) < 1
        s.write(lambda tx: tx.batches.put_submit_lease(batch_id, "b:2:y", until + 60))
        lease = s.read(lambda tx: tx.batches.get_submit_lease(batch_id))
        assert lease is not None and lease[0] == "b:2:y" and abs(lease[1] - until - 60) < 1
        s.write(lambda tx: tx.batches.drop_submit_lease(batch_id, "a:1:x"))
        assert s.read(lambda tx: tx.batches.get_submit_lease(batch_id)) is not None
        s.write(lambda tx: tx.batches.drop_submit_lease(batch_id, "b:2:y"))
        assert s.read(lambda tx: tx.batches.get_submit_lease(batch_id)) is None


def test_qa_batches_are_collected_once(backend: Backend) -> None:
    def ingested(metadata: dict[str, str] | None) -> int:
        def write(tx: Tx) -> int:
            batch_id = tx.batches.add_batch(new_batch(metadata=metadata), 1.0)
            tx.batches.update_batch(batch_id, {"ingested_at": 2.0, "state": "succeeded"}, 2.0)
            return batch_id

        return s.write(write)

    with backend.open_sync() as s:
        qa = ingested({"qa_of": "7"})
        ingested({"other": "qa_of"})
        ingested(None)
        add(s, new_batch(metadata={"qa_of": "8"}))  # not ingested yet
        [found] = s.read(lambda tx: tx.batches.qa_batches_to_collect("qa_of"))
        assert found.id == qa
        s.write(lambda tx: tx.batches.mark_qa_collected(found, "3 verdicts", 3.0))
        assert s.read(lambda tx: tx.batches.qa_batches_to_collect("qa_of")) == []
