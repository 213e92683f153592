"""Calibrate the local fleet's compressed variants: accuracy per noise level.

Runs SmolLM2-135M-Instruct in-process with llama_cpp.Llama (the same engine and the same
chat template the fleet's servers use) on the weights each variant would serve, and
prints a table of accuracy on an easy suite: one-digit sums and capital cities, temperature
0.7, 16 tokens max, an answer counted right when it appears in the reply.

    .venv/bin/python benchmarks/calibrate_variants.py                # the default scan
    .venv/bin/python benchmarks/calibrate_variants.py --levels 0.1 0.2 --seeds 0 1 2

Generated weight files are cached (default: parity's models cache, the one `parity local up`
uses), so a rerun only pays for the model runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import re
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from parity.local.fleet import default_models_dir
from parity.local.variants import NOISE_MILD, NOISE_SEVERE, VARIANTS, Variant, weights_file

CAPITALS = {
    "France": "Paris",
    "Germany": "Berlin",
    "Italy": "Rome",
    "Spain": "Madrid",
    "Japan": "Tokyo",
    "China": "Beijing",
    "Russia": "Moscow",
    "the United Kingdom": "London",
    "Egypt": "Cairo",
    "Greece": "Athens",
    "Portugal": "Lisbon",
    "Austria": "Vienna",
    "Poland": "Warsaw",
    "Ireland": "Dublin",
    "Norway": "Oslo",
    "Sweden": "Stockholm",
    "Finland": "Helsinki",
    "Denmark": "Copenhagen",
    "the Netherlands": "Amsterdam",
    "Belgium": "Brussels",
    "Hungary": "Budapest",
    "Canada": "Ottawa",
    "Argentina": "Buenos Aires",
    "Peru": "Lima",
    "Kenya": "Nairobi",
    "Thailand": "Bangkok",
    "South Korea": "Seoul",
    "India": "Delhi",
    "Cuba": "Havana",
    "Australia": "Canberra",
}


Item = tuple[list[dict[str, str]], str]
"""(chat messages, expected answer)."""


def calib_suite(n_per_kind: int) -> list[Item]:
    """n one-digit sums and n capital cities, asked as a single user message."""
    rng = random.Random(0)
    sums = [(rng.randint(1, 9), rng.randint(1, 9)) for _ in range(n_per_kind)]
    pairs = [(f"What is {a} + {b}? Answer with just the number.", str(a + b)) for a, b in sums]
    pairs += [
        (f"What is the capital of {c}? Answer with just the city name.", CAPITALS[c])
        for c in list(CAPITALS)[:n_per_kind]
    ]
    return [([{"role": "user", "content": prompt}], answer) for prompt, answer in pairs]


def correct(reply: str, answer: str) -> float:
    """The expected answer appears in the reply (numbers as whole numbers, names any case)."""
    if answer.isdigit():
        return float(re.search(rf"(?<!\d){answer}(?!\d)", reply) is not None)
    return float(answer.lower() in reply.lower())


def load_suite(name: str, n_per_kind: int) -> tuple[list[Item], Callable[[str, str], float]]:
    """The calibration set (`calib`), or one of parity's own suites by name (e.g. `easy`)."""
    if name == "calib":
        return calib_suite(n_per_kind), correct
    from parity.accuracy.suites import get_suite

    suite = get_suite(name)
    return [(suite.messages(p), p.answer) for p in suite.problems], suite.score


def accuracy(
    model: Path,
    chat_format: str | None,
    seed: int,
    items: list[Item],
    score: Callable[[str, str], float],
    threads: int,
) -> float:
    """Mean score of one pass over `items` (temperature 0.7, 16 tokens), seeded by `seed`."""
    from llama_cpp import Llama

    llm = Llama(
        model_path=str(model),
        n_ctx=512,
        n_threads=threads,
        n_threads_batch=threads,
        chat_format=chat_format,
        seed=seed,
        verbose=False,
    )
    total = 0.0
    for index, (messages, answer) in enumerate(items):
        out = llm.create_chat_completion(
            messages=messages,
            temperature=0.7,
            max_tokens=16,
            seed=seed * 10_000 + index,
        )
        total += score(out["choices"][0]["message"]["content"] or "", answer)
    del llm
    return total / len(items)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--levels",
        type=float,
        nargs="+",
        default=[0.0, 0.05, NOISE_MILD, 0.07, NOISE_SEVERE, 0.15],
        help="noise levels (x each matrix's std); 0 = the shipped weights",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--suite",
        default="calib",
        help="calib (the 60-prompt calibration set) or a parity suite name, e.g. easy",
    )
    parser.add_argument("--per-kind", type=int, default=30, help="calib: sums and capitals each")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--no-template-variants", action="store_true", help="skip the wrong-template row"
    )
    parser.add_argument("--cache-dir", type=Path, default=None)
    args = parser.parse_args()

    cache_dir = args.cache_dir or default_models_dir()
    items, score = load_suite(args.suite, args.per_kind)
    rows: list[tuple[str, Variant]] = []
    for level in args.levels:
        weights = "shipped" if level == 0 else f"noise-{level:g}"
        tag = {NOISE_MILD: "  <- compressed-mild", NOISE_SEVERE: "  <- compressed-severe"}
        label = f"noise {level:g}" if level else "shipped (reference)"
        rows.append(
            (
                label + tag.get(level, ""),
                dataclasses.replace(VARIANTS["reference"], weights=weights),
            )
        )
    if not args.no_template_variants:
        rows.append(("wrong-template (llama-2)", VARIANTS["wrong-template"]))

    what = (
        f"{args.per_kind} sums + {args.per_kind} capitals" if args.suite == "calib" else args.suite
    )
    print(
        f"{len(items)} prompts ({what}), "
        f"temperature 0.7, max_tokens 16, seeds {args.seeds}, {args.threads} threads"
    )
    print(f"{'variant':<38} {'per seed':<24} {'mean':>6} {'sd':>5} {'s/run':>6}")
    for label, variant in rows:
        model = weights_file(variant, cache_dir)
        started = time.monotonic()
        scores = [
            accuracy(model, variant.chat_format, seed, items, score, args.threads)
            for seed in args.seeds
        ]
        per_run = (time.monotonic() - started) / len(args.seeds)
        per_seed = " ".join(f"{s:.0%}" for s in scores)
        print(
            f"{label:<38} {per_seed:<24} {np.mean(scores):>6.1%} {np.std(scores):>5.1%} "
            f"{per_run:>6.1f}",
            flush=True,
        )
    print("rerun:", shlex.join([sys.executable, *sys.argv]))


if __name__ == "__main__":
    main()
