"""Benchmark: ingest a batch's output file from the simulator, streaming vs naive.

For each size (default 10,000 and 50,000 lines of ~2 KB, i.e. ~100 MB at 50k) this
submits a file to a simulator subprocess, waits until the batch completed, copies the
database, and then ingests it in a fresh child process twice:

- batchdash: `openai_ingest.ingest` (streamed line by line, chunked idempotent writes);
- naive: `files.content(id).text`, split, parse, one statement per line and table;
- floor: the least any ingest does: stream the file and append its raw lines to a bare
  table (no parsing, no jobs, items or events) in transactions of the same size as
  batchdash's, in the same database file. No ingest that stores results in SQLite can
  beat it on this machine, so it tells how much of the time is the data itself.

Each child prints lines/s and its peak RSS (VmHWM, the process's high-water mark), so
the two do not share a heap. Targets: ≥ 50,000 lines/s, and a peak RSS that does not grow
with the file size.

    python benchmarks/ingest.py [--sizes 10000 50000] [--words 280]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from batchdash.core.config import openai_settings  # noqa: E402
from batchdash.core.db import open_store, open_sync_store  # noqa: E402
from batchdash.core.providers import openai_batch, openai_ingest, openai_remote  # noqa: E402
from benchmarks.memory import peak_rss_mb  # noqa: E402


def write_input(path: Path, lines: int, words: int) -> None:
    """Chat requests whose answers make output lines of about 2 KB."""
    with path.open("w") as out:
        for i in range(lines):
            text = " ".join(f"token{j % 97}" for j in range(words)) + f" #{i}"
            body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]}
            record = {"custom_id": f"r{i:06d}", "method": "POST"}
            record |= {"url": "/v1/chat/completions", "body": body}
            out.write(json.dumps(record) + "\n")


def start_sim() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "batchdash.core.sim", "--speed", "1000000"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip() + "/v1"


async def prepare(db_path: Path, input_path: Path) -> int:
    """Submit and wait until the provider has written the result files; output bytes."""
    async with await open_store(db_path) as db:
        [batch_id] = await openai_batch.submit_file(db, input_path, queue="bench")
        async with openai_remote.connect() as client:
            while True:
                batch = await db.read(lambda c: c.batches.get_batch(batch_id))
                remote = await client.batches.retrieve(str(batch.remote_id))
                if remote.status == "completed":
                    fields = openai_remote.remote_fields(remote, batch.total)
                    await db.write(
                        lambda tx, f=fields: tx.batches.record_remote(
                            batch_id=batch_id, fields=f, now=0.0
                        )
                    )
                    output = await client.files.retrieve(str(remote.output_file_id))
                    return int(output.bytes)
                await asyncio.sleep(0.05)


async def ingest_ours(db_path: Path) -> int:
    async with await open_store(db_path) as db:
        batch = (await db.read(lambda tx: tx.batches.list_batches()))[0]
        async with openai_remote.connect() as client:
            await openai_ingest.ingest(db, client, batch)
        return batch.total


def ingest_naive(db_path: Path) -> int:
    """The naive way: whole file in memory, then one UPDATE per line."""
    import openai

    base_url, key = openai_settings()
    client = openai.OpenAI(base_url=base_url, api_key=key)
    with open_sync_store(db_path) as db:
        batch = db.tx.batches.list_batches()[0]
        text = client.files.content(str(batch.output_file_id)).text
        records = [json.loads(line) for line in text.split("\n") if line]
        db.conn.execute("BEGIN")
        for record in records:
            body = record["response"]["body"]
            db.conn.execute(
                "UPDATE batch_items SET outcome = 'succeeded', status_code = ? "
                "WHERE batch_id = ? AND custom_id = ?",
                (record["response"]["status_code"], batch.id, record["custom_id"]),
            )
            db.conn.execute(
                "UPDATE jobs SET status = 'succeeded' WHERE queue = ? AND key = ?",
                (batch.queue, record["custom_id"]),
            )
            db.conn.execute(
                "INSERT INTO job_results (job_id, result) "
                "SELECT id, ? FROM jobs WHERE queue = ? AND key = ?",
                (json.dumps(body), batch.queue, record["custom_id"]),
            )
        db.conn.execute("COMMIT")
        return len(records)


def ingest_floor(db_path: Path) -> int:
    """Stream the output file and append raw lines to a bare table: the lower bound."""
    import openai

    from batchdash.core.batch_results import INGEST_CHUNK

    base_url, key = openai_settings()
    client = openai.OpenAI(base_url=base_url, api_key=key)
    with open_sync_store(db_path) as db:
        batch = db.tx.batches.list_batches()[0]
        db.conn.execute("CREATE TABLE raw_lines (id INTEGER PRIMARY KEY, line TEXT)")
        count = 0
        with client.with_streaming_response.files.content(str(batch.output_file_id)) as resp:
            chunk: list[tuple[str]] = []
            for line in resp.iter_lines():
                chunk.append((line,))
                if len(chunk) == INGEST_CHUNK:
                    count += _append(db.conn, chunk)
                    chunk = []
            count += _append(db.conn, chunk)
        return count


def _append(conn: sqlite3.Connection, rows: list[tuple[str]]) -> int:
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany("INSERT INTO raw_lines (line) VALUES (?)", rows)
    conn.execute("COMMIT")
    return len(rows)


MODES = {
    "batchdash": lambda path: asyncio.run(ingest_ours(path)),
    "naive": ingest_naive,
    "floor": ingest_floor,
}


def child(mode: str, db_path: Path) -> None:
    import openai  # noqa: F401  (~0.45 s, paid by every mode alike: not part of ingesting)

    started = time.perf_counter()
    lines = MODES[mode](db_path)
    elapsed = time.perf_counter() - started
    peak_mb = peak_rss_mb()
    print(json.dumps({"lines": lines, "seconds": elapsed, "peak_mb": peak_mb}))


def run_size(tmp: Path, lines: int, words: int) -> None:
    input_path = tmp / f"in-{lines}.jsonl"
    write_input(input_path, lines, words)
    base = tmp / f"base-{lines}.db"
    size = asyncio.run(prepare(base, input_path))
    print(f"{lines:,} lines, output file {size / 1e6:.1f} MB", flush=True)
    rates = {}
    for mode in MODES:
        copy = tmp / f"{mode}-{lines}.db"
        shutil.copy(base, copy)
        result = subprocess.run(
            [sys.executable, __file__, "--child", mode, str(copy)],
            capture_output=True,
            text=True,
            check=True,
            env=os.environ,
        )
        data = json.loads(result.stdout.strip().splitlines()[-1])
        rates[mode] = rate = data["lines"] / data["seconds"]
        print(
            f"{mode:>9}  {data['lines']:>7,} lines  {data['seconds']:6.2f} s  "
            f"{rate:>9,.0f} lines/s  peak RSS {data['peak_mb']:7.1f} MB",
            flush=True,
        )
    print(
        f"batchdash: {rates['batchdash'] / rates['naive']:.1f}x naive, "
        f"{rates['batchdash'] / rates['floor']:.0%} of the floor "
        f"(target 50,000 lines/s is {50_000 / rates['floor']:.0%} of the floor)",
        flush=True,
    )


def main() -> int:
    """Parse flags; run the parent (sizes) or one child measurement."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument("--words", type=int, default=180, help="prompt words (sets line size)")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "DB"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return 0
    sim, url = start_sim()
    os.environ.update(OPENAI_BASE_URL=url, OPENAI_API_KEY="sim")
    try:
        with tempfile.TemporaryDirectory(prefix="batchdash-bench-") as tmp:
            for lines in args.sizes:
                run_size(Path(tmp), lines, args.words)
    finally:
        sim.terminate()
        sim.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
