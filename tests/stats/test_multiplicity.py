"""Verdicts that hold across a fleet: Holm's step-down procedure on known p-values, the
sign-flip test's p-value and its inverted interval agreeing exactly (property tests), the
family comparison with the reference, and the confidence sequence's anytime p-value."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parity.stats.estimates import (
    EXACT_SIGN_FLIP_MAX,
    SignFlipTest,
    Verdict,
    compare_with_reference,
    current_verdict,
    holm,
    paired_difference,
)
from parity.stats.sequential import PairedSequentialTest

# ---------------------------------------------------------------------------- Holm


def test_holm_on_known_p_values() -> None:
    # Sorted: d .005 (x4 = .02), a .01 (x3 = .03), c .03 (x2 = .06), b .04 (x1, running .06).
    steps = holm({"a": 0.01, "b": 0.04, "c": 0.03, "d": 0.005}, alpha=0.05)
    assert {k: s.rejected for k, s in steps.items()} == {
        "a": True,
        "b": False,
        "c": False,
        "d": True,
    }
    assert steps["d"].p_adjusted == pytest.approx(0.02)
    assert steps["a"].p_adjusted == pytest.approx(0.03)
    assert steps["c"].p_adjusted == pytest.approx(0.06)
    assert steps["b"].p_adjusted == pytest.approx(0.06)  # monotone: never below c's
    assert [steps[k].rank for k in "dacb"] == [1, 2, 3, 4]
    # Levels: alpha / 4, alpha / 3 for the rejected; the stopping step's alpha / 2 after.
    assert steps["d"].level == pytest.approx(0.05 / 4)
    assert steps["a"].level == pytest.approx(0.05 / 3)
    assert steps["c"].level == steps["b"].level == pytest.approx(0.05 / 2)


def test_holm_stops_at_the_first_acceptance() -> None:
    # b alone would pass at 0.05, but Holm tests a first, at 0.025, and stops there.
    steps = holm({"a": 0.03, "b": 0.04}, alpha=0.05)
    assert not steps["a"].rejected and not steps["b"].rejected
    assert steps["a"].p_adjusted == steps["b"].p_adjusted == pytest.approx(0.06)
    # Everything clearly significant is rejected; one test is a plain test at alpha.
    assert all(s.rejected for s in holm({"x": 0.001, "y": 0.002, "z": 0.01}).values())
    only = holm({"x": 0.049})["x"]
    assert only.rejected and only.level == 0.05 and only.p_adjusted == 0.049
    assert holm({}) == {}


def test_holm_is_order_free_and_caps_at_one() -> None:
    p = {"x": 0.5, "y": 0.5, "z": 0.9}
    assert holm(p) == holm(dict(reversed(list(p.items()))))
    assert all(s.p_adjusted <= 1.0 for s in holm(p).values())
    assert holm(p)["x"].p_adjusted == 1.0  # 3 x 0.5, capped
    with pytest.raises(ValueError):
        holm({"x": 1.5})
    with pytest.raises(ValueError):
        holm({"x": 0.1}, alpha=0.0)


@given(
    st.dictionaries(
        st.text("abcdef", min_size=1, max_size=3),
        st.floats(0.0, 1.0, allow_nan=False),
        max_size=12,
    ),
    st.floats(0.001, 0.2),
)
def test_holm_matches_the_textbook_step_down(p: dict[str, float], alpha: float) -> None:
    """Reject the k smallest, k the first step whose p exceeds alpha / (m - k + 1); the
    adjusted p-value is below alpha exactly for those."""
    order = sorted(p, key=lambda k: (p[k], k))
    m = len(order)
    rejected = set()
    for i, name in enumerate(order):
        if p[name] * (m - i) >= alpha:
            break
        rejected.add(name)
    steps = holm(p, alpha)
    assert {k for k, s in steps.items() if s.rejected} == rejected
    assert all(s.rejected == (s.p_adjusted < alpha) for s in steps.values())
    adjusted = [steps[k].p_adjusted for k in order]
    assert adjusted == sorted(adjusted)


# ---------------------------------------------------------------------------- sign flip


def _brute_p(diffs: list[float], delta: float) -> float:
    """Exact sign-flip p-value of "mean = delta" by enumeration."""
    shifted = [d - delta for d in diffs]
    observed = abs(sum(shifted))
    hits = 0
    for signs in itertools.product((1, -1), repeat=len(diffs)):
        hits += abs(sum(s * d for s, d in zip(signs, shifted, strict=True))) >= observed - 1e-9
    return hits / 2 ** len(diffs)


@pytest.mark.parametrize("seed", range(6))
def test_exact_interval_is_the_inverted_test(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 10))
    diffs = rng.choice([-1.0, -0.5, -1 / 3, 0.0, 1 / 3, 0.5, 1.0], size=n).tolist()
    test = SignFlipTest(diffs)
    assert test.denominator == 2**n and n <= EXACT_SIGN_FLIP_MAX
    assert test.p_value() == pytest.approx(_brute_p(diffs, 0.0))
    level = float(rng.choice([0.05, 0.1, 0.2]))
    low, high = test.interval(level)
    inside = np.linspace(low, high, 9)[1:-1]
    assert all(_brute_p(diffs, d) >= level for d in inside)
    for outside in (low - 1e-6, high + 1e-6):
        if -1.0 < outside < 1.0:
            assert _brute_p(diffs, outside) < level


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.integers(0, 2), st.integers(0, 6)),  # solved of 2 (provider), of 6 (ref)
        min_size=1,
        max_size=40,
    ),
    st.floats(0.001, 0.5),
    st.integers(0, 2**31 - 1),
)
def test_p_below_level_exactly_when_the_interval_excludes_zero(
    solved: list[tuple[int, int]], level: float, seed: int
) -> None:
    diffs = [a / 2 - b / 6 for a, b in solved]
    test = SignFlipTest(diffs, n_permutations=499, seed=seed)
    low, high = test.interval(level)
    assert -1.0 <= low <= test.mean <= high <= 1.0
    assert (test.p_value() < level) == (high < 0 or low > 0)
    # Intervals are nested: a smaller level never gives a narrower interval.
    wide_low, wide_high = test.interval(level / 2)
    assert wide_low <= low and high <= wide_high


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.integers(0, 4), min_size=2, max_size=6),  # providers' shift, problems wrong
    st.integers(0, 2**31 - 1),
    st.floats(0.01, 0.2),
)
def test_family_p_and_interval_agree(drops: list[int], seed: int, alpha: float) -> None:
    rng = np.random.default_rng(seed)
    rates = rng.uniform(0.1, 0.9, size=30)
    reference = {f"q{i}": rng.binomial(1, rates[i], size=6).tolist() for i in range(30)}
    providers = {
        f"p{j}": {
            f"q{i}": rng.binomial(1, max(0.0, rates[i] - 0.1 * drop), size=2).tolist()
            for i in range(30)
        }
        for j, drop in enumerate(drops)
    }
    found = compare_with_reference(providers, reference, alpha=alpha, n_permutations=499)
    assert set(found) == set(providers)
    for c in found.values():
        assert (c.p_value < alpha) == (c.high < 0 or c.low > 0)
        assert c.p_value >= c.p_unadjusted
        assert c.correction == "holm" and c.family == len(drops) and c.alpha == alpha
        assert c.confidence >= 1 - alpha
        if c.verdict in (Verdict.DEGRADED, Verdict.BETTER):
            assert c.p_value < alpha


def test_the_interval_includes_the_references_own_noise() -> None:
    """The reference's rate on a problem is the mean of all its repeats, and its noise
    widens the interval: the same provider against a noisier reference (fewer repeats)
    gets a wider interval."""
    rng = np.random.default_rng(3)
    rates = rng.uniform(0.2, 0.8, size=80)
    provider = {f"q{i}": rng.binomial(1, rates[i], size=2).tolist() for i in range(80)}
    many = {f"q{i}": rng.binomial(1, rates[i], size=12).tolist() for i in range(80)}
    few = {k: v[:2] for k, v in many.items()}
    wide, narrow = paired_difference(provider, few), paired_difference(provider, many)
    assert narrow.n_samples_reference == 6 * wide.n_samples_reference
    assert narrow.diff == pytest.approx(
        np.mean([np.mean(provider[k]) - np.mean(many[k]) for k in provider])
    )
    assert narrow.high - narrow.low < wide.high - wide.low


def test_compare_with_reference_flags_the_degraded_one_only() -> None:
    rng = np.random.default_rng(7)
    rates = rng.uniform(0.3, 0.9, size=80)
    reference = {f"q{i}": rng.binomial(1, rates[i], size=6).tolist() for i in range(80)}
    fleet = {
        f"twin{j}": {f"q{i}": rng.binomial(1, rates[i], size=2).tolist() for i in range(80)}
        for j in range(4)
    }
    fleet["lossy"] = {f"q{i}": rng.binomial(1, rates[i] * 0.4, size=2).tolist() for i in range(80)}
    found = compare_with_reference(fleet, reference, margin=0.03)
    assert found["lossy"].verdict is Verdict.DEGRADED
    assert found["lossy"].confidence == pytest.approx(1 - 0.05 / 5)  # tested first, at alpha/5
    assert all(found[f"twin{j}"].verdict is Verdict.NO_DIFFERENCE for j in range(4))
    assert all(c.family == 5 for c in found.values())
    # Same data, any order: the same result; a provider with nothing shared is left out.
    again = compare_with_reference(dict(reversed(list(fleet.items()))), reference)
    assert again == found
    alone = compare_with_reference({**fleet, "elsewhere": {"other": [1.0]}}, reference)
    assert "elsewhere" not in alone and alone["lossy"].family == 5


def test_legacy_verdicts_are_read_as_todays() -> None:
    assert current_verdict("inconclusive") == "no difference found" == Verdict.NO_DIFFERENCE
    assert current_verdict("degraded") == "degraded"
    assert current_verdict("equiv:same") == "equiv:same"


# ---------------------------------------------------------------------------- sequential


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.sampled_from([-1.0, -2 / 3, -1 / 3, 0.0, 1 / 3, 2 / 3, 1.0]), max_size=200),
    st.integers(1, 12),
    st.integers(1, 40),
)
def test_sequential_p_value_agrees_with_the_confidence_sequence(
    diffs: list[float], family: int, round_size: int
) -> None:
    alpha = 0.05
    test = PairedSequentialTest(margin=0.03, alpha=alpha / family)
    for start in range(0, len(diffs), round_size):
        test.update(diffs[start : start + round_size])
        low, high = test.interval()
        p = test.p_value(family)
        assert 0.0 <= test.p_value() <= p <= 1.0
        assert (p < alpha) == (high < 0 or low > 0)
        assert (test.p_value() < alpha / family) == (high < 0 or low > 0)


def test_sequential_p_value_survives_a_round_trip_and_only_falls() -> None:
    test = PairedSequentialTest(alpha=0.01)
    seen = []
    for _ in range(15):
        test.update([-1.0, 0.0, -1.0, -1.0, 0.0, 1.0, -1.0, 0.0])
        seen.append(test.p_value(5))
        again = PairedSequentialTest.from_dict(test.to_dict())
        assert again.p_value(5) == seen[-1]
    assert seen == sorted(seen, reverse=True)
    assert seen[-1] < 0.05 and test.verdict() is Verdict.DEGRADED
    # A state saved before the p-value was tracked reads as "nothing seen yet".
    old = {k: v for k, v in test.to_dict().items() if k != "log_capital_zero"}
    assert PairedSequentialTest.from_dict(old).state.log_capital_zero == 0.0
    assert math.isclose(PairedSequentialTest(alpha=0.01).p_value(5), 1.0)
