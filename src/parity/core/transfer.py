"""Moving runs between stores: merge one store into another, export a portable dump and
import it, prune runs by age. Table-generic over `parity.core.schema.metadata`.

A run travels whole: its `runs` row and its rows in `providers`, `sends`, `exchanges` and
`results`, written to the target in one transaction (so an interrupted merge or import
leaves whole runs). Rows are matched by their natural key (`schema.NATURAL_KEYS`), never by
the autoincrement ids: a row already in the target is skipped, so merging or importing twice
adds nothing. A run id in both stores with different content (a copy of a store that went
on, or was resumed, separately) is united: the rows the target lacks are added, and where
both have a row with the same key but different values the target's is kept; the report
counts both. Leases are not copied (a lease belongs to the process writing the source).

The dump (`export`/`import`) is JSON lines: a header (`{"parity_dump": 1, "schema_version":
N, ...}`), then per run its `runs` row and its child rows, then the cache, one `{"table":
..., "row": {...}}` per line; binary columns are base64. Gzip when the file name ends `.gz`.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Connection, LargeBinary, Table, delete, func, inspect, select, text

from parity import __version__
from parity.core.errors import ConfigError
from parity.core.schema import (
    NATURAL_KEYS,
    RUN_TABLES,
    SCHEMA_VERSION,
    cache,
    metadata,
    runs,
)
from parity.core.store import Store

DUMP_FORMAT = 1
MERGE_LOCK = 0x70617272  # serialises merges and imports into one PostgreSQL database
_LEASE = {c.name for c in runs.columns if c.name.startswith("lease_")}


def _skip(table: Table) -> set[str]:
    """Columns that are not content: the autoincrement ids and `seq`, which the target
    numbers itself."""
    return {"seq"} | ({"id"} if table.name in ("sends", "exchanges") else set())


@dataclass
class Bundle:
    """One run as it travels: its `runs` row and its rows per child table."""

    run: dict[str, Any]
    children: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


@dataclass
class TransferReport:
    """What a merge or import did: runs `added`, `same` (already there, identical), `united`
    (in both with different content: run id -> rows added and rows that differed, target
    kept); `rows` added per table."""

    added: list[str] = field(default_factory=list)
    same: list[str] = field(default_factory=list)
    united: dict[str, tuple[int, int]] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)

    def count(self, table: str, n: int) -> None:
        if n:
            self.rows[table] = self.rows.get(table, 0) + n

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())


# reading a store
def _columns(conn: Connection, table: Table) -> list[str]:
    """The columns of `table` this store has (an older read-only store may lack some)."""
    have = {c["name"] for c in inspect(conn).get_columns(table.name)}
    return [c.name for c in table.columns if c.name in have]


def _read(store: Store, table: Table, where: Any, order: list[str]) -> list[dict[str, Any]]:
    def run() -> list[dict[str, Any]]:
        conn = store.connection
        names = _columns(conn, table)
        query = select(*(table.c[n] for n in names)).where(where)
        if "seq" in names:
            query = query.order_by(table.c.seq)
        elif conn.dialect.name == "sqlite":
            query = query.order_by(text("rowid"))
        else:
            query = query.order_by(*(table.c[n] for n in order))
        return [dict(row._mapping) for row in conn.execute(query)]

    return store.guarded(run)  # type: ignore[no-any-return]


def bundles(store: Store) -> Iterator[Bundle]:
    """Every run of `store` with its rows, oldest first (one run in memory at a time)."""
    ids = store.guarded(
        lambda: [
            row[0]
            for row in store.connection.execute(
                select(runs.c.id).order_by(runs.c.created_at, runs.c.id)
            )
        ]
    )
    for run_id in ids:
        found = _read(store, runs, runs.c.id == run_id, ["id"])
        if not found:
            continue  # deleted in between
        bundle = Bundle(found[0])
        for table in RUN_TABLES:
            key = list(NATURAL_KEYS[table.name])
            bundle.children[table.name] = _read(store, table, table.c.run_id == run_id, key)
        yield bundle


def cache_rows(store: Store) -> list[dict[str, Any]]:
    """The response cache's rows."""
    return _read(store, cache, cache.c.key.is_not(None), ["key"])


