"""Statistics for parity: summaries, accuracy with confidence intervals, paired comparisons.

Everything here is a pure function of its arguments (numpy + scipy, no I/O). Functions that
resample take a `seed` and return the same result for the same inputs and seed, whatever the
insertion order of the mappings they are given (problem ids are sorted first).

Accuracy data has one shape throughout: a mapping ``problem_id -> per-sample scores``, each
score in ``[0, 1]`` (1 = solved), one score per repeat of the same problem. Lists may have
different lengths; a problem whose list is empty is ignored.

Comparisons with the reference use one test for everything they report: the paired
sign-flip test, inverted. Its p-value is the test at a difference of 0 and its interval the
set of differences it does not reject, so "p < alpha" and "the interval excludes 0" are the
same event (`SignFlipTest`). `compare_with_reference` compares every provider of a run with
the one reference and controls the family-wise error rate across them (Holm).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt
from scipy import stats as sps

__all__ = [
    "LEGACY_VERDICTS",
    "Comparison",
    "Estimate",
    "HolmStep",
    "SignFlipTest",
    "Summary",
    "Verdict",
    "accuracy",
    "compare_with_reference",
    "current_verdict",
    "decide",
    "holm",
    "intervals_overlap",
    "paired_difference",
    "pass_at_k",
    "pass_hat_k",
    "summarize",
    "wilson_interval",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# Largest number of problems for which the sign-flip test enumerates all 2**n sign
# assignments exactly; above it, random sign flips are drawn (Monte Carlo).
EXACT_SIGN_FLIP_MAX = 16

# Two sign-flip statistics closer than this (in units of the mean difference) are a tie:
# the differences are fractions of repeat counts, so exact ties are common and must not be
# split by rounding.
_TIE = 1e-9

# Upper bound on the elements of one block of random signs (rows x problems).
_SIGN_BLOCK_ELEMENTS = 1 << 21

# Upper bound on the elements of one (resamples x problems x repeats) block in the bootstrap,
# so memory stays bounded (~32 MiB of float64) however many repeats a problem has.
_BLOCK_ELEMENTS = 1 << 22


# --------------------------------------------------------------------------------------------
# Summary
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Summary:
    """Descriptive statistics of a sample; every field but `count` is None when it is empty."""

    count: int
    mean: float | None
    p50: float | None
    p90: float | None
    p99: float | None
    min: float | None
    max: float | None


def summarize(values: Sequence[float]) -> Summary:
    """Count, mean, median, 90th and 99th percentile, min and max of `values`.

    Percentiles use linear interpolation between order statistics (numpy's default,
    ``method="linear"``, i.e. Hyndman & Fan type 7), so p50 of ``[1, 2]`` is 1.5.
    An empty input gives ``count=0`` and None for every other field. Values must be finite
    (ValueError otherwise). All returned numbers are plain Python floats.
    """
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if arr.size == 0:
        return Summary(0, None, None, None, None, None, None)
    if not np.all(np.isfinite(arr)):
        raise ValueError("summarize: values must be finite")
    p50, p90, p99 = (float(q) for q in np.percentile(arr, [50.0, 90.0, 99.0]))
    return Summary(
        count=int(arr.size),
        mean=float(arr.mean()),
        p50=p50,
        p90=p90,
        p99=p99,
        min=float(arr.min()),
        max=float(arr.max()),
    )


# --------------------------------------------------------------------------------------------
# Verdicts
# --------------------------------------------------------------------------------------------


class Verdict(StrEnum):
    """Outcome of comparing a provider with the reference, from a confidence interval.

    ``NO_DIFFERENCE`` ("no difference found") is the absence of evidence: the interval
    contains 0 and reaches past the margin, so the provider is neither shown to differ nor
    shown to be within the margin. It is never a pass; only ``EQUIVALENT`` is.
    """

    EQUIVALENT = "equivalent"
    DEGRADED = "degraded"
    BETTER = "better"
    NO_DIFFERENCE = "no difference found"


#: Verdict labels of earlier parity versions, as a stored report may still hold them, and
#: what they are called now ("inconclusive" meant what "no difference found" says).
LEGACY_VERDICTS: dict[str, str] = {"inconclusive": Verdict.NO_DIFFERENCE.value}


def current_verdict(label: str) -> str:
    """A verdict label as this version names it: an old label mapped, any other unchanged."""
    return LEGACY_VERDICTS.get(label, label)


def decide(low: float, high: float, margin: float) -> Verdict:
    """Classify a confidence interval ``[low, high]`` for (provider - reference).

    Rules, in order (boundaries inclusive for equivalence, strict for a difference):

    1. ``EQUIVALENT`` if ``-margin <= low`` and ``high <= margin``: the whole interval lies
       inside the equivalence margin. This takes precedence, so a tiny but statistically
       significant difference inside the margin is still "equivalent".
    2. ``DEGRADED`` if ``high < 0``: the provider is worse, by more than the margin allows.
    3. ``BETTER`` if ``low > 0``.
    4. ``NO_DIFFERENCE`` otherwise (the interval straddles 0 and reaches past the margin).

    With ``margin == 0`` only the degenerate interval ``[0, 0]`` is equivalent. Raises
    ValueError for non-finite inputs, ``low > high`` or a negative margin.

    Note: checking a (1 - 2a) interval against the margin is the TOST equivalence test at
    level a; a 95% interval is therefore a TOST at 2.5% per side (conservative).
    """
    if not (math.isfinite(low) and math.isfinite(high) and math.isfinite(margin)):
        raise ValueError("decide: low, high and margin must be finite")
    if low > high:
        raise ValueError(f"decide: low ({low}) > high ({high})")
    if margin < 0:
        raise ValueError(f"decide: margin must be >= 0, got {margin}")
    if -margin <= low and high <= margin:
        return Verdict.EQUIVALENT
    if high < 0:
        return Verdict.DEGRADED
    if low > 0:
        return Verdict.BETTER
    return Verdict.NO_DIFFERENCE


def intervals_overlap(a_low: float, a_high: float, b_low: float, b_high: float) -> bool:
    """Whether closed intervals ``[a_low, a_high]`` and ``[b_low, b_high]`` share a point.

    Touching endpoints count as overlapping. Raises ValueError if an interval has low > high
    or an endpoint is NaN.
    """
    for name, lo, hi in (("a", a_low, a_high), ("b", b_low, b_high)):
        if math.isnan(lo) or math.isnan(hi):
            raise ValueError(f"intervals_overlap: interval {name} has a NaN endpoint")
        if lo > hi:
            raise ValueError(f"intervals_overlap: interval {name} has low ({lo}) > high ({hi})")
    return a_low <= b_high and b_low <= a_high


# --------------------------------------------------------------------------------------------
# Accuracy and paired comparison (nested bootstrap)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Estimate:
    """A solve rate with a bootstrap confidence interval ``[low, high]``."""

    value: float
    low: float
    high: float
    n_problems: int
    n_samples: int
    confidence: float


@dataclass(frozen=True, slots=True)
class Comparison:
    """Provider minus reference solve rate on shared problems, with CI, p-value and verdict.

    ``p_value`` is the one the verdict goes with (Holm-adjusted in a family, see
    `compare_with_reference`) and ``[low, high]`` the interval at level ``confidence`` from
    the same test, so ``p_value < alpha`` exactly when the interval excludes 0.
    ``p_unadjusted`` is the provider's own test, ``correction`` "holm" or "none",
    ``family`` the number of providers compared with the reference, ``alpha`` the
    family-wise error rate.
    """

    diff: float
    low: float
    high: float
    p_value: float
    n_problems: int
    n_samples_provider: int
    n_samples_reference: int
    margin: float
    confidence: float
    verdict: Verdict
    p_unadjusted: float
    correction: str
    family: int
    alpha: float


@dataclass(frozen=True, slots=True)
class _Ragged:
    """Per-problem scores packed into a zero-padded (problems x max repeats) matrix."""

    padded: FloatArray
    lengths: IntArray
    binary: bool  # every score is exactly 0 or 1

    @property
    def means(self) -> FloatArray:
        means: FloatArray = self.padded.sum(axis=1) / self.lengths
        return means


def _check_confidence(confidence: float) -> None:
    if not (0.0 < confidence < 1.0):
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def _check_n_boot(n_boot: int) -> None:
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive int, got {n_boot!r}")


def _scores_array(problem_id: str, samples: Sequence[float]) -> FloatArray:
    arr = np.asarray(samples, dtype=np.float64).reshape(-1)
    if not np.all((arr >= 0.0) & (arr <= 1.0)):  # also rejects NaN
        raise ValueError(f"scores for problem {problem_id!r} must lie in [0, 1]")
    return arr


def _pack(scores: Mapping[str, Sequence[float]], ids: Sequence[str]) -> _Ragged:
    rows = [_scores_array(pid, scores[pid]) for pid in ids]
    lengths = np.array([row.size for row in rows], dtype=np.int64)
    width = int(lengths.max()) if rows else 0
    padded = np.zeros((len(rows), width), dtype=np.float64)
    for i, row in enumerate(rows):
        padded[i, : row.size] = row
    binary = bool(np.all((padded == 0.0) | (padded == 1.0)))
    return _Ragged(padded, lengths, binary)


def _nonempty_ids(scores: Mapping[str, Sequence[float]]) -> list[str]:
    return sorted(pid for pid, samples in scores.items() if len(samples) > 0)


def _block_size(n_problems: int, width: int) -> int:
    return max(1, _BLOCK_ELEMENTS // max(1, n_problems * width))


def _resampled_means(data: _Ragged, idx: IntArray, rng: np.random.Generator) -> FloatArray:
    """For problem indices `idx` (b x p), resample each drawn problem's repeats with
    replacement and return the per-problem means (b x p)."""
    lengths = data.lengths[idx]
    width = data.padded.shape[1]
    if width == 1:  # one repeat each: nothing to resample within problems
        out: FloatArray = data.padded[idx, 0]
        return out
    if data.binary:
        # Resampling L pass/fail repeats with replacement and counting passes is exactly
        # Binomial(L, passes / L): one draw per problem instead of L.
        means = data.means[idx]
        out = rng.binomial(lengths, means) / lengths
        return out
    # j ~ Uniform{0, ..., L-1} for each drawn problem and each of `width` slots; only the
    # first L slots of a problem with L repeats are kept.
    u = rng.random((*idx.shape, width))
    j = np.minimum((u * lengths[..., None]).astype(np.int64), lengths[..., None] - 1)
    values = data.padded[idx[..., None], j]
    keep = np.arange(width) < lengths[..., None]
    out = np.where(keep, values, 0.0).sum(axis=-1) / lengths
    return out


def _percentile_interval(boot: FloatArray, confidence: float) -> tuple[float, float]:
    alpha = 1.0 - confidence
    low, high = np.quantile(boot, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(low), float(high)


def _contain(point: float, low: float, high: float) -> tuple[float, float]:
    """Widen [low, high] just enough to contain the point estimate (only matters when the
    bootstrap distribution is degenerate or very skewed; removes floating-point noise)."""
    return min(low, point), max(high, point)


def accuracy(
    scores: Mapping[str, Sequence[float]],
    confidence: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
) -> Estimate:
    """Solve rate over problems with a nested percentile-bootstrap confidence interval.

    ``value`` is the mean over problems of each problem's mean score, so every problem weighs
    the same however many repeats it has. ``n_problems`` / ``n_samples`` count the non-empty
    problems and their scores.

    The interval is a percentile bootstrap with ``n_boot`` resamples: each resample draws the
    problems with replacement, then, for each drawn problem, draws that problem's repeats
    with replacement, and records the mean of the per-problem means. ``[low, high]`` are the
    ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles (linear interpolation),
    widened if needed to contain ``value``. It is always a valid interval inside ``[0, 1]``
    with ``low <= value <= high``; it is degenerate (``low == high``) when there is no
    variability to resample (e.g. all scores identical). Deterministic given ``seed``.
    When every score is exactly 0 or 1, each drawn problem's resampled repeats are drawn as
    one ``Binomial(L, solve rate)`` count, which has exactly the same distribution.

    Raises ValueError if no problem has samples, a score is outside ``[0, 1]`` or NaN,
    ``confidence`` is not in (0, 1) or ``n_boot < 1``.
    """
    _check_confidence(confidence)
    _check_n_boot(n_boot)
    ids = _nonempty_ids(scores)
    if not ids:
        raise ValueError("accuracy: no problem has any samples")
    data = _pack(scores, ids)
    n = len(ids)
    value = float(data.means.mean())

    rng = np.random.default_rng(seed)
    boot = np.empty(n_boot, dtype=np.float64)
    block = _block_size(n, data.padded.shape[1])
    for start in range(0, n_boot, block):
        stop = min(n_boot, start + block)
        idx = rng.integers(0, n, size=(stop - start, n))
        boot[start:stop] = _resampled_means(data, idx, rng).mean(axis=1)
    low, high = _contain(value, *_percentile_interval(boot, confidence))
    return Estimate(
        value=value,
        low=low,
        high=high,
        n_problems=n,
        n_samples=int(data.lengths.sum()),
        confidence=confidence,
    )


class SignFlipTest:
    """The paired sign-flip test of "mean difference = delta", for every delta at once.

    For per-problem differences ``d_1..d_n`` (provider solve rate - reference solve rate,
    each side's rate estimated from its own repeats) and a candidate mean ``delta``, the
    statistic is ``|sum(d_i - delta)|`` and its null distribution is that of
    ``|sum(s_i (d_i - delta))|`` over sign vectors ``s``: all ``2**n`` of them when
    ``n <= EXACT_SIGN_FLIP_MAX`` (exact), else ``n_permutations`` drawn at random plus the
    observed one (Monte Carlo, so the p-value is never below ``1 / (n_permutations + 1)``).
    The sign vectors are drawn once and shared by every ``delta``, so the p-values of all
    candidate means come from the same test:

    - `p_value` is the test of ``delta = 0`` (two-sided; ties within 1e-9 count);
    - `interval` at level ``a`` is the set of ``delta`` the test does not reject at level
      ``a`` (``p(delta) >= a``). For each sign vector the set of ``delta`` at which it
      counts is an interval around the mean (|statistic| grows with slope n away from the
      mean, the flipped one with slope |sum(s)| <= n), so the accepted set is an interval,
      its ends order statistics of one root per sign vector, computed exactly.

    Hence ``p_value() < a`` exactly when ``interval(a)`` excludes 0; `interval` enforces it
    also at the edge, where rounding could otherwise split the two (it then moves the end
    by at most the tie tolerance, or, on Holm's boundary, to 0). The null is that each
    ``d_i`` is symmetric about ``delta``; with the reference sampled more than the provider
    it is not exactly, and the test is then valid for the mean asymptotically (the flipped
    sum has variance ``sum (d_i - delta)**2``, which includes both sides' sampling noise and
    the spread of true per-problem differences, so it is if anything conservative).
    """

    def __init__(
        self,
        diffs: Sequence[float] | FloatArray,
        n_permutations: int = 9999,
        seed: int | Sequence[int] = 0,
    ) -> None:
        d = np.asarray(diffs, dtype=np.float64).reshape(-1)
        if d.size == 0 or not np.all((d >= -1.0) & (d <= 1.0)):
            raise ValueError("SignFlipTest: give at least one difference, each in [-1, 1]")
        n = int(d.size)
        self.n = n
        self.mean = float(d.mean())
        if n <= EXACT_SIGN_FLIP_MAX:
            bits = (np.arange(1 << n, dtype=np.int64)[:, None] >> np.arange(n)) & 1
            blocks = [(2 * bits - 1).astype(np.int8)]
            self.denominator = 1 << n
        else:
            rng = np.random.default_rng(seed)
            rows = max(1, _SIGN_BLOCK_ELEMENTS // n)
            blocks = [np.ones((1, n), dtype=np.int8)]  # the observed assignment
            for start in range(0, n_permutations, rows):
                size = (min(rows, n_permutations - start), n)
                blocks.append((2 * rng.integers(0, 2, size=size) - 1).astype(np.int8))
            self.denominator = n_permutations + 1
        roots = [self._roots(signs, d) for signs in blocks]
        # Descending: the k-th largest root is the end of the accepted set at k counts.
        self._up: FloatArray = -np.sort(-np.concatenate([up for up, _ in roots]))
        self._down: FloatArray = -np.sort(-np.concatenate([down for _, down in roots]))

    def _roots(self, signs: npt.NDArray[np.int8], d: FloatArray) -> tuple[FloatArray, FloatArray]:
        """For each sign vector s: how far above (below) the mean delta may go while
        |sum(s (d - delta))| >= |sum(d - delta)| still holds (inf: at every delta)."""
        n = self.n
        c = signs.sum(axis=1, dtype=np.int64).astype(np.float64)
        e = signs.astype(np.float64) @ d - self.mean * c  # sum(s (d - mean))
        full = np.abs(c) >= n  # all signs equal: counts at every delta
        with np.errstate(divide="ignore", invalid="ignore"):
            up = np.where(e >= 0, e / (n + c), -e / (n - c))
            down = np.where(e >= 0, e / (n - c), -e / (n + c))
        up = np.where(full, np.inf, np.maximum(up, 0.0))
        down = np.where(full, np.inf, np.maximum(down, 0.0))
        return up, down

    def p_value(self) -> float:
        """The two-sided p-value of "mean difference = 0"."""
        if self.mean == 0.0:
            return 1.0
        roots = self._down if self.mean > 0 else self._up
        count = int(np.count_nonzero(roots >= abs(self.mean) - _TIE))
        return count / self.denominator

    def interval(self, level: float, excludes_zero: bool | None = None) -> tuple[float, float]:
        """The differences not rejected at level ``level`` (a 1 - level interval), in
        [-1, 1]. ``excludes_zero`` overrides whether 0 is excluded (default: whether
        `p_value` < ``level``), for a decision made by a multiple-testing procedure whose
        threshold is this level in exact arithmetic."""
        if not 0.0 < level <= 1.0:
            raise ValueError(f"level must be in (0, 1], got {level}")
        # p(delta) = (number of sign vectors counting at delta) / denominator >= level.
        need = max(1, math.ceil(level * self.denominator - 1e-9))
        need = min(need, self.denominator)
        low = max(-1.0, self.mean - float(self._down[need - 1]))
        high = min(1.0, self.mean + float(self._up[need - 1]))
        if excludes_zero is None:
            excludes_zero = self.p_value() < level
        if excludes_zero:
            if self.mean < 0 and high >= 0:
                high = -math.ulp(0.0)
            elif self.mean > 0 and low <= 0:
                low = math.ulp(0.0)
        else:
            high, low = max(high, 0.0), min(low, 0.0)
        return low, high


@dataclass(frozen=True, slots=True)
class HolmStep:
    """One hypothesis in Holm's step-down procedure.

    ``p_adjusted`` is Holm's adjusted p-value (``max over i <= rank of (m - i + 1) p_(i)``,
    capped at 1), ``rejected`` is ``p_adjusted < alpha``, and ``level`` is the level the
    procedure tested it at: ``alpha / (m - rank + 1)`` when rejected, else the level of the
    step where the procedure stopped (so an interval at ``level`` excludes 0 exactly when
    the hypothesis is rejected). ``rank`` is 1-based, smallest p first.
    """

    p_adjusted: float
    level: float
    rejected: bool
    rank: int


def holm(p_values: Mapping[str, float], alpha: float = 0.05) -> dict[str, HolmStep]:
    """Holm's step-down procedure over named p-values (family-wise error <= alpha under any
    dependence between the tests). Ties are ordered by name, so the result does not depend
    on the mapping's order. Raises ValueError for a p-value outside [0, 1] or alpha outside
    (0, 1)."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    for name, p in p_values.items():
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p-value of {name!r} must lie in [0, 1], got {p}")
    order = sorted(p_values, key=lambda k: (p_values[k], k))
    m = len(order)
    out: dict[str, HolmStep] = {}
    running = 0.0
    stop_level: float | None = None
    for i, name in enumerate(order):
        remaining = m - i
        running = max(running, min(1.0, remaining * p_values[name]))
        rejected = running < alpha
        if not rejected and stop_level is None:
            stop_level = alpha / remaining
        level = alpha / remaining if rejected else stop_level
        assert level is not None
        out[name] = HolmStep(p_adjusted=running, level=level, rejected=rejected, rank=i + 1)
    return out


