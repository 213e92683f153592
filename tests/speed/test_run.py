"""`parity bench` end to end on the scripted server: a good provider, one that refuses long
prompts, one that is down; everything stored, printed and written; no crash."""

from __future__ import annotations

import asyncio
import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from parity.cli.bench import bench
from parity.core.config import Provider
from parity.core.store import Store
from parity.speed.chart import Point, speed_price_svg
from parity.speed.load import arrival_times, parse_load
from parity.speed.plan import Step
from parity.speed.price import accuracy_cost, measured_cost
from parity.speed.run import BenchSettings, run_bench
from parity.speed.tokenizer import TokenizerChoice, choose_tokenizer
from parity.speed.workloads import parse_workload
from tests.scripted_server import (
    Reply,
    Request,
    ScriptedServer,
    chunk,
    error_body,
    unused_port,
    usage_chunk,
)


async def steady(req: Request, reply: Reply) -> None:
    """Streams the requested number of tokens (at most 12), reasoning first, then answer."""
    body = req.json()
    n = min(int(body["max_tokens"]), 12)
    await reply.start()
    await reply.event(chunk({"role": "assistant", "content": ""}))
    for i in range(n):
        await asyncio.sleep(0.001)
        delta = {"reasoning_content": "hm"} if i < 2 else {"content": f" w{i}"}
        await reply.event(chunk(delta))
    await reply.event(chunk({}, "length"))
    await reply.event(
        usage_chunk(prompt=len(body["messages"][0]["content"].split()), completion_tokens=n)
    )
    await reply.done()


async def short_context(req: Request, reply: Reply) -> None:
    """Serves short prompts; refuses long ones with HTTP 400, as a small-context server."""
    body = req.json()
    if len(body["messages"][0]["content"].split()) > 500:
        await reply.send(400, error_body("Requested tokens exceed context window of 1024"))
        return
    await steady(req, reply)


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer(scenarios={"steady": steady, "short": short_context}) as running:
        yield running


def providers_toml(server: ScriptedServer, path: Path) -> Path:
    path.write_text(
        f"""
[[provider]]
name = "good"
base_url = "{server.base("steady")}"
model = "m"
price_input = 1.0
price_output = 4.0

[[provider]]
name = "short"
base_url = "{server.base("short")}"
model = "m"
price_input = 0.5
price_output = 2.0

[[provider]]
name = "down"
base_url = "http://127.0.0.1:{unused_port()}/v1"
model = "m"
""",
        encoding="utf-8",
    )
    return path


def steps() -> list[Step]:
    return [
        Step(parse_workload("100/8"), parse_load("c2"), requests=4, warmup=1),
        Step(parse_workload("1k/8"), parse_load("sequential"), requests=2, warmup=0),
        Step(parse_workload("100/4"), parse_load("sweep:2"), requests=2, warmup=0),
    ]


