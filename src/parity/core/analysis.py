"""Results from the store: a pure function of the stored exchanges of a run.

Nothing here talks to a provider: analysing a run twice gives the same figures, and a
report can be redrawn at any time from the SQLite file alone.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from parity.accuracy import probe as accuracy
from parity.conformance import base
from parity.conformance.base import Check, CheckInput, PlanContext, Status
from parity.core.config import Provider
from parity.core.exchange import Exchange
from parity.core.plan import RunOptions, RunPlan
from parity.core.store import Store
from parity.speed import probe as speed

log = logging.getLogger(__name__)


@dataclass
class ProviderResult:
    """Everything a run found about one provider."""

    name: str
    reference: bool
    reachable: bool | None
    detail: str | None
    price_input: float | None
    price_output: float | None
    blended_price: float | None
    requests: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None
    speed: dict[str, Any] | None = None
    accuracy: dict[str, Any] | None = None
    conformance: list[dict[str, Any]] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        """'reference', 'unreachable', 'no data' or the accuracy verdict vs the reference."""
        if self.reachable is False:
            return "unreachable"
        if self.reference:
            return "reference"
        if not self.accuracy or self.accuracy.get("accuracy") is None:
            return "no data"
        vs = self.accuracy.get("vs_reference")
        return str(vs["verdict"]) if vs else "no reference"

    def conformance_counts(self) -> tuple[int, int]:
        """(passed, judged): checks that passed, out of those that were not n/a."""
        judged = [c for c in self.conformance if c["status"] != Status.NOT_APPLICABLE]
        return sum(c["status"] == Status.PASS for c in judged), len(judged)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with the derived verdict."""
        data = asdict(self)
        data["verdict"] = self.verdict
        passed, judged = self.conformance_counts()
        data["conformance_passed"] = passed
        data["conformance_judged"] = judged
        return data


def analyse_run(store: Store, run_id: str, plan: RunPlan | RunOptions) -> list[ProviderResult]:
    """Compute every provider's results from the stored exchanges and save them as results."""
    plan = RunPlan.of(plan)
    options = plan.options
    configs = store.providers(run_id)
    by_provider: dict[str, dict[str, Exchange]] = defaultdict(dict)
    for item in store.exchanges(run_id):
        by_provider[item.provider][item.key] = item.exchange
    providers = {c["name"]: _provider(c) for c in configs}
    reference = next((p for p in providers.values() if p.reference), None)
    reference_exchanges = by_provider.get(reference.name) if reference else None
    suite = plan.suite
    reference_scores = accuracy.scores(suite, reference_exchanges) if reference_exchanges else None

    results = []
    provider_scores: dict[str, dict[str, list[float]]] = {}
    for config in configs:
        provider = providers[config["name"]]
        exchanges = by_provider.get(provider.name, {})
        result = ProviderResult(
            name=provider.name,
            reference=provider.reference,
            reachable=config.get("reachable"),
            detail=config.get("detail"),
            price_input=provider.price_input,
            price_output=provider.price_output,
            blended_price=provider.blended_price(),
        )
        _accounting(result, provider, exchanges)
        if exchanges:
            speed_x = [
                x for k, x in exchanges.items() if k.startswith("speed/") and k != "speed/warmup"
            ]
            if speed_x:
                result.speed = speed.analyse(speed_x)
            accuracy_x = {k: x for k, x in exchanges.items() if k.startswith("accuracy/")}
            if accuracy_x:
                errors = sum(not x.ok for x in accuracy_x.values())
                provider_scores[provider.name] = accuracy.scores(suite, accuracy_x)
                result.accuracy = accuracy.analyse(
                    provider_scores[provider.name], None, errors, options.margin
                )
                result.accuracy["suite"] = suite.name
                factor = options.reference_repeats if provider.reference else 1
                result.accuracy["repeats"] = options.repeats * factor
        if options.conformance and (exchanges or result.reachable is False):
            # A provider the run found unreachable or unavailable gets a row per check too:
            # an error (unavailable), never a failure and never a silent gap.
            down = (result.detail or "unreachable") if result.reachable is False else None
            result.conformance = conformance_rows(
                provider, exchanges, reference, reference_exchanges, plan, unavailable=down
            )
        results.append(result)
    # Every provider against the reference at once: Holm across them (stats.estimates).
    if reference_scores is not None and reference is not None:
        others = {n: s for n, s in provider_scores.items() if n != reference.name}
        compared = accuracy.compare(others, reference_scores, options.margin)
        for result in results:
            vs = compared.get(result.name)
            if vs is not None and result.accuracy is not None:
                result.accuracy["vs_reference"] = vs
    for result in results:
        store.put_result(run_id, result.name, "summary", "provider", result.to_dict())
    return results


