"""The store's schema version and its migrations: an ordered list of steps, each idempotent.

A store records the migrations applied to it in `schema_version` (one row per version);
its version is the highest. A store without that table but with `runs` is version 1 (the
store before versions, with or without the lease columns); an empty database is version 0.
`migrate` brings a store to `SCHEMA_VERSION` in one transaction (SQLite: BEGIN IMMEDIATE;
PostgreSQL: transactional DDL under an advisory lock, so auditors opening a new database at
once create it once). Every step only adds what is missing (tables, columns, indexes, filled
from what is there), so a step interrupted half-way, or run twice, converges.

Why not Alembic: the migrations are additive and few, they must run on the store's own
connection (its error messages, its lock, a read-only store still read) and detect the
version-less format by inspection; an ordered list of ~20-line functions does that with no
env.py, script folder or second version table to ship (docs/store.md).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Column, Connection, Index, Table, inspect, select, text
from sqlalchemy import func as sql_func

from parity import __version__
from parity.core.schema import SCHEMA_VERSION, metadata, providers, results, runs, schema_version

ADVISORY_LOCK = 0x70617269  # "pari": serialises migrations of one PostgreSQL database


@dataclass(frozen=True)
class Migration:
    """Step `version`: what it does (`summary`) and the function that does it."""

    version: int
    summary: str
    apply: Callable[[Connection], None]


def table_columns(conn: Connection, table: str) -> set[str]:
    """The columns table `table` has in this database (inspected)."""
    return {column["name"] for column in inspect(conn).get_columns(table)}


def _add_column(conn: Connection, table: Table, column: Column[object]) -> None:
    """ALTER TABLE ... ADD COLUMN for `column` of `table` if the table lacks it."""
    if column.name in table_columns(conn, table.name):
        return
    kind = column.type.compile(dialect=conn.dialect)
    name = conn.dialect.identifier_preparer.quote(column.name)
    conn.execute(text(f"ALTER TABLE {table.name} ADD COLUMN {name} {kind}"))


def _add_index(conn: Connection, index: Index) -> None:
    table = index.table
    assert table is not None
    if index.name not in {i["name"] for i in inspect(conn).get_indexes(table.name)}:
        index.create(conn)


def _baseline(conn: Connection) -> None:
    """1: the tables of the store before versions, and the lease columns of runs."""
    metadata.create_all(conn, tables=[t for t in metadata.sorted_tables if t is not schema_version])
    for name in (
        "lease_host",
        "lease_pid",
        "lease_token",
        "lease_acquired_at",
        "lease_expires_at",
    ):
        _add_column(conn, runs, runs.c[name])


def _v2(conn: Connection) -> None:
    """2: version table, vantage, heartbeat, insertion order as a column, sends by run."""
    schema_version.create(conn, checkfirst=True)
    _add_column(conn, runs, runs.c.vantage)
    _add_column(conn, runs, runs.c.lease_heartbeat_at)
    for table in (providers, results):
        missing = "seq" not in table_columns(conn, table.name)
        _add_column(conn, table, table.c.seq)
        if missing and conn.dialect.name == "sqlite":
            # The rows' insertion order was their rowid: keep it.
            conn.execute(text(f"UPDATE {table.name} SET seq = rowid WHERE seq IS NULL"))
    for index in metadata.tables["sends"].indexes:
        _add_index(conn, index)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "the store before versions; the lease columns of runs", _baseline),
    Migration(2, "schema_version, runs.vantage and lease_heartbeat_at, seq, sends_by_run", _v2),
)
assert MIGRATIONS[-1].version == SCHEMA_VERSION


def current_version(conn: Connection) -> int:
    """The store's schema version: 0 (empty), 1 (before versions) or the highest recorded."""
    tables = set(inspect(conn).get_table_names())
    if "schema_version" in tables:
        found = conn.execute(select(sql_func.max(schema_version.c.version))).scalar()
        if found is not None:
            return int(found)
    return 1 if "runs" in tables else 0


def begin(conn: Connection) -> None:
    """Open the migration's transaction: the write lock at once on SQLite, the database's
    migration lock on PostgreSQL."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql("BEGIN")
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK})


def migrate(conn: Connection) -> list[Migration]:
    """Bring the store on `conn` (autocommit) to `SCHEMA_VERSION` in one transaction; return
    the steps applied (none when it is current). A newer store is left alone (the caller
    refuses it)."""
    begin(conn)
    try:
        version = current_version(conn)
        if version == 1:
            version = 0  # before versions: its tables and lease columns may be missing too
        todo = [m for m in MIGRATIONS if m.version > version]
        for step in todo:
            step.apply(conn)
            if step.version >= 2:
                conn.execute(
                    schema_version.insert().values(
                        version=step.version, migrated_at=time.time(), parity_version=__version__
                    )
                )
        conn.exec_driver_sql("COMMIT")
    except BaseException:
        with contextlib.suppress(Exception):
            conn.exec_driver_sql("ROLLBACK")
        raise
    return todo
