"""The notices repository's contract on every back end: a channel starts once with its
baseline, remembers what it sent across store reopenings, and never repeats an id."""

from __future__ import annotations

from tests.contract.backends import Backend


def test_a_new_channel_takes_what_is_already_true_as_baseline(backend: Backend) -> None:
    with backend.open_sync() as s:
        assert s.read(lambda tx: tx.notices.channel_started("cmd:a")) is None
        assert s.write(lambda tx: tx.notices.start_channel("cmd:a", ["batch:1:failed"], 100.0))
        assert s.read(lambda tx: tx.notices.channel_started("cmd:a")) == 100.0
        ids = ["batch:1:failed", "batch:2:succeeded"]
        assert s.read(lambda tx: tx.notices.unsent("cmd:a", ids)) == ["batch:2:succeeded"]


def test_a_channel_starts_only_once(backend: Backend) -> None:
    with backend.open_sync() as s:
        s.write(lambda tx: tx.notices.start_channel("cmd:a", [], 100.0))
        again = s.write(lambda tx: tx.notices.start_channel("cmd:a", ["batch:9:failed"], 200.0))
        assert again is False
        assert s.read(lambda tx: tx.notices.channel_started("cmd:a")) == 100.0
        assert s.read(lambda tx: tx.notices.unsent("cmd:a", ["batch:9:failed"])) == [
            "batch:9:failed"
        ]


def test_sent_ids_are_remembered_per_channel_across_reopening(backend: Backend) -> None:
    ids = [f"batch:{i}:succeeded" for i in range(1200)]  # more than one statement's worth
    with backend.open_sync() as s:
        s.write(lambda tx: tx.notices.start_channel("cmd:a", [], 1.0))
        s.write(lambda tx: tx.notices.start_channel("hook:b", [], 1.0))
        s.write(lambda tx: tx.notices.mark_sent("cmd:a", ids[:1000], 2.0))
        s.write(lambda tx: tx.notices.mark_sent("cmd:a", ids[:3], 3.0))  # again: harmless
    with backend.open_sync() as s:
        assert s.read(lambda tx: tx.notices.unsent("cmd:a", ids)) == ids[1000:]
        assert s.read(lambda tx: tx.notices.unsent("hook:b", ids[:2])) == ids[:2]
        assert s.read(lambda tx: tx.notices.unsent("cmd:a", [])) == []
