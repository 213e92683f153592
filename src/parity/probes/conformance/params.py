"""Sampling parameters: are they honoured as the OpenAI API defines them?"""

from __future__ import annotations

from parity.probes.base import Request, user
from parity.probes.conformance.base import (
    Check,
    CheckInput,
    CheckResult,
    PlanContext,
    Status,
    all_failed,
    evidence,
    request,
)

MAX_TOKENS = 8
LONG_ASK = [
    user("Write a long essay about the history of the bicycle."),
    user("List every month of the year, one per line, with a sentence about each."),
]


def _plan_max_tokens(ctx: PlanContext) -> list[Request]:
    return [
        request(
            "params.max_tokens", str(i), {"messages": m, "max_tokens": MAX_TOKENS, "temperature": 0}
        )
        for i, m in enumerate(LONG_ASK)
    ]


def _judge_max_tokens(inp: CheckInput) -> CheckResult:
    if (failed := all_failed(inp)) is not None:
        return failed
    bad = []
    for key, x in inp.exchanges.items():
        tokens = x.completion_tokens()
        if not x.ok or x.finish_reason != "length" or tokens != MAX_TOKENS:
            bad.append(evidence(key, x, completion_tokens=tokens, expected_tokens=MAX_TOKENS))
    n = len(inp.exchanges)
    return CheckResult(
        Status.FAIL if bad else Status.PASS,
        f"{n - len(bad)}/{n} stopped at exactly {MAX_TOKENS} tokens with finish_reason 'length'",
        "all",
        bad,
    )


MAX_TOKENS_CHECK = Check(
    id="params.max_tokens",
    family="sampling parameters",
    checks=f"max_tokens={MAX_TOKENS} on a long answer gives finish_reason 'length' and "
    f"exactly {MAX_TOKENS} completion tokens",
    why="a provider that ignores max_tokens bills you for tokens you capped; one that stops "
    "early or mislabels finish_reason breaks truncation handling",
    plan=_plan_max_tokens,
    judge=_judge_max_tokens,
)
