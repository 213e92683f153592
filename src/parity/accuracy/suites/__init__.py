"""Accuracy suites: problems with known answers and the scorer that grades a reply.

A suite is a small declarative unit: a name, default sampling settings, a list of
`Problem`s and a scorer. Add a built-in one by copying `easy.py` (or `aime2025.py` for a
suite read from a data file) and listing it in `_BUILTINS`; users bring their own as a JSONL
or Python file (see `parity.accuracy.suites.user`).

`get_suite` takes a *spec*, not just a name:

- `easy`, `aime2025`, `gsm8k`, `long`: a built-in suite;
- `long:3k`: a built-in suite that takes a length (thousands of tokens; see `long.py`);
- `gsm8k:100`: a deterministic subset of 100 problems (seed 0); `gsm8k:100:7`: seed 7;
- `path/to/suite.jsonl`, `my_suite.py` (also with `:N[:SEED]`): a user suite file; also a
  data set (`.csv`, `.parquet`, `.arrow`, `.json`, a folder, a `suite.toml`) read by
  `parity.accuracy.suites.datasets`.

A subset keeps the suite's name, so a run planned with `gsm8k:100` is scored against the
same 100 problems when the spec is resolved again at analysis time.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from parity.accuracy.suites.datasets import DatasetOptions

Scorer = Callable[[str, str], float]
"""scorer(reply_text, answer) -> score in [0, 1]."""


@dataclass(frozen=True)
class Problem:
    """One question with its reference answer.

    `scorer` names an entry of `parity.accuracy.suites.scorers.SCORERS` that grades this problem
    instead of the suite's scorer. `messages`, when given, is the whole chat to send (the
    suite's system prompt is prepended only when it has no system message); `prompt` is then
    the text of its last user message, for display. Plain problems leave both None.
    """

    id: str
    prompt: str
    answer: str
    scorer: str | None = None
    messages: tuple[dict[str, str], ...] | None = field(default=None, hash=False)

    def __post_init__(self) -> None:
        if self.messages is not None:  # accept any sequence of mappings; store an immutable copy
            object.__setattr__(self, "messages", tuple(dict(m) for m in self.messages))


class PerProblemScorer:
    """A suite scorer that honours `Problem.scorer` while keeping the `(reply, answer)` call.

    Callers of `Suite.score` pass only the answer, so the problem is recognised by its
    answer: the constructor raises ValueError when two problems share an answer but are graded
    by different scorers (`Suite.grade(problem, reply)` has no such limit). Built by `Suite`
    itself; you never need to construct one.
    """

    def __init__(self, default: Scorer, problems: list[Problem]) -> None:
        from parity.accuracy.suites.scorers import SCORERS

        self.default = default
        self._by_answer: dict[str, Scorer] = {}
        seen: dict[str, tuple[str, str | None, Scorer]] = {}
        for p in problems:
            if p.scorer is not None and p.scorer not in SCORERS:
                raise ValueError(
                    f"problem {p.id!r}: unknown scorer {p.scorer!r}; "
                    f"known: {', '.join(sorted(SCORERS))}"
                )
            scorer = SCORERS[p.scorer] if p.scorer is not None else default
            if p.answer in seen and seen[p.answer][2] is not scorer:
                other_id, other_name, _ = seen[p.answer]
                raise ValueError(
                    f"problems {other_id!r} and {p.id!r} share the answer {p.answer!r} but are "
                    f"graded by different scorers ({other_name or 'suite default'} vs "
                    f"{p.scorer or 'suite default'}); give them the same scorer"
                )
            seen.setdefault(p.answer, (p.id, p.scorer, scorer))
            if p.scorer is not None:
                self._by_answer[p.answer] = scorer

    def __call__(self, reply: str, answer: str) -> float:
        return self._by_answer.get(answer, self.default)(reply, answer)


@dataclass(frozen=True)
class Suite:
    """A named set of problems, how to ask them and how to grade the replies.

    `score(reply, answer)` grades a reply; when some problems name their own scorer, the
    suite wraps `score` in a `PerProblemScorer` so that the same call honours them (see
    `grade` for the call that takes the problem itself).
    """

    name: str
    description: str
    problems: list[Problem]
    score: Scorer
    sampling: dict[str, Any] = field(default_factory=dict)
    system_prompt: str | None = None

    def __post_init__(self) -> None:
        default = self.score.default if isinstance(self.score, PerProblemScorer) else self.score
        if any(p.scorer is not None for p in self.problems):
            object.__setattr__(self, "score", PerProblemScorer(default, self.problems))
        else:
            object.__setattr__(self, "score", default)

    def messages(self, problem: Problem) -> list[dict[str, str]]:
        """The chat messages that ask `problem` (a fresh list each call)."""
        if problem.messages is not None:
            messages = [dict(m) for m in problem.messages]
            if self.system_prompt and not any(m.get("role") == "system" for m in messages):
                messages.insert(0, {"role": "system", "content": self.system_prompt})
            return messages
        messages = []
        if self.system_prompt:
            messages.append({"role": "system", "content": self.system_prompt})
        messages.append({"role": "user", "content": problem.prompt})
        return messages

    def grade(self, problem: Problem, reply: str) -> float:
        """Score `reply` to `problem` with the problem's own scorer, else the suite's."""
        if problem.scorer is not None:
            from parity.accuracy.suites.scorers import SCORERS

            return SCORERS[problem.scorer](reply, problem.answer)
        default = self.score.default if isinstance(self.score, PerProblemScorer) else self.score
        return default(reply, problem.answer)

    def subset(self, n: int, seed: int = 0) -> Suite:
        """A suite of `n` problems drawn without replacement, the same for the same (n, seed).

        The problems keep their order in the full suite, and the name is unchanged (request
        keys stay comparable). `n` at least the suite's size returns the suite itself; `n < 1`
        raises ValueError.
        """
        if n < 1:
            raise ValueError(f"subset size must be at least 1, got {n}")
        if n >= len(self.problems):
            return self
        chosen = sorted(random.Random(seed).sample(range(len(self.problems)), n))
        return replace(
            self,
            problems=[self.problems[i] for i in chosen],
            description=f"{self.description} [subset: {n} of {len(self.problems)}, seed {seed}]",
        )

    def with_sampling(self, **overrides: Any) -> Suite:
        """A copy whose sampling settings are updated by `overrides`; a None value drops a key.

        E.g. `get_suite("aime2025").with_sampling(max_tokens=8192, temperature=None)`.
        """
        sampling = {**self.sampling, **overrides}
        return replace(self, sampling={k: v for k, v in sampling.items() if v is not None})


# name -> module defining SUITE; imported only when asked for (gsm8k reads 1,319 problems).
_BUILTINS: dict[str, str] = {
    "easy": "parity.accuracy.suites.easy",
    "aime2025": "parity.accuracy.suites.aime2025",
    "gsm8k": "parity.accuracy.suites.gsm8k",
    "long": "parity.accuracy.suites.long",
}

# Built-ins that take a length, `NAME:Nk`: their module's `build(tokens)` makes the suite and
# `parse_length(text)` reads the length (ValueError, one line, when it cannot).
_SIZED = {"long"}
_SIZED_SPEC = re.compile(r"(?P<name>[A-Za-z0-9_]+):(?P<length>\d+[A-Za-z]+)")

_SPEC = re.compile(r"(?P<base>.+?)(?::(?P<limit>\d+)(?::(?P<seed>\d+))?)?")


def _builtin(name: str) -> Suite:
    import importlib

    suite = importlib.import_module(_BUILTINS[name]).SUITE
    assert isinstance(suite, Suite)
    return suite


_FILE_SUFFIXES = (".jsonl", ".py", ".json", ".csv", ".tsv", ".parquet", ".arrow", ".toml")


def _sized(name: str, length: str) -> Suite:
    import importlib

    from parity.core.errors import ConfigError

    module = importlib.import_module(_BUILTINS[name])
    try:
        suite = module.build(module.parse_length(length))
    except ValueError as exc:
        raise ConfigError(f"suite {name}: {exc}") from None
    assert isinstance(suite, Suite)
    return suite


def _is_path(base: str) -> bool:
    return (
        base.lower().endswith(_FILE_SUFFIXES)
        or "/" in base
        or "\\" in base
        or (base not in _BUILTINS and Path(base).is_dir())
    )


def get_suite(
    name: str,
    limit: int | None = None,
    seed: int | None = None,
    *,
    dataset: DatasetOptions | None = None,
) -> Suite:
    """The suite a spec names: a built-in name or a user suite file, optionally `:N[:SEED]`.

    `limit`/`seed` arguments override those written in the spec; with a limit the result is
    `Suite.subset(limit, seed or 0)`. `dataset` says how to read a data file or folder
    (column mapping, scorer, few-shot, split, template; `parity.accuracy.suites.datasets`).
    An unknown built-in name raises KeyError listing the known ones; a bad user file, a
    limit below 1 or dataset options for a built-in suite raise
    `parity.core.errors.ConfigError` (one line).
    """
    match = _SPEC.fullmatch(name.strip())
    if match is None:
        raise KeyError(f"unknown suite {name!r}; known: {', '.join(sorted(_BUILTINS))}")
    base = match["base"]
    if limit is None and match["limit"] is not None:
        limit = int(match["limit"])
    if seed is None and match["seed"] is not None:
        seed = int(match["seed"])
    if base in _BUILTINS:
        if dataset is not None and dataset.given():
            from parity.core.errors import ConfigError

            raise ConfigError(
                f"suite {base!r} is built in: --field, --scorer, --few-shot, --split and "
                "--template apply to suite files"
            )
        suite = _builtin(base)
    elif (sized := _SIZED_SPEC.fullmatch(base)) is not None and sized["name"] in _BUILTINS:
        from parity.core.errors import ConfigError

        if sized["name"] not in _SIZED:
            raise ConfigError(f"suite {name!r}: {sized['name']} takes no length (long does)")
        if dataset is not None and dataset.given():
            raise ConfigError(f"suite {base!r} is built in: dataset options apply to files")
        suite = _sized(sized["name"], sized["length"])
    elif _is_path(base):
        from parity.accuracy.suites.user import load_user_suite

        suite = load_user_suite(Path(base), dataset=dataset)
    else:
        raise KeyError(
            f"unknown suite {base!r}; known: {', '.join(sorted(_BUILTINS))} "
            "(or a path to a suite file: .jsonl, .json, .csv, .parquet, .arrow, .toml, .py, "
            "or a data set folder)"
        )
    if limit is not None and limit < 1:
        from parity.core.errors import ConfigError

        raise ConfigError(f"suite {name!r}: the number of problems must be at least 1")
    return suite if limit is None else suite.subset(limit, seed or 0)


def list_suites() -> list[Suite]:
    """Every built-in suite, in a fixed order (name and description are what lists show)."""
    return [_builtin(name) for name in _BUILTINS]


def suite_names() -> list[str]:
    """The names of the built-in suites, without loading them."""
    return list(_BUILTINS)
