"""One error hierarchy: everything batchdash reports to a user as one line is a BatchdashError.

The CLI prints such an error as `batchdash: error: …` (exit 2); any other exception is a
bug and keeps its traceback. Subclasses say whose fault it is: the user's input
(`InvalidInputError`, also a ValueError for callers that validate values) or the provider's
(`ProviderError`). The store's errors join this tree in `core.store`.
"""

from __future__ import annotations


class BatchdashError(Exception):
    """Base of the errors whose message is meant for the user (one line, names what/where)."""


class InvalidInputError(BatchdashError, ValueError):
    """Something the user gave (a flag's value, a file, the config) is not usable."""


class ProviderError(BatchdashError):
    """A batch provider refused what was asked, or is not one this batchdash knows."""


class UnknownProviderError(ProviderError):
    """A batch (or a command) names a provider that no module implements."""
