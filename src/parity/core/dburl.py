"""Where a store lives: an SQLite file (a path) or a PostgreSQL database (a URL).

`--db` and `PARITY_DB` take either. A value starting with `postgresql://` or
`postgresql+psycopg://` is a PostgreSQL URL; anything else is a path (SQLite). A URL's
password is never printed: `str(ref)` masks it (`postgresql://user:***@host/db`), so a
`DbRef` can go into any message, log or report as is; only `ref.url` (for connecting) holds
it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from parity.core.errors import ConfigError

POSTGRES_SCHEMES = ("postgresql", "postgresql+psycopg", "postgres")
"""URL schemes taken as PostgreSQL (connected through psycopg 3)."""

DEFAULT_DB = "parity.db"
"""The store when neither --db nor PARITY_DB names one."""

MASK = "***"


def is_url(value: str) -> bool:
    """Whether `value` names a PostgreSQL database (a URL) rather than an SQLite path."""
    scheme, sep, _ = value.partition("://")
    return bool(sep) and scheme.lower() in POSTGRES_SCHEMES


def mask_url(url: str) -> str:
    """`url` with its password (if any) replaced by `***`; anything not a URL unchanged."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{host}"))


def scrub(text: str, url: str) -> str:
    """`text` with the password of `url` (and the unmasked URL) replaced: for error details
    a driver may build from the URL."""
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    text = text.replace(url, mask_url(url))
    if password:
        text = text.replace(password, MASK)
    return text


@dataclass(frozen=True)
class DbRef:
    """A store's location as given: `path` (SQLite) or `url` (PostgreSQL, password and all).
    `str()` is what to show: the path, or the URL with its password masked."""

    path: Path | None = None
    url: str | None = None

    @classmethod
    def of(cls, value: DbRef | Path | str) -> DbRef:
        """Parse a `--db` value: a PostgreSQL URL, else a path."""
        if isinstance(value, DbRef):
            return value
        text = str(value) if isinstance(value, Path) else value.strip()
        if isinstance(value, str) and is_url(text):
            return cls.from_url(text)
        if not text:
            raise ConfigError("--db: give a path (SQLite) or a postgresql:// URL")
        if "://" in text and not isinstance(value, Path):
            scheme = text.partition("://")[0]
            raise ConfigError(
                f"--db {mask_url(text)}: unknown scheme {scheme!r}; give a path (SQLite) or a"
                " postgresql://user@host:port/db URL"
            )
        return cls(path=Path(text))

    @classmethod
    def from_url(cls, url: str) -> DbRef:
        """A PostgreSQL URL, checked for a host-or-socket and a database name."""
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError as exc:
            raise ConfigError(f"--db {mask_url(url)}: not a valid URL ({exc})") from None
        if not parts.path.strip("/"):
            raise ConfigError(
                f"--db {mask_url(url)}: name the database, e.g. postgresql://user@host:5432/parity"
            )
        return cls(url=url)

    @property
    def is_sqlite(self) -> bool:
        return self.path is not None

    def sqlalchemy_url(self) -> str:
        """The URL for SQLAlchemy: `postgresql+psycopg://...` (psycopg 3)."""
        assert self.url is not None
        return "postgresql+psycopg://" + self.url.partition("://")[2]

    def exists(self) -> bool:
        """Whether the store may hold runs: the file exists; a database is asked on open."""
        return self.path.exists() if self.path is not None else True

    def __str__(self) -> str:
        if self.path is not None:
            return str(self.path)
        assert self.url is not None
        return mask_url(self.url)

    def __repr__(self) -> str:
        return f"DbRef({str(self)!r})"


def parse_db(value: DbRef | Path | str) -> DbRef:
    """`--db`'s parser (Typer): a `DbRef`, a one-line `ConfigError` for a bad URL."""
    return DbRef.of(value)


def default_db() -> DbRef:
    """`PARITY_DB` if set, else `parity.db` in the current folder."""
    return DbRef.of(os.environ.get("PARITY_DB", "").strip() or DEFAULT_DB)


Db = DbRef | Path
"""What the library takes as a store: a `DbRef` (the CLI's `--db`) or a path (SQLite)."""


def as_db(value: DbRef | Path | str) -> Db:
    """`value` as the library takes it: a `Path` for SQLite (as given), a `DbRef` for a URL."""
    ref = DbRef.of(value)
    return ref.path if ref.path is not None else ref
