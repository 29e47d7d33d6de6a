"""`python -m core.sim [--port 0] [--speed] [--fault-rate] [--seed]`: run the simulator."""

from __future__ import annotations

from core.sim.server import main

if __name__ == "__main__":
    raise SystemExit(main())
