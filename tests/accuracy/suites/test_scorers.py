import json
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from parity.accuracy.suites.scorers import (
    SCORERS,
    _LineWorker,
    aime,
    boxed_contents,
    check_answer,
    choice_letter,
    contains_phrase,
    exact,
    final_number,
    last_integer,
    math_equivalent,
    multiple_choice,
    numeric,
    regex,
)


@pytest.mark.parametrize(
    ("reply", "answer", "score"),
    [
        ("7", "7", 1.0),
        ("3 + 4 = 7", "7", 1.0),
        ("The answer is 7.", "7", 1.0),
        ("7 is not right, it is 8", "7", 0.0),
        ("seven", "7", 0.0),
        ("1,234", "1234", 1.0),
        ("", "7", 0.0),
    ],
)
def test_last_integer(reply: str, answer: str, score: float) -> None:
    assert last_integer(reply, answer) == score


@pytest.mark.parametrize(
    ("reply", "answer", "score"),
    [
        ("Paris", "Paris", 1.0),
        ("The capital of France is paris.", "Paris", 1.0),
        ("Parisian", "Paris", 0.0),
        ("Buenos Aires", "Buenos Aires", 1.0),
        ("Lyon", "Paris", 0.0),
    ],
)
def test_contains_phrase(reply: str, answer: str, score: float) -> None:
    assert contains_phrase(reply, answer) == score


def test_boxed_contents_nest_and_skip_unclosed() -> None:
    text = r"\boxed{\frac{1}{2}} and \boxed{\{1, 2\}} then \fbox{3} and \boxed{4"
    assert boxed_contents(text) == [r"\frac{1}{2}", r"\{1, 2\}", "3"]
    assert boxed_contents(r"\boxed{\boxed{70}}") == [r"\boxed{70}", "70"]


@pytest.mark.parametrize(
    ("reply", "score"),
    [
        (r"\boxed{070}", 1.0),
        ("The answer is 70.", 1.0),
        ("**70**", 1.0),
        (r"\boxed{\text{70}}", 1.0),
        (r"$\boxed{70}$", 1.0),
        (r"Thus the sum is $\boxed{70}$.", 1.0),
        (r"\[\boxed{ 70 }\]", 1.0),
        (r"\boxed{n = 70}", 1.0),
        (r"\boxed{3, 70}", 1.0),  # a list: the last item (the publisher's rule)
        (r"\fbox{70}", 1.0),
        (r"\boxed{\boxed{70}}", 1.0),
        ("no answer at all", 0.0),
        ("", 0.0),
        (r"First \boxed{5}, no: \boxed{70}", 1.0),  # last box wins
        (r"First \boxed{70}, no: \boxed{5}", 0.0),
        (r"\boxed{70} is wrong, \boxed{}", 1.0),  # blank boxes are skipped
        (r"\boxed{x} but 70", 0.0),  # a box that is not an integer: no fallback
        (r"17 + 53 = 70 so \boxed{70", 1.0),  # unclosed box ignored: last number
        (r"\boxed{70.0}", 1.0),  # decided: an all-zero fraction is the integer
        (r"\boxed{70.5}", 0.0),
        ("70.5", 0.0),
        (r"\boxed{70,000}", 0.0),  # decided: 70000, never 70 (nor 0)
        ("The answer is 70,000", 0.0),
        (r"\boxed{70{,}000}", 0.0),
        (r"\boxed{\frac{140}{2}}", 0.0),
    ],
)
def test_aime_answer_formats(reply: str, score: float) -> None:
    assert aime(reply, "70") == score


def test_aime_thousands_and_negatives() -> None:
    assert aime(r"\boxed{70,000}", "70000") == 1.0
    assert aime("so 70,000 in all", "70000") == 1.0
    assert aime(r"\boxed{70,000}", "0") == 0.0  # the publisher's split would read "000" -> 0
    assert aime(r"\boxed{-5}", "-5") == 1.0
    assert aime(r"x = -5", "-5") == 1.0
    assert aime(r"\boxed{\text{-}5}", "5") == 0.0
    assert aime("10-5", "-5") == 0.0  # a subtraction, not a sign: reads 5
    assert aime("10-5", "5") == 1.0
    assert aime(r"\boxed{0}", "000") == 1.0
    with pytest.raises(ValueError, match="integer"):
        aime(r"\boxed{1}", "1/2")


@pytest.mark.parametrize(
    ("reply", "answer", "score"),
    [
        ("She makes 9 * 2 = 18 dollars.\n#### 18", "18", 1.0),
        ("#### $18.00", "18", 1.0),
        ("#### 18.", "18", 1.0),
        ("#### 1,000", "1000", 1.0),
        ("#### -10", "-10", 1.0),
        ("It drops by 10 degrees, to -10.", "-10", 1.0),
        (r"so the answer is $\boxed{18}$", "18", 1.0),
        (r"\boxed{\$1{,}000}", "1000", 1.0),
        ("The total is $18.", "18", 1.0),
        ("#### 18\nCheck: 2 + 3 = 5", "18", 1.0),  # first number after the last ####
        ("#### 17\n#### 18", "18", 1.0),
        ("16 - 3 - 4 = 9 eggs, 9 * 2 = 18", "18", 1.0),
        ("#### 17", "18", 0.0),
        ("no number", "18", 0.0),
        ("#### 18.0000001", "18", 1.0),  # within the tolerance
        ("#### 18.01", "18", 0.0),
        ("50%", "50", 1.0),
        ("0.5", ".5", 1.0),
        ("work...\n#### 18", "The eggs make $18.\n#### 18", 1.0),  # a GSM8K-style answer
    ],
)
def test_numeric(reply: str, answer: str, score: float) -> None:
    assert numeric(reply, answer) == score