def _check_permutations(n_permutations: int) -> None:
    if isinstance(n_permutations, bool) or not isinstance(n_permutations, int):
        raise ValueError(f"n_permutations must be a positive int, got {n_permutations!r}")
    if n_permutations < 1:
        raise ValueError(f"n_permutations must be a positive int, got {n_permutations!r}")


@dataclass(frozen=True, slots=True)
class _Paired:
    """A provider's scores against the reference's on the problems both answered."""

    per_problem: FloatArray
    n_problems: int
    n_samples_provider: int
    n_samples_reference: int
    pairs: int  # matched samples: sum over problems of min(provider, reference) repeats


def _paired(
    provider: Mapping[str, Sequence[float]], reference: Mapping[str, Sequence[float]]
) -> _Paired:
    ids = sorted(set(_nonempty_ids(provider)) & set(_nonempty_ids(reference)))
    if not ids:
        raise ValueError("paired_difference: no problem has samples on both sides")
    prov = _pack(provider, ids)
    ref = _pack(reference, ids)
    return _Paired(
        per_problem=prov.means - ref.means,
        n_problems=len(ids),
        n_samples_provider=int(prov.lengths.sum()),
        n_samples_reference=int(ref.lengths.sum()),
        pairs=int(np.minimum(prov.lengths, ref.lengths).sum()),
    )


