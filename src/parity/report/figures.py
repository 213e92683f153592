"""One provider's headline figures, read the same way from a "run" or an "eval" report entry.

`report_data` keeps each kind's own shape (a `parity run` entry nests accuracy and carries
speed and conformance; a `parity eval` entry has accuracy at the top and neither of the
others). The exports, `parity history` and `parity diff` read them through `figures` so
none of them has to know the difference.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

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
    accuracy: dict[str, Any] | None  # stats.Estimate as a dict: value, low, high, n_samples
    vs_reference: dict[str, Any] | None  # diff, low, high, p_value (may be None), verdict
    speed: dict[str, dict[str, Any]] = field(default_factory=dict)  # metric -> Summary dict
    speed_samples: dict[str, list[float]] = field(default_factory=dict)
    blended_price: float | None = None
    cost_usd: float | None = None
    conformance: list[dict[str, Any]] = field(default_factory=list)

    @property
    def conformance_judged(self) -> int:
        """Checks that applied (not n/a)."""
        return sum(c.get("status") != "n/a" for c in self.conformance)

    @property
    def conformance_passed(self) -> int:
        """Checks that passed."""
        return sum(c.get("status") == "pass" for c in self.conformance)

    def p50(self, metric: str) -> float | None:
        """The median of a speed metric (see `SPEED_UNITS`), if measured."""
        value = self.speed.get(metric, {}).get("p50")
        return float(value) if value is not None else None

    def count(self, metric: str) -> int:
        """How many requests a speed metric was measured on."""
        return int(self.speed.get(metric, {}).get("count") or 0)

    def failed_checks(self) -> list[dict[str, Any]]:
        """Conformance checks that failed or got no usable answer."""
        return [c for c in self.conformance if c.get("status") in ("fail", "error")]


def figures(provider: Mapping[str, Any]) -> Figures:
    """Read a provider entry of `report_data` (either run kind) into `Figures`."""
    acc = provider.get("accuracy")
    if isinstance(acc, Mapping) and "value" in acc:  # an eval entry: the estimate itself
        estimate: Any = acc
        vs = provider.get("vs_reference")
    elif isinstance(acc, Mapping):  # a run entry: {errors, accuracy, vs_reference, ...}
        estimate = acc.get("accuracy")
        vs = acc.get("vs_reference")
    else:
        estimate, vs = None, provider.get("vs_reference")
    verdict = str(provider.get("verdict") or "no data")
    unreachable = (
        bool(provider.get("unreachable"))
        or provider.get("reachable") is False
        or verdict == "unreachable"
    )
    speed = provider.get("speed") or {}
    return Figures(
        name=str(provider["name"]),
        reference=bool(provider.get("reference")),
        unreachable=unreachable,
        detail=provider.get("detail"),
        verdict="unreachable" if unreachable else verdict,
        accuracy=dict(estimate) if isinstance(estimate, Mapping) else None,
        vs_reference=dict(vs) if isinstance(vs, Mapping) else None,
        speed={k: dict(v) for k, v in speed.items() if k in SPEED_UNITS and isinstance(v, Mapping)},
        speed_samples={
            k: [float(x) for x in v] for k, v in (provider.get("speed_samples") or {}).items()
        },
        blended_price=provider.get("blended_price"),
        cost_usd=provider.get("cost_usd"),
        conformance=list(provider.get("conformance") or []),
    )


def statuses(data: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """The report's verdict lines by provider name: {status, why}."""
    return {s["name"]: s for s in data.get("summary", [])}


def describe_run(run: Mapping[str, Any]) -> str:
    """A short description of what a run measured: kind, suite, repeats, margin."""
    options = run.get("options") or {}
    parts = [f"{run.get('kind', 'run')} {run.get('id', '?')}"]
    if "suite" in options:
        suite = str(options["suite"])
        if options.get("limit"):
            suite += f":{options['limit']}"
        parts.append(f"suite {suite} x{options.get('repeats', '?')}")
    if isinstance(options.get("margin"), int | float):
        parts.append(f"margin {options['margin']:.0%}")
    return ", ".join(parts)


def pct(value: float | None, digits: int = 0) -> str:
    """0.4375 -> '44%' ('-' for None)."""
    return "-" if value is None else f"{value * 100:.{digits}f}%"


def points(value: float | None) -> str:
    """A difference of fractions in percentage points, signed: -0.156 -> '-15.6'."""
    return "?" if value is None else f"{value * 100:+.1f}"


def accuracy_text(estimate: Mapping[str, Any] | None) -> str:
    """'44% [34%, 53%]' or '-'."""
    if not estimate:
        return "-"
    return f"{pct(estimate['value'])} [{pct(estimate['low'])}, {pct(estimate['high'])}]"


def delta_text(vs: Mapping[str, Any] | None) -> str:
    """'-15.6 [-27, -4] p=0.003' (points) or '-'."""
    if not vs:
        return "-"
    text = f"{points(vs.get('diff'))} [{vs['low'] * 100:+.0f}, {vs['high'] * 100:+.0f}]"
    if vs.get("p_value") is not None:
        text += f" p={vs['p_value']:.2g}"
    return text


def number(value: float | None, fmt: str = ".1f", unit: str = "") -> str:
    """A number with a format and unit, or '-'."""
    return "-" if value is None else f"{value:{fmt}}{unit}"


def dollars(value: float | None, digits: int = 2) -> str:
    """'$0.15' or '-'."""
    return "-" if value is None else f"${value:.{digits}f}"
