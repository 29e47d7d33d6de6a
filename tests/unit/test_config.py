"""Settings precedence: flags > environment > config file > defaults; bad files fail clearly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from batchdash.core import config, pricing
from batchdash.core.config import MissingKeyError, openai_settings
from batchdash.core.db import DbLocation, default_location
from tests.conftest import cli


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "config.toml"
    monkeypatch.setenv("BATCHDASH_CONFIG", str(path))
    for name in ("BATCHDASH_DB", "BATCHDASH_PRICES", "OPENAI_BASE_URL", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    config.file_settings.cache_clear()
    pricing.price_table.cache_clear()
    yield path
    config.file_settings.cache_clear()
    pricing.price_table.cache_clear()


def test_no_file_means_defaults(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", "/data")
    assert default_location() == DbLocation(path=Path("/data/batchdash/batchdash.db"))
    with pytest.raises(MissingKeyError, match="set OPENAI_API_KEY"):
        openai_settings()


def test_file_beats_defaults_and_environment_beats_file(
    config_file: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    prices = tmp_path / "prices.json"
    prices.write_text('{"house-model": [1.0, 2.0]}')
    config_file.write_text(
        f'db = "{tmp_path / "from-file.db"}"\nprices = "{prices}"\n'
        '[openai]\nbase_url = "http://file.example/v1"\napi_key_env = "HOUSE_KEY"\n'
    )
    monkeypatch.setenv("HOUSE_KEY", "k-file")
    assert default_location() == DbLocation(path=tmp_path / "from-file.db")
    assert openai_settings() == ("http://file.example/v1", "k-file")
    assert pricing.model_price("house-model") == (1.0, 2.0)
    monkeypatch.setenv("BATCHDASH_DB", str(tmp_path / "from-env.db"))
    monkeypatch.setenv("OPENAI_BASE_URL", "http://env.example/v1")
    assert default_location() == DbLocation(path=tmp_path / "from-env.db")
    assert openai_settings()[0] == "http://env.example/v1"


def test_missing_key_names_the_configured_variable(config_file: Path) -> None:
    config_file.write_text('[openai]\napi_key_env = "HOUSE_KEY"\n')
    with pytest.raises(MissingKeyError, match="set HOUSE_KEY"):
        openai_settings()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("db = ", "config file .*config.toml: "),
        ("dbb = 'x'", "unknown key dbb"),
        (
            "[openai]\napi_key = 'sk-secret'",
            "openai.api_key: API keys are never read from the file",
        ),
        ("db = 3", "db must be a non-empty string"),
        ("bell = 'no'", "bell must be true or false"),
        ("notify_failures = -1", "notify_failures must be a whole number >= 0"),
        ("notify_failures = 2.5", "notify_failures must be a whole number >= 0"),
    ],
)
def test_bad_files_are_one_line_errors(config_file: Path, text: str, message: str) -> None:
    config_file.write_text(text)
    with pytest.raises(config.ConfigError, match=message):
        config.file_settings()


def test_notice_settings_come_from_the_file(config_file: Path) -> None:
    from batchdash.core.notices import DEFAULT_FAILURES, rules_from_config
    from batchdash.tui.toasts import bell_setting

    assert rules_from_config().failures == DEFAULT_FAILURES == 10
    assert bell_setting(no_bell=False) and not bell_setting(no_bell=True)
    config_file.write_text("bell = false\nnotify_failures = 0\n")
    config.file_settings.cache_clear()
    assert rules_from_config().failures == 0
    assert not bell_setting(no_bell=False)


def test_cli_reports_a_bad_config_file_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "config.toml"
    bad.write_text("dbb = 'x'\n")
    result = cli("jobs", "list", check=False, BATCHDASH_CONFIG=str(bad))
    assert result.returncode == 2
    assert result.stderr.startswith(f"batchdash: error: config file {bad}: unknown key dbb")
    assert len(result.stderr.splitlines()) == 1
