"""The store: runs, their providers, every exchange and the results, in an SQLite file (the
embedded default) or a shared PostgreSQL database, through one layer (SQLAlchemy Core 2;
SQLite by the standard library's driver, PostgreSQL by psycopg 3). The schema is defined once
(`parity.core.schema`) and versioned (`parity.core.migrations`); docs/store.md.

Each exchange is committed as soon as it completes, so a run killed at any moment loses at
most the requests that were in flight. Every attempt to send a request is logged in `sends`
first, which makes "no request sent twice" countable: after a resume, sends minus stored
exchanges is exactly the requests that were lost in flight. An exchange's key is stored at
most once per run and provider (a unique constraint and ON CONFLICT DO NOTHING), so writers
racing on one database never duplicate one.

One writer per run: the process writing a run holds its lease (columns `lease_*` of `runs`:
host, pid, a random token, when it was acquired, its last heartbeat, when it expires). A
second process that wants to write the same run is refused (`RunBusy`) while the lease is
live. The holder renews it (its heartbeat) every `LEASE_TTL_S / 4` seconds from a thread
(and before a write, if the thread fell behind), so a lease whose holder died expires within
`LEASE_TTL_S`; on the same host, a lease whose pid is no longer alive is taken over at once;
a holder on another host is judged by its heartbeat alone. Taking a lease is one UPDATE
guarded by "free, expired, or still the token I saw" (a compare-and-swap), so two processes
never both win. On PostgreSQL, lease times are the database server's clock, so auditors on
machines whose clocks disagree still agree on expiry.

Every failure a user can act on (SQLite: read-only, full, locked, not a database, damaged,
folder missing, store deleted under a running run; PostgreSQL: unreachable, locked, read-only,
full) is raised as one `StoreError` naming the store and what to do (`parity.core.store_errors`).
Writes are autocommit statements, so a failed write loses only itself, never an exchange
committed before it; after one, `log_send` refuses, so no further request is sent while the
run stops.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import socket
import sqlite3
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
import psycopg
from sqlalchemy import (
    Connection,
    CursorResult,
    Engine,
    Executable,
    bindparam,
    create_engine,
    func,
    literal,
    literal_column,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from parity.core import migrations
from parity.core.dburl import DbRef
from parity.core.errors import ConfigError, LeaseLost, RunBusy, StoreError
from parity.core.exchange import Exchange
from parity.core.schema import SCHEMA_VERSION, cache, exchanges, providers, results, runs, sends
from parity.core.store_errors import (
    BUSY_TIMEOUT_S,
    default_busy_timeout,
    os_store_error,
    pg_store_error,
    sqlite_store_error,
)

__all__ = [
    "BUSY_TIMEOUT_S",
    "LEASE_COLUMNS",
    "LEASE_TTL_S",
    "Lease",
    "RunInfo",
    "Store",
    "StoredExchange",
    "busy_message",
    "default_busy_timeout",
    "default_vantage",
    "os_store_error",
    "pid_alive",
    "set_default_vantage",
    "sqlite_store_error",
]

LEASE_TTL_S = 60.0
"""How long a run's lease lasts without renewal; the holder renews it every quarter of this."""

LEASE_COLUMNS = {
    "lease_host": "TEXT",
    "lease_pid": "INTEGER",
    "lease_token": "TEXT",
    "lease_acquired_at": "REAL",
    "lease_expires_at": "REAL",
}
"""Columns of `runs` holding the writer's lease (all NULL when nobody writes the run); added
in place to stores created before them (migration 1)."""

_CLEAR_LEASE = {name: None for name in (*LEASE_COLUMNS, "lease_heartbeat_at")}

_vantage: contextvars.ContextVar[str | None] = contextvars.ContextVar("vantage", default=None)


def set_default_vantage(label: str | None) -> contextvars.Token[str | None]:
    """Make `label` the vantage of the runs created from now on in this context (the CLI's
    `--vantage`); None: the host name. Returns the token to reset it with."""
    return _vantage.set(label.strip() if label and label.strip() else None)


def reset_default_vantage(token: contextvars.Token[str | None]) -> None:
    """Undo `set_default_vantage`."""
    _vantage.reset(token)


def default_vantage() -> str:
    """Where runs are measured from: `--vantage` (or PARITY_VANTAGE), else the host name."""
    return _vantage.get() or os.environ.get("PARITY_VANTAGE", "").strip() or socket.gethostname()


