"""The `batchdash` command line: `main()`, with a click-free path for `batchdash --once`.

`batchdash` alone opens the dashboard; `batchdash --once` prints its picture. A command
line of root options with `--once` among them is parsed here from the option table
(`options.py`) and run without importing click, so a cron check starts fast; any other
command line goes to the click root command (`root.py`), whose subcommands load lazily.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from batchdash.tui.cli.options import COMMANDS, once_args
from batchdash.tui.cli.runner import Invocation, run


def main(args: Sequence[str] | None = None, prog_name: str | None = None) -> int:
    """Run the command line `args` (default: sys.argv[1:]) and return its exit code."""
    argv = sys.argv[1:] if args is None else list(args)
    once = once_args(argv, os.environ)
    if once is not None:
        from batchdash.tui.once import run_once  # never textual, nor the command modules

        return run(Invocation(run_once, once))
    from batchdash.tui.cli.root import root

    return root.main(argv, prog_name)


__all__ = ["COMMANDS", "main"]