async def test_run_bench_classifies_failures_and_stores_everything(
    server: ScriptedServer, tmp_path: Path
) -> None:
    providers = [
        Provider(
            name="good", base_url=server.base("steady"), model="m", price_input=1, price_output=4
        ),
        Provider(name="short", base_url=server.base("short"), model="m"),
        Provider(name="down", base_url=f"http://127.0.0.1:{unused_port()}/v1", model="m"),
    ]
    with Store(tmp_path / "p.db") as store:
        run_id = store.create_run("bench", None, {}, "test")
        report = await run_bench(
            store,
            run_id,
            providers,
            BenchSettings(steps=steps(), slos=[]),
            TokenizerChoice(None, None, "no local tokenizer"),
        )
        by_name = {p["name"]: p for p in report["providers"]}
        good = {(s["workload"]["workload"], s["load"]): s for s in by_name["good"]["steps"]}
        short = {(s["workload"]["workload"], s["load"]): s for s in by_name["short"]["steps"]}
        agg = good[("100x8", "c2")]["aggregates"]
        assert agg["ok"] == 4 and agg["errors"] == {}
        assert good[("100x8", "c2")]["load_figures"]["max_in_flight"] == 2
        assert agg["output_tokens"]["mean"] == 8 and agg["output_tokens_from"] == ["usage"]
        assert agg["reasoning_tokens"]["mean"] == 2 and agg["answer_tokens"]["mean"] == 6
        assert agg["ttft_ms"]["count"] == 4 and agg["ttfat_ms"]["p50"] >= agg["ttft_ms"]["p50"]
        # the long workload: refused by "short", classified, not a crash
        long_short = short[("1000x8", "sequential")]["aggregates"]
        assert long_short["ok"] == 0 and long_short["errors"] == {"http_4xx": 2}
        assert long_short["error_rate"] == {"http_4xx": 1.0}
        assert "context window" in long_short["error_details"][0]
        assert short[("100x8", "c2")]["aggregates"]["ok"] == 4
        # the sweep: one level per concurrency, and a table
        assert [s["level"] for s in by_name["good"]["steps"] if s["level"]] == [1, 2]
        assert [r["concurrency"] for r in by_name["good"]["sweeps"][0]["rows"]] == [1, 2]
        assert by_name["down"]["reachable"] is False and by_name["down"]["steps"] == []
        # price: list, measured from usage (warmup included), effective $/1M output
        price = by_name["good"]["price"]
        assert price["list"] == {"input": 1.0, "output": 4.0, "blended": 1.75}
        measured = price["measured"]
        assert measured["cost_from"] == "usage" and measured["requests"] == 4 + 1 + 2 + 2 + 4
        assert measured["cost_usd"] == pytest.approx(
            (measured["input_tokens"] * 1 + measured["output_tokens"] * 4) / 1e6
        )
        assert by_name["short"]["price"]["measured"]["requests"] == 4 + 1 + 2 + 4  # 400s unbilled
        # stored: every exchange under its key, aggregates and prices as results
        keys = {x.key for x in store.exchanges(run_id, "good")}
        assert "bench/100x8/c2/warmup-0" in keys and "bench/100x8/c2/3" in keys
        assert "bench/100x4/sweep2-c2/3" in keys and len(keys) == 13
        results = {(p, pil, n) for p, pil, n, _ in store.results(run_id)}
        assert ("good", "speed", "bench/100x8/c2") in results
        assert ("good", "speed", "bench/100x8/c2/requests") in results
        assert ("short", "price", "bench") in results
        assert ("good", "speed", "bench/100x4/sweep2") in results


