"""`python -m batchdash`: the same command line as the `batchdash` console script."""

from __future__ import annotations

import sys

from batchdash.tui.cli import main

if __name__ == "__main__":
    sys.exit(main())
