"""`python -m batchdash.core.sim [--port 0] [--speed] [--fault-rate] [--seed]`: the simulator."""

from __future__ import annotations

from batchdash.core.sim.server import main

if __name__ == "__main__":
    raise SystemExit(main())
