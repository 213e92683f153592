"""Equivalence: is a provider's output distribution the reference's? Pure statistics, no I/O.

Three two-sample tests, each a permutation test *within prompt* (the samples of one prompt
are pooled and their provider/reference labels shuffled, independently per prompt; the
per-prompt statistics are averaged with equal weight over prompts, as in Gao, Liang &
Guestrin, "Model Equality Testing", ICLR 2025). Under the null hypothesis "for every prompt,
the provider's samples and the reference's samples are draws from one distribution" the
labels are exchangeable within each prompt, so the permutation p-value

    p = (1 + #{b : T_b >= T_obs}) / (1 + B)

is valid at every sample size (P(p <= alpha) <= alpha), whatever the distributions, with B
Monte Carlo permutations. Ties count against rejection.

`mmd_test` -- MMD with a Hamming kernel on sampled completions (the paper's test).
    Each completion is cut to its first `length` units and padded with an end symbol; the
    unit is a character when completions are given as strings, a token when they are given
    as sequences of token strings (e.g. from `logprobs.content[].token`). The kernel is
    k(a, b) = (1/length) * #{positions l : a_l == b_l}, end symbols included (two
    completions that both stopped early agree there). The per-prompt statistic is the
    *unbiased* estimator of MMD^2 (the U-statistic, needing >= 2 samples per side):

        MMD^2_u = mean_{i != j} k(x_i, x_j) + mean_{i != j} k(y_i, y_j) - 2 mean_{i,j} k(x_i, y_j)

    Unbiased so that its mean over prompts estimates the population MMD^2 (0 under the
    null), which the "same" verdict bounds. Its unit: a fraction of positions, i.e. how much
    more often two completions from one side agree position by position than completions
    across sides.

`logprob_test` -- next-token distributions at a fixed prompt (from `top_logprobs`).
    For each prompt, every repeat (of either side) gives a top-k table token -> logprob of
    the first generated token. The tables are coarsened to the tokens present in *all* of
    that prompt's tables (the shared support S, chosen without looking at labels) plus one
    "other" bucket: p = (exp(lp_t) for t in S, 1 - sum). The per-prompt statistic is the
    total variation distance between the provider's mean vector and the reference's,
    TV = 0.5 * ||mean_provider - mean_reference||_1, a lower bound on the TV of the true
    next-token distributions (coarsening never increases TV). Its null is the reference's
    own repeat-to-repeat variation: labels are permuted among the repeats, so a provider
    passes only if its tables vary from the reference's no more than the reference's vary
    among themselves. When the reference is bit-for-bit reproducible, *any* numeric
    difference gives a tiny p-value: the p-value answers "the same numbers", not "the same
    model", which is why the default verdict also asks for a material effect (below).
    KL(reference || provider) on the coarsened support is reported as a second effect size.

`rank_test` -- a one-sided rank test of typicality (optional third method).
    Each sample's typicality is its mean Hamming similarity to the reference-labelled
    samples of the same prompt (itself excluded); the per-prompt statistic is the
    Mann-Whitney probability that a reference sample is more typical than a provider sample,
    minus 1/2 (ties count 1/2). Large when the provider's samples are atypical of the
    reference's. Works with a single provider sample per prompt against a recorded
    reference (the "one query per prompt" design); needs >= 2 reference samples.

Verdicts (`Verdict`): for a method run at level `alpha` with a minimum effect of interest
`tolerance` (in the method's effect unit):

    "different"     p <= alpha: the provider's distribution is not the reference's
                    (exact permutation test, error <= alpha when it is the same).
    "same"          not "different", and the one-sided (1 - alpha) upper confidence bound
                    of the effect is below `tolerance`: any difference is smaller than the
                    smallest one that matters. The bound is mean + t_{1-alpha, P-1} * sd/sqrt(P)
                    over the P per-prompt effects (approximate: normal theory over prompts).
                    This is a TOST-style equivalence claim, so P(say "same" | effect >=
                    tolerance) <= alpha (asymptotically): "same" is only said when the budget
                    had the power to see a difference of `tolerance`.
    "inconclusive"  neither: the budget was too small to tell.

A result can be "different" with an effect bound below `tolerance` (a real but negligible
difference); its `note` says so.

The logprob test (`logprob-tv`) answers the *practical* question by default, because it is
sensitive enough to see the kernels: the same weights served by other kernels (an F16 copy
of the fleet's Q4_1 weights) differ from the reference in every first-token probability
(mean TV 0.02, detected by the strict test with 4 requests), while lossy weights differ by
0.16 (compressed-mild). Its rules, with `lower`/`upper` the one-sided (1 - alpha) bounds of
the mean per-prompt TV:

    "different"     p <= alpha (beyond the reference's repeat noise) AND lower > tolerance
                    (the difference is material, not only numeric).
    "same"          upper < tolerance (even when p <= alpha: then the note says "numerically
                    different from the reference, within the tolerance").
    "inconclusive"  otherwise.

`logprob-tv-strict` (`strict=True`) uses the plain rules above, so any numeric difference
-- other kernels, other hardware, another batch layout, when the reference itself is
reproducible -- is "different". What "equivalent" means in parity, therefore: the provider's
sampled completions are indistinguishable from the reference's at the budget (MMD; in the
power study the sample tests never flag the F16 copy) and its next-token probabilities are
within `tolerance` of the reference's; it does not mean bit-identical numerics unless the
strict logprob test is asked for.

`combine` merges several methods (each already run at its share of alpha, see
`split_alpha`): "different" if any method says so (Bonferroni: family-wise error <= alpha),
"same" only if all say so, else "inconclusive".

`SequentialDesign` is the adaptive wrapper: a few looks at increasing sample sizes, each
with its own alpha (alpha spent proportionally to the looks' sizes, summing to alpha:
Bonferroni over looks, valid whatever the dependence between looks); sampling stops at the
first look whose verdict is not "inconclusive".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from scipy import stats as sps

__all__ = [
    "DEFAULT_LENGTH",
    "DEFAULT_PERMUTATIONS",
    "LOGPROB_METHOD",
    "LOGPROB_STRICT_METHOD",
    "MMD_METHOD",
    "RANK_METHOD",
    "TOLERANCES",
    "Decision",
    "MethodResult",
    "SequentialDesign",
    "SequentialOutcome",
    "Verdict",
    "combine",
    "encode_completions",
    "hamming_gram",
    "logprob_test",
    "logprob_vectors",
    "mmd2_unbiased",
    "mmd_test",
    "mmd_test_grams",
    "rank_test",
    "rank_test_grams",
    "run_sequential",
    "split_alpha",
]

Verdict = Literal["same", "different", "inconclusive"]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Completion = Sequence[Hashable]
"""A completion: a `str` (its units are characters) or a sequence of tokens (units: tokens)."""
Table = Mapping[str, float]
"""A top-k table of one generated position: token -> logprob."""

MMD_METHOD = "mmd-hamming"
LOGPROB_METHOD = "logprob-tv"
LOGPROB_STRICT_METHOD = "logprob-tv-strict"
RANK_METHOD = "rank-typicality"

DEFAULT_LENGTH = 48
"""Completions are cut to this many units (characters by default) before the kernel. On the
fleet, 48 characters of 12-token samples gave more power against compressed-mild than 16
(0.97 vs 0.90 at 32 prompts x 4 samples, in a pilot with smaller pools); the A/A rates at 48
characters are in the power study."""

DEFAULT_PERMUTATIONS = 2000
"""Monte Carlo permutations per test (the smallest possible p-value is 1 / 2001)."""

TOLERANCES: dict[str, float] = {
    MMD_METHOD: 0.02,
    LOGPROB_METHOD: 0.05,
    LOGPROB_STRICT_METHOD: 0.05,
    RANK_METHOD: 0.05,
}
"""Default minimum effects of interest, in each method's effect unit (see `MethodResult`):
MMD^2 in fractions of positions, TV in probability, rank in Mann-Whitney probability - 1/2.

