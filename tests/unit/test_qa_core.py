"""QA without a network: rubrics, verdict parsing, sampling, and the QA store functions
(skip/replace rules, deterministic samples, aggregates checked against a hand computation)."""

from __future__ import annotations

import json
import re
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchdash.core import qa
from batchdash.core.db import open_sync_store
from batchdash.core.db.ports import SyncStore
from batchdash.core.errors import NotFoundError
from batchdash.core.models import Job, JobFilter, NewJob
from batchdash.core.qa_models import QAResult

DIMS = qa.DEFAULT_DIMENSIONS


def verdict(**scores: int | float | str) -> str:
    return json.dumps({"comment": "fine", **scores})


# --------------------------------------------------------------------------- rubric


def test_default_rubric_asks_for_integer_scores_1_to_10_and_a_comment() -> None:
    schema = qa.DEFAULT_RUBRIC.schema()
    assert schema["required"] == [*DIMS, "comment"]
    assert schema["additionalProperties"] is False
    for name in DIMS:
        assert schema["properties"][name] == {"type": "integer", "minimum": 1, "maximum": 10}
    assert schema["properties"]["comment"]["type"] == "string"


def test_custom_rubric_always_includes_overall_first() -> None:
    rubric = qa.Rubric.from_json('{"prompt": "Judge code.", "dimensions": ["correctness"]}', "f")
    assert rubric.dimensions == ("overall", "correctness")
    assert "Judge code." in rubric.system_prompt()
    assert qa.Rubric.from_json(rubric.to_json(), "again") == rubric


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not valid JSON"),
        ("[]", "expected an object"),
        ('{"prompt": ""}', "prompt must be"),
        ('{"dimensions": "accuracy"}', "list of names"),
        ('{"dimensions": ["Bad Name"]}', "bad dimension 'Bad Name'"),
        ('{"dimensions": ["comment"]}', "bad dimension 'comment'"),
        ('{"promt": "typo"}', "unknown field(s) promt"),
    ],
)
def test_bad_rubric_files_are_one_line_errors_naming_the_file(text: str, message: str) -> None:
    with pytest.raises(qa.RubricError, match=r"^rubric\.json: ") as info:
        qa.Rubric.from_json(text, "rubric.json")
    assert message in str(info.value)


# --------------------------------------------------------------------------- verdicts


def test_valid_verdict_gives_scores_for_every_dimension() -> None:
    text = verdict(overall=7, accuracy=8, fluency=9, terminology=6, completeness=10)
    scores, comment = qa.parse_verdict(text, DIMS)
    assert scores == {"overall": 7, "accuracy": 8, "fluency": 9, "terminology": 6,
                      "completeness": 10}  # fmt: skip
    assert comment == "fine"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json {", "not valid JSON"),
        ("[1, 2]", "not an object"),
        (verdict(overall=11, accuracy=1, fluency=1, terminology=1, completeness=1),
         "overall=11 out of range"),
        (verdict(overall=0, accuracy=1, fluency=1, terminology=1, completeness=1),
         "overall=0 out of range"),
        (verdict(overall=7.5, accuracy=1, fluency=1, terminology=1, completeness=1),
         "overall=7.5 out of range"),
        (verdict(overall="7", accuracy=1, fluency=1, terminology=1, completeness=1),
         "overall='7' is not a number"),
        (verdict(overall=7, accuracy=1, fluency=1, terminology=1), "completeness missing"),
    ],
)  # fmt: skip
def test_unusable_verdicts_are_errors_not_scores(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="judge") as info:
        qa.parse_verdict(text, DIMS)
    assert message in str(info.value)


def test_infinite_or_nan_scores_are_errors_too() -> None:
    for value in (float("inf"), float("-inf"), float("nan")):
        text = verdict(overall=value, accuracy=1, fluency=1, terminology=1, completeness=1)
        assert "Infinity" in text or "NaN" in text  # what json.loads accepts back
        with pytest.raises(ValueError, match="out of range"):
            qa.parse_verdict(text, DIMS)


def test_batch_custom_ids_fit_the_strictest_provider_rule() -> None:
    cid = qa.custom_id(123456789, "ft:gpt-4o-mini:my org/" + "x" * 100, "a1b2c3")
    assert len(cid) == 64 and re.fullmatch(r"[A-Za-z0-9_-]{1,64}", cid)
    assert cid.startswith("qa-123456789-ft_gpt-4o-mini_my_org_") and cid.endswith("-a1b2c3")


