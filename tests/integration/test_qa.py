"""QA against the simulator's json_schema answers, through real CLI and worker processes:
scores per judge, exact every-Nth sampling, invalid judge output and failing judges stored
as errors, skip/rescore, aggregates equal to a hand computation, and the QA export."""

from __future__ import annotations

import csv
import io
import json
import signal
import statistics
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchdash.core import qa
from batchdash.core.db import open_sync_store
from batchdash.core.models import JobFilter, JobStatus
from batchdash.core.qa_models import QAResult
from batchdash.core.sim.server import SimConfig, SimServer
from tests.conftest import cli, open_db, spawn, wait_until

FAST_WORKER = ("--heartbeat", "0.2", "--poll", "0.05", "--sim-latency", "0")


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    with SimServer(SimConfig(speed=1000)) as server:
        yield server


@pytest.fixture
def env(sim: SimServer) -> dict[str, str]:
    """What judge processes need: the simulator's URL and a (fake) key."""
    return {"OPENAI_BASE_URL": sim.base_url, "OPENAI_API_KEY": "sim"}


def enqueue(tmp_path: Path, db: Path | str, texts: list[str], queue: str = "papers") -> None:
    path = tmp_path / f"{queue}.jsonl"
    with path.open("w") as out:
        for i, text in enumerate(texts, 1):
            out.write(json.dumps({"key": f"{queue}-{i:03d}", "payload": {"text": text}}) + "\n")
    cli("enqueue", str(path), "--db", str(db), "--queue", queue, "--handler", "sim")


def run_jobs(db: Path | str, *extra: str, **env: str) -> None:
    """One worker, one job at a time, until the queue is empty."""
    proc = spawn("worker", "--db", str(db), "--concurrency", "1", "--idle-exit", "0.5",
                 *FAST_WORKER, *extra, **env)  # fmt: skip
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out


def results(db: Path | str) -> dict[tuple[int, str], QAResult]:
    with open_db(db) as s:
        ids = [j.id for j in s.tx.jobs.list_jobs()]
        return {(r.job_id, r.judge): r for i in ids for r in s.tx.qa.qa_results_for_job(i)}


def test_qa_run_stores_scores_per_judge_with_tokens_and_cost(
    tmp_path: Path, any_db: str, env: dict[str, str]
) -> None:
    db = db_path = any_db
    enqueue(tmp_path, db_path, [f"Satz Nummer {i}" for i in range(6)])
    run_jobs(db_path)
    out = cli("qa", "run", "--db", db, "--queue", "papers", "--judges", "gpt-4o-mini,j2", **env)
    assert "12 scored, 0 errors, 0 skipped" in out.stdout

    found = results(db_path)
    assert set(found) == {(job, judge) for job in range(1, 7) for judge in ("gpt-4o-mini", "j2")}
    for (_, judge), r in found.items():
        assert r.error is None and r.raw is None
        assert set(r.scores) == {"overall", "accuracy", "fluency", "terminology", "completeness"}
        assert all(1 <= v <= 10 and v == int(v) for v in r.scores.values())
        assert r.overall == r.scores["overall"] and r.comment
        assert r.input_tokens and r.output_tokens
        # A known model is priced at the synchronous rate; an unknown one is "?", not 0.
        if judge == "gpt-4o-mini":
            expected = (r.input_tokens * 0.15 + r.output_tokens * 0.60) / 1e6
            assert r.cost == pytest.approx(expected)
        else:
            assert r.cost is None

    again = cli("qa", "run", "--db", db, "--queue", "papers", "--judges", "gpt-4o-mini,j2", **env)
    assert "0 scored, 0 errors, 12 skipped" in again.stdout
    assert results(db_path) == found

    rescored = cli("qa", "run", "--db", db, "--judges", "j2", "--rescore", **env)
    assert "6 scored, 0 errors, 0 skipped" in rescored.stdout
    after = results(db_path)
    assert after[(1, "j2")].created_at > found[(1, "j2")].created_at
    assert after[(1, "gpt-4o-mini")] == found[(1, "gpt-4o-mini")]

    shown = json.loads(cli("qa", "show", "1", "--db", db, "--json").stdout)
    assert shown["job"]["id"] == 1
    assert [r["judge"] for r in shown["qa"]] == ["gpt-4o-mini", "j2"]


def test_sample_picks_the_same_jobs_every_time(
    tmp_path: Path, db_path: Path, env: dict[str, str]
) -> None:
    enqueue(tmp_path, db_path, [f"text {i}" for i in range(40)])
    run_jobs(db_path)
    db = str(db_path)
    cli("qa", "run", "--db", db, "--sample", "10", "--judges", "j1", **env)
    first = {job for job, _ in results(db_path)}
    assert len(first) == 10
    out = cli("qa", "run", "--db", db, "--sample", "10", "--judges", "j1", **env)
    assert "0 scored, 0 errors, 10 skipped" in out.stdout
    cli("qa", "run", "--db", db, "--sample", "20", "--judges", "j1", **env)
    second = {job for job, _ in results(db_path)}
    assert len(second) == 20 and first < second


