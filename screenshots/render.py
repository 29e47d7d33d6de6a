"""Render the README screenshots: the real app on the showcase data at 120×36, frozen clock.

    python screenshots/render.py          # writes screenshots/*.svg

The same data and clock as the snapshot tests (tui/showcase.py), so the pictures are
reproducible and contain no secrets.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from batchdash.tui import showcase  # noqa: E402
from batchdash.tui.app import BatchDashApp  # noqa: E402

SIZE = (120, 36)
#: file name → keys pressed after the first refresh.
VIEWS = {
    "jobs": (),
    "failed-jobs": ("4", "down", "down"),
    "job-detail": ("4", "down", "down", "enter"),
    "batches": ("B",),
    "batch-detail": ("B", "down", "down", "enter"),
    "qa": ("S",),
    "workers": ("W",),
    "help": ("question_mark",),
}


async def render(db: Path, name: str, keys: tuple[str, ...], out: Path) -> None:
    """Open the app, press `keys`, save an SVG of the screen."""
    app = BatchDashApp(db, clock=lambda: showcase.NOW, poll_every=0)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_for_snapshot()
        await pilot.pause()
        for key in keys:
            await pilot.press(key)
            await app.wait_for_snapshot()
        await pilot.pause()
        (out / f"{name}.svg").write_text(app.export_screenshot(title=f"batchdash — {name}"))


def main() -> int:
    """Render every view into screenshots/."""
    os.environ["TZ"] = "UTC"
    time.tzset()
    out = Path(__file__).resolve().parent
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "showcase.db"
        showcase.seed(db)
        for name, keys in VIEWS.items():
            asyncio.run(render(db, name, keys, out))
            print(f"wrote {out / name}.svg")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
