"""Simulate adaptive audits (parity.stats.sequential) against the fixed 30 x 32 design (no network).

Three scenarios on a 30-problem suite (AIME 2025-like), reference solve rate 93.3% (28/30):

* ``A/A``      provider 93.3%  (same model: any "degraded" or "better" is an error)
* ``93->80``   provider 80.0%  (an engine ignoring reasoning_effort: anything but "degraded"
  is an error)
* ``93->37``   provider 36.7%  (heavy compression: anything but "degraded" is an error)

Problem model (a Rasch / one-parameter item-response model, per audit): each audit draws a
fresh suite of 30 problem difficulties ``b_i ~ Normal(0, 3^2)``; a provider of ability ``a``
solves problem ``i`` with probability ``sigmoid(a - b_i)``. The reference ability is solved
for so that the mean solve rate over the 30 problems is exactly 28/30, the provider's so that
it is exactly its target. With sd 3 the solve rates are AIME-like: about three quarters of
the problems are solved (or failed) nearly always, a few are in between. A degraded
provider is the reference with a lower ability, so it loses the hard problems first and
the per-problem pairing is realistic; in the A/A scenario both are the same.

Adaptive design: pairs are drawn with `parity.stats.sequential.schedule` (problems uniformly at
random with replacement) in rounds of ``--round-size`` pairs (requests sent concurrently);
after each round `PairedSequentialTest` (margin 0.03, alpha 0.05) updates its anytime-valid
confidence sequence and the audit stops when it has a verdict or has used ``--max-pairs``
pairs (then it is "inconclusive", an error in the degraded scenarios). Each pair costs one
provider sample and one reference sample; the reference samples can be recorded once and
shared by every provider audited (pair ``t`` uses the ``k``-th recorded reference sample of
its problem, ``k`` = earlier pairs on that problem, which is a fresh draw from this audit's
point of view), so the table also gives how many recorded reference samples per problem an
audit needs.

Fixed design: 32 samples per problem on each side, `parity.stats.estimates.paired_difference`
(95% nested-bootstrap CI, same margin), the verdict read once at n = 960.

    .venv/bin/python benchmarks/simulate_adaptive.py                      # defaults
    .venv/bin/python benchmarks/simulate_adaptive.py --audits 200 --fixed-audits 50

Defaults: 1000 adaptive and 1000 fixed audits per scenario, about 70 s of CPU in all (one
process; 2.5 min wall on a busy 2-core machine). Deterministic given ``--seed``.
"""

from __future__ import annotations

import argparse
import itertools
import shlex
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import brentq
from scipy.special import expit

from parity.stats.estimates import Verdict, paired_difference, wilson_interval
from parity.stats.sequential import PairedSequentialTest, schedule

FloatArray = npt.NDArray[np.float64]

N_PROBLEMS = 30
REPEATS = 32
FIXED_SAMPLES = N_PROBLEMS * REPEATS  # 960
REFERENCE_RATE = 28 / 30


@dataclass(frozen=True)
class Scenario:
    name: str
    provider_rate: float
    expected: frozenset[Verdict]  # verdicts that are not errors
    target_ratio: float | None  # provider samples / 960 the design should stay under


SCENARIOS = (
    Scenario(
        "A/A 93.3 vs 93.3",
        28 / 30,
        frozenset({Verdict.EQUIVALENT, Verdict.NO_DIFFERENCE}),
        None,
    ),
    Scenario("93.3 -> 80.0", 24 / 30, frozenset({Verdict.DEGRADED}), 0.25),
    Scenario("93.3 -> 36.7", 11 / 30, frozenset({Verdict.DEGRADED}), 0.05),
)


@dataclass(frozen=True)
class Audit:
    verdict: Verdict
    pairs: int  # provider samples used (= reference samples used)
    max_per_problem: int  # most reference samples needed on one problem


def _ability(difficulty: FloatArray, rate: float) -> float:
    """Ability a with mean(sigmoid(a - difficulty)) == rate."""

    def gap(a: float) -> float:
        return float(expit(a - difficulty).mean()) - rate

    return float(brentq(gap, -100.0, 100.0, xtol=1e-12))


def solve_rates(rng: np.random.Generator, provider_rate: float, spread: float) -> FloatArray:
    """Per-problem solve rates, shape (2, 30): row 0 the reference, row 1 the provider."""
    difficulty = rng.normal(0.0, spread, N_PROBLEMS)
    ref = expit(_ability(difficulty, REFERENCE_RATE) - difficulty)
    prov = expit(_ability(difficulty, provider_rate) - difficulty)
    out: FloatArray = np.stack([ref, prov])
    return out


def adaptive_audit(
    rates: FloatArray,
    rng: np.random.Generator,
    seed: int,
    args: argparse.Namespace,
) -> Audit:
    test = PairedSequentialTest(margin=args.margin, alpha=args.alpha, max_pairs=args.max_pairs)
    problems = schedule(N_PROBLEMS, seed)
    used = np.zeros(N_PROBLEMS, dtype=np.int64)
    while not test.done():
        size = min(args.round_size, args.max_pairs - test.n)
        idx = np.fromiter(itertools.islice(problems, size), dtype=np.int64, count=size)
        np.add.at(used, idx, 1)
        provider = rng.random(size) < rates[1, idx]
        reference = rng.random(size) < rates[0, idx]
        test.update((provider.astype(np.float64) - reference).tolist())
    return Audit(test.verdict(), test.n, int(used.max()))