def test_invalid_or_out_of_range_judge_output_is_an_error_with_the_raw_text(
    tmp_path: Path, db_path: Path, env: dict[str, str]
) -> None:
    enqueue(tmp_path, db_path, ["fine", "SIM_INVALID_JSON please", "SIM_OUT_OF_RANGE please"])
    run_jobs(db_path)
    db = str(db_path)
    out = cli("qa", "run", "--db", db, "--judges", "j1,j2", **env, check=False)
    assert "2 scored, 4 errors, 0 skipped" in out.stdout
    assert out.returncode == 1 and "4 of 6 judge calls failed" in out.stderr

    found = results(db_path)
    assert found[(1, "j1")].error is None
    for judge in ("j1", "j2"):
        invalid, out_of_range = found[(2, judge)], found[(3, judge)]
        for r in (invalid, out_of_range):
            assert r.overall is None and r.scores == {} and r.raw
        assert invalid.error and "not valid JSON" in invalid.error
        assert invalid.raw == "[sim] this is not JSON {"
        assert out_of_range.error and "out of range" in out_of_range.error
        assert json.loads(out_of_range.raw or "")["overall"] > 10

    summary = json.loads(cli("qa", "summary", "--db", db, "--json").stdout)["qa"]
    assert (summary["results"], summary["errors"]) == (2, 4)
    shown = cli("qa", "show", "2", "--db", db).stdout
    assert "ERROR judge output is not valid JSON" in shown and "raw: [sim] this is not" in shown


def test_a_judge_that_keeps_failing_leaves_an_error_row(
    tmp_path: Path, db_path: Path, env: dict[str, str]
) -> None:
    enqueue(tmp_path, db_path, ["SIM_FAIL_500 always", "SIM_FAIL_429 always", "fine"])
    run_jobs(db_path)
    out = cli("qa", "run", "--db", str(db_path), "--judges", "j1", **env, check=False)
    assert "1 scored, 2 errors" in out.stdout
    # Some judgements failed: say how many, exit 1 (the scores that worked are kept).
    assert out.returncode == 1
    assert out.stderr.startswith("batchdash: 2 of 3 judge calls failed (most often: HTTP ")
    found = results(db_path)
    assert (found[(1, "j1")].error or "").startswith("judge call failed: HTTP 500")
    assert (found[(2, "j1")].error or "").startswith("judge call failed: HTTP 429")
    assert found[(3, "j1")].error is None


def test_qa_run_with_a_rejected_key_exits_2_naming_the_reason(
    tmp_path: Path, db_path: Path, env: dict[str, str]
) -> None:
    enqueue(tmp_path, db_path, [f"Satz {i}" for i in range(4)])
    run_jobs(db_path)
    db = str(db_path)
    with SimServer(SimConfig(speed=1000, api_key="sk-right")) as locked:
        run = ("qa", "run", "--db", db, "--judges", "j1,j2,j3", "--concurrency", "2")
        bad = cli(*run, OPENAI_BASE_URL=locked.base_url, OPENAI_API_KEY="sk-wrong", check=False)
        assert bad.returncode == 2
        # The two calls in flight fail; the other ten are not made with a refused key.
        assert bad.stderr.splitlines() == [
            "batchdash: error: all 2 judge calls failed: HTTP 401: Incorrect API key provided. "
            "You can find your API key at https://platform.openai.com/account/api-keys. "
            "(simulated); the other 10 were not made"
        ]
        assert "0 scored, 2 errors, 10 not made (API key refused), 0 skipped" in bad.stdout
        assert "sk-wrong" not in bad.stdout + bad.stderr
        good = cli(*run, OPENAI_BASE_URL=locked.base_url, OPENAI_API_KEY="sk-right")
    assert "12 scored, 0 errors, 0 skipped" in good.stdout and good.stderr == ""


def test_worker_scores_exactly_every_nth_succeeded_job(
    tmp_path: Path, db_path: Path, env: dict[str, str]
) -> None:
    enqueue(tmp_path, db_path, [f"Zeile {i}" for i in range(10)])
    run_jobs(db_path, "--qa-every", "3", "--qa-judges", "j1,j2", **env)
    found = results(db_path)
    assert set(found) == {(job, judge) for job in (3, 6, 9) for judge in ("j1", "j2")}
    assert all(r.error is None for r in found.values())


