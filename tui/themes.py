"""The dashboard's theme: started from `--theme` or the config file, saved when picked.

A theme picked in the command palette is written to the config file (`theme = "NAME"`),
so the next start uses it; a failure to save is shown, never fatal.
"""

from __future__ import annotations

from textual.app import App
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
