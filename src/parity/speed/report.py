"""What `parity bench` prints and writes: terminal tables, JSON, CSV and the chart.

Everything here is a function of the report dict that `run_bench` returns (and stores), so
it can be redrawn from the store.
"""

from __future__ import annotations

import csv
import json
import statistics
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from parity.report.format import duration, grouped, pct, signed_pct, usd
from parity.speed.chart import Point, speed_price_svg

__all__ = [
    "chart_points",
    "print_report",
    "write_csv",
    "write_json",
    "write_svg",
]


def _errors(agg: dict[str, Any]) -> str:
    if not agg["errors"]:
        return "0"
    return " ".join(f"{n} {cls}" for cls, n in agg["errors"].items())


def _steps(report: dict[str, Any]) -> list[tuple[str, str, int | None]]:
    """(workload, load, level) in the order they ran."""
    seen: list[tuple[str, str, int | None]] = []
    for provider in report["providers"]:
        for step in provider["steps"]:
            ident = (step["workload"]["workload"], step["load"], step["level"])
            if ident not in seen:
                seen.append(ident)
    return seen


def _find(provider: dict[str, Any], ident: tuple[str, str, int | None]) -> dict[str, Any] | None:
    for step in provider["steps"]:
        if (step["workload"]["workload"], step["load"], step["level"]) == ident:
            found: dict[str, Any] = step
            return found
    return None


def speed_table(report: dict[str, Any], ident: tuple[str, str, int | None]) -> Table:
    """Speed of every provider for one workload x load: latencies, speeds, throughput."""
    workload, load, _level = ident
    sample = next(s for p in report["providers"] if (s := _find(p, ident)))
    w = sample["workload"]
    title = (
        f"{workload} ({grouped(w['input_tokens'])} in / {grouped(w['output_tokens'])} out), {load}"
    )
    table = Table(title=title, title_justify="left")
    for name, justify in [
        ("provider", "left"),
        ("ok", "right"),
        ("TTFT p50", "right"),
        ("p90", "right"),
        ("p99", "right"),
        ("TTFAT p50", "right"),
        ("tok/s p50", "right"),
        ("TPOT p50", "right"),
        ("ITL p50", "right"),
        ("ITL p99", "right"),
        ("E2E p50", "right"),
        ("E2E p99", "right"),
        ("req/s", "right"),
        ("out tok/s", "right"),
        ("goodput", "right"),
        ("errors", "right"),
    ]:
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for provider in report["providers"]:
        step = _find(provider, ident)
        if step is None:
            table.add_row(provider["name"], "-", *(["-"] * 13), "unreachable")
            continue
        agg = step["aggregates"]
        tput = agg["throughput"]
        good = agg["goodput"]
        goodput = pct(good["fraction"]) if good["slos"] else "-"
        table.add_row(
            provider["name"],
            f"{agg['ok']}/{agg['requests']}",
            duration(agg["ttft_ms"]["p50"]),
            duration(agg["ttft_ms"]["p90"]),
            duration(agg["ttft_ms"]["p99"]),
            duration(agg["ttfat_ms"]["p50"]),
            grouped(agg["output_tokens_per_s"]["p50"], 1),
            duration(agg["tpot_ms"]["p50"]),
            duration(agg["itl_ms"]["p50"]),
            duration(agg["itl_ms"]["p99"]),
            duration(agg["e2e_ms"]["p50"]),
            duration(agg["e2e_ms"]["p99"]),
            grouped(tput["requests_per_s"], 2),
            grouped(tput["output_tokens_per_s"], 1),
            goodput,
            _errors(agg),
        )
    return table


def tokens_table(report: dict[str, Any], ident: tuple[str, str, int | None]) -> Table:
    """Asked vs achieved lengths, reasoning vs answer, server vs local token counts."""
    workload, load, _level = ident
    table = Table(title=f"tokens: {workload}, {load}", title_justify="left")
    for name in [
        "provider",
        "in asked",
        "in mean",
        "out asked",
        "out mean",
        "out from",
        "reasoning mean",
        "answer mean",
        "out server/local",
        "out Δ",
        "in server/local",
        "in Δ",
    ]:
        table.add_column(name, justify="left" if name == "provider" else "right")
    for provider in report["providers"]:
        step = _find(provider, ident)
        if step is None:
            continue
        agg = step["aggregates"]
        w = step["workload"]
        tok = agg["tokens"]
        local = provider.get("tokenizer")
        table.add_row(
            provider["name"],
            grouped(w["input_tokens"]),
            grouped(agg["input_tokens"]["mean"], 0),
            grouped(w["output_tokens"]),
            grouped(agg["output_tokens"]["mean"], 0),
            ",".join(agg["output_tokens_from"]) or "-",
            grouped(agg["reasoning_tokens"]["mean"], 0),
            grouped(agg["answer_tokens"]["mean"], 0),
            f"{tok['server_output']}/{tok['local_output']}" if local and agg["ok"] else "-",
            signed_pct(tok["output_mismatch"]),
            f"{tok['server_input']}/{tok['local_input']}"
            if local and tok["server_input"] is not None
            else "-",
            signed_pct(tok["input_mismatch"]),
        )
    return table


