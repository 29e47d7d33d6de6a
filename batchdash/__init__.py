"""batchdash: one terminal dashboard for bulk LLM work, remote batches and local workers.

The distribution installs one package, `batchdash`: `batchdash.core` (the domain, from the
repository's `core/` folder) and `batchdash.tui` (the dashboard and command line, from
`tui/`). Nothing is installed as a top-level `core` or `tui`, so batchdash lives beside any
project that has packages of those names.
"""

from __future__ import annotations


def __getattr__(name: str) -> str:
    """`batchdash.__version__`, read from the installed metadata only when asked for.

    Reading it at import would cost `batchdash --once` (a cron check) ~30 ms every run.
    """
    if name != "__version__":
        raise AttributeError(f"module 'batchdash' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("batchdash")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "0+unknown"
