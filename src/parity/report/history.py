"""Runs over time: each provider's figures run after run, and what changed between two runs.

Everything is drawn from `report_data` of each run (recomputed from the store, nothing
cached), so `parity history` and `parity diff` agree with `parity report`. Fine for tens
of runs: each report costs about a second.

`diff` tests each change with the same statistics as the verdicts: accuracy by a paired
nested bootstrap over problems (run B's scores against run A's, paired by problem id),
speed by a Mann-Whitney U test on the per-request samples, so a regression is a change
beyond noise, never a single unlucky number.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence

from scipy.stats import mannwhitneyu

from parity.core.errors import ParityError
from parity.core.store import RunInfo, Store
from parity.report.data import report_data
from parity.report.figures import Figures, figures, statuses
from parity.report.format import (
    margin_points,
    number,
    p_value,
    pct,
    points,
    points_range,
    signed_pct,
)
from parity.report.model import (
    AccuracyDiff,
    ConformanceRow,
    Difference,
    DiffResult,
    Flip,
    HistoryPoint,
    HistoryRow,
    HistoryRun,
    ProviderDiff,
    Report,
    RunMeta,
    SpeedTest,
    VerdictLine,
)
from parity.stats.estimates import Verdict, paired_difference

__all__ = [
    "METRICS",
    "SPEED_ALPHA",
    "SPEED_TOLERANCE",
    "accuracy_scores",
    "diff",
    "history",
    "history_series",
]

# The figures `history` gives per run and provider; `metric=` picks one of them.
METRICS = ("accuracy", "verdict", "status", "ttft_p50", "tok_s_p50", "cost", "conformance")

# A speed change is a regression when Mann-Whitney's p is below SPEED_ALPHA and the median
# worsened by more than SPEED_TOLERANCE (a fraction of run A's median).
SPEED_ALPHA = 0.05
SPEED_TOLERANCE = 0.10
# Speed metrics diff compares: sample name -> (label, unit, True when higher is better).
SPEED_TESTS = {
    "ttft_ms": ("TTFT", "ms", False),
    "output_tokens_per_s": ("output tok/s", "tok/s", True),
}
# Accuracy verdicts that fail a provider (the `parity run` exit code's rule).
BAD_VERDICTS = ("degraded", "no data")


# --------------------------------------------------------------------------------------------
# history
# --------------------------------------------------------------------------------------------


def _reports(store: Store, vantage: str | None = None) -> Iterator[tuple[RunInfo, Report]]:
    """Each run's report model (of the runs measured from `vantage`, when given), oldest
    first; runs whose report cannot be rebuilt (a user suite file since moved, options from
    another version) are skipped."""
    for info in sorted(store.runs(vantage=vantage), key=lambda r: (r.created_at, r.id)):
        try:
            data = report_data(store, info.id)
        except (KeyError, ValueError, OSError, ParityError):
            continue
        yield info, data


def _status(lines: Mapping[str, VerdictLine], f: Figures) -> str:
    """The provider's verdict line status (its accuracy verdict when it has no line)."""
    line = lines.get(f.name)
    return line.status if line is not None else f.verdict


def _row(info: RunInfo, f: Figures, status: str) -> HistoryRow:
    acc = f.accuracy
    return {
        "run_id": info.id,
        "created_at": info.created_at,
        "kind": info.kind,
        "run_status": info.status,
        "vantage": info.vantage,
        "provider": f.name,
        "reference": f.reference,
        "accuracy": (
            {"value": acc.value, "low": acc.low, "high": acc.high} if acc is not None else None
        ),
        "verdict": f.verdict,
        "status": status,
        "ttft_p50": f.p50("ttft_ms"),
        "tok_s_p50": f.p50("output_tokens_per_s"),
        "cost": f.cost_usd,
        "conformance": (
            {"passed": f.conformance_passed, "judged": f.conformance_judged}
            if f.conformance
            else None
        ),
    }


def history(
    store: Store,
    provider: str | None = None,
    metric: str | None = None,
    *,
    vantage: str | None = None,
) -> list[HistoryRow]:
    """One row per run (oldest first) per provider: the run (run_id, created_at, kind,
    run_status, vantage), the provider (provider, reference) and its figures: accuracy
    ({value, low, high} or None), verdict (the accuracy verdict: reference, equivalent,
    degraded, ...), status (equivalent, no difference found, better, degraded, suspicious,
    reference, unreachable), ttft_p50 (ms), tok_s_p50, cost ($ of the run) and conformance
    ({passed, judged} or None).

    `provider` keeps that provider's rows only; `metric` (one of `METRICS`) keeps only that
    figure besides the run and provider keys; `vantage` keeps the runs measured from there.
    Raises ValueError for an unknown metric.
    """
    if metric is not None and metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; known: {', '.join(METRICS)}")
    rows = []
    for info, data in _reports(store, vantage):
        lines = statuses(data)
        for entry in data.providers:
            f = figures(entry)
            if provider is not None and f.name != provider:
                continue
            row = _row(info, f, _status(lines, f))
            if metric is not None:
                for other in METRICS:
                    if other != metric:
                        row.pop(other, None)  # type: ignore[misc]
            rows.append(row)
    return rows


