"""Accuracy suites: problems with known answers and the scorer that grades a reply.

A suite is a small declarative unit: a name, default sampling settings, a list of
`Problem`s and a scorer. Add one by copying `easy.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Problem:
    """One question with its reference answer."""

    id: str
    prompt: str
    answer: str


Scorer = Callable[[str, str], float]
"""scorer(reply_text, answer) -> score in [0, 1]."""


@dataclass(frozen=True)
class Suite:
    """A named set of problems, how to ask them and how to grade the replies."""

    name: str
    description: str
    problems: list[Problem]
    score: Scorer
    sampling: dict[str, Any] = field(default_factory=dict)
    system_prompt: str | None = None

    def messages(self, problem: Problem) -> list[dict[str, str]]:
        """The chat messages that ask `problem`."""
        messages = []
        if self.system_prompt:
            messages.append({"role": "system", "content": self.system_prompt})
        messages.append({"role": "user", "content": problem.prompt})
        return messages


def get_suite(name: str) -> Suite:
    """A built-in suite by name; raises KeyError listing the known names."""
    from parity.suites import easy

    suites = {"easy": easy.SUITE}
    if name not in suites:
        raise KeyError(f"unknown suite {name!r}; known: {', '.join(sorted(suites))}")
    return suites[name]