def test_every_nth_success_of_the_queue_is_judged_across_worker_processes(
    tmp_path: Path, any_db: str, env: dict[str, str]
) -> None:
    """4 workers share 60 successes; every 7th of the queue (not of each worker) is judged.

    Counted per worker, 60 successes split four ways judge 8 only if the remainders add
    up to exactly 4; the store's per-queue count judges floor(60 / 7) = 8 every time.
    """
    total, every, workers = 60, 7, 4
    db = db_path = any_db
    cli("init", "--db", db)
    procs = [
        spawn("worker", "--db", db, "--concurrency", "2", "--heartbeat", "0.2", "--poll", "0.02",
              "--sim-latency", "0.02", "--qa-every", str(every), "--qa-judges", "j1", **env)
        for _ in range(workers)
    ]  # fmt: skip
    try:
        with open_db(db_path) as s:
            wait_until(lambda: len(s.tx.workers.list_workers()) == workers, what="workers up")
        enqueue(tmp_path, db_path, [f"Zeile {i}" for i in range(total)])
        with open_db(db_path) as s:
            succeeded = JobFilter(statuses=(JobStatus.SUCCEEDED,))
            wait_until(lambda: s.tx.jobs.count_jobs(succeeded) == total, what="all done")
            shares = [w.done for w in s.tx.workers.list_workers()]
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)  # drain waits for the judges still running
        outputs = [proc.communicate(timeout=60)[0] for proc in procs]
    assert all(proc.returncode == 0 for proc in procs), outputs
    judged = results(db_path)
    assert len(judged) == total // every, f"judged {len(judged)}; worker shares {shares}"
    assert all(r.error is None and judge == "j1" for (_, judge), r in judged.items())


def test_worker_without_a_key_refuses_qa_sampling(db_path: Path) -> None:
    proc = cli("worker", "--db", str(db_path), "--qa-every", "3", check=False)
    assert proc.returncode == 2 and "OPENAI_API_KEY" in proc.stderr


def test_worker_qa_uses_the_key_variable_named_in_the_config_file(
    tmp_path: Path, db_path: Path, sim: SimServer
) -> None:
    """`[openai] api_key_env = "OTHER_KEY"` with only OTHER_KEY set: accepted, and judges."""
    config = tmp_path / "config.toml"
    config.write_text(f'[openai]\nbase_url = "{sim.base_url}"\napi_key_env = "OTHER_KEY"\n')
    env = {"BATCHDASH_CONFIG": str(config), "OTHER_KEY": "sim"}
    enqueue(tmp_path, db_path, [f"Zeile {i}" for i in range(4)])
    run_jobs(db_path, "--qa-every", "2", "--qa-judges", "j1", **env)
    found = results(db_path)
    assert set(found) == {(2, "j1"), (4, "j1")}
    assert all(r.error is None for r in found.values())


def test_summary_aggregates_match_a_hand_computation_and_export(
    tmp_path: Path, any_db: str, env: dict[str, str]
) -> None:
    db_path = any_db
    enqueue(tmp_path, db_path, [f"Abschnitt {i}" for i in range(12)])
    enqueue(tmp_path, db_path, ["other work"], queue="other")
    run_jobs(db_path)
    db = any_db
    cli("qa", "run", "--db", db, "--judges", "j1,j2", **env)
    cli("qa", "rubric", "papers", "--db", db, "--file", str(_rubric(tmp_path)))
    cli("qa", "run", "--db", db, "--judges", "j3", "--queue", "papers", "--sample", "4", **env)

    found = [r for (job, _), r in results(db_path).items() if job <= 12]
    summary = json.loads(cli("qa", "summary", "--db", db, "--queue", "papers", "--json").stdout)[
        "qa"
    ]
    assert summary["results"] == len(found) == 28 and summary["errors"] == 0
    for stat in summary["stats"]:
        values = [r.scores[stat["dimension"]] for r in found if r.judge == stat["judge"]]
        assert stat["n"] == len(values)
        assert stat["mean"] == pytest.approx(statistics.mean(values), abs=1e-3)
        assert (stat["min"], stat["max"]) == (min(values), max(values))
    dims_of_j3 = {s["dimension"] for s in summary["stats"] if s["judge"] == "j3"}
    assert dims_of_j3 == {"overall", "faithfulness"}
    histogram: dict[str, int] = {}
    for r in found:
        histogram[str(int(r.overall or 0))] = histogram.get(str(int(r.overall or 0)), 0) + 1
    assert summary["distribution"] == dict(sorted(histogram.items(), key=lambda kv: int(kv[0])))
    lowest = min((r.overall or 0, r.job_id) for r in found)
    assert (summary["worst"][0]["overall"], summary["worst"][0]["job_id"]) == lowest

    exported = cli("export", "--qa", "--db", db, "--format", "csv", "--queue", "papers").stdout
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert len(rows) == 28
    assert {"overall", "accuracy", "faithfulness", "judge", "key", "cost"} <= set(rows[0])
    assert {r["judge"] for r in rows if r["faithfulness"]} == {"j3"}


