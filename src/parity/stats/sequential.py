"""Adaptive, anytime-valid comparison of a provider with the reference, paired by problem.

Sampling proceeds in rounds. Each pair ``t`` takes one problem ``i_t`` from `schedule` (drawn
uniformly at random, with replacement, from the suite's problems), one fresh sample of the
provider and one fresh sample of the reference on that problem, and records

    X_t = s_provider - s_reference  in [-1, 1]     (scores in [0, 1]).

Because ``i_t`` is uniform and independent of everything before it, and the two samples are
fresh draws, ``E[X_t | past] = mu`` where ``mu`` is the estimand of
`parity.stats.estimates.paired_difference`: the mean over problems of (provider solve rate -
reference solve rate). `PairedSequentialTest` keeps a confidence sequence (CS) for
``mu``: a sequence of intervals that contains ``mu`` at *all* times simultaneously with
probability >= 1 - alpha.
So the data may be looked at after every round and sampling stopped as soon as the verdict is
clear, without inflating the error rate (unlike a fixed-sample confidence interval, which is
valid only at one sample size fixed in advance).

Construction: betting confidence sequence of Waudby-Smith & Ramdas, "Estimating means of
bounded random variables by betting", J. R. Stat. Soc. B 86(1), 2024 (arXiv:2010.09686),
with their hedged capital process and diversified-Kelly ("dKelly") bets. For a candidate mean
``m`` in (-1, 1) and a bet fraction ``f`` in (0, 1), the two capital processes

    K_up_f(m)   = prod_t (1 + f * (X_t - m) / (1 + m))     (grows when mu > m)
    K_down_f(m) = prod_t (1 - f * (X_t - m) / (1 - m))     (grows when mu < m)

have every factor >= 1 - f > 0 (as X_t is in [-1, 1]), and they are nonnegative martingales
with initial value 1 when ``m = mu``. Averaging over the fixed fractions ``FRACTIONS``
(0.05, 0.15, ..., 0.95) gives mixture capitals ``K_up(m)`` and ``K_down(m)`` that are again
nonnegative martingales under ``m = mu`` and that grow about as fast as the best constant
fraction in hindsight (Kelly betting: the large fractions reject a grossly degraded
provider within a few dozen pairs, the small ones do the fine work near the margin). By
Ville's inequality,

    P(exists t: K_up_t(mu) >= 2 / alpha) <= alpha / 2,  and the same for K_down,

so the set of ``m`` never rejected by either side (threshold ``2 / alpha``, i.e. the hedged
capital ``max(K_up, K_down) / 2`` of WSR with theta = 1/2) contains ``mu`` at all times with
probability >= 1 - alpha. Intersecting over time (keeping every rejection) stays valid.
The only assumptions are ``X_t`` in [-1, 1] and ``E[X_t | past] = mu``; the pairs need not be
independent or identically distributed beyond that.

Each factor of ``K_up_f(m)`` is nonincreasing in ``m`` and each factor of ``K_down_f(m)`` is
nondecreasing, so the set rejected by the up side is a ray ``m <= a`` and the set rejected by
the down side a ray ``m >= b``: the CS is an interval. It is computed on a fixed grid of
candidate means (step 0.005 over (-1, 1), 0.0005 over [-0.2, 0.2], plus the decision points
``-margin``, ``+margin`` and ``+-1e-9`` around 0) and reported conservatively: ``low`` is the
largest grid point rejected from below (-1 if none) and ``high`` the smallest grid point
rejected from above (1 if none), so the exact CS lies strictly inside ``(low, high)``. The
decision points make the verdicts exact: ``high < 0`` (degraded) holds as soon as the down
side rejects ``-1e-9``, equivalence as soon as ``-margin`` and ``+margin`` are rejected.

p-value from the same test: 0 is excluded (the verdict degraded or better) exactly when the
down side rejects ``-1e-9`` or the up side rejects ``+1e-9``, i.e. when the larger of those
two capitals has reached ``2 / alpha`` at some round. The anytime-valid p-value of
"difference 0" is therefore ``min(1, 2 / K*)``, K* the largest value that capital has
reached so far (`PairedSequentialTest.p_value`; by Ville's inequality it is below ``a``
at any time with probability at most ``a`` when the difference is 0), and
``p_value() <= alpha`` exactly when the interval excludes 0 (the boundary itself is
decided by the interval). Several providers against one reference: give each test
``alpha / m`` (Bonferroni), so the family-wise error over the m providers stays below
alpha at all times; `PairedSequentialTest.p_value` with ``family=m`` is then the
Bonferroni-adjusted ``min(1, m * 2 / K*)`` and ``< alpha`` exactly when the interval
excludes 0.

The CS is updated at the end of every `PairedSequentialTest.update` call (one round).
Checking only at round ends is valid (Ville's inequality covers every time), but the result
depends on how pairs are grouped into rounds. With constant bets the capital depends only on
the multiset of observed differences, which is all the state keeps (plus the rejection
frontier); each update costs O(distinct values x grid), tiny for pass/fail scores whose
differences are only -1, 0 and 1.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from parity.stats.estimates import Verdict, decide

__all__ = ["FRACTIONS", "METHOD", "PairedSequentialTest", "SequentialState", "schedule"]

FloatArray = npt.NDArray[np.float64]

#: Identifies the construction (bets, grid, thresholds) a serialised state belongs to.
METHOD = "wsr-betting-dkelly-v1"

#: Bet fractions of the diversified-Kelly mixture, equally weighted.
FRACTIONS: tuple[float, ...] = tuple(round(0.05 + 0.1 * k, 2) for k in range(10))

# Offset of the grid points just either side of 0, so "high < 0" and "low > 0" are decided by
# rejecting -_ZERO_EPS / +_ZERO_EPS (the same as rejecting 0, to within 1e-9).
_ZERO_EPS = 1e-9

# Cached log-factor tables are kept for at most this many distinct difference values.
_CACHE_MAX = 64

_SCHEDULE_CHUNK = 4096


def _grid(margin: float) -> FloatArray:
    """Candidate means, sorted, strictly inside (-1, 1); contains +-margin and +-1e-9."""
    coarse = np.linspace(-1.0, 1.0, 401)[1:-1]
    fine = np.linspace(-0.2, 0.2, 801)
    special = [-_ZERO_EPS, _ZERO_EPS]
    if margin < 1.0:
        special += [-margin, margin]
    grid: FloatArray = np.unique(np.concatenate([coarse, fine, np.asarray(special)]))
    return grid


@dataclass(slots=True)
class SequentialState:
    """Everything needed to continue a `PairedSequentialTest`; round-trips through a dict.

    ``values``/``counts`` are the distinct paired differences seen so far (sorted) and how
    often each occurred; ``low``/``high`` are the rejection frontier of the confidence
    sequence (grid points, or -1 / 1 while nothing is rejected on that side).
    """

    margin: float
    alpha: float
    max_pairs: int | None
    values: list[float] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    low: float = -1.0
    high: float = 1.0
    log_capital_zero: float = 0.0
    """The largest log capital against a difference of 0 seen so far (the down side at
    -1e-9 or the up side at +1e-9, while they are still in the CS); 0 = capital 1."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (plain floats and ints) that `from_dict` restores exactly."""
        return {
            "method": METHOD,
            "margin": self.margin,
            "alpha": self.alpha,
            "max_pairs": self.max_pairs,
            "values": list(self.values),
            "counts": list(self.counts),
            "low": self.low,
            "high": self.high,
            "log_capital_zero": self.log_capital_zero,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SequentialState:
        """Inverse of `to_dict`. Raises ValueError for another method or inconsistent data."""
        if d.get("method") != METHOD:
            raise ValueError(f"sequential state: method {d.get('method')!r} is not {METHOD!r}")
        max_pairs = d["max_pairs"]
        state = cls(
            margin=float(d["margin"]),
            alpha=float(d["alpha"]),
            max_pairs=None if max_pairs is None else int(max_pairs),
            values=[float(v) for v in d["values"]],
            counts=[int(c) for c in d["counts"]],
            low=float(d["low"]),
            high=float(d["high"]),
            log_capital_zero=float(d.get("log_capital_zero", 0.0)),
        )
        values = np.asarray(state.values, dtype=np.float64)
        if len(state.values) != len(state.counts):
            raise ValueError("sequential state: values and counts differ in length")
        if not np.all(np.isfinite(values) & (values >= -1.0) & (values <= 1.0)):
            raise ValueError("sequential state: values must lie in [-1, 1]")
        if np.any(np.diff(values) <= 0) or any(c < 1 for c in state.counts):
            raise ValueError("sequential state: values must be sorted, distinct, counts >= 1")
        return state


def _check_diffs(diffs: Sequence[float]) -> FloatArray:
    arr = np.asarray(diffs, dtype=np.float64).reshape(-1)
    if not np.all((arr >= -1.0) & (arr <= 1.0)):  # also rejects NaN
        raise ValueError("paired differences must lie in [-1, 1]")
    out: FloatArray = arr + 0.0  # turns -0.0 into 0.0
    return out


class PairedSequentialTest:
    """Anytime-valid paired comparison (provider - reference) with early stopping.

    Feed each round's paired differences to `update`; `interval` is then a (1 - alpha)
    confidence sequence for the mean difference (valid simultaneously at every round, so it
    may be checked after each one), `verdict` is ``decide(low, high, margin)`` on it, and
    `done` says when to stop: a verdict other than NO_DIFFERENCE, or ``max_pairs`` pairs
    used. Since rejections are kept, the interval only shrinks, so once the verdict is not
    NO_DIFFERENCE it stays decided if more rounds are added (a DEGRADED or BETTER interval
    that shrinks inside the margin becomes EQUIVALENT, by `decide`'s precedence; only an
    empty interval, an event of probability <= alpha, can undo a decision). The construction
    is described in the module docstring.
    """

    def __init__(self, margin: float = 0.03, alpha: float = 0.05, max_pairs: int | None = None):
        if not (math.isfinite(margin) and 0.0 <= margin < 1.0):
            raise ValueError(f"margin must be in [0, 1), got {margin}")
        if not (0.0 < alpha < 1.0):
            raise ValueError(f"alpha must be in (0, 1), got {alpha}")
        if max_pairs is not None and (
            isinstance(max_pairs, bool) or not isinstance(max_pairs, int) or max_pairs < 1
        ):
            raise ValueError(f"max_pairs must be None or a positive int, got {max_pairs!r}")
        self._init(SequentialState(margin=margin, alpha=alpha, max_pairs=max_pairs))

    def _init(self, state: SequentialState) -> None:
        self._state = state
        self._grid = _grid(state.margin)
        fractions = np.asarray(FRACTIONS, dtype=np.float64)[:, None]
        self._f_up: FloatArray = fractions / (1.0 + self._grid)  # bets, D x G
        self._f_down: FloatArray = fractions / (1.0 - self._grid)
        self._log_threshold = math.log(2.0 / state.alpha)
        # Grid indices of +1e-9 (tested by the up side) and -1e-9 (the down side).
        self._zero_up = int(np.searchsorted(self._grid, _ZERO_EPS))
        self._zero_down = int(np.searchsorted(self._grid, -_ZERO_EPS))
        self._cache: dict[float, tuple[FloatArray, FloatArray]] = {}
        for bound in (state.low, state.high):
            if abs(bound) != 1.0 and not np.any(self._grid == bound):
                raise ValueError(f"sequential state: {bound!r} is not a grid point")

    # ---------------------------------------------------------------------------- state

    @property
    def margin(self) -> float:
        """The equivalence margin given to `decide`."""
        return self._state.margin

    @property
    def alpha(self) -> float:
        """1 - alpha is the simultaneous coverage of the confidence sequence."""
        return self._state.alpha

    @property
    def max_pairs(self) -> int | None:
        """The budget in pairs (None: unlimited)."""
        return self._state.max_pairs

    @property
    def n(self) -> int:
        """Number of pairs observed so far."""
        return sum(self._state.counts)

    @property
    def mean(self) -> float | None:
        """Mean of the differences so far (the point estimate), None before any pair."""
        n = self.n
        if n == 0:
            return None
        s = self._state
        return math.fsum(v * c for v, c in zip(s.values, s.counts, strict=True)) / n

    @property
    def state(self) -> SequentialState:
        """A copy of the current state."""
        s = self._state
        return SequentialState(
            s.margin,
            s.alpha,
            s.max_pairs,
            list(s.values),
            list(s.counts),
            s.low,
            s.high,
            s.log_capital_zero,
        )

    def to_dict(self) -> dict[str, Any]:
        """The state as a JSON-serialisable dict; `from_dict` continues exactly from it."""
        return self._state.to_dict()

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PairedSequentialTest:
        """Rebuild a test from `to_dict` output; further updates give identical results."""
        state = SequentialState.from_dict(d)
        test = cls(margin=state.margin, alpha=state.alpha, max_pairs=state.max_pairs)
        test._init(state)
        return test

    # ---------------------------------------------------------------------------- updates

    def _log_factors(self, value: float, start: int, stop: int) -> tuple[FloatArray, FloatArray]:
        """log of one pair's factor in every up / down capital process, for the grid points
        ``start:stop`` (each D x (stop - start))."""
        cached = self._cache.get(value)
        if cached is not None:
            return cached[0][:, start:stop], cached[1][:, start:stop]
        full = len(self._cache) < _CACHE_MAX  # cache the whole grid, else compute the slice
        lo, hi = (0, len(self._grid)) if full else (start, stop)
        delta = value - self._grid[lo:hi]
        up = np.log1p(self._f_up[:, lo:hi] * delta)
        down = np.log1p(-self._f_down[:, lo:hi] * delta)
        if not full:
            return up, down
        self._cache[value] = (up, down)
        return up[:, start:stop], down[:, start:stop]

    def update(self, diffs: Sequence[float]) -> None:
        """Add one round of paired differences (provider - reference), each in [-1, 1].

        The confidence sequence is updated once, at the end of the round. Raises ValueError
        for a value outside [-1, 1] or NaN, or if the round would take the number of pairs
        past ``max_pairs`` (nothing is added then). An empty round changes nothing.
        """
        arr = _check_diffs(diffs)
        if arr.size == 0:
            return
        s = self._state
        if s.max_pairs is not None and self.n + arr.size > s.max_pairs:
            raise ValueError(
                f"round of {arr.size} pairs would exceed max_pairs={s.max_pairs} ({self.n} used)"
            )
        hist = dict(zip(s.values, s.counts, strict=True))
        new_values, new_counts = np.unique(arr, return_counts=True)
        for v, c in zip(new_values.tolist(), new_counts.tolist(), strict=True):
            hist[v] = hist.get(v, 0) + int(c)
        s.values = sorted(hist)
        s.counts = [hist[v] for v in s.values]

        # Candidate means still in the CS: every grid point <= low or >= high is rejected
        # already (the rejected sets are rays), so only the points strictly between are
        # evaluated.
        start = int(np.searchsorted(self._grid, s.low, side="right"))
        stop = int(np.searchsorted(self._grid, s.high, side="left"))
        if start >= stop:
            return  # the CS is empty (probability <= alpha): nothing left to reject

        # Log capital of every (fraction, candidate mean), from the histogram in sorted order
        # (so the result depends only on the multiset of differences).
        log_up = np.zeros((len(FRACTIONS), stop - start))
        log_down = np.zeros_like(log_up)
        for v, c in zip(s.values, s.counts, strict=True):
            up, down = self._log_factors(v, start, stop)
            log_up += c * up
            log_down += c * down
        mix_up = _log_mean_exp(log_up)
        mix_down = _log_mean_exp(log_down)
        for i, side in ((self._zero_up, mix_up), (self._zero_down, mix_down)):
            if start <= i < stop:
                s.log_capital_zero = max(s.log_capital_zero, float(side[i - start]))

        rejected_up = np.flatnonzero(mix_up >= self._log_threshold)
        if rejected_up.size:
            s.low = float(self._grid[start + rejected_up[-1]])
        rejected_down = np.flatnonzero(mix_down >= self._log_threshold)
        if rejected_down.size:
            s.high = float(self._grid[start + rejected_down[0]])

    # ---------------------------------------------------------------------------- results

    def interval(self) -> tuple[float, float]:
        """The current confidence sequence ``(low, high)`` for the mean difference.

        With probability >= 1 - alpha, the true mean lies strictly inside ``(low, high)`` at
        every round simultaneously. Starts as ``(-1, 1)`` and only shrinks. In the (rare)
        event that every candidate mean has been rejected, the returned interval is the
        conflict region between the two rejection frontiers.
        """
        s = self._state
        return (s.low, s.high) if s.low <= s.high else (s.high, s.low)

    def verdict(self) -> Verdict:
        """``decide(low, high, margin)`` on the current confidence sequence."""
        return decide(*self.interval(), self._state.margin)

    def p_value(self, family: int = 1) -> float:
        """The anytime-valid p-value of "difference 0", from the same capital as the
        interval: ``min(1, 2 / K*)`` (K* the largest capital against 0 so far), times
        ``family`` (Bonferroni, when this test got ``alpha / family``). With
        ``family * alpha`` the family's level, it is below that level exactly when the
        interval excludes 0 (on the boundary, where rounding could split them, it is set to
        the side the interval is on)."""
        if isinstance(family, bool) or not isinstance(family, int) or family < 1:
            raise ValueError(f"family must be a positive int, got {family!r}")
        s = self._state
        p = min(1.0, family * 2.0 * math.exp(-s.log_capital_zero))
        low, high = self.interval()
        # The family's level; family * (alpha / family) may be off alpha by an ulp, so the
        # boundary is kept clear by a relative 1e-9 either side.
        level = family * s.alpha
        if high < 0 or low > 0:
            return min(p, level * (1 - 1e-9))
        return max(p, min(1.0, level * (1 + 1e-9)))

    def done(self) -> bool:
        """True once the verdict is not NO_DIFFERENCE or the ``max_pairs`` budget is spent."""
        s = self._state
        if s.max_pairs is not None and self.n >= s.max_pairs:
            return True
        return self.verdict() is not Verdict.NO_DIFFERENCE


def _log_mean_exp(x: FloatArray) -> FloatArray:
    """log(mean(exp(x), axis=0)), computed stably."""
    top = x.max(axis=0)
    out: FloatArray = top + np.log(np.exp(x - top).mean(axis=0))
    return out


def schedule(n_problems: int, seed: int, start: int = 0) -> Iterator[int]:
    """Problem index (0 .. n_problems - 1) for each successive pair, from pair ``start`` on.

    Independent uniform draws with replacement (so ``E[X_t | past]`` is the per-problem mean
    difference, as the confidence sequence requires); endless. Deterministic given ``seed``
    whatever the consumption pattern, and ``schedule(n, seed, start=k)`` continues exactly
    where the first ``k`` items of ``schedule(n, seed)`` stopped (for resuming a run). The
    sample index to use for pair ``t`` is the number of earlier pairs on the same problem.
    Raises ValueError unless ``n_problems >= 1`` and ``start >= 0``.
    """
    if isinstance(n_problems, bool) or not isinstance(n_problems, int) or n_problems < 1:
        raise ValueError(f"n_problems must be a positive int, got {n_problems!r}")
    if start < 0:
        raise ValueError(f"start must be >= 0, got {start}")
    return _schedule(n_problems, seed, start)


def _schedule(n_problems: int, seed: int, start: int) -> Iterator[int]:
    rng = np.random.default_rng(seed)
    skip_chunks, offset = divmod(start, _SCHEDULE_CHUNK)
    for _ in range(skip_chunks):
        rng.integers(0, n_problems, size=_SCHEDULE_CHUNK)
    while True:
        chunk = rng.integers(0, n_problems, size=_SCHEDULE_CHUNK).tolist()
        yield from chunk[offset:]
        offset = 0
