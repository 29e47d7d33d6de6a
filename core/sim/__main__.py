"""`python -m batchdash.core.sim [--port 0] [--speed] [--fault-rate] [--seed]`: the simulator."""

from __future__ import annotations

import sys

from batchdash.core.sim.requirements import missing_message


def _run() -> int:
    """Serve, or say in one line how to install the `sim` extra (exit 2) when it is missing."""
    problem = missing_message()
    if problem:
        print(f"batchdash.core.sim: error: {problem}", file=sys.stderr)
        return 2
    from batchdash.core.sim.server import main

    return main()


if __name__ == "__main__":
    raise SystemExit(_run())
