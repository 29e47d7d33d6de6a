"""Colours and text gauges shared by `--once` and the dashboard (plain strings, no textual)."""

from __future__ import annotations

from collections.abc import Sequence

_TICKS = "▁▂▃▄▅▆▇█"


def spark(values: Sequence[float]) -> str:
    """A one-line sparkline scaled to the largest value; zero is the bottom tick only."""
    top = max(values, default=0)
    if top <= 0:
        return _TICKS[0] * len(values)
    steps = len(_TICKS) - 1
    return "".join(_TICKS[max(1, round(v / top * steps)) if v > 0 else 0] for v in values)


def progress_bar(fraction: float, width: int = 20) -> str:
    """`██████░░░░` filled to `fraction` (0–1) over `width` cells."""
    filled = round(max(0.0, min(1.0, fraction)) * width)
    return "█" * filled + "░" * (width - filled)


#: Style per job status.
STATUS = {
    "pending": "yellow",
    "running": "cyan",
    "succeeded": "green",
    "failed": "bold red",
    "cancelled": "bright_black",
}

#: Style per normalized batch state (unknown states stay unstyled).
BATCH = {
    "submitting": "cyan",
    "validating": "cyan",
    "running": "cyan",
    "finalizing": "yellow",
    "cancelling": "yellow",
    "succeeded": "green",
    "partial": "yellow",
    "failed": "bold red",
    "expired": "red",
    "cancelled": "bright_black",
}

#: Style per worker health (see core.snapshot.worker_health).
HEALTH = {
    "ok": "green",
    "late": "yellow",
    "stale": "bold red",
    "dead": "bold red",
    "stopped": "bright_black",
}

#: Attention lines.
ALERT = "bold red"
MUTED = "bright_black"
