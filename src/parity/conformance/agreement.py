"""How often repeated answers agree, and whether one agreement rate is below another.

GPU batching, prefix caches and shared servers make the same request come back different
even at temperature 0, so a check that compares repeated answers (same seed, temperature 0,
streamed vs plain) cannot demand that they all be equal. It counts agreements (`Tally`) and
holds a provider to the reference's own rate: it fails only when the provider agrees
*significantly* less often, by Boschloo's exact test (one-sided, `ALPHA`), which is exact for
two small binomial samples and uniformly more powerful than Fisher's. With six pairs on each
side: a reference agreeing 6/6 fails a provider at 3/6 or fewer (p = 0.034), one at 4/6
fails a provider at 0/6 (p = 0.011), and a provider at 5/6 passes against 6/6 (p = 0.39).

Where there is no reference (or the provider is the reference), a check compares the answers
with their own expected agreement: same-seed pairs with pairs of different seeds, temperature
0 with temperature 1.5, a streamed answer with a repeat of the same path.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from scipy.stats import boschloo_exact

ALPHA = 0.05
"""The false-alarm rate of every agreement bar."""


@dataclass(frozen=True)
class Tally:
    """`agree` of `total` comparisons came out equal."""

    agree: int
    total: int

    @property
    def rate(self) -> float:
        """The share that agreed (0.0 with nothing compared)."""
        return self.agree / self.total if self.total else 0.0

    @property
    def exact(self) -> bool:
        """Every comparison agreed (and there was at least one)."""
        return self.total > 0 and self.agree == self.total

    def __str__(self) -> str:
        return f"{self.agree}/{self.total}"


def pairs(items: Sequence[tuple[str | None, str | None]]) -> Tally:
    """Agreement of (a, b) pairs; None marks an answer that is unusable: a pair with one
    counts as disagreeing (a broken answer does not match)."""
    agree = sum(a is not None and a == b for a, b in items)
    return Tally(agree, len(items))


def repeats(outputs: Sequence[str]) -> Tally:
    """Agreement of repeats of one request: how many after the first give the most common
    answer (all equal: n-1 of n-1; all different: 0 of n-1)."""
    if not outputs:
        return Tally(0, 0)
    return Tally(Counter(outputs).most_common(1)[0][1] - 1, len(outputs) - 1)


def p_below(mine: Tally, baseline: Tally) -> float:
    """One-sided p-value that `mine`'s agreement rate is below `baseline`'s (Boschloo's exact
    test); 1.0 when `mine` is not below it or either has nothing compared."""
    if not mine.total or not baseline.total or mine.rate >= baseline.rate:
        return 1.0
    table = [
        [mine.agree, baseline.agree],
        [mine.total - mine.agree, baseline.total - baseline.agree],
    ]
    p = float(boschloo_exact(table, alternative="less").pvalue)
    return 1.0 if math.isnan(p) else min(1.0, p)


def below(mine: Tally, baseline: Tally) -> bool:
    """True when `mine` agrees significantly less often than `baseline` (p < ALPHA)."""
    return p_below(mine, baseline) < ALPHA


def p_text(p: float) -> str:
    """'p=0.034', 'p<0.001'."""
    return "p<0.001" if p < 0.001 else f"p={p:.2g}"


@dataclass(frozen=True)
class Paths:
    """Two paths of one deployment answering the same requests, each asked twice: `cross`
    compares the paths on each request (streamed vs plain), `within` each path with its own
    repeat (the noise the paths would show if they were the same)."""

    cross: Tally
    within: Tally


def judge_paths(mine: Paths, reference: Paths | None) -> tuple[bool, str, str]:
    """(ok, figure suffix, bar) for two paths that should answer alike.

    Exact where both sides show no noise: when the provider repeats itself exactly on each
    path (and the reference, if any, agrees exactly on every comparison), any difference
    between the paths is systematic, and every pair must be equal. Otherwise the provider's
    cross agreement must not be significantly below the reference's (or, without one, its own
    repeat agreement)."""
    if reference is not None and not reference.cross.total:
        reference = None
    quiet = mine.within.exact and (
        reference is None or (reference.cross.exact and reference.within.exact)
    )
    quiet = quiet or (reference is None and not mine.within.total)  # nothing to weigh noise by
    if quiet:
        who = " and so does the reference" if reference is not None else ""
        bar = f"every pair equal (exact: each path repeats itself exactly{who})"
        if not mine.within.total:
            bar = "every pair equal (exact: no repeat to weigh noise by)"
        return mine.cross.exact, "", bar
    if reference is not None:
        baseline, what = reference.cross, "the reference's"
    else:
        baseline, what = mine.within, "its own repeat agreement"
    p = p_below(mine.cross, baseline)
    bar = f"not significantly below {what} {baseline} (one-sided Boschloo, p >= {ALPHA})"
    suffix = f" vs {what} {baseline} ({p_text(p)})"
    return p >= ALPHA, suffix, bar