def chat_completion(content: str | None, refusal: str | None = None) -> dict[str, object]:
    return {
        "choices": [{"message": {"content": content, "refusal": refusal}}],
        "usage": {"prompt_tokens": 1000, "completion_tokens": 100},
    }


def test_verdict_rows_keep_raw_text_tokens_and_batch_price() -> None:
    good = verdict(overall=7, accuracy=8, fluency=9, terminology=6, completeness=10)
    row = qa.JudgeCall(1, "gpt-4o-mini").verdict(chat_completion(good), DIMS)
    assert row.error is None and row.overall == 7 and row.raw is None
    assert (row.input_tokens, row.output_tokens) == (1000, 100)
    assert row.cost == pytest.approx((1000 * 0.15 + 100 * 0.60) / 1e6)
    batch = qa.JudgeCall(1, "gpt-4o-mini", batch=True).verdict(chat_completion(good), DIMS)
    assert batch.cost == pytest.approx(row.cost / 2)

    bad = qa.JudgeCall(1, "gpt-4o-mini").verdict(chat_completion("oops {"), DIMS)
    assert bad.scores == {} and bad.overall is None
    assert bad.error is not None and "not valid JSON" in bad.error
    assert bad.raw == "oops {" and bad.input_tokens == 1000

    refused = qa.JudgeCall(1, "j").verdict(chat_completion(None, "I can't"), DIMS)
    assert refused.error == "judge refused: I can't" and refused.cost is None


# --------------------------------------------------------------------------- what the judge sees


def test_judge_sees_request_messages_and_reply_text() -> None:
    payload = {
        "url": "/v1/chat/completions",
        "body": {"model": "m", "messages": [{"role": "user", "content": "Translate: Hallo"}]},
    }
    result = {"choices": [{"message": {"role": "assistant", "content": "Hello"}}]}
    assert qa.job_input_text(payload) == "[user] Translate: Hallo"
    assert qa.job_output_text(result) == "Hello"
    # A batch output line wraps the completion; generic payloads and results are JSON.
    assert qa.job_output_text({"response": {"status_code": 200, "body": result}}) == "Hello"
    assert json.loads(qa.job_input_text({"text": "x"})) == {"text": "x"}
    assert json.loads(qa.job_output_text({"output": "y"})) == {"output": "y"}


def test_judge_request_cuts_huge_texts_and_names_the_schema() -> None:
    job = Job(
        id=1, queue="q", key="k", handler="sim", payload={"text": "x" * 50_000},
        status="succeeded", priority=0, attempts=1, max_attempts=3, run_after=0,
        created_at=0, updated_at=0, result={"output": "y"},
    )  # fmt: skip
    body = qa.judge_request(job, "gpt-4o-mini", qa.DEFAULT_RUBRIC)
    user = body["messages"][1]["content"]
    assert len(user) < 2 * qa.MAX_TEXT_CHARS and "more characters cut" in user
    assert body["response_format"]["type"] == "json_schema"
    assert qa.request_dimensions(body) == DIMS


# --------------------------------------------------------------------------- sampling


@pytest.mark.parametrize(
    ("text", "sample"),
    [
        ("200", qa.Sample(limit=200)),
        ("0.25", qa.Sample(fraction=0.25)),
        ("10%", qa.Sample(fraction=0.1)),
        ("1", qa.Sample(limit=1)),
        ("all", qa.Sample()),
    ],
)
def test_parse_sample(text: str, sample: qa.Sample) -> None:
    assert qa.parse_sample(text) == sample


@pytest.mark.parametrize("text", ["0", "-3", "1.5", "abc", "150%"])
def test_parse_sample_rejects_nonsense(text: str) -> None:
    with pytest.raises(ValueError, match="--sample"):
        qa.parse_sample(text)


def test_every_nth_means_exactly_the_nth_items() -> None:
    assert [n for n in range(1, 31) if qa.should_sample(n, 10)] == [10, 20, 30]
    assert qa.parse_judges(" a, b ,a,") == ("a", "b")
    assert qa.parse_judges(None) == (qa.DEFAULT_JUDGE,)


