"""The store: one SQLite file holding runs, their providers, every exchange and the results.

Each exchange is committed as soon as it completes, so a run killed at any moment loses at
most the requests that were in flight. Every attempt to send a request is logged in `sends`
first, which makes "no request sent twice" countable: after a resume, sends minus stored
exchanges is exactly the requests that were lost in flight.

One writer per run: the process writing a run holds its lease (columns `lease_*` of `runs`:
host, pid, a random token, when it was acquired, when it expires). A second process that
wants to write the same run is refused (`RunBusy`) while the lease is live. The holder renews
it every `LEASE_TTL_S / 4` seconds from a thread (and before a write, if the thread fell
behind), so a lease whose holder died expires within `LEASE_TTL_S`; on the same host, a lease
whose pid is no longer alive is taken over at once. Taking a lease is one UPDATE guarded by
"free, expired, or still the token I saw" (a compare-and-swap), so two processes never both
win. Stores written before leases existed get the columns on open (ALTER TABLE, guarded by
PRAGMA table_info, in one IMMEDIATE transaction).

Every SQLite or file-system failure a user can act on (read-only, full, locked, not a
database, damaged, folder missing, store deleted under a running run) is raised as one
`StoreError` naming the path and what to do. Writes are autocommit statements, so a failed
write loses only itself, never an exchange committed before it; after one, `log_send`
refuses, so no further request is sent while the run stops.
"""

from __future__ import annotations

import contextlib
import errno
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

from parity.core.errors import ConfigError, LeaseLost, RunBusy, StoreError
from parity.core.exchange import Exchange

BUSY_TIMEOUT_S = 5.0
"""How long a write waits for another connection's lock before `StoreError` (locked);
`PARITY_BUSY_TIMEOUT` (seconds) overrides it."""

LEASE_TTL_S = 60.0
"""How long a run's lease lasts without renewal; the holder renews it every quarter of this."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    finished_at REAL,
    status TEXT NOT NULL,
    kind TEXT NOT NULL,
    source TEXT,
    options TEXT NOT NULL,
    parity_version TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS providers (
    run_id TEXT NOT NULL REFERENCES runs(id),
    name TEXT NOT NULL,
    config TEXT NOT NULL,
    reachable INTEGER,
    detail TEXT,
    PRIMARY KEY (run_id, name)
);
CREATE TABLE IF NOT EXISTS sends (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL,
    provider TEXT NOT NULL,
    key TEXT NOT NULL,
    sent_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS exchanges (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs(id),
    provider TEXT NOT NULL,
    probe TEXT NOT NULL,
    key TEXT NOT NULL,
    error TEXT,
    created_at REAL NOT NULL,
    data BLOB NOT NULL,
    UNIQUE (run_id, provider, key)
);
CREATE TABLE IF NOT EXISTS results (
    run_id TEXT NOT NULL REFERENCES runs(id),
    provider TEXT NOT NULL,
    pillar TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (run_id, provider, pillar, name)
);
CREATE TABLE IF NOT EXISTS cache (
    key TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS exchanges_by_probe ON exchanges (run_id, provider, probe);
"""

LEASE_COLUMNS = {
    "lease_host": "TEXT",
    "lease_pid": "INTEGER",
    "lease_token": "TEXT",
    "lease_acquired_at": "REAL",
    "lease_expires_at": "REAL",
}
"""Columns of `runs` holding the writer's lease (all NULL when nobody writes the run); added
in place to stores created before them."""

_LEASE_SET = (
    "UPDATE runs SET lease_host = ?, lease_pid = ?, lease_token = ?, lease_acquired_at = ?,"
    " lease_expires_at = ? WHERE id = ?"
)


@dataclass(frozen=True)
class RunInfo:
    """A run as listed by `parity runs`."""

    id: str
    created_at: float
    finished_at: float | None
    status: str
    kind: str
    source: str | None
    options: dict[str, Any]
    parity_version: str
    exchanges: int


@dataclass(frozen=True)
class Lease:
    """Who writes a run: `host`/`pid` (plus a random `token` per acquisition), since
    `acquired_at`, valid until `expires_at` unless renewed (epoch seconds)."""

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