def history_series(store: Store) -> list[HistoryRun]:
    """The history shaped for a chart: per run, oldest first, ``{run_id, created_at, kind,
    providers: [{name, reference, accuracy, accuracy_low, accuracy_high, ttft_p50,
    tok_s_p50, verdict, status}]}``; accuracy is the solve rate (a fraction) or None."""
    series: list[HistoryRun] = []
    for info, data in _reports(store):
        lines = statuses(data)
        providers: list[HistoryPoint] = []
        for entry in data.providers:
            f = figures(entry)
            acc = f.accuracy
            providers.append(
                {
                    "name": f.name,
                    "reference": f.reference,
                    "accuracy": acc.value if acc is not None else None,
                    "accuracy_low": acc.low if acc is not None else None,
                    "accuracy_high": acc.high if acc is not None else None,
                    "ttft_p50": f.p50("ttft_ms"),
                    "tok_s_p50": f.p50("output_tokens_per_s"),
                    "verdict": f.verdict,
                    "status": _status(lines, f),
                }
            )
        series.append(
            {
                "run_id": info.id,
                "created_at": info.created_at,
                "kind": info.kind,
                "providers": providers,
            }
        )
    return series


# --------------------------------------------------------------------------------------------
# diff
# --------------------------------------------------------------------------------------------


def accuracy_scores(store: Store, info: RunInfo) -> dict[str, dict[str, list[float]]]:
    """Per provider, the run's accuracy scores by problem id (failed requests unscored)."""
    if info.kind == "eval":
        from parity.accuracy.evaluate import EvalOptions, sample_records
        from parity.core.analysis import stored_providers

        records = sample_records(
            store, info.id, stored_providers(store, info.id), EvalOptions(**info.options)
        )
        out: dict[str, dict[str, list[float]]] = {}
        for name, samples in records.items():
            scores: dict[str, list[float]] = {}
            for r in samples:
                if r["score"] is not None:
                    scores.setdefault(str(r["problem"]), []).append(float(r["score"]))
            out[name] = scores
        return out
    if info.kind not in ("run", "conform"):
        return {}  # bench and equiv runs sample no suite
    from parity.accuracy import probe as accuracy
    from parity.core.exchange import Exchange
    from parity.core.plan import RunOptions, RunPlan

    suite = RunPlan.resolve(RunOptions(**info.options)).suite
    by_provider: dict[str, dict[str, Exchange]] = defaultdict(dict)
    for item in store.exchanges(info.id, probe=accuracy.PROBE):
        by_provider[item.provider][item.key] = item.exchange
    return {name: accuracy.scores(suite, xs) for name, xs in by_provider.items()}


def _suite_of(info: RunInfo) -> str:
    """The suite a run asked, without its `:N` subset (problem ids are the base suite's)."""
    return str(info.options.get("suite", "")).split(":")[0]


def _run_meta(info: RunInfo) -> RunMeta:
    return {
        "id": info.id,
        "kind": info.kind,
        "created_at": info.created_at,
        "status": info.status,
        "suite": info.options.get("suite"),
    }


