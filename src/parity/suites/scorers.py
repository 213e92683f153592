"""Scorers: grade a reply against a reference answer, returning 1.0 or 0.0."""

from __future__ import annotations

import re

_INT = re.compile(r"-?\d+")


def last_integer(reply: str, answer: str) -> float:
    """1.0 when the last integer in the reply equals the answer ("3 + 4 = 7" -> 7)."""
    found = _INT.findall(reply.replace(",", ""))
    return float(bool(found) and int(found[-1]) == int(answer))


def contains_phrase(reply: str, answer: str) -> float:
    """1.0 when the answer appears in the reply as whole words, ignoring case."""
    pattern = r"(?<![A-Za-z])" + re.escape(answer.lower()) + r"(?![A-Za-z])"
    return float(re.search(pattern, reply.lower()) is not None)
