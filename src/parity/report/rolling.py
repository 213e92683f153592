"""Rolling medians over a time window of runs, and the alerts a regression between two runs
gives: what `parity watch` reports after each run. Pure functions of the store.

The window holds the store's *finished* `parity run` runs of one providers file created in
`[now - window_s, now]`; per provider (and per vantage, when runs carry one) each figure of
those runs is summarised by its median and a distribution-free confidence interval for the
median built from order statistics (`median_interval`), with the number of runs it rests on.

A regression is what `parity diff` calls one (`report.history.diff`: the verdicts' own
statistics, run B against run A); `alerts` only turns its per-provider findings into flat
records (provider, metric, before, after, verdict, run ids) for a webhook.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable, MutableMapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from scipy.stats import binom

from parity.core.errors import ParityError
from parity.core.store import RunInfo, Store
from parity.report.data import report_data
from parity.report.figures import Figures, figures
from parity.report.history import SPEED_TESTS
from parity.report.model import DiffResult, ProviderDiff

__all__ = [
    "BASELINES",
    "CONFIDENCE",
    "METRICS",
    "Alert",
    "MedianInterval",
    "ProviderRolling",
    "Rolling",
    "alerts",
    "baseline_run",
    "median_interval",
    "rolling",
    "same_source",
    "vantage_of",
    "window_runs",
]

CONFIDENCE = 0.95
"""The nominal coverage of each median's interval."""

BASELINES = ("previous", "oldest")
"""What the newest run is compared with: the window's previous run, or its oldest."""


def _accuracy(f: Figures) -> float | None:
    return f.accuracy.value if f.accuracy is not None else None


def _conformance(f: Figures) -> float | None:
    return float(f.conformance_passed) if f.conformance else None


METRICS: dict[str, tuple[str, Callable[[Figures], float | None]]] = {
    "ttft_p50_ms": ("TTFT p50 (ms)", lambda f: f.p50("ttft_ms")),
    "tok_s_p50": ("output tok/s p50", lambda f: f.p50("output_tokens_per_s")),
    "accuracy": ("accuracy (solve rate)", _accuracy),
    "price_blended": ("$/1M blended (list price)", lambda f: f.blended_price),
    "cost_usd": ("run cost ($)", lambda f: f.cost_usd),
    "conformance_passed": ("conformance checks passed", _conformance),
}
"""Each figure summarised over the window: name -> (label, how it is read from one run)."""


@dataclass(frozen=True)
class MedianInterval:
    """The median of `n` values and an interval for the population median: `[low, high]`
    covers it with probability at least `coverage` (None when n < 2: no interval)."""

    median: float | None
    low: float | None
    high: float | None
    coverage: float | None
    n: int


def median_interval(values: Iterable[float], confidence: float = CONFIDENCE) -> MedianInterval:
    """The median of `values` (NaN and None dropped) and the order-statistic interval
    `[x_(k), x_(n+1-k)]` for the median, with the largest k whose exact coverage
    `1 - 2 * P(Bin(n, 1/2) <= k - 1)` is at least `confidence`.

    Distribution-free: it assumes only independent runs from one continuous distribution
    (ties make it conservative). With fewer than 6 values no k reaches 95%: the interval is
    then `[min, max]` and `coverage` says what it really is (1 - 2^(1-n): 94% for n = 5,
    50% for n = 2). n = 1: the value, no interval; n = 0: all None.
    """
    xs = sorted(float(v) for v in values if v is not None and not math.isnan(float(v)))
    n = len(xs)
    if n == 0:
        return MedianInterval(None, None, None, None, 0)
    median = float(statistics.median(xs))
    if n == 1:
        return MedianInterval(median, None, None, None, 1)
    k = 1
    while k + 1 <= (n + 1) // 2 and 1 - 2 * float(binom.cdf(k, n, 0.5)) >= confidence:
        k += 1
    coverage = 1 - 2 * float(binom.cdf(k - 1, n, 0.5))
    return MedianInterval(median, xs[k - 1], xs[n - k], coverage, n)


@dataclass(frozen=True)
class ProviderRolling:
    """One provider's (and vantage's) figures over the window: `runs` runs measured it;
    `metrics` maps each `METRICS` name to its median and interval; `unreachable` counts the
    runs where it did not answer; `verdicts` counts its accuracy verdicts."""

    provider: str
    vantage: str | None
    reference: bool
    runs: int
    unreachable: int
    metrics: dict[str, MedianInterval]
    verdicts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Rolling:
    """The window (`since` to `now`, epoch seconds, `window_s` long), the run ids it holds
    (oldest first) and each provider's rolling figures."""

    source: str | None
    window_s: float
    now: float
    since: float
    confidence: float
    run_ids: list[str]
    providers: list[ProviderRolling]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


def vantage_of(info: RunInfo) -> str | None:
    """Where the run was measured from, if the store records it (None otherwise)."""
    return info.vantage or None


def same_source(info: RunInfo, source: str | Path | None) -> bool:
    """True when the run was started with the providers file `source` (paths compared
    resolved; `source` None matches every run)."""
    if source is None:
        return True
    if info.source is None:
        return False
    return info.source == str(source) or Path(info.source).resolve() == Path(source).resolve()


def window_runs(
    store: Store, source: str | Path | None, window_s: float, now: float
) -> list[RunInfo]:
    """The finished `parity run` runs of providers file `source` created in
    `[now - window_s, now]`, oldest first."""
    since = now - window_s
    return sorted(
        (
            r
            for r in store.runs()
            if r.kind == "run"
            and r.status == "finished"
            and since <= r.created_at <= now
            and same_source(r, source)
        ),
        key=lambda r: (r.created_at, r.id),
    )


