import socket
import sqlite3
from pathlib import Path

import pytest

from parity.core.dburl import DbRef
from parity.core.errors import ConfigError
from parity.core.exchange import ErrorClass, Exchange, Timings
from parity.core.store import Store, reset_default_vantage, set_default_vantage


def exchange(text: str = "hi", error: ErrorClass | None = None) -> Exchange:
    return Exchange(
        request={"messages": [{"role": "user", "content": "q"}]},
        stream=True,
        timings=Timings(
            sent=1, headers=2, first_chunk=3, first_token_chunk=4, token_chunks=[4, 5], end=6
        ),
        status=200 if error is None else 500,
        error=error,
        text=text,
        usage={"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
        chunks=['{"x": 1}'],
    )


def test_store_round_trips_runs_and_exchanges(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    with Store(db) as store:
        run_id = store.create_run("run", "providers.toml", {"repeats": 2}, "0.1.0")
        store.add_provider(run_id, "a", {"name": "a"})
        store.set_reachability(run_id, "a", True, "ok")
        store.log_send(run_id, "a", "k1")
        store.add_exchange(run_id, "a", "speed", "k1", exchange())
        store.add_exchange(run_id, "a", "speed", "k2", exchange(error=ErrorClass.HTTP_5XX))
    with Store(db) as store:
        info = store.run(run_id)
        assert info is not None and info.status == "running" and info.exchanges == 2
        assert info.options == {"repeats": 2}
        assert store.stored_keys(run_id, "a") == {"k1", "k2"}
        items = list(store.exchanges(run_id, "a"))
        assert [i.key for i in items] == ["k1", "k2"]
        assert items[0].exchange == exchange()
        assert items[1].exchange.error is ErrorClass.HTTP_5XX
        assert store.providers(run_id) == [{"name": "a", "reachable": True, "detail": "ok"}]
        assert store.sends(run_id) == 1
        store.finish_run(run_id)
        assert store.latest_run().status == "finished"  # type: ignore[union-attr]


def test_store_is_wal_and_keys_are_stored_once(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    with Store(db) as store:
        run_id = store.create_run("run", None, {}, "0.1.0")
        store.add_exchange(run_id, "a", "speed", "k", exchange("first"))
        store.add_exchange(run_id, "a", "speed", "k", exchange("second"))
        assert [i.exchange.text for i in store.exchanges(run_id)] == ["first"]
    mode = sqlite3.connect(db).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_exchange_is_visible_to_another_connection_at_once(tmp_path: Path) -> None:
    """Each exchange is committed when written: a crash right after loses nothing."""
    db = tmp_path / "p.db"
    store = Store(db)
    run_id = store.create_run("run", None, {}, "0.1.0")
    store.add_exchange(run_id, "a", "speed", "k", exchange())
    other = sqlite3.connect(db)
    assert other.execute("SELECT COUNT(*) FROM exchanges").fetchone()[0] == 1
    store.close()


def test_results_replace(tmp_path: Path) -> None:
    with Store(tmp_path / "p.db") as store:
        run_id = store.create_run("run", None, {}, "0.1.0")
        store.put_result(run_id, "a", "speed", "ttft", 1)
        store.put_result(run_id, "a", "speed", "ttft", 2)
        assert store.results(run_id) == [("a", "speed", "ttft", 2)]


def test_each_run_records_its_vantage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PARITY_VANTAGE", raising=False)
    with Store(tmp_path / "p.db") as store:
        host = store.create_run("run", None, {}, "t")
        given = store.create_run("run", None, {}, "t", vantage="eu-west")
        monkeypatch.setenv("PARITY_VANTAGE", "ci-runner")
        from_env = store.create_run("run", None, {}, "t")
        token = set_default_vantage("cli-flag")  # what --vantage does
        try:
            from_flag = store.create_run("run", None, {}, "t")
        finally:
            reset_default_vantage(token)
        vantages = {r.id: r.vantage for r in store.runs()}
        assert vantages == {
            host: socket.gethostname(),
            given: "eu-west",
            from_env: "ci-runner",
            from_flag: "cli-flag",
        }
        assert [r.id for r in store.runs(vantage="eu-west")] == [given]
        assert store.vantages() == sorted(
            {socket.gethostname(), "eu-west", "ci-runner", "cli-flag"}
        )


def test_a_path_or_a_url_names_the_store_and_a_password_is_masked() -> None:
    ref = DbRef.of("postgresql://auditor:hunter2@db.internal:5432/parity?sslmode=require")
    assert not ref.is_sqlite and "hunter2" not in str(ref) and "hunter2" not in repr(ref)
    assert str(ref) == "postgresql://auditor:***@db.internal:5432/parity?sslmode=require"
    assert ref.sqlalchemy_url().startswith("postgresql+psycopg://auditor:hunter2@")
    assert DbRef.of("postgresql+psycopg://u@h/db").url == "postgresql+psycopg://u@h/db"
    assert DbRef.of("runs/eu.db").path == Path("runs/eu.db")
    assert DbRef.of(Path("x.db")).is_sqlite
    for bad in ("postgresql://u@h/", "mysql://u:pw@h/db", "postgresql://u@h:notaport/db"):
        with pytest.raises(ConfigError) as caught:
            DbRef.of(bad)
        assert "pw@" not in str(caught.value)
