"""`parity eval` end to end against scripted providers with known skill (a real HTTP server on
loopback that answers the easy suite correctly with a set probability, seeded by the
request's seed): verdicts, adaptive savings, replay, cache, resume."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import pytest

from parity.accuracy.probe import DEFAULT_REFERENCE_REPEATS
from parity.accuracy.suites import get_suite
from tests.cli.test_main import parity, provider_toml
from tests.scripted_server import Reply, Request, ScriptedServer, completion

EASY = {p.prompt: p.answer for p in get_suite("easy").problems}


def skilled(p_correct: float):  # type: ignore[no-untyped-def]
    async def handler(req: Request, reply: Reply) -> None:
        body = req.json()
        question = body["messages"][-1]["content"]
        rng = random.Random(f"{body.get('seed')}-{p_correct}")
        right = EASY.get(question, "?")
        text = f"The answer is {right}." if rng.random() < p_correct else "I am not sure."
        usage = {"prompt_tokens": 20, "completion_tokens": 6, "total_tokens": 26}
        await reply.send(200, {**completion({"content": text}), "usage": usage})

    return handler


SCENARIOS = {"good": skilled(0.9), "good2": skilled(0.9), "bad": skilled(0.3)}


def providers_file(server: ScriptedServer, tmp_path: Path) -> Path:
    path = tmp_path / "providers.toml"
    path.write_text(
        provider_toml("ref", server.base("good"), reference=True, concurrency=8)
        + provider_toml("twin", server.base("good2"), concurrency=8)
        + provider_toml("lossy", server.base("bad"), concurrency=8)
    )
    return path


def load(path: Path) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in json.loads(path.read_text())["providers"]}


@pytest.fixture(scope="module")
def adaptive_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, int]]:
    tmp = tmp_path_factory.mktemp("eval")
    with ScriptedServer(scenarios=SCENARIOS) as server:
        path = providers_file(server, tmp)
        db, out = tmp / "p.db", tmp / "eval.json"
        result = parity("eval", str(path), "--db", str(db), "--json", str(out), "--cache")
        assert result.returncode == 1, result.stdout + result.stderr  # lossy is degraded
        counts = {s: server.count(s) for s in SCENARIOS}
        again = parity(
            "eval", str(path), "--db", str(db), "--json", str(tmp / "again.json"), "--cache"
        )
        assert again.returncode == 1
        counts_after = {s: server.count(s) for s in SCENARIOS}
    assert counts_after == counts, "a cached rerun must not send anything"
    return db, out, counts


def test_adaptive_verdicts_and_savings(adaptive_run: tuple[Path, Path, dict[str, int]]) -> None:
    _, out, counts = adaptive_run
    found = load(out)
    assert found["lossy"]["vs_reference"]["verdict"] == "degraded"
    assert found["twin"]["vs_reference"]["verdict"] in ("equivalent", "no difference found")
    lossy = found["lossy"]
    assert lossy["samples"] < lossy["fixed_design_samples"] == 80 * 4
    assert lossy["tokens"] < lossy["fixed_design_tokens"]
    assert lossy["stop_reason"] == "decided"
    assert "confidence sequence" in lossy["vs_reference"]["method"]
    # The reference is sampled DEFAULT_REFERENCE_REPEATS times per pair and shared by every
    # provider.
    assert counts["good"] == found["ref"]["samples"]
    assert found["ref"]["samples"] == DEFAULT_REFERENCE_REPEATS * max(
        found["twin"]["samples"], lossy["samples"]
    )
    acc = lossy["accuracy"]
    assert acc["low"] <= acc["value"] <= acc["high"] and acc["value"] < 0.5


def test_adaptive_verdicts_are_corrected_across_providers(
    adaptive_run: tuple[Path, Path, dict[str, int]],
) -> None:
    found = load(adaptive_run[1])
    for name in ("twin", "lossy"):
        vs = found[name]["vs_reference"]
        assert vs["correction"] == "bonferroni" and vs["family"] == 2 and vs["alpha"] == 0.05
        assert vs["confidence"] == pytest.approx(1 - 0.05 / 2)
        assert vs["p_value"] >= vs["p_unadjusted"]
        assert (vs["p_value"] < 0.05) == (vs["high"] < 0 or vs["low"] > 0)
    assert found["lossy"]["vs_reference"]["p_value"] < 0.05


def test_report_replays_the_same_decisions(adaptive_run: tuple[Path, Path, dict[str, int]]) -> None:
    db, out, _ = adaptive_run
    runs = json.loads(out.read_text())["run"]
    redo = out.parent / "redo.json"
    result = parity("report", runs, "--db", str(db), "--json", str(redo))
    assert result.returncode == 0, result.stderr
    assert load(redo) == load(out)


def test_resume_of_a_finished_eval_sends_nothing(tmp_path: Path) -> None:
    with ScriptedServer(scenarios=SCENARIOS) as server:
        path = providers_file(server, tmp_path)
        db = tmp_path / "p.db"
        first = parity(
            "eval",
            str(path),
            "--db",
            str(db),
            "--suite",
            "easy:20",
            "--fixed",
            "--repeats",
            "3",
            "--json",
            str(tmp_path / "a.json"),
        )
        assert first.returncode == 1, first.stderr
        sent = sum(server.count(s) for s in SCENARIOS)
        run_id = json.loads((tmp_path / "a.json").read_text())["run"]
        again = parity(
            "eval", "--resume", run_id, "--db", str(db), "--json", str(tmp_path / "b.json")
        )
        # Each provider 20 x 3, the reference DEFAULT_REFERENCE_REPEATS times as many.
        assert sum(server.count(s) for s in SCENARIOS) == sent
        assert sent == (2 + DEFAULT_REFERENCE_REPEATS) * 20 * 3
    assert load(tmp_path / "a.json") == load(tmp_path / "b.json")
    fixed = load(tmp_path / "a.json")
    assert fixed["lossy"]["design"] == "fixed" and fixed["lossy"]["samples"] == 60
    assert fixed["lossy"]["vs_reference"]["p_value"] is not None
    assert len(fixed["ref"]["suite_scores_by_repeat"]) == 3 * DEFAULT_REFERENCE_REPEATS
    assert set(fixed["ref"]["pass_at_k"]) == {"1", "2", "3"}
    assert again.returncode == 1


def test_resume_of_a_run_command_is_refused_by_eval(tmp_path: Path) -> None:
    with ScriptedServer(scenarios=SCENARIOS) as server:
        path = providers_file(server, tmp_path)
        db = tmp_path / "p.db"
        parity(
            "run",
            str(path),
            "--db",
            str(db),
            "--repeats",
            "1",
            "--no-conformance",
            "--speed-requests",
            "0",
        )
    import sqlite3

    (run_id,) = sqlite3.connect(db).execute("SELECT id FROM runs").fetchone()
    result = parity("eval", "--resume", run_id, "--db", str(db))
    assert result.returncode == 2 and "parity run" in result.stderr


def test_unknown_suite_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "providers.toml"
    path.write_text(provider_toml("a", "http://127.0.0.1:9/v1"))
    result = parity("eval", str(path), "--suite", "nope", "--db", str(tmp_path / "p.db"))
    assert result.returncode == 2
    assert re.search(r"unknown suite 'nope'", result.stderr)
    assert len(result.stderr.strip().splitlines()) == 1
