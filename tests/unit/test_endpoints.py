"""Named endpoints in the config file, how a stored name resolves, and which provider a
batch file's lines are for."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchdash.core import config
from batchdash.core.batch_input import detect_provider
from batchdash.core.endpoints import (
    UnknownEndpointError,
    choose_provider,
    for_stored,
    named,
    resolve,
)
from batchdash.core.errors import BatchError
from tests.conftest import cli

GOOD = """
[endpoints.claude-eu]
provider = "anthropic"
base_url = "https://eu.example/anthropic"
api_key_env = "EU_CLAUDE_KEY"

[endpoints.azure]
provider = "openai"
"""

OPENAI_LINE = {"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {}}
ANTHROPIC_LINE = {"custom_id": "b", "params": {"model": "claude", "max_tokens": 5}}


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "config.toml"
    monkeypatch.setenv("BATCHDASH_CONFIG", str(path))
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    config.file_settings.cache_clear()
    yield path
    config.file_settings.cache_clear()


def lines(tmp_path: Path, *records: dict[str, object]) -> Path:
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_a_named_endpoint_resolves_to_its_url_and_key_variable(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_file.write_text(GOOD)
    claude = named("claude-eu")
    assert (claude.provider, claude.base_url, claude.key_env) == (
        "anthropic",
        "https://eu.example/anthropic",
        "EU_CLAUDE_KEY",
    )
    with pytest.raises(config.MissingKeyError, match="set EU_CLAUDE_KEY for endpoint 'claude-eu'"):
        claude.key()
    monkeypatch.setenv("EU_CLAUDE_KEY", "k")
    assert claude.key() == "k"
    # Without base_url/api_key_env: the provider's public API and its usual variable, not
    # the SDK's environment overrides (those belong to the unnamed default).
    monkeypatch.setenv("OPENAI_BASE_URL", "http://default.example/v1")
    azure = named("azure")
    assert (azure.base_url, azure.key_env) == ("https://api.openai.com/v1", "OPENAI_API_KEY")
    assert resolve(None, "openai").base_url == "http://default.example/v1"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[endpoints.x]\nprovider = "openai"\nurl = "u"', "unknown key endpoints.x.url"),
        ('[endpoints.x]\nprovider = "gemini"', "endpoints.x.provider must be one of"),
        ("[endpoints.x]\nbase_url = 'u'", "endpoints.x.provider must be one of"),
        (
            '[endpoints.x]\nprovider = "openai"\napi_key = "sk-live-123"',
            "endpoints.x.api_key: API keys are never read from the file",
        ),
        (
            '[endpoints.x]\nprovider = "openai"\napi_key_env = "sk-live-123"',
            "endpoints.x.api_key_env must name an environment variable",
        ),
        ("endpoints = 3", r"\[endpoints\] must hold"),
        ('[endpoints."a b"]\nprovider = "openai"', "endpoint name 'a b' must be"),
    ],
)
def test_bad_endpoint_tables_are_one_line_errors_naming_file_and_key(
    config_file: Path, text: str, message: str
) -> None:
    config_file.write_text(text)
    with pytest.raises(config.ConfigError, match=message) as caught:
        config.file_settings()
    assert str(caught.value).startswith(f"config file {config_file}: ")
    assert "sk-live-123" not in str(caught.value)  # a key pasted by mistake is never echoed


def test_unknown_and_vanished_names_are_one_line_errors(config_file: Path) -> None:
    config_file.write_text(GOOD)
    with pytest.raises(UnknownEndpointError, match=r"unknown endpoint 'nope' \(known: azure, "):
        named("nope")
    with pytest.raises(config.ConfigError, match="'azure' is an openai endpoint, not anthropic"):
        resolve("azure", "anthropic")
    with pytest.raises(UnknownEndpointError, match="batch 7 was sent through endpoint 'old'"):
        for_stored("batch 7", "old", "openai", "http://x/v1")
    # Without a name, a stored URL is kept (a batch stays where it was sent).
    assert for_stored("batch 7", None, "openai", "http://x/v1").base_url == "http://x/v1"


def test_detection_picks_the_provider_from_the_line_format(tmp_path: Path) -> None:
    assert detect_provider(lines(tmp_path, OPENAI_LINE, OPENAI_LINE)) == "openai"
    assert detect_provider(lines(tmp_path, ANTHROPIC_LINE, ANTHROPIC_LINE)) == "anthropic"
    mixed = lines(tmp_path, ANTHROPIC_LINE, ANTHROPIC_LINE, OPENAI_LINE)
    with pytest.raises(BatchError, match=rf"{mixed}:3: an openai request line .*\(line 1\)"):
        detect_provider(mixed)


def test_provider_flag_and_endpoint_override_detection(config_file: Path, tmp_path: Path) -> None:
    config_file.write_text(GOOD)
    anthropic_file = lines(tmp_path, ANTHROPIC_LINE)
    assert choose_provider(anthropic_file, None, None) == "anthropic"
    assert choose_provider(anthropic_file, "openai", None) == "openai"
    assert choose_provider(anthropic_file, None, "claude-eu") == "anthropic"
    with pytest.raises(config.ConfigError, match="holds anthropic request lines but --endpoint"):
        choose_provider(anthropic_file, None, "azure")
    with pytest.raises(config.ConfigError, match="is an anthropic endpoint, not --provider"):
        choose_provider(anthropic_file, "openai", "claude-eu")


def test_cli_refuses_an_unknown_endpoint_listing_the_known_ones(
    config_file: Path, tmp_path: Path
) -> None:
    config_file.write_text(GOOD)
    env = {"BATCHDASH_CONFIG": str(config_file), "BATCHDASH_DB": str(tmp_path / "d.db")}
    request = lines(tmp_path, OPENAI_LINE)
    cli("init", **env)
    for argv in (
        ("submit", str(request), "--endpoint", "nope"),
        ("enqueue", str(request), "--endpoint", "nope"),
        ("qa", "run", "--endpoint", "nope"),
    ):
        result = cli(*argv, check=False, **env)
        assert result.returncode == 2, argv
        assert result.stderr == (
            "batchdash: error: unknown endpoint 'nope' (known: azure, claude-eu)\n"
        ), argv
