"""Settings: command-line flags > environment > config file > defaults.

The file is `$BATCHDASH_CONFIG`, else `$XDG_CONFIG_HOME/batchdash/config.toml`
(`~/.config/batchdash/config.toml`). Every key is optional:

    db = "~/work/batchdash.db"       # the database (as --db / BATCHDASH_DB): a file path,
                                     # or postgresql://user@host/dbname (no password here)
    prices = "~/prices.json"         # price overrides (as BATCHDASH_PRICES)
    bell = false                     # the dashboard rings no bell on a notice (as --no-bell)
    notify_failures = 10             # notify at N failed jobs in a queue, then 2N, 4N…; 0: never
    theme = "nord"                   # the dashboard's colours (as --theme); the dashboard
                                     # saves the theme picked in its command palette here

    [openai]
    base_url = "https://example.com/v1"   # an OpenAI-compatible endpoint (as OPENAI_BASE_URL)
    api_key_env = "EXAMPLE_API_KEY"       # the variable holding the key (default OPENAI_API_KEY)

    [endpoints.azure]                     # a named endpoint: `--endpoint azure`
    provider = "openai"                   # "openai" or "anthropic" (required)
    base_url = "https://example.openai.azure.com/openai/v1"   # default: the provider's
    api_key_env = "AZURE_KEY"             # default: OPENAI_API_KEY / ANTHROPIC_API_KEY

API keys are never read from the file: they stay in the environment, so no secret lands
in a file that gets copied, shared or committed. For the same reason a `db` URL holding a
password is refused: libpq reads it from PGPASSWORD, ~/.pgpass or a service file (or from
a URL given by --db / BATCHDASH_DB). Unknown keys are errors (a typo should
not be silently ignored).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from batchdash.core.errors import InvalidInputError

#: Where the OpenAI key comes from unless the config file names another variable.
DEFAULT_KEY_ENV = "OPENAI_API_KEY"
DEFAULT_BASE_URL = "https://api.openai.com/v1"


class ConfigError(InvalidInputError):
    """The config file cannot be read or holds something unexpected (names file and key)."""


class MissingKeyError(ConfigError):
    """No API key is set: the message names the variable to set."""


@dataclass(frozen=True)
class FileSettings:
    """What the config file says; None where it says nothing."""

    db: str | None = None
    prices: str | None = None
    theme: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    endpoints: dict[str, EndpointSettings] = field(default_factory=dict)
    bell: bool | None = None
    notify_failures: int | None = None


@dataclass(frozen=True)
class EndpointSettings:
    """One `[endpoints.NAME]` table: a provider, and optionally its URL and key variable."""

    provider: str
    base_url: str | None = None
    api_key_env: str | None = None


#: Providers known by name: an endpoint's `provider`, `--provider`, `batches.provider`.
PROVIDER_NAMES = ("anthropic", "openai")

_TOP_KEYS = {"db", "prices", "theme", "openai", "endpoints", "bell", "notify_failures"}
_OPENAI_KEYS = {"base_url", "api_key_env"}
_ENDPOINT_KEYS = {"provider", "base_url", "api_key_env"}
#: Keys that would hold a secret: named in the error, so the user moves it to a variable.
_SECRET_KEYS = {"api_key", "key", "token", "secret", "password"}
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def config_path() -> Path:
    """The config file's path (it need not exist)."""
    explicit = os.environ.get("BATCHDASH_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "batchdash" / "config.toml"


@cache
def file_settings() -> FileSettings:
    """The config file's settings, read once per process; empty when there is no file."""
    path = config_path()
    if not path.is_file():
        return FileSettings()
    import tomllib  # only when a file exists: keeps `--once` start-up lean

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"config file {path}: {exc}") from exc
    openai = data.get("openai", {})
    if not isinstance(openai, dict):
        raise ConfigError(f"config file {path}: [openai] must be a table")
    _reject_unknown(path, data, _TOP_KEYS, "")
    _reject_unknown(path, openai, _OPENAI_KEYS, "openai.")
    db = _text(path, data, "db", "")
    _refuse_password(path, db)
    return FileSettings(
        db=db,
        prices=_text(path, data, "prices", ""),
        theme=_text(path, data, "theme", ""),
        base_url=_text(path, openai, "base_url", "openai."),
        api_key_env=_variable(path, openai, "openai."),
        endpoints=_endpoints(path, data.get("endpoints", {})),
        bell=_flag(path, data, "bell"),
        notify_failures=_count(path, data, "notify_failures"),
    )


def _endpoints(path: Path, tables: Any) -> dict[str, EndpointSettings]:
    """The `[endpoints.NAME]` tables, each checked like the rest of the file."""
    if not isinstance(tables, dict):
        raise ConfigError(f"config file {path}: [endpoints] must hold [endpoints.NAME] tables")
    found = {}
    for name, table in tables.items():
        prefix = f"endpoints.{name}."
        if not _NAME.match(name):
            raise ConfigError(
                f"config file {path}: endpoint name {name!r} must be 1-64 letters, digits, _ or -"
            )
        if not isinstance(table, dict):
            raise ConfigError(f"config file {path}: [endpoints.{name}] must be a table")
        _reject_unknown(path, table, _ENDPOINT_KEYS, prefix)
        provider = _text(path, table, "provider", prefix)
        if provider not in PROVIDER_NAMES:
            raise ConfigError(
                f"config file {path}: {prefix}provider must be one of "
                f"{', '.join(PROVIDER_NAMES)} (got {provider!r})"
            )
        found[name] = EndpointSettings(
            provider=provider,
            base_url=_text(path, table, "base_url", prefix),
            api_key_env=_variable(path, table, prefix),
        )
    return found


