"""`batchdash --once --watch S`: the picture again every S seconds until Ctrl-C (exit 0)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, cli, cli_env, wait_until


def test_watch_reprints_until_ctrl_c_then_exits_0(db_path: Path, tmp_path: Path) -> None:
    cli("init", "--db", str(db_path))
    log = tmp_path / "watch.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "batchdash", "--db", str(db_path), "--once", "--watch", "0.1"],
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_env(),
            cwd=ROOT,
        )
        try:
            wait_until(
                lambda: log.read_text().count("nothing needs attention") >= 2,
                timeout=20,
                what="two pictures",
            )
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=10)
        finally:
            proc.kill()
    assert proc.returncode == 0
    assert err == ""  # no traceback on Ctrl-C
    text = log.read_text()
    assert "\x1b[" not in text  # a log is never cleared nor coloured
    assert text.count(f"batchdash  {db_path}") >= 2  # each picture starts with its header
    assert "\n\nbatchdash  " in text  # a blank line between pictures


def test_bad_watch_values_are_one_line_errors(db_path: Path) -> None:
    cli("init", "--db", str(db_path))
    for args, message in (
        (("--once", "--watch", "0"), "--watch must be > 0 seconds"),
        (("--once", "--watch", "soon"), "argument --watch"),
        (("--watch", "5"), "--watch goes with --once"),
    ):
        proc = cli("--db", str(db_path), *args, check=False)
        assert proc.returncode == 2, args
        assert proc.stderr.startswith("batchdash: error: ") and message in proc.stderr, proc.stderr
        assert proc.stderr.count("\n") == 1
