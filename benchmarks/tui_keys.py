"""Key-to-screen latency and CPU of the real dashboard in tmux, against a bare app (not a test).

Measures, in one run, in a 120×40 tmux on a private tmux server:

- key-to-screen: press a status key (`4` failed, `0` all) or a page key (`]`, `[`) and poll
  `tmux capture-pane` until the status line shows the new view *and* the detail pane shows
  the job of the table's first row (the screen has settled); median of N presses each;
- the same presses in a bare Textual app with the same layout (header, sidebar, a DataTable
  of 100 rows, a detail pane, a status line, a footer) whose rows come from memory: the
  floor Textual itself sets on this machine;
- idle CPU of the dashboard process over 10 s (utime + stime from /proc/PID/stat, all its
  threads), and of the bare app;
- CPU of the dashboard showing the running jobs (`2`) while 8 workers run sim jobs (a copy
  of the store, so the seeded one stays as it is), and of the bare app showing 32 running
  rows that are all new every second, as they are with busy workers (its floor).

Targets: keys ≤ 1.5× the bare app, idle ≤ 2% of a core, running view ≤ 5%.

    python benchmarks/tui_keys.py [--jobs 1000000] [--keep DIR] [--presses 10]

The store is seeded by `benchmarks/dashboard.py` (same jobs, same `--keep` folder layout).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.dashboard import seed  # noqa: E402

WIDTH, HEIGHT = 120, 40
#: Longest wait for one key's effect before the run is declared broken.
KEY_DEADLINE = 10.0
#: Pause between presses, so each starts from a settled screen (not a measurement wait).
SETTLE = 0.4
CPU_SECONDS = 10.0
#: "Idle" starts this long after the last key press (its reads and repaints are done).
IDLE_AFTER = 3.0
WORKERS = 8
#: Rows the bare app's running view shows (about what 8 busy workers × 4 hold).
RUNNING = 32

#: The table's first row (its id column, right after the sidebar's edge) and the detail's head.
FIRST_ROW = re.compile(r"▕ (\d+) +\S")
DETAIL_HEAD = re.compile(r"▕ #(\d+) ")

#: (key, what the status line says once the key's view is shown), pressed in this order.
PRESSES = (
    ("4", "filter: status:failed"),
    ("0", "filter: none"),
    ("]", " 101–200 of "),
    ("[", " 1–100 of "),
)


# --------------------------------------------------------------------------- tmux


class Tmux:
    """One command in a detached tmux session on a private server (its own socket)."""

    def __init__(self, name: str, command: str, env: dict[str, str] | None = None) -> None:
        self.socket = f"batchdash-bench-{os.getpid()}-{name}"
        self._run(
            "new-session",
            "-d",
            "-s",
            name,
            "-c",
            str(ROOT),
            "-x",
            str(WIDTH),
            "-y",
            str(HEIGHT),
            command,
            env=env,
        )
        self.pid = int(self._run("display-message", "-p", "#{pane_pid}").strip())

    def _run(self, *args: str, env: dict[str, str] | None = None) -> str:
        proc = subprocess.run(
            ["tmux", "-L", self.socket, *args],
            capture_output=True,
            text=True,
            check=True,
            env=env,
            cwd=ROOT,
        )
        return proc.stdout

    def screen(self) -> str:
        """What the pane shows now, as text."""
        return self._run("capture-pane", "-p")

    def press(self, key: str) -> None:
        """Send one key (literally)."""
        self._run("send-keys", "-l", key)

    def close(self) -> None:
        """Kill this session's server (and with it the command)."""
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, check=False)


@contextmanager
def session(name: str, command: str, env: dict[str, str] | None = None) -> Iterator[Tmux]:
    """A tmux session running `command`, killed on the way out."""
    tmux = Tmux(name, command, env)
    try:
        yield tmux
    finally:
        tmux.close()


def settled(screen: str, marker: str, detail: bool = True) -> bool:
    """The status line shows `marker` and (with `detail`) the detail pane shows the first
    row's job."""
    if marker not in screen:
        return False
    if not detail:
        return True
    row, head = FIRST_ROW.search(screen), DETAIL_HEAD.search(screen)
    return row is not None and head is not None and row.group(1) == head.group(1)


def wait_screen(
    tmux: Tmux, marker: str, deadline: float = KEY_DEADLINE, detail: bool = True
) -> float:
    """Seconds until the screen settles on `marker` (polling capture-pane as fast as it goes)."""
    start = time.perf_counter()
    while time.perf_counter() - start < deadline:
        if settled(tmux.screen(), marker, detail):
            return time.perf_counter() - start
    raise SystemExit(f"tui_keys: no {marker!r} on screen after {deadline:.0f}s:\n{tmux.screen()}")


