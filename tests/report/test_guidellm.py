"""The guidellm export of a real `parity bench` run against the scripted server (a loopback
HTTP server): guidellm's metric, status and statistic names, its definitions (ITL and TPOT
weighted by tokens, request latency in seconds), the same figures whether written by the
bench or redrawn by `parity report` from the store."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest

from parity.core.store import Store
from parity.report.guidellm import (
    CSV_STATS,
    METRIC_MAP,
    PERCENTILES,
    bench_report,
    distribution,
    guidellm_report,
    to_guidellm_csv,
)
from tests.cli.test_main import parity, provider_toml
from tests.scripted_server import ScriptedServer

# guidellm 0.8 (guidellm/benchmark/schemas/metrics.py GenerativeMetrics and
# guidellm/schemas/base/statistics.py DistributionSummary, Percentiles): the names this
# export shares with it.
GUIDELLM_METRICS = {
    "request_totals",
    "requests_per_second",
    "request_latency",
    "prompt_token_count",
    "output_token_count",
    "total_token_count",
    "time_to_first_token_ms",
    "time_to_first_output_token_ms",
    "time_per_output_token_ms",
    "inter_token_latency_ms",
    "prompt_tokens_per_second",
    "output_tokens_per_second",
    "tokens_per_second",
}
STATUSES = {"successful", "errored", "incomplete", "total"}
DISTRIBUTION = {
    "mean",
    "median",
    "mode",
    "variance",
    "std_dev",
    "min",
    "max",
    "count",
    "total_sum",
    "percentiles",
}
GUIDELLM_PERCENTILES = {"p001", "p01", "p05", "p10", "p25", "p50", "p75", "p90", "p95", "p99"}


def test_distribution_is_guidellms_weighted_summary() -> None:
    plain = distribution([(v, 1.0) for v in (1.0, 2.0, 3.0, 4.0)])
    assert plain["mean"] == 2.5 and plain["median"] == 2.0 and plain["count"] == 4
    assert plain["percentiles"]["p99"] == 4.0 and plain["percentiles"]["p25"] == 1.0
    assert plain["variance"] == pytest.approx(1.25) and plain["total_sum"] == 10.0
    # a value weighted 3 counts three times (ITL weighted by output tokens - 1)
    weighted = distribution([(10.0, 3.0), (20.0, 1.0)])
    assert weighted["mean"] == 12.5 and weighted["median"] == 10.0 and weighted["count"] == 4
    assert weighted["mode"] == 10.0 and weighted["percentiles"]["p90"] == 20.0
    empty = distribution([None])
    assert empty["count"] == 0 and empty["mean"] == 0.0 and set(empty) == DISTRIBUTION
    assert set(PERCENTILES) >= GUIDELLM_PERCENTILES


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("guidellm")
    with ScriptedServer() as server:
        path = tmp / "providers.toml"
        path.write_text(provider_toml("a", server.base("ok"), reference=True))
        db = tmp / "p.db"
        result = parity(
            "bench",
            str(path),
            "--db",
            str(db),
            "--out",
            str(tmp / "out"),
            "--workload",
            "100",
            "--load",
            "sequential",
            "--load",
            "c2",
            "--requests",
            "4",
            "--warmup",
            "0",
            "--guidellm-json",
            str(tmp / "bench.json"),
            "--guidellm-csv",
            str(tmp / "bench.csv"),
        )
        assert result.returncode == 0, result.stderr
    with Store(db) as store:
        run_id = store.runs()[0].id
    again = parity(
        "report",
        run_id,
        "--db",
        str(db),
        "--guidellm-json",
        str(tmp / "again.json"),
        "--guidellm-csv",
        str(tmp / "again.csv"),
    )
    assert again.returncode == 0, again.stderr
    native = json.loads((tmp / "out" / f"{run_id}.json").read_text())
    return {"tmp": tmp, "db": db, "run": run_id, "native": native}


def test_benchmarks_carry_guidellms_names(bench: dict[str, Any]) -> None:
    report = json.loads((bench["tmp"] / "bench.json").read_text())
    assert set(report) == {"metadata", "args", "benchmarks"}
    benchmarks = report["benchmarks"]
    assert [b["config"]["strategy"] for b in benchmarks] == [
        {"type_": "synchronous"},
        {"type_": "concurrent", "streams": 2},
    ]
    for b in benchmarks:
        assert b["type_"] == "generative_benchmark" and b["provider"] == "a"
        metrics = b["metrics"]
        assert set(metrics) == GUIDELLM_METRICS and set(METRIC_MAP) == GUIDELLM_METRICS - {
            "request_totals"
        }
        assert metrics["request_totals"] == {
            "successful": 4,
            "errored": 0,
            "incomplete": 0,
            "total": 4,
        }
        for name in GUIDELLM_METRICS - {"request_totals"}:
            assert set(metrics[name]) == STATUSES, name
            assert set(metrics[name]["successful"]) == DISTRIBUTION, name
            assert set(metrics[name]["successful"]["percentiles"]) >= GUIDELLM_PERCENTILES


def test_figures_follow_guidellms_definitions(bench: dict[str, Any]) -> None:
    report = json.loads((bench["tmp"] / "bench.json").read_text())
    step = bench["native"]["providers"][0]["steps"][0]
    requests = [m for m in step["requests"] if m["ok"]]
    metrics = report["benchmarks"][0]["metrics"]
    ttft = metrics["time_to_first_token_ms"]["successful"]
    assert ttft["count"] == len(requests) == 4
    assert ttft["mean"] == pytest.approx(sum(m["ttft_ms"] for m in requests) / 4)
    assert ttft["max"] == pytest.approx(max(m["ttft_ms"] for m in requests))
    latency = metrics["request_latency"]["successful"]
    assert latency["mean"] == pytest.approx(sum(m["e2e_ms"] for m in requests) / 4 / 1000)
    itl = metrics["inter_token_latency_ms"]["successful"]
    decode = sum(sum(m["itl_ms"]) for m in requests)
    assert itl["count"] == sum(m["output_tokens"] - 1 for m in requests)
    assert itl["mean"] == pytest.approx(decode / itl["count"])  # token-weighted
    tpot = metrics["time_per_output_token_ms"]["successful"]
    assert tpot["count"] == sum(m["output_tokens"] for m in requests)
    assert tpot["mean"] == pytest.approx(
        (sum(m["ttft_ms"] for m in requests) + decode) / tpot["count"]
    )
    throughput = step["aggregates"]["throughput"]
    rps = metrics["requests_per_second"]["successful"]
    assert rps["mean"] == pytest.approx(throughput["requests_per_s"])
    out = metrics["output_tokens_per_second"]["successful"]
    assert out["mean"] == pytest.approx(throughput["output_tokens_per_s"])
    parity_speed = report["benchmarks"][0]["parity"]["output_tokens_per_s"]
    assert parity_speed["p50"] == step["aggregates"]["output_tokens_per_s"]["p50"]


def test_csv_columns_and_the_store_redraws_the_same(bench: dict[str, Any]) -> None:
    tmp = bench["tmp"]
    text = (tmp / "bench.csv").read_text()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 2
    columns = set(rows[0])
    for metric in ("time_to_first_token_ms", "inter_token_latency_ms", "request_latency"):
        assert {f"{metric}_{stat}" for stat in CSV_STATS} <= columns
    assert {"output_tokens_per_second_mean", "requests_per_second_mean"} <= columns
    assert rows[1]["strategy"] == "concurrent" and rows[1]["streams"] == "2"
    assert float(rows[0]["time_to_first_token_ms_p99"]) > 0
    # parity report RUN --guidellm-* redraws the very same figures from the store
    assert (tmp / "again.csv").read_text() == text
    first = json.loads((tmp / "bench.json").read_text())
    again = json.loads((tmp / "again.json").read_text())
    assert again["benchmarks"] == first["benchmarks"]
    with Store(bench["db"]) as store:
        rebuilt = bench_report(store, bench["run"])
    assert to_guidellm_csv(rebuilt) == text
    assert guidellm_report(rebuilt)["benchmarks"] == first["benchmarks"]


def test_report_of_a_bench_run_refuses_eval_exports(bench: dict[str, Any]) -> None:
    result = parity(
        "report", bench["run"], "--db", str(bench["db"]), "--lm-eval", str(bench["tmp"] / "x")
    )
    assert result.returncode == 2
    assert "bench run: the inspect_ai and lm-eval exports are of parity eval runs" in (
        result.stderr
    )
