"""Tables for `parity runs` and `parity local status`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.table import Table

from parity.core.store import RunInfo
from parity.report.format import local_time


def runs_table(runs: Sequence[RunInfo]) -> Table:
    """One row per run: id, started, status, exchanges, vantage, source file, suite."""
    table = Table(title="runs", title_justify="left", header_style="bold")
    columns = ("run", "started", "status", "exchanges", "vantage", "providers file", "suite")
    for column in columns:
        table.add_column(column)
    for r in runs:
        started = local_time(r.created_at, seconds=True)
        suite = f"{r.options.get('suite', '-')} x{r.options.get('repeats', '-')}"
        row = (r.id, started, r.status, str(r.exchanges), r.vantage or "-", r.source or "-")
        table.add_row(*row, suite)
    return table


def fleet_table(servers: Sequence[Any]) -> Table:
    """One row per local server: variant, URL, pid, alive, log."""
    table = Table(title="local fleet", title_justify="left", header_style="bold")
    for column in ("variant", "base_url", "pid", "alive", "log"):
        table.add_column(column)
    for s in servers:
        alive = "[green]yes[/]" if s.alive else "[red]no[/]"
        table.add_row(s.variant, s.base_url, str(s.pid), alive, str(s.log))
    if not servers:
        table.caption = "nothing running (start with: parity local up)"
    return table
