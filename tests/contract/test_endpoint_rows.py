"""Endpoint names, providers and Anthropic's request counts on every back end: stored on
batches and jobs, handed to the worker with its claim, and the `provider:` filter."""

from __future__ import annotations

from batchdash.core.batch_records import NewBatch
from batchdash.core.models import JobFilter, NewJob
from tests.contract.backends import Backend

COUNTS = {"processing": 0, "succeeded": 3, "errored": 1, "canceled": 0, "expired": 1}


def test_endpoint_names_and_request_counts_round_trip(backend: Backend) -> None:
    with backend.open_sync() as s:
        new = NewBatch("q", "/v1/messages", "claude", provider="anthropic", endpoint_name="eu")
        batch_id = s.write(lambda tx: tx.batches.add_batch(new, 1.0))
        s.write(lambda tx: tx.batches.record_remote(batch_id, {"request_counts": COUNTS}, 2.0))
        batch = s.read(lambda tx: tx.batches.get_batch(batch_id))
        assert (batch.provider, batch.endpoint_name, batch.request_counts) == (
            "anthropic",
            "eu",
            COUNTS,
        )
        s.write(
            lambda tx: tx.jobs.enqueue("named", "openai", [NewJob("a", {})], 3.0, None, "azure")
        )
        s.write(lambda tx: tx.jobs.enqueue("plain", "openai", [NewJob("b", {})], 3.0, None))
        claims = s.write(lambda tx: tx.jobs.claim("w", "t", 10, 30.0, (), 4.0))
        assert {c.key: c.endpoint_name for c in claims} == {"a": "azure", "b": None}
        [job] = s.read(lambda tx: tx.jobs.list_jobs(JobFilter(queues=("named",))))
        assert job.endpoint_name == "azure"


def test_provider_filter_selects_its_batch_lines_and_its_handlers_local_jobs(
    backend: Backend,
) -> None:
    with backend.open_sync() as s:

        def batch_of(provider: str, key: str) -> None:
            new = NewBatch("b-" + provider, "/v1/x", "m", provider=provider)
            batch_id = s.write(lambda tx: tx.batches.add_batch(new, 1.0))
            line = (1, key, key, "{}")
            s.write(lambda tx: tx.items.add_batch_lines(batch_id, new.queue, "batch", [line], 1.0))

        batch_of("anthropic", "claude-line")
        batch_of("openai", "gpt-line")
        for handler in ("anthropic", "openai", "sim"):
            job = NewJob(f"{handler}-local", {})
            s.write(lambda tx, h=handler, j=job: tx.jobs.enqueue("local", h, [j], 2.0, None))

        def keys(*providers: str) -> set[str]:
            flt = JobFilter(providers=providers)
            found = {j.key for j in s.read(lambda tx: tx.jobs.list_jobs(flt))}
            assert s.read(lambda tx: tx.jobs.count_jobs(flt)) == len(found)
            return found

        assert keys("anthropic") == {"claude-line", "anthropic-local"}
        assert keys("openai") == {"gpt-line", "openai-local"}
        assert keys("anthropic", "openai") == {
            "claude-line",
            "anthropic-local",
            "gpt-line",
            "openai-local",
        }
