"""The report model of one run: everything a report shows, typed (`parity.report.model`).

Every output format (terminal, HTML, JSON, CSV, JUnit, Markdown) and `parity diff` draw from
`report_data`, a pure function of the store, so they can never disagree with each other.
"""

from __future__ import annotations

from typing import Any

from parity import __version__
from parity.accuracy.evaluate import EvalOptions, analyse_eval
from parity.core.analysis import analyse_run, stored_providers
from parity.core.plan import RunOptions
from parity.core.store import Store
from parity.report.figures import figures
from parity.report.format import margin_points, points, points_range
from parity.report.model import (
    BenchProvider,
    EquivProvider,
    ProviderEntry,
    Report,
    Run,
    VerdictLine,
    provider_entry,
)


def report_data(store: Store, run_id: str) -> Report:
    """The report model of a run (`parity.report.model.Report`): the run, one entry per
    provider and one verdict line per provider.

    A `run` run's entries are `RunProvider`s (speed, accuracy with its comparison with the
    reference, conformance rows, price and cost, speed samples); an `eval` run's are
    `EvalProvider`s (`parity eval`'s result: accuracy, vs_reference, samples, tokens,
    suite_scores_by_repeat, ...) or `UnreachableEvalProvider`s; `bench` and `equiv` runs
    carry what those commands stored. `report.to_dict()` is the JSON form.
    Raises KeyError when the store has no such run.
    """
    info = store.run(run_id)
    if info is None:
        raise KeyError(run_id)
    run = Run(
        id=info.id,
        kind=info.kind,
        status=info.status,
        created_at=info.created_at,
        finished_at=info.finished_at,
        options=info.options,
        exchanges=info.exchanges,
        source=info.source,
    )
    providers: list[ProviderEntry]
    if info.kind == "eval":
        providers = []
        for p in analyse_eval(
            store, run_id, stored_providers(store, run_id), EvalOptions(**info.options)
        ):
            vs = p.get("vs_reference") or {}
            verdict = (
                "unreachable"
                if p.get("unreachable")
                else "reference"
                if p["reference"]
                else vs.get("verdict", "no data")
            )
            providers.append(provider_entry("eval", {**p, "verdict": verdict}))
    elif info.kind == "bench":
        providers = list(_bench_providers(store, run_id))
    elif info.kind in ("equiv", "equiv-record"):
        providers = list(_equiv_providers(store, run_id))
    else:
        results = analyse_run(store, run_id, RunOptions(**info.options))
        providers = []
        for result in results:
            entry = result.to_dict()
            exchanges = [
                item.exchange
                for item in store.exchanges(run_id, result.name, "speed")
                if item.key != "speed/warmup" and item.exchange.ok
            ]
            entry["speed_samples"] = {
                "ttft_ms": [v for x in exchanges if (v := x.ttft_ms()) is not None],
                "output_tokens_per_s": [
                    v for x in exchanges if (v := x.output_tokens_per_s()) is not None
                ],
                "e2e_ms": [v for x in exchanges if (v := x.e2e_ms()) is not None],
            }
            providers.append(provider_entry(info.kind, entry))
    reference_failed = _failed(next((p for p in providers if p.reference), None))
    return Report(
        parity_version=__version__,
        run=run,
        providers=providers,
        summary=[verdict_line(p, reference_failed) for p in providers],
    )


# What a bench or equiv entry takes from the provider's stored settings, first.
_CONFIG_KEYS = ("name", "reference", "price_input", "price_output")


def _bench_providers(store: Store, run_id: str) -> list[BenchProvider]:
    """Provider entries of a `parity bench` run: its first step's speed aggregates (the shape
    the other reports read) and every stored bench result under `bench`."""
    results: dict[str, dict[str, Any]] = {}
    for provider, pillar, name, value in store.results(run_id):
        if not name.endswith("/requests"):
            results.setdefault(provider, {})[f"{pillar}/{name}"] = value
    entries = []
    for config in store.providers(run_id):
        mine = results.get(config["name"], {})
        steps = [v for k, v in mine.items() if k.startswith("speed/bench/") and "ttft_ms" in v]
        reachable = config.get("reachable")
        entries.append(
            BenchProvider.model_validate(
                {
                    **{k: config.get(k) for k in _CONFIG_KEYS},
                    "reachable": reachable,
                    "detail": config.get("detail"),
                    "verdict": "unreachable" if reachable is False else "bench",
                    "speed": steps[0] if steps else None,
                    "bench": mine,
                }
            )
        )
    return entries


