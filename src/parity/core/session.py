"""What the run-shaped commands do, minus the parsing: send a run's plan to its providers
(with a progress bar), print its leaderboard, reload a run for `--resume`, ping providers.

Every run goes through `core.lifecycle.open_run`, so Ctrl-C and SIGTERM end it the same way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from parity.core.analysis import ProviderResult, analyse_run
from parity.core.client import ProviderClient
from parity.core.config import Provider, ProvidersFile, load_providers, parse_providers
from parity.core.dburl import Db
from parity.core.errors import ConfigError
from parity.core.lifecycle import open_run, resume_command
from parity.core.plan import RunOptions, RunPlan
from parity.core.runner import execute
from parity.core.store import Store
from parity.report.terminal import print_report

__all__ = [
    "ProviderBars",
    "ProviderCheck",
    "check_providers",
    "load_run_for_resume",
    "print_leaderboard",
    "probe_providers",
    "progress_bars",
    "providers_table",
    "run_providers",
]


def run_providers(
    db: Db,
    providers: ProvidersFile,
    plan: RunPlan | RunOptions,
    source: Path | None,
    run_id: str | None,
    console: Console,
    kind: str = "run",
) -> str:
    """Create (or continue) a run of `kind` ("run" or "conform") and send what its plan asks
    and is not yet stored; returns the run id.

    Ctrl-C or SIGTERM marks the run interrupted and raises `RunInterrupted` (what was stored
    stays; `--resume` goes on).
    """
    plan = RunPlan.of(plan)
    with (
        open_run(
            db,
            kind,
            plan.options.model_dump(),
            source=str(source) if source else None,
            resume=run_id,
            announce=lambda line: console.print(line, highlight=False),
        ) as run,
        progress_bars(console, [p.name for p in providers.providers]) as hook,
    ):
        stats = asyncio.run(execute(run.store, run.run_id, providers, plan, hook))
        for name in stats.unreachable:
            hook.label(name, f"{name} (unreachable)", total=1)
        for name in stats.unavailable:
            hook.label(name, f"{name} (unavailable)")
    for name, detail in stats.unreachable.items():
        console.print(f"[red]{name} unreachable:[/] {detail}", highlight=False)
    for name, detail in stats.unavailable.items():
        console.print(f"[red]{name} {detail}[/]", highlight=False)
    if stats.unavailable:
        command = resume_command(kind, db, run.run_id)
        if command:
            console.print(f"to send what was held back: {command}", highlight=False)
    return run.run_id


class ProviderBars:
    """A progress bar per provider; called as `hook(name, done, total)` by the runner."""

    def __init__(self, progress: Progress, names: list[str]) -> None:
        self._progress = progress
        self._tasks = {name: progress.add_task(name, total=None) for name in names}

    def __call__(self, name: str, done: int, total: int) -> None:
        self._progress.update(self._tasks[name], completed=done, total=total)

    def label(
        self,
        name: str,
        description: str,
        *,
        completed: int | None = None,
        total: int | None = None,
    ) -> None:
        """Show `description` on `name`'s bar (and move it, when counts are given)."""
        fields: dict[str, Any] = {"description": description}
        if completed is not None:
            fields["completed"] = completed
        if total is not None:
            fields["total"] = total
        self._progress.update(self._tasks[name], **fields)


