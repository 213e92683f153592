"""Schema versions: a store of the format before versions (today's exact DDL, copied below
from parity 0.1's store.py, with and without the lease columns) opens after `parity store
migrate` with every row intact; a newer store is refused; an older PostgreSQL store asks
for `parity store migrate` in one line."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson
import pytest

from parity.core.errors import StoreError
from parity.core.exchange import Exchange
from parity.core.schema import SCHEMA_VERSION
from parity.core.store import Store
from tests.cli.test_main import parity
from tests.core.test_store import exchange
from tests.core.test_store_errors import read_only

# The store before schema versions, exactly as parity's store.py created it.
OLD_SCHEMA = """
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
LEASES = [
    "ALTER TABLE runs ADD COLUMN lease_host TEXT",
    "ALTER TABLE runs ADD COLUMN lease_pid INTEGER",
    "ALTER TABLE runs ADD COLUMN lease_token TEXT",
    "ALTER TABLE runs ADD COLUMN lease_acquired_at REAL",
    "ALTER TABLE runs ADD COLUMN lease_expires_at REAL",
]


def old_store(db: Path, *, leases: bool) -> dict[str, list[tuple[object, ...]]]:
    """Build and fill a store of the old format; return every table's rows as written."""
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode=WAL")
    con.executescript(OLD_SCHEMA)
    for statement in LEASES if leases else []:
        con.execute(statement)
    data = orjson.dumps(exchange().to_dict())
    for n, run_id in enumerate(("20260101-000000-aaaaaa", "20260102-000000-bbbbbb")):
        con.execute(
            "INSERT INTO runs (id, created_at, finished_at, status, kind, source, options,"
            " parity_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (run_id, 1000.0 + n, 1001.0 + n, "finished", "run", "p.toml", '{"repeats": 2}', "0.1"),
        )
        for name in ("zeta", "alpha", "mid"):  # insertion order is not name order
            con.execute(
                "INSERT INTO providers (run_id, name, config, reachable, detail)"
                " VALUES (?, ?, ?, ?, ?)",
                (run_id, name, orjson.dumps({"name": name}).decode(), 1, "ok"),
            )
        for k in range(5):
            con.execute(
                "INSERT INTO sends (run_id, provider, key, sent_at) VALUES (?, ?, ?, ?)",
                (run_id, "zeta", f"k{k}", 2000.0 + k),
            )
            con.execute(
                "INSERT INTO exchanges (run_id, provider, probe, key, error, created_at, data)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (run_id, "zeta", "speed", f"k{k}", None, 3000.0 + k, data),
            )
        for metric in ("ttft", "accuracy", "cost"):
            con.execute(
                "INSERT INTO results (run_id, provider, pillar, name, value) VALUES (?,?,?,?,?)",
                (run_id, "zeta", "speed", metric, "1.5"),
            )
    con.execute("INSERT INTO cache (key, created_at, data) VALUES ('c1', 5.0, ?)", (data,))
    con.commit()
    rows = {
        table: con.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall()
        for table in ("runs", "providers", "sends", "exchanges", "results", "cache")
    }
    con.close()
    return rows


@pytest.mark.parametrize("leases", [False, True], ids=["before-leases", "with-leases"])
def test_an_old_store_opens_after_parity_store_migrate_with_every_row(
    tmp_path: Path, leases: bool
) -> None:
    db = tmp_path / "old.db"
    before = old_store(db, leases=leases)
    result = parity("store", "migrate", "--db", str(db))
    assert result.returncode == 0, result.stderr
    assert f"migrated from schema version 1 to {SCHEMA_VERSION}" in result.stdout
    again = parity("store", "migrate", "--db", str(db))
    assert "nothing to do" in again.stdout
    con = sqlite3.connect(db)
    for table, rows in before.items():
        after = con.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall()
        width = len(rows[0])
        if table == "runs" and not leases:
            width = 8  # the lease columns were added after the old ones
        assert [row[:width] for row in after] == [row[:width] for row in rows], table
    assert con.execute("SELECT MAX(version) FROM schema_version").fetchone() == (SCHEMA_VERSION,)
    with Store(db) as store:
        assert store.version == SCHEMA_VERSION
        runs = store.runs()
        assert [r.id for r in runs] == ["20260102-000000-bbbbbb", "20260101-000000-aaaaaa"]
        assert all(r.exchanges == 5 and r.options == {"repeats": 2} for r in runs)
        assert all(r.vantage is None for r in runs)  # not recorded then
        for r in runs:
            assert [p["name"] for p in store.providers(r.id)] == ["zeta", "alpha", "mid"]
            assert [n for _, _, n, _ in store.results(r.id)] == ["ttft", "accuracy", "cost"]
            assert store.sends(r.id) == 5
            stored = list(store.exchanges(r.id))
            assert [s.key for s in stored] == [f"k{k}" for k in range(5)]
            assert all(s.exchange == exchange() for s in stored)
        assert isinstance(store.cached("c1"), Exchange)
        # and it is written as a current store: a new provider goes last
        store.add_provider(runs[0].id, "new", {"name": "new"})
        assert [p["name"] for p in store.providers(runs[0].id)][-1] == "new"
    history = parity("runs", "--db", str(db))
    assert history.returncode == 0 and "20260101-000000-aaaaaa" in history.stdout


def test_an_old_store_that_cannot_be_written_still_reads(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    old_store(db, leases=False)
    sqlite3.connect(db).execute("PRAGMA wal_checkpoint(TRUNCATE)").close()
    with read_only(db, tmp_path), Store(db) as store:
        assert store.version == 1  # not migrated: it cannot be
        assert next(p["name"] for p in store.providers("20260101-000000-aaaaaa")) == "zeta"
        assert store.runs()[0].vantage is None
        assert store.runs(vantage="x") == []
        with pytest.raises(StoreError, match="is read-only"):
            store.add_provider("20260101-000000-aaaaaa", "new", {})
    with Store(db) as store:  # writable again: migrated on open
        assert store.version == SCHEMA_VERSION


def test_a_store_newer_than_this_parity_is_refused_in_one_line(tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    with Store(db):
        pass
    con = sqlite3.connect(db)
    con.execute("INSERT INTO schema_version VALUES (?, 0, 'future')", (SCHEMA_VERSION + 1,))
    con.commit()
    con.close()
    with pytest.raises(StoreError, match=f"schema version {SCHEMA_VERSION + 1}, newer"):
        Store(db)
    result = parity("runs", "--db", str(db))
    assert result.returncode == 2 and "upgrade parity" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_old_postgresql_store_asks_for_migrate_then_opens(pg_url: str) -> None:
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        for statement in OLD_SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement.replace("BLOB", "BYTEA"))
        conn.execute(
            "INSERT INTO runs VALUES ('r1', 1.0, NULL, 'finished', 'run', NULL, '{}', '0.1')"
        )
    with pytest.raises(StoreError) as caught:
        Store(pg_url)
    message = str(caught.value)
    assert "schema version 1" in message and "parity store migrate --db postgresql://" in message
    assert ":***@" in message and pg_url not in message
    result = parity("store", "migrate", "--db", pg_url)
    assert result.returncode == 0, result.stderr
    with Store(pg_url) as store:
        assert [r.id for r in store.runs()] == ["r1"]
        assert store.version == SCHEMA_VERSION
