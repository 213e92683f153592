"""The store's schema, defined once for SQLite and PostgreSQL (SQLAlchemy Core MetaData).

Tables: `runs` (one row per run, its lease and vantage), `providers` (a run's providers'
public settings), `sends` (every attempt to send a request), `exchanges` (every completed
request, its key stored once per run and provider), `results` (computed figures), `cache`
(the opt-in response cache) and `schema_version` (one row per migration applied;
`parity.core.migrations`). Text that is sorted or compared (keys, names) uses the binary
collation on PostgreSQL too (`COLLATE "C"`), so both backends order keys the same way.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects import postgresql

SCHEMA_VERSION = 2
"""The schema this parity writes: 1 is the store before versions (with or without the lease
columns), 2 adds `schema_version`, `runs.vantage`, `runs.lease_heartbeat_at`, the `seq`
columns (insertion order on both backends) and an index of `sends` by run."""

TEXT = Text().with_variant(postgresql.TEXT(collation="C"), "postgresql")
"""Text compared bytewise on both backends."""
ROW_ID = BigInteger().with_variant(Integer(), "sqlite")
"""An autoincrementing id: SQLite's INTEGER PRIMARY KEY (the rowid), PostgreSQL's BIGSERIAL."""

metadata = MetaData()

runs = Table(
    "runs",
    metadata,
    Column("id", TEXT, primary_key=True),
    Column("created_at", Float, nullable=False),
    Column("finished_at", Float),
    Column("status", TEXT, nullable=False),
    Column("kind", TEXT, nullable=False),
    Column("source", TEXT),
    Column("options", TEXT, nullable=False),
    Column("parity_version", TEXT, nullable=False),
    Column("lease_host", TEXT),
    Column("lease_pid", Integer),
    Column("lease_token", TEXT),
    Column("lease_acquired_at", Float),
    Column("lease_expires_at", Float),
    Column("lease_heartbeat_at", Float),
    Column("vantage", TEXT),
)

providers = Table(
    "providers",
    metadata,
    Column("run_id", TEXT, ForeignKey("runs.id"), nullable=False),
    Column("name", TEXT, nullable=False),
    Column("config", TEXT, nullable=False),
    Column("reachable", Integer),
    Column("detail", TEXT),
    Column("seq", Integer),
    PrimaryKeyConstraint("run_id", "name"),
)

sends = Table(
    "sends",
    metadata,
    Column("id", ROW_ID, primary_key=True, autoincrement=True),
    Column("run_id", TEXT, nullable=False),
    Column("provider", TEXT, nullable=False),
    Column("key", TEXT, nullable=False),
    Column("sent_at", Float, nullable=False),
    Index("sends_by_run", "run_id"),
)

exchanges = Table(
    "exchanges",
    metadata,
    Column("id", ROW_ID, primary_key=True, autoincrement=True),
    Column("run_id", TEXT, ForeignKey("runs.id"), nullable=False),
    Column("provider", TEXT, nullable=False),
    Column("probe", TEXT, nullable=False),
    Column("key", TEXT, nullable=False),
    Column("error", TEXT),
    Column("created_at", Float, nullable=False),
    Column("data", LargeBinary, nullable=False),
    UniqueConstraint("run_id", "provider", "key"),
    Index("exchanges_by_probe", "run_id", "provider", "probe"),
)

results = Table(
    "results",
    metadata,
    Column("run_id", TEXT, ForeignKey("runs.id"), nullable=False),
    Column("provider", TEXT, nullable=False),
    Column("pillar", TEXT, nullable=False),
    Column("name", TEXT, nullable=False),
    Column("value", TEXT, nullable=False),
    Column("seq", Integer),
    PrimaryKeyConstraint("run_id", "provider", "pillar", "name"),
)

cache = Table(
    "cache",
    metadata,
    Column("key", TEXT, primary_key=True),
    Column("created_at", Float, nullable=False),
    Column("data", LargeBinary, nullable=False),
)

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, primary_key=True),
    Column("migrated_at", Float, nullable=False),
    Column("parity_version", TEXT, nullable=False),
)

RUN_TABLES = (providers, sends, exchanges, results)
"""The tables whose rows belong to a run (column `run_id`), children of `runs`."""

NATURAL_KEYS: dict[str, tuple[str, ...]] = {
    "runs": ("id",),
    "providers": ("run_id", "name"),
    "sends": ("run_id", "provider", "key", "sent_at"),
    "exchanges": ("run_id", "provider", "key"),
    "results": ("run_id", "provider", "pillar", "name"),
    "cache": ("key",),
}
"""What identifies a row across stores (the autoincrement ids do not): merge and import
skip a row whose natural key is already there."""
