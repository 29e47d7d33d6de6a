"""The theme setting: saved into the config file without losing the user's lines, read
back, and checked on the command line (`--theme` beats the file; unknown = one line)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from batchdash.core import config
from tests.conftest import cli

USER_FILE = """\
# my settings
db = "~/work.db"   # the usual one

[openai]
base_url = "https://example.com/v1"
"""


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "batchdash" / "config.toml"
    monkeypatch.setenv("BATCHDASH_CONFIG", str(path))
    config.file_settings.cache_clear()
    yield path
    config.file_settings.cache_clear()


def test_saving_a_theme_keeps_every_other_line_and_comment(config_file: Path) -> None:
    config_file.parent.mkdir()
    config_file.write_text(USER_FILE)
    config_file.chmod(0o640)
    config.save_theme("nord")
    assert config_file.read_text() == 'theme = "nord"\n' + USER_FILE
    assert config.file_settings().theme == "nord"
    assert config.file_settings().base_url == "https://example.com/v1"
    config.save_theme("gruvbox")  # replaces its own line, adds none
    assert config_file.read_text() == 'theme = "gruvbox"\n' + USER_FILE
    assert config_file.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in config_file.parent.iterdir()] == ["config.toml"]  # no temp left


def test_saving_a_theme_creates_the_file_and_refuses_odd_names(config_file: Path) -> None:
    config.save_theme("textual-light")
    assert config_file.read_text() == 'theme = "textual-light"\n'
    with pytest.raises(config.ConfigError, match="theme"):
        config.save_theme('x"\ndb = "evil')


def test_an_unknown_theme_is_a_one_line_error(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    cli("init", "--db", str(db))
    result = cli("--db", str(db), "--theme", "nope", check=False)
    assert result.returncode == 2
    assert result.stderr.startswith("batchdash: error: --theme: unknown theme 'nope' (known: ")
    assert "nord" in result.stderr and len(result.stderr.splitlines()) == 1
    bad = tmp_path / "config.toml"
    bad.write_text('theme = "nope"\n')
    result = cli("--db", str(db), check=False, BATCHDASH_CONFIG=str(bad))
    assert result.returncode == 2
    assert result.stderr.startswith(f"batchdash: error: config file {bad}: theme: unknown theme")