@dataclass(frozen=True)
class RunInfo:
    """A run as listed by `parity runs`; `vantage`: where it was measured from."""

    id: str
    created_at: float
    finished_at: float | None
    status: str
    kind: str
    source: str | None
    options: dict[str, Any]
    parity_version: str
    exchanges: int
    vantage: str | None = None


@dataclass(frozen=True)
class Lease:
    """Who writes a run: `host`/`pid` (plus a random `token` per acquisition), since
    `acquired_at`, valid until `expires_at` unless renewed (epoch seconds; on PostgreSQL the
    server's clock)."""

    run_id: str
    host: str
    pid: int
    token: str
    acquired_at: float
    expires_at: float

    @property
    def holder(self) -> str:
        return f"{self.host}/{self.pid}"


@dataclass
class _Held:
    """The lease this store holds, and its renewing thread's state."""

    lease: Lease
    renewed_at: float
    stop: threading.Event = field(default_factory=threading.Event)
    lost: bool = False
    thread: threading.Thread | None = None


@dataclass(frozen=True)
class StoredExchange:
    """An exchange with the probe and key it was stored under."""

    provider: str
    probe: str
    key: str
    exchange: Exchange


def _sqlite_engine(path: Path, busy_timeout: float) -> Engine:
    """An engine on SQLite file `path`: autocommit, the busy timeout, usable from threads."""

    def connect() -> sqlite3.Connection:
        return sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, timeout=busy_timeout
        )

    return create_engine(
        "sqlite+pysqlite://",
        creator=connect,
        isolation_level="AUTOCOMMIT",
        poolclass=NullPool,
        paramstyle="named",
    )


def _pg_engine(ref: DbRef, busy_timeout: float) -> Engine:
    """An engine on PostgreSQL `ref`: autocommit; a lock is waited for `busy_timeout` s."""
    options = f"-c lock_timeout={int(busy_timeout * 1000)}"
    return create_engine(
        ref.sqlalchemy_url(),
        isolation_level="AUTOCOMMIT",
        pool_size=2,
        max_overflow=4,
        connect_args={"connect_timeout": 10, "options": options, "application_name": "parity"},
    )


class _DriverSQL(str):
    """SQL compiled for this store's driver, run on the driver's connection directly."""


