"""long: short answers hidden in long prompts, for providers that serve long prompts otherwise.

Every other suite's prompt is a few dozen tokens; a provider may send long prompts to other
hardware, another engine configuration or a truncating front end. Each problem here is a
seeded filler text of `tokens` tokens (default 3,000: with the question, the chat template
and the 16-token answer budget it fits a 4,096-token context) and a short question at the
end:

- `needle-NN` (20): "The secret number is 4817." at a seeded depth of the text, and at the
  end "What is the secret number in the text above?": retrieval across the whole window, which
  a provider that truncates or mis-serves long prompts fails (the small fleet model finds
  it in about 70% of its samples; four different digits, no two neighbours consecutive);
- `sum-A+B` (40): "What is 5 + 3?" after the filler, `easy`'s one-digit sums: the answer
  is near the end and not in the text, so they measure the model itself with a long context
  in front (on the fleet they are what shows lossier weights; capital cities were tried too
  and told the two apart less than sums).

Graded by the last integer of the reply (as `easy` grades sums); temperature 0.7 like
`easy`, 16 tokens. The filler is generated from `data/long_words.json`, a small word list
written for parity (nouns, adjectives, verbs, prepositions, times of day), by a fixed
sentence grammar ("The old farmer found the basket near the river in the morning."): no
numbers, so the only numbers in a prompt are the ones the question is about. Everything is
seeded (seed 2026 and the problem's id), so the same spec gives the same prompts, byte for
byte, on every machine.

Length: `long` is 3,000 tokens of filler, `long:Nk` N thousand (`long:2k`, `long:8k`,
`long:100k`; with a subset, `long:8k:20`). Tokens are counted as SmolLM2's tokenizer counts
them: every word of the list is one token with its leading space, a full stop one more and a
line break one more, so `filler_tokens` is exact for the fleet's model (tested against its
GGUF tokenizer) and close for other English BPE vocabularies. The suite does not know the
providers: a length beyond a provider's advertised `context_window` is sent as asked and
comes back as that provider's error (or, silently truncated, as wrong answers); whether the
advertised window is really served is the `context` conformance check's question.
`context_needed(tokens)` is the window a length needs (prompt, template and answer budget).
"""

from __future__ import annotations

import functools
import itertools
import json
import random
import re
from dataclasses import dataclass
from importlib import resources

from parity.accuracy.suites import Problem, Suite
from parity.accuracy.suites.scorers import last_integer

__all__ = [
    "DEFAULT_TOKENS",
    "MAX_TOKENS",
    "SUITE",
    "build",
    "context_needed",
    "filler",
    "filler_tokens",
    "parse_length",
]

SEED = 2026
DEFAULT_TOKENS = 3000
"""Filler tokens of `long` without a length: fits 4,096 with the question and the answer."""
MIN_TOKENS = 1000
MAX_TOKENS = 1_000_000
"""The longest filler `long:Nk` accepts (1000k)."""
N_NEEDLES = 20
N_SUMS = 40
ANSWER_TOKENS = 16
"""max_tokens of every request: the answers are one number."""
OVERHEAD_TOKENS = 160
"""A bound on what a prompt adds to its filler (intro, facts, question, chat template)."""

_LENGTH = re.compile(r"(?P<k>[1-9]\d*)k")
_INTRO = "Read the text below, then answer the question after it.\n\n"


@dataclass(frozen=True)
class _Words:
    nouns: tuple[str, ...]
    adjectives: tuple[str, ...]
    verbs: tuple[str, ...]
    prepositions: tuple[str, ...]
    times: tuple[str, ...]


@functools.cache
def _words() -> _Words:
    raw = json.loads(resources.files(__package__).joinpath("data/long_words.json").read_text())
    return _Words(
        nouns=tuple(raw["nouns"]),
        adjectives=tuple(raw["adjectives"]),
        verbs=tuple(raw["verbs"]),
        prepositions=tuple(raw["prepositions"]),
        times=tuple(raw["times"]),
    )


def _sentence(rng: random.Random, words: _Words) -> list[str]:
    """One sentence as its words, e.g. The old farmer found the basket near the river."""
    out = ["The"]
    if rng.random() < 0.6:
        out.append(rng.choice(words.adjectives))
    out += [rng.choice(words.nouns), rng.choice(words.verbs), "the"]
    if rng.random() < 0.4:
        out.append(rng.choice(words.adjectives))
    out.append(rng.choice(words.nouns))
    if rng.random() < 0.5:
        out += [rng.choice(words.prepositions), "the", rng.choice(words.nouns)]
    if rng.random() < 0.3:
        out += rng.choice(words.times).split()
    return out


