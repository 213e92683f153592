"""A bench run in guidellm's terms: its benchmark report JSON and a flat CSV whose columns
carry guidellm's metric and statistic names where they mean the same thing.

One benchmark per provider x workload x load level (guidellm runs one strategy per
benchmark). Each benchmark's `metrics` uses guidellm's `GenerativeMetrics` field names, each
a status breakdown (`successful`, `errored`, `incomplete`, `total`) of a
`DistributionSummary` (`mean`, `median`, `mode`, `variance`, `std_dev`, `min`, `max`,
`count`, `total_sum`, `percentiles` {`p001`, `p01`, `p05`, `p10`, `p25`, `p50`, `p75`,
`p90`, `p95`, `p99`, `p999`}), computed from parity's per-request measurements with
guidellm's definitions and weights (`METRIC_MAP`):

- `request_latency` (seconds): parity's E2E;
- `time_to_first_token_ms`: parity's TTFT (first reasoning or answer token);
- `time_to_first_output_token_ms`: parity's TTFAT (first answer token, after reasoning);
- `inter_token_latency_ms`: (last token chunk - first token chunk) / (output tokens - 1)
  per request, weighted by output tokens - 1 (parity's `itl_ms` percentiles are over the
  chunk gaps instead, so they are not this);
- `time_per_output_token_ms`: (last token chunk - request sent) / output tokens, weighted
  by output tokens (parity's TPOT leaves the first token out, so it is not this);
- `prompt_token_count`, `output_token_count`, `total_token_count`: per request;
- `requests_per_second`, `output_tokens_per_second`, `prompt_tokens_per_second`,
  `tokens_per_second`: rates over the step's span; guidellm keeps a distribution over time,
  parity the whole-span rate, so only `mean` (and `count`) is given;
- `request_totals`: successful (ok), errored, incomplete (always 0: parity stores a cut
  stream as an error), total.

What guidellm has no name for stays under `parity`: per-request output speed (parity's
`output_tokens_per_s`, tokens after the first over the decode time), TPOT, goodput, TTFT
over reasoning. The CSV has one row per benchmark and columns `<metric>_<stat>` over
successful requests (stat one of `CSV_STATS`), e.g. `time_to_first_token_ms_p99`.

`bench_report(store, run_id)` rebuilds a bench run's report (with every request) from the
store; `guidellm_report(report)` and `guidellm_rows(report)` are pure functions of it.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from parity import __version__
from parity.core.errors import ConfigError
from parity.core.store import Store

__all__ = [
    "CSV_STATS",
    "METRIC_MAP",
    "bench_report",
    "distribution",
    "guidellm_report",
    "guidellm_rows",
    "to_guidellm_csv",
    "to_guidellm_json",
    "write_guidellm",
]

PERCENTILES = {
    "p001": 0.001,
    "p01": 0.01,
    "p05": 0.05,
    "p10": 0.1,
    "p25": 0.25,
    "p50": 0.5,
    "p75": 0.75,
    "p90": 0.9,
    "p95": 0.95,
    "p99": 0.99,
    "p999": 0.999,
}
CSV_STATS = ("mean", "median", "std_dev", "min", "max", "p50", "p90", "p95", "p99")
METRIC_MAP: dict[str, str] = {
    "request_latency": "e2e_ms / 1000 (E2E, seconds)",
    "time_to_first_token_ms": "ttft_ms (TTFT)",
    "time_to_first_output_token_ms": "ttfat_ms (TTFAT)",
    "inter_token_latency_ms": "sum(itl_ms) / (output_tokens - 1), weight output_tokens - 1",
    "time_per_output_token_ms": "(ttft_ms + sum(itl_ms)) / output_tokens, weight output_tokens",
    "prompt_token_count": "prompt_tokens (else the local count)",
    "output_token_count": "output_tokens",
    "total_token_count": "prompt + output tokens",
    "requests_per_second": "throughput.requests_per_s (mean only)",
    "output_tokens_per_second": "throughput.output_tokens_per_s (mean only)",
    "prompt_tokens_per_second": "throughput.input_tokens_per_s (mean only)",
    "tokens_per_second": "input + output throughput (mean only)",
}
"""guidellm metric -> what parity measures for it."""

Value = tuple[float, float] | None  # (value, weight)


def distribution(values: Iterable[Value]) -> dict[str, Any]:
    """A guidellm `DistributionSummary` of (value, weight) pairs (None skipped): weighted
    mean, variance and percentiles (the first value whose cumulative weight reaches p), as
    `DistributionSummary.from_values` computes them; all zero when there is no value."""
    pairs = [v for v in values if v is not None and v[1] > 0]
    if not pairs:
        zero = dict.fromkeys(PERCENTILES, 0.0)
        stats = dict.fromkeys(("mean", "median", "mode", "variance", "std_dev", "min", "max"), 0.0)
        return {**stats, "count": 0, "total_sum": 0.0, "percentiles": zero}
    data = np.array(sorted(pairs))
    uniques, inverse = np.unique(data[:, 0], return_inverse=True)
    weights = np.zeros_like(uniques)
    np.add.at(weights, inverse, data[:, 1])
    probabilities = weights / weights.sum()
    cdf = np.cumsum(probabilities)
    last = len(uniques) - 1
    percentiles = {
        k: float(uniques[min(int(np.searchsorted(cdf, p, side="left")), last)])
        for k, p in PERCENTILES.items()
    }
    mean = float(np.sum(uniques * probabilities))
    variance = float(np.sum((uniques - mean) ** 2 * probabilities))
    count = round(float(data[:, 1].sum()))
    return {
        "mean": mean,
        "median": percentiles["p50"],
        "mode": float(uniques[int(np.argmax(probabilities))]),
        "variance": variance,
        "std_dev": variance**0.5,
        "min": float(uniques[0]),
        "max": float(uniques[-1]),
        "count": count,
        "total_sum": mean * count,
        "percentiles": percentiles,
    }


def _rate(value: float | None, count: int) -> dict[str, Any]:
    out = distribution([])
    if value is not None:
        out.update(mean=value, median=value, mode=value, min=value, max=value, count=count)
        out["percentiles"] = dict.fromkeys(PERCENTILES, value)
        out["total_sum"] = value * count
    return out


def _one(value: float | None) -> Value:
    return None if value is None else (float(value), 1.0)


def _itl(m: Mapping[str, Any]) -> Value:
    out, gaps = m.get("output_tokens"), m.get("itl_ms") or []
    if not out or out <= 1 or not gaps:
        return None
    return (sum(gaps) / (out - 1), float(out - 1))


def _tpot(m: Mapping[str, Any]) -> Value:
    out, ttft = m.get("output_tokens"), m.get("ttft_ms")
    if not out or ttft is None:
        return None
    return ((ttft + sum(m.get("itl_ms") or [])) / out, float(out))


def _prompt(m: Mapping[str, Any]) -> int | None:
    value = m.get("prompt_tokens")
    return value if value is not None else m.get("local_prompt_tokens")


def _total(m: Mapping[str, Any]) -> Value:
    prompt, out = _prompt(m), m.get("output_tokens")
    if prompt is None and out is None:
        return None
    return (float((prompt or 0) + (out or 0)), 1.0)


_PER_REQUEST: dict[str, Callable[[Mapping[str, Any]], Value]] = {
    "request_latency": lambda m: _one(m["e2e_ms"] / 1000 if m.get("e2e_ms") is not None else None),
    "time_to_first_token_ms": lambda m: _one(m.get("ttft_ms")),
    "time_to_first_output_token_ms": lambda m: _one(m.get("ttfat_ms")),
    "inter_token_latency_ms": _itl,
    "time_per_output_token_ms": _tpot,
    "prompt_token_count": lambda m: _one(_prompt(m)),
    "output_token_count": lambda m: _one(m.get("output_tokens")),
    "total_token_count": _total,
}


def _status(
    requests: list[dict[str, Any]], fn: Callable[[Mapping[str, Any]], Value]
) -> dict[str, Any]:
    ok = [fn(m) for m in requests if m.get("ok")]
    failed = [fn(m) for m in requests if not m.get("ok")]
    return {
        "successful": distribution(ok),
        "errored": distribution(failed),
        "incomplete": distribution([]),
        "total": distribution(ok + failed),
    }


def _strategy(load: str, level: int | None, figures: Mapping[str, Any]) -> dict[str, Any]:
    if level is not None or (m := re.fullmatch(r"c(\d+)", load)):
        streams = level if level is not None else int(m.group(1))  # type: ignore[union-attr]
        return {"type_": "concurrent", "streams": streams}
    if load == "sequential":
        return {"type_": "synchronous"}
    if m := re.fullmatch(r"poisson([\d.]+)", load):
        return {"type_": "poisson", "rate": float(m.group(1))}
    if m := re.fullmatch(r"gamma([\d.]+)b([\d.]+)", load):
        return {"type_": "gamma", "rate": float(m.group(1)), "burstiness": float(m.group(2))}
    return {"type_": load, **({"rate": figures["asked_rate"]} if "asked_rate" in figures else {})}


def _benchmark(
    report: Mapping[str, Any], provider: Mapping[str, Any], step: Mapping[str, Any]
) -> dict[str, Any]:
    requests: list[dict[str, Any]] = list(step.get("requests") or [])
    agg = step["aggregates"]
    tput = agg.get("throughput") or {}
    ok = int(agg.get("ok", 0))
    total = int(agg.get("requests", len(requests)))
    metrics: dict[str, Any] = {
        "request_totals": {
            "successful": ok,
            "errored": total - ok,
            "incomplete": 0,
            "total": total,
        }
    }
    for name, fn in _PER_REQUEST.items():
        metrics[name] = _status(requests, fn)
    rates = {
        "requests_per_second": tput.get("requests_per_s"),
        "output_tokens_per_second": tput.get("output_tokens_per_s"),
        "prompt_tokens_per_second": tput.get("input_tokens_per_s"),
        "tokens_per_second": None
        if tput.get("output_tokens_per_s") is None
        else (tput.get("output_tokens_per_s") or 0) + (tput.get("input_tokens_per_s") or 0),
    }
    for name, value in rates.items():
        metrics[name] = {
            "successful": _rate(value, ok),
            "errored": distribution([]),
            "incomplete": distribution([]),
            "total": _rate(value, ok),
        }
    workload = step["workload"]
    figures = step.get("load_figures") or {}
    good = agg.get("goodput") or {}
    return {
        "type_": "generative_benchmark",
        "id_": f"{report.get('run')}/{provider['name']}/{workload['workload']}/{step['load']}",
        "run_id": report.get("run"),
        "provider": provider["name"],
        "model": provider.get("model"),
        "base_url": provider.get("base_url"),
        "config": {
            "strategy": _strategy(str(step["load"]), step.get("level"), figures),
            "workload": workload,
            "constraints": {
                k: workload.get(k) for k in ("requests", "duration_s") if workload.get(k)
            },
        },
        "duration": agg.get("span_s"),
        "metrics": metrics,
        "parity": {
            "output_tokens_per_s": agg.get("output_tokens_per_s"),
            "tpot_ms": agg.get("tpot_ms"),
            "itl_ms": agg.get("itl_ms"),
            "ttfat_ms": agg.get("ttfat_ms"),
            "goodput": good,
            "errors": agg.get("errors"),
            "load_figures": figures,
        },
    }


def _benchmarks(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [
        _benchmark(report, provider, step)
        for provider in report.get("providers", [])
        for step in provider.get("steps", [])
    ]


def guidellm_report(report: Mapping[str, Any]) -> dict[str, Any]:
    """The bench report as guidellm's benchmarks report (see the module docstring)."""
    return {
        "metadata": {
            "generator": f"parity {__version__}",
            "schema": "guidellm GenerativeBenchmarksReport field names",
            "metric_map": METRIC_MAP,
        },
        "args": dict(report.get("options") or {}),
        "benchmarks": _benchmarks(report),
    }


