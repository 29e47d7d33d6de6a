"""The JSON contract: one shape per entity across commands, schema_version, one indentation."""

from __future__ import annotations

import io
import json
import shutil
from typing import Any

import pytest

from batchdash.tui import showcase
from batchdash.tui.cli.views import SCHEMA_VERSION, write_json, write_json_list
from tests.conftest import cli

#: Every --json output of the CLI, by what it shows.
JSON_COMMANDS = [
    ("--once", "--json"),
    ("jobs", "list", "--json"),
    ("jobs", "show", "1", "--json"),
    ("workers", "list", "--json"),
    ("batches", "list", "--json"),
    ("batches", "show", "1", "--json"),
    ("qa", "summary", "--json"),
    ("qa", "show", "1", "--json"),
]


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, ...], str]:
    folder = tmp_path_factory.mktemp("contract")
    seeded = folder / "seed.db"
    showcase.seed(seeded)
    found = {}
    for command in JSON_COMMANDS:
        db = folder / f"{len(found)}.db"  # a copy each: `workers list` marks dead workers
        shutil.copy(seeded, db)
        proc = cli(*command, "--db", str(db), check=False)
        assert proc.returncode in (0, 1), (command, proc.stderr)  # --once: 1 = attention
        found[command] = proc.stdout
    return found


@pytest.mark.parametrize("command", JSON_COMMANDS, ids=" ".join)
def test_every_json_output_has_schema_version_and_two_space_indent(
    outputs: dict[tuple[str, ...], str], command: tuple[str, ...]
) -> None:
    text = outputs[command]
    data = json.loads(text)
    assert next(iter(data)) == "schema_version" and data["schema_version"] == SCHEMA_VERSION
    assert text == json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _keys(items: list[dict[str, Any]]) -> set[frozenset[str]]:
    assert items
    return {frozenset(item) for item in items}


def test_one_shape_per_entity_across_commands(outputs: dict[tuple[str, ...], str]) -> None:
    data = {command[:2]: json.loads(text) for command, text in outputs.items()}
    once = data[("--once", "--json")]
    workers = _keys(data[("workers", "list")]["workers"])
    assert workers == _keys(once["workers"]) and len(workers) == 1
    batches = _keys(data[("batches", "list")]["batches"])
    assert batches == _keys(once["batches"]) == _keys([data[("batches", "show")]["batch"]])
    assert len(batches) == 1
    jobs = _keys(data[("jobs", "list")]["jobs"])
    assert jobs == _keys([data[("jobs", "show")]["job"]]) == _keys([data[("qa", "show")]["job"]])
    assert _keys(data[("qa", "show")]["qa"]) == _keys(data[("jobs", "show")]["qa"])
    assert set(data[("qa", "summary")]["qa"]) == set(once["qa"])


def test_qa_show_is_the_job_with_its_verdicts(outputs: dict[tuple[str, ...], str]) -> None:
    shown = json.loads(outputs[("qa", "show", "1", "--json")])
    job = json.loads(outputs[("jobs", "show", "1", "--json")])
    assert list(shown) == ["schema_version", "job", "qa"]
    assert (shown["job"], shown["qa"]) == (job["job"], job["qa"])


def test_times_are_epoch_seconds_everywhere(outputs: dict[tuple[str, ...], str]) -> None:
    once = json.loads(outputs[("--once", "--json")])
    assert isinstance(once["generated_at"], float)
    job = json.loads(outputs[("jobs", "show", "1", "--json")])["job"]
    worker = json.loads(outputs[("workers", "list", "--json")])["workers"][0]
    for value in (job["created_at"], worker["heartbeat_at"], once["batches"][0]["created_at"]):
        assert isinstance(value, int | float) and value > 1_000_000_000


@pytest.mark.parametrize("items", [[], [{"a": 1, "b": [1, 2]}, {"a": "é"}]])
def test_streamed_lists_are_the_same_document(items: list[dict[str, Any]]) -> None:
    streamed, whole = io.StringIO(), io.StringIO()
    write_json_list("jobs", iter(items), streamed)
    write_json({"jobs": items}, whole)
    assert streamed.getvalue() == whole.getvalue()
