"""`parity demo`: the whole job on the local fleet, from start to report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from parity.accuracy.probe import DEFAULT_REFERENCE_REPEATS
from parity.cli.common import err, out, write_reports
from parity.core.config import ProvidersFile, load_providers
from parity.core.errors import ConfigError
from parity.core.plan import RunOptions, RunPlan
from parity.core.session import print_leaderboard, run_providers


def demo(
    out_dir: Annotated[Path, typer.Option("--out", help="Where the store and summary go.")] = Path(
        "parity-demo"
    ),
    base_port: Annotated[int, typer.Option(help="First port of the demo fleet.")] = 8720,
    repeats: Annotated[int, typer.Option(min=1, help="Times each problem is asked.")] = 2,
    fault: Annotated[
        str | None,
        typer.Option(
            help="PROVIDER=VARIANT: serve PROVIDER from VARIANT's server, as a provider that "
            "silently swapped its model would (e.g. reference-b=compressed-mild); then "
            "`parity diff` against an earlier demo run names the regression."
        ),
    ] = None,
) -> None:
    """The whole job on the local fleet: start it, run parity on it, print the leaderboard,
    write the store, a JSON summary and the HTML report, stop it.

    Costs nothing but CPU: about 6 x 178 requests to local llama.cpp servers, about four
    minutes on two cores (the first time also generates the compressed weights, ~1 minute).
    Runs accumulate in the demo's store, so `parity history` and `parity diff` work on it.
    """
    from parity.local.fleet import fleet_down, fleet_up

    state = out_dir / "fleet"
    db = out_dir / "parity.db"
    try:
        err.print("[bold]starting the local fleet[/] (real llama.cpp servers on 127.0.0.1)...")
        providers_file = fleet_up(state, None, base_port=base_port)
        providers = load_providers(providers_file)
        if fault:
            providers = _swap(providers, fault)
        options = RunOptions(repeats=repeats, reference_repeats=DEFAULT_REFERENCE_REPEATS)
        plan = RunPlan.resolve(options)
        run_id = run_providers(db, providers, plan, providers_file, None, err)
        print_leaderboard(db, run_id, plan, out)
        summary, html = out_dir / "summary.json", out_dir / "report.html"
        write_reports(
            db,
            run_id,
            json_path=summary,
            csv_path=None,
            junit_path=None,
            markdown_path=None,
            html_path=html,
        )
        out.print(f"store: {db}   summary: {summary}   run: {run_id}", highlight=False)
        out.print(f"report: {html.resolve()}", highlight=False)
    finally:
        stopped = fleet_down(state)
        if stopped:
            err.print(f"fleet stopped ({len(stopped)} servers)")


def _swap(providers: ProvidersFile, fault: str) -> ProvidersFile:
    """The providers with one served from another variant's server (`PROVIDER=VARIANT`)."""
    name, _, variant = fault.partition("=")
    by_name = {p.name: p for p in providers.providers}
    if name not in by_name or variant not in by_name:
        raise ConfigError(f"--fault {fault!r}: give PROVIDER=VARIANT with names from the fleet")
    swapped = [
        p.model_copy(update={"base_url": by_name[variant].base_url}) if p.name == name else p
        for p in providers.providers
    ]
    return ProvidersFile(provider=swapped)
