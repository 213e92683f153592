"""gsm8k: the 1,319 grade-school math problems of the GSM8K test split.

Data: `data/gsm8k_test.jsonl.gz` (id, question, answer; answers are integers). The prompt asks
for step-by-step work ending in a line "#### <number>"; the scorer is `numeric` (the number
after "####", else in the last \\boxed{}, else the last number). Greedy sampling
(temperature 0), max_tokens 1024. For a quick run take a subset: `get_suite("gsm8k:100")`.
"""

from __future__ import annotations

import gzip
import json
from importlib import resources

from parity.accuracy.suites import Problem, Suite
from parity.accuracy.suites.scorers import numeric

PROMPT = (
    "{question}\n"
    "Solve the problem step by step. Then write the final answer, a number only, on the last "
    'line in the form "#### <number>".'
)


def _problems() -> list[Problem]:
    data = resources.files(__package__).joinpath("data/gsm8k_test.jsonl.gz").read_bytes()
    rows = [json.loads(line) for line in gzip.decompress(data).decode("utf-8").splitlines()]
    return [
        Problem(row["id"], PROMPT.format(question=row["question"]), row["answer"]) for row in rows
    ]


SUITE = Suite(
    name="gsm8k",
    description="GSM8K test split, 1,319 word problems; final number after '####' (numeric)",
    problems=_problems(),
    score=numeric,
    sampling={"temperature": 0.0, "max_tokens": 1024},
)