# writing into a store
def _begin(conn: Connection) -> None:
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql("BEGIN")
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MERGE_LOCK})


def _content(row: dict[str, Any], skip: set[str]) -> dict[str, Any]:
    return {
        k: (bytes(v) if isinstance(v, memoryview) else v) for k, v in row.items() if k not in skip
    }


def _key(table: Table, row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row.get(name) for name in NATURAL_KEYS[table.name])


def _existing(conn: Connection, table: Table, run_id: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    names = [c.name for c in table.columns if c.name not in _skip(table)]
    rows = conn.execute(select(*(table.c[n] for n in names)).where(table.c.run_id == run_id))
    return {_key(table, dict(r._mapping)): _content(dict(r._mapping), set()) for r in rows}


def _clean(table: Table, row: dict[str, Any]) -> dict[str, Any]:
    """`row` with only this schema's columns, without the ids the target assigns."""
    return {c.name: row.get(c.name) for c in table.columns if c.name not in _skip(table)}


def _apply(conn: Connection, bundle: Bundle, report: TransferReport) -> None:
    """Write one run into the target (inside the caller's transaction)."""
    run = {k: v for k, v in _clean(runs, bundle.run).items() if k not in _LEASE}
    run_id = run["id"]
    if run_id is None:
        raise ConfigError("a run without an id: the source is not a parity store or dump")
    mine = conn.execute(select(runs).where(runs.c.id == run_id)).first()
    fresh = mine is None
    added = differ = 0
    if fresh:
        conn.execute(runs.insert().values(**run))
    else:
        assert mine is not None
        theirs = _content(dict(mine._mapping), _LEASE)
        differ += int(_content(run, _LEASE) != {k: theirs.get(k) for k in run})
    for table in RUN_TABLES:
        rows = [_clean(table, row) for row in bundle.children.get(table.name, [])]
        existing = {} if fresh else _existing(conn, table, run_id)
        new: list[dict[str, Any]] = []
        for row in rows:
            key = _key(table, row)
            if key in existing:
                if _content(row, set()) != existing[key]:
                    differ += 1
                continue
            existing[key] = _content(row, set())
            new.append(row)
        if not new:
            continue
        if "seq" in table.c:
            start = conn.execute(
                select(func.coalesce(func.max(table.c.seq), 0)).where(table.c.run_id == run_id)
            ).scalar_one()
            for n, row in enumerate(new, start=int(start) + 1):
                row["seq"] = n
        conn.execute(table.insert(), new)
        report.count(table.name, len(new))
        added += len(new)
    if fresh:
        report.added.append(run_id)
        report.count("runs", 1)
    elif added or differ:
        report.united[run_id] = (added, differ)
    else:
        report.same.append(run_id)


def _apply_cache(conn: Connection, rows: Iterable[dict[str, Any]], report: TransferReport) -> None:
    have = {r[0] for r in conn.execute(select(cache.c.key))}
    new = [_clean(cache, r) for r in rows if r.get("key") not in have]
    if new:
        conn.execute(cache.insert(), new)
        report.count("cache", len(new))


def write_bundles(
    target: Store, source: Iterable[Bundle], cache: Iterable[dict[str, Any]] = ()
) -> TransferReport:
    """Write runs into `target`, each in one transaction, skipping what it has (module
    docstring); then the cache rows it lacks."""
    report = TransferReport()
    if target.version < SCHEMA_VERSION:
        target.upgrade()

    def in_transaction(work: Any) -> None:
        conn = target.connection
        _begin(conn)
        try:
            work(conn)
            conn.exec_driver_sql("COMMIT")
        except BaseException:
            with contextlib.suppress(Exception):
                conn.exec_driver_sql("ROLLBACK")
            raise

    for bundle in source:
        target.guarded(lambda b=bundle: in_transaction(lambda conn: _apply(conn, b, report)))
    rows = list(cache)
    if rows:
        target.guarded(lambda: in_transaction(lambda conn: _apply_cache(conn, rows, report)))
    return report


def merge(source: Store, target: Store) -> TransferReport:
    """Merge every run (and the cache) of `source` into `target`; idempotent."""
    if _same(source, target):
        raise ConfigError(f"merge {source.ref} into itself: give two different stores")
    return write_bundles(target, bundles(source), cache_rows(source))


def _same(a: Store, b: Store) -> bool:
    if a.path is not None and b.path is not None:
        return a.path.resolve() == b.path.resolve()
    return a.ref == b.ref


# the portable dump
_BINARY = {
    t.name: {c.name for c in t.columns if isinstance(c.type, LargeBinary)}
    for t in metadata.sorted_tables
}


def _open(path: Path, mode: str) -> IO[str]:
    try:
        if path.name.endswith(".gz"):
            return gzip.open(path, mode + "t", encoding="utf-8")  # type: ignore[return-value]
        return path.open(mode, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"{path}: cannot {'read' if mode == 'r' else 'write'} ({exc.strerror})"
        ) from None


def _encode(table: str, row: dict[str, Any]) -> str:
    out = dict(row)
    for name in _BINARY.get(table, ()):
        if out.get(name) is not None:
            out[name] = base64.b64encode(bytes(out[name])).decode("ascii")
    return json.dumps({"table": table, "row": out}, separators=(",", ":"))


def export(store: Store, path: Path) -> dict[str, int]:
    """Write every run and the cache of `store` to `path` (JSON lines; gzip for `.gz`);
    rows written per table."""
    counts: dict[str, int] = {}
    with _open(path, "w") as out:
        header = {
            "parity_dump": DUMP_FORMAT,
            "schema_version": store.version,
            "parity_version": __version__,
            "exported_at": time.time(),
            "tables": [t.name for t in metadata.sorted_tables if t.name != "schema_version"],
        }
        out.write(json.dumps(header) + "\n")
        for bundle in bundles(store):
            out.write(_encode("runs", bundle.run) + "\n")
            counts["runs"] = counts.get("runs", 0) + 1
            for table, rows in bundle.children.items():
                for row in rows:
                    out.write(_encode(table, row) + "\n")
                counts[table] = counts.get(table, 0) + len(rows)
        for row in cache_rows(store):
            out.write(_encode("cache", row) + "\n")
            counts["cache"] = counts.get("cache", 0) + 1
    return counts


def _decode(path: Path, number: int, line: str) -> tuple[str, dict[str, Any]]:
    try:
        item = json.loads(line)
        table, row = item["table"], item["row"]
        if table not in _BINARY or not isinstance(row, dict):
            raise ValueError(f"unknown table {table!r}")
        for name in _BINARY[table]:
            if row.get(name) is not None:
                row[name] = base64.b64decode(row[name])
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path}:{number}: not a parity dump line ({exc})") from None
    return table, row


