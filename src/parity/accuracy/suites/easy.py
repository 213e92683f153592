"""easy: one-digit sums and capital cities, a suite the small local model partly solves.

Generated deterministically (seed 2025): 40 sums a + b with one-digit a, b, and 40 capital
cities from data/capitals.json. Many problems rather than many repeats: the accuracy CI is a
bootstrap over problems, so problems narrow it most. Sums are graded by the last integer in
the reply, capitals by whether the city's name appears in it. Sampling at temperature 0.7,
with a seed per sample, so repeats differ.
"""

from __future__ import annotations

import json
import random
from importlib import resources

from parity.accuracy.suites import Problem, Suite
from parity.accuracy.suites.scorers import contains_phrase, last_integer

SEED = 2025
N_SUMS = 40
N_CAPITALS = 40


def _sums() -> list[Problem]:
    rng = random.Random(SEED)
    pairs: list[tuple[int, int]] = []
    while len(pairs) < N_SUMS:
        pair = (rng.randint(1, 9), rng.randint(1, 9))
        if pair not in pairs:
            pairs.append(pair)
    return [
        Problem(f"sum-{a}+{b}", f"What is {a} + {b}? Answer with just the number.", str(a + b))
        for a, b in pairs
    ]


def _capitals() -> list[Problem]:
    data = json.loads(resources.files(__package__).joinpath("data/capitals.json").read_text())
    rng = random.Random(SEED)
    chosen = rng.sample(data, N_CAPITALS)
    return [
        Problem(
            f"capital-{country.replace(' ', '_')}",
            f"What is the capital of {country}? Answer with just the city name.",
            city,
        )
        for country, city in chosen
    ]


def _score(reply: str, answer: str) -> float:
    return last_integer(reply, answer) if answer.isdigit() else contains_phrase(reply, answer)


SUITE = Suite(
    name="easy",
    description="40 one-digit sums and 40 capital cities (generated, seed 2025)",
    problems=_sums() + _capitals(),
    score=_score,
    sampling={"temperature": 0.7, "max_tokens": 16},
)
