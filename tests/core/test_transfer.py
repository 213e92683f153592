"""Merge, export/import and vacuum (parity.core.transfer) on real stores: two SQLite files and
a PostgreSQL database merged twice (the second adds nothing), a run in both with different
content united, a gzip dump round trip from SQLite to PostgreSQL, retention by age."""

from __future__ import annotations

import gzip
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from parity.core.errors import ConfigError
from parity.core.store import Store
from parity.core.transfer import export, import_dump, merge, parse_age, vacuum
from tests.core.test_store import exchange


def fill(db: Path | str, label: str, runs: int = 2, n: int = 4) -> list[str]:
    ids = []
    with Store(db) as store:
        for _ in range(runs):
            run_id = store.create_run("run", "p.toml", {"label": label}, "t", vantage=label)
            for name in ("zeta", "alpha"):
                store.add_provider(run_id, name, {"name": name})
                store.set_reachability(run_id, name, True, label)
                for k in range(n):
                    store.log_send(run_id, name, f"k{k}")
                    store.add_exchange(run_id, name, "speed", f"k{k}", exchange(f"{label}{k}"))
            store.put_result(run_id, "zeta", "speed", "ttft", 1.5)
            store.put_result(run_id, "zeta", "accuracy", "rate", {"value": 0.5})
            store.finish_run(run_id)
            ids.append(run_id)
        store.put_cached(f"cache-{label}", exchange(label))
    return ids


def snapshot(db: Path | str) -> dict[str, Any]:
    """Everything a store holds, through the public API (comparable across backends)."""
    out: dict[str, Any] = {}
    with Store(db) as store:
        for info in store.runs():
            out[info.id] = {
                "info": (info.status, info.kind, info.options, info.vantage, info.exchanges),
                "providers": store.providers(info.id),
                "sends": store.sends(info.id),
                "exchanges": [(s.provider, s.key, s.exchange) for s in store.exchanges(info.id)],
                "results": store.results(info.id),
            }
    return out


def test_two_sqlite_stores_and_a_postgresql_one_merge_idempotently(
    tmp_path: Path, pg_url: str
) -> None:
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    ids_a, ids_b, ids_pg = fill(a, "laptop"), fill(b, "ci"), fill(pg_url, "cron")
    expected = {**snapshot(a), **snapshot(b), **snapshot(pg_url)}
    combined = tmp_path / "all.db"
    for source in (a, b, pg_url):  # SQLite into SQLite, PostgreSQL into SQLite
        with Store(source) as src, Store(combined) as dst:
            report = merge(src, dst)
        assert len(report.added) == 2 and report.rows["exchanges"] == 16
    for target in (pg_url,):  # SQLite into PostgreSQL
        for source in (a, b):
            with Store(source) as src, Store(target) as dst:
                merge(src, dst)
    assert snapshot(combined) == expected
    assert snapshot(pg_url) == expected
    for source, target in ((a, combined), (b, combined), (pg_url, combined), (a, pg_url)):
        with Store(source) as src, Store(target) as dst:
            again = merge(src, dst)  # twice: nothing added
        assert again.added == [] and again.rows == {} and again.united == {}
        assert len(again.same) == (6 if source == pg_url else 2)  # the runs of the source
    assert snapshot(combined) == expected and snapshot(pg_url) == expected
    with Store(combined) as store:
        assert {r.vantage for r in store.runs()} == {"laptop", "ci", "cron"}
        assert sorted(r.id for r in store.runs()) == sorted(ids_a + ids_b + ids_pg)
        assert store.cached("cache-laptop") == exchange("laptop")
        assert store.lease(ids_a[0]) is None
    with sqlite3.connect(combined) as con:  # no row twice
        assert con.execute("SELECT COUNT(*) FROM sends").fetchone() == (6 * 8,)
        assert con.execute("SELECT COUNT(*) FROM cache").fetchone() == (3,)