def test_cli_prints_tables_and_writes_json_csv_svg(server: ScriptedServer, tmp_path: Path) -> None:
    app = typer.Typer()
    app.command("bench")(bench)
    app.command("other")(lambda: None)
    providers = providers_toml(server, tmp_path / "providers.toml")
    result = CliRunner().invoke(
        app,
        [
            "bench",
            str(providers),
            "--workload",
            "100/6",
            "--workload",
            "1k/6",
            "--load",
            "sequential",
            "--requests",
            "2",
            "--warmup",
            "0",
            "--slo",
            "ttft<=5s",
            "--tokenizer",
            "none",
            "--db",
            str(tmp_path / "b.db"),
            "--out",
            str(tmp_path / "out"),
            "--detail",
        ],
        env={"COLUMNS": "250"},
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "100x6 (100 in / 6 out), sequential" in out and "1000x6" in out
    assert "2 http_4xx" in out and "unreachable" in out and "blended 3:1" in out
    assert "goodput" in out and "100%" in out
    files = sorted((tmp_path / "out").iterdir())
    assert [f.suffix for f in files] == [".csv", ".json", ".svg"]
    report = json.loads(files[1].read_text())
    assert report["options"]["slos"] == ["ttft<=5s"]
    rows = list(csv.DictReader(files[0].open()))
    assert len(rows) == 2 * 2 * 2  # providers that answered x workloads x requests
    assert {r["error"] for r in rows if r["provider"] == "short"} == {"", "http_4xx"}
    svg = files[2].read_text()
    assert svg.startswith("<svg") and "good" in svg and "short" in svg
    with Store(tmp_path / "b.db") as store:
        run = store.latest_run()
        assert run is not None and run.kind == "bench" and run.status == "finished"


def test_cli_rejects_bad_options(tmp_path: Path, server: ScriptedServer) -> None:
    app = typer.Typer()
    app.command("bench")(bench)
    app.command("other")(lambda: None)
    providers = providers_toml(server, tmp_path / "providers.toml")
    for args in (
        ["--load", "warp"],
        ["--workload", "huge"],
        ["--slo", "ttft=1"],
        ["--only", "nobody"],
    ):
        result = CliRunner().invoke(
            app, ["bench", str(providers), *args, "--db", str(tmp_path / "x.db")]
        )
        assert result.exit_code != 0


def test_measured_cost_falls_back_to_estimates() -> None:
    p = Provider(name="p", base_url="http://x/v1", model="m", price_input=2, price_output=8)
    cost = measured_cost(p, [(100, 10, None, None), (None, None, 50, 5)])
    assert cost.cost_from == "usage+estimate" and cost.requests_with_usage == 1
    assert cost.input_tokens == 150 and cost.output_tokens == 15
    assert cost.cost_usd == pytest.approx((150 * 2 + 15 * 8) / 1e6)
    assert cost.usd_per_1m_output == pytest.approx(cost.cost_usd / 15 * 1e6)
    assert measured_cost(p, []).cost_usd is None
    free = Provider(name="f", base_url="http://x/v1", model="m")
    assert measured_cost(free, [(1, 1, None, None)]).cost_usd is None


def test_cost_per_correct_from_a_stored_eval(tmp_path: Path) -> None:
    p = Provider(name="p", base_url="http://x/v1", model="m", price_input=1, price_output=1)
    with Store(tmp_path / "s.db") as store:
        assert accuracy_cost(store, p) is None
        run = store.create_run("eval", None, {}, "t")
        store.add_provider(run, "p", p.public_dict())
        result: dict[str, Any] = {
            "suite": "easy",
            "samples": 40,
            "cost_usd": 0.02,
            "accuracy": {"value": 0.25, "n_samples": 40},
        }
        store.put_result(run, "p", "accuracy", "eval", result)
        found = accuracy_cost(store, p)
        assert found is not None and found["run"] == run and found["correct"] == 10
        assert found["cost_per_correct_usd"] == pytest.approx(0.002)
        other = p.model_copy(update={"model": "another"})
        assert accuracy_cost(store, other) is None  # same name, different model: not it


def test_chart_has_one_point_per_provider() -> None:
    svg = speed_price_svg([Point("a", 0.15, 55.0), Point("b & c", 0.04, 70.0)], "t", "s")
    assert svg.count("<circle") == 2 and "b &amp; c" in svg and "most attractive" in svg
    assert "nothing to plot" not in svg
    assert "no provider" in speed_price_svg([], "t")


def test_tokenizer_choice_degrades_gracefully(tmp_path: Path) -> None:
    assert choose_tokenizer("none").tokenizer is None
    missing = choose_tokenizer(str(tmp_path / "nope.gguf"))
    assert missing.tokenizer is None and missing.note.startswith("no local tokenizer")
    auto = choose_tokenizer("auto")
    if auto.tokenizer is not None:  # with the local extra: the fleet model's own tokenizer
        assert auto.for_model("smollm2-135m-instruct") is auto.tokenizer
        assert auto.for_model("other") is None
        assert auto.tokenizer.count_text("hello world") == 2
        prompt = auto.tokenizer.count_prompt([{"role": "user", "content": "hello world"}])
        assert prompt is not None and prompt > 2


async def test_open_loop_step_reports_asked_and_achieved_rate(
    server: ScriptedServer, tmp_path: Path
) -> None:
    provider = Provider(name="good", base_url=server.base("steady"), model="m")
    step = Step(parse_workload("100/2"), parse_load("gamma:40:0.5"), requests=6, warmup=0)
    with Store(tmp_path / "p.db") as store:
        run_id = store.create_run("bench", None, {}, "test")
        report = await run_bench(
            store,
            run_id,
            [provider],
            BenchSettings(steps=[step], seed=4),
            TokenizerChoice(None, None, "none"),
        )
    (result,) = report["providers"][0]["steps"]
    figures = result["load_figures"]
    assert result["load"] == "gamma40b0.5" and figures["mode"] == "rate"
    assert figures["asked_rate"] == 40
    assert figures["schedule_rate"] == pytest.approx(
        5 / arrival_times(40, 6, arrival="gamma", burstiness=0.5, seed=4)[-1]
    )
    assert figures["achieved_rate"] is not None and result["aggregates"]["ok"] == 6
    starts = [m["scheduled_s"] for m in result["requests"]]
    assert starts == pytest.approx(arrival_times(40, 6, arrival="gamma", burstiness=0.5, seed=4))