def _comparison(
    data: _Paired,
    test: SignFlipTest,
    *,
    margin: float,
    level: float,
    p_value: float,
    rejected: bool,
    correction: str,
    family: int,
    alpha: float,
) -> Comparison:
    low, high = test.interval(level, excludes_zero=rejected)
    confidence = 1.0 - level
    verdict = decide(low, high, margin)
    if verdict is Verdict.EQUIVALENT and data.pairs < min_pairs_for_equivalence(margin, confidence):
        verdict = Verdict.NO_DIFFERENCE
    return Comparison(
        diff=test.mean,
        low=low,
        high=high,
        p_value=p_value,
        n_problems=data.n_problems,
        n_samples_provider=data.n_samples_provider,
        n_samples_reference=data.n_samples_reference,
        margin=margin,
        confidence=confidence,
        verdict=verdict,
        p_unadjusted=test.p_value(),
        correction=correction,
        family=family,
        alpha=alpha,
    )


def _check_margin(margin: float) -> None:
    if not (math.isfinite(margin) and margin >= 0):
        raise ValueError(f"paired_difference: margin must be finite and >= 0, got {margin}")


def paired_difference(
    provider: Mapping[str, Sequence[float]],
    reference: Mapping[str, Sequence[float]],
    margin: float = 0.03,
    confidence: float = 0.95,
    seed: int = 0,
    *,
    n_permutations: int = 9999,
) -> Comparison:
    """Paired comparison of one provider's solve rate with the reference's, problem by
    problem, with no correction for other comparisons (`compare_with_reference` makes one
    for every provider of a run).

    Only problems with at least one sample on *both* sides are used; ``n_problems`` counts
    them and ``n_samples_provider`` / ``n_samples_reference`` count the samples on those
    problems. ``diff`` is the mean over shared problems of (provider solve rate - reference
    solve rate), each side's per-problem rate the mean of all its own scores on that
    problem (the reference may have more repeats than the provider: its rate is then
    estimated from all of them, and its sampling noise is part of every difference).

    p-value and interval come from one test, the paired sign-flip test on the per-problem
    differences (`SignFlipTest`): the p-value is the test of "no difference", the interval
    (level ``confidence``) every difference the test does not reject, so
    ``p_value < 1 - confidence`` exactly when the interval excludes 0. Exact over all 2**n
    sign assignments up to 16 problems; beyond, ``n_permutations`` random ones (the p-value
    then is never below ``1 / (n_permutations + 1)``). The interval lies in ``[-1, 1]``
    and contains ``diff``.

    ``verdict`` is ``decide(low, high, margin)``. One guard: when every difference is 0
    (all-wrong or all-right on both sides) the interval collapses to a point, which would
    call 10 samples "equivalent". So "equivalent" also needs at least
    `min_pairs_for_equivalence(margin, confidence)` matched samples: below that, even
    perfect agreement cannot rule out a difference of ``margin``, and the verdict is "no
    difference found". Deterministic given ``seed``.

    Raises ValueError if no problem has samples on both sides, a score is outside ``[0, 1]``,
    ``margin < 0``, ``confidence`` is not in (0, 1), or ``n_permutations < 1``.
    """
    _check_confidence(confidence)
    _check_margin(margin)
    _check_permutations(n_permutations)
    data = _paired(provider, reference)
    test = SignFlipTest(data.per_problem, n_permutations, seed)
    p = test.p_value()
    level = 1.0 - confidence
    return _comparison(
        data,
        test,
        margin=margin,
        level=level,
        p_value=p,
        rejected=p < level,
        correction="none",
        family=1,
        alpha=level,
    )


