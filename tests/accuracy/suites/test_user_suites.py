import json
from pathlib import Path
from typing import Any

import pytest

from parity.accuracy.suites import get_suite
from parity.accuracy.suites.scorers import exact, numeric
from parity.accuracy.suites.user import load_user_suite
from parity.core.errors import ConfigError


def _write(path: Path, *lines: Any) -> Path:
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n")
    return path


GOOD = [
    {"suite": {"name": "mine", "scorer": "numeric", "sampling": {"temperature": 0}}},
    {"id": "q1", "prompt": "What is 6 x 7?", "answer": "42"},
    {"id": 2, "prompt": "What is 2 + 2?", "answer": 4},
    "",
    {
        "id": "q3",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Capital of France?"},
        ],
        "answer": "Paris",
        "scorer": "contains_phrase",
    },
    {"id": "q4", "prompt": "Pick one", "answer": "C", "scorer": "multiple_choice", "meta": {}},
    {"id": "q5", "prompt": "Say yes", "answer": "(?i)^yes", "scorer": "regex"},
]


def test_good_jsonl(tmp_path: Path) -> None:
    suite = load_user_suite(_write(tmp_path / "s.jsonl", *GOOD))
    assert suite.name == "mine"
    assert [p.id for p in suite.problems] == ["q1", "2", "q3", "q4", "q5"]
    assert suite.sampling == {"temperature": 0}
    q1, q2, q3, q4, q5 = suite.problems
    assert (q4.scorer, q5.scorer) == ("multiple_choice", "regex")
    assert q2.answer == "4" and q1.scorer is None
    assert suite.score("#### 42", "42") == 1.0
    assert suite.score("The capital is Paris.", "Paris") == 1.0
    assert suite.score("Answer: C", "C") == 1.0
    assert suite.score("YES!", "(?i)^yes") == 1.0
    assert suite.grade(q3, "paris") == 1.0
    assert q3.prompt == "Capital of France?"
    assert suite.messages(q3)[0] == {"role": "system", "content": "Be brief."}
    assert suite.messages(q1) == [{"role": "user", "content": "What is 6 x 7?"}]


def test_defaults_without_header(tmp_path: Path) -> None:
    path = _write(tmp_path / "plain.jsonl", {"id": "a", "prompt": "Say hi", "answer": "hi"})
    suite = load_user_suite(path)
    assert suite.name == "plain" and suite.score is exact and suite.sampling == {}
    assert load_user_suite(path, scorer="contains_phrase").score("oh hi there", "hi") == 1.0
    numbers = _write(tmp_path / "n.jsonl", {"id": "a", "prompt": "?", "answer": "1,000"})
    assert load_user_suite(numbers, scorer="numeric").score is numeric
    with pytest.raises(ConfigError, match="unknown scorer"):
        load_user_suite(path, scorer="nope")


def test_get_suite_takes_a_path_with_a_limit(tmp_path: Path) -> None:
    path = _write(tmp_path / "s.jsonl", *GOOD)
    assert get_suite(str(path)).name == "mine"
    assert len(get_suite(f"{path}:2").problems) == 2
    assert get_suite(f"{path}:2:5").problems == get_suite(str(path), limit=2, seed=5).problems


@pytest.mark.parametrize(
    ("lines", "line", "message"),
    [
        (['{"id": "a", "prompt": "?", "answer": "1"', ""], 1, "invalid JSON"),
        ([{"id": "a", "prompt": "?", "answer": "1"}, "[1, 2]"], 2, "expected a JSON object"),
        ([{"prompt": "?", "answer": "1"}], 1, "missing field 'id'"),
        ([{"id": "a", "prompt": "?"}], 1, "missing field 'answer'"),
        ([{"id": "a", "answer": "1"}], 1, "exactly one of 'prompt' or 'messages'"),
        ([{"id": "a", "prompt": "?", "messages": [], "answer": "1"}], 1, "exactly one of"),
        ([{"id": "a", "prompt": "", "answer": "1"}], 1, "'prompt' must be a non-empty string"),
        ([{"id": "a", "messages": [{"role": "user"}], "answer": "1"}], 1, "messages[0]"),
        ([{"id": "a", "messages": "hi", "answer": "1"}], 1, "'messages' must be"),
        ([{"id": "a/b", "prompt": "?", "answer": "1"}], 1, "must not contain '/'"),
        ([{"id": True, "prompt": "?", "answer": "1"}], 1, "'id' must be"),
        ([{"id": "a", "prompt": "?", "answer": None}], 1, "'answer' must be"),
        ([{"id": "a", "prompt": "?", "answer": "1", "scorer": "nope"}], 1, "unknown scorer 'nope'"),
        ([{"id": "a", "prompt": "?", "answer": "1", "scorer": 3}], 1, "'scorer' must be a string"),
        ([{"id": "a", "prompt": "?", "answer": "1", "scorrer": "x"}], 1, "unknown field 'scorrer'"),
        (
            [
                {"id": "a", "prompt": "?", "answer": "1"},
                "",
                {"id": "a", "prompt": "!", "answer": "2"},
            ],
            3,
            "duplicate id 'a' (first on line 1)",
        ),
        ([{"id": "a", "prompt": "?", "answer": "x", "scorer": "aime"}], 1, "integer"),
        ([{"id": "a", "prompt": "?", "answer": "(", "scorer": "regex"}], 1, "not a valid regex"),
        (
            [
                {"id": "a", "prompt": "?", "answer": "4"},
                {"id": "b", "prompt": "?", "answer": "4", "scorer": "numeric"},
            ],
            2,
            "must share a scorer",
        ),
        ([{"id": "a", "prompt": "?", "answer": "1"}, {"suite": {"name": "x"}}], 2, "first line"),
        (
            [{"suite": {"scorer": "nope"}}, {"id": "a", "prompt": "?", "answer": "1"}],
            1,
            "unknown scorer",
        ),
        ([{"suite": {"colour": "red"}}], 1, "unknown header field 'colour'"),
        ([{"suite": {"name": "a/b"}}], 1, "must not contain"),
        ([{"suite": {"sampling": 3}}], 1, "'sampling' must be an object"),
        ([{"suite": {}, "id": "a"}], 1, "header line holds only 'suite'"),
    ],
)
def test_bad_jsonl_is_one_line_naming_file_and_line(
    tmp_path: Path, lines: list[Any], line: int, message: str
) -> None:
    path = _write(tmp_path / "bad.jsonl", *lines)
    with pytest.raises(ConfigError) as info:
        load_user_suite(path)
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith(f"{path}:{line}: ")
    assert message in text


