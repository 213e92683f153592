"""Tests for parity.stats.estimates: each function against numpy/scipy or a hand-computed case."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats as sps

from parity.stats.estimates import (
    EXACT_SIGN_FLIP_MAX,
    Comparison,
    Estimate,
    Summary,
    Verdict,
    accuracy,
    decide,
    intervals_overlap,
    paired_difference,
    pass_at_k,
    pass_hat_k,
    summarize,
    wilson_interval,
)

# ---------------------------------------------------------------------------- summarize


def test_summarize_matches_numpy() -> None:
    rng = np.random.default_rng(1)
    values = rng.lognormal(size=137).tolist()
    s = summarize(values)
    assert s.count == 137
    assert s.mean == pytest.approx(np.mean(values))
    assert s.p50 == pytest.approx(np.percentile(values, 50))
    assert s.p90 == pytest.approx(np.percentile(values, 90))
    assert s.p99 == pytest.approx(np.percentile(values, 99))
    assert s.min == min(values)
    assert s.max == max(values)
    assert all(type(v) is float for v in (s.mean, s.p50, s.p90, s.p99, s.min, s.max))


def test_summarize_linear_interpolation_hand_case() -> None:
    s = summarize([1.0, 2.0, 3.0, 4.0])
    assert s.p50 == 2.5
    assert s.p90 == pytest.approx(3.7)  # 1 + 0.9 * 3 = 3.7 -> between 3 and 4
    assert s.p99 == pytest.approx(3.97)


def test_summarize_empty_and_single() -> None:
    assert summarize([]) == Summary(0, None, None, None, None, None, None)
    assert summarize([5.0]) == Summary(1, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0)


def test_summarize_rejects_nan() -> None:
    with pytest.raises(ValueError):
        summarize([1.0, float("nan")])


# ---------------------------------------------------------------------------- decide


@pytest.mark.parametrize(
    ("low", "high", "margin", "expected"),
    [
        (-0.01, 0.01, 0.03, Verdict.EQUIVALENT),
        (-0.03, 0.03, 0.03, Verdict.EQUIVALENT),  # boundaries inclusive
        (0.01, 0.02, 0.03, Verdict.EQUIVALENT),  # significant but inside margin
        (-0.02, -0.01, 0.03, Verdict.EQUIVALENT),  # equivalence beats "degraded"
        (0.0, 0.0, 0.0, Verdict.EQUIVALENT),
        (-0.031, 0.0, 0.03, Verdict.NO_DIFFERENCE),  # high == 0 is not < 0
        (-0.2, -0.0001, 0.03, Verdict.DEGRADED),
        (-0.2, -0.05, 0.03, Verdict.DEGRADED),
        (0.0, 0.2, 0.03, Verdict.NO_DIFFERENCE),  # low == 0 is not > 0
        (0.0001, 0.2, 0.03, Verdict.BETTER),
        (-0.1, 0.1, 0.03, Verdict.NO_DIFFERENCE),
        (-0.01, 0.04, 0.03, Verdict.NO_DIFFERENCE),
        (0.01, 0.01, 0.0, Verdict.BETTER),
        (-0.01, -0.01, 0.0, Verdict.DEGRADED),
    ],
)
def test_decide_truth_table(low: float, high: float, margin: float, expected: Verdict) -> None:
    assert decide(low, high, margin) is expected


def test_decide_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        decide(0.1, -0.1, 0.03)
    with pytest.raises(ValueError):
        decide(-0.1, 0.1, -0.01)
    with pytest.raises(ValueError):
        decide(float("nan"), 0.1, 0.03)


def test_verdict_is_str() -> None:
    assert Verdict.DEGRADED == "degraded"
    assert str(Verdict.NO_DIFFERENCE) == "no difference found"
    assert {v.value for v in Verdict} == {"equivalent", "degraded", "better", "no difference found"}


# ---------------------------------------------------------------------------- overlap


def test_intervals_overlap() -> None:
    assert intervals_overlap(0.0, 1.0, 0.5, 2.0)
    assert intervals_overlap(0.5, 2.0, 0.0, 1.0)
    assert intervals_overlap(0.0, 1.0, 1.0, 2.0)  # touching
    assert intervals_overlap(0.0, 3.0, 1.0, 2.0)  # nested
    assert not intervals_overlap(0.0, 1.0, 1.01, 2.0)
    assert not intervals_overlap(1.01, 2.0, 0.0, 1.0)
    with pytest.raises(ValueError):
        intervals_overlap(1.0, 0.0, 0.0, 1.0)


# ---------------------------------------------------------------------------- accuracy


def test_accuracy_hand_case() -> None:
    est = accuracy({"a": [1, 1], "b": [0, 0]})
    assert isinstance(est, Estimate)
    assert est.value == 0.5
    assert (est.n_problems, est.n_samples, est.confidence) == (2, 4, 0.95)
    # Problems resampled: means in {0, .5, 1}; the 95% interval spans all of them.
    assert est.low == 0.0 and est.high == 1.0


def test_accuracy_weights_problems_equally_and_ignores_empty() -> None:
    est = accuracy({"a": [1, 1, 1, 0], "b": [0], "c": []}, n_boot=200)
    assert est.value == pytest.approx((0.75 + 0.0) / 2)
    assert (est.n_problems, est.n_samples) == (2, 5)
    assert est.low <= est.value <= est.high


def test_accuracy_degenerate_cases() -> None:
    est = accuracy({"only": [1.0, 1.0, 1.0]})
    assert (est.value, est.low, est.high) == (1.0, 1.0, 1.0)
    est = accuracy({f"p{i}": [0.3] * (i + 1) for i in range(10)})
    assert est.low == est.value == est.high == pytest.approx(0.3)
    # One problem with varying repeats: only the repeats are resampled.
    est = accuracy({"only": [1, 0, 1, 0]})
    assert est.value == 0.5
    assert 0.0 <= est.low < 0.5 < est.high <= 1.0


def test_accuracy_deterministic_and_order_independent() -> None:
    rng = np.random.default_rng(3)
    data = {f"p{i}": rng.integers(0, 2, size=int(rng.integers(1, 6))).tolist() for i in range(40)}
    reversed_data = dict(reversed(list(data.items())))
    assert accuracy(data, seed=7) == accuracy(reversed_data, seed=7)
    assert accuracy(data, seed=7) != accuracy(data, seed=8)


def test_accuracy_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        accuracy({})
    with pytest.raises(ValueError):
        accuracy({"a": []})
    with pytest.raises(ValueError):
        accuracy({"a": [1.5]})
    with pytest.raises(ValueError):
        accuracy({"a": [float("nan")]})
    with pytest.raises(ValueError):
        accuracy({"a": [1]}, confidence=1.0)
    with pytest.raises(ValueError):
        accuracy({"a": [1]}, n_boot=0)


def test_accuracy_ci_coverage_simulation() -> None:
    """Problems drawn from a population with mean difficulty 0.6, repeats Bernoulli; the 95%
    interval should cover the population solve rate in roughly 90-99% of datasets."""
    rng = np.random.default_rng(2024)
    a, b = 3.0, 2.0  # Beta(3, 2): population mean solve rate 0.6
    truth = a / (a + b)
    n_datasets, n_problems = 200, 30
    hits = 0
    for d in range(n_datasets):
        p = rng.beta(a, b, size=n_problems)
        reps = rng.integers(1, 6, size=n_problems)
        data = {f"q{i}": rng.binomial(1, p[i], size=reps[i]).tolist() for i in range(n_problems)}
        est = accuracy(data, n_boot=1000, seed=d)
        hits += est.low <= truth <= est.high
    coverage = hits / n_datasets
    assert 0.90 <= coverage <= 0.99, coverage


def test_accuracy_binary_fast_path_matches_general_path() -> None:
    """Pass/fail scores use a binomial shortcut; nudging the 1s off 1.0 forces the general
    resampling path, which must give the same interval up to Monte Carlo noise."""
    rng = np.random.default_rng(21)
    p = rng.uniform(0.1, 0.9, size=25)
    binary = {f"q{i}": rng.binomial(1, p[i], size=int(rng.integers(2, 8))) for i in range(25)}
    nudged = {k: np.where(v == 1, 1.0 - 1e-9, 0.0).tolist() for k, v in binary.items()}
    fast = accuracy({k: v.tolist() for k, v in binary.items()}, n_boot=4000)
    slow = accuracy(nudged, n_boot=4000)
    assert fast.value == pytest.approx(slow.value, abs=1e-8)
    assert fast.low == pytest.approx(slow.low, abs=0.02)
    assert fast.high == pytest.approx(slow.high, abs=0.02)


def _brute_sign_flip(diffs: list[float]) -> float:
    observed = abs(sum(diffs))
    count = 0
    for signs in itertools.product((1, -1), repeat=len(diffs)):
        total = abs(sum(s * d for s, d in zip(signs, diffs, strict=True)))
        count += total >= observed - 1e-12
    return float(count / 2 ** len(diffs))


def test_paired_identical_inputs() -> None:
    rng = np.random.default_rng(5)
    data = {f"p{i}": rng.integers(0, 2, size=4).tolist() for i in range(30)}
    cmp = paired_difference(data, data, margin=0.5)
    assert isinstance(cmp, Comparison)
    assert cmp.diff == 0.0
    assert cmp.p_value == 1.0
    assert cmp.verdict is Verdict.EQUIVALENT
    assert cmp.low <= 0.0 <= cmp.high
    assert (cmp.n_problems, cmp.n_samples_provider, cmp.n_samples_reference) == (30, 120, 120)


def test_paired_clear_drop_is_degraded() -> None:
    reference = {f"p{i}": [1, 1, 1] for i in range(20)}
    provider = {f"p{i}": [0, 0, 0] for i in range(20)}
    cmp = paired_difference(provider, reference)
    assert cmp.diff == -1.0
    assert (cmp.low, cmp.high) == (-1.0, -1.0)
    assert cmp.verdict is Verdict.DEGRADED
    assert cmp.p_value < 0.001  # 20 nonzero differences: scipy Monte Carlo path
    assert (cmp.margin, cmp.confidence) == (0.03, 0.95)


def test_paired_exact_p_value_hand_case() -> None:
    # Per-problem differences: a: 1 - 0 = 1, b: 0.5 - 0 = 0.5, c: 0 - 0.5 = -0.5, d: 0.
    provider = {"a": [1, 1], "b": [1, 0], "c": [0, 0], "d": [1], "only_provider": [1]}
    reference = {"a": [0], "b": [0, 0, 0], "c": [1, 0], "d": [1, 1], "only_reference": [0]}
    cmp = paired_difference(provider, reference, margin=0.03)
    assert cmp.n_problems == 4
    assert (cmp.n_samples_provider, cmp.n_samples_reference) == (7, 8)
    assert cmp.diff == pytest.approx(1.0 / 4)
    # Sign flips of (1, .5, -.5): |sums| = 2, 1, 1, 0 twice each; |sum| >= 1 in 6 of 8.
    assert cmp.p_value == pytest.approx(0.75)
    assert cmp.p_value == pytest.approx(_brute_sign_flip([1.0, 0.5, -0.5, 0.0]))
    assert cmp.verdict is Verdict.NO_DIFFERENCE


def test_paired_exact_p_value_random_vs_enumeration() -> None:
    rng = np.random.default_rng(11)
    diffs = rng.choice([-1.0, -0.5, 0.0, 0.5, 1.0], size=12, p=[0.1, 0.2, 0.2, 0.2, 0.3])
    provider = {f"p{i}": [max(d, 0.0)] for i, d in enumerate(diffs)}
    reference = {f"p{i}": [max(-d, 0.0)] for i, d in enumerate(diffs)}
    cmp = paired_difference(provider, reference)
    assert cmp.p_value == pytest.approx(_brute_sign_flip(diffs.tolist()))


def test_paired_monte_carlo_p_value_close_to_exact() -> None:
    m = EXACT_SIGN_FLIP_MAX + 2  # just past the exact limit: scipy path
    rng = np.random.default_rng(12)
    diffs = rng.choice([-1.0, -0.5, 0.5, 1.0], size=m, p=[0.2, 0.2, 0.3, 0.3])
    provider = {f"p{i}": [max(d, 0.0)] for i, d in enumerate(diffs)}
    reference = {f"p{i}": [max(-d, 0.0)] for i, d in enumerate(diffs)}
    bits = (np.arange(1 << m)[:, None] >> np.arange(m)) & 1
    totals = np.abs((2 * bits - 1) @ diffs)
    exact = float(np.mean(totals >= abs(diffs.sum()) - 1e-12))
    cmp = paired_difference(provider, reference)
    assert cmp.p_value == pytest.approx(exact, abs=0.02)
    assert 0.0 < cmp.p_value <= 1.0


def test_paired_p_value_agrees_with_scipy_when_exact() -> None:
    diffs = np.array([0.5, 1.0, -0.25, 0.75, 0.5, -1.0, 0.25])
    provider = {f"p{i}": [max(d, 0.0)] for i, d in enumerate(diffs)}
    reference = {f"p{i}": [max(-d, 0.0)] for i, d in enumerate(diffs)}
    res = sps.permutation_test(
        (diffs,),
        lambda x, axis: np.mean(x, axis=axis),
        permutation_type="samples",
        vectorized=True,
        n_resamples=10_000,  # >= 2**7: scipy enumerates exactly
    )
    assert paired_difference(provider, reference).p_value == pytest.approx(res.pvalue)


def test_paired_ci_and_verdicts() -> None:
    rng = np.random.default_rng(9)
    p = rng.uniform(0.2, 0.9, size=80)
    reference = {f"p{i}": rng.binomial(1, p[i], size=4).tolist() for i in range(80)}
    provider = {f"p{i}": rng.binomial(1, p[i], size=3).tolist() for i in range(80)}
    cmp = paired_difference(provider, reference, margin=0.5)
    assert cmp.low <= cmp.diff <= cmp.high
    assert cmp.verdict is Verdict.EQUIVALENT
    assert cmp.low >= -1.0 and cmp.high <= 1.0
    tight = paired_difference(provider, reference, margin=0.0)
    assert tight.verdict is not Verdict.EQUIVALENT
    assert tight.verdict is decide(tight.low, tight.high, 0.0)
    # Same inputs and seed, any dict order: same result.
    shuffled = dict(reversed(list(provider.items())))
    assert paired_difference(shuffled, reference, seed=4) == paired_difference(
        provider, reference, seed=4
    )


def test_paired_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        paired_difference({"a": [1]}, {"b": [1]})
    with pytest.raises(ValueError):
        paired_difference({"a": [1]}, {"a": []})
    with pytest.raises(ValueError):
        paired_difference({"a": [1]}, {"a": [1]}, margin=-0.1)
    with pytest.raises(ValueError):
        paired_difference({"a": [1]}, {"a": [2]})


def _brute_pass(n: int, c: int, k: int) -> tuple[float, float]:
    """Enumerate all k-subsets of n samples (the first c correct)."""
    subsets = list(itertools.combinations(range(n), k))
    any_pass = sum(any(i < c for i in s) for s in subsets)
    all_pass = sum(all(i < c for i in s) for s in subsets)
    return any_pass / len(subsets), all_pass / len(subsets)


@pytest.mark.parametrize("n", range(1, 9))
def test_pass_at_k_and_pass_hat_k_vs_enumeration(n: int) -> None:
    for c in range(n + 1):
        for k in range(1, n + 1):
            at_k, hat_k = _brute_pass(n, c, k)
            assert pass_at_k(n, c, k) == pytest.approx(at_k, abs=1e-15)
            assert pass_hat_k(n, c, k) == pytest.approx(hat_k, abs=1e-15)


def test_pass_at_k_known_values_and_stability() -> None:
    assert pass_at_k(10, 0, 5) == 0.0
    assert pass_at_k(10, 10, 1) == 1.0
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert pass_at_k(10, 6, 5) == 1.0  # n - c < k: some correct sample always drawn
    assert pass_hat_k(10, 3, 1) == pytest.approx(0.3)
    assert pass_hat_k(10, 3, 4) == 0.0
    # Large n: tiny probabilities keep full relative precision (no cancellation).
    assert pass_at_k(2000, 1, 1) == pytest.approx(1 / 2000, rel=1e-15)
    expected = 1.0 - math.prod(1.0 - 3 / i for i in range(2000 - 7 + 1, 2001))
    assert pass_at_k(2000, 7, 3) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(("n", "c", "k"), [(5, 2, 6), (5, 6, 1), (5, -1, 1), (5, 2, 0), (0, 0, 1)])
def test_pass_k_rejects_bad_input(n: int, c: int, k: int) -> None:
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)
    with pytest.raises(ValueError):
        pass_hat_k(n, c, k)


def test_pass_k_rejects_non_int() -> None:
    with pytest.raises(ValueError):
        pass_at_k(5.0, 2, 1)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- wilson


def _wilson_formula(x: int, n: int, z: float) -> tuple[float, float]:
    p = x / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def test_wilson_known_value() -> None:
    low, high = wilson_interval(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-4)  # textbook value for 8/10 at 95%
    assert high == pytest.approx(0.9433, abs=1e-4)


@pytest.mark.parametrize(("x", "n"), [(0, 10), (10, 10), (3, 7), (50, 100), (1, 1000)])
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_wilson_matches_formula(x: int, n: int, confidence: float) -> None:
    z = float(sps.norm.ppf(0.5 + confidence / 2))
    exp_low, exp_high = _wilson_formula(x, n, z)
    low, high = wilson_interval(x, n, confidence)
    assert low == pytest.approx(max(exp_low, 0.0), abs=1e-12)
    assert high == pytest.approx(min(exp_high, 1.0), abs=1e-12)
    assert 0.0 <= low <= x / n <= high <= 1.0


def test_wilson_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        wilson_interval(0, 0)
    with pytest.raises(ValueError):
        wilson_interval(11, 10)
    with pytest.raises(ValueError):
        wilson_interval(5, 10, confidence=0.0)


def test_all_zero_differences_need_enough_pairs_to_be_equivalent() -> None:
    from parity.stats.estimates import min_pairs_for_equivalence

    assert min_pairs_for_equivalence(0.03) == 122  # (1 - 0.03)^122 <= 0.025 < (0.97)^121
    assert 0.97**122 <= 0.025 < 0.97**121
    # 10 problems x 2 (20 matched samples): the sign-flip interval collapses to [0, 0] (with
    # 5 problems it is [-1, 1]: 2 of the 32 sign assignments always count, p >= 1/16).
    few = {f"q{i}": [0.0, 0.0] for i in range(10)}
    comparison = paired_difference(few, few, margin=0.03)
    assert (comparison.low, comparison.high) == (0.0, 0.0)
    assert comparison.verdict is Verdict.NO_DIFFERENCE
    many = {f"q{i}": [0.0, 0.0] for i in range(61)}
    assert paired_difference(many, many, margin=0.03).verdict is Verdict.EQUIVALENT