def compare_with_reference(
    providers: Mapping[str, Mapping[str, Sequence[float]]],
    reference: Mapping[str, Sequence[float]],
    margin: float = 0.03,
    alpha: float = 0.05,
    seed: int = 0,
    *,
    n_permutations: int = 9999,
) -> dict[str, Comparison]:
    """Every provider compared with the one reference, the family-wise error rate across
    them held at ``alpha`` by Holm's step-down procedure.

    Each provider gets `paired_difference`'s test (its own sign flips, seeded by ``seed``
    and its name). Holm orders the providers by p-value and tests the smallest at
    ``alpha / m``, the next at ``alpha / (m - 1)``, ... until one is not rejected (m: the
    providers compared). Each provider's ``p_value`` is its Holm-adjusted p-value and its
    interval is at the level Holm tested it at (`HolmStep.level`: 99% for the first of 5
    at alpha 0.05), so ``p_value < alpha`` exactly when its interval excludes 0, and the
    verdict (`decide` on that interval, with the equivalence guard) can say "degraded" or
    "better" only for a provider Holm rejects. The chance that any provider of the run is
    called degraded or better while it is not is at most ``alpha``, whatever the
    dependence between the comparisons (they share the reference's noise).

    Providers that share no problem with the reference are left out (and not counted in
    m). Raises ValueError as `paired_difference` does, or for alpha outside (0, 1).
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    _check_margin(margin)
    _check_permutations(n_permutations)
    data: dict[str, _Paired] = {}
    tests: dict[str, SignFlipTest] = {}
    for name in sorted(providers):
        try:
            data[name] = _paired(providers[name], reference)
        except ValueError as exc:
            if "no problem" in str(exc):
                continue
            raise
        tests[name] = SignFlipTest(
            data[name].per_problem, n_permutations, [seed, zlib.crc32(name.encode())]
        )
    steps = holm({name: test.p_value() for name, test in tests.items()}, alpha)
    return {
        name: _comparison(
            data[name],
            tests[name],
            margin=margin,
            level=steps[name].level,
            p_value=steps[name].p_adjusted,
            rejected=steps[name].rejected,
            correction="holm",
            family=len(tests),
            alpha=alpha,
        )
        for name in providers
        if name in tests
    }


def min_pairs_for_equivalence(margin: float, confidence: float = 0.95) -> int:
    """The fewest matched samples at which zero disagreements bound the disagreement rate,
    and so |difference|, below ``margin`` at the one-sided level (1 + confidence) / 2:
    the n with (1 - margin)^n <= (1 - confidence) / 2 (the "rule of three" at 95%: about
    3.7 / margin)."""
    if not 0 < margin < 1:
        return 1
    return math.ceil(math.log((1 - confidence) / 2) / math.log(1 - margin))


# --------------------------------------------------------------------------------------------
# pass@k, pass^k, Wilson
# --------------------------------------------------------------------------------------------


def _check_nck(name: str, n: int, c: int, k: int) -> None:
    for label, v in (("n", n), ("c", c), ("k", k)):
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError(f"{name}: {label} must be an int, got {v!r}")
    if n < 1:
        raise ValueError(f"{name}: n must be >= 1, got {n}")
    if not 0 <= c <= n:
        raise ValueError(f"{name}: c must be in [0, n={n}], got {c}")
    if not 1 <= k <= n:
        raise ValueError(f"{name}: k must be in [1, n={n}], got {k}")


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k estimator (Chen et al. 2021): ``1 - C(n-c, k) / C(n, k)``.

    The probability that at least one of k samples drawn without replacement from n samples,
    c of them correct, is correct. Computed exactly in integer arithmetic as
    ``(C(n, k) - C(n-c, k)) / C(n, k)`` with one correctly rounded division, so there is no
    cancellation or overflow. Requires ints with ``n >= 1``, ``0 <= c <= n``,
    ``1 <= k <= n`` (ValueError otherwise, including ``k > n``).
    """
    _check_nck("pass_at_k", n, c, k)
    total = math.comb(n, k)
    return (total - math.comb(n - c, k)) / total


