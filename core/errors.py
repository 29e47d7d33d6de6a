"""One error hierarchy: everything batchdash reports to a user as one line is a BatchdashError.

The CLI prints such an error as `batchdash: error: …` (exit 2); any other exception is a
bug and keeps its traceback. Subclasses say whose fault it is: the user's input
(`InvalidInputError`, also a ValueError for callers that validate values), the provider's
(`ProviderError`) or the store's (`StoreError`).
"""

from __future__ import annotations

from pathlib import Path


class BatchdashError(Exception):
    """Base of the errors whose message is meant for the user (one line, names what/where)."""


class InvalidInputError(BatchdashError, ValueError):
    """Something the user gave (a flag's value, a file, the config) is not usable."""


class ProviderError(BatchdashError):
    """A batch provider refused what was asked, or is not one this batchdash knows."""


class UnknownProviderError(ProviderError):
    """A batch (or a command) names a provider that no module implements."""


class StoreError(BatchdashError):
    """A store problem worth a one-line message to the user (bad path, newer schema…)."""


class NotFoundError(StoreError):
    """An id, queue or batch named by the user does not exist."""


class MissingDatabaseError(NotFoundError):
    """A command that only reads or changes existing data was pointed at no database."""

    def __init__(self, where: Path | str) -> None:
        super().__init__(f"no database at {where} — run `batchdash init` or `batchdash demo`")
        self.where = where


class DatabaseError(StoreError):
    """The database itself failed (I/O, corruption, busy past every retry, interrupted)."""


class BatchError(InvalidInputError):
    """A batch operation that cannot be done as asked (one-line message, exit 2)."""


class BudgetError(InvalidInputError):
    """A queue that spent its budget cannot resume until the budget is raised or cleared."""
