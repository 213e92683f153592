"""parity as a library: the four pillars as functions with typed results.

    import parity

    result = parity.run("providers.toml", db="parity.db", repeats=2)
    for provider in result.providers:
        print(provider.name, provider.verdict)

Each function takes the providers as a providers file path, a `ProvidersFile`, a list of
`Provider`, or a `Target` (one endpoint, as the CLI's `--base-url`); stores every exchange
in `db` (a run there, resumable with `resume=RUN_ID`); prints progress only when given a
rich `console`; and returns a typed result whose `report()` is the typed report model
(`parity.report.model.Report`, what `--json` writes). The CLI is a thin layer over these.
Errors a user can act on raise `parity.core.errors.ParityError` subclasses (one line each).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from parity.accuracy.evaluate import EvalOptions
from parity.core.analysis import ProviderResult
from parity.core.config import Provider, ProvidersFile, load_providers
from parity.core.dburl import Db, DbRef, as_db
from parity.core.errors import ConfigError
from parity.core.plan import RunOptions, RunPlan
from parity.core.target import Target, quick_providers
from parity.report.model import Report

__all__ = [
    "BenchResult",
    "ConformResult",
    "EvalResult",
    "ProvidersLike",
    "RunResult",
    "bench",
    "conform",
    "evaluate",
    "load",
    "run",
]

ProvidersLike = ProvidersFile | Path | str | Sequence[Provider] | Target
"""What every function accepts as its providers."""


def load(providers: ProvidersLike) -> ProvidersFile:
    """The providers `providers` names, validated (keys read from their variables now)."""
    if isinstance(providers, ProvidersFile):
        return providers
    if isinstance(providers, Target):
        loaded = quick_providers(providers)
        if loaded is None:
            raise ConfigError("the target names no endpoint: give base_url")
        return loaded
    if isinstance(providers, str | Path):
        return load_providers(Path(providers))
    return ProvidersFile(provider=list(providers))


def _source(providers: ProvidersLike) -> Path | None:
    return Path(providers) if isinstance(providers, str | Path) else None


def _quiet() -> Console:
    return Console(quiet=True)


def _report(db: Db, run_id: str) -> Report:
    from parity.core.store import Store
    from parity.report.data import report_data

    with Store(db) as store:
        return report_data(store, run_id)


@dataclass(frozen=True)
class RunResult:
    """A `run` or `conform` run: its id, store and each provider's analysed results."""

    run_id: str
    db: Db
    providers: list[ProviderResult]

    @property
    def failed(self) -> bool:
        """True when the CLI exits 1: a provider degraded, unreachable or without data, or a
        conformance check not passed."""
        bad = [r for r in self.providers if r.verdict in ("degraded", "unreachable", "no data")]
        counts = [r.conformance_counts() for r in self.providers]
        return bool(bad) or any(passed < judged for passed, judged in counts)

    def report(self) -> Report:
        """The typed report model of this run, recomputed from the store."""
        return _report(self.db, self.run_id)


@dataclass(frozen=True)
class ConformResult(RunResult):
    """A conformance run; `failures` lists (provider, check id) for each required check that
    failed or had no usable answer."""

    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """True when a required check failed or errored on any provider."""
        return bool(self.failures)


@dataclass(frozen=True)
class EvalResult:
    """An eval run: per provider its accuracy estimate, interval and verdict (JSON-ready)."""

    run_id: str
    db: Db
    providers: list[dict[str, Any]]

    @property
    def failed(self) -> bool:
        """True when a provider is degraded against the reference."""
        return any(
            (r.get("vs_reference") or {}).get("verdict") == "degraded" for r in self.providers
        )

    def report(self) -> Report:
        """The typed report model of this run, recomputed from the store."""
        return _report(self.db, self.run_id)


@dataclass(frozen=True)
class BenchResult:
    """A bench run: the whole bench report (options, per-step aggregates and requests)."""

    run_id: str
    db: Db
    data: dict[str, Any]


def run(
    providers: ProvidersLike,
    *,
    db: str | Path | DbRef = "parity.db",
    resume: str | None = None,
    console: Console | None = None,
    source: Path | None = None,
    **options: Any,
) -> RunResult:
    """Measure every provider (speed, accuracy vs the reference, core conformance) as
    `parity run` does; `options` are `RunOptions` fields (suite, repeats, margin, ...)."""
    from parity.core.session import run_providers

    return _run(providers, RunOptions(**options), as_db(db), resume, console, run_providers, source)


def conform(
    providers: ProvidersLike,
    *,
    checks: Sequence[str] | None = None,
    tries: int = 1,
    db: str | Path | DbRef = "parity.db",
    resume: str | None = None,
    console: Console | None = None,
    max_time_s: float | None = None,
    source: Path | None = None,
) -> ConformResult:
    """Run the conformance suite (or the `checks` named: ids or families) on every
    provider, as `parity conform` does."""
    from parity.conformance.run import conform_options, failed_required
    from parity.core.session import run_providers

    options = conform_options(checks, tries).model_copy(update={"max_time_s": max_time_s})
    result = _run(
        providers, options, as_db(db), resume, console, run_providers, source, kind="conform"
    )
    return ConformResult(
        result.run_id, result.db, result.providers, failed_required(result.providers)
    )