def guidellm_rows(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One flat row per benchmark: identity, request counts, and `<metric>_<stat>` over the
    successful requests (stat in `CSV_STATS`; the rates only `_mean`)."""
    rows = []
    for bench in _benchmarks(report):
        strategy = bench["config"]["strategy"]
        row: dict[str, Any] = {
            "run_id": bench["run_id"],
            "provider": bench["provider"],
            "model": bench["model"],
            "workload": bench["config"]["workload"]["workload"],
            "strategy": strategy["type_"],
            "streams": strategy.get("streams"),
            "rate": strategy.get("rate"),
            "duration": bench["duration"],
        }
        totals = bench["metrics"]["request_totals"]
        row.update({f"request_totals_{k}": v for k, v in totals.items()})
        for name in _PER_REQUEST:
            dist = bench["metrics"][name]["successful"]
            for stat in CSV_STATS:
                row[f"{name}_{stat}"] = dist[stat] if stat in dist else dist["percentiles"][stat]
        for name in (
            "requests_per_second",
            "output_tokens_per_second",
            "prompt_tokens_per_second",
            "tokens_per_second",
        ):
            row[f"{name}_mean"] = bench["metrics"][name]["successful"]["mean"]
        rows.append(row)
    return rows


def to_guidellm_json(report: Mapping[str, Any]) -> str:
    """`guidellm_report` as indented JSON."""
    return json.dumps(guidellm_report(report), indent=2, default=str) + "\n"


def to_guidellm_csv(report: Mapping[str, Any]) -> str:
    """`guidellm_rows` as CSV (a header row, then one row per benchmark)."""
    rows = guidellm_rows(report)
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return out.getvalue()


def write_guidellm(
    report: Mapping[str, Any], json_path: Path | None, csv_path: Path | None
) -> list[Path]:
    """Write the JSON and/or CSV form (parents created); returns the paths written."""
    written = []
    for path, render in ((json_path, to_guidellm_json), (csv_path, to_guidellm_csv)):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(render(report), encoding="utf-8")
            written.append(path)
    return written


def bench_report(store: Store, run_id: str) -> dict[str, Any]:
    """A bench run's report rebuilt from the store: each provider's steps (workload, load,
    level, load figures, aggregates) with every measured request. Raises `ConfigError` when
    the run is not a bench run."""
    info = store.run(run_id)
    if info is None:
        raise ConfigError(f"no run {run_id!r} in the store")
    if info.kind != "bench":
        raise ConfigError(f"{run_id} is a {info.kind} run: the guidellm export is of bench runs")
    stored: dict[tuple[str, str], Any] = {}
    order: dict[str, list[str]] = {}
    for provider, pillar, name, value in store.results(run_id):
        if pillar != "speed" or not name.startswith("bench/"):
            continue
        stored[(provider, name)] = value
        if not name.endswith("/requests") and isinstance(value, dict) and "ttft_ms" in value:
            order.setdefault(provider, []).append(name)
    providers = []
    for config in store.providers(run_id):
        name = config["name"]
        steps = []
        for result in order.get(name, []):
            value = stored[(name, result)]
            head = {k: value.get(k) for k in ("workload", "load", "level", "load_figures")}
            aggregates = {k: v for k, v in value.items() if k not in head}
            requests = stored.get((name, result + "/requests")) or []
            steps.append({**head, "aggregates": aggregates, "requests": requests})
        providers.append(
            {
                "name": name,
                "model": config.get("model"),
                "base_url": config.get("base_url"),
                "reachable": config.get("reachable"),
                "steps": steps,
            }
        )
    return {"run": run_id, "options": info.options, "providers": providers}
