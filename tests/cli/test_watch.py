"""`parity watch` as a cron job or a service meets it: real `parity` processes against the
scripted server (a provider that answers the easy suite right, then wrong from its second
run on), a webhook receiver on loopback, signals between runs and during one."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from parity.accuracy.suites import get_suite
from tests.cli.test_interrupt import sigint_default
from tests.cli.test_main import PARITY, parity, provider_toml
from tests.core.test_webhook import Receiver
from tests.scripted_server import (
    Reply,
    Request,
    ScriptedServer,
    completion,
    models,
    ok,
    stream_completion,
    unused_port,
)

ANSWERS = {p.prompt: p.answer for p in get_suite("easy").problems}
CHEAP = [
    "--suite",
    "easy:10",
    "--repeats",
    "1",
    "--reference-repeats",
    "1",
    "--speed-requests",
    "2",
]


class Solver:
    """Scenario handlers for a provider that answers the easy suite right in its first
    `right_runs` runs (a run is counted at its GET /models ping) and wrong after; every
    other request gets the `ok` answer."""

    def __init__(self, right_runs: int | None = None) -> None:
        self.right_runs = right_runs
        self.runs = 0

    async def models(self, req: Request, reply: Reply) -> None:
        self.runs += 1
        await models(req, reply)

    async def chat(self, req: Request, reply: Reply) -> None:
        body = req.json() or {}
        messages = body.get("messages") or [{}]
        answer = ANSWERS.get(str(messages[-1].get("content")))
        if answer is None:
            await ok(req, reply)
            return
        if self.right_runs is not None and self.runs > self.right_runs:
            answer = "I do not know"
        if req.stream:
            await stream_completion(reply, [{"content": answer}])
        else:
            await reply.send(200, completion({"content": answer}))


@contextmanager
def providers(tmp_path: Path, flaky_right_runs: int | None = 1) -> Iterator[Path]:
    """A providers file: `ref` always right, `flaky` right for its first run(s) only."""
    ref, flaky = Solver(), Solver(flaky_right_runs)
    with ScriptedServer(
        scenarios={"ref": ref.chat, "flaky": flaky.chat},
        model_scenarios={"ref": ref.models, "flaky": flaky.models},
    ) as server:
        path = tmp_path / "providers.toml"
        path.write_text(
            provider_toml("ref", server.base("ref"), reference=True)
            + provider_toml("flaky", server.base("flaky"))
        )
        yield path


def runs(db: Path) -> list[tuple[str, str]]:
    """(id, status) of every run in the store, oldest first."""
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT id, status FROM runs ORDER BY created_at, id").fetchall()


def test_two_cycles_append_two_runs_and_a_regression_posts_the_alert(tmp_path: Path) -> None:
    db, report = tmp_path / "p.db", tmp_path / "rolling.json"
    with providers(tmp_path) as path, Receiver() as receiver:
        result = parity(
            "watch",
            str(path),
            "--db",
            str(db),
            "--max-runs",
            "2",
            "--every",
            "1s",
            "--vantage",
            "eu-west",
            *CHEAP,
            "--webhook",
            f"{receiver.url}/hook",
            "--json",
            str(report),
            "--markdown",
            str(tmp_path / "rolling.md"),
            "--html",
            str(tmp_path / "rolling.html"),
        )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    stored = runs(db)
    assert [status for _, status in stored] == ["finished", "finished"]
    (first, _), (second, _) = stored
    # The alert: one POST, flaky's accuracy (1 -> 0) and verdict, run ids, verdicts.
    [post] = receiver.posts
    assert post["path"] == "/hook"
    assert post["headers"]["Content-Type"] == "application/json"
    body = post["body"]
    assert (body["run_a"], body["run_b"]) == (first, second)
    by_metric = {a["metric"]: a for a in body["alerts"]}
    assert {a["provider"] for a in body["alerts"]} == {"flaky"}
    accuracy = by_metric["accuracy"]
    assert (accuracy["before"], accuracy["after"], accuracy["verdict"]) == (1.0, 0.0, "degraded")
    assert (accuracy["run_a"], accuracy["run_b"]) == (first, second)
    assert accuracy["detail"] in body["regressions"]
    assert by_metric["verdict"]["after"] == "degraded"
    assert "parity watch: alert posted" in result.stderr
    # The rolling medians after the second cycle: both runs, flaky's accuracy 1 then 0.
    data = json.loads(report.read_text())
    assert data["cycle"] == 2 and data["baseline"] == first and data["regression"]
    assert data["rolling"]["run_ids"] == [first, second]
    rolled = {p["provider"]: p for p in data["rolling"]["providers"]}
    assert rolled["flaky"]["runs"] == 2 and rolled["flaky"]["vantage"] == "eu-west"
    flaky = rolled["flaky"]["metrics"]["accuracy"]
    assert (flaky["median"], flaky["low"], flaky["high"], flaky["n"]) == (0.5, 0.0, 1.0, 2)
    assert rolled["ref"]["metrics"]["accuracy"]["median"] == 1.0
    assert rolled["ref"]["metrics"]["conformance_passed"]["n"] == 2
    assert rolled["ref"]["metrics"]["price_blended"]["median"] is not None
    assert "rolling medians over the last 72 h" in result.stdout
    markdown = (tmp_path / "rolling.md").read_text().splitlines()
    [row] = [line for line in markdown if line.startswith("| flaky")]
    assert row.split(" | ")[1] == "2"  # runs
    page = (tmp_path / "rolling.html").read_text()
    assert page.startswith("<!doctype html>") and "<td>50% [0%, 100%]</td>" in page


def test_once_exits_1_on_a_regression_and_a_dead_webhook_is_one_line(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    secret = "s3cr3t-T0KEN-value"
    webhook = f"http://hookuser:{secret}@127.0.0.1:{unused_port()}/hooks/{secret}?token={secret}"
    args = ["--db", str(db), "--once", *CHEAP, "--no-conformance", "--webhook", webhook]
    with providers(tmp_path) as path:
        first = parity("watch", str(path), *args)
        second = parity("watch", str(path), *args)
    assert first.returncode == 0, first.stderr
    assert "no baseline run in the window yet" in first.stdout
    assert second.returncode == 1, second.stderr
    assert [status for _, status in runs(db)] == ["finished", "finished"]
    [line] = [x for x in second.stderr.splitlines() if "webhook" in x]
    assert line.startswith("parity watch: webhook http://127.0.0.1:"), line
    assert line.endswith("the alert was not sent"), line
    for text in (first.stdout, first.stderr, second.stdout, second.stderr):
        assert secret not in text and "hookuser" not in text
    assert "Traceback" not in second.stderr


def test_a_bad_duration_is_one_line(tmp_path: Path) -> None:
    with providers(tmp_path) as path:
        result = parity("watch", str(path), "--every", "8x", "--db", str(tmp_path / "p.db"))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "parity: error: --every: '8x' is not a duration (like 30s, 15m, 8h, 1d)"
    )
    assert not (tmp_path / "p.db").exists()


def _wait(condition: Any, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 90
    while not condition() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()


def test_sigterm_between_runs_stops_cleanly(tmp_path: Path) -> None:
    db, report = tmp_path / "p.db", tmp_path / "rolling.json"
    with providers(tmp_path) as path:
        args = ["--db", str(db), "--every", "1h", *CHEAP, "--no-conformance", "--json", str(report)]
        proc = subprocess.Popen(
            [*PARITY, "watch", str(path), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        _wait(report.exists, proc)  # written at the end of the first cycle: now it waits
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    [(run_id, status)] = runs(db)
    assert proc.returncode == 143, stderr
    assert status == "finished"
    last = stderr.strip().splitlines()[-1]
    assert last == f"parity: watch stopped between runs after 1 run(s); the last: run {run_id}"


async def _slow(req: Request, reply: Reply) -> None:
    import asyncio

    await asyncio.sleep(0.2)
    await ok(req, reply)


def test_sigint_during_a_run_marks_it_interrupted(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    with ScriptedServer(scenarios={"slow": _slow}) as server:
        path = tmp_path / "providers.toml"
        path.write_text(
            provider_toml("a", server.base("slow"), reference=True, concurrency=1)
            + provider_toml("b", server.base("slow"), concurrency=1)
        )
        proc = subprocess.Popen(
            [*PARITY, "watch", str(path), "--db", str(db), "--once", "--no-conformance"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=sigint_default,
        )

        def started() -> bool:
            try:
                with sqlite3.connect(db) as conn:
                    return bool(conn.execute("SELECT 1 FROM exchanges LIMIT 1").fetchone())
            except sqlite3.Error:
                return False

        _wait(lambda: db.exists() and started(), proc)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    [(run_id, status)] = runs(db)
    assert proc.returncode == 130, stderr
    assert status == "interrupted"
    last = stderr.strip().splitlines()[-1]
    assert last.startswith(f"parity: watch stopped during cycle 1: interrupted: run {run_id}, ")


def test_once_on_a_postgresql_store_appends_and_finds_the_regression(
    tmp_path: Path, pg_url: str
) -> None:
    from tests.postgres import PASSWORD

    args = ["--db", pg_url, "--once", *CHEAP, "--no-conformance", "--json", "-"]
    with providers(tmp_path) as path:
        first = parity("watch", str(path), *args)
        second = parity("watch", str(path), *args)
    assert (first.returncode, second.returncode) == (0, 1), first.stderr + second.stderr
    data = json.loads(second.stdout)
    assert (
        len(data["rolling"]["run_ids"]) == 2 and data["baseline"] == data["rolling"]["run_ids"][0]
    )
    assert {a["metric"] for a in data["alerts"]} >= {"accuracy"}
    for result in (first, second):
        assert PASSWORD not in result.stdout + result.stderr
