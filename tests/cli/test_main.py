"""The `parity` command as a user meets it, against the scripted server (a real HTTP server
on loopback that replays exact wire behaviour): config errors, unreachable providers, keys
that must never leak, and kill -9 followed by --resume."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from parity.accuracy.probe import DEFAULT_REFERENCE_REPEATS
from parity.core.config import load_providers
from parity.core.plan import RunOptions, plan_requests
from tests.scripted_server import Reply, Request, ScriptedServer, ok, unused_port

FAKE_KEY = "sk-parity-FAKE-7f3a9c1e5b2d4680"
PARITY = [sys.executable, "-m", "parity"]


def parity(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PARITY, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def provider_toml(
    name: str, base_url: str, *, reference: bool = False, key: bool = False, concurrency: int = 2
) -> str:
    lines = [
        "[[provider]]",
        f'name = "{name}"',
        f'base_url = "{base_url}"',
        'model = "scripted-model"',
        "price_input = 0.10",
        "price_output = 0.40",
        "context_window = 2048",
        f"max_concurrency = {concurrency}",
    ]
    if reference:
        lines.append("reference = true")
    if key:
        lines.append('api_key_env = "PARITY_TEST_KEY"')
    return "\n".join(lines) + "\n\n"


def test_broken_providers_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "providers.toml"
    path.write_text('[[provider]]\nname = "a"\nbase_url = "http://127.0.0.1:1/v1"\n')
    result = parity("run", str(path), "--db", str(tmp_path / "p.db"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(path) in lines[0] and "model" in lines[0] and "missing" in lines[0]
    assert "Traceback" not in result.stderr + result.stdout


def test_unknown_resume_run_is_a_clear_error(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    sqlite3.connect(db).close()
    result = parity("run", "--resume", "nope", "--db", str(db))
    assert result.returncode == 2 and "no run 'nope'" in result.stderr


def test_unreachable_provider_is_reported_and_the_run_goes_on_and_key_never_leaks(
    tmp_path: Path,
) -> None:
    with ScriptedServer() as server:
        path = tmp_path / "providers.toml"
        path.write_text(
            provider_toml("good", server.base("ok"), reference=True, key=True)
            + provider_toml("echo", server.base("echo-auth"), key=True)
            + provider_toml("down", f"http://127.0.0.1:{unused_port()}/v1", key=True)
        )
        db, summary = tmp_path / "p.db", tmp_path / "summary.json"
        result = parity(
            "run",
            str(path),
            "--db",
            str(db),
            "--repeats",
            "1",
            "--speed-requests",
            "2",
            "--json",
            str(summary),
            env={"PARITY_TEST_KEY": FAKE_KEY, "COLUMNS": "200"},
        )
        # The key was really sent...
        assert any(
            r.headers.get("authorization") == f"Bearer {FAKE_KEY}" for r in server.received("ok")
        )
    # ...and the run finished for the reachable providers, with the unreachable one reported.
    assert result.returncode == 1, result.stderr
    assert "unreachable" in result.stdout and "down" in result.stdout
    assert server.count("ok") > 40
    # The key appears nowhere: terminal, store (incl. WAL), JSON.
    assert FAKE_KEY not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    for path_ in tmp_path.iterdir():
        assert FAKE_KEY.encode() not in path_.read_bytes(), path_


def paced(delay_s: float):  # type: ignore[no-untyped-def]
    async def handler(req: Request, reply: Reply) -> None:
        await asyncio.sleep(delay_s)
        await ok(req, reply)

    return handler


def test_kill_9_then_resume_sends_no_stored_request_again(tmp_path: Path) -> None:
    with ScriptedServer(scenarios={"paced": paced(0.03)}) as server:
        path = tmp_path / "providers.toml"
        path.write_text(
            provider_toml("a", server.base("paced"), reference=True, concurrency=2)
            + provider_toml("b", server.base("paced"), concurrency=2)
        )
        db = tmp_path / "p.db"
        args = ["--db", str(db), "--repeats", "2", "--speed-requests", "3", "--no-conformance"]
        proc = subprocess.Popen(
            [*PARITY, "run", str(path), *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        stored_at_kill: set[tuple[str, str]] = set()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            time.sleep(0.02)
            if not db.exists():
                continue
            try:
                rows = sqlite3.connect(db).execute("SELECT provider, key FROM exchanges").fetchall()
            except sqlite3.OperationalError:
                continue
            if len(rows) >= 60:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                stored_at_kill = {
                    (p, k)
                    for p, k in sqlite3.connect(db).execute("SELECT provider, key FROM exchanges")
                }
                break
        assert stored_at_kill, "the run finished before it could be killed"
        options = RunOptions(
            repeats=2,
            reference_repeats=DEFAULT_REFERENCE_REPEATS,  # what the CLI asks by default
            speed_requests=3,
            conformance=False,
        )
        planned = sum(len(plan_requests("run", p, options)) for p in load_providers(path).providers)
        assert len(stored_at_kill) < planned

        con = sqlite3.connect(db)
        (run_id,) = con.execute("SELECT id FROM runs").fetchone()
        result = parity("run", "--resume", run_id, *args)
        assert result.returncode == 0, result.stdout + result.stderr

        received = server.count("paced")
    con = sqlite3.connect(db)
    rows = con.execute(
        "SELECT provider, key, COUNT(*) FROM exchanges GROUP BY provider, key"
    ).fetchall()
    assert len(rows) == planned and all(n == 1 for _, _, n in rows)
    sends = con.execute(
        "SELECT provider, key, COUNT(*) FROM sends GROUP BY provider, key"
    ).fetchall()
    total_sends = sum(n for _, _, n in sends)
    # Every request the server saw was logged as a send, and only requests that were in
    # flight at the kill (sent, never stored) were sent a second time.
    assert received == total_sends
    twice = {(p, k) for p, k, n in sends if n > 1}
    assert twice.isdisjoint(stored_at_kill)
    assert len(twice) <= 4  # at most max_concurrency per provider in flight
    assert received - planned == len(twice)
    (status,) = con.execute("SELECT status FROM runs").fetchone()
    assert status == "finished"


def test_providers_check_says_which_are_reachable(tmp_path: Path) -> None:
    with ScriptedServer() as server:
        path = tmp_path / "providers.toml"
        path.write_text(
            provider_toml("up", server.base("ok"))
            + provider_toml("down", f"http://127.0.0.1:{unused_port()}/v1")
        )
        result = parity("providers", "check", str(path), env={"COLUMNS": "200"})
    assert result.returncode == 1
    rows = {
        line.split("│")[1].strip(): line
        for line in result.stdout.splitlines()
        if line.count("│") > 3
    }
    assert "yes" in rows["up"] and "no" in rows["down"]


def test_runs_lists_runs_and_report_recomputes(tmp_path: Path) -> None:
    with ScriptedServer() as server:
        path = tmp_path / "providers.toml"
        path.write_text(provider_toml("a", server.base("ok"), reference=True))
        db = tmp_path / "p.db"
        first = parity("run", str(path), "--db", str(db), "--repeats", "1", "--no-conformance")
    assert first.returncode == 0, first.stderr
    listed = parity("runs", "--db", str(db), env={"COLUMNS": "200"})
    assert listed.returncode == 0 and "finished" in listed.stdout
    again = parity(
        "report", "--db", str(db), "--json", str(tmp_path / "r.json"), env={"COLUMNS": "200"}
    )
    assert again.returncode == 0 and "reference" in again.stdout
    assert (tmp_path / "r.json").exists()


def test_every_command_explains_itself() -> None:
    for command in (
        ["run"],
        ["runs"],
        ["report"],
        ["demo"],
        ["providers", "check"],
        ["local", "up"],
        ["local", "down"],
        ["local", "status"],
    ):
        result = parity(*command, "--help", env={"COLUMNS": "200"})
        assert result.returncode == 0, command
        assert "Usage" in result.stdout
    assert "Cost" in parity("run", "--help", env={"COLUMNS": "200"}).stdout


def test_bench_runs_report_in_every_format(tmp_path: Path) -> None:
    with ScriptedServer() as server:
        path = tmp_path / "providers.toml"
        path.write_text(provider_toml("a", server.base("ok"), reference=True))
        db = tmp_path / "p.db"
        bench = parity("bench", str(path), "--db", str(db), "--out", str(tmp_path / "out"))
        assert bench.returncode == 0, bench.stderr
    files = {fmt: tmp_path / f"r.{fmt}" for fmt in ("html", "json", "csv", "junit", "markdown")}
    args = [a for fmt, f in files.items() for a in (f"--{fmt}", str(f))]
    result = parity("report", "--db", str(db), *args)
    assert result.returncode == 0, result.stderr
    assert all(f.exists() and f.stat().st_size > 0 for f in files.values())
    assert "bench run" in result.stdout