# --------------------------------------------------------------------------- store


def add_jobs(db: SyncStore, queue: str, keys: list[str]) -> None:
    jobs = [NewJob(key, {}) for key in keys]
    db.write(lambda c: c.jobs.enqueue(queue, "sim", jobs, time.time(), None))


@pytest.fixture
def db(tmp_path: Path) -> Iterator[SyncStore]:
    with open_sync_store(tmp_path / "qa.db") as s:
        add_jobs(s, "papers", [f"p{i}" for i in range(200)])  # ids 1-200
        add_jobs(s, "other", [f"o{i}" for i in range(5)])  # ids 201-205
        yield s


def write(db: SyncStore, job_id: int, judge: str, replace: bool = False, **scores: float) -> bool:
    row = QAResult(job_id, judge, scores, "c", None, None, 10, 5, 0.001, time.time())
    return db.write(lambda c: c.qa.save_qa_result(row, replace=replace))


def write_error(db: SyncStore, job_id: int, judge: str, replace: bool = False) -> bool:
    row = QAResult(job_id, judge, {}, None, "bad JSON", "raw {", 10, 5, None, time.time())
    return db.write(lambda c: c.qa.save_qa_result(row, replace=replace))


def test_successes_are_numbered_per_queue_across_connections(db: SyncStore) -> None:
    """Two workers' connections share one tally per queue: every 7th is every 7th overall."""
    with open_sync_store(db.path) as other:
        numbered: dict[int, int] = {}
        for first in range(1, 61, 3):  # the workers take turns, three jobs at a time
            worker = db if first % 2 else other
            ids = [first, first + 1, first + 2, 201 + first % 5]  # papers + an `other` job
            numbers = worker.write(lambda tx, ids=ids: tx.qa.number_qa_successes(ids))
            numbered.update(zip(ids[:3], numbers[:3], strict=True))
    assert sorted(numbered.values()) == list(range(1, 61))
    sampled = [n for n in numbered.values() if qa.should_sample(n, 7)]
    assert sampled == [7, 14, 21, 28, 35, 42, 49, 56]
    again = db.write(lambda c: c.qa.number_qa_successes([201, 1]))
    assert again == [21, 61]  # `other` counted its 20 successes on its own
    with pytest.raises(NotFoundError, match="unknown job 999"):
        db.write(lambda c: c.qa.number_qa_successes([999]))


def test_scored_pairs_are_kept_unless_replace_and_errors_are_always_retried(db: SyncStore) -> None:
    assert write(db, 1, "a", overall=7, accuracy=6)
    assert not write(db, 1, "a", overall=2, accuracy=2)  # already scored: skipped
    assert [r.overall for r in db.tx.qa.qa_results_for_job(1)] == [7]
    assert write(db, 1, "a", replace=True, overall=3, accuracy=4)  # --rescore
    (result,) = db.tx.qa.qa_results_for_job(1)
    assert result.scores == {"overall": 3, "accuracy": 4}

    assert write_error(db, 2, "a")
    assert db.tx.qa.qa_scored_pairs([1, 2], ["a", "b"]) == {(1, "a")}
    assert write(db, 2, "a", overall=9)  # an error is not a score: replaced
    (result,) = db.tx.qa.qa_results_for_job(2)
    assert (result.error, result.raw, result.overall) == (None, None, 9)
    kinds = [e.kind for e in db.tx.events.list_events(2)]
    assert kinds == ["enqueued", "qa_error", "qa_scored"]


def test_samples_are_deterministic_spread_and_nested(db: SyncStore) -> None:
    flt = JobFilter(queues=("papers",))
    first = db.tx.qa.qa_sample_ids(flt, limit=20)
    assert first == db.tx.qa.qa_sample_ids(flt, limit=20)
    assert len(set(first)) == 20
    assert first == db.tx.qa.qa_sample_ids(flt, limit=40)[:20]
    # Spread over the whole id range, not the first 20 ids.
    assert max(first) - min(first) > 100

    tenth = db.tx.qa.qa_sample_ids(flt, fraction=0.1)
    quarter = db.tx.qa.qa_sample_ids(flt, fraction=0.25)
    assert 10 <= len(tenth) <= 30 and set(tenth) < set(quarter)
    assert db.tx.qa.qa_sample_ids(flt, fraction=1.0) == list(range(1, 201))