class Store:
    """A parity store: an SQLite file (WAL mode) or a PostgreSQL database. Use as a context
    manager or call `close()`.

    `db`: a path, a `postgresql://` URL or a `DbRef`. `busy_timeout`: seconds a statement
    waits for another connection's lock (default `PARITY_BUSY_TIMEOUT` or `BUSY_TIMEOUT_S`);
    `lease_ttl`: seconds a run's lease lasts without renewal (default `LEASE_TTL_S`);
    `migrate`: bring an older store to this schema on open (default: yes for SQLite, which
    one user owns; no for PostgreSQL, shared by auditors that may run an older parity: there
    an older store is refused with the `parity store migrate` line). A new (empty) store is
    created at this schema either way; a store newer than this parity is refused. Opening
    creates an SQLite store's folder if needed; any failure to open is a `StoreError`.
    """

    def __init__(
        self,
        db: DbRef | Path | str,
        *,
        busy_timeout: float | None = None,
        lease_ttl: float | None = None,
        migrate: bool | None = None,
    ) -> None:
        self.ref = DbRef.of(db)
        self.path: Path | None = self.ref.path
        self.sqlite = self.ref.is_sqlite
        self.busy_timeout = default_busy_timeout() if busy_timeout is None else busy_timeout
        self.lease_ttl = LEASE_TTL_S if lease_ttl is None else lease_ttl
        self.migrate = self.sqlite if migrate is None else migrate
        self._lock = threading.RLock()
        self._held: _Held | None = None
        self._identity: tuple[int, int] | None = None
        self._gone: str | None = None
        self._version = self.found_version = SCHEMA_VERSION
        self._lease_columns = True
        self._failed: str | None = None  # the first failed write's StoreError
        self._sql: dict[str, _DriverSQL] = {}
        if self.path is not None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise os_store_error(self.path, exc) from exc
            self._engine = _sqlite_engine(self.path, self.busy_timeout)
        else:
            self._engine = _pg_engine(self.ref, self.busy_timeout)
        self._conn = self._connect()
        try:
            self._open()
        except BaseException:
            self._conn.close()
            self._engine.dispose()
            raise

    def _connect(self) -> Connection:
        try:
            return self._engine.connect()
        except (DBAPIError, sqlite3.Error) as exc:
            self._engine.dispose()
            raise self._error(exc) from exc

    def _open(self) -> None:
        if self.sqlite:
            self._execute("PRAGMA journal_mode=WAL")
            self._execute("PRAGMA synchronous=NORMAL")
        version = self._guard(lambda: migrations.current_version(self._conn))
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"store {self.ref} has schema version {version}, newer than this parity"
                f" ({SCHEMA_VERSION}): upgrade parity to use it"
            )
        self._version = self.found_version = version
        if version < SCHEMA_VERSION:
            if version == 0 or self.migrate:
                try:
                    self.upgrade()
                except StoreError:
                    # An older SQLite store where it cannot be written: it still reads;
                    # writing it (taking a lease) will say why it cannot.
                    if not (self.sqlite and version >= 1 and self._readonly()):
                        raise
            else:
                raise StoreError(
                    f"store {self.ref} has schema version {version}; this parity writes"
                    f" {SCHEMA_VERSION}: run `parity store migrate --db {self.ref}` first"
                )
        if self._version < SCHEMA_VERSION:
            have = self._guard(lambda: migrations.table_columns(self._conn, "runs"))
            self._lease_columns = set(LEASE_COLUMNS) <= have
        self._identity = self._stat()

    def upgrade(self) -> list[int]:
        """Migrate this store to `SCHEMA_VERSION` (idempotent); return the versions applied."""
        applied = self._guard(lambda: migrations.migrate(self._conn))
        self._version = SCHEMA_VERSION
        self._lease_columns = True
        return [step.version for step in applied]

    @property
    def version(self) -> int:
        """The store's schema version (`SCHEMA_VERSION` once migrated; `found_version`: the
        one it had when opened, 0 for a new store)."""
        return self._version

    def _require_current(self) -> None:
        """Before a write: an older store (opened read-only) is migrated, or says why not."""
        if self._version < SCHEMA_VERSION:
            self.upgrade()

    def _readonly(self) -> bool:
        """Whether this SQLite store cannot be written (its file, or the connection)."""
        try:
            raw = self._raw()
            return bool(raw.execute("PRAGMA query_only").fetchone()[0]) or not os.access(
                str(self.path), os.W_OK
            )
        except sqlite3.Error:
            return True

    def _raw(self) -> sqlite3.Connection:
        """The SQLite connection under this store's (for what only SQLite has)."""
        raw = self._conn.connection.driver_connection
        assert isinstance(raw, sqlite3.Connection)
        return raw

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the lease this store holds (if any) and close the connection; everything
        written is already committed."""
        self.release_lease()
        with contextlib.suppress(DBAPIError, sqlite3.Error):
            self._conn.close()
        with contextlib.suppress(DBAPIError, sqlite3.Error):
            self._engine.dispose()

    # statements: every failure a user can act on becomes one StoreError
    def _error(self, exc: BaseException) -> BaseException:
        orig = (exc.orig if isinstance(exc, DBAPIError) else exc) or exc
        if self.path is not None:
            error = (
                sqlite_store_error(self.path, orig, self.busy_timeout)
                if isinstance(orig, sqlite3.Error)
                else None
            )
        else:
            error = pg_store_error(self.ref, orig, self.busy_timeout)
        return exc if error is None else error

    def _guard(self, call: Any) -> Any:
        """Run `call()` under the lock, its failures as `StoreError`s."""
        with self._lock:
            try:
                return call()
            except (DBAPIError, sqlite3.Error, psycopg.Error) as exc:
                self._recover()
                raise self._error(exc) from exc

    def _recover(self) -> None:
        """After a failed statement: a PostgreSQL connection that broke is replaced by the
        next statement (the pool reconnects)."""
        with contextlib.suppress(DBAPIError, psycopg.Error):
            if not self._conn.invalidated and not self.sqlite and self._driver().broken:
                self._conn.invalidate()
            if self._conn.invalidated:
                self._conn.rollback()

    def _driver(self) -> Any:
        """The driver's connection under this store's (sqlite3 or psycopg)."""
        return self._conn.connection.driver_connection

    def _execute(self, stmt: Executable | str, params: dict[str, Any] | None = None) -> Any:
        """Execute `stmt`: a statement, driver SQL, or the `_compiled` SQL of the hot path,
        which goes to the driver's connection directly (no per-statement SQLAlchemy work)."""
        if isinstance(stmt, _DriverSQL):
            with self._lock:
                try:
                    return self._driver().execute(stmt, params)
                except (sqlite3.Error, psycopg.Error) as exc:
                    self._recover()
                    raise self._error(exc) from exc
        if isinstance(stmt, str):
            return self._guard(lambda: self._conn.exec_driver_sql(stmt, params or {}))
        return self._guard(lambda: self._conn.execute(stmt, params or {}))

    def _rows(self, stmt: Executable, params: dict[str, Any] | None = None) -> list[Any]:
        return self._guard(lambda: self._conn.execute(stmt, params or {}).fetchall())  # type: ignore[no-any-return]

    def _compiled(self, name: str, build: Any) -> _DriverSQL:
        """The driver SQL of statement `build()` for this backend, compiled once by
        SQLAlchemy (named parameters: `:name` on SQLite, `%(name)s` on psycopg); `_execute`
        runs it on the driver's connection."""
        sql = self._sql.get(name)
        if sql is None:
            sql = self._sql[name] = _DriverSQL(build().compile(dialect=self._engine.dialect))
        return sql

    def _insert(self, table: Any) -> Any:
        """INSERT with this dialect's ON CONFLICT clauses."""
        return (sqlite_dialect if self.sqlite else pg_dialect).insert(table)

    def _write(
        self, run_id: str | None, stmt: Executable | str, params: dict[str, Any] | None = None
    ) -> CursorResult[Any]:
        """Execute a write (autocommit: it is durable, or fails alone), after checking that
        the store is still the file it opened and, for the run whose lease this store holds,
        that the lease is still this process's."""
        self._check_file()
        try:
            self._require_current()
            if run_id is not None:
                self._check_lease(run_id)
            return self._execute(stmt, params)  # type: ignore[no-any-return]
        except StoreError as exc:
            self._failed = str(exc)
            raise

    def _now(self) -> float:
        """Now for leases: this host's clock on SQLite, the server's on PostgreSQL."""
        if self.sqlite:
            return time.time()
        return float(self._execute(select(func.extract("epoch", func.clock_timestamp()))).scalar())

    def _stat(self) -> tuple[int, int] | None:
        if self.path is None:
            return None
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_dev, st.st_ino)

    def _check_file(self) -> None:
        """A store deleted (or replaced) under a running process takes its writes with it:
        save what the open connection still holds to the path again (or, when another file
        is there now, next to it), go on in that copy, and stop the run with a StoreError
        saying so. If it cannot be saved, every later write says that it is lost."""
        if self._gone is not None:
            raise StoreError(self._gone)
        if self.path is None or self._identity is None or self._stat() == self._identity:
            return
        path = self.path
        what = "deleted" if not path.exists() else "replaced by another file"
        if not path.parent.exists():
            what = f"deleted with its folder {path.parent}"
        target = path if not path.exists() else _rescue_path(path)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with self._lock:
                self._raw().execute("VACUUM INTO ?", (str(target),))
            engine = _sqlite_engine(target, self.busy_timeout)
            rescued = engine.connect()
        except (OSError, sqlite3.Error, DBAPIError) as exc:
            self._gone = (
                f"store {path} was {what} while this process wrote it, and what it held"
                f" could not be saved to {target} ({exc}): the exchanges of this run are lost"
            )
            raise StoreError(self._gone) from exc
        with self._lock:
            lost, lost_engine = self._conn, self._engine
            self._conn, self._engine = rescued, engine
            with contextlib.suppress(DBAPIError, sqlite3.Error):
                lost.close()
                lost_engine.dispose()
        message = (
            f"store {path} was {what} while this process wrote it: what it held is"
            f" saved to {target}"
        )
        self.path = target
        self.ref = DbRef(path=target)
        self._open()
        raise StoreError(message)

    # leases: one writer per run
    def lease(self, run_id: str) -> Lease | None:
        """The lease on run `run_id` (live or expired), or None when nobody holds it."""
        if not self._lease_columns:
            return None
        c = runs.c
        rows = self._rows(
            select(
                c.lease_host, c.lease_pid, c.lease_token, c.lease_acquired_at, c.lease_expires_at
            ).where(c.id == run_id, c.lease_token.is_not(None))
        )
        if not rows:
            return None
        host, pid, token, acquired, expires = rows[0]
        return Lease(run_id, host, int(pid), token, float(acquired), float(expires))

    def _take(self, lease: Lease, now: float, token: str | None = None) -> bool:
        """Write `lease` if the run's lease is free or expired (`token` None) or still
        `token`: the compare-and-swap."""
        c = runs.c
        guard = (
            (c.lease_token.is_(None)) | (c.lease_expires_at < now)
            if token is None
            else (c.lease_token == token)
        )
        stmt = (
            update(runs)
            .where(c.id == lease.run_id, guard)
            .values(
                lease_host=lease.host,
                lease_pid=lease.pid,
                lease_token=lease.token,
                lease_acquired_at=lease.acquired_at,
                lease_expires_at=lease.expires_at,
                lease_heartbeat_at=lease.acquired_at,
            )
        )
        return bool(self._execute(stmt).rowcount)

    def acquire_lease(self, run_id: str, *, command: str | None = None) -> Lease:
        """Take the lease on run `run_id` for this process and keep renewing it until
        `release_lease()` (or `close()`).

        Free or expired leases are taken; so is, on this host, one whose pid is not alive (a
        holder on another host only by its heartbeat: its lease expired). Otherwise
        `RunBusy` says who holds it and until when (`command`: what to run again).
        """
        if self._held is not None:
            raise RunBusy(f"this store already holds the lease on run {self._held.lease.run_id}")
        self._check_file()
        self._require_current()  # raises the reason it cannot (read-only, ...)
        host, pid = socket.gethostname(), os.getpid()
        for _ in range(5):
            now = self._now()
            lease = Lease(run_id, host, pid, uuid.uuid4().hex, now, now + self.lease_ttl)
            if self._take(lease, now):
                return self._hold(lease)
            current = self.lease(run_id)
            if current is None:
                if not self._rows(select(literal(1)).where(runs.c.id == run_id)):
                    raise ConfigError(
                        f"{self.ref}: no run {run_id!r} (see: parity runs --db {self.ref})"
                    )
                continue  # released in between: try again
            if current.host != host or pid_alive(current.pid):
                raise RunBusy(busy_message(current, command))
            # Its holder on this host is dead: take it over, unless another process just did.
            if self._take(lease, now, token=current.token):
                return self._hold(lease)
        current = self.lease(run_id)
        raise RunBusy(
            busy_message(current, command) if current else f"run {run_id}: lease contended"
        )

    def _hold(self, lease: Lease) -> Lease:
        held = _Held(lease, renewed_at=time.time())
        held.thread = threading.Thread(
            target=self._heartbeat, args=(held,), name=f"parity-lease-{lease.run_id}", daemon=True
        )
        self._held = held
        held.thread.start()
        return lease

    def _renew_sql(self) -> _DriverSQL:
        c = runs.c
        return self._compiled(
            "renew",
            lambda: (
                update(runs)
                .where(c.id == bindparam("run"), c.lease_token == bindparam("token"))
                .values(lease_expires_at=bindparam("expires"), lease_heartbeat_at=bindparam("now"))
            ),
        )

    def _renew_once(self, held: _Held) -> int:
        """One heartbeat on a connection of its own; the number of rows renewed (0: lost)."""
        sql = self._renew_sql()
        if self.path is not None:
            # A connection per renewal, to the store's path now (never creating a file).
            uri = f"file:{quote(str(self.path.absolute()))}?mode=rw"
            with contextlib.closing(
                sqlite3.connect(uri, uri=True, isolation_level=None, timeout=self.busy_timeout)
            ) as db:
                now = time.time()
                params = self._renew_params(held, now)
                return db.execute(sql, params).rowcount
        with self._engine.connect() as conn:
            now = float(
                conn.execute(select(func.extract("epoch", func.clock_timestamp()))).scalar_one()
            )
            return conn.exec_driver_sql(sql, self._renew_params(held, now)).rowcount

    def _renew_params(self, held: _Held, now: float) -> dict[str, Any]:
        return {
            "run": held.lease.run_id,
            "token": held.lease.token,
            "expires": now + self.lease_ttl,
            "now": now,
        }

    def _heartbeat(self, held: _Held) -> None:
        """Renew `held` every quarter TTL on a connection of its own; stop when released or
        when the lease turns out to be another's. Failures (locked, full, unreachable) are
        retried: the writes themselves report them."""
        interval = max(self.lease_ttl / 4, 0.05)
        while not held.stop.wait(interval):
            try:
                renewed = self._renew_once(held)
            except (sqlite3.Error, DBAPIError):
                continue
            if not renewed:
                held.lost = True
                return
            held.renewed_at = time.time()

    def _check_lease(self, run_id: str) -> None:
        held = self._held
        if held is None or held.lease.run_id != run_id:
            return
        if not held.lost and time.time() - held.renewed_at > self.lease_ttl / 2:
            local = time.time()
            renewed = self._execute(
                self._renew_sql(), self._renew_params(held, self._now())
            ).rowcount
            if renewed:
                held.renewed_at = local
            else:
                held.lost = True
        if held.lost:
            held.stop.set()
            current = self.lease(run_id)
            by = f"{current.holder} at {_when(current.acquired_at)}" if current else "nobody"
            raise LeaseLost(
                f"run {run_id}: this process's lease lapsed (not renewed for"
                f" {self.lease_ttl:g} s) and the run was taken over by {by}; this process"
                " stopped writing it"
            )

    def release_lease(self) -> None:
        """Stop renewing the held lease and clear it in the store. Never raises: a lease that
        cannot be cleared (store not writable) expires, or is taken over once this process
        has exited."""
        held, self._held = self._held, None
        if held is None:
            return
        held.stop.set()
        if held.thread is not None and held.thread is not threading.current_thread():
            held.thread.join(self.busy_timeout + 1)
        if held.lost:
            return
        stmt = (
            update(runs)
            .where(runs.c.id == held.lease.run_id, runs.c.lease_token == held.lease.token)
            .values(**_CLEAR_LEASE)
        )
        with contextlib.suppress(StoreError, DBAPIError, sqlite3.Error):
            self._execute(stmt)

    # runs
    def create_run(
        self,
        kind: str,
        source: str | None,
        options: dict[str, Any],
        version: str,
        *,
        lease: bool = False,
        vantage: str | None = None,
    ) -> str:
        """Start a run and return its id (sortable by time, unique); with `lease`, this
        process holds the run's lease from the same INSERT on (see `acquire_lease`).
        `vantage`: where it is measured from (default: `default_vantage()`)."""
        run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]
        now = time.time()
        held = None
        values: dict[str, Any] = {
            "id": run_id,
            "created_at": now,
            "status": "running",
            "kind": kind,
            "source": source,
            "options": json.dumps(options),
            "parity_version": version,
            "vantage": vantage or default_vantage(),
        }
        if lease:
            if self._held is not None:
                raise RunBusy(
                    f"this store already holds the lease on run {self._held.lease.run_id}"
                )
            self._require_current()
            clock = self._now()
            held = Lease(
                run_id,
                socket.gethostname(),
                os.getpid(),
                uuid.uuid4().hex,
                clock,
                clock + self.lease_ttl,
            )
            values.update(
                lease_host=held.host,
                lease_pid=held.pid,
                lease_token=held.token,
                lease_acquired_at=held.acquired_at,
                lease_expires_at=held.expires_at,
                lease_heartbeat_at=held.acquired_at,
            )
        self._write(None, runs.insert().values(**values))
        if held is not None:
            self._hold(held)
        return run_id

    def finish_run(self, run_id: str, status: str = "finished") -> None:
        """Mark a run finished (or failed/interrupted)."""
        self._write(
            run_id,
            update(runs).where(runs.c.id == run_id).values(status=status, finished_at=time.time()),
        )

    def set_run_status(self, run_id: str, status: str) -> None:
        """Change a run's status without touching its finish time."""
        self._write(run_id, update(runs).where(runs.c.id == run_id).values(status=status))

    def run(self, run_id: str) -> RunInfo | None:
        """One run, or None if the store has no run with that id."""
        rows = self._runs(runs.c.id == run_id)
        return rows[0] if rows else None

    def runs(self, *, vantage: str | None = None) -> list[RunInfo]:
        """All runs (measured from `vantage`, when given), newest first."""
        if vantage is not None and self._version < 2:
            return []  # a store from before vantages (read-only)
        return self._runs(None if vantage is None else runs.c.vantage == vantage)

    def latest_run(self) -> RunInfo | None:
        """The newest run, if any."""
        found = self.runs()
        return found[0] if found else None

    def vantages(self) -> list[str]:
        """The vantages runs were measured from, sorted (runs without one are left out)."""
        if self._version < 2:
            return []
        rows = self._rows(select(runs.c.vantage).where(runs.c.vantage.is_not(None)).distinct())
        return sorted(row[0] for row in rows)

    def _runs(self, where: Any) -> list[RunInfo]:
        r, e = runs.c, exchanges.c
        count = (
            select(func.count()).select_from(exchanges).where(e.run_id == r.id).scalar_subquery()
        )
        vantage = r.vantage if self._version >= 2 else literal(None).label("vantage")
        query = select(
            r.id,
            r.created_at,
            r.finished_at,
            r.status,
            r.kind,
            r.source,
            r.options,
            r.parity_version,
            count,
            vantage,
        ).order_by(r.created_at.desc(), r.id.desc())
        if where is not None:
            query = query.where(where)
        return [
            RunInfo(
                row[0],
                row[1],
                row[2],
                row[3],
                row[4],
                row[5],
                json.loads(row[6]),
                row[7],
                row[8],
                row[9],
            )
            for row in self._rows(query)
        ]

    def _order(self, table: Any) -> Any:
        """Insertion order: `seq` (a store before version 2, read-only: its rowid)."""
        return table.c.seq if self._version >= 2 else literal_column("rowid")

    def _next_seq(self, table: Any, run_id: str) -> Any:
        return (
            select(func.coalesce(func.max(table.c.seq), 0) + 1)
            .where(table.c.run_id == run_id)
            .scalar_subquery()
        )

    # providers
    def add_provider(self, run_id: str, name: str, config: dict[str, Any]) -> None:
        """Record a provider's public settings for a run (idempotent)."""
        stmt = (
            self._insert(providers)
            .values(
                run_id=run_id,
                name=name,
                config=json.dumps(config),
                seq=self._next_seq(providers, run_id),
            )
            .on_conflict_do_nothing(index_elements=["run_id", "name"])
        )
        self._write(run_id, stmt)

    def set_reachability(self, run_id: str, name: str, reachable: bool, detail: str) -> None:
        """Record whether the provider answered its preflight."""
        c = providers.c
        self._write(
            run_id,
            update(providers)
            .where(c.run_id == run_id, c.name == name)
            .values(reachable=int(reachable), detail=detail),
        )

    def providers(self, run_id: str) -> list[dict[str, Any]]:
        """Providers of a run in insertion order: config plus `reachable` and `detail`."""
        c = providers.c
        rows = self._rows(
            select(c.config, c.reachable, c.detail)
            .where(c.run_id == run_id)
            .order_by(self._order(providers))
        )
        out = []
        for config, reachable, detail in rows:
            data = json.loads(config)
            data["reachable"] = None if reachable is None else bool(reachable)
            data["detail"] = detail
            out.append(data)
        return out

    # exchanges
    def log_send(self, run_id: str, provider: str, key: str) -> None:
        """Log that a request is about to be sent (before it is). Once a write has failed,
        this refuses (with that write's `StoreError`): no request is sent whose answer the
        store may not keep, while the run stops."""
        if self._failed is not None:
            raise StoreError(self._failed)
        sql = self._compiled(
            "log_send",
            lambda: sends.insert().values(
                run_id=bindparam("run_id"),
                provider=bindparam("provider"),
                key=bindparam("key"),
                sent_at=bindparam("sent_at"),
            ),
        )
        self._write(
            run_id,
            sql,
            {"run_id": run_id, "provider": provider, "key": key, "sent_at": time.time()},
        )

    def sends(self, run_id: str) -> int:
        """How many requests were sent (attempted) for a run, across resumes."""
        stmt = select(func.count()).select_from(sends).where(sends.c.run_id == run_id)
        return int(self._rows(stmt)[0][0])

    def add_exchange(
        self, run_id: str, provider: str, probe: str, key: str, exchange: Exchange
    ) -> None:
        """Store a completed exchange (committed at once). A key is stored at most once."""
        sql = self._compiled(
            "add_exchange",
            lambda: (
                self._insert(exchanges)
                .values(
                    run_id=bindparam("run_id"),
                    provider=bindparam("provider"),
                    probe=bindparam("probe"),
                    key=bindparam("key"),
                    error=bindparam("error"),
                    created_at=bindparam("created_at"),
                    data=bindparam("data"),
                )
                .on_conflict_do_nothing(index_elements=["run_id", "provider", "key"])
            ),
        )
        self._write(
            run_id,
            sql,
            {
                "run_id": run_id,
                "provider": provider,
                "probe": probe,
                "key": key,
                "error": exchange.error.value if exchange.error else None,
                "created_at": time.time(),
                "data": orjson.dumps(exchange.to_dict()),
            },
        )

    def stored_keys(self, run_id: str, provider: str) -> set[str]:
        """Keys of the exchanges already stored for a provider in a run."""
        c = exchanges.c
        rows = self._rows(select(c.key).where(c.run_id == run_id, c.provider == provider))
        return {row[0] for row in rows}

    def exchanges(
        self, run_id: str, provider: str | None = None, probe: str | None = None
    ) -> Iterator[StoredExchange]:
        """Stored exchanges of a run, optionally for one provider and/or probe, in key order
        (read in pages of 500, so a large run is never held in memory at once)."""
        c = exchanges.c
        query = select(c.provider, c.probe, c.key, c.data).where(c.run_id == run_id)
        if provider is not None:
            query = query.where(c.provider == provider)
        if probe is not None:
            query = query.where(c.probe == probe)
        query = query.order_by(c.provider, c.key).limit(500)
        after: tuple[str, str] | None = None
        while True:
            page = query if after is None else query.where(tuple_(c.provider, c.key) > after)
            rows = self._rows(page)
            if not rows:
                return
            for prov, prb, key, data in rows:
                yield StoredExchange(prov, prb, key, Exchange.from_dict(orjson.loads(data)))
            after = (rows[-1][0], rows[-1][2])

    def get_exchanges(self, run_id: str, provider: str, keys: Iterable[str]) -> dict[str, Exchange]:
        """The stored exchanges of `provider` among `keys` (missing keys are left out)."""
        wanted = list(keys)
        found: dict[str, Exchange] = {}
        c = exchanges.c
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            rows = self._rows(
                select(c.key, c.data).where(
                    c.run_id == run_id, c.provider == provider, c.key.in_(chunk)
                )
            )
            for key, data in rows:
                found[key] = Exchange.from_dict(orjson.loads(data))
        return found

    # response cache (opt-in): keyed by provider fingerprint + request body + sample index
    def cached(self, cache_key: str) -> Exchange | None:
        """A cached exchange for `cache_key`, if any."""
        rows = self._rows(select(cache.c.data).where(cache.c.key == cache_key))
        return Exchange.from_dict(orjson.loads(rows[0][0])) if rows else None

    def put_cached(self, cache_key: str, exchange: Exchange) -> None:
        """Remember a successful exchange under `cache_key`."""
        stmt = self._insert(cache).values(
            key=cache_key, created_at=time.time(), data=orjson.dumps(exchange.to_dict())
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["key"],
            set_={"created_at": stmt.excluded.created_at, "data": stmt.excluded.data},
        )
        self._write(None, stmt)

    def count_exchanges(self, run_id: str) -> int:
        """Number of exchanges stored for a run."""
        stmt = select(func.count()).select_from(exchanges).where(exchanges.c.run_id == run_id)
        return int(self._rows(stmt)[0][0])

    # results
    def put_result(self, run_id: str, provider: str, pillar: str, name: str, value: Any) -> None:
        """Store (or replace) one computed result as JSON; a replaced result moves last, as
        a new one would."""
        stmt = self._insert(results).values(
            run_id=run_id,
            provider=provider,
            pillar=pillar,
            name=name,
            value=json.dumps(value),
            seq=self._next_seq(results, run_id),
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["run_id", "provider", "pillar", "name"],
            set_={"value": stmt.excluded.value, "seq": stmt.excluded.seq},
        )
        self._write(run_id, stmt)

    def results(self, run_id: str) -> list[tuple[str, str, str, Any]]:
        """All results of a run as (provider, pillar, name, value)."""
        c = results.c
        rows = self._rows(
            select(c.provider, c.pillar, c.name, c.value)
            .where(c.run_id == run_id)
            .order_by(self._order(results))
        )
        return [(p, pil, n, json.loads(v)) for p, pil, n, v in rows]

    # the connection, for parity.core.transfer (table-generic copies) and vacuum
    @property
    def connection(self) -> Connection:
        """This store's connection (autocommit), for `parity.core.transfer`."""
        return self._conn

    def guarded(self, call: Any) -> Any:
        """Run `call()` with this store's lock and error messages (see `parity.core.transfer`)."""
        return self._guard(call)