def _run(
    providers: ProvidersLike,
    options: RunOptions,
    db: Db,
    resume: str | None,
    console: Console | None,
    send: Any,
    source: Path | None,
    kind: str = "run",
) -> RunResult:
    from parity.core.analysis import analyse_run
    from parity.core.store import Store

    plan = RunPlan.resolve(options)
    loaded = load(providers)
    origin = source or _source(providers)
    run_id = send(db, loaded, plan, origin, resume, console or _quiet(), kind=kind)
    with Store(db) as store:
        results = analyse_run(store, run_id, plan)
    return RunResult(run_id, db, results)


def evaluate(
    providers: ProvidersLike,
    *,
    db: str | Path | DbRef = "parity.db",
    resume: str | None = None,
    console: Console | None = None,
    source: Path | None = None,
    **options: Any,
) -> EvalResult:
    """Accuracy on a suite with intervals and a verdict vs the reference, as `parity eval`
    does; `options` are `EvalOptions` fields (suite, limit, repeats, adaptive, ...)."""
    from parity.accuracy.run import analyse_and_store_eval, check_suite, run_eval

    eval_options = EvalOptions(**options)
    check_suite(eval_options)
    path = as_db(db)
    origin = source or _source(providers)
    run_id = run_eval(path, load(providers), eval_options, origin, resume, console or _quiet())
    return EvalResult(run_id, path, analyse_and_store_eval(path, run_id, eval_options))


def bench(
    providers: ProvidersLike,
    *,
    db: str | Path | DbRef = "parity.db",
    preset: str = "quick",
    workloads: Sequence[str] | None = None,
    loads: Sequence[str] | None = None,
    requests: int | None = None,
    duration_s: float | None = None,
    warmup: int | None = None,
    slos: Sequence[str] = (),
    only: Sequence[str] | None = None,
    tokenizer: str = "auto",
    temperature: float | None = None,
    retries: int = 0,
    seed: int = 0,
    max_time_s: float | None = None,
    console: Console | None = None,
    source: Path | None = None,
) -> BenchResult:
    """Benchmark speed and price under a workload and load, as `parity bench` does (same
    presets, `workloads` such as "1k" or "2000/16", `loads` such as "c4" or "rate=2")."""
    from parity.core.lifecycle import open_run
    from parity.speed.metrics import parse_slo
    from parity.speed.plan import build_steps
    from parity.speed.run import BenchSettings, run_bench
    from parity.speed.tokenizer import choose_tokenizer

    shown = console or _quiet()
    everyone = load(providers).providers
    if only:
        unknown = sorted(set(only) - {p.name for p in everyone})
        if unknown:
            raise ConfigError(f"--only: no provider named {', '.join(unknown)}")
    chosen = [p for p in everyone if not only or p.name in only]
    try:
        steps = build_steps(
            preset,
            list(workloads) if workloads else None,
            list(loads) if loads else None,
            requests,
            duration_s,
            warmup,
        )
        parsed_slos = [parse_slo(s) for s in slos]
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    choice = choose_tokenizer(tokenizer)
    settings = BenchSettings(
        steps=steps,
        slos=parsed_slos,
        temperature=temperature,
        retries=retries,
        seed=seed,
        max_time_s=max_time_s,
    )
    options: dict[str, Any] = {
        "preset": preset,
        "steps": [s.to_dict() for s in steps],
        "slos": [s.text for s in parsed_slos],
        "tokenizer": tokenizer,
        "temperature": temperature,
        "retries": retries,
        "seed": seed,
        "providers": [p.name for p in chosen],
        "max_time_s": max_time_s,
    }
    source = source or _source(providers)
    path = as_db(db)
    with open_run(
        path,
        "bench",
        options,
        source=str(source) if source else None,
        announce=lambda line: shown.print(f"{line}  ({choice.note})", highlight=False),
    ) as opened:
        data = asyncio.run(
            run_bench(
                opened.store,
                opened.run_id,
                chosen,
                settings,
                choice,
                lambda text: shown.print(text, highlight=False),
            )
        )
        data["options"] = options
        for provider_report in _summary_only(data)["providers"]:
            opened.store.put_result(
                opened.run_id, provider_report["name"], "speed", "bench", provider_report
            )
    return BenchResult(opened.run_id, path, data)


def _summary_only(report: dict[str, Any]) -> dict[str, Any]:
    """The report without per-request lists (those are stored per step already)."""
    providers = []
    for provider in report["providers"]:
        steps = [{k: v for k, v in s.items() if k != "requests"} for s in provider["steps"]]
        providers.append({**provider, "steps": steps})
    return {**report, "providers": providers}