class Store:
    """A parity SQLite store (WAL mode). Use as a context manager or call `close()`.

    `busy_timeout`: seconds a statement waits for another connection's lock (default
    `PARITY_BUSY_TIMEOUT` or `BUSY_TIMEOUT_S`); `lease_ttl`: seconds a run's lease lasts
    without renewal (default `LEASE_TTL_S`). Opening creates the store's folder if needed;
    any failure to open it is a `StoreError`.
    """

    def __init__(
        self,
        path: Path,
        *,
        busy_timeout: float | None = None,
        lease_ttl: float | None = None,
    ) -> None:
        self.path = path
        self.busy_timeout = default_busy_timeout() if busy_timeout is None else busy_timeout
        self.lease_ttl = LEASE_TTL_S if lease_ttl is None else lease_ttl
        self._held: _Held | None = None
        self._identity: tuple[int, int] | None = None
        self._gone: str | None = None
        self._upgraded = False
        self._failed: str | None = None  # the first failed write's StoreError
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise os_store_error(path, exc) from exc
        try:
            self._db = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False, timeout=self.busy_timeout
            )
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        try:
            self._open()
        except BaseException:
            self._db.close()
            raise

    def _open(self) -> None:
        self._execute("PRAGMA journal_mode=WAL")
        self._execute("PRAGMA synchronous=NORMAL")
        try:
            self._db.executescript(SCHEMA)
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        try:
            self._upgrade()
        except StoreError:
            # A store written before leases, opened where it cannot be written: it still
            # reads; taking a lease (writing a run) will say why it cannot.
            if not self._readonly():
                raise
        self._identity = self._stat()

    def _upgrade(self) -> None:
        """Add the lease columns to a store created before them (once, atomically)."""
        if not self._missing_columns():
            return
        self._execute("BEGIN IMMEDIATE")
        try:
            for name in self._missing_columns():
                self._execute(f"ALTER TABLE runs ADD COLUMN {name} {LEASE_COLUMNS[name]}")
            self._execute("COMMIT")
        except BaseException:
            self._rollback()
            raise

    def _missing_columns(self) -> list[str]:
        if self._upgraded:
            return []
        have = {row[1] for row in self._execute("PRAGMA table_info(runs)").fetchall()}
        missing = [name for name in LEASE_COLUMNS if name not in have]
        self._upgraded = not missing
        return missing

    def _readonly(self) -> bool:
        """Whether this store cannot be written (its file, or the connection)."""
        try:
            return bool(self._db.execute("PRAGMA query_only").fetchone()[0]) or not os.access(
                self.path, os.W_OK
            )
        except sqlite3.Error:
            return True

    def _rollback(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the lease this store holds (if any) and close the connection; everything
        written is already committed."""
        self.release_lease()
        with contextlib.suppress(sqlite3.Error):
            self._db.close()

    # statements: every SQLite failure a user can act on becomes one StoreError
    def _error(self, exc: sqlite3.Error) -> BaseException:
        error = sqlite_store_error(self.path, exc, self.busy_timeout)
        return exc if error is None else error

    def _execute(self, sql: str, args: Iterable[Any] = ()) -> sqlite3.Cursor:
        try:
            return self._db.execute(sql, tuple(args))
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    def _rows(self, sql: str, args: Iterable[Any] = ()) -> list[Any]:
        try:
            return self._db.execute(sql, tuple(args)).fetchall()
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    def _write(self, run_id: str | None, sql: str, args: Iterable[Any] = ()) -> sqlite3.Cursor:
        """Execute a write (autocommit: it is durable, or fails alone), after checking that
        the store is still the file it opened and, for the run whose lease this store holds,
        that the lease is still this process's."""
        self._check_file()
        if run_id is not None:
            self._check_lease(run_id)
        try:
            return self._execute(sql, args)
        except StoreError as exc:
            self._failed = str(exc)
            raise

    def _stat(self) -> tuple[int, int] | None:
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
        if self._identity is None or self._stat() == self._identity:
            return
        what = "deleted" if not self.path.exists() else "replaced by another file"
        if not self.path.parent.exists():
            what = f"deleted with its folder {self.path.parent}"
        target = self.path if not self.path.exists() else _rescue_path(self.path)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            self._db.execute("VACUUM INTO ?", (str(target),))
            rescued = sqlite3.connect(
                target, isolation_level=None, check_same_thread=False, timeout=self.busy_timeout
            )
        except (OSError, sqlite3.Error) as exc:
            self._gone = (
                f"store {self.path} was {what} while this process wrote it, and what it held"
                f" could not be saved to {target} ({exc}): the exchanges of this run are lost"
            )
            raise StoreError(self._gone) from exc
        lost, self._db = self._db, rescued
        lost.close()
        self._upgraded = False
        message = (
            f"store {self.path} was {what} while this process wrote it: what it held is"
            f" saved to {target}"
        )
        self.path = target
        self._open()
        raise StoreError(message)

    # leases: one writer per run
    def lease(self, run_id: str) -> Lease | None:
        """The lease on run `run_id` (live or expired), or None when nobody holds it."""
        if self._missing_columns():
            return None
        rows = self._rows(
            "SELECT lease_host, lease_pid, lease_token, lease_acquired_at, lease_expires_at"
            " FROM runs WHERE id = ? AND lease_token IS NOT NULL",
            (run_id,),
        )
        if not rows:
            return None
        host, pid, token, acquired, expires = rows[0]
        return Lease(run_id, host, int(pid), token, float(acquired), float(expires))

    def acquire_lease(self, run_id: str, *, command: str | None = None) -> Lease:
        """Take the lease on run `run_id` for this process and keep renewing it until
        `release_lease()` (or `close()`).

        Free or expired leases are taken; so is, on this host, one whose pid is not alive.
        Otherwise `RunBusy` says who holds it and until when (`command`: what to run again).
        """
        if self._held is not None:
            raise RunBusy(f"this store already holds the lease on run {self._held.lease.run_id}")
        self._check_file()
        if self._missing_columns():
            self._upgrade()  # raises the reason it cannot (read-only, ...)
        host, pid = socket.gethostname(), os.getpid()
        for _ in range(5):
            now = time.time()
            lease = Lease(run_id, host, pid, uuid.uuid4().hex, now, now + self.lease_ttl)
            values = (host, pid, lease.token, now, lease.expires_at, run_id)
            taken = self._execute(
                _LEASE_SET + " AND (lease_token IS NULL OR lease_expires_at < ?)", (*values, now)
            ).rowcount
            if taken:
                return self._hold(lease)
            current = self.lease(run_id)
            if current is None:
                if not self._rows("SELECT 1 FROM runs WHERE id = ?", (run_id,)):
                    raise ConfigError(
                        f"{self.path}: no run {run_id!r} (see: parity runs --db {self.path})"
                    )
                continue  # released in between: try again
            if current.host != host or pid_alive(current.pid):
                raise RunBusy(busy_message(current, command))
            # Its holder on this host is dead: take it over, unless another process just did.
            taken = self._execute(
                _LEASE_SET + " AND lease_token = ?", (*values, current.token)
            ).rowcount
            if taken:
                return self._hold(lease)
        current = self.lease(run_id)
        raise RunBusy(
            busy_message(current, command) if current else f"run {run_id}: lease contended"
        )

    def _hold(self, lease: Lease) -> Lease:
        held = _Held(lease, renewed_at=lease.acquired_at)
        held.thread = threading.Thread(
            target=self._heartbeat, args=(held,), name=f"parity-lease-{lease.run_id}", daemon=True
        )
        self._held = held
        held.thread.start()
        return lease

    def _heartbeat(self, held: _Held) -> None:
        """Renew `held` every quarter TTL on a connection of its own; stop when released or
        when the lease turns out to be another's. Failures (locked, full) are retried: the
        writes themselves report them."""
        interval = max(self.lease_ttl / 4, 0.05)
        while not held.stop.wait(interval):
            try:
                # A connection per renewal, to the store's path now (never creating a file).
                uri = f"file:{quote(str(self.path.absolute()))}?mode=rw"
                with contextlib.closing(
                    sqlite3.connect(uri, uri=True, isolation_level=None, timeout=self.busy_timeout)
                ) as db:
                    now = time.time()
                    renewed = db.execute(
                        "UPDATE runs SET lease_expires_at = ? WHERE id = ? AND lease_token = ?",
                        (now + self.lease_ttl, held.lease.run_id, held.lease.token),
                    ).rowcount
            except sqlite3.Error:
                continue
            if not renewed:
                held.lost = True
                return
            held.renewed_at = now

    def _check_lease(self, run_id: str) -> None:
        held = self._held
        if held is None or held.lease.run_id != run_id:
            return
        if not held.lost and time.time() - held.renewed_at > self.lease_ttl / 2:
            now = time.time()
            renewed = self._execute(
                "UPDATE runs SET lease_expires_at = ? WHERE id = ? AND lease_token = ?",
                (now + self.lease_ttl, run_id, held.lease.token),
            ).rowcount
            if renewed:
                held.renewed_at = now
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
        with contextlib.suppress(sqlite3.Error):
            self._db.execute(
                "UPDATE runs SET lease_host = NULL, lease_pid = NULL, lease_token = NULL,"
                " lease_acquired_at = NULL, lease_expires_at = NULL"
                " WHERE id = ? AND lease_token = ?",
                (held.lease.run_id, held.lease.token),
            )

    # runs
    def create_run(
        self,
        kind: str,
        source: str | None,
        options: dict[str, Any],
        version: str,
        *,
        lease: bool = False,
    ) -> str:
        """Start a run and return its id (sortable by time, unique); with `lease`, this
        process holds the run's lease from the same INSERT on (see `acquire_lease`)."""
        run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]
        now = time.time()
        held = None
        if lease:
            if self._held is not None:
                raise RunBusy(
                    f"this store already holds the lease on run {self._held.lease.run_id}"
                )
            if self._missing_columns():
                self._upgrade()
            held = Lease(
                run_id,
                socket.gethostname(),
                os.getpid(),
                uuid.uuid4().hex,
                now,
                now + self.lease_ttl,
            )
        columns = "id, created_at, status, kind, source, options, parity_version"
        values: tuple[Any, ...] = (run_id, now, kind, source, json.dumps(options), version)
        if held is not None:
            columns += ", " + ", ".join(LEASE_COLUMNS)
            values += (held.host, held.pid, held.token, held.acquired_at, held.expires_at)
        marks = ", ".join(["?", "?", "'running'"] + ["?"] * (len(values) - 2))
        self._write(None, f"INSERT INTO runs ({columns}) VALUES ({marks})", values)
        if held is not None:
            self._hold(held)
        return run_id

    def finish_run(self, run_id: str, status: str = "finished") -> None:
        """Mark a run finished (or failed/interrupted)."""
        self._write(
            run_id,
            "UPDATE runs SET status = ?, finished_at = ? WHERE id = ?",
            (status, time.time(), run_id),
        )

    def set_run_status(self, run_id: str, status: str) -> None:
        """Change a run's status without touching its finish time."""
        self._write(run_id, "UPDATE runs SET status = ? WHERE id = ?", (status, run_id))

    def run(self, run_id: str) -> RunInfo | None:
        """One run, or None if the store has no run with that id."""
        rows = self._runs("WHERE r.id = ?", (run_id,))
        return rows[0] if rows else None

    def runs(self) -> list[RunInfo]:
        """All runs, newest first."""
        return self._runs("", ())

    def latest_run(self) -> RunInfo | None:
        """The newest run, if any."""
        runs = self.runs()
        return runs[0] if runs else None

    def _runs(self, where: str, args: tuple[Any, ...]) -> list[RunInfo]:
        query = (
            "SELECT r.id, r.created_at, r.finished_at, r.status, r.kind, r.source, r.options,"
            " r.parity_version, (SELECT COUNT(*) FROM exchanges e WHERE e.run_id = r.id)"
            f" FROM runs r {where} ORDER BY r.created_at DESC, r.id DESC"
        )
        return [
            RunInfo(
                row[0], row[1], row[2], row[3], row[4], row[5], json.loads(row[6]), row[7], row[8]
            )
            for row in self._rows(query, args)
        ]

    # providers
    def add_provider(self, run_id: str, name: str, config: dict[str, Any]) -> None:
        """Record a provider's public settings for a run (idempotent)."""
        self._write(
            run_id,
            "INSERT OR IGNORE INTO providers (run_id, name, config) VALUES (?, ?, ?)",
            (run_id, name, json.dumps(config)),
        )

    def set_reachability(self, run_id: str, name: str, reachable: bool, detail: str) -> None:
        """Record whether the provider answered its preflight."""
        self._write(
            run_id,
            "UPDATE providers SET reachable = ?, detail = ? WHERE run_id = ? AND name = ?",
            (int(reachable), detail, run_id, name),
        )

    def providers(self, run_id: str) -> list[dict[str, Any]]:
        """Providers of a run in insertion order: config plus `reachable` and `detail`."""
        rows = self._rows(
            "SELECT config, reachable, detail FROM providers WHERE run_id = ? ORDER BY rowid",
            (run_id,),
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
        self._write(
            run_id,
            "INSERT INTO sends (run_id, provider, key, sent_at) VALUES (?, ?, ?, ?)",
            (run_id, provider, key, time.time()),
        )

    def sends(self, run_id: str) -> int:
        """How many requests were sent (attempted) for a run, across resumes."""
        return int(self._rows("SELECT COUNT(*) FROM sends WHERE run_id = ?", (run_id,))[0][0])

    def add_exchange(
        self, run_id: str, provider: str, probe: str, key: str, exchange: Exchange
    ) -> None:
        """Store a completed exchange (committed at once). A key is stored at most once."""
        self._write(
            run_id,
            "INSERT OR IGNORE INTO exchanges"
            " (run_id, provider, probe, key, error, created_at, data) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                run_id,
                provider,
                probe,
                key,
                exchange.error.value if exchange.error else None,
                time.time(),
                orjson.dumps(exchange.to_dict()),
            ),
        )

    def stored_keys(self, run_id: str, provider: str) -> set[str]:
        """Keys of the exchanges already stored for a provider in a run."""
        rows = self._rows(
            "SELECT key FROM exchanges WHERE run_id = ? AND provider = ?", (run_id, provider)
        )
        return {row[0] for row in rows}

    def exchanges(
        self, run_id: str, provider: str | None = None, probe: str | None = None
    ) -> Iterator[StoredExchange]:
        """Stored exchanges of a run, optionally for one provider and/or probe, in key order."""
        query = "SELECT provider, probe, key, data FROM exchanges WHERE run_id = ?"
        args: list[Any] = [run_id]
        if provider is not None:
            query += " AND provider = ?"
            args.append(provider)
        if probe is not None:
            query += " AND probe = ?"
            args.append(probe)
        query += " ORDER BY provider, key"
        cursor = self._execute(query, args)
        while True:
            try:
                rows = cursor.fetchmany(500)
            except sqlite3.Error as exc:
                raise self._error(exc) from exc
            if not rows:
                return
            for prov, prb, key, data in rows:
                yield StoredExchange(prov, prb, key, Exchange.from_dict(orjson.loads(data)))

    def get_exchanges(self, run_id: str, provider: str, keys: Iterable[str]) -> dict[str, Exchange]:
        """The stored exchanges of `provider` among `keys` (missing keys are left out)."""
        wanted = list(keys)
        found: dict[str, Exchange] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._rows(
                "SELECT key, data FROM exchanges"
                f" WHERE run_id = ? AND provider = ? AND key IN ({marks})",
                (run_id, provider, *chunk),
            )
            for key, data in rows:
                found[key] = Exchange.from_dict(orjson.loads(data))
        return found

    # response cache (opt-in): keyed by provider fingerprint + request body + sample index
    def cached(self, cache_key: str) -> Exchange | None:
        """A cached exchange for `cache_key`, if any."""
        rows = self._rows("SELECT data FROM cache WHERE key = ?", (cache_key,))
        return Exchange.from_dict(orjson.loads(rows[0][0])) if rows else None

    def put_cached(self, cache_key: str, exchange: Exchange) -> None:
        """Remember a successful exchange under `cache_key`."""
        self._write(
            None,
            "INSERT OR REPLACE INTO cache (key, created_at, data) VALUES (?, ?, ?)",
            (cache_key, time.time(), orjson.dumps(exchange.to_dict())),
        )

    def count_exchanges(self, run_id: str) -> int:
        """Number of exchanges stored for a run."""
        return int(self._rows("SELECT COUNT(*) FROM exchanges WHERE run_id = ?", (run_id,))[0][0])

    # results
    def put_result(self, run_id: str, provider: str, pillar: str, name: str, value: Any) -> None:
        """Store (or replace) one computed result as JSON."""
        self._write(
            run_id,
            "INSERT OR REPLACE INTO results (run_id, provider, pillar, name, value)"
            " VALUES (?, ?, ?, ?, ?)",
            (run_id, provider, pillar, name, json.dumps(value)),
        )

    def results(self, run_id: str) -> list[tuple[str, str, str, Any]]:
        """All results of a run as (provider, pillar, name, value)."""
        rows = self._rows(
            "SELECT provider, pillar, name, value FROM results WHERE run_id = ? ORDER BY rowid",
            (run_id,),
        )
        return [(p, pil, n, json.loads(v)) for p, pil, n, v in rows]


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
