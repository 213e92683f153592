"""`parity conform`: run the conformance suite on every provider of a providers file.

A conform run is an ordinary run (same store, resume and reports) with speed and accuracy
off and the chosen checks on; this module adds what the command shows: the cost of each
check before sending, the check x provider table after, the total spent, and the exit
status (1 when a required check fails on any provider, or errors: a provider unreachable
or unavailable, whose checks are errors, not failures).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from parity.core.analysis import ProviderResult, analyse_run
from parity.core.config import ProvidersFile
from parity.core.dburl import Db
from parity.core.plan import RunOptions, RunPlan
from parity.core.session import run_providers
from parity.core.store import Store
from parity.report.conform_table import conform_table, cost_table
from parity.report.terminal import ERRORS_HEADING, errors, failures

KIND = "conform"


def conform_options(checks: Sequence[str] | None, tries: int, retries: int = 1) -> RunOptions:
    """The run options of a conform run: every check unless `checks` selects some."""
    return RunOptions(
        speed_requests=0,
        accuracy=False,
        conformance=True,
        checks=tuple(checks) if checks else ("all",),
        tries=tries,
        retries=retries,
    )


def preview(providers: ProvidersFile, plan: RunPlan | RunOptions, console: Console) -> int:
    """Print what each check costs per provider; return the distinct requests in all."""
    plan = RunPlan.of(plan)
    checks = list(plan.checks)
    console.print(cost_table(checks, providers.providers, plan.options.tries))
    total = sum(len(plan.requests("preview", p)) for p in providers.providers)
    if not any(p.reference for p in providers.providers):
        needing = [c.id for c in checks if c.needs_reference]
        if needing:
            console.print(
                f"no reference provider: {', '.join(needing)} will be n/a (mark one "
                "provider `reference = true` to set their bars)",
                highlight=False,
            )
    console.print(f"{total} distinct requests in all (shared requests are sent once)")
    return total


def run_conform(
    db: Db,
    providers: ProvidersFile,
    plan: RunPlan | RunOptions,
    source: Path | None,
    run_id: str | None,
    out: Console,
    err: Console,
) -> tuple[str, list[ProviderResult]]:
    """Send the suite (or what a resumed run lacks), judge it, print the table and totals."""
    plan = RunPlan.of(plan)
    options = plan.options
    run_id = run_providers(db, providers, plan, source, run_id, err, kind=KIND)
    with Store(db) as store:
        results = analyse_run(store, run_id, plan)
    title = f"parity conform {run_id}: {len(results[0].conformance) if results else 0} checks"
    if options.tries > 1:
        title += f", {options.tries} tries per case"
    out.print(conform_table(results, title))
    lines = failures(list(results))
    if lines:
        out.print("[bold]failures[/] (evidence: the request and the response, in --json)")
        for line in lines:
            out.print(line, highlight=False)
    unanswered = errors(list(results))
    if unanswered:
        out.print(ERRORS_HEADING)
        for line in unanswered:
            out.print(line, highlight=False)
    requests = sum(r.requests for r in results)
    tokens = sum(r.prompt_tokens + r.completion_tokens for r in results)
    cost = sum(r.cost_usd or 0 for r in results)
    spent = f"spent: {requests} requests, {tokens:,} tokens"
    if cost:
        spent += f", ${cost:.4f}"
    out.print(spent, highlight=False)
    return run_id, results


def failed_required(results: Sequence[ProviderResult]) -> list[tuple[str, str]]:
    """(provider, check id) for every required check that failed or errored (an error: no
    usable answer, the provider unreachable or unavailable; exit code 1 as for a failure,
    as `parity run` exits 1 on an unreachable provider; JUnit tells them apart)."""
    return [
        (r.name, c["id"])
        for r in results
        for c in r.conformance
        if c.get("required", True) and c["status"] in ("fail", "error")
    ]
