"""Accuracy: a suite's problems, each asked `repeats` times, scored, compared to the reference.

The reference is asked `reference_repeats` times as often (`RunOptions.reference_repeats`;
`parity run` gives `DEFAULT_REFERENCE_REPEATS`): it is in every comparison, so its noise is
in every difference, and `compare` compares every provider of a run with it at once, the
family-wise error rate held by Holm (`parity.stats.estimates.compare_with_reference`).
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from parity.accuracy.suites import Suite
from parity.core.exchange import Exchange
from parity.core.request import Request
from parity.stats.estimates import accuracy, compare_with_reference, paired_difference

PROBE = "accuracy"

#: The reference's repeats as a multiple of the other providers' in `parity run` and
#: `parity eval` (`--reference-repeats`): its sampling noise is then a fifth of each
#: difference's variance instead of half (docs/statistics.md has what it buys, simulated).
DEFAULT_REFERENCE_REPEATS = 4

#: The family-wise error rate of a run's accuracy verdicts.
ALPHA = 0.05


def plan(suite: Suite, repeats: int) -> list[Request]:
    """Every problem of the suite `repeats` times, with the suite's sampling settings.

    Each sample carries its own `seed`, the same for every provider: providers that honour
    seeds then draw with common random numbers, which makes the paired comparison sharper
    and a rerun reproducible; providers that ignore seeds just sample at random.
    """
    planned = []
    for problem in suite.problems:
        for r in range(repeats):
            key = f"accuracy/{suite.name}/{problem.id}/{r}"
            body = {
                "messages": suite.messages(problem),
                **suite.sampling,
                "seed": zlib.crc32(key.encode()),
            }
            planned.append(Request(key, PROBE, body))
    return planned


def scores(suite: Suite, exchanges: Mapping[str, Exchange]) -> dict[str, list[float]]:
    """Per-problem scores from exchanges keyed as planned (failed requests are not scored)."""
    problems = {p.id: p for p in suite.problems}
    out: dict[str, list[float]] = {p.id: [] for p in suite.problems}
    for key, exchange in exchanges.items():
        parts = key.split("/")
        if len(parts) != 4 or parts[:2] != [PROBE, suite.name] or not exchange.ok:
            continue
        problem = problems.get(parts[2])
        if problem is not None:
            out[problem.id].append(suite.grade(problem, exchange.text))
    return out


def compare(
    provider_scores: Mapping[str, Mapping[str, list[float]]],
    reference_scores: Mapping[str, list[float]],
    margin: float,
    alpha: float = ALPHA,
) -> dict[str, dict[str, Any]]:
    """Every provider's comparison with the reference (JSON-ready), Holm-corrected across
    them; providers with nothing scored, or nothing shared with the reference, are left
    out."""
    scored = {n: s for n, s in provider_scores.items() if any(s.values())}
    if not any(reference_scores.values()):
        return {}
    found = compare_with_reference(scored, reference_scores, margin=margin, alpha=alpha)
    return {name: asdict(c) for name, c in found.items()}


def analyse(
    provider_scores: Mapping[str, list[float]],
    reference_scores: Mapping[str, list[float]] | None,
    errors: int,
    margin: float,
) -> dict[str, Any]:
    """Accuracy with its 95% CI and, when a reference is given, the paired verdict of this
    provider alone (no correction for others: a run's providers are compared together by
    `compare`)."""
    result: dict[str, Any] = {"errors": errors}
    if not any(provider_scores.values()):
        result["accuracy"] = None
        return result
    result["accuracy"] = asdict(accuracy(provider_scores))
    if reference_scores is not None and any(reference_scores.values()):
        comparison = paired_difference(provider_scores, reference_scores, margin=margin)
        result["vs_reference"] = asdict(comparison)
    return result
