"""Workloads: how long the prompts are, how long the answers should be, and the prompts.

The presets are Artificial Analysis's shapes (input tokens / output tokens): `100` (~100 in /
300 out), `1k` (1k / 1k, the default for real providers), `10k` (10k / 1.5k) and `100k`
(100k / 2k). `IN/OUT` (or `INxOUT`) is a custom shape, e.g. `2000/16`.

Every request gets its own prompt: a unique id *first* (so no two prompts share a prefix a
server could cache) and filler text drawn from a seeded generator, then an instruction that
asks for about as many words as the output length allows. The output length is steered by
that instruction and capped by `max_tokens`; what the provider really produced is measured
and reported next to what was asked.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "PRESETS",
    "Workload",
    "make_body",
    "make_prompt",
    "parse_workload",
]


@dataclass(frozen=True)
class Workload:
    """A request shape: target prompt tokens (chat template included) and output tokens."""

    name: str
    input_tokens: int
    output_tokens: int

    def describe(self) -> str:
        """`name (IN in / OUT out)`."""
        return f"{self.name} ({self.input_tokens:,} in / {self.output_tokens:,} out)"


PRESETS: dict[str, Workload] = {
    "100": Workload("100", 100, 300),
    "1k": Workload("1k", 1_000, 1_000),
    "10k": Workload("10k", 10_000, 1_500),
    "100k": Workload("100k", 100_000, 2_000),
}
"""Artificial Analysis's workload shapes, by name."""

_CUSTOM = re.compile(r"^\s*(\d+(?:\.\d+)?[kK]?)\s*[/x:]\s*(\d+(?:\.\d+)?[kK]?)\s*$")


def _count(text: str) -> int:
    value = float(text[:-1]) * 1000 if text[-1] in "kK" else float(text)
    return int(value)


def parse_workload(spec: str) -> Workload:
    """A preset name (`100`, `1k`, `10k`, `100k`) or a custom `IN/OUT` shape (`2000/16`,
    `2k/16`, `2000x16`); raises ValueError with the accepted forms otherwise."""
    key = spec.strip().lower()
    if key in PRESETS:
        return PRESETS[key]
    match = _CUSTOM.match(key)
    if match:
        n_in, n_out = _count(match.group(1)), _count(match.group(2))
        if n_in < 1 or n_out < 1:
            raise ValueError(f"workload {spec!r}: input and output tokens must be >= 1")
        return Workload(f"{n_in}x{n_out}", n_in, n_out)
    names = ", ".join(PRESETS)
    raise ValueError(f"unknown workload {spec!r}: use one of {names}, or IN/OUT such as 2000/16")


# Short, common English words: one token each (with their leading space) in the BPE
# vocabularies of the usual open models, so N words is close to N tokens.
_WORD_TEXT = (
    "the of and to in is was for on that with as by at from his her they this be are or an "
    "not which one had all their has but were we there been can more who will if out so said "
    "what up its about into than them only other new some could time these two may then do "
    "first any my now such like our over man me even most made after also did many before "
    "must through back years where much your way well down should because each just those "
    "people how too little state good very make world still own see men work long get here "
    "between both life being under never day same another know while last might us great old "
    "year off come since against go came right used take three small house water light river "
    "stone road tree field city sea hill sun rain wind door table book letter song garden"
)
_WORDS = tuple(_WORD_TEXT.split())

# Tokens spent on the instruction around the filler and on a typical chat template; the
# filler is shortened by this much so the whole prompt lands near the target.
_OVERHEAD_TOKENS = 60


def _rng(seed: str) -> random.Random:
    digest = hashlib.sha256(seed.encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _instruction(output_tokens: int) -> str:
    words = max(1, round(output_tokens * 0.75))  # ~0.75 English words per token
    return f"Write a story of about {words} words about these notes. Do not stop early."


def request_id(tag: str) -> str:
    """A short unique id for a request tag (10 hex digits of its SHA-256)."""
    return hashlib.sha256(tag.encode()).hexdigest()[:10]


def make_prompt(
    workload: Workload,
    tag: str,
    counter: Callable[[str], int] | None = None,
) -> str:
    """The user message for one request: `[id]` first (a hash of `tag`), seeded filler, the
    instruction.

    Without `counter` the filler has `input_tokens - 60` words (one token each, nearly).
    With `counter` (text -> prompt tokens as the local tokenizer counts them, chat template
    included) the filler is corrected until the prompt lands within a token or two of the
    target. Deterministic: the same tag gives the same prompt.
    """
    rng = _rng(tag)
    head = f"[{request_id(tag)}] Notes:\n"
    tail = "\n\n" + _instruction(workload.output_tokens)
    n_words = max(workload.input_tokens - _OVERHEAD_TOKENS, 0)
    words = [rng.choice(_WORDS) for _ in range(n_words)]

    def render(count: int) -> str:
        while len(words) < count:
            words.append(rng.choice(_WORDS))
        return head + " ".join(words[:count]) + tail

    text = render(n_words)
    if counter is not None:
        # Secant steps on (filler words -> prompt tokens): the first assumes a token per word,
        # the next use the slope seen so far; a few steps land within a token or two.
        count = counter(text)
        slope = 1.0
        for _ in range(4):
            missing = workload.input_tokens - count
            if missing == 0 or (n_words == 0 and missing < 0):
                break
            step = round(missing / slope) or (1 if missing > 0 else -1)
            new_words = max(n_words + step, 0)
            text = render(new_words)
            new_count = counter(text)
            if new_words != n_words and new_count != count:
                slope = max((new_count - count) / (new_words - n_words), 0.1)
            n_words, count = new_words, new_count
    return text


def make_body(
    workload: Workload,
    tag: str,
    counter: Callable[[str], int] | None = None,
    *,
    temperature: float | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The chat completion body of one request (streamed by the caller): the unique prompt,
    `max_tokens` = the workload's output tokens, optional temperature and extra fields."""
    body: dict[str, Any] = {
        "messages": [{"role": "user", "content": make_prompt(workload, tag, counter)}],
        "max_tokens": workload.output_tokens,
    }
    if temperature is not None:
        body["temperature"] = temperature
    if extra:
        body.update(extra)
    return body
