"""What went wrong with a store, in one line: where it is, the cause, what to do.

SQLite failures (read-only, full, locked, not a database, damaged, folder missing or gone)
and PostgreSQL failures (cannot connect, locked past the timeout, read-only for this user,
disk full) a user can act on become one `StoreError`; the others (bugs) are left alone. A
PostgreSQL URL is shown with its password masked, and the password is scrubbed from the
driver's detail.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path

from parity.core.dburl import DbRef, scrub
from parity.core.errors import ConfigError, StoreError

BUSY_TIMEOUT_S = 5.0
"""How long a write waits for another connection's lock before `StoreError` (locked);
`PARITY_BUSY_TIMEOUT` (seconds) overrides it."""


# What went wrong with a store, in one line: the path, the cause, what to do.
def default_busy_timeout() -> float:
    """`PARITY_BUSY_TIMEOUT` (seconds) if set, else `BUSY_TIMEOUT_S`."""
    raw = os.environ.get("PARITY_BUSY_TIMEOUT", "").strip()
    if not raw:
        return BUSY_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise ConfigError(f"PARITY_BUSY_TIMEOUT={raw!r}: give seconds, e.g. 5")
    return value


def _readonly_message(path: Path, detail: str) -> str:
    folder_only = path.exists() and os.access(path, os.W_OK)
    what = f"the folder {path.parent} of store {path}" if folder_only else f"store {path}"
    return (
        f"{what} is read-only ({detail}): make the file and its folder writable, or copy the"
        " store somewhere writable and give that --db"
    )


def _full_message(path: Path, detail: str) -> str:
    return (
        f"no space left for store {path} ({detail}): free space on its disk, or copy the"
        " store to another disk and give that --db"
    )


def _missing_folder_message(path: Path, detail: str) -> str:
    return (
        f"the folder of store {path} is missing and cannot be created ({detail}): create"
        f" {path.parent}, or give a --db in a folder that exists"
    )


def _filesystem_cause(path: Path) -> str | None:
    """What about the file system stops writing `path`, if something visible does:
    "missing" (folder), "read-only" (file system, file or folder) or "full"."""
    folder = path.parent
    if not folder.is_dir():
        return "missing"
    try:
        vfs = os.statvfs(folder)
    except (OSError, AttributeError):
        vfs = None
    if vfs is not None and vfs.f_flag & os.ST_RDONLY:
        return "read-only"
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        return "read-only"
    if vfs is not None and vfs.f_bavail * vfs.f_frsize < 64 * 1024:
        return "full"
    return None


def sqlite_store_error(path: Path, exc: sqlite3.Error, busy_timeout: float) -> StoreError | None:
    """The `StoreError` for an SQLite failure a user can act on; None for the others (a bug:
    let it be a traceback)."""
    if type(exc) not in (sqlite3.OperationalError, sqlite3.DatabaseError):
        return None
    detail = str(exc)
    name = getattr(exc, "sqlite_errorname", "") or ""
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "database is locked" in detail:
        return StoreError(
            f"store {path} is locked by another process ({detail}; waited {busy_timeout:g} s):"
            " try again once it is done, or wait longer with PARITY_BUSY_TIMEOUT=SECONDS"
        )
    if name.startswith("SQLITE_FULL") or "database or disk is full" in detail:
        return StoreError(_full_message(path, detail))
    if name.startswith("SQLITE_NOTADB") or "file is not a database" in detail:
        return StoreError(
            f"{path} is not a parity store ({detail}): give another --db, or move this file away"
        )
    if name.startswith("SQLITE_CORRUPT") or "malformed" in detail:
        return StoreError(
            f"store {path} is damaged ({detail}): restore it from a copy, or save what is"
            f" readable with: sqlite3 {path} .recover | sqlite3 recovered.db"
        )
    known = ("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_IOERR", "SQLITE_PERM")
    if not name.startswith(known) and not any(
        text in detail for text in ("readonly", "unable to open", "disk I/O error")
    ):
        return None
    if path.is_dir():
        return StoreError(f"{path} is a folder, not a store ({detail}): give a file as --db")
    cause = _filesystem_cause(path)
    if cause == "missing":
        return StoreError(
            f"the folder of store {path} is gone ({detail}): restore {path.parent} (or the"
            " store), or give a --db in a folder that exists"
        )
    if cause == "full":
        return StoreError(_full_message(path, detail))
    if cause == "read-only" or name.startswith("SQLITE_READONLY") or "readonly" in detail:
        return StoreError(_readonly_message(path, detail))
    if name.startswith("SQLITE_CANTOPEN") or "unable to open" in detail:
        return StoreError(
            f"cannot open store {path} ({detail}): check that it and its folder can be read"
            " and written"
        )
    return StoreError(f"store {path} cannot be written ({detail}): check its disk, then try again")


def os_store_error(path: Path, exc: OSError) -> StoreError:
    """The `StoreError` for a file-system failure around `path` (creating its folder)."""
    detail = exc.strerror or str(exc)
    if exc.errno == errno.ENOSPC:
        return StoreError(_full_message(path, detail))
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return StoreError(_readonly_message(path, f"{exc.filename or path.parent}: {detail}"))
    return StoreError(_missing_folder_message(path, f"{exc.filename or path.parent}: {detail}"))


def _one_line(detail: str) -> str:
    return "; ".join(part.strip() for part in detail.strip().splitlines() if part.strip())


def pg_store_error(ref: DbRef, exc: BaseException, busy_timeout: float) -> StoreError | None:
    """The `StoreError` for a PostgreSQL (psycopg) failure a user can act on; None for the
    others (a bug: let it be a traceback). The password never appears in the message."""
    import psycopg
    from psycopg import errors as pg

    if not isinstance(exc, psycopg.Error):
        return None
    assert ref.url is not None
    detail = scrub(_one_line(str(exc)), ref.url) or type(exc).__name__
    if isinstance(exc, pg.LockNotAvailable | pg.QueryCanceled | pg.DeadlockDetected):
        return StoreError(
            f"store {ref} is locked by another process ({detail}; waited {busy_timeout:g} s):"
            " try again once it is done, or wait longer with PARITY_BUSY_TIMEOUT=SECONDS"
        )
    if isinstance(exc, pg.DiskFull | pg.OutOfMemory | pg.InsufficientResources):
        return StoreError(
            f"no space left for store {ref} ({detail}): free space on the database server,"
            " then try again"
        )
    if isinstance(exc, pg.InsufficientPrivilege | pg.ReadOnlySqlTransaction):
        return StoreError(
            f"store {ref} is read-only for this user ({detail}): grant it INSERT, UPDATE and"
            " CREATE on the database, or give another --db"
        )
    if isinstance(exc, psycopg.OperationalError):
        return StoreError(
            f"cannot reach store {ref} ({detail}): check the host, port, database and user,"
            " the password (PGPASSWORD or ~/.pgpass), and that the server is running"
        )
    return None
