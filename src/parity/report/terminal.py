"""The terminal leaderboard: one row per provider, the figures a buyer compares."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from parity.core.analysis import ProviderResult
from parity.report.format import dollars, ms, number, p_value, pct, pct_range, points, points_range

# Only "equivalent" (the interval within the margin) is green: "no difference found" is
# the absence of evidence, not a pass, and "better" is a difference too.
VERDICT_STYLE = {
    "reference": "bold cyan",
    "equivalent": "green",
    "no difference found": "yellow",
    "better": "magenta",
    "degraded": "bold red",
    "unreachable": "bold red",
    "no data": "red",
}


def leaderboard(results: list[ProviderResult], title: str) -> Table:
    """One row per provider: TTFT p50, tokens/s p50, accuracy +- CI, difference from the
    reference with its interval and p (Holm-corrected across the providers: the interval
    at the level Holm tested the provider at, p adjusted, so p < 0.05 exactly when the
    interval excludes 0), verdict, errors, conformance passed/judged, price, run cost."""
    table = Table(title=title, title_justify="left", header_style="bold")
    table.add_column("provider")
    table.add_column("TTFT p50", justify="right")
    table.add_column("tok/s p50", justify="right")
    table.add_column("accuracy (95% CI)", justify="right")
    table.add_column("Δ vs ref (Holm CI, p)", justify="right")
    table.add_column("verdict")
    table.add_column("errors", justify="right")
    table.add_column("conform", justify="right")
    table.add_column("$/1M blended", justify="right")
    table.add_column("run cost", justify="right")
    for r in results:
        verdict = r.verdict
        style = VERDICT_STYLE.get(verdict, "")
        if r.reachable is False:
            conform = conformance_cell(r)
            row = ["-"] * 4 + [f"[{style}]unreachable[/]", "-", conform]
            table.add_row(r.name, *row, dollars(r.blended_price), "-")
            continue
        conform = conformance_cell(r)
        table.add_row(
            r.name,
            ms((r.speed or {}).get("ttft_ms", {}).get("p50")),
            number((r.speed or {}).get("output_tokens_per_s", {}).get("p50")),
            _accuracy(r),
            _delta(r),
            f"[{style}]{verdict}[/]" if style else verdict,
            _errors(r),
            conform,
            dollars(r.blended_price),
            dollars(r.cost_usd, 6),
        )
    return table


def conformance_cell(r: ProviderResult) -> str:
    """'passed/judged' over the checks that got an answer (pass or fail), red when one
    failed; checks without a usable answer (an outage, not a finding) counted apart, in
    yellow: '3/3 · 14 error'; '-' when no check applied."""
    statuses = [str(c["status"]) for c in r.conformance]
    passed, failed = statuses.count("pass"), statuses.count("fail")
    errors = statuses.count("error")
    text = f"{passed}/{passed + failed}" if passed + failed else ""
    if failed:
        text = f"[red]{text}[/]"
    if errors:
        text = (text + " · " if text else "") + f"[yellow]{errors} error[/]"
    return text or "-"


def _lines(results: list[ProviderResult], status: str, mark: str) -> list[str]:
    width = max((len(r.name) for r in results), default=0)
    return [
        f"  {mark} {r.name:<{width}}  [bold]{c['id']}[/]: {escape(c['figure'])}"
        + (f" [dim](bar: {escape(c['bar'])})[/]" if c["bar"] != "-" else "")
        for r in results
        for c in r.conformance
        if c["status"] == status
    ]


def failures(results: list[ProviderResult]) -> list[str]:
    """One line per failed conformance check: provider, check, what was found, the bar."""
    return _lines(results, "fail", "[red]✗[/]")


def errors(results: list[ProviderResult]) -> list[str]:
    """One line per conformance check without a usable answer (status error: the provider
    unavailable, or every request of the check failed at the transport): no finding."""
    return _lines(results, "error", "[yellow]![/]")


ERRORS_HEADING = (
    "[bold]conformance errors[/] (no usable answer: the provider was unavailable; an "
    "outage, not a conformance failure)"
)


def print_report(console: Console, results: list[ProviderResult], title: str) -> None:
    """Print the leaderboard, then the conformance failures, then the errors."""
    console.print(leaderboard(results, title))
    lines = failures(results)
    if lines:
        console.print("[bold]conformance failures[/] (details in the JSON summary)")
        for line in lines:
            console.print(line, highlight=False)
    unanswered = errors(results)
    if unanswered:
        console.print(ERRORS_HEADING)
        for line in unanswered:
            console.print(line, highlight=False)


def _accuracy(r: ProviderResult) -> str:
    acc = (r.accuracy or {}).get("accuracy")
    if not acc:
        return "-"
    return f"{pct(acc['value'])} {pct_range(acc['low'], acc['high'])}"


def _delta(r: ProviderResult) -> str:
    vs = (r.accuracy or {}).get("vs_reference")
    if not vs:
        return "-"
    interval = points_range(vs["low"], vs["high"])
    return f"{points(vs['diff'], 0)} {interval} {p_value(vs['p_value'])}"


def _errors(r: ProviderResult) -> str:
    total = sum(r.errors.values())
    if not total:
        return "0"
    worst = max(r.errors, key=lambda k: r.errors[k])
    return f"[red]{total}/{r.requests}[/] {worst}"
