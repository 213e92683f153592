"""The report model: everything a report shows about one run, as plain JSON-ready data.

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


def report_data(store: Store, run_id: str) -> dict[str, Any]:
    """The report model of a run.

    Shape::

        {"parity_version", "run": {id, kind, status, created_at, finished_at, options,
                                   exchanges, source},
         "providers": [ {name, reference, reachable, verdict, blended_price, price_input,
                         price_output, cost_usd, requests, errors,
                         speed: {ttft_ms: Summary, output_tokens_per_s: Summary, ...} | None,
                         speed_samples: {ttft_ms: [...], output_tokens_per_s: [...]} ,
                         accuracy: {accuracy: Estimate, vs_reference: Comparison, ...} | None,
                         conformance: [ {id, family, checks, status, figure, bar,
                                         evidence: [...]} ], ...} ],
         "summary": [ {name, status: faithful|degraded|suspicious|reference|unreachable,
                       why} ]}

    For an eval run (`kind == "eval"`), each provider entry is `parity eval`'s result
    (accuracy, vs_reference, samples, tokens, suite_scores_by_repeat, ...) instead.
    Raises KeyError when the store has no such run.
    """
    info = store.run(run_id)
    if info is None:
        raise KeyError(run_id)
    run = {
        "id": info.id,
        "kind": info.kind,
        "status": info.status,
        "created_at": info.created_at,
        "finished_at": info.finished_at,
        "options": info.options,
        "exchanges": info.exchanges,
        "source": info.source,
    }
    if info.kind == "eval":
        providers = analyse_eval(
            store, run_id, stored_providers(store, run_id), EvalOptions(**info.options)
        )
        for p in providers:
            vs = p.get("vs_reference") or {}
            p["verdict"] = (
                "unreachable"
                if p.get("unreachable")
                else "reference"
                if p["reference"]
                else vs.get("verdict", "no data")
            )
    elif info.kind == "bench":
        providers = _bench_providers(store, run_id)
    elif info.kind in ("equiv", "equiv-record"):
        providers = _equiv_providers(store, run_id)
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
            providers.append(entry)
    return {
        "parity_version": __version__,
        "run": run,
        "providers": providers,
        "summary": [verdict_line(p, _failed(_reference(providers))) for p in providers],
    }


def _bench_providers(store: Store, run_id: str) -> list[dict[str, Any]]:
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
            {
                **{k: config.get(k) for k in ("name", "reference", "price_input", "price_output")},
                "reachable": reachable,
                "detail": config.get("detail"),
                "verdict": "unreachable" if reachable is False else "bench",
                "speed": steps[0] if steps else None,
                "bench": mine,
            }
        )
    return entries


def _equiv_providers(store: Store, run_id: str) -> list[dict[str, Any]]:
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
            {
                **{k: config.get(k) for k in ("name", "reference", "price_input", "price_output")},
                "reachable": config.get("reachable"),
                "detail": config.get("detail"),
                "verdict": "reference" if config.get("reference") else f"equiv:{verdict}",
                "equivalence": decision,
            }
        )
    return entries


def _reference(providers: list[dict[str, Any]]) -> dict[str, Any] | None:
    return next((p for p in providers if p.get("reference")), None)


def _failed(provider: dict[str, Any] | None) -> list[str]:
    if provider is None:
        return []
    return [
        c["id"] for c in provider.get("conformance", []) if c.get("status") in ("fail", "error")
    ]


def verdict_line(provider: dict[str, Any], reference_failed: list[str]) -> dict[str, str]:
    """One line per provider: faithful / degraded / suspicious (or reference, unreachable),
    and why, from its accuracy verdict and the conformance checks it fails that the
    reference passes (a check the reference fails too is the engine's, not this provider's,
    and is named apart)."""
    name = provider["name"]
    verdict = provider.get("verdict", "no data")
    all_failed = _failed(provider)
    failed = [c for c in all_failed if provider.get("reference") or c not in reference_failed]
    shared = [c for c in all_failed if c not in failed]
    reasons = []
    acc = provider.get("accuracy") or {}
    vs = acc.get("vs_reference") if "accuracy" in acc else provider.get("vs_reference")
    if vs:
        reasons.append(
            f"accuracy {vs['diff'] * 100:+.1f} points [{vs['low'] * 100:+.0f}, "
            f"{vs['high'] * 100:+.0f}] vs the reference ({vs['verdict']})"
        )
    if failed:
        reasons.append("fails " + ", ".join(failed))
    if shared:
        reasons.append("like the reference, fails " + ", ".join(shared))
    if str(verdict).startswith("equiv:"):
        outcome = str(verdict).removeprefix("equiv:")
        statuses = {"same": "faithful", "different": "degraded", "unreachable": "unreachable"}
        why = f"output distribution vs the reference: {outcome}"
        return {"name": name, "status": statuses.get(outcome, "suspicious"), "why": why}
    if verdict == "bench":
        return {"name": name, "status": "bench", "why": "speed benchmark only (parity bench)"}
    if verdict == "unreachable":
        status = "unreachable"
        reasons = [str(provider.get("detail") or "no answer to GET /models")]
    elif verdict == "reference":
        status = "reference"
        if failed:
            reasons = ["the reference itself fails " + ", ".join(failed)]
    elif verdict == "degraded":
        status = "degraded"
    elif failed:
        status = "suspicious"
    elif verdict in ("equivalent", "inconclusive", "better"):
        status = "faithful"
        if verdict == "inconclusive":
            reasons.append("no significant difference found (not proven equivalent)")
    else:
        status = "suspicious"
        reasons.append("no usable accuracy data")
    return {"name": name, "status": status, "why": "; ".join(reasons) or "-"}
