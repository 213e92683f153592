"""One provider's headline figures, read the same way from any kind of report entry.

`report_data` keeps each kind's own shape (a `RunProvider` nests accuracy and carries speed
and conformance; an `EvalProvider` has accuracy at the top and neither of the others; bench
and equiv entries carry what those commands stored). The exports, `parity history` and
`parity diff` read them through `figures` so none of them has to know the difference.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from parity.report.format import p_value, pct, pct_range, points, points_range
from parity.report.model import (
    BenchProvider,
    ConformanceRow,
    Difference,
    Estimate,
    EvalProvider,
    ProviderEntry,
    Report,
    Run,
    RunProvider,
    Summary,
    UnreachableEvalProvider,
    VerdictLine,
)

# Speed metrics of a report entry: name -> unit. Lower is better for times, higher for tok/s.
SPEED_UNITS = {
    "ttft_ms": "ms",
    "ttfat_ms": "ms",
    "output_tokens_per_s": "tok/s",
    "e2e_ms": "ms",
}


@dataclass(frozen=True)
class Figures:
    """A provider's figures from one report entry; None (or empty) where not measured."""

    name: str
    reference: bool
    unreachable: bool
    detail: str | None
    verdict: str
    accuracy: Estimate | None
    vs_reference: Difference | None
    speed: dict[str, Summary] = field(default_factory=dict)  # metric (SPEED_UNITS) -> Summary
    speed_samples: dict[str, list[float]] = field(default_factory=dict)
    blended_price: float | None = None
    cost_usd: float | None = None
    conformance: list[ConformanceRow] = field(default_factory=list)

    @property
    def conformance_judged(self) -> int:
        """Checks that applied (not n/a)."""
        return sum(c.status != "n/a" for c in self.conformance)

    @property
    def conformance_passed(self) -> int:
        """Checks that passed."""
        return sum(c.status == "pass" for c in self.conformance)

    def p50(self, metric: str) -> float | None:
        """The median of a speed metric (see `SPEED_UNITS`), if measured."""
        summary = self.speed.get(metric)
        return None if summary is None or summary.p50 is None else float(summary.p50)

    def count(self, metric: str) -> int:
        """How many requests a speed metric was measured on."""
        summary = self.speed.get(metric)
        return int(summary.count or 0) if summary is not None else 0

    def failed_checks(self) -> list[ConformanceRow]:
        """Conformance checks that failed or got no usable answer."""
        return [c for c in self.conformance if c.status in ("fail", "error")]


def figures(provider: ProviderEntry) -> Figures:
    """Read a provider entry of `report_data` (any run kind) into `Figures`."""
    verdict = provider.verdict or "no data"
    estimate: Estimate | None = None
    vs: Difference | None = None
    speed: dict[str, Summary] = {}
    samples: dict[str, list[float]] = {}
    blended = cost = detail = None
    conformance: list[ConformanceRow] = []
    unreachable = verdict == "unreachable"
    if isinstance(provider, RunProvider):
        if provider.accuracy is not None:
            estimate, vs = provider.accuracy.accuracy, provider.accuracy.vs_reference
        if provider.speed is not None:
            speed = _summaries(provider.speed.summary)
        samples = {k: [float(x) for x in v] for k, v in provider.speed_samples.to_dict().items()}
        blended, cost, detail = provider.blended_price, provider.cost_usd, provider.detail
        conformance = list(provider.conformance)
        unreachable = unreachable or provider.reachable is False
    elif isinstance(provider, EvalProvider):
        estimate, vs, cost = provider.accuracy, provider.vs_reference, provider.cost_usd
    elif isinstance(provider, UnreachableEvalProvider):
        unreachable = True
    else:  # bench, equiv
        if isinstance(provider, BenchProvider):
            speed = _summaries(provider.summary)
        detail = provider.detail
        unreachable = unreachable or provider.reachable is False
    return Figures(
        name=provider.name,
        reference=provider.reference,
        unreachable=unreachable,
        detail=detail,
        verdict="unreachable" if unreachable else verdict,
        accuracy=estimate,
        vs_reference=vs,
        speed=speed,
        speed_samples=samples,
        blended_price=blended,
        cost_usd=cost,
        conformance=conformance,
    )


def _summaries(summary: Callable[[str], Summary | None]) -> dict[str, Summary]:
    found = {metric: summary(metric) for metric in SPEED_UNITS}
    return {k: v for k, v in found.items() if v is not None}


def statuses(data: Report) -> dict[str, VerdictLine]:
    """The report's verdict lines by provider name."""
    return {s.name: s for s in data.summary}


def describe_run(run: Run) -> str:
    """A short description of what a run measured: kind, suite, repeats, margin."""
    options: Mapping[str, object] = run.options or {}
    parts = [f"{run.kind} {run.id}"]
    if "suite" in options:
        suite = str(options["suite"])
        if options.get("limit"):
            suite += f":{options['limit']}"
        parts.append(f"suite {suite} x{options.get('repeats', '?')}")
    margin = options.get("margin")
    if isinstance(margin, int | float):
        parts.append(f"margin {pct(margin)}")
    return ", ".join(parts)


def accuracy_text(estimate: Estimate | None) -> str:
    """'44% [34%, 53%]' or '-'."""
    if estimate is None:
        return "-"
    return f"{pct(estimate.value)} {pct_range(estimate.low, estimate.high)}"


def delta_text(vs: Difference | None) -> str:
    """'-15.6 [-27, -4] p=0.003' (points) or '-'."""
    if vs is None:
        return "-"
    text = f"{points(vs.diff)} {points_range(vs.low, vs.high)}"
    if vs.p_value is not None:
        text += f" {p_value(vs.p_value)}"
    return text