def _provider(config: dict[str, Any]) -> Provider:
    fields = {k: v for k, v in config.items() if k not in ("reachable", "detail", "headers")}
    return Provider.model_validate(fields)


def stored_providers(store: Store, run_id: str) -> list[Provider]:
    """A run's providers as recorded in the store (header values hidden, no keys)."""
    return [_provider(c) for c in store.providers(run_id)]


def _accounting(result: ProviderResult, provider: Provider, exchanges: dict[str, Exchange]) -> None:
    result.requests = len(exchanges)
    for x in exchanges.values():
        if x.error:
            result.errors[x.error.value] = result.errors.get(x.error.value, 0) + 1
        result.prompt_tokens += x.prompt_tokens() or 0
        result.completion_tokens += x.completion_tokens() or 0
    result.cost_usd = provider.cost_usd(result.prompt_tokens, result.completion_tokens)


def conformance_rows(
    provider: Provider,
    exchanges: Mapping[str, Exchange],
    reference: Provider | None,
    reference_exchanges: Mapping[str, Exchange] | None,
    plan: RunPlan | RunOptions,
    *,
    unavailable: str | None = None,
) -> list[dict[str, Any]]:
    """Judge every selected conformance check for `provider`: one JSON-ready row per check
    (id, family, checks, required, status, figure, bar, cost, evidence).

    An outage is no finding: a check whose every request failed at the transport (no
    connection, a timeout, a gateway's 502/503/504) is an error "unavailable: ...", and so is,
    for a provider the run marked `unavailable` (the reason: unreachable at the start, or
    unavailable after consecutive transport failures), every check that is incomplete or
    holds a transport failure. A reference with no usable answer to a check sets no bar."""
    plan = RunPlan.of(plan)
    options = plan.options
    out = []
    for check in plan.checks:
        planned = check.plan(PlanContext(provider, options.tries))
        keys = [r.key for r in planned]
        mine = {k: exchanges[k] for k in keys if k in exchanges}
        gate = base.unavailable(len(keys), mine, unavailable) if unavailable else None
        if gate is None and len(mine) == len(keys):
            gate = base.outage(mine)
        if gate is not None:
            out.append(_row(check, gate.status, gate.figure, gate.bar, gate.evidence, len(keys)))
            continue
        if len(mine) < len(keys):
            out.append(_row(check, "n/a", "not run (incomplete)", "-", [], len(keys)))
            continue
        ref = None
        ref_down = False
        if (
            reference is not None
            and reference_exchanges is not None
            and reference.name != provider.name
        ):
            ref_keys = [r.key for r in check.plan(PlanContext(reference, options.tries))]
            ref = {k: reference_exchanges[k] for k in ref_keys if k in reference_exchanges}
            if len(ref) < len(ref_keys) or base.outage(ref) is not None:
                ref, ref_down = None, True  # an outage (or a gap) sets no bar
        if check.needs_reference and ref is None and not provider.reference:
            why = (
                "needs a reference provider: the reference has no usable answer to it "
                "(unavailable or incomplete)"
                if ref_down
                else "needs a reference provider: none in this run"
            )
            out.append(_row(check, "n/a", why, "-", [], 0))
            continue
        try:
            res = check.judge(CheckInput(provider, mine, ref, options.tries))
        except Exception as exc:  # a judge must never sink the whole report
            log.exception("check %s failed to judge %s", check.id, provider.name)
            out.append(_row(check, "error", f"judge crashed: {exc!r}"[:200], "-", [], len(keys)))
            continue
        out.append(_row(check, res.status, res.figure, res.bar, res.evidence, len(keys)))
    return out


def _row(
    check: Check,
    status: str,
    figure: str,
    bar: str,
    evidence: list[dict[str, Any]],
    cost: int,
) -> dict[str, Any]:
    return {
        "id": check.id,
        "family": check.family,
        "checks": check.checks,
        "required": check.required,
        "status": str(status),
        "figure": figure,
        "bar": bar,
        "cost": cost,
        "evidence": evidence,
    }
