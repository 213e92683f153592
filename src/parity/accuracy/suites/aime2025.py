"""aime2025: the 30 problems of AIME 2025 (I and II), graded like the publisher's gpt-oss evals.

Data: `data/aime2025.jsonl` (id, problem, answer; answers are integers 0-999). The prompt is
the gpt-oss AIME template (the problem, then "Please reason step by step, and put your final
answer within \\boxed{}."), the scorer is `aime` (last box as an integer). Sampling follows the
publisher: temperature 1.0, with room for long reasoning (max_tokens 32768). Override with
`get_suite("aime2025").with_sampling(max_tokens=8192)`.
"""

from __future__ import annotations

import json
from importlib import resources

from parity.accuracy.suites import Problem, Suite
from parity.accuracy.suites.scorers import aime

PROMPT = "{problem}\nPlease reason step by step, and put your final answer within \\boxed{{}}."


def _problems() -> list[Problem]:
    text = resources.files(__package__).joinpath("data/aime2025.jsonl").read_text("utf-8")
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    return [
        Problem(row["id"], PROMPT.format(problem=row["problem"]), row["answer"]) for row in rows
    ]


SUITE = Suite(
    name="aime2025",
    description="AIME 2025 I+II, 30 problems; last \\boxed{} as an integer (gpt-oss convention)",
    problems=_problems(),
    score=aime,
    sampling={"temperature": 1.0, "max_tokens": 32768},
)