def pid_alive(pid: int) -> bool:
    """Whether process `pid` exists on this host (and is not a zombie); True when that
    cannot be told (then only the lease's expiry frees the run)."""
    if pid <= 0:
        return False
    if sys.platform == "win32":
        return True  # os.kill(pid, 0) is not a probe there
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    state = stat.rsplit(")", 1)[-1].split()[:1]
    return state not in (["Z"], ["X"])


def _when(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def busy_message(lease: Lease, command: str | None = None) -> str:
    """The refusal a second writer of `lease.run_id` gets: who writes it, since and until
    when, and what to do (`command`: what to run again)."""
    again = f"then: {command}" if command else "then try again"
    if lease.host == socket.gethostname():
        what = f"wait for it to end, or stop it (kill {lease.pid}); {again}"
    else:
        what = (
            f"wait for it to end, or if that process is dead, its lease expires at"
            f" {_when(lease.expires_at)}; {again}"
        )
    return (
        f"run {lease.run_id} is being written by {lease.holder} since"
        f" {_when(lease.acquired_at)} (lease until {_when(lease.expires_at)}); {what}"
    )


def _rescue_path(path: Path) -> Path:
    for n in range(1, 1000):
        candidate = path.with_name(f"{path.stem}.rescued-{n}{path.suffix}")
        if not candidate.exists():
            return candidate
    return path.with_name(f"{path.stem}.rescued-{uuid.uuid4().hex[:6]}{path.suffix}")
