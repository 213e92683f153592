import pytest

from parity.accuracy.suites import Problem, Suite, get_suite, list_suites, suite_names
from parity.accuracy.suites.scorers import aime, exact, numeric
from parity.core.errors import ConfigError


def test_list_suites_knows_every_builtin() -> None:
    suites = list_suites()
    assert [s.name for s in suites] == suite_names() == ["easy", "aime2025", "gsm8k", "long"]
    assert all(s.description for s in suites)
    for s in suites:
        assert get_suite(s.name) is s


def test_aime2025_loads_30_integer_problems() -> None:
    suite = get_suite("aime2025")
    assert len(suite.problems) == 30
    assert len({p.id for p in suite.problems}) == 30
    assert suite.score is aime
    assert suite.sampling == {"temperature": 1.0, "max_tokens": 32768}
    for p in suite.problems:
        assert 0 <= int(p.answer) <= 999
        assert p.prompt.endswith("put your final answer within \\boxed{}.")
        assert suite.score(f"so \\boxed{{{p.answer}}}", p.answer) == 1.0
    first = suite.problems[0]
    assert first.id == "2025-I-1" and first.answer == "70"
    assert suite.messages(first) == [{"role": "user", "content": first.prompt}]


def test_gsm8k_loads_1319_problems_the_numeric_scorer_reads() -> None:
    suite = get_suite("gsm8k")
    assert len(suite.problems) == 1319
    assert len({p.id for p in suite.problems}) == 1319
    assert suite.score is numeric
    assert suite.sampling == {"temperature": 0.0, "max_tokens": 1024}
    for p in suite.problems:
        assert suite.score(p.answer, p.answer) == 1.0
        assert suite.score(f"work...\n#### {p.answer}", p.answer) == 1.0
    assert "#### <number>" in suite.problems[0].prompt


def test_subset_is_deterministic_ordered_and_keeps_the_name() -> None:
    full = get_suite("gsm8k")
    a, b = full.subset(50, seed=3), get_suite("gsm8k", limit=50, seed=3)
    assert [p.id for p in a.problems] == [p.id for p in b.problems]
    assert len(a.problems) == 50 and a.name == "gsm8k"
    order = {p.id: i for i, p in enumerate(full.problems)}
    assert [order[p.id] for p in a.problems] == sorted(order[p.id] for p in a.problems)
    assert [p.id for p in full.subset(50, seed=4).problems] != [p.id for p in a.problems]
    assert "subset: 50 of 1319" in a.description
    assert full.subset(5000) is full
    with pytest.raises(ValueError):
        full.subset(0)


def test_spec_strings_take_subsets() -> None:
    assert len(get_suite("gsm8k:20").problems) == 20
    assert get_suite("gsm8k:20").problems == get_suite("gsm8k", limit=20, seed=0).problems
    assert get_suite("gsm8k:20:7").problems == get_suite("gsm8k", limit=20, seed=7).problems
    assert get_suite("aime2025:5", limit=3).problems == get_suite("aime2025:3").problems
    with pytest.raises(KeyError, match="aime2025"):
        get_suite("aime2024")
    with pytest.raises(KeyError, match="gsm8k"):
        get_suite("gsm8k:x")
    with pytest.raises(ConfigError, match="at least 1"):
        get_suite("gsm8k:0")


def test_with_sampling_overrides_and_drops() -> None:
    suite = get_suite("aime2025").with_sampling(max_tokens=4096, temperature=None, top_p=0.95)
    assert suite.sampling == {"max_tokens": 4096, "top_p": 0.95}
    assert get_suite("aime2025").sampling["max_tokens"] == 32768  # the original is untouched


def test_per_problem_scorers_and_messages() -> None:
    problems = [
        Problem("a", "Capital of France?", "paris"),
        Problem("b", "Say a number", r"^\d+$", scorer="regex"),
        Problem(
            "c",
            "2+2?",
            "4",
            scorer="numeric",
            messages=(
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "2+2?"},
            ),
        ),
    ]
    suite = Suite("t", "test", problems, exact, system_prompt="You are helpful.")
    assert suite.score("Paris", "paris") == 1.0
    assert suite.score("42", r"^\d+$") == 1.0  # the regex scorer, recognised by the answer
    assert suite.score("it is 4.", "4") == 1.0
    assert suite.grade(problems[1], "forty-two") == 0.0
    assert suite.grade(problems[2], "#### 4") == 1.0
    assert suite.grade(problems[0], " PARIS ") == 1.0
    assert suite.messages(problems[0])[0] == {"role": "system", "content": "You are helpful."}
    assert suite.messages(problems[2]) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "2+2?"},
    ]
    sub = suite.subset(2, seed=1)
    assert all(sub.grade(p, "4") == suite.grade(p, "4") for p in sub.problems)
    assert hash(problems[2]) == hash(Problem("c", "2+2?", "4", scorer="numeric"))


def test_suite_rejects_ambiguous_or_unknown_scorers() -> None:
    with pytest.raises(ValueError, match="share the answer"):
        Suite("t", "", [Problem("a", "?", "4"), Problem("b", "?", "4", scorer="regex")], exact)
    with pytest.raises(ValueError, match="unknown scorer"):
        Suite("t", "", [Problem("a", "?", "4", scorer="nope")], exact)
    same = Suite("t", "", [Problem("a", "?", "4"), Problem("b", "?", "4", scorer="exact")], exact)
    assert same.score("4", "4") == 1.0