def _reject_unknown(path: Path, table: dict[str, Any], known: set[str], prefix: str) -> None:
    for key in table:
        if key in _SECRET_KEYS:
            raise ConfigError(
                f"config file {path}: {prefix}{key}: API keys are never read from the file; "
                f"put the key in an environment variable and name it with {prefix}api_key_env"
            )
        if key not in known:
            allowed = ", ".join(prefix + k for k in sorted(known))
            raise ConfigError(f"config file {path}: unknown key {prefix}{key} (known: {allowed})")


def _text(path: Path, table: dict[str, Any], key: str, prefix: str) -> str | None:
    value = table.get(key)
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise ConfigError(f"config file {path}: {prefix}{key} must be a non-empty string")
    return value


def _flag(path: Path, table: dict[str, Any], key: str) -> bool | None:
    value = table.get(key)
    if value is not None and not isinstance(value, bool):
        raise ConfigError(f"config file {path}: {key} must be true or false")
    return value


def _count(path: Path, table: dict[str, Any], key: str) -> int | None:
    value = table.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ConfigError(f"config file {path}: {key} must be a whole number >= 0")
    return value


def _variable(path: Path, table: dict[str, Any], prefix: str) -> str | None:
    """`api_key_env`: the NAME of a variable. Anything else is refused without echoing it,
    since a key pasted here by mistake must not land in an error message or a log."""
    value = _text(path, table, "api_key_env", prefix)
    if value is not None and not _VARIABLE.match(value):
        raise ConfigError(
            f"config file {path}: {prefix}api_key_env must name an environment variable "
            "(like MY_API_KEY), not hold the key itself"
        )
    return value


def _refuse_password(path: Path, db: str | None) -> None:
    """A config file is copied and shared: a password in its `db` URL is an error."""
    if db is None or "://" not in db:
        return
    from batchdash.core.db.location import has_password  # only for a URL

    if has_password(db):
        raise ConfigError(
            f"config file {path}: db must not hold a password "
            "(use PGPASSWORD, ~/.pgpass or a service file)"
        )


#: A theme name as written to the file (Textual's themes: `nord`, `textual-dark`, ...).
_THEME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
#: A top-level `theme = ...` line (before the first table).
_THEME_LINE = re.compile(r"^\s*theme\s*=")


def save_theme(name: str) -> Path:
    """Write `theme = "NAME"` to the config file, keeping every other line and comment.

    An existing top-level `theme` line is replaced, else the line goes first. The new file
    is written beside the old one and renamed over it, so a crash never leaves half a file.
    """
    import tempfile  # here: `--once` reads this module and must stay lean (random, hashlib)

    if not _THEME.match(name):
        raise ConfigError(f"theme {name!r} must be 1-64 letters, digits, _ or -")
    path = config_path()
    old = path.read_text(encoding="utf-8").splitlines(keepends=True) if path.is_file() else []
    line = f'theme = "{name}"\n'
    top = next((i for i, text in enumerate(old) if text.lstrip().startswith("[")), len(old))
    found = next((i for i in range(top) if _THEME_LINE.match(old[i])), None)
    lines = [line, *old] if found is None else [*old[:found], line, *old[found + 1 :]]
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=path.parent, prefix=".config-", delete=False
    ) as tmp:
        tmp.write("".join(lines))
    if path.is_file():
        os.chmod(tmp.name, path.stat().st_mode & 0o7777)
    os.replace(tmp.name, path)
    file_settings.cache_clear()
    return path


def db_setting() -> str | None:
    """The database (file path or URL) from BATCHDASH_DB or the config file; the CLI
    applies `--db` itself."""
    return os.environ.get("BATCHDASH_DB") or file_settings().db


def prices_path_setting() -> Path | None:
    """The price overrides file from BATCHDASH_PRICES or the config file."""
    value = os.environ.get("BATCHDASH_PRICES") or file_settings().prices
    return Path(value).expanduser() if value else None


def openai_endpoint() -> tuple[str, str, str]:
    """(base_url, api key, name of the key's variable); the key may be empty (not set)."""
    settings = file_settings()
    key_env = settings.api_key_env or DEFAULT_KEY_ENV
    base_url = os.environ.get("OPENAI_BASE_URL") or settings.base_url or DEFAULT_BASE_URL
    return base_url, os.environ.get(key_env, ""), key_env


def openai_settings() -> tuple[str, str]:
    """(base_url, api key) of the OpenAI-compatible endpoint; MissingKeyError without a key.

    The key is read from the variable the config file names (`[openai] api_key_env`,
    default OPENAI_API_KEY) and is never stored anywhere.
    """
    base_url, key, key_env = openai_endpoint()
    if not key:
        raise MissingKeyError(
            f"no API key: set {key_env} (and OPENAI_BASE_URL for a compatible endpoint)"
        )
    return base_url, key