@contextmanager
def progress_bars(console: Console, names: list[str]) -> Iterator[ProviderBars]:
    """Live progress bars, one per provider, on `console` for the block's duration."""
    progress = Progress(
        TextColumn("{task.description:<20}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )
    with progress:
        yield ProviderBars(progress, names)


def print_leaderboard(
    db: Db,
    run_id: str,
    plan: RunPlan | RunOptions,
    console: Console,
    results: list[ProviderResult] | None = None,
) -> list[ProviderResult]:
    """Print the run's leaderboard: `results`, or the run analysed from the store (saving
    the results there)."""
    plan = RunPlan.of(plan)
    if results is None:
        with Store(db) as store:
            results = analyse_run(store, run_id, plan)
    options = plan.options
    title = (
        f"parity run {run_id}: suite {options.suite} x{options.repeats}, "
        f"margin {options.margin:.0%}"
    )
    print_report(console, results, title)
    return results


def load_run_for_resume(
    db: Db, run_id: str, providers_file: Path | None, kind: str
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
        return _stored_providers_file(db, run_id), info.options, run_id
    providers = load_providers(path)
    names = [p.name for p in providers.providers]
    if stored_names and names != stored_names:
        raise ConfigError(f"{path}: providers {names} differ from run {run_id}'s {stored_names}")
    return providers, info.options, run_id


def _stored_providers_file(db: Db, run_id: str) -> ProvidersFile:
    """A run started without a providers file (quick mode), rebuilt from its stored public
    settings: keys are read again from the variables they name."""
    with Store(db) as store:
        configs = store.providers(run_id)
    if not configs or any(c.get("headers") for c in configs):
        raise ConfigError(f"run {run_id} has no providers file on record: give it")
    fields = [
        {k: v for k, v in c.items() if k not in ("reachable", "detail", "headers")} for c in configs
    ]
    return parse_providers({"provider": fields}, f"run {run_id}")


CHECK_CHAT: dict[str, Any] = {
    "messages": [{"role": "user", "content": "Say OK."}],
    "max_tokens": 1,
    "temperature": 0,
}
"""The request `providers check` sends each provider after GET /models: one token."""


@dataclass(frozen=True)
class ProviderCheck:
    """What `providers check` found for one provider."""

    name: str
    base_url: str
    model: str
    reference: bool
    reachable: bool
    detail: str
    models: list[str]

    @property
    def model_listed(self) -> bool | None:
        """Whether GET /models lists the provider's model (None: no list came back)."""
        return None if not self.models else self.model in self.models


async def probe_providers(providers: ProvidersFile) -> list[ProviderCheck]:
    """Ask each provider, concurrently, for its model list (GET /models) and for a one-token
    chat completion (`CHECK_CHAT`). A provider is reachable only when the chat got a valid
    completion: a gateway in front of nothing answers GET /models too (502), and only a real
    completion shows a model behind it. The chat is not sent where GET /models got no HTTP
    answer at all."""

    async def probe(provider: Provider) -> ProviderCheck:
        def found(reachable: bool, detail: str, models: list[str]) -> ProviderCheck:
            return ProviderCheck(
                provider.name,
                provider.base_url,
                provider.model,
                provider.reference,
                reachable,
                detail,
                models,
            )

        async with ProviderClient(provider, retries=0) as client:
            result = await client.list_models()
            if not result.reachable:
                return found(False, result.detail, result.models)
            chat = await client.chat(dict(CHECK_CHAT), stream=False)
        models = f"GET /models: {result.detail}"
        if chat.ok:
            took = chat.e2e_ms()
            timing = f", {took:.0f} ms" if took is not None else ""
            detail = f"a 1-token chat answered (HTTP {chat.status}{timing}); {models}"
            return found(True, detail, result.models)
        why = chat.error_detail or (chat.error.value if chat.error else "no answer")
        return found(False, f"a 1-token chat got no valid answer: {why}; {models}", result.models)

    return list(await asyncio.gather(*(probe(p) for p in providers.providers)))


def providers_table(checks: list[ProviderCheck]) -> Table:
    """The `providers check` table: provider, base_url, model, reachable, detail."""
    table = Table(title="providers", title_justify="left", header_style="bold")
    for column in ("provider", "base_url", "model", "reachable", "detail"):
        table.add_column(column)
    for check in checks:
        served = "" if check.model_listed is not False else f" (model {check.model!r} not listed)"
        table.add_row(
            check.name + (" (reference)" if check.reference else ""),
            check.base_url,
            check.model,
            "[green]yes[/]" if check.reachable else "[red]no[/]",
            check.detail + served,
        )
    return table


async def check_providers(providers: ProvidersFile, console: Console) -> bool:
    """Probe every provider (`probe_providers`), print the table; True when all are
    reachable."""
    checks = await probe_providers(providers)
    console.print(providers_table(checks))
    return all(c.reachable for c in checks)