def read_dump(path: Path) -> tuple[dict[str, Any], Iterator[Bundle], list[dict[str, Any]]]:
    """The dump's header, its runs (read as they are consumed) and its cache rows (filled
    once the runs are consumed)."""
    stream = _open(path, "r")
    try:
        first = stream.readline()
        header = json.loads(first) if first.strip() else {}
    except (OSError, EOFError, ValueError) as exc:
        stream.close()
        raise ConfigError(f"{path}: not a parity dump ({exc})") from None
    if not isinstance(header, dict) or header.get("parity_dump") != DUMP_FORMAT:
        stream.close()
        raise ConfigError(f"{path}: not a parity dump (no parity_dump header line)")
    version = int(header.get("schema_version", 0))
    if version > SCHEMA_VERSION:
        stream.close()
        raise ConfigError(
            f"{path}: a dump of schema version {version}, newer than this parity"
            f" ({SCHEMA_VERSION}): import it with a newer parity"
        )
    cached: list[dict[str, Any]] = []

    def runs_of() -> Iterator[Bundle]:
        current: Bundle | None = None
        try:
            for number, line in enumerate(stream, start=2):
                if not line.strip():
                    continue
                table, row = _decode(path, number, line)
                if table == "runs":
                    if current is not None:
                        yield current
                    current = Bundle(row)
                elif table == "cache":
                    cached.append(row)
                elif current is None or row.get("run_id") != current.run.get("id"):
                    raise ConfigError(f"{path}:{number}: a {table} row outside its run")
                else:
                    current.children.setdefault(table, []).append(row)
            if current is not None:
                yield current
        except (OSError, EOFError) as exc:
            raise ConfigError(f"{path}: cannot read the dump ({exc})") from None
        finally:
            stream.close()

    return header, runs_of(), cached


