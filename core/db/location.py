"""Where the store lives: a SQLite file or a PostgreSQL server, chosen by what the user gave.

`--db`, `BATCHDASH_DB` and the config file's `db` all take either a file path (SQLite, the
embedded default) or a `postgresql://` URL; the URL's scheme picks the back end. A URL is
shown everywhere with its password replaced by `***` (`display`), and the local files a
database needs on each host (worker PID files, logs, QA batch files) live in a state folder
keyed by the database (`state_dir`), so two databases never share one.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from batchdash.core.config import db_setting
from batchdash.core.errors import InvalidInputError

#: URL schemes of the PostgreSQL back end (libpq accepts both).
POSTGRES_SCHEMES = ("postgresql", "postgres")

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


@dataclass(frozen=True, slots=True)
class DbLocation:
    """A database: `path` for SQLite, or `url` for PostgreSQL (exactly one is set)."""

    path: Path | None = None
    url: str | None = None

    @property
    def is_postgres(self) -> bool:
        """True for a PostgreSQL server, False for a SQLite file."""
        return self.url is not None

    @property
    def display(self) -> str:
        """What to show a user: the file path, or the URL with its password redacted."""
        if self.url is not None:
            return redact_url(self.url)
        return str(self.path)

    @property
    def setting(self) -> str:
        """The value to hand a child process (through BATCHDASH_DB, never its argv)."""
        return self.url if self.url is not None else str(self.path)

    def state_dir(self) -> Path:
        """This host's folder for the database's local files (PID files, logs, QA files).

        `$XDG_STATE_HOME/batchdash/<name>-<hash>`: the name says which database it is to a
        person listing the folder, the hash of the resolved path (or of the URL without its
        password) keeps two databases with the same name apart.
        """
        if self.url is not None:
            key = redact_url(self.url, mask="")
            name = urlsplit(self.url).path.strip("/") or "postgres"
        else:
            assert self.path is not None
            key = str(self.path.expanduser().resolve())
            name = self.path.stem
        import hashlib  # here: `--once` never needs a state folder (~3 ms of imports)

        digest = hashlib.sha256(key.encode()).hexdigest()[:12]
        base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        return Path(base) / "batchdash" / f"{_safe(name)}-{digest}"

    def __str__(self) -> str:
        return self.display


def parse_location(text: str) -> DbLocation:
    """The database `text` names: a `postgresql://` URL, or else a SQLite file path.

    Any other `scheme://` is refused (InvalidInputError) rather than taken for a file name.
    """
    match = _SCHEME.match(text)
    if match is None:
        return DbLocation(path=Path(text).expanduser())
    if match.group(1).lower() in POSTGRES_SCHEMES:
        return DbLocation(url=text)
    raise InvalidInputError(
        f"database {redact_url(text)}: unsupported URL scheme {match.group(1)!r} "
        "(use a file path for SQLite, or postgresql://…)"
    )


def default_location() -> DbLocation:
    """The database unless `--db` says otherwise: BATCHDASH_DB, the config file's `db`, else
    the SQLite file in the XDG data folder."""
    chosen = db_setting()
    if chosen:
        return parse_location(chosen)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return DbLocation(path=Path(base) / "batchdash" / "batchdash.db")


def redact_url(url: str, mask: str = "***") -> str:
    """`url` with its password (in the authority or a `password=` parameter) replaced."""
    colon = ":" if mask else ""
    url = _AUTH_PASSWORD.sub(lambda m: f"{m.group(1)}{colon}{mask}@", url, count=1)
    return _QUERY_PASSWORD.sub(lambda m: f"{m.group(1)}password={mask}", url)


#: `scheme://user:password@` — the password part of a URL's authority.
_AUTH_PASSWORD = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://[^:/@?#]*):[^@/?#]*@")
#: `?password=…` or `&password=…` in the query string.
_QUERY_PASSWORD = re.compile(r"(?i)([?&])password=[^&#]*")


def has_password(url: str) -> bool:
    """True when the URL carries a password itself (the config file must not)."""
    parts = urlsplit(url)
    return parts.password is not None or re.search(r"(?i)(^|&)password=", parts.query) is not None


def _safe(name: str) -> str:
    """A folder-name-safe version of a database name."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:40] or "db"