Calibrated on the local fleet (benchmarks/equivalence_power.py; 48-character kernel,
12-token samples, the built-in prompts): compressed-mild, which loses about 14 accuracy
points, has MMD^2 0.045 and first-token TV 0.16; two identical servers have MMD^2 0.001 and
TV 0; the same weights on F16 kernels MMD^2 0.001 and TV 0.022. So the MMD tolerance is
less than half of the mildest real fault, and the TV tolerance sits between kernel-level
noise (0.02) and that fault (0.16). MMD^2 scales with the kernel length and the prompts:
change them and these numbers need measuring again."""

_END = -1  # code of the end/padding symbol
_TIE = 1e-12  # permuted statistics within this of the observed one count as >= it


@dataclass(frozen=True)
class MethodResult:
    """The outcome of one method on one provider.

    `p_value`: permutation p-value (valid at every sample size). `effect`: the mean over
    prompts of the per-prompt effect (MMD^2_u; TV; Mann-Whitney - 1/2), `effect_upper` and
    `effect_lower` its one-sided (1 - alpha) upper and lower confidence bounds (+-inf with
    fewer than 2 prompts).
    `statistic`, `null_mean`, `null_sd`: the pooled statistic and its permutation
    distribution's mean and sd; `z` = (statistic - null_mean) / null_sd. `prompts`: prompts
    that had enough samples; `provider_samples` / `reference_samples`: samples used in
    them. `extra` holds method-specific numbers (e.g. KL for the logprob test).
    """

    method: str
    verdict: Verdict
    p_value: float
    alpha: float
    effect: float
    effect_upper: float
    effect_lower: float
    tolerance: float
    statistic: float
    null_mean: float
    null_sd: float
    prompts: int
    provider_samples: int
    reference_samples: int
    permutations: int
    note: str = ""
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def z(self) -> float:
        """Standardised statistic: (statistic - null mean) / null sd (0 when sd is 0)."""
        if self.null_sd <= 0:
            return 0.0
        return (self.statistic - self.null_mean) / self.null_sd

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (infinite bounds become None)."""
        data = asdict(self)
        data["z"] = self.z
        for key, value in list(data.items()):
            if isinstance(value, float) and not math.isfinite(value):
                data[key] = None
        return data