def import_dump(path: Path, target: Store) -> TransferReport:
    """Import dump `path` into `target`, skipping what it has (idempotent)."""
    _header, source, cached = read_dump(path)
    report = write_bundles(target, source)
    if cached:
        report_cache = write_bundles(target, (), cached)
        report.count("cache", report_cache.rows.get("cache", 0))
    return report


# retention
@dataclass(frozen=True)
class Pruned:
    """What `vacuum` removed (or, dry, would remove): run ids and rows per table."""

    runs: list[str]
    rows: dict[str, int]
    vacuumed: bool


def vacuum(store: Store, older_than_s: float, *, dry_run: bool = False) -> Pruned:
    """Delete the runs created more than `older_than_s` seconds ago (not one being written:
    a live lease) with their rows, and cache entries as old; then VACUUM an SQLite store to
    give the space back. `dry_run`: count only."""
    cutoff = time.time() - older_than_s
    now = time.time()

    def old_runs(conn: Connection) -> list[str]:
        live = (runs.c.lease_token.is_not(None)) & (runs.c.lease_expires_at >= now)
        query = select(runs.c.id).where(runs.c.created_at < cutoff, ~live)
        return [row[0] for row in conn.execute(query.order_by(runs.c.created_at))]

    if store.version < SCHEMA_VERSION:
        store.upgrade()
    ids: list[str] = store.guarded(lambda: old_runs(store.connection))
    rows: dict[str, int] = {}

    def count_or_delete(conn: Connection) -> None:
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            for table in (*RUN_TABLES, runs):
                column = table.c.run_id if table is not runs else table.c.id
                if dry_run:
                    n = conn.execute(
                        select(func.count()).select_from(table).where(column.in_(chunk))
                    ).scalar_one()
                else:
                    n = conn.execute(delete(table).where(column.in_(chunk))).rowcount
                rows[table.name] = rows.get(table.name, 0) + int(n)
        old = cache.c.created_at < cutoff
        if dry_run:
            n = conn.execute(select(func.count()).select_from(cache).where(old)).scalar_one()
        else:
            n = conn.execute(delete(cache).where(old)).rowcount
        rows["cache"] = int(n)

    def work() -> None:
        conn = store.connection
        _begin(conn)
        try:
            count_or_delete(conn)
            conn.exec_driver_sql("ROLLBACK" if dry_run else "COMMIT")
        except BaseException:
            with contextlib.suppress(Exception):
                conn.exec_driver_sql("ROLLBACK")
            raise

    store.guarded(work)
    vacuumed = False
    if not dry_run and store.sqlite:
        store.guarded(lambda: store.connection.exec_driver_sql("VACUUM"))
        vacuumed = True
    return Pruned(ids, {k: v for k, v in rows.items() if v}, vacuumed)


def parse_age(text_value: str) -> float:
    """`30d`, `12h`, `90m`, `45s` or `2w` as seconds; a one-line `ConfigError` otherwise."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
    raw = text_value.strip().lower()
    try:
        value = float(raw[:-1]) if raw and raw[-1] in units else float("nan")
    except ValueError:
        value = float("nan")
    if not value >= 0:
        raise ConfigError(f"--older-than {text_value!r}: give an age like 30d, 12h or 90m")
    return value * units[raw[-1]]