def test_samples_leave_out_qa_batch_queues_unless_named(db: SyncStore) -> None:
    add_jobs(db, "qa:papers", ["qa-1-j"])
    everything = db.tx.qa.qa_sample_ids(JobFilter(), skip_queue_prefix="qa:")
    assert len(everything) == 205
    named = JobFilter(queues=("qa:papers",))
    assert db.tx.qa.qa_sample_ids(named, skip_queue_prefix="qa:") == [206]


def test_rubric_per_queue(db: SyncStore) -> None:
    assert qa.queue_rubric(db.tx, "papers") == qa.DEFAULT_RUBRIC
    custom = qa.Rubric("Judge summaries.", ("overall", "faithfulness"))
    db.write(lambda c: c.queues.set_qa_rubric("papers", custom.to_json()))
    assert qa.queue_rubric(db.tx, "papers") == custom
    assert qa.queue_rubric(db.tx, "other") == qa.DEFAULT_RUBRIC
    with pytest.raises(NotFoundError, match="unknown queue 'nope'"):
        db.write(lambda c: c.queues.set_qa_rubric("nope", None))


def test_summary_matches_a_hand_computation(db: SyncStore) -> None:
    table = {  # job: {judge: overall}, accuracy = overall - 1
        1: {"a": 9, "b": 8},
        2: {"a": 2, "b": 7},  # 5 apart: a disagreement
        3: {"a": 5},
        4: {"a": 6, "b": 3},  # 3 apart: exactly the threshold
        201: {"a": 1, "b": 1},  # queue "other"
    }
    for job_id, verdicts in table.items():
        for judge, overall in verdicts.items():
            write(db, job_id, judge, overall=overall, accuracy=overall - 1)
    write_error(db, 5, "b")

    s = db.tx.qa.qa_summary(queue="papers", worst=3)
    papers = {j: v for j, v in table.items() if j != 201}
    assert (s.results, s.errors) == (7, 1)
    for stat in s.stats:
        values = [v[stat.judge] for v in papers.values() if stat.judge in v]
        if stat.dimension == "accuracy":
            values = [x - 1 for x in values]
        assert stat.n == len(values)
        assert stat.mean == pytest.approx(statistics.mean(values))
        assert (stat.minimum, stat.maximum) == (min(values), max(values))
    assert {(st.judge, st.dimension) for st in s.stats} == {
        (j, d) for j in "ab" for d in ("accuracy", "overall")
    }
    assert s.distribution == {9: 1, 8: 1, 2: 1, 7: 1, 5: 1, 6: 1, 3: 1}
    assert s.worst == [(2, "p1", "a", 2), (4, "p3", "b", 3), (3, "p2", "a", 5)]
    assert s.disagreements == [(2, "p1", 2, 7), (4, "p3", 3, 6)]

    everywhere = db.tx.qa.qa_summary()
    assert (everywhere.results, everywhere.distribution[1]) == (9, 2)
    assert everywhere.worst[0][0] == 201


def test_score_filters_select_jobs_by_their_lowest_and_highest_overall(db: SyncStore) -> None:
    write(db, 1, "a", overall=9)
    write(db, 1, "b", overall=4)
    write(db, 2, "a", overall=7)
    write_error(db, 3, "a")
    below = db.tx.jobs.list_jobs(JobFilter(score_below=6))
    above = db.tx.jobs.list_jobs(JobFilter(score_above=8))
    assert [j.id for j in below] == [1]
    assert [j.id for j in above] == [1]
    assert db.tx.jobs.count_jobs(JobFilter(score_below=8)) == 2


def test_qa_export_rows_have_a_column_per_dimension(db: SyncStore) -> None:
    write(db, 2, "a", overall=7, accuracy=6)
    write_error(db, 2, "b")
    assert db.tx.qa.qa_dimensions() == ["accuracy", "overall"]
    rows = list(db.tx.qa.iter_qa_rows(JobFilter(queues=("papers",))))
    assert [(r["judge"], r["scores"], r["error"]) for r in rows] == [
        ("a", {"accuracy": 6, "overall": 7}, None),
        ("b", {}, "bad JSON"),
    ]
    assert list(db.tx.qa.iter_qa_rows(JobFilter(queues=("other",)))) == []