@dataclass(frozen=True)
class Decision:
    """The verdict over several methods: `method` names which decided (None when none did)."""

    verdict: Verdict
    method: str | None
    results: tuple[MethodResult, ...]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "verdict": self.verdict,
            "method": self.method,
            "results": [r.to_dict() for r in self.results],
        }


# ---- encoding and kernel -----------------------------------------------------------------


def encode_completions(completions: Sequence[Completion], length: int) -> IntArray:
    """Codes of `completions` cut to `length` units: shape (n, length), end symbol -1.

    Units are the elements of each completion: characters for strings, tokens for sequences
    of token strings. Codes are consistent within one call (equal units, equal codes), so
    encode all the samples of one prompt, both sides, in one call.
    """
    if length < 1:
        raise ValueError("length must be >= 1")
    vocab: dict[Hashable, int] = {}
    codes = np.full((len(completions), length), _END, dtype=np.int64)
    for row, completion in enumerate(completions):
        for col, unit in enumerate(completion):
            if col >= length:
                break
            codes[row, col] = vocab.setdefault(unit, len(vocab))
    return codes


def hamming_gram(codes: IntArray) -> FloatArray:
    """The Hamming-kernel Gram matrix: G[a, b] = fraction of positions where rows agree."""
    if codes.ndim != 2:
        raise ValueError("codes must be 2-D (samples x positions)")
    n, length = codes.shape
    gram = np.zeros((n, n), dtype=np.float64)
    for col in range(length):  # one position at a time: O(n^2) memory, not O(n^2 * length)
        column = codes[:, col]
        gram += column[:, None] == column[None, :]
    gram /= length
    return gram