def baseline_run(runs: Sequence[RunInfo], newest: RunInfo, mode: str = "previous") -> str | None:
    """The run `newest` is compared with: among `runs` (a window, oldest first) the ones
    created before it from the same vantage, the latest of them (`mode` "previous") or the
    earliest ("oldest"); None when there is none. Raises ValueError for another mode."""
    if mode not in BASELINES:
        raise ValueError(f"unknown baseline {mode!r}; known: {', '.join(BASELINES)}")
    earlier = [
        r
        for r in runs
        if r.id != newest.id
        and (r.created_at, r.id) < (newest.created_at, newest.id)
        and vantage_of(r) == vantage_of(newest)
    ]
    if not earlier:
        return None
    return (earlier[-1] if mode == "previous" else earlier[0]).id


def _run_figures(
    store: Store, info: RunInfo, cache: MutableMapping[str, list[Figures]] | None
) -> list[Figures] | None:
    """Each provider's figures in run `info` (None when its report cannot be rebuilt)."""
    if cache is not None and info.id in cache:
        return cache[info.id]
    try:
        found = [figures(p) for p in report_data(store, info.id).providers]
    except (KeyError, ValueError, OSError, ParityError):
        return None
    if cache is not None:
        cache[info.id] = found
    return found


def rolling(
    store: Store,
    source: str | Path | None,
    window_s: float,
    now: float,
    *,
    confidence: float = CONFIDENCE,
    cache: MutableMapping[str, list[Figures]] | None = None,
) -> Rolling:
    """Rolling medians, with intervals, per provider (and vantage) over the window's runs
    (`window_runs`): every `METRICS` figure, each with the number of runs it rests on.

    Recomputed from the store (`report_data` per run); `cache` (run id -> figures) may carry
    finished runs' figures from one call to the next, since they no longer change. A run
    whose report cannot be rebuilt is left out.
    """
    runs = window_runs(store, source, window_s, now)
    groups: dict[tuple[str, str | None], list[Figures]] = {}
    used: list[str] = []
    for info in runs:
        found = _run_figures(store, info, cache)
        if found is None:
            continue
        used.append(info.id)
        for f in found:
            groups.setdefault((f.name, vantage_of(info)), []).append(f)
    providers = []
    for (name, vantage), figs in groups.items():
        reachable = [f for f in figs if not f.unreachable]
        verdicts: dict[str, int] = {}
        for f in figs:
            verdicts[f.verdict] = verdicts.get(f.verdict, 0) + 1
        metrics = {
            metric: median_interval(
                (v for v in (read(f) for f in reachable) if v is not None), confidence
            )
            for metric, (_, read) in METRICS.items()
        }
        providers.append(
            ProviderRolling(
                provider=name,
                vantage=vantage,
                reference=any(f.reference for f in figs),
                runs=len(figs),
                unreachable=len(figs) - len(reachable),
                metrics=metrics,
                verdicts=verdicts,
            )
        )
    return Rolling(
        source=str(source) if source is not None else None,
        window_s=window_s,
        now=now,
        since=now - window_s,
        confidence=confidence,
        run_ids=used,
        providers=providers,
    )


@dataclass(frozen=True)
class Alert:
    """One regression from run A (`run_a`, the baseline) to run B (`run_b`): which provider,
    which metric, its value before and after, the verdict that makes it a regression, and
    `detail`, the line `parity diff` prints for it."""

    provider: str
    metric: str
    before: Any
    after: Any
    verdict: str
    run_a: str
    run_b: str
    detail: str | None = None
    p_value: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


def _provider_alerts(p: ProviderDiff, run_a: str, run_b: str) -> list[Alert]:
    """One provider's regressions as records, in the order `diff` writes their lines."""
    found: list[tuple[str, Any, Any, str, Any]] = []
    if not p["reachable"]["b"]:
        found.append(("reachable", p["reachable"]["a"], False, "unreachable", None))
    accuracy = p["accuracy"]
    if accuracy["regression"]:
        verdict = str(accuracy.get("verdict", "degraded"))
        found.append(("accuracy", accuracy["a"], accuracy["b"], verdict, accuracy.get("p_value")))
    for metric in SPEED_TESTS:
        test = p["speed"].get(metric)
        if test is not None and test["regression"]:
            found.append((metric, test["a_median"], test["b_median"], "slower", test["p_value"]))
    for flip in p["conformance"]["newly_failing"]:
        found.append((f"conformance:{flip['id']}", flip["a"], flip["b"], "fail", None))
    verdict_line = any(line.startswith(f"{p['name']}: verdict ") for line in p["regressions"])
    if verdict_line:
        found.append(("verdict", p["verdict"]["a"], p["verdict"]["b"], p["verdict"]["b"], None))
    lines: list[str | None] = list(p["regressions"])
    if len(lines) != len(found):  # diff grew a kind of regression this does not know
        lines = [None] * len(found)
    return [
        Alert(p["name"], metric, before, after, verdict, run_a, run_b, line, p_value)
        for (metric, before, after, verdict, p_value), line in zip(found, lines, strict=True)
    ]


def alerts(result: DiffResult) -> list[Alert]:
    """The regressions of a `report.history.diff` result as flat records, in the order of
    its `regressions` lines (each record's `detail` is its line): reachability, accuracy,
    TTFT and output speed, each conformance check that passed and now fails, the verdict."""
    run_a, run_b = result["run_a"]["id"], result["run_b"]["id"]
    return [a for p in result["providers"] for a in _provider_alerts(p, run_a, run_b)]
