"""Terminal views of `parity history` (figures over runs) and `parity diff` (two runs)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from parity.report.format import (
    dollars,
    local_time,
    ms,
    number,
    p_value,
    pct,
    pct_range,
    points,
    points_range,
)
from parity.report.model import AccuracyDiff, DiffResult, HistoryRow, SpeedTest
from parity.report.terminal import VERDICT_STYLE

STATUS_STYLE = {
    "equivalent": "green",
    "no difference found": "yellow",
    "better": "magenta",
    "suspicious": "yellow",
    "degraded": "bold red",
    "unreachable": "bold red",
    "reference": "bold cyan",
}


def _styled(text: str, styles: Mapping[str, str]) -> str:
    style = styles.get(text, "")
    return f"[{style}]{escape(text)}[/]" if style else escape(text)


def metric_text(metric: str, value: Any) -> str:
    """One figure of a `history` row as table text (styled for verdict and status)."""
    if value is None:
        return "-"
    if metric == "accuracy":
        return f"{pct(value['value'])} {pct_range(value['low'], value['high'])}"
    if metric == "verdict":
        return _styled(str(value), VERDICT_STYLE)
    if metric == "status":
        return _styled(str(value), STATUS_STYLE)
    if metric == "ttft_p50":
        return ms(value)
    if metric == "tok_s_p50":
        return number(value)
    if metric == "cost":
        return dollars(value, 6)
    if metric == "conformance":
        text = f"{value['passed']}/{value['judged']}"
        return f"[red]{text}[/]" if value["passed"] < value["judged"] else text
    return escape(str(value))


HEADERS = {
    "accuracy": "accuracy (95% CI)",
    "verdict": "verdict",
    "status": "status",
    "ttft_p50": "TTFT p50",
    "tok_s_p50": "tok/s p50",
    "cost": "run cost",
    "conformance": "conform",
}


def history_table(rows: Sequence[HistoryRow], metric: str | None = None) -> Table:
    """`history` rows as a table: one row per run x provider with every figure, or, for one
    `metric`, one row per run with a column per provider."""
    if metric is not None:
        return _pivot(rows, metric)
    split = _split(rows)
    table = Table(title="history (oldest first)", title_justify="left", header_style="bold")
    for column, justify in (
        ("run", "left"),
        ("started", "left"),
        *((("vantage", "left"),) if split else ()),
        ("provider", "left"),
        *((HEADERS[m], "left" if m in ("verdict", "status") else "right") for m in HEADERS),
    ):
        table.add_column(column, justify=justify)
    previous = None
    for row in rows:
        first = row["run_id"] != previous
        if first and previous is not None:
            table.add_section()
        previous = row["run_id"]
        table.add_row(
            row["run_id"] if first else "",
            local_time(row["created_at"]) if first else "",
            *((escape(row.get("vantage") or "-") if first else "",) if split else ()),
            escape(row["provider"]) + (" (ref)" if row.get("reference") else ""),
            *(metric_text(m, row.get(m)) for m in HEADERS),
        )
    return table


class _PivotRun(TypedDict):
    created_at: float
    cells: dict[str, object]  # provider -> the metric's value in this run


def _split(rows: Sequence[HistoryRow]) -> bool:
    """Whether the rows come from more than one vantage (then they are split by it)."""
    return len({r.get("vantage") for r in rows}) > 1


def _column(row: HistoryRow, split: bool) -> str:
    """A pivot column: the provider, `provider @ vantage` when the vantages differ."""
    return f"{row['provider']} @ {row.get('vantage') or '-'}" if split else row["provider"]


def _pivot(rows: Sequence[HistoryRow], metric: str) -> Table:
    split = _split(rows)
    providers = list(dict.fromkeys(_column(r, split) for r in rows))
    runs: dict[str, _PivotRun] = {}
    for r in rows:
        runs.setdefault(r["run_id"], {"created_at": r["created_at"], "cells": {}})
        runs[r["run_id"]]["cells"][_column(r, split)] = r.get(metric)
    table = Table(
        title=f"{HEADERS.get(metric, metric)} by run (oldest first)",
        title_justify="left",
        header_style="bold",
    )
    table.add_column("run")
    table.add_column("started")
    for name in providers:
        justify = "left" if metric in ("verdict", "status") else "right"
        table.add_column(escape(name), justify=justify)  # type: ignore[arg-type]
    for run_id, run in runs.items():
        cells = [
            metric_text(metric, run["cells"][n]) if n in run["cells"] else "" for n in providers
        ]
        table.add_row(run_id, local_time(run["created_at"]), *cells)
    return table


def diff_table(result: DiffResult) -> Table:
    """One row per provider in both runs: accuracy A -> B with the paired difference, speed
    medians with Mann-Whitney p, conformance and verdict, A -> B."""
    a, b = result["run_a"], result["run_b"]
    table = Table(
        title=f"diff {a['id']} ({local_time(a['created_at'])}) -> "
        f"{b['id']} ({local_time(b['created_at'])})",
        title_justify="left",
        header_style="bold",
    )
    for column, justify in (
        ("provider", "left"),
        ("accuracy A -> B", "right"),
        ("Δ B-A (95% CI)", "right"),
        ("TTFT median A -> B", "right"),
        ("tok/s median A -> B", "right"),
        ("conform A -> B", "right"),
        ("verdict A -> B", "left"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for p in result["providers"]:
        acc = p["accuracy"]
        conf = p["conformance"]
        table.add_row(
            escape(p["name"]),
            f"{pct(acc.get('a'), 1)} -> {pct(acc.get('b'), 1)}",
            _delta(acc),
            _speed(p["speed"].get("ttft_ms"), ".0f", " ms"),
            _speed(p["speed"].get("output_tokens_per_s"), ".1f", ""),
            f"{conf['passed']['a']}/{conf['judged']['a']} -> "
            f"{conf['passed']['b']}/{conf['judged']['b']}"
            if conf["judged"]["a"] or conf["judged"]["b"]
            else "-",
            f"{_styled(p['verdict']['a'], VERDICT_STYLE)} -> "
            f"{_styled(p['verdict']['b'], VERDICT_STYLE)}",
        )
    return table


def _delta(acc: AccuracyDiff) -> str:
    if "diff" not in acc:
        return escape(str(acc.get("note", "-")))
    interval = points_range(acc["low"], acc["high"])
    text = f"{points(acc['diff'])} {interval} {p_value(acc['p_value'])}"
    return f"[bold red]{text}[/]" if acc.get("regression") else text


def _speed(test: SpeedTest | None, fmt: str, unit: str) -> str:
    if not test:
        return "-"
    text = (
        f"{number(test['a_median'], fmt)} -> {number(test['b_median'], fmt, unit)} "
        f"{p_value(test['p_value'])}"
    )
    return f"[bold red]{text}[/]" if test["regression"] else text


def print_diff(console: Console, result: DiffResult) -> None:
    """The diff table, then the regressions (red) and the other changes, one per line."""
    console.print(diff_table(result))
    if result["regressions"]:
        console.print(f"[bold red]{len(result['regressions'])} regression(s)[/]")
        for line in result["regressions"]:
            console.print(f"  [red]✗[/] {escape(line)}", highlight=False)
    else:
        console.print("[green]no regression[/]")
    if result["changes"]:
        console.print("[bold]other changes[/]")
        for line in result["changes"]:
            console.print(f"  • {escape(line)}", highlight=False)