def key_latencies(tmux: Tmux, presses: int) -> dict[str, list[float]]:
    """Key-to-screen seconds for each kind of key (status, page), `presses` rounds."""
    wait_screen(tmux, PRESSES[-1][1], deadline=60.0)  # first paint
    times: dict[str, list[float]] = {"status": [], "page": []}
    for _ in range(presses):
        for key, marker in PRESSES:
            time.sleep(SETTLE)
            start = time.perf_counter()
            tmux.press(key)
            wait_screen(tmux, marker)
            times["page" if key in "[]" else "status"].append(time.perf_counter() - start)
    return times


def cpu_percent(pid: int, seconds: float = CPU_SECONDS) -> float:
    """Percent of one core `pid` (all its threads) used over the next `seconds`."""

    def ticks() -> int:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime, stime

    hz = os.sysconf("SC_CLK_TCK")
    before, start = ticks(), time.perf_counter()
    time.sleep(seconds)
    return 100.0 * (ticks() - before) / hz / (time.perf_counter() - start)


# --------------------------------------------------------------------------- the bare app


def run_bare(busy: bool = False) -> None:
    """A bare Textual app with the dashboard's layout; keys swap 100 rows from memory (with
    `busy`: it shows RUNNING running rows, all new every second)."""
    from textual.app import App, ComposeResult
    from textual.binding import Binding, BindingType
    from textual.containers import Horizontal, Vertical
    from textual.widgets import DataTable, Footer, Static

    total, failed = 1_000_000, 52_106

    def rows(status: str, page: int) -> list[tuple[str, ...]]:
        top = (failed if status == "failed" else total) - page * 100
        return [
            (str(i), f"doc-{i:07d}", "chat", status or "pending", "1/3", "4h", "-", "error")
            for i in range(top, top - 100, -1)
        ]

    def running(tick: int) -> list[tuple[str, ...]]:
        top = total + RUNNING * tick
        return [
            (str(i), f"busy-{i}", "busy", "running", "1/3", "47s", f"{i % 90}ms", "")
            for i in range(top, top - RUNNING, -1)
        ]

    class Bare(App[None]):
        CSS = """
        #head {height: 3;}
        #side {width: 24; height: 1fr; padding: 0 1; border-right: vkey $foreground 20%;}
        #table {height: 1fr;}
        #detail {height: 40%; padding: 0 1; border-top: hkey $foreground 20%;}
        #status {height: 1;}
        """
        BINDINGS: ClassVar[list[BindingType]] = [
            Binding("0", "status('')"),
            Binding("4", "status('failed')"),
            Binding("right_square_bracket", "page(1)"),
            Binding("left_square_bracket", "page(-1)"),
        ]

        def __init__(self) -> None:
            super().__init__()
            self.status, self.page, self.tick = ("running" if busy else ""), 0, 0

        def compose(self) -> ComposeResult:
            yield Static("header", id="head")
            with Horizontal():
                yield Static("\n".join(f"{n} status" for n in range(6)), id="side")
                with Vertical():
                    yield DataTable(id="table", cursor_type="row", zebra_stripes=True)
                    yield Static(id="detail")
            yield Static(id="status")
            yield Footer()

        def on_mount(self) -> None:
            table = self.query_one(DataTable)
            for label in ("ID", "KEY", "QUEUE", "STATE", "TRY", "AGE", "DUR", "ERROR"):
                table.add_column(label)
            self.show()
            if busy:
                self.set_interval(1.0, self.churn)

        def churn(self) -> None:
            self.tick += 1
            self.show()

        def action_status(self, status: str) -> None:
            self.status, self.page = status, 0
            self.show()

        def action_page(self, delta: int) -> None:
            self.page = max(0, self.page + delta)
            self.show()

        def show(self) -> None:
            table = self.query_one(DataTable)
            page = running(self.tick) if busy else rows(self.status, self.page)
            table.clear()
            table.add_rows(page)
            first = self.page * 100
            self.query_one("#detail", Static).update(f"#{page[0][0]} {page[0][1]}  queue chat")
            flt = f"status:{self.status}" if self.status else "none"
            self.query_one("#status", Static).update(
                f" {first + 1}–{first + len(page)} of {total:,}  filter: {flt}"
            )

    Bare().run()


def bare_running_cpu() -> float:
    """CPU of the bare app whose running rows are all new every second."""
    with session("bare-busy", f"exec {sys.executable} {Path(__file__).resolve()} --bare-busy") as t:
        wait_screen(t, "filter: status:running", deadline=60.0, detail=False)
        time.sleep(2.0)  # past the first paint
        return cpu_percent(t.pid)


# --------------------------------------------------------------------------- main


def dashboard(db: Path) -> str:
    """The command line of the real dashboard on `db` (exec'd: the pane's PID is the app's)."""
    return f"exec {sys.executable} -m batchdash --db {db} --refresh 1"


