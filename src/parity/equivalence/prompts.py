"""The fixed prompt set of the equivalence test (`parity equiv`).

Forty short prompts, each a single user message, chosen so that a small model's answers are
neither fixed (a prompt whose answer is always the same tells two models apart only if one
of them gets it wrong) nor free-form noise (a prompt whose answers share no characters gives
the Hamming kernel nothing to compare): short factual questions, completions, one-word
answers, lists and first lines. The prompts and their ids never change within a
`PROMPT_SET` name; a changed set gets a new name, and recordings carry the set's digest, so
a recording is never compared with samples drawn on other prompts.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

__all__ = ["PROMPTS", "PROMPT_SET", "EquivPrompt", "prompt_digest", "prompts"]

PROMPT_SET = "equiv-v1"
"""Name of the built-in prompt set (recorded in every `.parity` file)."""


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


def prompts(count: int | None = None) -> list[EquivPrompt]:
    """The first `count` prompts of the set (all of them when None).

    Raises `ValueError` when `count` is below 1 or above the size of the set.
    """
    if count is None:
        return list(PROMPTS)
    if not 1 <= count <= len(PROMPTS):
        raise ValueError(f"prompt count must be between 1 and {len(PROMPTS)}, got {count}")
    return list(PROMPTS[:count])


def prompt_digest(items: list[EquivPrompt]) -> str:
    """A short SHA-256 digest of the prompts' ids and texts, in order: equal iff same prompts."""
    data = json.dumps([[p.id, p.text] for p in items], ensure_ascii=False).encode()
    return hashlib.sha256(data).hexdigest()[:16]
