"""The store: one SQLite file holding runs, their providers, every exchange and the results.

Each exchange is committed as soon as it completes, so a run killed at any moment loses at
most the requests that were in flight. Every attempt to send a request is logged in `sends`
first, which makes "no request sent twice" countable: after a resume, sends minus stored
exchanges is exactly the requests that were lost in flight.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from parity.core.exchange import Exchange

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
class StoredExchange:
    """An exchange with the probe and key it was stored under."""

    provider: str
    probe: str
    key: str
    exchange: Exchange


class Store:
    """A parity SQLite store (WAL mode). Use as a context manager or call `close()`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(SCHEMA)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection; everything written is already committed."""
        self._db.close()

    # runs
    def create_run(
        self, kind: str, source: str | None, options: dict[str, Any], version: str
    ) -> str:
        """Start a run and return its id (sortable by time, unique)."""
        run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]
        self._db.execute(
            "INSERT INTO runs (id, created_at, status, kind, source, options, parity_version)"
            " VALUES (?, ?, 'running', ?, ?, ?, ?)",
            (run_id, time.time(), kind, source, json.dumps(options), version),
        )
        return run_id

    def finish_run(self, run_id: str, status: str = "finished") -> None:
        """Mark a run finished (or failed/interrupted)."""
        self._db.execute(
            "UPDATE runs SET status = ?, finished_at = ? WHERE id = ?",
            (status, time.time(), run_id),
        )

    def set_run_status(self, run_id: str, status: str) -> None:
        """Change a run's status without touching its finish time."""
        self._db.execute("UPDATE runs SET status = ? WHERE id = ?", (status, run_id))

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
            for row in self._db.execute(query, args)
        ]

    # providers
    def add_provider(self, run_id: str, name: str, config: dict[str, Any]) -> None:
        """Record a provider's public settings for a run (idempotent)."""
        self._db.execute(
            "INSERT OR IGNORE INTO providers (run_id, name, config) VALUES (?, ?, ?)",
            (run_id, name, json.dumps(config)),
        )

    def set_reachability(self, run_id: str, name: str, reachable: bool, detail: str) -> None:
        """Record whether the provider answered its preflight."""
        self._db.execute(
            "UPDATE providers SET reachable = ?, detail = ? WHERE run_id = ? AND name = ?",
            (int(reachable), detail, run_id, name),
        )

    def providers(self, run_id: str) -> list[dict[str, Any]]:
        """Providers of a run in insertion order: config plus `reachable` and `detail`."""
        rows = self._db.execute(
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
        """Log that a request is about to be sent (before it is)."""
        self._db.execute(
            "INSERT INTO sends (run_id, provider, key, sent_at) VALUES (?, ?, ?, ?)",
            (run_id, provider, key, time.time()),
        )

    def sends(self, run_id: str) -> int:
        """How many requests were sent (attempted) for a run, across resumes."""
        return int(
            self._db.execute("SELECT COUNT(*) FROM sends WHERE run_id = ?", (run_id,)).fetchone()[0]
        )

    def add_exchange(
        self, run_id: str, provider: str, probe: str, key: str, exchange: Exchange
    ) -> None:
        """Store a completed exchange (committed at once). A key is stored at most once."""
        self._db.execute(
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
        rows = self._db.execute(
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
        for prov, prb, key, data in self._db.execute(query, args):
            yield StoredExchange(prov, prb, key, Exchange.from_dict(orjson.loads(data)))

    def get_exchanges(self, run_id: str, provider: str, keys: Iterable[str]) -> dict[str, Exchange]:
        """The stored exchanges of `provider` among `keys` (missing keys are left out)."""
        wanted = list(keys)
        found: dict[str, Exchange] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
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
        row = self._db.execute("SELECT data FROM cache WHERE key = ?", (cache_key,)).fetchone()
        return Exchange.from_dict(orjson.loads(row[0])) if row else None

    def put_cached(self, cache_key: str, exchange: Exchange) -> None:
        """Remember a successful exchange under `cache_key`."""
        self._db.execute(
            "INSERT OR REPLACE INTO cache (key, created_at, data) VALUES (?, ?, ?)",
            (cache_key, time.time(), orjson.dumps(exchange.to_dict())),
        )

    def count_exchanges(self, run_id: str) -> int:
        """Number of exchanges stored for a run."""
        return int(
            self._db.execute(
                "SELECT COUNT(*) FROM exchanges WHERE run_id = ?", (run_id,)
            ).fetchone()[0]
        )

    # results
    def put_result(self, run_id: str, provider: str, pillar: str, name: str, value: Any) -> None:
        """Store (or replace) one computed result as JSON."""
        self._db.execute(
            "INSERT OR REPLACE INTO results (run_id, provider, pillar, name, value)"
            " VALUES (?, ?, ?, ?, ?)",
            (run_id, provider, pillar, name, json.dumps(value)),
        )

    def results(self, run_id: str) -> list[tuple[str, str, str, Any]]:
        """All results of a run as (provider, pillar, name, value)."""
        rows = self._db.execute(
            "SELECT provider, pillar, name, value FROM results WHERE run_id = ? ORDER BY rowid",
            (run_id,),
        )
        return [(p, pil, n, json.loads(v)) for p, pil, n, v in rows]