def mmd2_unbiased(gram: FloatArray, n_provider: int) -> float:
    """Unbiased MMD^2 of one prompt whose first `n_provider` Gram rows are the provider's.

    Needs >= 2 samples on each side; raises `ValueError` otherwise.
    """
    n = gram.shape[0]
    mx, my = n_provider, n - n_provider
    if mx < 2 or my < 2:
        raise ValueError("the unbiased MMD^2 needs at least 2 samples per side")
    gxx = gram[:mx, :mx]
    gyy = gram[mx:, mx:]
    kxx = (gxx.sum() - np.trace(gxx)) / (mx * (mx - 1))
    kyy = (gyy.sum() - np.trace(gyy)) / (my * (my - 1))
    kxy = gram[:mx, mx:].mean()
    return float(kxx + kyy - 2 * kxy)


# ---- permutation machinery -----------------------------------------------------------------


def _labels(k: int, permutations: int, n: int, n_provider: int, rng: np.random.Generator) -> Any:
    """Provider indicators, shape (k, permutations + 1, n); row 0 is the observed labelling."""
    keys = rng.random((k, permutations + 1, n))
    keys[:, 0, :] = np.arange(n)  # observed: the first n_provider items are the provider's
    ranks = np.argsort(np.argsort(keys, axis=-1), axis=-1)
    return (ranks < n_provider).astype(np.float64)


def _groups(sizes: Sequence[tuple[int, int]]) -> dict[tuple[int, int], list[int]]:
    groups: dict[tuple[int, int], list[int]] = {}
    for index, size in enumerate(sizes):
        groups.setdefault(size, []).append(index)
    return groups


def _p_value(pooled: FloatArray, larger_is_extreme: bool = True) -> float:
    observed = pooled[0]
    null = pooled[1:]
    if not larger_is_extreme:
        null, observed = -null, -observed
    return float((1 + np.count_nonzero(null >= observed - _TIE)) / (1 + null.size))


def _bounds(values: FloatArray, alpha: float) -> tuple[float, float]:
    """One-sided (1 - alpha) lower and upper bounds of the mean of `values` (t over prompts)."""
    if values.size < 2:
        return -math.inf, math.inf
    sd = float(values.std(ddof=1))
    t = float(sps.t.ppf(1 - alpha, values.size - 1))
    half = t * sd / math.sqrt(values.size)
    mean = float(values.mean())
    return mean - half, mean + half


def _verdict(
    p: float, alpha: float, lower: float, upper: float, tolerance: float, practical: bool
) -> tuple[Verdict, str]:
    """The verdict rules of the module docstring (`practical`: the logprob test's)."""
    if practical:
        if p <= alpha and lower > tolerance:
            return "different", ""
        note = "numerically different from the reference, " if p <= alpha else ""
        if upper < tolerance:
            return "same", (note + "within the tolerance") if note else ""
        return "inconclusive", note.rstrip(", ")
    if p <= alpha:
        if upper < tolerance:
            return "different", "real but below the tolerance (effect bound < tolerance)"
        return "different", ""
    if upper < tolerance:
        return "same", ""
    return "inconclusive", ""


def _check(alpha: float, permutations: int) -> None:
    if not 0 < alpha < 1:
        raise ValueError("alpha must be in (0, 1)")
    if permutations < 1:
        raise ValueError("permutations must be >= 1")


