"""Streaming: is the stream well formed, and does it say what the non-streamed answer says?"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from parity.conformance.base import (
    Check,
    CheckInput,
    CheckResult,
    PlanContext,
    Status,
    all_failed,
    evidence,
    request,
)
from parity.core.exchange import ErrorClass, Exchange
from parity.core.request import Request, user

PROMPTS = [
    user("What is the largest planet in the solar system?"),
    user("Give me a word that rhymes with cat."),
    user("Describe the colour blue in one sentence."),
]
SETTINGS = {"max_tokens": 32, "temperature": 0, "seed": 42}


def plan_pairs(ctx: PlanContext) -> list[Request]:
    """Each prompt once plain and once streamed, at temperature 0 with a fixed seed."""
    planned = []
    for i, messages in enumerate(PROMPTS):
        body = {"messages": messages, **SETTINGS}
        planned.append(request("streaming.pairs", f"{i}/plain", body))
        planned.append(request("streaming.pairs", f"{i}/stream", body, stream=True))
    return planned


def _judge_matches(inp: CheckInput) -> CheckResult:
    if (failed := all_failed(inp)) is not None:
        return failed
    agree, total, bad = _count_agreement(inp.exchanges)
    bar = "all pairs equal"
    if inp.reference is not None:
        ref_agree, ref_total, _ = _count_agreement(inp.reference)
        if ref_total and ref_agree < ref_total:
            # Where the reference itself is not reproducible, hold the provider to its rate.
            bar = f">= reference's own agreement ({ref_agree}/{ref_total})"
            ok = agree / max(total, 1) >= ref_agree / ref_total
            return CheckResult(
                Status.PASS if ok else Status.FAIL, f"{agree}/{total} pairs equal", bar, bad
            )
    return CheckResult(
        Status.PASS if agree == total and total else Status.FAIL,
        f"{agree}/{total} pairs equal",
        bar,
        bad,
    )


def _count_agreement(exchanges: Mapping[str, Exchange]) -> tuple[int, int, list[dict[str, Any]]]:
    agree = total = 0
    bad: list[dict[str, Any]] = []
    for i in range(len(PROMPTS)):
        plain = exchanges.get(f"conformance/streaming.pairs/{i}/plain")
        streamed = exchanges.get(f"conformance/streaming.pairs/{i}/stream")
        if plain is None or streamed is None or not plain.ok or not streamed.ok:
            continue
        total += 1
        if plain.text == streamed.text and plain.reasoning == streamed.reasoning:
            agree += 1
        else:
            bad.append(
                {
                    "key": f"conformance/streaming.pairs/{i}",
                    "request": plain.request,
                    "plain_text": plain.text[:300],
                    "streamed_text": streamed.text[:300],
                    "plain_reasoning": plain.reasoning[:300],
                    "streamed_reasoning": streamed.reasoning[:300],
                }
            )
    return agree, total, bad


MATCHES = Check(
    id="streaming.matches_plain",
    family="streaming",
    checks="at temperature 0 with a fixed seed, streamed and non-streamed replies (answer "
    "and reasoning) are equal",
    why="the two paths of one deployment should run the same model; a difference points at "
    "a different engine, template or sampler behind one of them",
    plan=plan_pairs,
    judge=_judge_matches,
)


def _judge_well_formed(inp: CheckInput) -> CheckResult:
    streamed = {k: x for k, x in inp.exchanges.items() if k.endswith("/stream")}
    if streamed and all(
        not x.ok and x.error != ErrorClass.MALFORMED_STREAM for x in streamed.values()
    ):
        return CheckResult(
            Status.ERROR, "no usable response", "-", [evidence(k, x) for k, x in streamed.items()]
        )
    bad = []
    for key, x in streamed.items():
        if x.error == ErrorClass.MALFORMED_STREAM:
            bad.append(evidence(key, x, problem="malformed stream"))
        elif x.ok and x.finish_reason is None:
            bad.append(evidence(key, x, problem="no finish_reason in the stream"))
    n = len(streamed)
    return CheckResult(
        Status.FAIL if bad else Status.PASS,
        f"{n - len(bad)}/{n} streams well formed",
        "all: SSE framing, [DONE], finish_reason",
        bad,
    )


WELL_FORMED = Check(
    id="streaming.well_formed",
    family="streaming",
    checks="SSE framing is valid, ends with [DONE] and carries a finish_reason",
    why="clients parse the stream; broken framing breaks them",
    plan=plan_pairs,  # shares the streamed half of streaming.pairs: no extra requests
    judge=_judge_well_formed,
)
