"""User suites: your own problems, from a JSONL file or a Python file defining `SUITE`.

(Data sets in other schemas and formats, CSV, Parquet, Arrow, folders, a suite TOML, are read
by `parity.accuracy.suites.datasets`; `load_user_suite` sends them there.)

JSONL (any suffix but `.py`), UTF-8, one JSON object per line, blank lines skipped::

    {"suite": {"name": "mine", "scorer": "numeric", "sampling": {"temperature": 0}}}
    {"id": "q1", "prompt": "What is 6 x 7?", "answer": "42"}
    {"id": "q2", "messages": [{"role": "system", "content": "Be brief."},
                              {"role": "user", "content": "Capital of France?"}],
     "answer": "paris", "scorer": "contains_phrase"}

(each object on one line). The optional first line `{"suite": {...}}` sets `name` (default:
the file's stem), `description`, the default `scorer`, `sampling` (request fields such as
temperature and max_tokens) and `system_prompt`. Every other line is a problem:

- `id` (string or integer, unique, without "/"),
- exactly one of `prompt` (a string) or `messages` (a non-empty list of
  `{"role": ..., "content": ...}` strings),
- `answer` (a string or a number),
- optional `scorer`: a name from `parity.accuracy.suites.scorers.SCORERS`; the default is the
  header's scorer, else the `scorer` argument of `load_user_suite` (e.g. from a CLI option), else
  `exact`,
- optional `meta`: anything, ignored.

Problems that share an answer must share a scorer (a suite recognises a problem's scorer by
its answer). Any other field is an error, so a misspelt `scorer` is never silently ignored.

Python (`.py`): a module defining `SUITE: parity.accuracy.suites.Suite`, written like the built-in
ones (see `parity/suites/easy.py`); it is imported by path, so it may import anything
installed, but not its sibling files.

Every problem with either file raises `parity.core.errors.ConfigError` with one line
"FILE:LINE: what is wrong".
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import sys
import traceback
from pathlib import Path
from typing import Any, NoReturn

from parity.accuracy.suites import Problem, Suite
from parity.accuracy.suites.datasets import DatasetOptions, is_foreign_jsonl, load_dataset_suite
from parity.accuracy.suites.scorers import SCORERS, check_answer
from parity.core.errors import ConfigError, ParityError

DEFAULT_SCORER = "exact"
_PROBLEM_FIELDS = ("id", "prompt", "messages", "answer", "scorer", "meta")
_HEADER_FIELDS = ("name", "description", "scorer", "sampling", "system_prompt")


def load_user_suite(
    path: Path, scorer: str | None = None, dataset: DatasetOptions | None = None
) -> Suite:
    """The suite in `path`: a Python file (`.py`) defining `SUITE`, a JSONL file in parity's
    schema, else a data set (another format, a folder, a suite TOML, or a JSONL file in
    another schema) read by `parity.accuracy.suites.datasets` with `dataset`'s options.

    `scorer` is the default scorer for JSONL problems that name none and whose file has no
    header scorer. Raises `ConfigError` (one line naming the file and line) on any problem.
    """
    if scorer is not None and scorer not in SCORERS:
        raise ConfigError(f"unknown scorer {scorer!r}; known: {', '.join(sorted(SCORERS))}")
    given = dataset is not None and dataset.given()
    if path.suffix == ".py":
        if given:
            _fail(
                str(path),
                "--field, --scorer, --few-shot, --split and --template apply to data files",
            )
        return _load_python(path)
    if (
        given
        or path.is_dir()
        or path.suffix.lower() in (".toml", ".json", ".csv", ".tsv", ".parquet", ".arrow")
        or is_foreign_jsonl(path)
    ):
        return load_dataset_suite(path, dataset, default_scorer=scorer)
    return _load_jsonl(path, scorer)


def _fail(where: str, problem: str) -> NoReturn:
    raise ConfigError(f"{where}: {' '.join(problem.split())}")


def _read(path: Path) -> str:
    try:
        return path.read_text("utf-8")
    except UnicodeDecodeError as exc:
        _fail(str(path), f"not UTF-8 text ({exc.reason} at byte {exc.start})")
    except OSError as exc:
        _fail(str(path), f"cannot read suite file ({exc.strerror or exc})")


# --- JSONL ---------------------------------------------------------------------------------


def _load_jsonl(path: Path, default_scorer: str | None) -> Suite:
    header: dict[str, Any] = {}
    problems: list[Problem] = []
    first_line: dict[str, int] = {}  # id -> line
    by_answer: dict[str, tuple[int, str]] = {}  # answer -> (line, scorer)
    seen_object = False
    for number, line in enumerate(_read(path).splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            _fail(where, f"invalid JSON ({exc.msg} at column {exc.colno})")
        if not isinstance(obj, dict):
            _fail(where, f"expected a JSON object, got {_json_type(obj)}")
        if "suite" in obj:
            if seen_object:
                _fail(where, "the {'suite': ...} header must be the first line")
            header = _header(where, obj)
            seen_object = True
            continue
        seen_object = True
        suite_scorer = header.get("scorer") or default_scorer or DEFAULT_SCORER
        problem = _problem(where, obj, suite_scorer)
        if problem.id in first_line:
            _fail(where, f"duplicate id {problem.id!r} (first on line {first_line[problem.id]})")
        first_line[problem.id] = number
        scorer = problem.scorer or suite_scorer
        if problem.answer in by_answer and by_answer[problem.answer][1] != scorer:
            other_line, other_scorer = by_answer[problem.answer]
            _fail(
                where,
                f"answer {problem.answer!r} is graded by {scorer!r} here but by "
                f"{other_scorer!r} on line {other_line}; problems sharing an answer must "
                "share a scorer",
            )
        by_answer.setdefault(problem.answer, (number, scorer))
        problems.append(problem)
    if not problems:
        _fail(str(path), "no problems (expected one JSON object per line)")
    suite_scorer = header.get("scorer") or default_scorer or DEFAULT_SCORER
    return Suite(
        name=header.get("name") or path.stem,
        description=header.get("description") or f"user suite {path.name}",
        problems=problems,
        score=SCORERS[suite_scorer],
        sampling=header.get("sampling") or {},
        system_prompt=header.get("system_prompt"),
    )


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number")


def _header(where: str, obj: dict[str, Any]) -> dict[str, Any]:
    if set(obj) != {"suite"}:
        extra = sorted(set(obj) - {"suite"})
        _fail(where, f"the header line holds only 'suite', not {', '.join(map(repr, extra))}")
    header = obj["suite"]
    if not isinstance(header, dict):
        _fail(where, f"'suite' must be an object, got {_json_type(header)}")
    for key, value in header.items():
        if key not in _HEADER_FIELDS:
            _fail(where, f"unknown header field {key!r} (expected: {', '.join(_HEADER_FIELDS)})")
        if key == "sampling":
            if not isinstance(value, dict):
                _fail(where, f"'sampling' must be an object, got {_json_type(value)}")
        elif not isinstance(value, str) or not value.strip():
            _fail(where, f"header field {key!r} must be a non-empty string")
    name = header.get("name")
    if name is not None and ("/" in name or ":" in name):
        _fail(where, f"suite name {name!r} must not contain '/' or ':'")
    scorer = header.get("scorer")
    if scorer is not None and scorer not in SCORERS:
        _fail(where, f"unknown scorer {scorer!r}; known: {', '.join(sorted(SCORERS))}")
    return header


def _problem(where: str, obj: dict[str, Any], suite_scorer: str) -> Problem:
    for key in obj:
        if key not in _PROBLEM_FIELDS:
            _fail(where, f"unknown field {key!r} (expected: {', '.join(_PROBLEM_FIELDS)})")
    for key in ("id", "answer"):
        if key not in obj:
            _fail(where, f"missing field {key!r}")
    raw_id = obj["id"]
    if isinstance(raw_id, bool) or not isinstance(raw_id, str | int):
        _fail(where, f"'id' must be a string or an integer, got {_json_type(raw_id)}")
    problem_id = str(raw_id).strip()
    if not problem_id or "/" in problem_id:
        _fail(where, f"'id' must be non-empty and must not contain '/', got {raw_id!r}")
    raw_answer = obj["answer"]
    if isinstance(raw_answer, bool) or not isinstance(raw_answer, str | int | float):
        _fail(where, f"'answer' must be a string or a number, got {_json_type(raw_answer)}")
    answer = str(raw_answer)

    if ("prompt" in obj) == ("messages" in obj):
        _fail(where, "needs exactly one of 'prompt' or 'messages'")
    messages: tuple[dict[str, str], ...] | None = None
    if "prompt" in obj:
        prompt = obj["prompt"]
        if not isinstance(prompt, str) or not prompt.strip():
            _fail(where, "'prompt' must be a non-empty string")
    else:
        messages = _messages(where, obj["messages"])
        users = [m["content"] for m in messages if m["role"] == "user"]
        prompt = users[-1] if users else messages[-1]["content"]

    scorer = obj.get("scorer")
    if scorer is not None and not isinstance(scorer, str):
        _fail(where, f"'scorer' must be a string, got {_json_type(scorer)}")
    why = check_answer(scorer or suite_scorer, answer)
    if why is not None:
        _fail(where, why)
    return Problem(
        id=problem_id,
        prompt=prompt,
        answer=answer,
        scorer=None if scorer == suite_scorer else scorer,
        messages=messages,
    )


def _messages(where: str, value: Any) -> tuple[dict[str, str], ...]:
    if not isinstance(value, list) or not value:
        _fail(where, "'messages' must be a non-empty list of {'role', 'content'} objects")
    out = []
    for i, message in enumerate(value):
        if (
            not isinstance(message, dict)
            or not isinstance(message.get("role"), str)
            or not isinstance(message.get("content"), str)
            or not all(isinstance(v, str) for v in message.values())
        ):
            _fail(where, f"messages[{i}] must be an object with string 'role' and 'content'")
        out.append(dict(message))
    return tuple(out)


# --- Python --------------------------------------------------------------------------------


def _load_python(path: Path) -> Suite:
    source = _read(path)
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
    stem = re.sub(r"\W", "_", path.stem)
    module_name = f"parity_user_suite_{stem}_{digest}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        _fail(str(path), "cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look modules up here
    try:
        spec.loader.exec_module(module)
    except ParityError:
        sys.modules.pop(module_name, None)
        raise
    except SyntaxError as exc:
        sys.modules.pop(module_name, None)
        _fail(f"{path}:{exc.lineno or 0}", f"syntax error: {exc.msg}")
    except Exception as exc:
        sys.modules.pop(module_name, None)
        _fail(f"{path}:{_error_line(path, exc)}", f"{type(exc).__name__}: {exc}")
    suite_line = _assignment_line(source, "SUITE")
    where = f"{path}:{suite_line}"
    suite = getattr(module, "SUITE", None)
    if suite is None:
        _fail(f"{path}:0", "defines no SUITE (a parity.accuracy.suites.Suite)")
    if not isinstance(suite, Suite):
        _fail(where, f"SUITE is a {type(suite).__name__}, not a parity.accuracy.suites.Suite")
    _check_suite(where, suite)
    return suite


def _error_line(path: Path, exc: BaseException) -> int:
    """The line of `path` where `exc` was raised (deepest frame in that file), else 0."""
    target = path.resolve()
    line = 0
    for frame in traceback.extract_tb(exc.__traceback__):
        if Path(frame.filename).resolve() == target:
            line = frame.lineno or 0
    return line


def _assignment_line(source: str, name: str) -> int:
    for number, line in enumerate(source.splitlines(), start=1):
        if re.match(rf"{name}\s*(:[^=]*)?=", line):
            return number
    return 0


def _check_suite(where: str, suite: Suite) -> None:
    if not suite.name or "/" in suite.name or ":" in suite.name:
        _fail(where, f"SUITE.name {suite.name!r} must be non-empty without '/' or ':'")
    if not suite.problems:
        _fail(where, "SUITE has no problems")
    seen: set[str] = set()
    for problem in suite.problems:
        if not isinstance(problem, Problem):
            _fail(where, f"SUITE.problems holds a {type(problem).__name__}, not a Problem")
        if not problem.id or "/" in problem.id:
            _fail(where, f"problem id {problem.id!r} must be non-empty without '/'")
        if problem.id in seen:
            _fail(where, f"duplicate problem id {problem.id!r}")
        seen.add(problem.id)
        if problem.scorer is not None:
            why = check_answer(problem.scorer, problem.answer)
            if why is not None:
                _fail(where, f"problem {problem.id!r}: {why}")
