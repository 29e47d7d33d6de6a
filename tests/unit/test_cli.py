"""The command line as a user meets it: help and examples, typos, choices, --db, completion."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from batchdash.tui.cli import COMMANDS
from batchdash.tui.cli.root import root
from tests.conftest import ROOT, cli


def _commands(
    group: click.Group, ctx: click.Context, path: str
) -> Iterator[tuple[str, click.Command]]:
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, name
        yield f"{path} {name}", command
        if isinstance(command, click.Group):
            yield from _commands(command, ctx, f"{path} {name}")


ALL_COMMANDS = list(_commands(root, click.Context(root), "batchdash"))


@pytest.mark.parametrize(("path", "command"), ALL_COMMANDS, ids=[p for p, _ in ALL_COMMANDS])
def test_every_command_and_option_has_help_and_an_example(
    path: str, command: click.Command
) -> None:
    assert command.help, path
    assert "Example:" in (command.epilog or "") and "batchdash " in (command.epilog or ""), path
    for param in command.params:
        if isinstance(param, click.Option) and not param.hidden:
            assert param.help, f"{path} {param.opts}"


def test_a_mistyped_command_is_one_line_naming_the_closest() -> None:
    proc = cli("jbos", "list", check=False)
    assert proc.returncode == 2
    assert proc.stderr == "batchdash: error: no such command 'jbos'; did you mean 'jobs'?\n"
    proc = cli("workers", "lsit", check=False)
    assert proc.stderr == "batchdash: error: no such command 'lsit'; did you mean 'list'?\n"


def test_a_group_without_its_command_names_the_commands() -> None:
    proc = cli("workers", check=False)
    assert proc.returncode == 2
    assert proc.stderr == "batchdash: error: batchdash workers needs a command: list, start, stop\n"


def test_a_bad_choice_lists_the_choices_as_words(db_path: Path) -> None:
    proc = cli("jobs", "list", "--status", "faild", "--db", str(db_path), check=False)
    assert proc.returncode == 2
    assert proc.stderr == (
        "batchdash: error: argument --status: 'faild' is not one of 'pending', 'running', "
        "'succeeded', 'failed', 'cancelled'.\n"
    )


def test_db_before_or_after_the_command_or_from_the_environment(tmp_path: Path) -> None:
    first, second = tmp_path / "a.db", tmp_path / "b.db"
    cli("init", "--db", str(first))
    assert cli("--db", str(first), "jobs", "list").stdout.endswith("0 of 0 jobs\n")
    assert cli("jobs", "list", BATCHDASH_DB=str(first)).stdout.endswith("0 of 0 jobs\n")
    # An explicit --db beats the environment, wherever it stands.
    proc = cli("jobs", "list", "--db", str(second), BATCHDASH_DB=str(first), check=False)
    assert proc.returncode == 2 and f"no database at {second}" in proc.stderr
    proc = cli("--db", str(second), "jobs", "list", BATCHDASH_DB=str(first), check=False)
    assert proc.returncode == 2 and f"no database at {second}" in proc.stderr


def test_shell_completion_script_and_candidates() -> None:
    proc = cli(_BATCHDASH_COMPLETE="bash_source")
    assert "_batchdash_completion" in proc.stdout and "complete " in proc.stdout
    proc = cli(_BATCHDASH_COMPLETE="bash_complete", COMP_WORDS="batchdash jo", COMP_CWORD="1")
    assert proc.stdout == "plain,jobs\n"


def test_command_modules_import_only_the_shared_modules() -> None:
    shared = {
        *("common", "runner", "options", "views"),
        *("progress", "selection", "polling", "stopping", "batch_text"),
        *("notify", "notify_channels"),
    }
    allowed = {f"batchdash.tui.cli.{m}" for m in shared}
    for module in {where.split(":")[0] for where in COMMANDS.values()} | shared:
        tree = ast.parse((ROOT / "tui" / "cli" / f"{module}.py").read_text())
        names = {
            node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
        } | {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        }
        inside = {n for n in names if n.startswith("batchdash.tui.cli")}
        assert inside <= allowed - {f"batchdash.tui.cli.{module}"}, (module, inside)
