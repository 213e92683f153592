"""The store on a real PostgreSQL server (tests/postgres.py: initdb + pg_ctl on loopback):
the same behaviour as SQLite, several auditor processes writing one database at once with
nothing lost or duplicated, leases across machines judged by heartbeat alone, and the
password of a URL never printed."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psycopg
import pytest

from parity.core.errors import RunBusy, StoreError
from parity.core.exchange import ErrorClass
from parity.core.store import Store
from tests.cli.test_main import parity
from tests.core.test_store import exchange
from tests.core.test_store_lease import dead_pid
from tests.postgres import PASSWORD
from tests.scripted_server import unused_port

ROOT = Path(__file__).parents[2]


def test_the_store_round_trips_on_postgresql(pg_url: str) -> None:
    with Store(pg_url) as store:
        run_id = store.create_run("run", "p.toml", {"repeats": 2}, "0.1.0", vantage="eu-west")
        for name in ("zeta", "alpha"):
            store.add_provider(run_id, name, {"name": name})
        store.add_provider(run_id, "zeta", {"name": "again"})  # idempotent
        store.set_reachability(run_id, "zeta", True, "ok")
        store.log_send(run_id, "zeta", "k1")
        store.add_exchange(run_id, "zeta", "speed", "k1", exchange())
        store.add_exchange(run_id, "zeta", "speed", "k1", exchange("second"))  # stored once
        store.add_exchange(run_id, "zeta", "speed", "K0", exchange(error=ErrorClass.HTTP_5XX))
        store.put_result(run_id, "zeta", "speed", "ttft", 1)
        store.put_result(run_id, "zeta", "speed", "tps", 3)
        store.put_result(run_id, "zeta", "speed", "ttft", 2)  # replaced, moves last
        store.put_cached("c", exchange())
        store.put_cached("c", exchange("newer"))
    with Store(pg_url) as store:
        info = store.run(run_id)
        assert info is not None and info.exchanges == 2 and info.vantage == "eu-west"
        assert [p["name"] for p in store.providers(run_id)] == ["zeta", "alpha"]
        assert store.providers(run_id)[0]["reachable"] is True
        assert [s.key for s in store.exchanges(run_id)] == ["K0", "k1"]  # bytewise, as SQLite
        assert next(iter(store.exchanges(run_id, probe="speed"))).exchange.error is (
            ErrorClass.HTTP_5XX
        )
        assert store.get_exchanges(run_id, "zeta", ["k1", "nope"])["k1"] == exchange()
        assert store.results(run_id) == [
            ("zeta", "speed", "tps", 3),
            ("zeta", "speed", "ttft", 2),
        ]
        assert store.cached("c") == exchange("newer")
        assert store.sends(run_id) == 1 and store.stored_keys(run_id, "zeta") == {"k1", "K0"}
        assert store.runs(vantage="eu-west")[0].id == run_id and store.runs(vantage="x") == []


AUDITOR = textwrap.dedent(
    """
    import sys
    from parity.core.store import Store
    from tests.core.test_store import exchange

    url, label, shared, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    with Store(url) as store:
        run_id = store.create_run("run", None, {}, "t", lease=True, vantage=label)
        print(run_id, flush=True)
        for i in range(n):
            store.log_send(run_id, "a", f"k{i}")
            store.add_exchange(run_id, "a", "speed", f"k{i}", exchange(f"{label}-{i}"))
            # every auditor also writes the same keys of one shared run: stored once each
            store.add_exchange(shared, label, "speed", f"s{i % 50}", exchange(label))
            store.add_exchange(shared, "all", "speed", f"s{i % 50}", exchange(label))
        store.finish_run(run_id)
    """
)


def test_auditors_writing_one_database_at_once_lose_and_duplicate_nothing(
    pg_url: str, tmp_path: Path
) -> None:
    with Store(pg_url) as store:
        shared = store.create_run("run", None, {}, "t")
    script = tmp_path / "auditor.py"
    script.write_text(AUDITOR)
    n, labels = 200, ["eu-west", "us-east", "ci-runner", "cron"]
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), pg_url, label, shared, str(n)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        for label in labels
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outputs]
    run_ids = [out.strip() for out, _ in outputs]
    with psycopg.connect(pg_url) as conn:
        for run_id, label in zip(run_ids, labels, strict=True):
            rows = conn.execute(
                "SELECT COUNT(*), COUNT(DISTINCT key) FROM exchanges WHERE run_id = %s", (run_id,)
            ).fetchone()
            assert rows == (n, n)
            sends = conn.execute("SELECT COUNT(*) FROM sends WHERE run_id = %s", (run_id,))
            assert sends.fetchone() == (n,)
            status = conn.execute(
                "SELECT status, vantage, lease_token FROM runs WHERE id = %s", (run_id,)
            ).fetchone()
            assert status == ("finished", label, None)
        per_provider = dict(
            conn.execute(
                "SELECT provider, COUNT(*) FROM exchanges WHERE run_id = %s GROUP BY provider",
                (shared,),
            ).fetchall()
        )
        assert per_provider == {**{label: 50 for label in labels}, "all": 50}
        total = conn.execute("SELECT COUNT(*) FROM exchanges").fetchone()
        assert total == (len(labels) * n + len(labels) * 50 + 50,)


def _plant(url: str, run_id: str, host: str, pid: int, heartbeat_age: float, ttl: float) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        (now,) = conn.execute("SELECT EXTRACT(EPOCH FROM clock_timestamp())::float8").fetchone()
        beat = now - heartbeat_age
        conn.execute(
            "UPDATE runs SET lease_host = %s, lease_pid = %s, lease_token = 'theirs',"
            " lease_acquired_at = %s, lease_heartbeat_at = %s, lease_expires_at = %s"
            " WHERE id = %s",
            (host, pid, beat - 100, beat, beat + ttl, run_id),
        )


def test_a_lease_held_on_another_host_is_judged_by_its_heartbeat_alone(pg_url: str) -> None:
    with Store(pg_url, lease_ttl=30) as store:
        run_id = store.create_run("run", None, {}, "t")
        # Another machine's auditor, whose pid means nothing here (it is dead on this host):
        _plant(pg_url, run_id, "auditor-elsewhere", dead_pid(), heartbeat_age=1, ttl=30)
        with pytest.raises(RunBusy, match="auditor-elsewhere/"):
            store.acquire_lease(run_id)
        # Its heartbeat stopped more than a TTL ago: stale, taken over.
        _plant(pg_url, run_id, "auditor-elsewhere", 1, heartbeat_age=31, ttl=30)
        lease = store.acquire_lease(run_id)
        assert lease.host == socket.gethostname()
        held = store.lease(run_id)
        assert held is not None and held.token == lease.token
        store.release_lease()
        assert store.lease(run_id) is None


def test_the_holder_heartbeats_on_the_servers_clock(pg_url: str) -> None:
    with Store(pg_url, lease_ttl=0.4) as store:
        run_id = store.create_run("run", None, {}, "t", lease=True)
        with psycopg.connect(pg_url) as conn:
            first = conn.execute(
                "SELECT lease_heartbeat_at FROM runs WHERE id = %s", (run_id,)
            ).fetchone()
            time.sleep(0.6)
            later = conn.execute(
                "SELECT lease_heartbeat_at, lease_expires_at FROM runs WHERE id = %s", (run_id,)
            ).fetchone()
        assert later[0] > first[0] and later[1] == pytest.approx(later[0] + 0.4)


def test_a_password_is_never_printed(postgres_server: object, pg_url: str, tmp_path: Path) -> None:
    assert PASSWORD in pg_url
    unreachable = pg_url.replace(pg_url.split("@")[1].split("/")[0], f"127.0.0.1:{unused_port()}")
    with pytest.raises(StoreError) as caught:
        Store(unreachable)
    assert PASSWORD not in str(caught.value) and "cannot reach store postgresql://" in str(
        caught.value
    )
    for args, env in (
        (("runs", "--db", unreachable), {}),
        (("runs",), {"PARITY_DB": unreachable}),
        (("history", "--db", pg_url.replace(PASSWORD, PASSWORD + "x")), {}),  # wrong password
        (("runs", "--db", pg_url), {}),  # reachable: no runs yet, the URL in the message
    ):
        result = parity(*args, env={"COLUMNS": "200", **env})
        text = result.stdout + result.stderr
        assert PASSWORD not in text, text
        assert "Traceback" not in text
        errors = [line for line in result.stderr.splitlines() if line.startswith("parity:")]
        if result.returncode != 0:
            assert result.returncode == 2 and len(errors) == 1, text
            assert ":***@127.0.0.1" in errors[0] or "no runs" in errors[0], errors
