"""The fixed prompt set of the equivalence test (`parity equiv`).

Forty short prompts, each a single user message, chosen so that a small model's answers are
neither fixed (a prompt whose answer is always the same tells two models apart only if one
of them gets it wrong) nor free-form noise (a prompt whose answers share no characters gives
the Hamming kernel nothing to compare): short factual questions, completions, one-word
answers, lists and first lines. The prompts and their ids never change within a
`PROMPT_SET` name; a changed set gets a new name, and recordings carry the set's digest, so
a recording is never compared with samples drawn on other prompts.

Sets (`parity equiv --prompt-set`): `default` is `equiv-v1`, the forty short prompts, as it
always was (same texts, ids and digest, so existing recordings stay valid). `long` is
`equiv-long-v1:3k`: the same forty questions, each after its own seeded filler text of
3,000 tokens (the `long` accuracy suite's generator, `parity.accuracy.suites.long.filler`),
so a provider that serves long prompts on other hardware or another configuration is
compared on long prompts; `long:Nk` takes N thousand tokens (`long:2k`, `long:32k`). The
question is not about the text ("Then answer this question:"), so the answers are drawn from
the same kind of distribution as the short set's, conditioned on a long context. The 3k set
fits a 4,096-token context with the samples' 12 tokens (the longest prompt is about 3,050
tokens with SmolLM2's chat template).
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass

__all__ = [
    "LONG_PROMPT_SET",
    "PROMPTS",
    "PROMPT_SET",
    "EquivPrompt",
    "prompt_digest",
    "prompt_set",
    "prompt_set_name",
    "prompts",
]

PROMPT_SET = "equiv-v1"
"""Name of the default prompt set (recorded in every `.parity` file)."""

LONG_PROMPT_SET = "equiv-long-v1"
"""Name of the long sets without their length: `equiv-long-v1:3k` is `--prompt-set long`."""

LONG_SEED = 2026
"""Seed of the long sets' filler, with the prompt's id (each prompt has its own text)."""

_LONG_INTRO = "Read the text below.\n\n"
_LONG_QUESTION = "\n\nThen answer this question: "


@dataclass(frozen=True)
class EquivPrompt:
    """One prompt of the set: a stable id (used in request keys) and the user message."""

    id: str
    text: str


_TEXTS: tuple[str, ...] = (
    "What is the capital of France?",
    "Complete the sentence: The sun rises in the",
    "Name a primary color.",
    "What is 7 + 5? Answer with a number only.",
    "Give one word that rhymes with 'cat'.",
    "Name a fruit that is yellow.",
    "Who wrote 'Romeo and Juliet'?",
    "Translate 'thank you' into Spanish.",
    "Name an animal that lives in the ocean.",
    "What is the opposite of 'hot'?",
    "Write the first line of a poem about the sea.",
    "Give a synonym for 'happy'.",
    "How many days are in a week?",
    "Name a planet in our solar system.",
    "What color is the sky on a clear day?",
    "List three vegetables.",
    "Complete the sentence: Water freezes at",
    "What do bees make?",
    "Name a musical instrument with strings.",
    "Write a short greeting for a friend.",
    "What is the largest ocean on Earth?",
    "Suggest a name for a pet dog.",
    "What language is spoken in Brazil?",
    "Name a famous scientist.",
    "Describe the taste of lemon in one word.",
    "What is the chemical symbol for gold?",
    "Give an example of a mammal.",
    "Complete the sentence: Once upon a time",
    "What is the first month of the year?",
    "Name a sport played with a ball.",
    "Tell me a fun fact about cats.",
    "What shape has three sides?",
    "Give me a tip for sleeping better.",
    "Which is heavier, a kilogram of feathers or a kilogram of iron?",
    "Name a city in Japan.",
    "What is the boiling point of water in Celsius?",
    "Write a one-sentence story about a robot.",
    "What do you call a baby cat?",
    "Name something you can find in a kitchen.",
    "Spell the word 'apple' backwards.",
)

PROMPTS: tuple[EquivPrompt, ...] = tuple(
    EquivPrompt(id=f"p{index:02d}", text=text) for index, text in enumerate(_TEXTS)
)
"""The built-in prompts, in a fixed order (ids p00, p01, ...)."""


def prompt_set_name(spec: str) -> str:
    """The recorded name of the set `spec` names: `default` (or `equiv-v1`) -> `equiv-v1`,
    `long` -> `equiv-long-v1:3k`, `long:Nk` (or `equiv-long-v1:Nk`) -> `equiv-long-v1:Nk`.

    Raises `ValueError` (one line) for an unknown set or length.
    """
    from parity.accuracy.suites.long import DEFAULT_TOKENS, parse_length

    text = spec.strip()
    if text in ("default", PROMPT_SET):
        return PROMPT_SET
    base, _, length = text.partition(":")
    if base not in ("long", LONG_PROMPT_SET):
        raise ValueError(f"unknown prompt set {spec!r}: use default, long or long:Nk (e.g. 8k)")
    tokens = parse_length(length) if length else DEFAULT_TOKENS
    return f"{LONG_PROMPT_SET}:{tokens // 1000}k"


@functools.cache
def _long_set(tokens: int) -> tuple[EquivPrompt, ...]:
    import random

    from parity.accuracy.suites.long import filler

    out = []
    for item in PROMPTS:
        lines = filler(random.Random(f"{LONG_SEED}/{item.id}"), tokens)
        text = _LONG_INTRO + "\n".join(lines) + _LONG_QUESTION + item.text
        out.append(EquivPrompt(id=item.id, text=text))
    return tuple(out)


def prompt_set(spec: str = PROMPT_SET) -> tuple[EquivPrompt, ...]:
    """Every prompt of the set `spec` names (see `prompt_set_name`), in order."""
    name = prompt_set_name(spec)
    if name == PROMPT_SET:
        return PROMPTS
    from parity.accuracy.suites.long import parse_length

    return _long_set(parse_length(name.partition(":")[2]))


def prompts(count: int | None = None, set_name: str = PROMPT_SET) -> list[EquivPrompt]:
    """The first `count` prompts of the set `set_name` (all of them when None).

    Raises `ValueError` when `count` is below 1 or above the size of the set, or when
    `set_name` names no set.
    """
    items = prompt_set(set_name)
    if count is None:
        return list(items)
    if not 1 <= count <= len(items):
        raise ValueError(f"prompt count must be between 1 and {len(items)}, got {count}")
    return list(items[:count])


def prompt_digest(items: list[EquivPrompt]) -> str:
    """A short SHA-256 digest of the prompts' ids and texts, in order: equal iff same prompts."""
    data = json.dumps([[p.id, p.text] for p in items], ensure_ascii=False).encode()
    return hashlib.sha256(data).hexdigest()[:16]