def _rubric(tmp_path: Path) -> Path:
    path = tmp_path / "rubric.json"
    path.write_text(json.dumps({"prompt": "Judge summaries.", "dimensions": ["faithfulness"]}))
    return path


def test_qa_as_a_remote_batch_round_trips_at_half_price(
    tmp_path: Path, db_path: Path, env: dict[str, str]
) -> None:
    enqueue(tmp_path, db_path, ["eins", "zwei", "SIM_INVALID_JSON drei", "vier"])
    run_jobs(db_path)
    db = str(db_path)
    judges = ("--judges", "gpt-4o-mini,j2")
    out = cli("qa", "run", "--db", db, "--as-batch", *judges, **env).stdout
    assert "submitted 8 judge requests for 4 jobs as batches 1, 2 into qa:papers" in out
    again = cli("qa", "run", "--db", db, "--as-batch", *judges, **env).stdout
    assert "nothing to submit: 4 jobs, 8 skipped" in again  # already waiting in a batch
    assert results(db_path) == {}

    cli("poll", "--db", db, "--until-done", "--interval", "0.05", timeout=120, **env)
    by_batch = results(db_path)
    assert set(by_batch) == {(job, judge) for job in range(1, 5) for judge in ("gpt-4o-mini", "j2")}
    assert {r.judge for r in by_batch.values() if r.error} == {"gpt-4o-mini", "j2"}
    assert [job for (job, _), r in by_batch.items() if r.error] == [3, 3]
    assert "not valid JSON" in (by_batch[(3, "j2")].error or "")
    with open_sync_store(db_path) as s:
        assert {(b.id, b.queue) for b in s.tx.batches.list_batches()} == {
            (1, "qa:papers"),
            (2, "qa:papers"),
        }
        assert {r["batch_id"] for r in s.tx.qa.iter_qa_rows()} == {1, 2}
        # The judge requests are jobs of qa:papers, never candidates for judging themselves.
        assert s.tx.jobs.count_jobs(JobFilter(queues=("qa:papers",))) == 8
        assert qa.sample_ids(s.tx, JobFilter(), qa.Sample()) == [1, 2, 3, 4]
    assert cli("qa", "collect", "--db", db).stdout.startswith("collected verdicts of 0 ")

    # The same requests answered in real time give the same scores at twice the price.
    rerun = cli("qa", "run", "--db", db, "--rescore", "--judges", "gpt-4o-mini", **env, check=False)
    assert rerun.returncode == 1  # job 3's verdict is still not JSON
    real_time = results(db_path)
    for job in (1, 2, 4):
        batch_row, live = by_batch[(job, "gpt-4o-mini")], real_time[(job, "gpt-4o-mini")]
        assert live.scores == batch_row.scores
        assert live.cost == pytest.approx(2 * (batch_row.cost or 0))
    summary = json.loads(cli("qa", "summary", "--db", db, "--json").stdout)["qa"]
    assert (summary["results"], summary["errors"]) == (6, 2)


def test_qa_run_judges_the_results_of_a_remote_batch(
    tmp_path: Path, db_path: Path, env: dict[str, str]
) -> None:
    path = tmp_path / "papers.jsonl"
    with path.open("w") as out:
        for i in range(5):
            body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"Satz {i}"}]}
            line = {"custom_id": f"p{i}", "method": "POST", "url": "/v1/chat/completions"}
            out.write(json.dumps({**line, "body": body}) + "\n")
    db = str(db_path)
    wait = ("--wait", "--interval", "0.05")
    cli("submit", str(path), "--db", db, "--queue", "papers", *wait, timeout=120, **env)
    enqueue(tmp_path, db_path, ["local work"], queue="local")
    run_jobs(db_path)

    out = cli("qa", "run", "--db", db, "--batch", "1", "--judges", "j1", **env).stdout
    assert "judged 5 jobs" in out and "5 scored, 0 errors" in out
    found = results(db_path)
    assert {job for job, _ in found} == {1, 2, 3, 4, 5}
    # The judge saw the request's messages and the reply's text, not raw JSON.
    with open_sync_store(db_path) as s:
        job = s.tx.jobs.get_job(1)
    request = qa.judge_request(job, "j1", qa.DEFAULT_RUBRIC)["messages"][1]["content"]
    assert "[user] Satz 0" in request and "OUTPUT:\n<<<\n[sim] ztaS 0\n>>>" in request
    bad = cli("qa", "run", "--db", db, "--batch", "99", **env, check=False)
    assert bad.returncode == 2 and "unknown batch 99" in bad.stderr