def busy_store(big: Path, folder: Path, jobs: int) -> Path:
    """A copy of the seeded store with `jobs` sim jobs queued in `busy`."""
    copy = folder / "busy.db"
    shutil.copyfile(big, copy)
    lines = folder / "busy.jsonl"
    lines.write_text(
        "".join(json.dumps({"key": f"busy-{i}", "payload": {"i": i}}) + "\n" for i in range(jobs))
    )
    cli(copy, "enqueue", str(lines), "--queue", "busy", "--handler", "sim")
    return copy


def cli(db: Path, *args: str, env: dict[str, str] | None = None, check: bool = True) -> None:
    """Run a batchdash command on `db` (quietly), failing the benchmark if it fails."""
    argv = [sys.executable, "-m", "batchdash", "--db", str(db), *args]
    subprocess.run(argv, check=check, cwd=ROOT, env=env, capture_output=True)


def running_view_cpu(big: Path, folder: Path) -> float:
    """CPU of the dashboard showing running jobs while WORKERS workers are busy."""
    copy = busy_store(big, folder, 60_000)
    env = {**os.environ, "XDG_STATE_HOME": str(folder / "state")}
    start = ("-n", str(WORKERS), "--concurrency", "4", "--queue", "busy", "--sim-latency", "0.1")
    cli(copy, "workers", "start", *start, env=env)
    try:
        with session("busy", dashboard(copy)) as tmux:
            wait_screen(tmux, " 1–100 of ", deadline=60.0)
            tmux.press("2")
            # Rows come and go every moment here: the status line is enough.
            wait_screen(tmux, "filter: status:running", detail=False)
            time.sleep(2.0)  # past the first refreshes of the new view
            percent = cpu_percent(tmux.pid)
            if "●0 running" in tmux.screen():
                raise SystemExit("tui_keys: the workers were idle while measuring; enqueue more")
            return percent
    finally:
        cli(copy, "workers", "stop", env=env, check=False)
        copy.unlink(missing_ok=True)


def summary(name: str, times: list[float]) -> float:
    """Print and return the median of `times` (seconds) in ms."""
    median = statistics.median(times) * 1000
    print(f"  {name}: median {median:.0f} ms (min {min(times) * 1000:.0f}, n={len(times)})")
    return median


def keys_and_idle(big: Path, presses: int) -> None:
    """Key-to-screen latency and idle CPU of the bare app, then of the dashboard on `big`."""
    results: dict[str, dict[str, float]] = {}
    for name, command in (
        ("bare", f"exec {sys.executable} {Path(__file__).resolve()} --bare"),
        ("batchdash", dashboard(big)),
    ):
        with session(name, command) as tmux:
            times = key_latencies(tmux, presses)
            print(f"{name}:")
            status = summary("status key", times["status"])
            page = summary("page key", times["page"])
            both = summary("all keys", times["status"] + times["page"])
            time.sleep(IDLE_AFTER)
            idle = cpu_percent(tmux.pid)
            print(f"  idle CPU: {idle:.1f}% of a core over {CPU_SECONDS:.0f} s")
            results[name] = {"status": status, "page": page, "all": both, "idle": idle}
    ours, bare = results["batchdash"], results["bare"]
    print(
        f"key-to-screen ratio (batchdash/bare): status {ours['status'] / bare['status']:.2f}×, "
        f"page {ours['page'] / bare['page']:.2f}×, all {ours['all'] / bare['all']:.2f}×"
        "   target ≤ 1.5×"
    )
    print(f"idle CPU: {ours['idle']:.1f}% (bare {bare['idle']:.1f}%)   target ≤ 2%")


def main() -> int:
    """Seed (or reuse), measure both apps, print ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, default=None)
    parser.add_argument("--presses", type=int, default=10)
    parser.add_argument("--bare", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--bare-busy", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--parts", default="keys,busy", help="keys (latency, idle CPU), busy (running view CPU)"
    )
    args = parser.parse_args()
    if args.bare or args.bare_busy:
        run_bare(busy=args.bare_busy)
        return 0
    if shutil.which("tmux") is None:
        raise SystemExit("tui_keys: needs tmux (apt-get install tmux)")
    folder = args.keep or Path(tempfile.mkdtemp(prefix="batchdash-keys-"))
    folder.mkdir(parents=True, exist_ok=True)
    big = folder / f"jobs-{args.jobs}.db"
    seed(big, args.jobs)
    if "keys" in args.parts:
        keys_and_idle(big, args.presses)
    if "busy" in args.parts:
        bare = bare_running_cpu()
        busy = running_view_cpu(big, folder)
        print(
            f"running view, {WORKERS} busy workers: {busy:.1f}% of a core (bare app, "
            f"{RUNNING} new rows a second: {bare:.1f}%)   target ≤ 5%"
        )
    if args.keep is None:
        print(f"(databases left in {folder}; delete it or pass --keep to reuse)")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TZ", "UTC")
    raise SystemExit(main())
