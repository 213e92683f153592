"""What the CLI commands do, minus the parsing: start or resume a run, analyse, report."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from parity import __version__
from parity.analysis import ProviderResult, analyse_run
from parity.client import ProviderClient
from parity.config import ProvidersFile, load_providers
from parity.errors import ConfigError
from parity.plan import RunOptions
from parity.report.summary import write_summary
from parity.report.terminal import print_report
from parity.runner import execute
from parity.store import Store


def run_providers(
    db: Path,
    providers: ProvidersFile,
    options: RunOptions,
    source: Path | None,
    run_id: str | None,
    console: Console,
) -> str:
    """Create (or continue) a run and send what is not yet stored; returns the run id.

    Ctrl-C marks the run interrupted and exits 130: what was stored stays, `--resume` goes on.
    """
    with Store(db) as store:
        if run_id is None:
            run_id = store.create_run(
                "run", str(source) if source else None, options.model_dump(), __version__
            )
        else:
            store.set_run_status(run_id, "running")
        console.print(f"run [bold]{run_id}[/] -> {db}", highlight=False)
        with Progress(
            TextColumn("{task.description:<20}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        ) as progress:
            tasks = {p.name: progress.add_task(p.name, total=None) for p in providers.providers}

            def hook(name: str, done: int, total: int) -> None:
                progress.update(tasks[name], completed=done, total=total)

            try:
                stats = asyncio.run(execute(store, run_id, providers, options, hook))
            except KeyboardInterrupt:
                store.set_run_status(run_id, "interrupted")
                console.print(
                    f"interrupted: {store.count_exchanges(run_id)} exchanges stored; "
                    f"continue with: parity run --db {db} --resume {run_id}",
                    highlight=False,
                )
                raise typer.Exit(130) from None
            for name in stats.unreachable:
                progress.update(tasks[name], description=f"{name} (unreachable)", total=1)
        for name, detail in stats.unreachable.items():
            console.print(f"[red]{name} unreachable:[/] {detail}", highlight=False)
        store.finish_run(run_id, "finished")
    return run_id


def finish_and_report(
    db: Path,
    run_id: str,
    options: RunOptions,
    console: Console,
    json_out: Path | None,
    finish: bool = True,
) -> list[ProviderResult]:
    """Analyse the run from the store, print the leaderboard, optionally write JSON."""
    with Store(db) as store:
        results = analyse_run(store, run_id, options)
        info = store.run(run_id)
    assert info is not None
    title = (
        f"parity run {run_id}: suite {options.suite} x{options.repeats}, "
        f"margin {options.margin:.0%}"
    )
    print_report(console, results, title)
    if json_out is not None:
        write_summary(json_out, info, results)
    return results


def load_run_for_resume(
    db: Path, run_id: str, providers_file: Path | None
) -> tuple[ProvidersFile, RunOptions, str]:
    """The providers and options of a stored run, for `--resume`.

    Keys and headers are not stored, so the providers file is read again (the one given, or
    the path the run was started with); its provider names must match the run's.
    """
    if not db.exists():
        raise ConfigError(f"{db}: no such store")
    with Store(db) as store:
        info = store.run(run_id)
        if info is None:
            raise ConfigError(f"{db}: no run {run_id!r} (see: parity runs --db {db})")
        stored_names = [p["name"] for p in store.providers(run_id)]
    path = providers_file or (Path(info.source) if info.source else None)
    if path is None:
        raise ConfigError(f"run {run_id} has no providers file on record: give it")
    providers = load_providers(path)
    names = [p.name for p in providers.providers]
    if stored_names and names != stored_names:
        raise ConfigError(f"{path}: providers {names} differ from run {run_id}'s {stored_names}")
    return providers, RunOptions(**info.options), run_id


async def check_providers(providers: ProvidersFile, console: Console) -> bool:
    """Ping each provider (GET /models) and print a table; True when all are reachable."""

    async def probe(provider_index: int) -> tuple[bool, str, list[str]]:
        provider = providers.providers[provider_index]
        async with ProviderClient(provider, retries=0) as client:
            result = await client.list_models()
        return result.reachable, result.detail, result.models

    results = await asyncio.gather(*(probe(i) for i in range(len(providers.providers))))
    table = Table(title="providers", title_justify="left", header_style="bold")
    for column in ("provider", "base_url", "model", "reachable", "detail"):
        table.add_column(column)
    for provider, (reachable, detail, models) in zip(providers.providers, results, strict=True):
        served = (
            ""
            if not models or provider.model in models
            else f" (model {provider.model!r} not listed)"
        )
        table.add_row(
            provider.name + (" (reference)" if provider.reference else ""),
            provider.base_url,
            provider.model,
            "[green]yes[/]" if reachable else "[red]no[/]",
            detail + served,
        )
    console.print(table)
    return all(r[0] for r in results)
