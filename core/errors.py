"""Errors worth a one-line message to the user."""

from __future__ import annotations

from pathlib import Path


class BatchdashError(Exception):
    """Base of every error batchdash reports as one line instead of a traceback."""


class StoreError(BatchdashError):
    """A store problem worth a one-line message to the user (bad path, newer schema…)."""


class NotFoundError(StoreError):
    """An id, queue or batch named by the user does not exist."""


class MissingDatabaseError(NotFoundError):
    """A command that only reads or changes existing data was pointed at no database."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"no database at {path} — run `batchdash init` or `batchdash demo`")
        self.path = path


class DatabaseError(StoreError):
    """The database itself failed (I/O, corruption, busy past every retry, interrupted)."""
