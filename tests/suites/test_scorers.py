import pytest

from parity.suites.scorers import contains_phrase, last_integer


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
