"""batchdash: one terminal dashboard for bulk LLM work, remote batches and local workers.

The distribution installs one package, `batchdash`: `batchdash.core` (the domain, from the
repository's `core/` folder) and `batchdash.tui` (the dashboard and command line, from
`tui/`). Nothing is installed as a top-level `core` or `tui`, so batchdash lives beside any
project that has packages of those names.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("batchdash")
except PackageNotFoundError:  # run from a checkout that was never installed
    __version__ = "0+unknown"