def fixed_audit(rates: FloatArray, rng: np.random.Generator, seed: int, margin: float) -> Audit:
    ref = rng.random((N_PROBLEMS, REPEATS)) < rates[0, :, None]
    prov = rng.random((N_PROBLEMS, REPEATS)) < rates[1, :, None]
    provider = {str(i): prov[i].astype(float).tolist() for i in range(N_PROBLEMS)}
    reference = {str(i): ref[i].astype(float).tolist() for i in range(N_PROBLEMS)}
    comparison = paired_difference(provider, reference, margin, seed=seed)
    return Audit(comparison.verdict, FIXED_SAMPLES, REPEATS)


def _pct(x: float) -> str:
    return f"{100.0 * x:.1f}%"


def row(scenario: Scenario, design: str, audits: Sequence[Audit]) -> str:
    n = len(audits)
    verdicts = Counter(a.verdict for a in audits)
    errors = sum(1 for a in audits if a.verdict not in scenario.expected)
    err_low, err_high = wilson_interval(errors, n)
    pairs = np.array([a.pairs for a in audits], dtype=np.float64)
    mean, p90 = float(pairs.mean()), float(np.percentile(pairs, 90))
    ref_depth = float(np.percentile([a.max_per_problem for a in audits], 90))
    verdict_cells = " / ".join(
        str(verdicts.get(v, 0))
        for v in (Verdict.EQUIVALENT, Verdict.DEGRADED, Verdict.BETTER, Verdict.NO_DIFFERENCE)
    )
    ratio = f"{_pct(mean / FIXED_SAMPLES)} ({_pct(p90 / FIXED_SAMPLES)})"
    target = ""
    if design == "adaptive" and scenario.target_ratio is not None:
        ok = mean / FIXED_SAMPLES <= scenario.target_ratio
        target = f" {'≤' if ok else '>'} target {_pct(scenario.target_ratio)}"
    error_mark = "" if errors / n <= 0.05 else " (over 5%)"
    samples = f"{mean:.1f} ({p90:.0f})"
    return (
        f"| {scenario.name} | {design} | {n} | {verdict_cells} "
        f"| {_pct(errors / n)} [{_pct(err_low)}, {_pct(err_high)}]{error_mark} "
        f"| {samples} | {ratio}{target} | {samples} | {ratio} | {ref_depth:.0f} |"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--audits", type=int, default=1000, help="adaptive audits per scenario")
    parser.add_argument(
        "--fixed-audits", type=int, default=1000, help="fixed-design audits per scenario"
    )
    parser.add_argument("--round-size", type=int, default=8, help="pairs per round")
    parser.add_argument("--max-pairs", type=int, default=FIXED_SAMPLES, help="budget per audit")
    parser.add_argument("--margin", type=float, default=0.03)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument(
        "--spread", type=float, default=3.0, help="sd of the problem difficulties (logits)"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    started = time.perf_counter()
    lines = [
        "| scenario | design | audits | verdicts E / D / B / I | error [95% CI] "
        "| provider samples mean (p90) | provider / 960 mean (p90) "
        "| reference samples mean (p90) | reference / 960 mean (p90) "
        "| reference samples needed on one problem (p90) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s_index, scenario in enumerate(SCENARIOS):
        designs = (("adaptive", args.audits), ("fixed 30x32", args.fixed_audits))
        for d_index, (design, count) in enumerate(designs):
            if count < 1:
                continue
            seeds = np.random.SeedSequence([args.seed, s_index, d_index]).generate_state(count)
            audits: list[Audit] = []
            for audit_seed in seeds.tolist():
                rng = np.random.default_rng(audit_seed)
                rates = solve_rates(rng, scenario.provider_rate, args.spread)
                if design == "adaptive":
                    audits.append(adaptive_audit(rates, rng, audit_seed, args))
                else:
                    audits.append(fixed_audit(rates, rng, audit_seed, args.margin))
            lines.append(row(scenario, design, audits))
            print(f"  {scenario.name}, {design}: {time.perf_counter() - started:.0f}s", flush=True)
    elapsed = time.perf_counter() - started

    command = shlex.join([".venv/bin/python", "benchmarks/simulate_adaptive.py", *sys.argv[1:]])
    print()
    print(f"Command: `{command}`  ({elapsed:.0f} s)")
    print(
        f"Adaptive: margin {args.margin}, alpha {args.alpha}, rounds of {args.round_size} "
        f"pairs, at most {args.max_pairs} pairs; problem difficulty sd {args.spread}. "
        "Verdicts E/D/B/I = equivalent / degraded / better / inconclusive. Errors: A/A any "
        "degraded or better; degraded scenarios anything but degraded. Every pair is one "
        "provider and one reference sample; the reference samples can be recorded once and "
        "shared by all providers (last column: recording depth an audit needs)."
    )
    print()
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
