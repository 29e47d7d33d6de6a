"""Scrollbars drawn in whole cells.

Textual draws the ends of a scrollbar thumb with eighth-block glyphs (▁▂▃▅…) for smoother
motion. Where the terminal shows the thumb and track in near-identical colours (tmux at 256
colours), those glyphs are all that is left: stray sparkline bits at the right edge of every
pane. A thumb of whole blank cells reads as a scrollbar in every terminal.
"""

from __future__ import annotations

from typing import ClassVar

from textual.scrollbar import ScrollBarRender


class WholeCellScrollBarRender(ScrollBarRender):
    """A scrollbar whose thumb starts and ends on cell boundaries (no partial glyphs)."""

    # A blank "partial" glyph makes Textual skip the thumb's fractional ends.
    VERTICAL_BARS: ClassVar[list[str]] = [" "] * 8
    HORIZONTAL_BARS: ClassVar[list[str]] = [" "] * 8