def _equiv_providers(store: Store, run_id: str) -> list[EquivProvider]:
    """Provider entries of a `parity equiv` run: its stored decision under `equivalence`."""
    decisions = {
        provider: value
        for provider, pillar, name, value in store.results(run_id)
        if pillar == "equivalence" and name == "decision"
    }
    entries = []
    for config in store.providers(run_id):
        decision = decisions.get(config["name"])
        verdict = decision.get("verdict") if isinstance(decision, dict) else None
        entries.append(
            EquivProvider.model_validate(
                {
                    **{k: config.get(k) for k in _CONFIG_KEYS},
                    "reachable": config.get("reachable"),
                    "detail": config.get("detail"),
                    "verdict": "reference" if config.get("reference") else f"equiv:{verdict}",
                    "equivalence": decision,
                }
            )
        )
    return entries


def _failed(provider: ProviderEntry | None) -> list[str]:
    """The conformance checks a provider failed or got no usable answer to."""
    if provider is None:
        return []
    return [c.id for c in figures(provider).failed_checks()]


def _check_reasons(prefix: str, checks: list[str], errored: set[str], got: str = "") -> list[str]:
    """'fails a, b' and 'no usable answer to c (an outage, not a failure)', each prefixed."""
    fails = [c for c in checks if c not in errored]
    unanswered = [c for c in checks if c in errored]
    out = [f"{prefix}fails " + ", ".join(fails)] if fails else []
    if unanswered:
        names = ", ".join(unanswered)
        lead = f"{prefix.strip()}{got} " if prefix else ""
        out.append(f"{lead}no usable answer to {names} (an outage, not a failure)")
    return out


def verdict_line(provider: ProviderEntry, reference_failed: list[str]) -> VerdictLine:
    """One line per provider, and why: its status from its accuracy verdict and the
    conformance checks it fails that the reference passes (a check the reference fails too
    is the engine's, not this provider's, and is named apart).

    Statuses: degraded (the corrected test found it less accurate), suspicious (fails a
    check of its own, or has no usable accuracy data), else its accuracy verdict:
    equivalent (the interval lies within the margin: the only pass), better, or no
    difference found (nothing shown either way: not a pass); and reference, unreachable.
    A `parity equiv` provider is equivalent (same), degraded (different) or suspicious."""
    f = figures(provider)
    name = provider.name
    verdict = provider.verdict
    all_failed = _failed(provider)
    failed = [c for c in all_failed if provider.reference or c not in reference_failed]
    shared = [c for c in all_failed if c not in failed]
    reasons = []
    vs = f.vs_reference
    if vs is not None:
        reasons.append(
            f"accuracy {points(vs.diff)} points {points_range(vs.low, vs.high)} "
            f"vs the reference ({vs.verdict})"
        )
    # A check without a usable answer (an error: an outage) is named so, not "fails".
    errored = {c.id for c in f.conformance if c.status == "error"}
    reasons += _check_reasons("", failed, errored)
    reasons += _check_reasons("like the reference, ", shared, errored)
    if verdict.startswith("equiv:"):
        outcome = verdict.removeprefix("equiv:")
        statuses = {"same": "equivalent", "different": "degraded", "unreachable": "unreachable"}
        why = f"output distribution vs the reference: {outcome}"
        return VerdictLine(name=name, status=statuses.get(outcome, "suspicious"), why=why)
    if verdict == "bench":
        return VerdictLine(name=name, status="bench", why="speed benchmark only (parity bench)")
    if verdict == "unreachable":
        status = "unreachable"
        reasons = [str(f.detail or "no answer to GET /models")]
    elif verdict == "reference":
        status = "reference"
        if failed:
            reasons = _check_reasons("the reference itself ", failed, errored, got=" got")
    elif verdict == "degraded":
        status = "degraded"
    elif failed:
        status = "suspicious"
    elif verdict in ("equivalent", "better"):
        status = verdict
    elif verdict == "no difference found":
        status = verdict
        margin = vs.margin if vs is not None else None
        within = f"±{margin_points(margin)} points" if margin else "the margin"
        reasons.append(f"not shown to differ, nor to be within {within}")
    else:
        status = "suspicious"
        reasons.append("no usable accuracy data")
    return VerdictLine(name=name, status=status, why="; ".join(reasons) or "-")
