"""`batchdash demo`: a live dashboard on simulated OpenAI and Anthropic APIs, with no API key
and no network.

It makes a demo database (in a temp dir, or `--dir`), starts the simulator
(`python -m batchdash.core.sim --port 0 --speed 20`) and points this process and its
children at it (OPENAI_BASE_URL, OPENAI_API_KEY=sim and the ANTHROPIC_ pair), starts a few
sim workers (short heartbeat, 0.2–1 s per job, a small failure rate so retries show, QA
sampling against the simulator), enqueues a few hundred local jobs, submits an OpenAI batch
and an Anthropic Message Batch, and opens the dashboard with remote polling every few
seconds. Everything it started is stopped on exit, also on Ctrl+C or an error.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import importlib.util
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from batchdash.core import queue
from batchdash.core.db import DbLocation, open_store, parse_location
from batchdash.core.db.ports import Store, Tx
from batchdash.core.files import open_private
from batchdash.core.models import ALL_JOBS, NewJob
from batchdash.tui.cli.common import EXIT_OK, CliError

#: Simulated time runs this much faster than real time (batches finish in a minute or so).
SIM_SPEED = 20
#: Seconds between remote polls in the demo (the default elsewhere is 30).
DEMO_POLL = 3.0
#: Remote batch size.
BATCH_LINES = 60
#: Lines of the demo's Anthropic Message Batch (shown beside the OpenAI one).
ANTHROPIC_LINES = 24

_FIELDS = ("cs.CL", "cs.LG", "q-bio.BM", "stat.ML", "cs.CV", "physics.optics")
_TOPICS = (
    "Sparse attention for long-document translation",
    "Diffusion models for protein backbone design",
    "Low-rank adapters for multilingual speech",
    "Causal discovery in irregular time series",
    "Retrieval-augmented code generation at scale",
    "Federated learning under label skew",
    "Metasurfaces for broadband beam steering",
)


#: Marks a folder whose batchdash.db the demo made (and may replace).
DEMO_MARKER = ".batchdash-demo"


class Demo:
    """The simulator, the workers and the demo data; a context manager that cleans up."""

    def __init__(
        self,
        folder: Path,
        *,
        where: DbLocation | None = None,
        jobs: int = 600,
        workers: int = 3,
    ) -> None:
        self.folder = folder
        self.db_path = folder / "batchdash.db"
        #: The folder's own SQLite file, or the empty database `--db` named (a server's).
        self.where = where or DbLocation(path=self.db_path)
        self.own_db = where is None
        self.jobs = jobs
        self.workers = workers
        self.sim: subprocess.Popen[str] | None = None
        self.procs: list[subprocess.Popen[bytes]] = []
        self.batch_ids: list[int] = []
        self._env_before: dict[str, str | None] = {}

    def __enter__(self) -> Demo:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ start

    def start(self) -> None:
        """Simulator, environment, jobs, workers, remote batch — in that order."""
        self._fresh_folder()
        url = self._start_sim()
        self._set_env(
            {
                "OPENAI_BASE_URL": f"{url}/v1",
                "OPENAI_API_KEY": "sim",
                # The Anthropic SDK adds /v1 itself.
                "ANTHROPIC_BASE_URL": url,
                "ANTHROPIC_API_KEY": "sim",
            }
        )
        # On its own thread and loop, so a caller inside an event loop (tests) can use it too.
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, self._seed()).result()
        self._start_workers()

    def _fresh_folder(self) -> None:
        """Start from an empty demo DB; an earlier demo's files (and only those) are replaced.

        The earlier demo's remote batch lived in a simulator that is gone, so its data
        cannot be continued. A folder holding some other batchdash.db is refused.
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        if not self.own_db:
            return  # `--db`: checked for emptiness when seeding, never wiped
        marker = self.folder / DEMO_MARKER
        if self.db_path.exists() and not marker.exists():
            raise CliError(f"{self.db_path} exists and is not a demo database; pick another --dir")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.db_path}{suffix}").unlink(missing_ok=True)
        marker.write_text("made by `batchdash demo`; the demo replaces this folder's DB\n")

    def _start_sim(self) -> str:
        log = open(open_private(self.folder / "sim.log"), "w")  # noqa: SIM115 (kept open for the sim)
        self.sim = subprocess.Popen(
            [sys.executable, "-m", "batchdash.core.sim", "--port", "0", "--speed", str(SIM_SPEED)],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            start_new_session=True,
        )
        assert self.sim.stdout is not None
        line = _read_line(self.sim.stdout, timeout=20.0)
        if not line.startswith("http"):
            raise CliError(f"the simulator did not start (see {self.folder / 'sim.log'})")
        return line.strip().rstrip("/")

    def _set_env(self, values: dict[str, str]) -> None:
        for name, value in values.items():
            self._env_before.setdefault(name, os.environ.get(name))
            os.environ[name] = value

    async def _seed(self) -> None:
        db = await open_store(self.where)
        try:
            if not self.own_db:
                await _require_empty(db, self.where)
            rng = random.Random(42)
            await queue.enqueue(db, "papers", _paper_jobs(self.jobs, rng), handler="sim")
            await queue.enqueue(db, "chat", _chat_jobs(40), handler="openai")
            await self._submit_batch(db, rng)
        finally:
            await db.close()

    async def _submit_batch(self, db: Store, rng: random.Random) -> None:
        from batchdash.core.remote import submit_file

        path = self.folder / "batch.jsonl"
        with path.open("w") as out:
            for i in range(BATCH_LINES):
                topic = rng.choice(_TOPICS)
                request = _chat_request(f"Summarise in one sentence: {topic} (part {i})")
                line = {"custom_id": f"summary-{i:04d}", "method": "POST", **request}
                out.write(json.dumps(line) + "\n")
        self.batch_ids = await submit_file(db, path, queue="batch-summaries")
        if importlib.util.find_spec("anthropic") is None:  # the optional extra is missing
            print(
                "no Anthropic batch in this demo: pip install 'batchdash[anthropic]' for one",
                file=sys.stderr,
            )
            return
        self.batch_ids += await submit_file(
            db, self._anthropic_file(rng), queue="claude-reviews", provider="anthropic"
        )

    def _anthropic_file(self, rng: random.Random) -> Path:
        """Message Batches lines for the simulated Anthropic API, one of them expiring."""
        path = self.folder / "claude.jsonl"
        with path.open("w") as out:
            for i in range(ANTHROPIC_LINES):
                topic = rng.choice(_TOPICS)
                marker = " SIM_EXPIRED" if i == ANTHROPIC_LINES - 1 else ""
                params = {
                    "model": "claude-haiku-4-5",
                    "max_tokens": 200,
                    "messages": [{"role": "user", "content": f"Review: {topic}{marker}"}],
                }
                out.write(json.dumps({"custom_id": f"review-{i:03d}", "params": params}) + "\n")
        return path

    def _start_workers(self) -> None:
        folder = self.folder / "workers"
        folder.mkdir(exist_ok=True)
        # The database reaches the workers through the environment, never their argv.
        env = {**os.environ, "BATCHDASH_DB": self.where.setting}
        for index in range(self.workers):
            argv = [
                sys.executable,
                "-m",
                "batchdash",
                "worker",
                "--concurrency",
                "2",
                "--heartbeat",
                "1",
                "--retry-base",
                "1",
                "--sim-failure-rate",
                "0.04",
                "--qa-every",
                "6",
                "--qa-judges",
                "gpt-4o-mini,gpt-4o",
            ]
            with open(open_private(folder / f"worker-{index}.log"), "wb") as log:
                self.procs.append(
                    subprocess.Popen(
                        argv,
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=log,
                        start_new_session=True,
                        env=env,
                    )
                )

    # ------------------------------------------------------------------ stop

    def stop(self) -> None:
        """SIGTERM the workers and wait for them to drain, then stop the simulator."""
        for proc in self.procs:
            _signal(proc, signal.SIGTERM)
        deadline = time.monotonic() + 15.0
        for proc in self.procs:
            _wait_or_kill(proc, deadline)
        self.procs.clear()
        if self.sim is not None:
            _signal(self.sim, signal.SIGTERM)
            _wait_or_kill(self.sim, time.monotonic() + 5.0)
            if self.sim.stdout is not None:
                self.sim.stdout.close()
            self.sim = None
        for name, value in self._env_before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._env_before.clear()


