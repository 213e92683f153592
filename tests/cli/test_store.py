"""The real `parity` command on a shared PostgreSQL store (a real server, tests/postgres.py)
and `parity store`: a run against the scripted server into PostgreSQL with a vantage,
`parity runs` and `parity history` reading it (also through PARITY_DB), and merge, export,
import and vacuum from the command line, the password never printed."""

from __future__ import annotations

import json
from pathlib import Path

from parity.core.store import Store
from tests.cli.test_main import parity, provider_toml
from tests.postgres import PASSWORD
from tests.scripted_server import ScriptedServer

WIDE = {"COLUMNS": "200"}


def no_secret(*results: object) -> None:
    for result in results:
        text = result.stdout + result.stderr  # type: ignore[attr-defined]
        assert PASSWORD not in text, text
        assert "Traceback" not in text, text


def test_parity_run_and_history_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    with ScriptedServer() as server:
        path = tmp_path / "providers.toml"
        path.write_text(provider_toml("a", server.base("ok"), reference=True))
        args = ["run", str(path), "--repeats", "1", "--no-conformance", "--speed-requests", "1"]
        first = parity(*args, "--db", pg_url, "--vantage", "eu-west", env=WIDE)
        second = parity(*args, env={**WIDE, "PARITY_DB": pg_url})  # the host name
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert "postgresql://parity:***@127.0.0.1" in first.stderr  # the announce line, masked
    listed = parity("runs", "--db", pg_url, "--json", str(tmp_path / "runs.json"), env=WIDE)
    assert listed.returncode == 0 and "eu-west" in listed.stdout
    runs = json.loads((tmp_path / "runs.json").read_text())["runs"]
    assert [r["status"] for r in runs] == ["finished", "finished"]
    assert runs[1]["vantage"] == "eu-west" and runs[0]["vantage"] not in (None, "eu-west")
    assert all(r["exchanges"] > 0 for r in runs)
    history = parity("history", "--metric", "status", env={**WIDE, "PARITY_DB": pg_url})
    assert history.returncode == 0, history.stderr
    assert "a @ eu-west" in history.stdout  # two vantages: split
    one = parity("history", "--db", pg_url, "--vantage", "eu-west", "--json", "-", env=WIDE)
    assert one.returncode == 0, one.stderr
    rows = json.loads(one.stdout)["history"]
    assert rows and {r["vantage"] for r in rows} == {"eu-west"}
    unknown = parity("history", "--db", pg_url, "--vantage", "mars", env=WIDE)
    assert unknown.returncode == 2 and "no run from vantage 'mars'" in unknown.stderr
    no_secret(first, second, listed, history, one, unknown)
    with Store(pg_url) as store:  # what the CLI wrote is all there, once
        for info in store.runs():
            assert store.count_exchanges(info.id) == len({s.key for s in store.exchanges(info.id)})


def test_parity_store_commands_from_the_command_line(tmp_path: Path, pg_url: str) -> None:
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    for db, label in ((a, "laptop"), (b, "ci")):
        with Store(db) as store:
            run_id = store.create_run("run", None, {}, "t", vantage=label)
            store.add_provider(run_id, "p", {"name": "p"})
            store.finish_run(run_id)
    merged = [parity("store", "merge", str(db), pg_url) for db in (a, b, a)]
    assert [m.returncode for m in merged] == [0, 0, 0], merged[0].stderr
    assert (
        "1 runs added" in merged[0].stdout and "into postgresql://parity:***@" in merged[0].stdout
    )
    assert "0 runs added, 1 already there" in merged[2].stdout  # idempotent
    dump = tmp_path / "all.jsonl.gz"
    exported = parity("store", "export", "--db", pg_url, str(dump))
    assert exported.returncode == 0 and "2 runs" in exported.stdout, exported.stderr
    imported = parity("store", "import", str(dump), "--db", str(tmp_path / "c.db"))
    assert imported.returncode == 0 and "2 runs added" in imported.stdout, imported.stderr
    dry = parity("store", "vacuum", "--older-than", "0s", "--dry-run", "--db", str(a))
    assert dry.returncode == 0 and "would delete 1 runs" in dry.stdout, dry.stderr
    bad = parity("store", "vacuum", "--older-than", "soon", "--db", str(a))
    assert bad.returncode == 2 and "give an age like 30d" in bad.stderr
    missing = parity("store", "merge", str(tmp_path / "none.db"), str(b))
    assert missing.returncode == 2 and "no such store" in missing.stderr
    no_secret(*merged, exported, imported, dry, bad, missing)
    with Store(tmp_path / "c.db") as store:
        assert {r.vantage for r in store.runs()} == {"laptop", "ci"}


def test_an_interrupted_run_resumes_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    with ScriptedServer() as server:
        path = tmp_path / "providers.toml"
        path.write_text(provider_toml("a", server.base("ok"), reference=True))
        args = ["run", str(path), "--db", pg_url, "--repeats", "1", "--no-conformance"]
        stopped = parity(*args, "--max-time", "0.001", env=WIDE)
        assert stopped.returncode == 130, stopped.stderr
        assert "--db postgresql://parity:***@127.0.0.1" in stopped.stderr  # the resume hint
        with Store(pg_url) as store:
            (info,) = store.runs()
            assert info.status == "interrupted" and store.lease(info.id) is None
        resumed = parity("run", "--db", pg_url, "--resume", info.id, str(path), env=WIDE)
    assert resumed.returncode == 0, resumed.stderr
    no_secret(stopped, resumed)
    with Store(pg_url) as store:
        done = store.run(info.id)
        assert done is not None and done.status == "finished" and done.exchanges > 0
        assert store.sends(info.id) >= done.exchanges  # nothing stored twice