def _result(
    method: str,
    pooled: FloatArray,
    effects: FloatArray,
    *,
    alpha: float,
    tolerance: float,
    provider_samples: int,
    reference_samples: int,
    permutations: int,
    extra: dict[str, float] | None = None,
    practical: bool = False,
) -> MethodResult:
    if effects.size == 0:
        return MethodResult(
            method=method,
            verdict="inconclusive",
            p_value=1.0,
            alpha=alpha,
            effect=math.nan,
            effect_upper=math.inf,
            effect_lower=-math.inf,
            tolerance=tolerance,
            statistic=math.nan,
            null_mean=math.nan,
            null_sd=math.nan,
            prompts=0,
            provider_samples=0,
            reference_samples=0,
            permutations=permutations,
            note="no prompt had enough samples on both sides",
            extra=extra or {},
        )
    p = _p_value(pooled)
    lower, upper = _bounds(effects, alpha)
    verdict, note = _verdict(p, alpha, lower, upper, tolerance, practical)
    null = pooled[1:]
    return MethodResult(
        method=method,
        verdict=verdict,
        p_value=p,
        alpha=alpha,
        effect=float(effects.mean()),
        effect_upper=upper,
        effect_lower=lower,
        tolerance=tolerance,
        statistic=float(pooled[0]),
        null_mean=float(null.mean()),
        null_sd=float(null.std()),
        prompts=int(effects.size),
        provider_samples=provider_samples,
        reference_samples=reference_samples,
        permutations=permutations,
        note=note,
        extra=extra or {},
    )


def _rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


# ---- MMD ------------------------------------------------------------------------------------


def mmd_test_grams(
    grams: Sequence[FloatArray],
    n_provider: Sequence[int],
    *,
    alpha: float = 0.05,
    tolerance: float | None = None,
    permutations: int = DEFAULT_PERMUTATIONS,
    seed: int | np.random.Generator | None = None,
) -> MethodResult:
    """The MMD permutation test on precomputed per-prompt Gram matrices.

    `grams[i]` is prompt i's kernel matrix over its pooled samples, provider's first
    (`n_provider[i]` of them), reference's after. Prompts with fewer than 2 samples on a
    side are left out. Promises a valid permutation p-value and the verdict rule of the
    module docstring; equal inputs and seed give equal results.
    """
    _check(alpha, permutations)
    tol = TOLERANCES[MMD_METHOD] if tolerance is None else tolerance
    rng = _rng(seed)
    kept = [
        (g, mx) for g, mx in zip(grams, n_provider, strict=True) if mx >= 2 and g.shape[0] - mx >= 2
    ]
    pooled = np.zeros(permutations + 1)
    effects = np.zeros(len(kept))
    for (n, mx), members in _groups([(g.shape[0], mx) for g, mx in kept]).items():
        stack = np.stack([kept[i][0] for i in members])
        stack = stack * (1 - np.eye(n))  # zero diagonal: the U-statistic leaves i == j out
        my = n - mx
        a = _labels(len(members), permutations, n, mx, rng)
        ag = a @ stack  # (k, B+1, n)
        sxx = np.einsum("kbn,kbn->kb", ag, a)
        sxy = np.einsum("kbn,kbn->kb", ag, 1 - a)
        total = stack.sum(axis=(1, 2))[:, None]
        syy = total - sxx - 2 * sxy
        mmd = sxx / (mx * (mx - 1)) + syy / (my * (my - 1)) - 2 * sxy / (mx * my)
        pooled += mmd.sum(axis=0)
        effects[members] = mmd[:, 0]
    if kept:
        pooled /= len(kept)
    return _result(
        MMD_METHOD,
        pooled,
        effects,
        alpha=alpha,
        tolerance=tol,
        provider_samples=sum(mx for _, mx in kept),
        reference_samples=sum(g.shape[0] - mx for g, mx in kept),
        permutations=permutations,
    )


def _prompt_grams(
    samples: Mapping[str, tuple[Sequence[Completion], Sequence[Completion]]], length: int
) -> tuple[list[FloatArray], list[int]]:
    grams: list[FloatArray] = []
    sizes: list[int] = []
    for key in sorted(samples):
        provider, reference = samples[key]
        pooled = [*provider, *reference]
        if not pooled:
            continue
        grams.append(hamming_gram(encode_completions(pooled, length)))
        sizes.append(len(provider))
    return grams, sizes