def pass_hat_k(n: int, c: int, k: int) -> float:
    """pass^k: ``C(c, k) / C(n, k)``, the probability that k samples drawn without
    replacement from n samples, c of them correct, are all correct.

    Computed exactly in integer arithmetic with one correctly rounded division. Same input
    rules as `pass_at_k` (ValueError otherwise).
    """
    _check_nck("pass_hat_k", n, c, k)
    return math.comb(c, k) / math.comb(n, k)


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval (no continuity correction) for a binomial proportion.

    Delegates to ``scipy.stats.binomtest(successes, n).proportion_ci(method="wilson")``.
    Returns ``(low, high)`` within ``[0, 1]``. Raises ValueError unless ``n >= 1``,
    ``0 <= successes <= n`` (ints) and ``0 < confidence < 1``.
    """
    for label, v in (("successes", successes), ("n", n)):
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError(f"wilson_interval: {label} must be an int, got {v!r}")
    if n < 1:
        raise ValueError(f"wilson_interval: n must be >= 1, got {n}")
    if not 0 <= successes <= n:
        raise ValueError(f"wilson_interval: successes must be in [0, n={n}], got {successes}")
    _check_confidence(confidence)
    ci = sps.binomtest(successes, n).proportion_ci(confidence_level=confidence, method="wilson")
    return float(max(0.0, ci.low)), float(min(1.0, ci.high))
