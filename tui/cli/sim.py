"""`batchdash sim-server`: the OpenAI-compatible simulator in the foreground."""

from __future__ import annotations

import argparse
from typing import Any

import click

from batchdash.tui.cli.common import example, invoke


def cmd_sim_server(args: argparse.Namespace) -> int:
    """Serve the simulator in the foreground; prints its URL first."""
    from batchdash.tui.demo import require_simulator

    require_simulator()
    from batchdash.core.sim.server import main as sim_main

    return sim_main(
        [
            "--host",
            args.host,
            "--port",
            str(args.port),
            "--speed",
            str(args.speed),
            "--fault-rate",
            str(args.fault_rate),
            "--seed",
            str(args.seed),
        ]
    )


@click.command("sim-server", epilog=example("batchdash sim-server --port 8089 --fault-rate 0.05"))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=int, default=0, show_default=True, help="0 picks a free port.")
@click.option(
    "--speed", type=float, default=1.0, show_default=True, help="Simulated seconds per second."
)
@click.option(
    "--fault-rate", type=float, default=0.0, show_default=True, help="Share of 429/5xx answers."
)
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
def sim_server(**_: Any) -> Any:
    """Run the OpenAI-compatible simulator."""
    return invoke(cmd_sim_server, creates=None)
