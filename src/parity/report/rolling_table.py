"""The rolling medians of `parity watch` as a terminal table and as Markdown."""

from __future__ import annotations

from collections.abc import Callable

from markupsafe import escape as html_escape
from rich.markup import escape
from rich.table import Table

from parity.report.format import dollars, ms, number, pct, utc_time
from parity.report.rolling import MedianInterval, ProviderRolling, Rolling

__all__ = ["COLUMNS", "cell", "rolling_html", "rolling_markdown", "rolling_table", "title"]

COLUMNS: dict[str, tuple[str, Callable[[float | None], str]]] = {
    "ttft_p50_ms": ("TTFT p50", ms),
    "tok_s_p50": ("tok/s p50", number),
    "accuracy": ("accuracy", pct),
    "price_blended": ("$/1M blended", lambda v: dollars(v, 2)),
    "cost_usd": ("run cost", lambda v: dollars(v, 6)),
    "conformance_passed": ("conform passed", lambda v: number(v, ".1f").removesuffix(".0")),
}
"""The table's figure columns: `report.rolling.METRICS` name -> (header, how to write one)."""


def cell(m: MedianInterval, write: Callable[[float | None], str]) -> str:
    """A median and its interval, "302 ms [290 ms, 330 ms]"; the median alone from one run;
    "-" from none."""
    if m.median is None:
        return "-"
    if m.low is None or m.high is None:
        return write(m.median)
    return f"{write(m.median)} [{write(m.low)}, {write(m.high)}]"


def title(rolled: Rolling) -> str:
    """One line: the window, its runs and what the intervals are."""
    hours = rolled.window_s / 3600
    span = f"{hours:g} h" if hours >= 1 else f"{rolled.window_s:g} s"
    return (
        f"rolling medians over the last {span} ({utc_time(rolled.since)} to "
        f"{utc_time(rolled.now)}): {len(rolled.run_ids)} finished run(s)"
    )


def _coverage_note(rolled: Rolling) -> str:
    short = sorted(
        {
            (m.n, m.coverage)
            for p in rolled.providers
            for m in p.metrics.values()
            if m.coverage is not None and m.coverage < rolled.confidence
        }
    )
    note = (
        f"[low, high]: order-statistic interval for the median, >= {pct(rolled.confidence)} "
        "coverage"
    )
    if short:
        shown = ", ".join(f"{pct(c)} from {n} runs" for n, c in short)
        note += f" where the runs allow (fewer than 6 runs: [min, max], {shown})"
    return note


def _name(p: ProviderRolling) -> str:
    name = p.provider + (" (reference)" if p.reference else "")
    return name + (f" @ {p.vantage}" if p.vantage else "")


def rolling_table(rolled: Rolling) -> Table:
    """Per provider (and vantage): runs, then each figure's median [interval]."""
    table = Table(
        title=escape(title(rolled)),
        title_justify="left",
        header_style="bold",
        caption=escape(_coverage_note(rolled)),
        caption_justify="left",
    )
    table.add_column("provider")
    table.add_column("runs", justify="right")
    for header, _ in COLUMNS.values():
        table.add_column(header, justify="right")
    for p in rolled.providers:
        runs = str(p.runs) + (f" ({p.unreachable} unreachable)" if p.unreachable else "")
        cells = [escape(cell(p.metrics[key], write)) for key, (_, write) in COLUMNS.items()]
        table.add_row(escape(_name(p)), runs, *cells)
    return table


def rolling_markdown(rolled: Rolling) -> str:
    """The same table in Markdown, with the window and the intervals' note."""
    header = ["provider", "runs", *(h for h, _ in COLUMNS.values())]
    lines = [f"### parity watch: {title(rolled)}", ""]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
    for p in rolled.providers:
        cells = [cell(p.metrics[key], write) for key, (_, write) in COLUMNS.items()]
        row = [_name(p).replace("|", "\\|"), str(p.runs), *cells]
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", _coverage_note(rolled), ""]
    return "\n".join(lines)


_STYLE = (
    "body{font:14px system-ui,sans-serif;margin:2em;color:#222}"
    "table{border-collapse:collapse}th,td{padding:4px 10px;border-bottom:1px solid #ddd}"
    "td{text-align:right}td:first-child,th:first-child{text-align:left}"
    "caption{text-align:left;font-weight:600;margin-bottom:8px}p{color:#555}"
)


def rolling_html(rolled: Rolling) -> str:
    """The same table as a self-contained HTML page (no script, no external resource)."""
    head = "".join(f"<th>{html_escape(h)}</th>" for h in ["provider", "runs", *_headers()])
    rows = []
    for p in rolled.providers:
        cells = [cell(p.metrics[key], write) for key, (_, write) in COLUMNS.items()]
        tds = "".join(f"<td>{html_escape(c)}</td>" for c in [_name(p), str(p.runs), *cells])
        rows.append(f"<tr>{tds}</tr>")
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>parity watch</title><style>{_STYLE}</style></head><body>"
        f"<table><caption>parity watch: {html_escape(title(rolled))}</caption>"
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        f"<p>{html_escape(_coverage_note(rolled))}</p></body></html>\n"
    )


def _headers() -> list[str]:
    return [h for h, _ in COLUMNS.values()]
