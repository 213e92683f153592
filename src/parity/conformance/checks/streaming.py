"""Streaming: is the stream well formed, and does it say what the non-streamed answer says?"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from parity.conformance import agreement
from parity.conformance.base import (
    BarRule,
    Check,
    CheckInput,
    CheckResult,
    PlanContext,
    Status,
    all_failed,
    evidence,
    outage,
    request,
    transport_failure,
)
from parity.core.exchange import ErrorClass, Exchange
from parity.core.request import Request, user

PROMPTS = [
    user("What is the largest planet in the solar system?"),
    user("Give me a word that rhymes with cat."),
    user("Describe the colour blue in one sentence."),
]
SETTINGS = {"max_tokens": 32, "temperature": 0, "seed": 42}


AGAIN = "2"  # the second ask of a prompt: keys `<i>/plain/2`, `<i>/stream/2`


def plan_pairs(ctx: PlanContext) -> list[Request]:
    """Each prompt plain and streamed, twice, at temperature 0 with a fixed seed: the repeat
    measures how often each path agrees with itself (the noise a GPU server shows)."""
    planned = []
    for i, messages in enumerate(PROMPTS):
        body = {"messages": messages, **SETTINGS}
        for again in ("", f"/{AGAIN}"):
            planned.append(request("streaming.pairs", f"{i}/plain{again}", body))
            planned.append(request("streaming.pairs", f"{i}/stream{again}", body, stream=True))
    return planned


def plan_first_pairs(ctx: PlanContext) -> list[Request]:
    """The first ask of each prompt, plain and streamed (what usage.completion_tokens counts)."""
    return [r for r in plan_pairs(ctx) if not r.key.endswith(f"/{AGAIN}")]


def _key(i: int, path: str, again: bool = False) -> str:
    return f"conformance/streaming.pairs/{i}/{path}{'/' + AGAIN if again else ''}"


def is_stream_key(key: str) -> bool:
    """True for the streamed requests of streaming.pairs (first ask and repeat)."""
    parts = key.split("/")
    return len(parts) > 3 and parts[3] == "stream"


def _said(x: Exchange | None) -> str | None:
    """What an answer said (answer and reasoning), None when it is unusable."""
    if x is None or not x.ok:
        return None
    return json.dumps([x.reasoning, x.text])


def _usable(x: Exchange | None) -> bool:
    """Counted in a comparison: answered, or answered badly (a malformed stream, an error
    status): only a request that got no answer at all (an outage) is left out."""
    return x is not None and not transport_failure(x)


def path_agreement(exchanges: Mapping[str, Exchange]) -> agreement.Paths:
    """Streamed vs plain on each ask (`cross`) and each path vs its repeat (`within`)."""
    cross: list[tuple[str | None, str | None]] = []
    within: list[tuple[str | None, str | None]] = []
    for i in range(len(PROMPTS)):
        for again in (False, True):
            plain, streamed = (
                exchanges.get(_key(i, "plain", again)),
                exchanges.get(_key(i, "stream", again)),
            )
            if _usable(plain) and _usable(streamed):
                cross.append((_said(plain), _said(streamed)))
        for path in ("plain", "stream"):
            first, second = exchanges.get(_key(i, path)), exchanges.get(_key(i, path, True))
            if _usable(first) and _usable(second):
                within.append((_said(first), _said(second)))
    return agreement.Paths(agreement.pairs(cross), agreement.pairs(within))


def _judge_matches(inp: CheckInput) -> CheckResult:
    if (failed := all_failed(inp)) is not None:
        return failed
    mine = path_agreement(inp.exchanges)
    ref = path_agreement(inp.reference) if inp.reference is not None else None
    ok, suffix, bar = agreement.judge_paths(mine, ref)
    ok = ok and mine.cross.total > 0
    figure = f"{mine.cross} pairs equal{suffix}"
    return CheckResult(
        Status.PASS if ok else Status.FAIL, figure, bar, [] if ok else _differences(inp.exchanges)
    )


def _differences(exchanges: Mapping[str, Exchange]) -> list[dict[str, Any]]:
    bad: list[dict[str, Any]] = []
    for i in range(len(PROMPTS)):
        for again in (False, True):
            plain = exchanges.get(_key(i, "plain", again))
            streamed = exchanges.get(_key(i, "stream", again))
            if not (_usable(plain) and _usable(streamed)) or plain is None or streamed is None:
                continue
            if _said(plain) is not None and _said(plain) == _said(streamed):
                continue
            ids = {"plain_request_ids": plain.log_ids(), "streamed_request_ids": streamed.log_ids()}
            bad.append(
                {
                    "key": _key(i, "{plain,stream}", again),
                    **{name: found for name, found in ids.items() if found},
                    "request": plain.request,
                    "plain_text": plain.text[:300],
                    "streamed_text": streamed.text[:300],
                    "plain_reasoning": plain.reasoning[:300],
                    "streamed_reasoning": streamed.reasoning[:300],
                    "streamed_error": streamed.error.value if streamed.error else None,
                }
            )
    return bad


MATCHES = Check(
    id="streaming.matches_plain",
    family="streaming",
    checks="at temperature 0 with a fixed seed, streamed and non-streamed replies (answer "
    "and reasoning) are equal, as often as the reference's are",
    why="the two paths of one deployment should run the same model; a difference points at "
    "a different engine, template or sampler behind one of them",
    plan=plan_pairs,
    judge=_judge_matches,
    bar_rule=BarRule.REPEAT_AGREEMENT,
    bar="streamed = plain on 6 pairs (3 prompts asked twice), not significantly less often "
    "than the reference's pairs (one-sided Boschloo, p >= 0.05); the reference itself, or a "
    "provider without one, against its own repeat agreement (each path vs its repeat); exact "
    "where both sides repeat themselves exactly",
)


def _judge_well_formed(inp: CheckInput) -> CheckResult:
    streamed = {k: x for k, x in inp.exchanges.items() if is_stream_key(k)}
    if (down := outage(streamed)) is not None:
        return down
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
    bar="every stream: valid SSE framing, [DONE], a finish_reason",
)