def mmd_test(
    samples: Mapping[str, tuple[Sequence[Completion], Sequence[Completion]]],
    *,
    length: int = DEFAULT_LENGTH,
    alpha: float = 0.05,
    tolerance: float | None = None,
    permutations: int = DEFAULT_PERMUTATIONS,
    seed: int | np.random.Generator | None = None,
) -> MethodResult:
    """MMD two-sample test with the Hamming kernel; `samples[prompt] = (provider, reference)`.

    Completions are cut to `length` units (characters for strings, tokens for token
    sequences). Prompts with fewer than 2 samples on a side are left out. See the module
    docstring for the statistic, the p-value and the verdict.
    """
    grams, sizes = _prompt_grams(samples, length)
    return mmd_test_grams(
        grams, sizes, alpha=alpha, tolerance=tolerance, permutations=permutations, seed=seed
    )


# ---- rank (typicality) test ---------------------------------------------------------------


def rank_test_grams(
    grams: Sequence[FloatArray],
    n_provider: Sequence[int],
    *,
    alpha: float = 0.05,
    tolerance: float | None = None,
    permutations: int = DEFAULT_PERMUTATIONS,
    seed: int | np.random.Generator | None = None,
) -> MethodResult:
    """The one-sided typicality rank test on precomputed per-prompt Gram matrices.

    Layout as in `mmd_test_grams`. Prompts need >= 1 provider and >= 2 reference samples.
    Promises a valid permutation p-value; the effect is the mean over prompts of
    P(reference sample more typical than provider sample) - 1/2.
    """
    _check(alpha, permutations)
    tol = TOLERANCES[RANK_METHOD] if tolerance is None else tolerance
    rng = _rng(seed)
    kept = [
        (g, mx) for g, mx in zip(grams, n_provider, strict=True) if mx >= 1 and g.shape[0] - mx >= 2
    ]
    pooled = np.zeros(permutations + 1)
    effects = np.zeros(len(kept))
    for (n, mx), members in _groups([(g.shape[0], mx) for g, mx in kept]).items():
        stack = np.stack([kept[i][0] for i in members]) * (1 - np.eye(n))
        my = n - mx
        a = _labels(len(members), permutations, n, mx, rng)  # 1 = provider
        ref = 1 - a
        # typicality: mean similarity to the reference-labelled items, itself excluded
        score = (ref @ stack) / (my - ref)
        # Mann-Whitney from ranks (ties: average ranks, i.e. 1/2 per tied pair); scores are
        # rounded first so that equal sums added in another order still tie
        ranks = sps.rankdata(np.round(score, 9), axis=-1)
        rank_sum = np.einsum("kbn,kbn->kb", ranks, ref)
        u = (rank_sum - my * (my + 1) / 2) / (mx * my) - 0.5
        pooled += u.sum(axis=0)
        effects[members] = u[:, 0]
    if kept:
        pooled /= len(kept)
    return _result(
        RANK_METHOD,
        pooled,
        effects,
        alpha=alpha,
        tolerance=tol,
        provider_samples=sum(mx for _, mx in kept),
        reference_samples=sum(g.shape[0] - mx for g, mx in kept),
        permutations=permutations,
    )


def rank_test(
    samples: Mapping[str, tuple[Sequence[Completion], Sequence[Completion]]],
    *,
    length: int = DEFAULT_LENGTH,
    alpha: float = 0.05,
    tolerance: float | None = None,
    permutations: int = DEFAULT_PERMUTATIONS,
    seed: int | np.random.Generator | None = None,
) -> MethodResult:
    """The typicality rank test on completions; `samples[prompt] = (provider, reference)`.

    Same encoding as `mmd_test`. See the module docstring.
    """
    grams, sizes = _prompt_grams(samples, length)
    return rank_test_grams(
        grams, sizes, alpha=alpha, tolerance=tolerance, permutations=permutations, seed=seed
    )


