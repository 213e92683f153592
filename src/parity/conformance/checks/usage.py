"""Token accounting: is usage reported, self-consistent, and what the reference bills?"""

from __future__ import annotations

from parity.conformance.base import (
    BarRule,
    Check,
    CheckInput,
    CheckResult,
    PlanContext,
    Status,
    all_failed,
    evidence,
    not_applicable,
    request,
    result,
)
from parity.conformance.checks import streaming
from parity.core.exchange import Exchange
from parity.core.request import Request, user

QUESTION = user("Name three primary colours.")
PROMPT_TOKEN_SLACK = 3  # the Kimi vendor verifier's bar: [expected, expected + 3]


def _plan_reported(ctx: PlanContext) -> list[Request]:
    body = {"messages": QUESTION, "max_tokens": 24, "temperature": 0}
    return [request("usage.reported", "plain", body)]


def _plan_streamed(ctx: PlanContext) -> list[Request]:
    body = {"messages": QUESTION, "max_tokens": 24, "temperature": 0}
    return [request("usage.streamed", "stream", body, stream=True)]


def _judge_reported(inp: CheckInput) -> CheckResult:
    if (failed := all_failed(inp)) is not None:
        return failed
    problems = []
    for key, x in inp.exchanges.items():
        u = x.usage or {}
        p, c, t = u.get("prompt_tokens"), u.get("completion_tokens"), u.get("total_tokens")
        reason = None
        if not x.ok:
            reason = "request failed"
        elif not x.usage:
            reason = "no usage chunk in the stream" if x.stream else "no usage in the response"
        elif not all(isinstance(v, int) for v in (p, c, t)):
            reason = "usage fields missing or not integers"
        elif p + c != t:  # type: ignore[operator]
            reason = "total_tokens != prompt_tokens + completion_tokens"
        elif x.text and c == 0:
            reason = "text returned but completion_tokens is 0"
        if reason:
            problems.append(evidence(key, x, problem=reason))
    n = len(inp.exchanges)
    figure = f"{n - len(problems)}/{n} responses with consistent usage"
    if problems:
        figure += f": {problems[0]['problem']}"
    return CheckResult(Status.FAIL if problems else Status.PASS, figure, "all", problems)


REPORTED = Check(
    id="usage.reported",
    family="token accounting",
    checks="a non-streamed response reports usage, and it adds up",
    why="you are billed from usage; a provider that omits or miscounts it cannot be audited",
    plan=_plan_reported,
    judge=_judge_reported,
    bar="usage present, integers, prompt + completion = total, no text billed as 0 tokens",
)

STREAMED = Check(
    id="usage.streamed",
    family="token accounting",
    checks="a stream with stream_options.include_usage ends with a usage chunk that adds up",
    why="streaming clients can only meter and audit what they are billed from that chunk",
    plan=_plan_streamed,
    judge=_judge_reported,
    bar="as usage.reported, on the stream's final usage chunk",
)


def _plan_prompt_tokens(ctx: PlanContext) -> list[Request]:
    body = {"messages": QUESTION, "max_tokens": 1, "temperature": 0}
    return [request("usage.prompt_tokens", "q", body)]


def _judge_prompt_tokens(inp: CheckInput) -> CheckResult:
    if (failed := all_failed(inp)) is not None:
        return failed
    bar = f"[reference, reference + {PROMPT_TOKEN_SLACK}] (fewer is a finding too)"
    if inp.reference is None:
        return CheckResult(Status.NOT_APPLICABLE, "no reference provider", bar)
    key, x = next(iter(inp.exchanges.items()))
    ref = inp.reference.get(key)
    expected = ref.prompt_tokens() if ref is not None else None
    got = x.prompt_tokens()
    if expected is None:
        return CheckResult(Status.NOT_APPLICABLE, "the reference reported no prompt_tokens", bar)
    if got is None:
        return CheckResult(Status.FAIL, "no prompt_tokens", bar, [evidence(key, x)])
    ok = expected <= got <= expected + PROMPT_TOKEN_SLACK
    figure = f"prompt_tokens {got} vs reference {expected} ({got - expected:+d})"
    found = [] if ok else [evidence(key, x, prompt_tokens=got, reference_prompt_tokens=expected)]
    return CheckResult(Status.PASS if ok else Status.FAIL, figure, bar, found)