def test_final_number_and_numeric_bad_answer() -> None:
    assert final_number("nothing") is None
    assert final_number("10-3") == 3
    with pytest.raises(ValueError, match="number"):
        numeric("18", "eighteen")


def test_exact() -> None:
    assert exact("  Paris \n", "paris") == 1.0
    assert exact("STRASSE", "straße") == 1.0  # casefold, not lower
    assert exact("Paris.", "Paris") == 0.0


@pytest.mark.parametrize(
    ("reply", "letter"),
    [
        ("Answer: C", "C"),
        ("C", "C"),
        ("(C)", "C"),
        ("C.", "C"),
        ("**C**", "C"),
        ("The answer is (B).", "B"),
        ("Final answer: **D**", "D"),
        (r"\boxed{C}", "C"),
        (r"$\boxed{\text{(C)}}$", "C"),
        ("(A) fails, (B) fails, so (C)", "C"),  # last wins
        ("Answer: A\n\nWhy not the others: B. is too big, (C) too small.", "A"),  # explicit first
        ("Answer: A ... on reflection, Answer: D", "D"),
        ("a cat sat", None),
        ("I think the answer is a bit unclear", None),
        ("", None),
    ],
)
def test_choice_letter(reply: str, letter: str | None) -> None:
    assert choice_letter(reply) == letter


def test_multiple_choice() -> None:
    assert multiple_choice("Answer: C", "C") == 1.0
    assert multiple_choice("Answer: C", "(c)") == 1.0
    assert multiple_choice("Answer: B", "C") == 0.0
    assert multiple_choice("J.", "J") == 1.0
    with pytest.raises(ValueError, match="A-J"):
        multiple_choice("C", "K")


def test_regex() -> None:
    assert regex("The capital is Paris.", r"\bParis\b") == 1.0
    assert regex("the capital is paris", r"\bParis\b") == 0.0
    assert regex("the capital is paris", r"(?i)\bParis\b") == 1.0
    assert regex("Paris, France", r"^Paris$") == 0.0
    assert regex("line one\nPARIS", r"(?m)^PARIS$") == 1.0


def test_registry_and_check_answer() -> None:
    assert set(SCORERS) == {
        "aime",
        "numeric",
        "math",
        "exact",
        "multiple_choice",
        "regex",
        "last_integer",
        "contains_phrase",
    }
    assert check_answer("aime", "70") is None
    assert check_answer("numeric", "1,000") is None
    assert check_answer("regex", r"\d+") is None
    assert check_answer("math", r"\frac{1}{2}") is None
    assert "unknown scorer" in (check_answer("nope", "1") or "")
    assert "integer" in (check_answer("aime", "x") or "")
    assert "integer" in (check_answer("last_integer", "1.5") or "")
    assert "number" in (check_answer("numeric", "n/a") or "")
    assert "A-J" in (check_answer("multiple_choice", "yes") or "")
    assert "regex" in (check_answer("regex", "(") or "")
    assert "non-empty" in (check_answer("math", " ") or "")


@pytest.mark.parametrize(
    ("reply", "answer", "score"),
    [
        (r"so the answer is $\boxed{\frac{1}{2}}$", "0.5", 1.0),
        ("The answer is 1/2", r"\frac12", 1.0),
        (r"\boxed{x^2+2x+1}", "(x+1)^2", 1.0),
        (r"\boxed{x^2+2x+2}", "(x+1)^2", 0.0),
        (r"\boxed{\sqrt{2}}", r"$\sqrt 2$", 1.0),
        ("I cannot tell", "70", 0.0),
        (r"x = \boxed{2} or x = \boxed{3}", r"\{2, 3\}", 1.0),  # boxes read as one set
    ],
)
def test_math(reply: str, answer: str, score: float) -> None:
    assert math_equivalent(reply, answer) == score


def test_math_from_worker_threads() -> None:
    replies = [r"\boxed{\sqrt 2}", "about 1.41421356237", "no", r"$2^{1/2}$"] * 2
    errors: list[BaseException] = []

    def run(reply: str) -> float:
        assert threading.current_thread() is not threading.main_thread()
        return math_equivalent(reply, r"\sqrt{2}")

    with ThreadPoolExecutor(4) as pool:
        try:
            scores = list(pool.map(run, replies))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
    assert not errors
    assert scores == [1.0, 1.0, 0.0, 1.0] * 2


def test_math_bounds_input() -> None:
    with pytest.raises(ValueError, match="characters"):
        math_equivalent("1", "1" * 2000)
    # a huge reply is cut to its tail, where the final answer is
    assert math_equivalent("x " * 100_000 + r"\boxed{70}", "70") == 1.0


def test_line_worker_kills_a_stuck_child_and_restarts() -> None:
    code = (
        "import sys, time\nprint('ready', flush=True)\nfor line in sys.stdin:\n"
        "    time.sleep(float(line))\n    print('done', flush=True)\n"
    )
    worker = _LineWorker([sys.executable, "-c", code], timeout_s=0.3, startup_timeout_s=30)
    try:
        assert worker.request("0") == "done"
        assert worker.request("5") is None  # too slow: killed
        assert worker.request(json.dumps(0.01)) == "done"  # a fresh child
    finally:
        worker.close()