# ---- logprob test ----------------------------------------------------------------------------


def logprob_vectors(tables: Sequence[Table]) -> tuple[list[str], FloatArray]:
    """The tables coarsened to their shared support: (tokens, probabilities (n, |S| + 1)).

    The shared support S is the sorted set of tokens present in every table; each row is
    (exp(logprob) of each token of S, then the remaining mass, clipped at 0). An empty list
    of tables, or no shared token, gives no tokens and the one-column "other" vectors.
    """
    if not tables:
        return [], np.zeros((0, 1))
    shared = set(tables[0])
    for table in tables[1:]:
        shared &= set(table)
    tokens = sorted(shared)
    rows = np.zeros((len(tables), len(tokens) + 1))
    for row, table in enumerate(tables):
        probs = [math.exp(min(float(table[t]), 0.0)) for t in tokens]
        rows[row, :-1] = probs
        rows[row, -1] = max(0.0, 1.0 - sum(probs))
    return tokens, rows


def logprob_test(
    tables: Mapping[str, tuple[Sequence[Table], Sequence[Table]]],
    *,
    alpha: float = 0.05,
    tolerance: float | None = None,
    permutations: int = DEFAULT_PERMUTATIONS,
    seed: int | np.random.Generator | None = None,
    strict: bool = False,
) -> MethodResult:
    """The logprob test; `tables[prompt] = (provider repeats, reference repeats)`.

    Each repeat is the top-k table (token -> logprob) of the first generated token for that
    prompt. Prompts need >= 1 repeat per side, >= 3 in all and a non-empty shared support.
    Null: the provider's repeats are exchangeable with the reference's (the reference's own
    repeat-to-repeat variation). Effect: mean over prompts of TV between the sides' mean
    coarsened distributions; `extra["kl"]` the mean KL(reference || provider) on the same
    coarsened support, `extra["support"]` the mean shared-support size.

    `strict=False` (method `logprob-tv`): the practical verdict of the module docstring
    ("different" needs p <= alpha *and* the effect's lower bound above `tolerance`).
    `strict=True` (method `logprob-tv-strict`): "different" as soon as p <= alpha, i.e. any
    numeric difference beyond the reference's repeat-to-repeat noise.
    """
    _check(alpha, permutations)
    method = LOGPROB_STRICT_METHOD if strict else LOGPROB_METHOD
    tol = TOLERANCES[method] if tolerance is None else tolerance
    rng = _rng(seed)
    pooled = np.zeros(permutations + 1)
    effects: list[float] = []
    kls: list[float] = []
    supports: list[int] = []
    n_prov = n_ref = 0
    for key in sorted(tables):
        provider, reference = tables[key]
        mx, my = len(provider), len(reference)
        if mx < 1 or my < 1 or mx + my < 3:
            continue
        tokens, vectors = logprob_vectors([*provider, *reference])
        if not tokens:
            continue
        a = _labels(1, permutations, mx + my, mx, rng)[0]  # (B+1, n)
        mean_p = (a @ vectors) / mx
        mean_r = ((1 - a) @ vectors) / my
        tv = 0.5 * np.abs(mean_p - mean_r).sum(axis=-1)
        pooled += tv
        effects.append(float(tv[0]))
        p, r = np.clip(mean_p[0], 1e-12, None), np.clip(mean_r[0], 1e-12, None)
        kls.append(float(np.sum(r * np.log(r / p))))
        supports.append(len(tokens))
        n_prov += mx
        n_ref += my
    if effects:
        pooled /= len(effects)
    extra = {
        "kl": float(np.mean(kls)) if kls else math.nan,
        "support": float(np.mean(supports)) if supports else math.nan,
    }
    return _result(
        method,
        pooled,
        np.asarray(effects, dtype=np.float64),
        alpha=alpha,
        tolerance=tol,
        provider_samples=n_prov,
        reference_samples=n_ref,
        permutations=permutations,
        extra=extra,
        practical=not strict,
    )