def diff(store: Store, run_a: str, run_b: str) -> DiffResult:
    """What changed from run A to run B, per provider present in both.

    Returns ``{run_a, run_b, providers: [...], only_in_a, only_in_b, regressions, changes}``.
    ``regressions`` are human lines (provider, what, by how much, interval or p):

    - accuracy: B's per-problem scores against A's, paired by problem id
      (`paired_difference(b, a, margin)`, run B's margin); a regression when the verdict of
      that comparison is "degraded" (the 95% interval lies below 0 and is not inside the
      equivalence margin) — the same rule as a provider's verdict against the reference;
    - speed: TTFT and output tok/s per-request samples, Mann-Whitney U (two-sided); a
      regression when p < `SPEED_ALPHA` and the median worsened by more than
      `SPEED_TOLERANCE`;
    - conformance: a check that passed in A and fails in B (one without a usable answer in
      B, an error, is an outage: a change, and no line at all for a provider unreachable
      or unavailable in B, which its reachability regression covers);
    - verdict: the accuracy verdict vs the reference turned degraded or "no data";
    - reachability: the provider is unreachable in B.

    ``changes`` lists the other differences (improvements, a drop within the margin,
    verdict or status changes, providers only in one run). Raises KeyError(run_id) for a
    run the store does not have.
    """
    infos = []
    for run_id in (run_a, run_b):
        info = store.run(run_id)
        if info is None:
            raise KeyError(run_id)
        infos.append(info)
    info_a, info_b = infos
    data_a, data_b = report_data(store, run_a), report_data(store, run_b)
    figs_a = {p.name: figures(p) for p in data_a.providers}
    figs_b = {p.name: figures(p) for p in data_b.providers}
    lines_a, lines_b = statuses(data_a), statuses(data_b)
    comparable = _suite_of(info_a) == _suite_of(info_b)
    scores_a = accuracy_scores(store, info_a) if comparable else {}
    scores_b = accuracy_scores(store, info_b) if comparable else {}
    margin = float(info_b.options.get("margin") or 0.03)

    providers = []
    for name, fb in figs_b.items():
        fa = figs_a.get(name)
        if fa is None:
            continue
        entry = _provider_diff(
            fa,
            fb,
            _status(lines_a, fa),
            _status(lines_b, fb),
            scores_a.get(name, {}),
            scores_b.get(name, {}),
            margin,
            None if comparable else f"suites differ ({_suite_of(info_a)} vs {_suite_of(info_b)})",
        )
        providers.append(entry)
    only_a = [n for n in figs_a if n not in figs_b]
    only_b = [n for n in figs_b if n not in figs_a]
    changes = [line for p in providers for line in p["changes"]]
    changes += [f"{n}: only in run A ({run_a})" for n in only_a]
    changes += [f"{n}: only in run B ({run_b})" for n in only_b]
    return {
        "run_a": _run_meta(info_a),
        "run_b": _run_meta(info_b),
        "providers": providers,
        "only_in_a": only_a,
        "only_in_b": only_b,
        "regressions": [line for p in providers for line in p["regressions"]],
        "changes": changes,
    }


def _provider_diff(
    fa: Figures,
    fb: Figures,
    status_a: str,
    status_b: str,
    scores_a: Mapping[str, Sequence[float]],
    scores_b: Mapping[str, Sequence[float]],
    margin: float,
    not_comparable: str | None,
) -> ProviderDiff:
    name = fa.name
    regressions: list[str] = []
    changes: list[str] = []

    # Reachability.
    if fb.unreachable:
        when = "also in A" if fa.unreachable else "reachable in A"
        regressions.append(f"{name}: unreachable in B ({fb.detail or 'no answer'}; {when})")
    elif fa.unreachable:
        changes.append(f"{name}: reachable again in B (unreachable in A)")

    # Accuracy, paired by problem.
    accuracy, line = _accuracy_diff(fa, fb, scores_a, scores_b, margin, not_comparable)
    if line:
        (regressions if accuracy["regression"] else changes).append(f"{name}: {line}")

    # Speed.
    speed: dict[str, SpeedTest] = {}
    for metric, (label, unit, higher_better) in SPEED_TESTS.items():
        test = _speed_diff(
            fa.speed_samples.get(metric, []), fb.speed_samples.get(metric, []), higher_better
        )
        if test is None:
            continue
        speed[metric] = test
        if test["regression"] or test["improvement"]:
            line = (
                f"{name}: {label} median {number(test['a_median'])} -> "
                f"{number(test['b_median'])} {unit} ({signed_pct(test['change'], 0)}), "
                f"Mann-Whitney {p_value(test['p_value'])} (n={test['n_a']}/{test['n_b']})"
            )
            (regressions if test["regression"] else changes).append(line)

    # Conformance checks that flipped.
    checks_a = {c.id: c for c in fa.conformance}
    newly_failing: list[Flip] = []
    newly_passing: list[Flip] = []
    for check in fb.conformance:
        before = checks_a.get(check.id)
        if before is None or (fb.unreachable and check.status == "error"):
            continue
        if before.status == "pass" and check.status == "fail":
            newly_failing.append(_flip(before, check))
            regressions.append(
                f"{name}: conformance {check.id} passed in A, fails in B: "
                f"{check.figure} (bar: {check.bar}; A: {before.figure})"
            )
        elif before.status == "pass" and check.status == "error":
            changes.append(
                f"{name}: conformance {check.id} passed in A, no usable answer in B (an "
                f"outage, not a failure): {check.figure}"
            )
        elif before.status in ("fail", "error") and check.status == "pass":
            newly_passing.append(_flip(before, check))
            changes.append(f"{name}: conformance {check.id} failed in A, passes in B")

    # Verdicts.
    if fa.verdict != fb.verdict and not fb.unreachable:
        line = f"{name}: verdict {fa.verdict} -> {fb.verdict}"
        bad = fb.verdict in BAD_VERDICTS
        (regressions if bad else changes).append(line + _vs_text(fb.vs_reference) * bad)
    if status_a != status_b and not fb.unreachable:
        changes.append(f"{name}: status {status_a} -> {status_b}")

    return {
        "name": name,
        "reachable": {"a": not fa.unreachable, "b": not fb.unreachable},
        "verdict": {"a": fa.verdict, "b": fb.verdict},
        "status": {"a": status_a, "b": status_b},
        "accuracy": accuracy,
        "speed": speed,
        "conformance": {
            "passed": {"a": fa.conformance_passed, "b": fb.conformance_passed},
            "judged": {"a": fa.conformance_judged, "b": fb.conformance_judged},
            "newly_failing": newly_failing,
            "newly_passing": newly_passing,
        },
        "regressions": regressions,
        "changes": changes,
    }