def test_empty_missing_and_binary_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no problems"):
        load_user_suite(_write(tmp_path / "e.jsonl", "", {"suite": {"name": "x"}}))
    with pytest.raises(ConfigError, match="cannot read"):
        load_user_suite(tmp_path / "absent.jsonl")
    binary = tmp_path / "b.jsonl"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_user_suite(binary)


PY_SUITE = '''\
"""mine: two sums, one graded by a per-problem scorer."""

from dataclasses import dataclass

from parity.accuracy.suites import Problem, Suite
from parity.accuracy.suites.scorers import last_integer


@dataclass(frozen=True)
class Note:  # dataclasses need the module registered while it loads
    text: str


SUITE = Suite(
    name="py-mine",
    description="two sums",
    problems=[
        Problem("s1", "What is 1 + 1?", "2"),
        Problem("s2", "What is 2 + 3? Reply '#### <n>'", "5.0", scorer="numeric"),
    ],
    score=last_integer,
    sampling={"temperature": 0, "max_tokens": 16},
)
'''


def test_python_suite(tmp_path: Path) -> None:
    path = tmp_path / "mine.py"
    path.write_text(PY_SUITE)
    suite = load_user_suite(path)
    assert suite.name == "py-mine" and len(suite.problems) == 2
    assert suite.score("1 + 1 = 2", "2") == 1.0
    assert suite.score("#### 5", "5.0") == 1.0
    assert get_suite(f"{path}:1").problems[0].id in {"s1", "s2"}


@pytest.mark.parametrize(
    ("source", "line", "message"),
    [
        ("x = 1\nSUITE = (\n", 2, "syntax error"),
        ("import nonexistent_module_xyz\n", 1, "ModuleNotFoundError"),
        ("x = 1\n\nraise RuntimeError('boom')\n", 3, "RuntimeError: boom"),
        ("x = 1\n", 0, "defines no SUITE"),
        ("x = 1\nSUITE = 42\n", 2, "SUITE is a int"),
        (
            "from parity.accuracy.suites import Problem, Suite\n"
            "from parity.accuracy.suites.scorers import exact\n"
            "SUITE = Suite('s', '', [Problem('a', '?', '1'), Problem('a', '?', '2')], exact)\n",
            3,
            "duplicate problem id 'a'",
        ),
        (
            "from parity.accuracy.suites import Problem, Suite\n"
            "from parity.accuracy.suites.scorers import exact\n"
            "SUITE = Suite('s/t', '', [Problem('a', '?', '1')], exact)\n",
            3,
            "must be non-empty without '/'",
        ),
        (
            "from parity.accuracy.suites import Problem, Suite\n"
            "from parity.accuracy.suites.scorers import exact\n\n"
            "SUITE = Suite('s', '', [Problem('a', '?', '1', scorer='nope')], exact)\n",
            4,
            "unknown scorer 'nope'",
        ),
        (
            "from parity.accuracy.suites import Problem, Suite\n"
            "from parity.accuracy.suites.scorers import exact\n"
            "SUITE = Suite('s', '', [Problem('a', '?', 'x', scorer='aime')], exact)\n",
            3,
            "integer",
        ),
    ],
)
def test_bad_python_suite(tmp_path: Path, source: str, line: int, message: str) -> None:
    path = tmp_path / "bad.py"
    path.write_text(source)
    with pytest.raises(ConfigError) as info:
        load_user_suite(path)
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith(f"{path}:{line}: ")
    assert message in text
