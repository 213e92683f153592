"""Statistics for parity: summaries, accuracy with confidence intervals, paired comparisons.

Everything here is a pure function of its arguments (numpy + scipy, no I/O). Functions that
resample take a `seed` and return the same result for the same inputs and seed, whatever the
insertion order of the mappings they are given (problem ids are sorted first).

Accuracy data has one shape throughout: a mapping ``problem_id -> per-sample scores``, each
score in ``[0, 1]`` (1 = solved), one score per repeat of the same problem. Lists may have
different lengths; a problem whose list is empty is ignored.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats as sps

__all__ = [
    "Comparison",
    "Estimate",
    "Summary",
    "Verdict",
    "accuracy",
    "decide",
    "intervals_overlap",
    "paired_difference",
    "pass_at_k",
    "pass_hat_k",
    "summarize",
    "wilson_interval",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# Largest number of nonzero per-problem differences for which the sign-flip test enumerates
# all 2**m sign assignments exactly; above it, scipy's Monte Carlo permutation test is used.
EXACT_SIGN_FLIP_MAX = 16

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
    """Outcome of comparing a provider with the reference, from a confidence interval."""

    EQUIVALENT = "equivalent"
    DEGRADED = "degraded"
    BETTER = "better"
    INCONCLUSIVE = "inconclusive"


def decide(low: float, high: float, margin: float) -> Verdict:
    """Classify a confidence interval ``[low, high]`` for (provider - reference).

    Rules, in order (boundaries inclusive for equivalence, strict for a difference):

    1. ``EQUIVALENT`` if ``-margin <= low`` and ``high <= margin``: the whole interval lies
       inside the equivalence margin. This takes precedence, so a tiny but statistically
       significant difference inside the margin is still "equivalent".
    2. ``DEGRADED`` if ``high < 0``: the provider is worse, by more than the margin allows.
    3. ``BETTER`` if ``low > 0``.
    4. ``INCONCLUSIVE`` otherwise (the interval straddles 0 and reaches past the margin).

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
    return Verdict.INCONCLUSIVE


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
    """Provider minus reference solve rate on shared problems, with CI, p-value and verdict."""

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


def _sign_flip_exact(diffs: FloatArray) -> float:
    """Exact two-sided sign-flip p-value: P(|sum(s * d)| >= |sum(d)|) over all 2**m sign
    vectors s of the m nonzero differences (zeros are unchanged by a flip)."""
    nonzero = diffs[diffs != 0.0]
    m = nonzero.size
    if m == 0:
        return 1.0
    bits = (np.arange(1 << m, dtype=np.int64)[:, None] >> np.arange(m, dtype=np.int64)) & 1
    signs = (2 * bits - 1).astype(np.float64)
    totals = np.abs(signs @ nonzero)
    observed = abs(float(nonzero.sum()))
    tol = 1e-12 * max(1.0, float(np.abs(nonzero).sum()))
    return float(np.count_nonzero(totals >= observed - tol)) / float(1 << m)


def _permutation_test_kwargs(rng: np.random.Generator) -> dict[str, Any]:
    # scipy >= 1.15 calls the generator argument `rng`; older versions `random_state`.
    params = inspect.signature(sps.permutation_test).parameters
    return {"rng": rng} if "rng" in params else {"random_state": rng}


def _mean_statistic(x: FloatArray, axis: int = -1) -> FloatArray:
    out: FloatArray = np.mean(x, axis=axis)
    return out


def _sign_flip_p_value(diffs: FloatArray, n_permutations: int, rng: np.random.Generator) -> float:
    if np.count_nonzero(diffs) <= EXACT_SIGN_FLIP_MAX:
        return _sign_flip_exact(diffs)
    statistic: Callable[..., FloatArray] = _mean_statistic
    result = sps.permutation_test(
        (diffs,),
        statistic,
        permutation_type="samples",
        vectorized=True,
        n_resamples=n_permutations,
        alternative="two-sided",
        **_permutation_test_kwargs(rng),
    )
    return float(min(1.0, max(0.0, float(result.pvalue))))


