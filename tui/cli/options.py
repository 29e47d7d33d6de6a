"""The root command's options, declared once, click-free: click builds them, `--once` reads them.

`batchdash --once` runs from cron every minute, so it skips click (~16 ms of imports):
`once_args()` parses a command line made only of these options, `--once` among them, from
this table, and anything else (a subcommand, `--help`, a typo, a bad value) is left to the
click root command built from the same table (`root.py`), which owns every message.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: `--section` names, in the order `--once` prints them.
SECTIONS = ("overview", "queues", "batches", "workers", "qa")

#: Each command's name and where it lives (`module:attribute` under batchdash.tui.cli).
COMMANDS = {
    "init": "queue:init",
    "enqueue": "queue:enqueue",
    "jobs": "jobs:jobs",
    "retry": "queue:retry",
    "cancel": "queue:cancel",
    "resume": "queue:resume",
    "queue": "queue:queue_group",
    "export": "export:export",
    "prune": "prune:prune_command",
    "worker": "workers:worker",
    "workers": "workers:workers",
    "submit": "batches:submit",
    "batches": "batches:batches_group",
    "poll": "poll:poll",
    "sim-server": "sim:sim_server",
    "qa": "qa:qa_group",
    "stats": "stats:stats",
    "demo": "dashboard:demo",
    "serve": "serve:serve",
}


@dataclass(frozen=True, slots=True)
class RootOption:
    """One option of the root command: a flag, or an option taking one value.

    `convert` turns the text into the value (and raises ValueError on bad text), `choices`
    limits the text, `multiple` collects repeats into a tuple.
    """

    name: str
    dest: str
    help: str
    flag: bool = False
    metavar: str | None = None
    default: Any = None
    convert: Callable[[str], Any] = str
    choices: tuple[str, ...] = ()
    multiple: bool = False
    envvar: str | None = None


DB = RootOption(
    "--db",
    "db",
    "SQLite file or postgresql://user@host/dbname (default: $BATCHDASH_DB, `db` in the "
    "config file, or ~/.local/share/batchdash/batchdash.db)",
    metavar="PATH|URL",
    envvar="BATCHDASH_DB",
)

#: The root command's own options (click adds --help and --version), in --help order.
ROOT_OPTIONS = (
    DB,
    RootOption("--once", "once", "Print the dashboard's picture once and exit.", flag=True),
    RootOption("--json", "once_json", "--once as JSON.", flag=True),
    RootOption(
        "--section",
        "once_sections",
        "--once text: only these sections (repeatable).",
        choices=SECTIONS,
        multiple=True,
    ),
    RootOption("--poll", "once_poll", "--once: poll remote batches first.", flag=True),
    RootOption(
        "--refresh",
        "refresh",
        "Seconds between refreshes (1).",
        metavar="S",
        default=1.0,
        convert=float,
    ),
    RootOption(
        "--watch",
        "once_watch",
        "--once: print the picture again every S seconds until Ctrl-C (exit 0).",
        metavar="S",
        convert=float,
    ),
    RootOption("--read-only", "read_only", "Hide and refuse every action that writes.", flag=True),
    RootOption("--no-bell", "no_bell", "The dashboard rings no bell on a notice.", flag=True),
    RootOption(
        "--theme",
        "theme",
        "Dashboard colours, e.g. nord or textual-light (default: `theme` in the config "
        "file, where a theme picked in the command palette is saved).",
        metavar="NAME",
    ),
)


def once_args(argv: Sequence[str], environ: Mapping[str, str]) -> argparse.Namespace | None:
    """The arguments of a plain `--once` command line, or None to let click parse it.

    Takes `--opt value` and `--opt=value`; a value that is empty, looks like an option or
    fails its option's check makes this None, so click reports it exactly as always.
    """
    by_name = {option.name: option for option in ROOT_OPTIONS}
    values: dict[str, Any] = {
        o.dest: False if o.flag else () if o.multiple else o.default for o in ROOT_OPTIONS
    }
    tokens = iter(argv)
    for token in tokens:
        name, inline, text = token.partition("=")
        option = by_name.get(name)
        if option is None or (option.flag and inline):
            return None
        if option.flag:
            values[option.dest] = True
            continue
        value = text if inline else next(tokens, "")
        parsed = _value(option, value)
        if parsed is None:
            return None
        values[option.dest] = (*values[option.dest], parsed) if option.multiple else parsed
    if not values["once"]:
        return None
    for option in ROOT_OPTIONS:  # click reads the environment for options not given (non-empty)
        if option.envvar and values[option.dest] is None and environ.get(option.envvar):
            values[option.dest] = environ[option.envvar]
    return argparse.Namespace(**values, db_creates=False)


def _value(option: RootOption, text: str) -> Any:
    """`text` converted for `option`, or None when click should judge it."""
    if not text or text.startswith("-") or (option.choices and text not in option.choices):
        return None
    try:
        return option.convert(text)
    except ValueError:
        return None