PROMPT_TOKENS = Check(
    id="usage.prompt_tokens",
    family="token accounting",
    checks="the same conversation costs the reference's prompt_tokens (+3 at most)",
    why="a different count means a different chat template (or a padded bill): the model "
    "then sees a prompt it was not trained on",
    plan=_plan_prompt_tokens,
    judge=_judge_prompt_tokens,
    needs_reference=True,
    bar_rule=BarRule.REFERENCE_FIGURE,
    bar=f"the reference's prompt_tokens for the same conversation, up to {PROMPT_TOKEN_SLACK} "
    "more (framing tokens); any fewer fails (part of the conversation was dropped)",
)


OVERCHARGE_BAR = 0.02  # 2% either way: rounding and an end-of-turn token, nothing more
CHUNK_SLACK = 2  # tokens: a role chunk, an end token


def _plan_completion(ctx: PlanContext) -> list[Request]:
    return streaming.plan_first_pairs(ctx)  # requests streaming.pairs sends: no extra cost


def _overcharges(inp: CheckInput) -> list[tuple[str, Exchange, int, int, str]]:
    """(key, exchange, billed, returned, how) for every answer whose returned tokens parity
    can count: against the reference's count for the same text (plain answers), or the
    stream's token chunks (engines stream one token per chunk, but a chunk may carry
    several: vLLM merges deltas when its API server falls behind, so the chunks are a lower
    bound on the tokens returned, and only a bill below them is judged: `_off`)."""
    found = []
    for key, x in inp.exchanges.items():
        billed = x.completion_tokens()
        if not x.ok or billed is None:
            continue
        ref = inp.reference.get(key) if inp.reference is not None else None
        if ref is not None and ref.ok and ref.text == x.text and ref.reasoning == x.reasoning:
            ref_billed = ref.completion_tokens()
            if ref_billed is not None:
                found.append((key, x, billed, ref_billed, "the reference's count, same text"))
                continue
        if x.stream and x.timings.token_chunks:
            returned = len(x.timings.token_chunks)
            found.append((key, x, billed, returned, "streamed token chunks"))
    return found


def _off(billed: int, returned: int, how: str) -> bool:
    """Is the bill off the count? Against the reference's count: either way, beyond the bar.
    Against stream chunks (a lower bound on the tokens returned): only a bill below them."""
    if how.startswith("streamed"):
        return returned - billed > returned * OVERCHARGE_BAR + CHUNK_SLACK
    return abs(billed - returned) > returned * OVERCHARGE_BAR + 0.5


def _judge_completion(inp: CheckInput) -> CheckResult:
    if (failed := all_failed(inp)) is not None:
        return failed
    counted = _overcharges(inp)
    bar = (
        f"billed within ±{OVERCHARGE_BAR:.0%} of the reference's count for the same text (an "
        "over- or undercount fails); "
        f"not below the stream's token chunks (-{OVERCHARGE_BAR:.0%} - {CHUNK_SLACK} tokens)"
    )
    if not counted:
        return not_applicable(
            "nothing to count against: no usage, or no reference with the same text and no "
            "usage in streams",
            bar,
        )
    billed = sum(c[2] for c in counted)
    returned = sum(c[3] for c in counted)
    over = (billed - returned) / max(returned, 1)
    bad = [
        evidence(k, x, billed=b, returned=r, counted_by=how)
        for k, x, b, r, how in counted
        if _off(b, r, how)
    ]
    how = sorted({c[4] for c in counted})
    figure = f"billed {billed} vs {returned} returned ({over:+.1%}; {', '.join(how)})"
    return result(not bad, figure, bar, bad)


COMPLETION_TOKENS = Check(
    id="usage.completion_tokens",
    family="token accounting",
    checks="completion_tokens matches the tokens actually returned (the reference's count "
    "for the same text, either way; else not below the stream's token chunks); the "
    "difference in %",
    why="output tokens are most of the bill; a provider that bills more than it returns "
    "overcharges on every request, and one that bills less counts with another tokenizer "
    "(or hides tokens), so its bill cannot be audited either",
    plan=_plan_completion,
    judge=_judge_completion,
    bar_rule=BarRule.REFERENCE_FIGURE,
    bar=f"billed within ±{OVERCHARGE_BAR:.0%} of the reference's count for the same text: over- "
    "and undercounts both fail; else not below the stream's token chunks (a chunk carries "
    f"at least one token; {OVERCHARGE_BAR:.0%} + {CHUNK_SLACK} tokens of slack)",
)

USAGE_CHECKS = [REPORTED, STREAMED, PROMPT_TOKENS, COMPLETION_TOKENS]
