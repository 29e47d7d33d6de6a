"""Fixtures for dashboard tests: the showcase database, UTC wall clock, a started app."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchdash.core.db import DbLocation
from batchdash.tui import showcase
from batchdash.tui.app import BatchDashApp

SIZE = (120, 36)


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Clock times render the same on every machine."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def showcase_db(tmp_path: Path) -> Path:
    """A fresh copy of the fixed showcase data set."""
    path = tmp_path / "showcase.db"
    showcase.seed(path)
    return path


def make_app(path: Path | DbLocation, **kwargs: object) -> BatchDashApp:
    """The dashboard on `path` (a file or a DbLocation) with the frozen showcase clock, no
    remote polling, and no note of a slow read (on a loaded machine a first read can take
    a second, and a snapshot would then hold it)."""
    kwargs.setdefault("poll_every", 0)
    kwargs.setdefault("slow_read_shown", math.inf)
    return BatchDashApp(path, clock=lambda: showcase.NOW, **kwargs)  # type: ignore[arg-type]