def paired_difference(
    provider: Mapping[str, Sequence[float]],
    reference: Mapping[str, Sequence[float]],
    margin: float = 0.03,
    confidence: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
    *,
    n_permutations: int = 9999,
) -> Comparison:
    """Paired comparison of a provider's solve rate with the reference's, problem by problem.

    Only problems with at least one sample on *both* sides are used; ``n_problems`` counts
    them and ``n_samples_provider`` / ``n_samples_reference`` count the samples on those
    problems. ``diff`` is the mean over shared problems of (provider solve rate - reference
    solve rate), the per-problem solve rate being the mean of that problem's scores.

    Confidence interval: nested percentile bootstrap with ``n_boot`` resamples. Each resample
    draws the shared problems with replacement (the same draw for both sides) and then, for
    each drawn problem, resamples that problem's repeats with replacement independently on
    each side. The interval is widened if needed to contain ``diff``, so
    ``low <= diff <= high`` always holds, within ``[-1, 1]``.

    p-value for H0 "no difference": a paired sign-flip permutation test on the per-problem
    differences, two-sided, statistic = mean difference (p = P(|T| >= |T_obs|) under random
    sign flips). If at most 16 differences are nonzero, all 2**m sign assignments are
    enumerated and the p-value is exact (zeros are unchanged by flips; no nonzero difference
    gives p = 1.0). Otherwise ``scipy.stats.permutation_test(permutation_type="samples")``
    draws ``n_permutations`` random sign flips; its Monte Carlo p-value counts the observed
    assignment, so it is never below ``1 / (n_permutations + 1)``.

    ``verdict`` is ``decide(low, high, margin)``: it comes from the interval only, the p-value
    is reported alongside. One guard: a percentile bootstrap collapses to a point when every
    difference is 0 (all-wrong or all-right on both sides), which would call 10 samples
    "equivalent". So "equivalent" also needs at least `min_pairs_for_equivalence(margin,
    confidence)` matched samples: below that, even perfect agreement cannot rule out a
    difference of ``margin``, and the verdict is "inconclusive". Deterministic given ``seed``.

    Raises ValueError if no problem has samples on both sides, a score is outside ``[0, 1]``,
    ``margin < 0``, ``confidence`` is not in (0, 1), or ``n_boot``/``n_permutations < 1``.
    """
    _check_confidence(confidence)
    _check_n_boot(n_boot)
    if not (math.isfinite(margin) and margin >= 0):
        raise ValueError(f"paired_difference: margin must be finite and >= 0, got {margin}")
    if isinstance(n_permutations, bool) or not isinstance(n_permutations, int):
        raise ValueError(f"n_permutations must be a positive int, got {n_permutations!r}")
    if n_permutations < 1:
        raise ValueError(f"n_permutations must be a positive int, got {n_permutations!r}")
    ids = sorted(set(_nonempty_ids(provider)) & set(_nonempty_ids(reference)))
    if not ids:
        raise ValueError("paired_difference: no problem has samples on both sides")
    prov = _pack(provider, ids)
    ref = _pack(reference, ids)
    n = len(ids)
    per_problem = prov.means - ref.means
    diff = float(per_problem.mean())

    boot_rng, perm_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    boot = np.empty(n_boot, dtype=np.float64)
    block = _block_size(n, max(prov.padded.shape[1], ref.padded.shape[1]))
    for start in range(0, n_boot, block):
        stop = min(n_boot, start + block)
        idx = boot_rng.integers(0, n, size=(stop - start, n))
        prov_means = _resampled_means(prov, idx, boot_rng)
        ref_means = _resampled_means(ref, idx, boot_rng)
        boot[start:stop] = (prov_means - ref_means).mean(axis=1)
    low, high = _contain(diff, *_percentile_interval(boot, confidence))
    p_value = _sign_flip_p_value(per_problem, n_permutations, perm_rng)
    verdict = decide(low, high, margin)
    pairs = int(np.minimum(prov.lengths, ref.lengths).sum())
    if verdict is Verdict.EQUIVALENT and pairs < min_pairs_for_equivalence(margin, confidence):
        verdict = Verdict.INCONCLUSIVE
    return Comparison(
        diff=diff,
        low=low,
        high=high,
        p_value=p_value,
        n_problems=n,
        n_samples_provider=int(prov.lengths.sum()),
        n_samples_reference=int(ref.lengths.sum()),
        margin=margin,
        confidence=confidence,
        verdict=verdict,
    )


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