def price_table(report: dict[str, Any]) -> Table:
    """List prices, the bench's measured cost, effective $/1M output, $/correct answer."""
    table = Table(title="price ($ per 1M tokens)", title_justify="left")
    for name in [
        "provider",
        "input",
        "output",
        "blended 3:1",
        "bench cost",
        "cost from",
        "eff. $/1M out",
        "accuracy",
        "$/correct",
    ]:
        table.add_column(name, justify="left" if name in ("provider", "cost from") else "right")
    for provider in report["providers"]:
        price = provider["price"]
        listed = price["list"]
        measured = price["measured"]
        acc = price.get("accuracy")
        table.add_row(
            provider["name"],
            usd(listed["input"]),
            usd(listed["output"]),
            usd(listed["blended"]),
            usd(measured["cost_usd"]),
            measured["cost_from"],
            usd(measured["usd_per_1m_output"]),
            f"{pct(acc['accuracy'])} ({acc['suite']})" if acc else "-",
            usd(acc["cost_per_correct_usd"]) if acc else "-",
        )
    return table


def sweep_table(report: dict[str, Any]) -> Table | None:
    """Throughput against latency for every sweep: one row per provider x concurrency."""
    rows = [(p["name"], s) for p in report["providers"] for s in p["sweeps"]]
    if not rows:
        return None
    table = Table(title="concurrency sweep: throughput vs latency", title_justify="left")
    for name in [
        "provider",
        "workload",
        "concurrency",
        "ok",
        "req/s",
        "out tok/s",
        "tok/s/req p50",
        "TTFT p50",
        "TTFT p99",
        "E2E p50",
        "errors",
    ]:
        table.add_column(name, justify="left" if name in ("provider", "workload") else "right")
    for name, sweep in rows:
        for row in sweep["rows"]:
            table.add_row(
                name,
                sweep["workload"],
                str(row["concurrency"]),
                f"{row['ok']}/{row['requests']}",
                grouped(row["requests_per_s"], 2),
                grouped(row["output_tokens_per_s"], 1),
                grouped(row["speed_p50"], 1),
                duration(row["ttft_p50_ms"]),
                duration(row["ttft_p99_ms"]),
                duration(row["e2e_p50_ms"]),
                pct(row["error_rate"]),
            )
    return table


_STATS = ("count", "mean", "p50", "p90", "p99", "min", "max")
_METRICS = ("ttft_ms", "ttfat_ms", "output_tokens_per_s", "tpot_ms", "itl_ms", "e2e_ms")


def detail_table(report: dict[str, Any], ident: tuple[str, str, int | None]) -> Table:
    """Every statistic of every metric for one workload x load."""
    table = Table(title=f"detail: {ident[0]}, {ident[1]}", title_justify="left")
    table.add_column("provider")
    table.add_column("metric")
    for stat in _STATS:
        table.add_column(stat, justify="right")
    for provider in report["providers"]:
        step = _find(provider, ident)
        if step is None:
            continue
        for metric in _METRICS:
            summary = step["aggregates"][metric]
            table.add_row(
                provider["name"],
                metric,
                *(str(summary[s]) if s == "count" else grouped(summary[s], 1) for s in _STATS),
            )
    return table


def _open_loop_lines(report: dict[str, Any]) -> Iterable[str]:
    for provider in report["providers"]:
        for step in provider["steps"]:
            fig = step["load_figures"]
            if fig["mode"] == "rate":
                yield (
                    f"  {provider['name']} {step['workload']['workload']} {step['load']}: "
                    f"asked {fig['asked_rate']:.2f}/s, "
                    f"schedule {grouped(fig['schedule_rate'], 2)}/s, "
                    f"achieved {grouped(fig['achieved_rate'], 2)}/s, max in flight "
                    f"{fig['max_in_flight']}, stopped by {fig['stopped_by']}"
                )


