"""What the CLI commands do, minus the parsing: start or resume a run, analyse, report."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from parity import __version__
from parity.accuracy.evaluate import (
    AdaptiveEval,
    EvalOptions,
    analyse_eval,
    drive_adaptive,
    load_suite,
    planned_fixed,
    sample_records,
)
from parity.core.analysis import ProviderResult, analyse_run, stored_providers
from parity.core.client import ProviderClient
from parity.core.config import ProvidersFile, load_providers
from parity.core.errors import ConfigError
from parity.core.exchange import Exchange
from parity.core.plan import RunOptions
from parity.core.request import Request
from parity.core.runner import Runner, execute
from parity.core.store import Store
from parity.report.eval_table import eval_table
from parity.report.summary import write_summary
from parity.report.terminal import print_report


def run_providers(
    db: Path,
    providers: ProvidersFile,
    options: RunOptions,
    source: Path | None,
    run_id: str | None,
    console: Console,
    kind: str = "run",
) -> str:
    """Create (or continue) a run of `kind` ("run" or "conform") and send what is not yet
    stored; returns the run id.

    Ctrl-C marks the run interrupted and exits 130: what was stored stays, `--resume` goes on.
    """
    with Store(db) as store:
        run_id = _open_run(store, db, kind, options.model_dump(), source, run_id, console)
        with _progress(console) as progress:
            tasks = {p.name: progress.add_task(p.name, total=None) for p in providers.providers}

            def hook(name: str, done: int, total: int) -> None:
                progress.update(tasks[name], completed=done, total=total)

            with _interruptible(store, db, kind, run_id, console):
                stats = asyncio.run(execute(store, run_id, providers, options, hook))
            for name in stats.unreachable:
                progress.update(tasks[name], description=f"{name} (unreachable)", total=1)
        for name, detail in stats.unreachable.items():
            console.print(f"[red]{name} unreachable:[/] {detail}", highlight=False)
        store.finish_run(run_id, "finished")
    return run_id


def _open_run(
    store: Store,
    db: Path,
    kind: str,
    options: dict[str, Any],
    source: Path | None,
    run_id: str | None,
    console: Console,
) -> str:
    """Create a run of `kind`, or mark `run_id` running again; announce it."""
    if run_id is None:
        run_id = store.create_run(kind, str(source) if source else None, options, __version__)
    else:
        store.set_run_status(run_id, "running")
    console.print(f"{kind} [bold]{run_id}[/] -> {db}", highlight=False)
    return run_id


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description:<20}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


@contextmanager
def _interruptible(
    store: Store, db: Path, kind: str, run_id: str, console: Console
) -> Iterator[None]:
    """On Ctrl-C: mark the run interrupted, say how to resume, exit 130."""
    try:
        yield
    except KeyboardInterrupt:
        store.set_run_status(run_id, "interrupted")
        console.print(
            f"interrupted: {store.count_exchanges(run_id)} exchanges stored; continue with: "
            f"parity {kind} --db {db} --resume {run_id}",
            highlight=False,
        )
        raise typer.Exit(130) from None


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
    db: Path, run_id: str, providers_file: Path | None, kind: str
) -> tuple[ProvidersFile, dict[str, Any], str]:
    """The providers and stored options of a run of `kind` ("run", "eval" or "conform"), for
    `--resume`.

    Keys and headers are not stored, so the providers file is read again (the one given, or
    the path the run was started with); its provider names must match the run's.
    """
    if not db.exists():
        raise ConfigError(f"{db}: no such store")
    with Store(db) as store:
        info = store.run(run_id)
        if info is None:
            raise ConfigError(f"{db}: no run {run_id!r} (see: parity runs --db {db})")
        if info.kind != kind:
            command = f"parity {info.kind}" if info.kind in ("eval", "conform") else "parity run"
            raise ConfigError(f"run {run_id} is a {info.kind!r} run: resume it with {command}")
        stored_names = [p["name"] for p in store.providers(run_id)]
    path = providers_file or (Path(info.source) if info.source else None)
    if path is None:
        raise ConfigError(f"run {run_id} has no providers file on record: give it")
    providers = load_providers(path)
    names = [p.name for p in providers.providers]
    if stored_names and names != stored_names:
        raise ConfigError(f"{path}: providers {names} differ from run {run_id}'s {stored_names}")
    return providers, info.options, run_id


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


def run_eval(
    db: Path,
    providers: ProvidersFile,
    options: EvalOptions,
    source: Path | None,
    run_id: str | None,
    console: Console,
) -> str:
    """Create (or continue) an eval run and sample until every verdict is reached (adaptive)
    or every planned sample is stored (fixed); returns the run id."""
    suite = load_suite(options)
    with Store(db) as store:
        run_id = _open_run(store, db, "eval", options.model_dump(), source, run_id, console)
        with _progress(console) as progress:
            tasks = {p.name: progress.add_task(p.name, total=None) for p in providers.providers}

            def hook(name: str, done: int, total: int) -> None:
                progress.update(tasks[name], completed=done, total=total)

            def after(state: AdaptiveEval) -> None:
                for name, ev in state.evals.items():
                    desc = name
                    if ev.test is not None and ev.test.mean is not None:
                        low, high = ev.test.interval()
                        mean = ev.test.mean * 100
                        desc += f"  Δ {mean:+.1f} [{low * 100:+.0f}, {high * 100:+.0f}]"
                        desc += f" {ev.test.verdict()}" if ev.stop_reason else ""
                    scores = [s for v in ev.scores.values() for s in v]
                    if scores:
                        desc += f"  acc {sum(scores) / len(scores):.0%}"
                    desc += f"  {ev.spend.tokens:,} tok"
                    if ev.spend.usd is not None:
                        desc += f" ${ev.spend.usd:.4f}"
                    done = min(state.position, len(state.pairs)) if not ev.stop_reason else None
                    progress.update(
                        tasks[name],
                        description=desc,
                        completed=done if done is not None else ev.spend.samples,
                        total=len(state.pairs) if done is not None else ev.spend.samples,
                    )

            async def main() -> None:
                async with Runner(
                    store, run_id, providers.providers, options.retries, None, options.cache
                ) as runner:
                    reachable = await runner.preflight()
                    reference = next((p for p in reachable if p.reference), None)
                    if options.adaptive and reference is not None:
                        state = AdaptiveEval(suite, reachable, reference, options)

                        def fetch(
                            planned: Mapping[str, list[Request]],
                        ) -> dict[str, dict[str, Exchange]]:
                            return {
                                n: store.get_exchanges(run_id, n, [r.key for r in reqs])
                                for n, reqs in planned.items()
                            }

                        await drive_adaptive(state, runner.send, fetch, after)
                    else:
                        runner.progress = hook
                        await runner.send(planned_fixed(reachable, suite, options.repeats))
                for name, detail in runner.stats.unreachable.items():
                    progress.update(tasks[name], description=f"{name} (unreachable: {detail})")

            with _interruptible(store, db, "eval", run_id, console):
                asyncio.run(main())
        store.finish_run(run_id, "finished")
    return run_id


def report_eval(
    db: Path,
    run_id: str,
    options: EvalOptions,
    console: Console,
    json_out: Path | None,
) -> list[dict[str, Any]]:
    """Recompute an eval run's results from the store, print them, optionally write JSON."""
    with Store(db) as store:
        providers = stored_providers(store, run_id)
        results = analyse_eval(store, run_id, providers, options)
        records = sample_records(store, run_id, providers, options)
        for r in results:
            store.put_result(run_id, r["name"], "accuracy", "eval", r)
            store.put_result(run_id, r["name"], "accuracy", "samples", records.get(r["name"], []))
    suite = load_suite(options)
    has_reference = any(p.reference for p in providers)
    design = "adaptive" if options.adaptive and has_reference else "fixed"
    title = (
        f"parity eval {run_id}: {suite.name} ({len(suite.problems)} problems), {design}, "
        f"cap {options.repeats}/problem, margin {options.margin:.0%}"
    )
    console.print(eval_table(results, title))
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        payload = {"run": run_id, "options": options.model_dump(), "providers": results}
        json_out.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    return results