def _accuracy_diff(
    fa: Figures,
    fb: Figures,
    scores_a: Mapping[str, Sequence[float]],
    scores_b: Mapping[str, Sequence[float]],
    margin: float,
    not_comparable: str | None,
) -> tuple[AccuracyDiff, str | None]:
    """Accuracy A -> B, and the line it gives (None: nothing worth a line)."""
    out: AccuracyDiff = {
        "a": fa.accuracy.value if fa.accuracy is not None else None,
        "b": fb.accuracy.value if fb.accuracy is not None else None,
        "regression": False,
    }
    if not_comparable is not None:
        out["note"] = f"not compared: {not_comparable}"
        return out, None
    try:
        comparison = paired_difference(scores_b, scores_a, margin=margin)
    except ValueError:
        out["note"] = "not compared: no problem scored in both runs"
        return out, None
    out["diff"] = comparison.diff
    out["low"] = comparison.low
    out["high"] = comparison.high
    out["p_value"] = comparison.p_value
    out["n_problems"] = comparison.n_problems
    out["margin"] = comparison.margin
    out["confidence"] = comparison.confidence
    out["verdict"] = str(comparison.verdict)
    out["n_samples_b"] = comparison.n_samples_provider
    out["n_samples_a"] = comparison.n_samples_reference
    out["regression"] = comparison.verdict is Verdict.DEGRADED
    span = (
        f"{points(comparison.diff)} points ({pct(out['a'], 1)} -> {pct(out['b'], 1)}), "
        f"{pct(comparison.confidence)} CI {points_range(comparison.low, comparison.high, 1)}, "
        f"{p_value(comparison.p_value)}, {comparison.n_problems} problems paired"
    )
    if out["regression"]:
        return out, f"accuracy {span}: worse"
    if comparison.verdict is Verdict.BETTER:
        return out, f"accuracy {span}: better"
    if comparison.high < 0:
        return out, (
            f"accuracy {span}: lower, but within the ±{margin_points(margin)}-point margin"
        )
    return out, None


def _speed_diff(a: Sequence[float], b: Sequence[float], higher_better: bool) -> SpeedTest | None:
    if not a or not b:
        return None
    a_median, b_median = float(statistics.median(a)), float(statistics.median(b))
    p = float(mannwhitneyu(a, b, alternative="two-sided").pvalue)
    if not math.isfinite(p):
        p = 1.0
    change = (b_median - a_median) / a_median if a_median else 0.0
    worse = -change if higher_better else change
    significant = p < SPEED_ALPHA
    return {
        "a_median": a_median,
        "b_median": b_median,
        "change": change,
        "p_value": p,
        "n_a": len(a),
        "n_b": len(b),
        "regression": significant and worse > SPEED_TOLERANCE,
        "improvement": significant and -worse > SPEED_TOLERANCE,
    }


def _flip(before: ConformanceRow, after: ConformanceRow) -> Flip:
    return {
        "id": after.id,
        "a": before.status,
        "b": after.status,
        "figure_a": before.figure,
        "figure_b": after.figure,
        "bar": after.bar,
    }


def _vs_text(vs: Difference | None) -> str:
    if vs is None:
        return ""
    return f" (accuracy {points(vs.diff)} points {points_range(vs.low, vs.high)} vs the reference)"