def filler(rng: random.Random, tokens: int, per_line: int = 4) -> list[str]:
    """Lines of seeded filler sentences (`per_line` to a line), `tokens` tokens at most and
    within one sentence (at most 17 tokens) of it, as `filler_tokens` counts them."""
    words = _words()
    lines: list[str] = []
    line: list[str] = []
    used = 0
    while True:
        sentence = _sentence(rng, words)
        cost = len(sentence) + 1 + (1 if not line and lines else 0)  # words, ".", line break
        if used + cost > tokens:
            break
        line.append(" ".join(sentence) + ".")
        used += cost
        if len(line) == per_line:
            lines.append(" ".join(line))
            line = []
    if line:
        lines.append(" ".join(line))
    return lines


def filler_tokens(lines: list[str]) -> int:
    """The tokens of `"\\n".join(lines)` as SmolLM2 counts them: one per word, one per full
    stop, one per line break (every word of the list is a single token)."""
    return sum(len(line.split()) + line.count(".") for line in lines) + max(len(lines) - 1, 0)


def context_needed(tokens: int) -> int:
    """The context window a prompt with `tokens` of filler needs, answer budget included."""
    return tokens + OVERHEAD_TOKENS + ANSWER_TOKENS


def parse_length(text: str) -> int:
    """`3k` -> 3000 tokens; raises ValueError (one line) for anything else or out of range."""
    match = _LENGTH.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"length {text!r}: write thousands of tokens, e.g. 2k, 3k, 100k")
    tokens = int(match["k"]) * 1000
    if not MIN_TOKENS <= tokens <= MAX_TOKENS:
        raise ValueError(
            f"length {text!r}: from {MIN_TOKENS // 1000}k to {MAX_TOKENS // 1000}k tokens"
        )
    return tokens


def _insert(rng: random.Random, lines: list[str], fact: str, low: float, high: float) -> None:
    """Put `fact` at the end of a seeded line between depths `low` and `high` of the text."""
    first = min(int(low * len(lines)), len(lines) - 1)
    last = max(min(int(high * len(lines)), len(lines) - 1), first)
    at = rng.randint(first, last)
    lines[at] = f"{lines[at]} {fact}"


def _prompt(lines: list[str], question: str) -> str:
    return _INTRO + "\n".join(lines) + "\n\n" + question


def _secret_number(rng: random.Random) -> int:
    """Four different digits 1-9, no two neighbours consecutive: a number the model can only
    copy (the fleet's model answers "1001" or "2343" with 10, 123 or 2345)."""
    while True:
        digits = rng.sample(range(1, 10), 4)
        if all(abs(a - b) > 1 for a, b in itertools.pairwise(digits)):
            return int("".join(map(str, digits)))


def _needle(i: int, tokens: int) -> Problem:
    rng = random.Random(f"{SEED}/needle/{i}")
    number = _secret_number(rng)
    lines = filler(rng, tokens)
    _insert(rng, lines, f"The secret number is {number}.", 0.0, 1.0)
    question = "What is the secret number in the text above? Answer with just the number."
    return Problem(f"needle-{i:02d}", _prompt(lines, question), str(number))


def _sum(a: int, b: int, tokens: int) -> Problem:
    """A one-digit sum asked after filler: the answer is near the end, not in the text."""
    rng = random.Random(f"{SEED}/sum/{a}+{b}")
    lines = filler(rng, tokens)
    question = f"What is {a} + {b}? Answer with just the number."
    return Problem(f"sum-{a}+{b}", _prompt(lines, question), str(a + b))


def _sum_pairs() -> list[tuple[int, int]]:
    """`N_SUMS` different (a, b), one-digit, seeded."""
    rng = random.Random(SEED)
    pairs: list[tuple[int, int]] = []
    while len(pairs) < N_SUMS:
        pair = (rng.randint(1, 9), rng.randint(1, 9))
        if pair not in pairs:
            pairs.append(pair)
    return pairs


def build(tokens: int = DEFAULT_TOKENS) -> Suite:
    """The suite with `tokens` tokens of filler per prompt (the same object for the same
    length); named `long` at the default length, `long:Nk` otherwise."""
    return _build(tokens)


@functools.cache
def _build(tokens: int) -> Suite:
    if not MIN_TOKENS <= tokens <= MAX_TOKENS:
        raise ValueError(f"long: filler of {tokens} tokens is out of range")
    problems = [_needle(i, tokens) for i in range(N_NEEDLES)]
    problems += [_sum(a, b, tokens) for a, b in _sum_pairs()]
    label = f"{tokens // 1000}k" if tokens % 1000 == 0 else f"{tokens} tokens"
    return Suite(
        name="long" if tokens == DEFAULT_TOKENS else f"long:{label}",
        description=(
            f"{len(problems)} questions after {label} tokens of filler: {N_NEEDLES} secret "
            f"numbers hidden in it, {N_SUMS} one-digit sums asked after it (generated, seed "
            f"{SEED}; needs a {context_needed(tokens):,}-token context)"
        ),
        problems=problems,
        score=last_integer,
        sampling={"temperature": 0.7, "max_tokens": ANSWER_TOKENS},
    )


SUITE = build()
