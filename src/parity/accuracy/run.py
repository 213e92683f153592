"""`parity eval`: sample a suite at every provider (adaptive or fixed), then report it.

An eval run is opened through `core.lifecycle.open_run` like every run, so Ctrl-C and
SIGTERM mark it interrupted (resumable) and any other error marks it failed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.console import Console

from parity.accuracy.evaluate import (
    AdaptiveEval,
    EvalOptions,
    analyse_eval,
    drive_adaptive,
    load_suite,
    planned_fixed,
    provider_requests,
    sample_records,
)
from parity.accuracy.suites import Suite
from parity.core.analysis import stored_providers
from parity.core.config import ProvidersFile
from parity.core.dburl import Db
from parity.core.errors import ConfigError
from parity.core.exchange import Exchange
from parity.core.lifecycle import open_run
from parity.core.request import Request
from parity.core.runner import Runner
from parity.core.session import ProviderBars, progress_bars
from parity.core.store import Store
from parity.report.eval_table import eval_table

__all__ = ["analyse_and_store_eval", "check_suite", "print_eval", "run_eval"]


def check_suite(options: EvalOptions) -> None:
    """Load the suite `options` names once, so a bad name is a `ConfigError` before sending."""
    try:
        load_suite(options)
    except KeyError as exc:
        raise ConfigError(str(exc.args[0])) from None


def _describe(bars: ProviderBars, state: AdaptiveEval) -> None:
    """After each adaptive round: each provider's interval, verdict, accuracy and spend."""
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
        bars.label(
            name,
            desc,
            completed=done if done is not None else ev.spend.samples,
            total=len(state.pairs) if done is not None else ev.spend.samples,
        )


def run_eval(
    db: Db,
    providers: ProvidersFile,
    options: EvalOptions,
    source: Path | None,
    run_id: str | None,
    console: Console,
) -> str:
    """Create (or continue) an eval run and sample until every verdict is reached (adaptive)
    or every planned sample is stored (fixed); returns the run id."""
    suite = load_suite(options)
    with (
        open_run(
            db,
            "eval",
            options.model_dump(),
            source=str(source) if source else None,
            resume=run_id,
            announce=lambda line: console.print(line, highlight=False),
        ) as run,
        progress_bars(console, [p.name for p in providers.providers]) as bars,
    ):
        store, current = run.store, run.run_id

        async def main() -> None:
            async with Runner(
                store,
                current,
                providers.providers,
                options.retries,
                None,
                options.cache,
                max_time_s=options.max_time_s,
            ) as runner:
                if options.adaptive and any(p.reference for p in providers.providers):
                    await _adaptive_or_fixed(runner, store, current, suite, options, bars)
                else:  # fixed: each provider pinged and sampled on its own, none waits
                    runner.progress = bars
                    await runner.probe_and_send(
                        lambda provider: provider_requests(suite, options, provider)
                    )
            for name, detail in runner.stats.unreachable.items():
                bars.label(name, f"{name} (unreachable: {detail})")
            for name in runner.stats.unavailable:
                bars.label(name, f"{name} (unavailable: {runner.stats.not_sent[name]} not sent)")

        asyncio.run(main())
    return run.run_id


async def _adaptive_or_fixed(
    runner: Runner,
    store: Store,
    run_id: str,
    suite: Suite,
    options: EvalOptions,
    bars: ProviderBars,
) -> None:
    """Adaptive rounds when the reference answered its preflight, else the fixed design."""
    reachable = await runner.preflight()
    reference = next((p for p in reachable if p.reference), None)
    if reference is None:
        runner.progress = bars
        await runner.send(
            planned_fixed(reachable, suite, options.repeats, options.reference_repeats)
        )
        return
    state = AdaptiveEval(suite, reachable, reference, options)

    def fetch(planned: Mapping[str, list[Request]]) -> dict[str, dict[str, Exchange]]:
        return {
            n: store.get_exchanges(run_id, n, [r.key for r in reqs]) for n, reqs in planned.items()
        }

    await drive_adaptive(state, runner.send, fetch, lambda s: _describe(bars, s))


def analyse_and_store_eval(db: Db, run_id: str, options: EvalOptions) -> list[dict[str, Any]]:
    """Recompute an eval run's results from its exchanges and store them (pillar accuracy):
    per provider its estimate, interval and verdict, and its per-sample records."""
    with Store(db) as store:
        providers = stored_providers(store, run_id)
        results = analyse_eval(store, run_id, providers, options)
        records = sample_records(store, run_id, providers, options)
        for r in results:
            store.put_result(run_id, r["name"], "accuracy", "eval", r)
            store.put_result(run_id, r["name"], "accuracy", "samples", records.get(r["name"], []))
    return results


def print_eval(
    results: list[dict[str, Any]], run_id: str, options: EvalOptions, console: Console
) -> None:
    """Print an eval run's table: one row per provider, titled with the suite and design."""
    suite = load_suite(options)
    has_reference = any(r.get("reference") for r in results)
    design = "adaptive" if options.adaptive and has_reference else "fixed"
    title = (
        f"parity eval {run_id}: {suite.name} ({len(suite.problems)} problems), {design}, "
        f"cap {options.repeats}/problem, margin {options.margin:.0%}"
    )
    console.print(eval_table(results, title))
