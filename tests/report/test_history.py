"""`parity history` and `parity diff` on stores built from synthetic exchanges: providers
whose accuracy, speed, conformance or reachability change from one run to the next."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from parity.accuracy.evaluate import EvalOptions, fixed_requests, load_suite
from parity.accuracy.suites import get_suite
from parity.cli.main import app
from parity.core.config import Provider
from parity.core.errors import ConfigError
from parity.core.exchange import Exchange, Timings
from parity.core.plan import RunOptions, plan_requests
from parity.core.store import Store
from parity.report.history import METRICS, diff, history, history_series

SUITE = get_suite("easy")
INDEX = {p.id: i for i, p in enumerate(SUITE.problems)}
BY_PROMPT = {p.prompt: p for p in SUITE.problems}
OPTIONS = RunOptions(repeats=2, speed_requests=5)
MS = 1_000_000  # nanoseconds


@dataclass(frozen=True)
class Behaviour:
    """How a synthetic provider answers: share of problems right, TTFT, token gap, whether
    its non-streamed responses report usage, whether it answers at all."""

    right: float = 0.9
    ttft_ms: float = 100.0
    gap_ms: float = 20.0
    usage: bool = True
    reachable: bool = True


def provider(name: str, reference: bool = False) -> Provider:
    return Provider(
        name=name,
        base_url=f"http://127.0.0.1:1/{name}/v1",
        model="m",
        reference=reference,
        price_input=0.1,
        price_output=0.4,
        context_window=4096,
    )


def accuracy_reply(body: dict[str, Any], key: str, b: Behaviour) -> Exchange:
    problem = BY_PROMPT[body["messages"][-1]["content"]]
    right = INDEX[problem.id] < b.right * len(SUITE.problems)
    return Exchange(
        request=body,
        stream=False,
        timings=Timings(sent=0, end=5 * MS),
        status=200,
        text=problem.answer if right else "I do not know",
        finish_reason="stop",
        usage={"prompt_tokens": 30, "completion_tokens": 4, "total_tokens": 34},
    )


def speed_reply(body: dict[str, Any], index: int, b: Behaviour, tokens: int = 32) -> Exchange:
    """A stream like perf_counter_ns readings: first token after ttft (+ i ms of jitter),
    then one token every gap (+ i/10 ms)."""
    start = 7_000_000_000_000 + index * 10_000 * MS  # any origin: only differences count
    first = start + int((b.ttft_ms + index) * MS)
    gap = int((b.gap_ms + index / 10) * MS)
    chunks = [first + k * gap for k in range(tokens)]
    return Exchange(
        request=body,
        stream=True,
        timings=Timings(
            sent=start,
            headers=start + MS,
            first_chunk=first,
            first_token_chunk=first,
            first_answer_chunk=first,
            token_chunks=chunks,
            end=chunks[-1] + MS,
        ),
        status=200,
        text="Once upon a time " * 4,
        finish_reason="length",
        usage={"prompt_tokens": 20, "completion_tokens": tokens, "total_tokens": 20 + tokens},
    )


def other_reply(body: dict[str, Any], key: str, stream: bool, b: Behaviour) -> Exchange:
    usage = {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}
    plain_usage = key != "conformance/usage.reported/plain" or b.usage
    return Exchange(
        request=body,
        stream=stream,
        timings=Timings(sent=0, first_token_chunk=MS, token_chunks=[MS, 2 * MS], end=3 * MS),
        status=200,
        text="Red, yellow and blue.",
        finish_reason="stop",
        usage=usage if plain_usage else None,
    )


def make_run(store: Store, behaviours: dict[str, Behaviour], options: RunOptions = OPTIONS) -> str:
    """A finished "run" run; the first provider is the reference."""
    run_id = store.create_run("run", None, options.model_dump(), "test")
    for i, (name, b) in enumerate(behaviours.items()):
        p = provider(name, reference=i == 0)
        store.add_provider(run_id, name, p.public_dict())
        store.set_reachability(
            run_id, name, b.reachable, "1 model(s)" if b.reachable else "refused"
        )
        if not b.reachable:
            continue
        for req in plan_requests(run_id, p, options):
            if req.key.startswith("accuracy/"):
                x = accuracy_reply(req.body, req.key, b)
            elif req.key.startswith("speed/") and req.key != "speed/warmup":
                x = speed_reply(req.body, int(req.key.split("/")[1]), b)
            else:
                x = other_reply(req.body, req.key, req.stream, b)
            store.add_exchange(run_id, name, req.probe, req.key, x)
    store.finish_run(run_id)
    return run_id


def make_eval(store: Store, behaviours: dict[str, Behaviour], repeats: int = 2) -> str:
    """A finished fixed-design "eval" run; the first provider is the reference."""
    options = EvalOptions(adaptive=False, repeats=repeats)
    run_id = store.create_run("eval", None, options.model_dump(), "test")
    requests = fixed_requests(load_suite(options), repeats)
    for i, (name, b) in enumerate(behaviours.items()):
        store.add_provider(run_id, name, provider(name, reference=i == 0).public_dict())
        store.set_reachability(run_id, name, True, "1 model(s)")
        for req in requests:
            store.add_exchange(run_id, name, req.probe, req.key, accuracy_reply(req.body, "", b))
    store.finish_run(run_id)
    return run_id


BASE = {"ref": Behaviour(), "x": Behaviour(), "y": Behaviour(ttft_ms=150)}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    db = tmp_path_factory.mktemp("history") / "p.db"
    with Store(db) as store:
        ids = {
            "a": make_run(store, BASE),
            "same": make_run(store, BASE),
            "accuracy": make_run(store, {**BASE, "x": Behaviour(right=0.5)}),
            "speed": make_run(store, {**BASE, "x": Behaviour(ttft_ms=300, gap_ms=40)}),
            "conformance": make_run(store, {**BASE, "x": Behaviour(usage=False)}),
            "down": make_run(store, {**BASE, "y": Behaviour(reachable=False)}),
        }
    return db, ids


def run_diff(db: Path, a: str, b: str) -> dict[str, Any]:
    with Store(db) as store:
        return diff(store, a, b)


def parity(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "parity", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )


def test_unchanged_runs_have_no_regression(runs: tuple[Path, dict[str, str]]) -> None:
    db, ids = runs
    result = run_diff(db, ids["a"], ids["same"])
    assert result["regressions"] == []
    assert [p["name"] for p in result["providers"]] == ["ref", "x", "y"]
    x = next(p for p in result["providers"] if p["name"] == "x")
    assert x["accuracy"]["diff"] == 0.0 and not x["accuracy"]["regression"]
    assert x["speed"]["ttft_ms"]["change"] == 0.0 and not x["speed"]["ttft_ms"]["regression"]
    assert x["conformance"]["newly_failing"] == []


def test_accuracy_drop_is_a_regression_with_its_interval(
    runs: tuple[Path, dict[str, str]],
) -> None:
    db, ids = runs
    result = run_diff(db, ids["a"], ids["accuracy"])
    x = next(p for p in result["providers"] if p["name"] == "x")
    acc = x["accuracy"]
    assert acc["a"] == pytest.approx(0.9) and acc["b"] == pytest.approx(0.5)
    assert acc["diff"] == pytest.approx(-0.4)
    assert acc["low"] <= -0.4 <= acc["high"] < 0
    assert acc["regression"] and acc["p_value"] < 0.01 and acc["n_problems"] == 80
    lines = [r for r in result["regressions"] if r.startswith("x: accuracy")]
    assert len(lines) == 1
    assert lines[0].startswith("x: accuracy -40.0 points (90.0% -> 50.0%), 95% CI [-")
    assert "p=0.000" in lines[0] and lines[0].endswith("80 problems paired: worse")
    # The verdict against the reference turned degraded, named apart.
    assert any(r.startswith("x: verdict") and "-> degraded" in r for r in result["regressions"])
    # Nobody else regressed.
    assert all(r.startswith("x:") for r in result["regressions"])


def test_speed_regression_from_timings(runs: tuple[Path, dict[str, str]]) -> None:
    db, ids = runs
    result = run_diff(db, ids["a"], ids["speed"])
    x = next(p for p in result["providers"] if p["name"] == "x")
    ttft, toks = x["speed"]["ttft_ms"], x["speed"]["output_tokens_per_s"]
    assert ttft["a_median"] == pytest.approx(102.0) and ttft["b_median"] == pytest.approx(302.0)
    assert ttft["regression"] and ttft["p_value"] < 0.05 and ttft["change"] > 0.1
    assert toks["regression"] and toks["change"] < -0.1
    ttft_line = next(r for r in result["regressions"] if "TTFT" in r)
    assert ttft_line.startswith("x: TTFT median 102.0 -> 302.0 ms (+196%)")
    assert "Mann-Whitney p=0.0079" in ttft_line
    assert not x["accuracy"]["regression"]
    assert {r.split(":")[0] for r in result["regressions"]} == {"x"}


def test_conformance_check_that_flips_is_a_regression(runs: tuple[Path, dict[str, str]]) -> None:
    db, ids = runs
    result = run_diff(db, ids["a"], ids["conformance"])
    x = next(p for p in result["providers"] if p["name"] == "x")
    assert [c["id"] for c in x["conformance"]["newly_failing"]] == ["usage.reported"]
    flip = x["conformance"]["newly_failing"][0]
    assert flip["a"] == "pass" and flip["b"] == "fail"
    assert result["regressions"] == [
        next(r for r in result["regressions"] if "usage.reported" in r)
    ]
    assert "passed in A, fails in B" in result["regressions"][0]
    assert "no usage in the response" in result["regressions"][0]
    # ...and back: a check that passes again is a change, not a regression.
    back = run_diff(db, ids["conformance"], ids["a"])
    assert back["regressions"] == []
    assert any("usage.reported failed in A, passes in B" in c for c in back["changes"])


def test_unreachable_in_b_is_a_regression(runs: tuple[Path, dict[str, str]]) -> None:
    db, ids = runs
    result = run_diff(db, ids["a"], ids["down"])
    assert result["regressions"] == ["y: unreachable in B (refused; reachable in A)"]


def test_eval_runs_diff_by_problem(tmp_path: Path) -> None:
    with Store(tmp_path / "e.db") as store:
        a = make_eval(store, {"ref": Behaviour(), "x": Behaviour()})
        b = make_eval(store, {"ref": Behaviour(), "x": Behaviour(right=0.6)})
        result = diff(store, a, b)
        same = diff(store, a, a)
    assert any(r.startswith("x: accuracy -30.0 points") for r in result["regressions"])
    assert same["regressions"] == []


def test_unknown_run_raises_key_error(runs: tuple[Path, dict[str, str]]) -> None:
    db, ids = runs
    with Store(db) as store, pytest.raises(KeyError):
        diff(store, ids["a"], "nope")


def test_history_rows_series_and_filters(runs: tuple[Path, dict[str, str]]) -> None:
    db, ids = runs
    with Store(db) as store:
        rows = history(store)
        only_x = history(store, provider="x", metric="accuracy")
        series = history_series(store)
        with pytest.raises(ValueError, match="unknown metric"):
            history(store, metric="nope")
    order = list(ids.values())
    assert [r["run_id"] for r in rows] == [i for i in order for _ in range(3)]
    first = rows[1]
    assert first["provider"] == "x" and first["verdict"] in ("equivalent", "inconclusive")
    assert first["accuracy"]["value"] == pytest.approx(0.9)
    assert first["ttft_p50"] == pytest.approx(102.0) and first["tok_s_p50"] > 0
    assert first["conformance"]["judged"] > 0 and first["cost"] > 0
    assert set(METRICS) <= set(first)
    assert [r["run_id"] for r in only_x] == order
    assert set(only_x[0]) == {"run_id", "created_at", "kind", "run_status", "provider"} | {
        "vantage",
        "reference",
        "accuracy",
    }
    assert only_x[2]["accuracy"]["value"] == pytest.approx(0.5)
    assert [s["run_id"] for s in series] == order
    names = [p["name"] for p in series[0]["providers"]]
    assert names == ["ref", "x", "y"]
    down = {p["name"]: p for p in series[-1]["providers"]}["y"]
    assert down["verdict"] == "unreachable" and down["accuracy"] is None
    assert set(series[0]["providers"][1]) >= {"name", "accuracy", "ttft_p50", "tok_s_p50"}


def test_cli_diff_exit_codes(runs: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    db, ids = runs
    out = tmp_path / "diff.json"
    bad = parity("diff", ids["a"], ids["accuracy"], "--db", str(db), "--json", str(out))
    assert bad.returncode == 1, bad.stderr
    assert "regression" in bad.stdout and "x: accuracy -40.0 points" in bad.stdout
    assert json.loads(out.read_text())["regressions"]
    good = CliRunner().invoke(app, ["diff", ids["a"], ids["same"], "--db", str(db)])
    assert good.exit_code == 0, good.output
    assert "no regression" in good.output
    missing = parity("diff", ids["a"], "nope", "--db", str(db))
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [
        f"parity: error: {db}: no run 'nope' (see: parity runs --db {db})"
    ]


def test_cli_history(runs: tuple[Path, dict[str, str]]) -> None:
    db, ids = runs
    cli = CliRunner()
    table = cli.invoke(app, ["history", "--db", str(db)])
    assert table.exit_code == 0, table.output
    assert all(run_id in table.output for run_id in ids.values())
    assert "90% [" in table.output and "50% [" in table.output
    pivot = cli.invoke(app, ["history", "--db", str(db), "--metric", "verdict", "--provider", "x"])
    assert pivot.exit_code == 0, pivot.output
    assert "degraded" in pivot.output and "│ x" not in pivot.output  # x is a column, not a row
    wrong = cli.invoke(app, ["history", "--db", str(db), "--metric", "speed"])
    assert isinstance(wrong.exception, ConfigError) and "unknown metric" in str(wrong.exception)
    nobody = cli.invoke(app, ["history", "--db", str(db), "--provider", "nobody"])
    assert isinstance(nobody.exception, ConfigError)


def test_diff_of_runs_that_sample_no_suite_compares_nothing_and_does_not_crash(
    tmp_path: Path,
) -> None:
    with Store(tmp_path / "p.db") as store:
        a = store.create_run("equiv", None, {"settings": {"model": "m"}, "alpha": 0.05}, "0")
        b = store.create_run("bench", None, {"preset": "quick"}, "0")
        result = diff(store, a, b)
    assert result["regressions"] == [] and result["providers"] == []