# ---- combining methods, adaptive design ---------------------------------------------------


def split_alpha(alpha: float, methods: Sequence[str]) -> dict[str, float]:
    """Bonferroni: each of `methods` gets alpha / len(methods)."""
    if not methods:
        raise ValueError("no method to split alpha over")
    return {method: alpha / len(methods) for method in methods}


def combine(results: Sequence[MethodResult]) -> Decision:
    """One verdict from several methods, each already run at its share of alpha.

    "different" when any method says so (decided by the one whose p-value is smallest
    relative to its alpha); "same" when every method says so (method: all of them, joined by
    "+"); "inconclusive" otherwise, or when there are no results.
    """
    rejected = [r for r in results if r.verdict == "different"]
    if rejected:
        first = min(rejected, key=lambda r: r.p_value / r.alpha)
        return Decision("different", first.method, tuple(results))
    if results and all(r.verdict == "same" for r in results):
        return Decision("same", "+".join(r.method for r in results), tuple(results))
    return Decision("inconclusive", None, tuple(results))


@dataclass(frozen=True)
class SequentialDesign:
    """Looks at increasing sample sizes (per prompt), alpha spent over them by Bonferroni.

    Look k gets alpha * sizes[k] / sum(sizes) (later, larger looks get more), so the
    probability of any wrong "different" -- and, for the effect bounds, of any wrong "same"
    -- over all looks is at most alpha, whatever the looks' dependence. Stop at the first
    look whose decision is not "inconclusive".
    """

    sizes: tuple[int, ...]
    alpha: float = 0.05

    def __post_init__(self) -> None:
        if not self.sizes or any(b <= a for a, b in zip(self.sizes, self.sizes[1:], strict=False)):
            raise ValueError("look sizes must be a non-empty increasing sequence")
        if self.sizes[0] < 1:
            raise ValueError("look sizes must be >= 1")
        if not 0 < self.alpha < 1:
            raise ValueError("alpha must be in (0, 1)")

    @classmethod
    def doubling(cls, start: int, stop: int, alpha: float = 0.05) -> SequentialDesign:
        """Looks at start, 2 start, 4 start, ... and finally `stop` (stop >= start)."""
        if start < 1 or stop < start:
            raise ValueError("need 1 <= start <= stop")
        sizes = [start]
        while sizes[-1] * 2 < stop:
            sizes.append(sizes[-1] * 2)
        if sizes[-1] != stop:
            sizes.append(stop)
        return cls(tuple(sizes), alpha)

    def alpha_at(self, look: int) -> float:
        """The alpha of look `look` (0-based)."""
        return self.alpha * self.sizes[look] / sum(self.sizes)


@dataclass(frozen=True)
class SequentialOutcome:
    """Where an adaptive test stopped: its decision, the look index and its size."""

    decision: Decision
    look: int
    size: int
    looks: tuple[Decision, ...]


def run_sequential(
    design: SequentialDesign, decide: Callable[[int, int, float], Decision]
) -> SequentialOutcome:
    """Run `decide(look, size, alpha)` at each look until a decision is not "inconclusive".

    `decide` must test all the data gathered up to `size` samples per prompt at level
    `alpha` (split further between methods if it runs several). Returns the first decisive
    look, or the last look.
    """
    looks: list[Decision] = []
    for look, size in enumerate(design.sizes):
        decision = decide(look, size, design.alpha_at(look))
        looks.append(decision)
        if decision.verdict != "inconclusive":
            break
    return SequentialOutcome(looks[-1], len(looks) - 1, design.sizes[len(looks) - 1], tuple(looks))
