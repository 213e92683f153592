"""`parity conform` in the terminal: what the checks will cost, then check x provider."""

from __future__ import annotations

from collections.abc import Sequence

from rich.markup import escape
from rich.table import Table

from parity.conformance.base import Check, PlanContext
from parity.core.analysis import ProviderResult
from parity.core.config import Provider

STATUS_STYLE = {"pass": "green", "fail": "bold red", "error": "yellow", "n/a": "dim"}
"""An error (no usable answer: an outage) is yellow, apart from a failure (a finding)."""
FIGURE_CHARS = 46


def cost_table(checks: Sequence[Check], providers: Sequence[Provider], tries: int) -> Table:
    """Requests each check sends to each provider (shared requests counted once per check;
    the run sends each distinct request once)."""
    table = Table(title="conformance: requests per check", title_justify="left")
    table.add_column("check")
    table.add_column("family")
    table.add_column("needs reference", justify="center")
    table.add_column("bar")
    for provider in providers:
        table.add_column(provider.name, justify="right")
    for check in checks:
        costs = [str(check.cost(PlanContext(p, tries))) for p in providers]
        reference = "yes" if check.needs_reference else ""
        table.add_row(check.id, check.family, reference, check.bar_rule.value, *costs)
    return table


def conform_table(results: Sequence[ProviderResult], title: str) -> Table:
    """One row per check, one column per provider: status and the key figure."""
    table = Table(title=title, title_justify="left", header_style="bold", show_lines=False)
    table.add_column("check", no_wrap=True)
    for r in results:
        table.add_column(r.name + (" (ref)" if r.reference else ""), overflow="fold")
    rows: dict[str, list[str]] = {}
    for column, r in enumerate(results):
        for c in r.conformance:
            cells = rows.setdefault(c["id"], ["-"] * len(results))
            cells[column] = cell(c)
    for check_id, cells in rows.items():
        table.add_row(check_id, *cells)
    return table


def cell(check: dict[str, object]) -> str:
    """`status figure` with the status coloured, the figure cut short."""
    status = str(check["status"])
    figure = str(check.get("figure", ""))
    if len(figure) > FIGURE_CHARS:
        figure = figure[: FIGURE_CHARS - 1] + "…"
    style = STATUS_STYLE.get(status, "")
    optional = "" if check.get("required", True) else " (optional)"
    return f"[{style}]{status}[/]{optional} [dim]{escape(figure)}[/]"