def print_report(report: dict[str, Any], console: Console, *, detail: bool = False) -> None:
    """Every table: speed and tokens per workload x load, the sweep, prices, notes."""
    console.print(f"[bold]parity bench {report['run']}[/]  ({report['tokenizer']})")
    unreachable = [p for p in report["providers"] if not p.get("reachable")]
    for ident in _steps(report):
        if ident[2] is not None:
            continue  # sweep levels: in the sweep table
        console.print(speed_table(report, ident))
        console.print(tokens_table(report, ident))
        if detail:
            console.print(detail_table(report, ident))
    sweep = sweep_table(report)
    if sweep is not None:
        console.print(sweep)
    console.print(price_table(report))
    lines = list(_open_loop_lines(report))
    if lines:
        console.print("open-loop arrivals (asked vs achieved rate):", highlight=False)
        for line in lines:
            console.print(line, highlight=False)
    notes = []
    for provider in report["providers"]:
        for step in provider["steps"]:
            for detail_text in step["aggregates"]["error_details"]:
                notes.append(
                    f"  {provider['name']} {step['workload']['workload']} {step['load']}: "
                    f"{detail_text[:140]}"
                )
    if notes:
        console.print("errors (first of each kind):", highlight=False)
        for note in notes:
            console.print(note, highlight=False, soft_wrap=True)
    for provider in unreachable:
        console.print(f"[red]{provider['name']} unreachable:[/] {provider.get('detail')}")


def chart_points(report: dict[str, Any]) -> list[Point]:
    """One point per provider: blended list price and median output speed of its first
    step with a measured speed."""
    points = []
    for provider in report["providers"]:
        price = provider["price"]["list"]["blended"]
        speed = next(
            (
                s["aggregates"]["output_tokens_per_s"]["p50"]
                for s in provider["steps"]
                if s["aggregates"]["output_tokens_per_s"]["p50"] is not None
            ),
            None,
        )
        if price is not None and speed is not None:
            points.append(Point(provider["name"], float(price), float(speed)))
    return points


def write_svg(report: dict[str, Any], path: Path) -> None:
    """The speed-vs-price chart."""
    path.parent.mkdir(parents=True, exist_ok=True)
    subtitle = f"parity bench {report['run']}: median output speed of each provider's first step"
    path.write_text(
        speed_price_svg(chart_points(report), "Output speed vs. price", subtitle), encoding="utf-8"
    )


def write_json(report: dict[str, Any], path: Path) -> None:
    """The whole report: options, per-request metrics and aggregates."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1, default=str) + "\n", encoding="utf-8")


CSV_FIELDS = [
    "run",
    "provider",
    "workload",
    "load",
    "level",
    "index",
    "key",
    "ok",
    "error",
    "status",
    "ttft_ms",
    "ttfat_ms",
    "output_tokens_per_s",
    "tpot_ms",
    "itl_p50_ms",
    "itl_max_ms",
    "e2e_ms",
    "prompt_tokens",
    "local_prompt_tokens",
    "output_tokens",
    "output_tokens_from",
    "local_output_tokens",
    "reasoning_tokens",
    "answer_tokens",
    "finish_reason",
    "scheduled_s",
    "started_s",
    "finished_s",
    "in_flight",
    "request_id",
    "attempt_ids",
    "response_id",
    "provider_ids",
]


def write_csv(report: dict[str, Any], path: Path) -> None:
    """One row per measured request (warmups are not in it). `request_id` is the id sent
    with the request's last attempt, `attempt_ids` every attempt's (space-separated),
    `response_id` the body's `id` and `provider_ids` the id headers the provider answered
    with (`name=value`, `; `-separated); empty in runs stored before they were recorded."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, CSV_FIELDS)
        writer.writeheader()
        for provider in report["providers"]:
            for step in provider["steps"]:
                for m in step["requests"]:
                    gaps = sorted(m["itl_ms"])
                    row = {k: m.get(k) for k in CSV_FIELDS if k in m}
                    row.update(
                        run=report["run"],
                        provider=provider["name"],
                        workload=step["workload"]["workload"],
                        load=step["load"],
                        level=step["level"],
                        itl_p50_ms=statistics.median(gaps) if gaps else None,
                        itl_max_ms=gaps[-1] if gaps else None,
                        attempt_ids=" ".join(m.get("attempt_ids") or []),
                        provider_ids="; ".join(
                            f"{k}={v}" for k, v in (m.get("provider_ids") or {}).items()
                        ),
                    )
                    writer.writerow(row)