async def _require_empty(db: Store, where: DbLocation) -> None:
    """The demo adds its data to a database given by `--db` only when it holds none yet."""

    def held(tx: Tx) -> int:
        return tx.jobs.count_jobs(ALL_JOBS) + tx.batches.count_batches()

    if await db.read(held):
        raise CliError(f"{where.display} already holds jobs; the demo needs an empty database")


def _read_line(stream: IO[str], timeout: float) -> str:
    """The first line of a child's stdout, or '' if it says nothing within `timeout`."""
    found: list[str] = []
    reader = threading.Thread(target=lambda: found.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return found[0] if found else ""


def _signal(proc: subprocess.Popen[Any], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        if proc.poll() is None:
            proc.send_signal(sig)


def _wait_or_kill(proc: subprocess.Popen[Any], deadline: float) -> None:
    try:
        proc.wait(timeout=max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _chat_request(prompt: str) -> dict[str, Any]:
    return {
        "url": "/v1/chat/completions",
        "body": {
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "system", "content": "You are a careful scientific translator."},
                {"role": "user", "content": prompt},
            ],
        },
    }


def _paper_jobs(n: int, rng: random.Random) -> list[NewJob]:
    """arXiv-style keys; a few fail once (retried), a few fail for good; every fourth runs in
    stages (fetch_pdf → translate → write_file), so the detail shows a stage timeline."""
    jobs = []
    for i in range(n):
        sim: dict[str, Any] = {"latency": round(rng.uniform(0.2, 1.0), 2)}
        roll = rng.random()
        if roll < 0.02:
            sim["fail"] = "permanent"
        elif roll < 0.08:
            sim.update(fail="retryable", fail_attempts=1)
        payload: dict[str, Any] = {
            "id": f"{2405 + i // 1000}.{10000 + i:05d}",
            "field": rng.choice(_FIELDS),
            "title": rng.choice(_TOPICS),
            "task": "translate abstract to German",
            "sim": sim,
        }
        if i % 4 == 0:
            latency = sim.pop("latency")
            payload["stages"] = [
                ["fetch_pdf", round(latency * 0.3, 2)],
                ["translate", round(latency * 1.5, 2)],
                ["write_file", round(latency * 0.2, 2)],
            ]
            sim["fail_stage"] = "translate"
        jobs.append(NewJob(key=f"arxiv-{payload['id']}", payload=payload))
    return jobs


def _chat_jobs(n: int) -> list[NewJob]:
    """Real-time calls to the simulator through the `openai` handler."""
    return [
        NewJob(key=f"chat-{i:04d}", payload=_chat_request(f"Translate title {i}: {_TOPICS[i % 7]}"))
        for i in range(n)
    ]


# --------------------------------------------------------------------------- command


def run_demo(args: argparse.Namespace) -> int:
    """`batchdash demo`: set everything up, open the dashboard, clean up on the way out."""
    require_simulator()
    folder = args.dir or Path(tempfile.mkdtemp(prefix="batchdash-demo-"))
    from batchdash.tui.app import BatchDashApp
    from batchdash.tui.toasts import bell_setting

    print(f"starting the simulator and {args.workers} workers in {folder} …", file=sys.stderr)
    where = parse_location(args.demo_db) if args.demo_db else None
    with Demo(folder, where=where, jobs=args.jobs, workers=args.workers) as demo:
        app = BatchDashApp(
            demo.where,
            refresh=args.refresh,
            poll_every=DEMO_POLL,
            bell=bell_setting(args.no_bell),
        )
        if args.headless_for is None:
            app.run()
        else:
            asyncio.run(_headless(app, args.headless_for))
    print(f"demo stopped; its database is {demo.where.display}", file=sys.stderr)
    return EXIT_OK


def require_simulator() -> None:
    """Stop with a one-line install hint when the simulator's `sim` extra is missing."""
    from batchdash.core.sim.requirements import missing_message

    problem = missing_message()
    if problem:
        raise CliError(problem)


async def _headless(app: Any, seconds: float) -> None:
    """Run the dashboard without a terminal for `seconds` (smoke tests)."""
    async with app.run_test(size=(120, 36)) as pilot:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            await pilot.pause(0.5)
        await app.wait_for_snapshot()
        head = app.last.overview if app.last else None
        if head is not None:
            counts = ", ".join(f"{n} {s}" for s, n in head.counts.items())
            print(f"demo after {seconds:g}s: {counts}; batches: {len(app.last.batches)}")
