"""The equivalence statistics on synthetic distributions with known answers (no network)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from parity.equivalence.statistics import (
    LOGPROB_METHOD,
    LOGPROB_STRICT_METHOD,
    MMD_METHOD,
    RANK_METHOD,
    Decision,
    MethodResult,
    SequentialDesign,
    combine,
    encode_completions,
    hamming_gram,
    logprob_test,
    logprob_vectors,
    mmd2_unbiased,
    mmd_test,
    mmd_test_grams,
    rank_test,
    rank_test_grams,
    run_sequential,
    split_alpha,
)

BASE = np.array([0.4, 0.3, 0.2, 0.1])
SHIFTED = np.array([0.3, 0.3, 0.25, 0.15])
FAR = np.array([0.05, 0.05, 0.3, 0.6])
LETTERS = np.array(list("abcd"))


def draw_codes(rng: np.random.Generator, probs: np.ndarray, n: int, length: int = 8) -> np.ndarray:
    """n i.i.d. "completions" of `length` letters, each letter drawn from `probs`."""
    return rng.choice(len(probs), size=(n, length), p=probs)


def grams_for(
    rng: np.random.Generator, provider: np.ndarray, reference: np.ndarray, prompts_n: int, m: int
) -> list[np.ndarray]:
    return [
        hamming_gram(np.vstack([draw_codes(rng, provider, m), draw_codes(rng, reference, m)]))
        for _ in range(prompts_n)
    ]


def texts(rng: np.random.Generator, probs: np.ndarray, n: int) -> list[str]:
    return ["".join(LETTERS[row]) for row in draw_codes(rng, probs, n)]


# ---- kernel and estimator -------------------------------------------------------------------


def test_encode_characters_tokens_and_padding() -> None:
    codes = encode_completions(["abc", "ab", "abcdef"], 4)
    assert codes.shape == (3, 4)
    assert (codes[0, :3] == codes[2, :3]).all()
    assert codes[1, 2] == codes[1, 3] == codes[0, 3] == -1  # end symbol
    tokens = encode_completions([["Hello", " world"], ["Hello", "!"]], 3)
    assert tokens[0, 0] == tokens[1, 0] and tokens[0, 1] != tokens[1, 1]
    with pytest.raises(ValueError):
        encode_completions(["a"], 0)


def test_hamming_gram_counts_agreeing_positions() -> None:
    gram = hamming_gram(encode_completions(["abcd", "abxx", "", "a"], 4))
    assert np.allclose(np.diag(gram), 1.0)
    assert gram[0, 1] == pytest.approx(0.5)
    assert gram[2, 3] == pytest.approx(0.75)  # both ended: the end symbols agree
    assert np.allclose(gram, gram.T)


def test_unbiased_mmd_matches_direct_formula_and_observed_statistic() -> None:
    rng = np.random.default_rng(0)
    codes = np.vstack([draw_codes(rng, BASE, 5), draw_codes(rng, FAR, 7)])
    gram = hamming_gram(codes)
    direct = (
        sum(gram[i, j] for i in range(5) for j in range(5) if i != j) / 20
        + sum(gram[i, j] for i in range(5, 12) for j in range(5, 12) if i != j) / 42
        - 2 * gram[:5, 5:].mean()
    )
    assert mmd2_unbiased(gram, 5) == pytest.approx(direct)
    result = mmd_test_grams([gram], [5], permutations=50, seed=1)
    assert result.statistic == pytest.approx(direct)
    assert result.effect == pytest.approx(direct)
    with pytest.raises(ValueError):
        mmd2_unbiased(gram, 1)


# ---- known answers ---------------------------------------------------------------------------


def rejection_rate(test: object, provider: np.ndarray, draws: int, m: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    run = mmd_test_grams if test == "mmd" else rank_test_grams
    rejected = 0
    for _ in range(draws):
        result = run(grams_for(rng, provider, BASE, 8, m), [m] * 8, permutations=99, seed=rng)
        rejected += result.verdict == "different"
    return rejected / draws


@pytest.mark.parametrize("test", ["mmd", "rank"])
def test_identical_distributions_reject_at_about_alpha(test: str) -> None:
    rate = rejection_rate(test, BASE, draws=400, m=4, seed=11)
    # exact permutation test: true rate <= 0.05; 400 draws give a binomial SE of 0.011
    assert rate <= 0.05 + 3 * 0.011
    assert rate >= 0.005


@pytest.mark.parametrize("test", ["mmd", "rank"])
def test_slight_shift_has_some_power(test: str) -> None:
    null_rate = rejection_rate(test, BASE, draws=150, m=12, seed=12)
    shifted_rate = rejection_rate(test, SHIFTED, draws=150, m=12, seed=12)
    assert shifted_rate > null_rate + 0.15
    assert shifted_rate < 0.95  # slight: not always caught at this budget


def test_very_different_gives_tiny_p_and_verdict_different() -> None:
    rng = np.random.default_rng(3)
    samples = {f"p{i}": (texts(rng, FAR, 6), texts(rng, BASE, 6)) for i in range(10)}
    result = mmd_test(samples, length=8, permutations=999, seed=0)
    assert result.p_value == pytest.approx(1 / 1000)
    assert result.verdict == "different"
    assert result.effect > 0.1 and result.z > 5
    rank = rank_test(samples, length=8, permutations=999, seed=0)
    assert rank.verdict == "different" and rank.effect > 0.2


def test_permutation_p_values_are_valid_and_roughly_uniform() -> None:
    rng = np.random.default_rng(4)
    ps = np.array(
        [
            mmd_test_grams(
                grams_for(rng, BASE, BASE, 6, 3), [3] * 6, permutations=99, seed=rng
            ).p_value
            for _ in range(400)
        ]
    )
    assert ps.min() >= 1 / 100
    assert ps.max() <= 1.0
    for level in (0.1, 0.3, 0.5):
        assert abs((ps <= level).mean() - level) < 0.07
    assert (ps <= 0.1).mean() <= 0.1 + 0.045  # never anti-conservative beyond noise


def test_same_needs_enough_samples_to_bound_the_effect() -> None:
    rng = np.random.default_rng(5)
    big = {f"p{i}": (texts(rng, BASE, 30), texts(rng, BASE, 30)) for i in range(40)}
    result = mmd_test(big, length=8, tolerance=0.02, permutations=199, seed=0)
    assert result.verdict == "same"
    assert result.effect_upper < 0.02
    small = {f"p{i}": (texts(rng, BASE, 2), texts(rng, BASE, 2)) for i in range(3)}
    result = mmd_test(small, length=8, tolerance=0.02, permutations=199, seed=0)
    assert result.verdict == "inconclusive"
    assert result.effect_upper >= 0.02


def test_prompts_without_enough_samples_are_left_out() -> None:
    rng = np.random.default_rng(6)
    samples = {"a": (texts(rng, BASE, 1), texts(rng, BASE, 5)), "b": ([], texts(rng, BASE, 3))}
    result = mmd_test(samples, length=8, permutations=50, seed=0)
    assert result.prompts == 0 and result.verdict == "inconclusive" and result.note
    # the rank test takes a single provider sample per prompt
    assert rank_test(samples, length=8, permutations=50, seed=0).prompts == 1


def test_results_are_reproducible_with_a_seed() -> None:
    rng = np.random.default_rng(7)
    samples = {f"p{i}": (texts(rng, SHIFTED, 4), texts(rng, BASE, 4)) for i in range(5)}
    assert mmd_test(samples, seed=42) == mmd_test(samples, seed=42)
    assert math.isfinite(mmd_test(samples, seed=1).to_dict()["p_value"])


# ---- logprob test ------------------------------------------------------------------------------


def table(probs: dict[str, float]) -> dict[str, float]:
    return {token: math.log(p) for token, p in probs.items()}


def test_logprob_vectors_use_the_shared_support_plus_other() -> None:
    tokens, vectors = logprob_vectors(
        [table({"a": 0.5, "b": 0.3, "c": 0.1}), table({"a": 0.6, "b": 0.2, "d": 0.1})]
    )
    assert tokens == ["a", "b"]
    assert np.allclose(vectors, [[0.5, 0.3, 0.2], [0.6, 0.2, 0.2]])
    assert logprob_vectors([table({"a": 0.9}), table({"b": 0.9})])[0] == []


def test_logprob_identical_deterministic_tables_are_same() -> None:
    ref = {f"p{i}": table({"a": 0.5, "b": 0.3, "c": 0.1 + i / 100}) for i in range(20)}
    tables = {k: ([v], [v, v]) for k, v in ref.items()}
    result = logprob_test(tables, permutations=199, seed=0)
    assert result.p_value == 1.0
    assert result.effect == 0.0
    assert result.verdict == "same"
    assert result.method == LOGPROB_METHOD


def test_logprob_detects_a_numeric_difference_beyond_repeat_noise() -> None:
    rng = np.random.default_rng(8)

    def noisy(base: dict[str, float], shift: float) -> dict[str, float]:
        p = np.array(list(base.values())) * np.exp(rng.normal(0, 0.01, len(base)))
        p[0] *= math.exp(shift)
        return table(dict(zip(base, p, strict=True)))

    base = {"a": 0.5, "b": 0.3, "c": 0.1}
    same = {f"p{i}": ([noisy(base, 0)], [noisy(base, 0), noisy(base, 0)]) for i in range(20)}
    moved = {f"p{i}": ([noisy(base, 0.2)], [noisy(base, 0), noisy(base, 0)]) for i in range(20)}
    nudged = {f"p{i}": ([noisy(base, 0.03)], [noisy(base, 0), noisy(base, 0)]) for i in range(20)}
    assert logprob_test(same, permutations=499, seed=0).verdict != "different"
    result = logprob_test(moved, permutations=499, seed=0)
    assert result.verdict == "different" and result.method == LOGPROB_METHOD
    assert result.effect_lower > 0.05 and result.extra["kl"] > 0
    # a small numeric difference (like other kernels): the strict test calls it different,
    # the default (practical) test calls it the same, within the tolerance
    strict = logprob_test(nudged, permutations=499, seed=0, strict=True)
    assert strict.verdict == "different" and strict.method == LOGPROB_STRICT_METHOD
    practical = logprob_test(nudged, permutations=499, seed=0)
    assert practical.p_value == strict.p_value
    assert practical.verdict == "same" and "numerically different" in practical.note
    assert practical.effect_upper < 0.05


def test_logprob_rejection_rate_under_noise_is_about_alpha() -> None:
    rng = np.random.default_rng(9)
    base = np.array([0.5, 0.3, 0.1])
    rejected = 0
    for _ in range(200):
        tables = {}
        for i in range(10):
            reps = [
                table(dict(zip("abc", base * np.exp(rng.normal(0, 0.05, 3)), strict=True)))
                for _ in range(4)
            ]
            tables[f"p{i}"] = (reps[:2], reps[2:])
        result = logprob_test(tables, permutations=99, seed=rng, strict=True)
        rejected += result.verdict == "different"
    assert rejected / 200 <= 0.05 + 3 * 0.016


def test_logprob_needs_three_tables_per_prompt() -> None:
    t = table({"a": 0.5})
    result = logprob_test({"p": ([t], [t])}, permutations=20, seed=0)
    assert result.prompts == 0 and result.verdict == "inconclusive"


# ---- combining and the adaptive design ---------------------------------------------------------


def fake(method: str, verdict: str, p: float, alpha: float = 0.025) -> MethodResult:
    return MethodResult(
        method=method,
        verdict=verdict,  # type: ignore[arg-type]
        p_value=p,
        alpha=alpha,
        effect=0.0,
        effect_upper=0.0,
        effect_lower=0.0,
        tolerance=0.01,
        statistic=0.0,
        null_mean=0.0,
        null_sd=0.0,
        prompts=1,
        provider_samples=1,
        reference_samples=1,
        permutations=1,
    )


def test_combine_rules() -> None:
    assert combine([]).verdict == "inconclusive"
    d = combine([fake(MMD_METHOD, "inconclusive", 0.3), fake(LOGPROB_METHOD, "different", 0.001)])
    assert (d.verdict, d.method) == ("different", LOGPROB_METHOD)
    d = combine([fake(MMD_METHOD, "same", 0.6), fake(LOGPROB_METHOD, "same", 0.9)])
    assert d.verdict == "same" and d.method == f"{MMD_METHOD}+{LOGPROB_METHOD}"
    d = combine([fake(MMD_METHOD, "same", 0.6), fake(RANK_METHOD, "inconclusive", 0.2)])
    assert d.verdict == "inconclusive" and d.method is None
    assert split_alpha(0.05, [MMD_METHOD, LOGPROB_METHOD]) == {
        MMD_METHOD: 0.025,
        LOGPROB_METHOD: 0.025,
    }


def test_sequential_design_spends_alpha_and_stops_when_decided() -> None:
    design = SequentialDesign.doubling(2, 16, 0.05)
    assert design.sizes == (2, 4, 8, 16)
    assert sum(design.alpha_at(k) for k in range(4)) == pytest.approx(0.05)
    assert SequentialDesign.doubling(2, 6).sizes == (2, 4, 6)
    with pytest.raises(ValueError):
        SequentialDesign((4, 2))
    seen: list[int] = []

    def decide(look: int, size: int, alpha: float) -> Decision:
        seen.append(size)
        verdict = "different" if size >= 8 else "inconclusive"
        return Decision(verdict, MMD_METHOD if verdict == "different" else None, ())  # type: ignore[arg-type]

    outcome = run_sequential(design, decide)
    assert seen == [2, 4, 8]
    assert (outcome.decision.verdict, outcome.look, outcome.size) == ("different", 2, 8)


def test_adaptive_mmd_false_alarm_rate_stays_below_alpha() -> None:
    rng = np.random.default_rng(10)
    design = SequentialDesign.doubling(2, 8, 0.05)
    rejected = 0
    runs = 150
    for _ in range(runs):
        prov = [draw_codes(rng, BASE, 8) for _ in range(8)]
        ref = [draw_codes(rng, BASE, 8) for _ in range(8)]

        def decide(
            look: int,
            size: int,
            alpha: float,
            prov: list[np.ndarray] = prov,
            ref: list[np.ndarray] = ref,
        ) -> Decision:
            grams = [hamming_gram(np.vstack([p[:size], r])) for p, r in zip(prov, ref, strict=True)]
            return combine(
                [mmd_test_grams(grams, [size] * 8, alpha=alpha, permutations=99, seed=rng)]
            )

        rejected += run_sequential(design, decide).decision.verdict == "different"
    assert rejected / runs <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / runs)
