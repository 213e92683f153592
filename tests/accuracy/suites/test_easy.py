from parity.accuracy.suites import get_suite


def test_easy_suite_is_deterministic_and_well_formed() -> None:
    suite = get_suite("easy")
    ids = [p.id for p in suite.problems]
    assert len(ids) == 80 and len(set(ids)) == 80
    assert sum(i.startswith("sum-") for i in ids) == 40
    sums = [p for p in suite.problems if p.id.startswith("sum-")]
    for p in sums:
        a, b = p.id.removeprefix("sum-").split("+")
        assert int(p.answer) == int(a) + int(b)
    assert suite.score("The answer is 9", "9") == 1.0
    assert suite.score("paris", "Paris") == 1.0
    assert suite.messages(suite.problems[0])[-1]["role"] == "user"


def test_unknown_suite_lists_known_ones() -> None:
    import pytest

    with pytest.raises(KeyError, match="easy"):
        get_suite("nope")
