"""The `batchdash` command line: the root command and one module per command group."""

from __future__ import annotations

from batchdash.tui.cli.common import main

__all__ = ["main"]
