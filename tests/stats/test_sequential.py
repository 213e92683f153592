"""Tests for parity.stats.sequential: coverage of the confidence sequence, decisions, resume."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

from parity.stats.estimates import Verdict
from parity.stats.sequential import METHOD, PairedSequentialTest, SequentialState, schedule


def _stream(
    rng: np.random.Generator, values: list[float], probs: list[float], n: int
) -> list[float]:
    out: list[float] = rng.choice(np.asarray(values), p=np.asarray(probs), size=n).tolist()
    return out


def _coverage(
    values: list[float],
    probs: list[float],
    *,
    streams: int,
    pairs: int,
    round_size: int,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[float, float]:
    """Fraction of streams whose CS contains the true mean after every round, and the mean
    final width."""
    mu = float(np.dot(values, probs))
    rng = np.random.default_rng(seed)
    covered = 0
    widths = []
    for _ in range(streams):
        test = PairedSequentialTest(alpha=alpha)
        data = _stream(rng, values, probs, pairs)
        ok = True
        for start in range(0, pairs, round_size):
            test.update(data[start : start + round_size])
            low, high = test.interval()
            if not low < mu < high:
                ok = False
                break
        covered += ok
        widths.append(high - low)
    return covered / streams, float(np.mean(widths))


# ------------------------------------------------------------------- confidence sequence


def test_coverage_at_all_times_pass_fail_differences() -> None:
    # A degraded-like stream: mean -0.1 (not a grid point), differences -1, 0, 1.
    coverage, width = _coverage(
        [-1.0, 0.0, 1.0], [0.17, 0.76, 0.07], streams=300, pairs=240, round_size=4
    )
    assert coverage >= 0.93
    assert width < 0.35  # the CS does shrink: not trivially valid


def test_coverage_at_all_times_near_zero_low_variance() -> None:
    # A/A-like: mean 0, most pairs agree; the CS is narrow, so this probes the grid near 0.
    coverage, width = _coverage(
        [-1.0, 0.0, 1.0], [0.04, 0.92, 0.04], streams=300, pairs=480, round_size=8, seed=1
    )
    assert coverage >= 0.93
    assert width < 0.12


def test_coverage_at_all_times_partial_credit_differences() -> None:
    # Five-valued differences (partial-credit scores), mean 0.07, checked every 3 pairs.
    values = [-1.0, -0.5, 0.0, 0.5, 1.0]
    probs = [0.08, 0.2, 0.4, 0.2, 0.12]
    coverage, width = _coverage(values, probs, streams=200, pairs=150, round_size=3, seed=2)
    assert coverage >= 0.93
    assert width < 0.6


def test_interval_only_shrinks_and_starts_full() -> None:
    test = PairedSequentialTest()
    assert test.interval() == (-1.0, 1.0)
    assert test.verdict() is Verdict.NO_DIFFERENCE
    assert test.n == 0 and test.mean is None
    rng = np.random.default_rng(3)
    previous = test.interval()
    for _ in range(40):
        test.update(_stream(rng, [-1.0, 0.0, 1.0], [0.2, 0.6, 0.2], 5))
        low, high = test.interval()
        assert previous[0] <= low <= high <= previous[1]
        previous = (low, high)
    assert test.n == 200


def test_mean_is_the_mean_of_the_differences() -> None:
    test = PairedSequentialTest()
    test.update([1.0, 0.0, -1.0, -1.0])
    test.update([0.5])
    assert test.mean == pytest.approx(-0.5 / 5)
    assert test.n == 5


def test_round_order_does_not_matter() -> None:
    a, b = PairedSequentialTest(), PairedSequentialTest()
    data = [-1.0, 0.0, 0.0, 1.0, -1.0, -1.0, 0.5, -0.0]
    a.update(data)
    b.update(data[::-1])
    assert a.to_dict() == b.to_dict()


# ------------------------------------------------------------------------------ decisions


def test_all_minus_one_is_degraded_quickly() -> None:
    test = PairedSequentialTest()
    while not test.done():
        test.update([-1.0])
    assert test.verdict() is Verdict.DEGRADED
    assert test.n <= 10
    low, high = test.interval()
    assert -1.0 <= low < high < 0.0


def test_all_plus_one_is_better() -> None:
    test = PairedSequentialTest()
    while not test.done():
        test.update([1.0])
    assert test.verdict() is Verdict.BETTER
    assert test.n <= 10


def test_all_zero_with_wide_margin_is_equivalent() -> None:
    test = PairedSequentialTest(margin=0.3)
    while not test.done():
        test.update([0.0, 0.0])
    assert test.verdict() is Verdict.EQUIVALENT
    assert test.n <= 30
    low, high = test.interval()
    assert -0.3 <= low < 0.0 < high <= 0.3


def test_all_zero_default_margin_needs_more_pairs_but_gets_there() -> None:
    test = PairedSequentialTest(max_pairs=2000)
    while not test.done():
        test.update([0.0] * 10)
    assert test.verdict() is Verdict.EQUIVALENT
    assert 50 < test.n < 1000


def test_clearly_degraded_provider_decided_with_few_pairs() -> None:
    # 93% vs 37%-like: most pairs are -1.
    rng = np.random.default_rng(5)
    test = PairedSequentialTest(max_pairs=960)
    while not test.done():
        test.update(_stream(rng, [-1.0, 0.0, 1.0], [0.57, 0.41, 0.02], 8))
    assert test.verdict() is Verdict.DEGRADED
    assert test.n <= 64


def test_budget_stop_is_no_difference_and_caps_pairs() -> None:
    test = PairedSequentialTest(max_pairs=20)
    test.update([0.0] * 12)
    assert not test.done()
    with pytest.raises(ValueError, match="max_pairs"):
        test.update([0.0] * 9)
    assert test.n == 12  # a refused round adds nothing
    test.update([0.0] * 8)
    assert test.n == 20
    assert test.done()
    assert test.verdict() is Verdict.NO_DIFFERENCE
    with pytest.raises(ValueError):
        test.update([0.0])


def test_empty_round_changes_nothing() -> None:
    test = PairedSequentialTest()
    test.update([-1.0, 0.0])
    before = test.to_dict()
    test.update([])
    assert test.to_dict() == before


@pytest.mark.parametrize("bad", [[1.5], [-1.01], [math.nan], [0.0, math.inf]])
def test_rejects_out_of_range_differences(bad: list[float]) -> None:
    test = PairedSequentialTest()
    with pytest.raises(ValueError):
        test.update(bad)
    assert test.n == 0


@pytest.mark.parametrize(
    "kwargs",
    [{"margin": -0.1}, {"margin": 1.0}, {"alpha": 0.0}, {"alpha": 1.0}, {"max_pairs": 0}],
)
def test_rejects_bad_parameters(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        PairedSequentialTest(**kwargs)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------- resume


def test_round_trip_through_json_continues_identically() -> None:
    rng = np.random.default_rng(11)
    original = PairedSequentialTest(margin=0.05, alpha=0.1, max_pairs=500)
    for _ in range(6):
        original.update(_stream(rng, [-1.0, -0.5, 0.0, 1.0], [0.15, 0.05, 0.7, 0.1], 7))
    restored = PairedSequentialTest.from_dict(json.loads(json.dumps(original.to_dict())))
    assert restored.to_dict() == original.to_dict()
    assert restored.interval() == original.interval()
    assert (restored.n, restored.margin, restored.alpha, restored.max_pairs) == (42, 0.05, 0.1, 500)
    for _ in range(20):
        batch = _stream(rng, [-1.0, 0.0, 1.0], [0.1, 0.8, 0.1], 9)
        original.update(batch)
        restored.update(batch)
        assert restored.interval() == original.interval()
        assert restored.verdict() is original.verdict()
        assert restored.done() == original.done()
    assert restored.to_dict() == original.to_dict()


def test_state_dataclass_round_trip_and_validation() -> None:
    test = PairedSequentialTest()
    test.update([-1.0, -1.0, 0.0])
    state = test.state
    assert isinstance(state, SequentialState)
    assert SequentialState.from_dict(state.to_dict()) == state
    d = state.to_dict()
    assert d["method"] == METHOD
    with pytest.raises(ValueError):
        PairedSequentialTest.from_dict({**d, "method": "something-else"})
    with pytest.raises(ValueError):
        PairedSequentialTest.from_dict({**d, "values": [0.0, -1.0]})
    with pytest.raises(ValueError):
        PairedSequentialTest.from_dict({**d, "low": 0.123456789})  # not a grid point


# ------------------------------------------------------------------------------ schedule


def test_schedule_is_deterministic_and_in_range() -> None:
    first = list(itertools.islice(schedule(30, seed=7), 10_000))
    again = list(itertools.islice(schedule(30, seed=7), 10_000))
    other = list(itertools.islice(schedule(30, seed=8), 10_000))
    assert first == again
    assert first != other
    assert min(first) == 0 and max(first) == 29
    counts = np.bincount(first, minlength=30)
    assert counts.min() > 250 and counts.max() < 420  # uniform: 333 expected each


@pytest.mark.parametrize("start", [0, 1, 100, 4095, 4096, 4097, 9000])
def test_schedule_resumes_where_it_stopped(start: int) -> None:
    full = list(itertools.islice(schedule(30, seed=3), 10_000))
    resumed = list(itertools.islice(schedule(30, seed=3, start=start), 10_000 - start))
    assert resumed == full[start:]


def test_schedule_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        schedule(0, seed=1)
    with pytest.raises(ValueError):
        schedule(30, seed=1, start=-1)
