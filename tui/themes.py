"""The dashboard's colours: the theme (from `--theme` or the config file, saved when
picked) and alerts that stay visible without colour (NO_COLOR).

A theme picked in the command palette is written to the config file (`theme = "NAME"`),
so the next start uses it; a failure to save is shown, never fatal.
"""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from textual.app import App
from textual.color import Color
from textual.filter import LineFilter
from textual.theme import Theme

from batchdash.core.config import ConfigError, save_theme


def keep_chosen_theme(app: App[None], start: str | None) -> None:
    """Start `app` with the theme `start` (if any) and save every theme chosen later."""
    if start is not None:
        app.theme = start
    saved = app.theme

    def chosen(theme: Theme) -> None:
        nonlocal saved
        if theme.name == saved:
            return  # the start theme being applied, or no change
        saved = theme.name
        try:
            path = save_theme(theme.name)
        except (OSError, ConfigError) as exc:
            app.notify(f"theme not saved: {exc}", severity="warning")
        else:
            app.notify(f"theme {theme.name} saved to {path}")

    app.theme_changed_signal.subscribe(app, chosen)


class ReverseAlerts(LineFilter):
    """Without colour (NO_COLOR), bold red text (failed jobs, stale workers, alerts) turns
    reversed: greyed out like every other colour, it would otherwise sink out of sight."""

    def apply(self, segments: list[Segment], background: Color) -> list[Segment]:
        """Reverse every bold red segment; leave the rest alone."""
        return [_reversed(segment) for segment in segments]


#: The terminal's own colours, swapped: the brightest thing a monochrome screen can show.
_REVERSE = Style(color="default", bgcolor="default", reverse=True)
#: The ANSI reds (red and bright red), as `styles.ALERT` and the failed status use.
_REDS = {1, 9}


def _reversed(segment: Segment) -> Segment:
    """The segment reversed when it is bold red, else as it was."""
    text, style, control = segment
    if style is None or not style.bold or style.color is None or style.color.number not in _REDS:
        return segment
    return Segment(text, style + _REVERSE, control)


def keep_alerts_without_colour(app: App[None]) -> None:
    """Under NO_COLOR, reverse alerts before Textual's monochrome filter greys them.

    Textual offers no public hook for this: its filter list is extended in place, first, so
    the alert colours are still the ANSI ones when they are recognised.
    """
    if app.no_color:
        app._filters.insert(0, ReverseAlerts())


def keep_ansi_colours_on_16_colour_terminals(app: App[None]) -> None:
    """On a 16-colour terminal (TERM=xterm) show status colours as the terminal's own ANSI
    colours: mapped to the theme's truecolor and back down to 16, red came out magenta and
    yellow as bright red, so pending looked more alarming than failed."""
    # Not headless (tests, screenshots: the same picture whatever the tester's TERM), and
    # not under NO_COLOR, whose monochrome filter works on the theme's colours.
    if app.is_headless or app.no_color:
        return
    if app.console.color_system in ("standard", "windows"):
        app.ansi_color = True