def test_a_run_in_both_with_different_content_is_united_and_said(tmp_path: Path) -> None:
    a = tmp_path / "a.db"
    (run_id, _) = fill(a, "x")
    copy = tmp_path / "copy.db"
    with Store(a) as src, Store(copy) as dst:
        merge(src, dst)
    with Store(a) as store:  # the original went on: a resumed run, a changed detail
        store.add_exchange(run_id, "zeta", "speed", "k9", exchange("late"))
        store.set_reachability(run_id, "alpha", False, "down now")
    with Store(a) as src, Store(copy) as dst:
        report = merge(src, dst)
    assert report.united == {run_id: (1, 1)}  # one exchange added, one provider row differs
    with Store(copy) as store:
        assert store.count_exchanges(run_id) == 9
        alpha = next(p for p in store.providers(run_id) if p["name"] == "alpha")
        assert alpha["detail"] == "x"  # the target's row kept
    with Store(a) as src, Store(copy) as dst:
        again = merge(src, dst)
    assert again.rows == {} and again.united == {run_id: (0, 1)}


def test_a_store_is_not_merged_into_itself(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    fill(db, "x", runs=1)
    with Store(db) as one, Store(tmp_path / "." / "a.db") as two, pytest.raises(ConfigError):
        merge(one, two)


def test_export_then_import_round_trips_sqlite_to_postgresql(tmp_path: Path, pg_url: str) -> None:
    db = tmp_path / "a.db"
    fill(db, "laptop", runs=3)
    dump = tmp_path / "runs.jsonl.gz"
    with Store(db) as store:
        counts = export(store, dump)
    assert counts == {
        "runs": 3,
        "providers": 6,
        "sends": 24,
        "exchanges": 24,
        "results": 6,
        "cache": 1,
    }
    with gzip.open(dump, "rt") as f:
        header = json.loads(f.readline())
    assert header["parity_dump"] == 1 and header["schema_version"] == 2
    with Store(pg_url) as store:
        report = import_dump(dump, store)
    assert len(report.added) == 3 and report.rows["exchanges"] == 24
    assert report.rows["cache"] == 1
    assert snapshot(pg_url) == snapshot(db)
    with Store(pg_url) as store:
        again = import_dump(dump, store)
        assert store.cached("cache-laptop") == exchange("laptop")
    assert again.rows == {} and len(again.same) == 3
    plain = tmp_path / "runs.jsonl"  # and back, uncompressed, into a new SQLite store
    with Store(pg_url) as store:
        export(store, plain)
    with Store(tmp_path / "back.db") as store:
        import_dump(plain, store)
    assert snapshot(tmp_path / "back.db") == snapshot(db)


def test_a_file_that_is_not_a_dump_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"hello": 1}\n')
    with Store(tmp_path / "a.db") as store, pytest.raises(ConfigError, match="not a parity dump"):
        import_dump(bad, store)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_vacuum_prunes_runs_older_than_the_age(tmp_path: Path, pg_url: str, backend: str) -> None:
    db: Path | str = tmp_path / "a.db" if backend == "sqlite" else pg_url
    old, new = fill(db, "x", runs=2)
    with Store(db) as store:
        writing = store.create_run("run", None, {}, "t", lease=True)  # being written: kept
        store.add_exchange(writing, "a", "speed", "k", exchange())
        for run_id in (old, writing):
            store.connection.exec_driver_sql(
                f"UPDATE runs SET created_at = created_at - 40 * 86400 WHERE id = '{run_id}'"
            )
        dry = vacuum(store, parse_age("30d"), dry_run=True)
        assert dry.runs == [old] and dry.rows["exchanges"] == 8 and not dry.vacuumed
        assert store.run(old) is not None
        done = vacuum(store, parse_age("30d"))
        assert done.runs == [old] and done.rows == dry.rows
        assert done.vacuumed is (backend == "sqlite")
        assert store.run(old) is None and store.count_exchanges(old) == 0 and store.sends(old) == 0
        assert store.run(new) is not None and store.count_exchanges(new) == 8
        assert store.run(writing) is not None
        assert vacuum(store, parse_age("30d")).runs == []


def test_ages_are_read_or_refused() -> None:
    assert parse_age("30d") == 30 * 86400 and parse_age("12h") == 43200
    assert parse_age("2w") == 14 * 86400 and parse_age("90m") == 5400
    for bad in ("30", "d", "-1d", "soon", ""):
        with pytest.raises(ConfigError, match="give an age"):
            parse_age(bad)
