"""`workers start|stop` with real processes: option ranges refused at parse time."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.worker import pid_dir
from tests.conftest import cli


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (("worker", "--lease", "-1"), "--lease"),
        (("worker", "--poll", "0"), "--poll"),
        (("worker", "--grace", "-1"), "--grace"),
        (("worker", "--heartbeat", "0"), "--heartbeat"),
        (("worker", "--concurrency", "0"), "--concurrency"),
        (("worker", "--queue", ""), "--queue"),
        (("worker", "--sim-failure-rate", "1.5"), "--sim-failure-rate"),
        (("worker", "--lease", "0.1", "--heartbeat", "0.2"), "--lease"),
        (("workers", "start", "-n", "-1"), "-n"),
        (("workers", "start", "--poll", "0.001"), "--poll"),
        (("workers", "stop", "--timeout", "-5"), "--timeout"),
    ],
)
def test_harmful_worker_options_are_refused(
    db_path: Path, args: tuple[str, ...], option: str
) -> None:
    result = cli(*args, "--db", str(db_path), check=False, timeout=15)
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert f"{option}" in line and "error" in line, line
    assert "Traceback" not in result.stderr
    assert not pid_dir(db_path).exists() and not db_path.exists()
