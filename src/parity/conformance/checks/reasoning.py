"""Reasoning: does `reasoning_effort` change how much the model thinks, and is the thinking
returned where clients look for it?

The brief's old engine ignored `reasoning_effort`: every request reasoned at the default
effort, and accuracy fell from 93% to 80%. `reasoning.effort` catches that with Page's
trend test (one-sided, ordered alternative low < medium < high) over a handful of prompts:
each prompt is a block, and the test asks whether reasoning length rises with effort.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from scipy.stats import page_trend_test, wilcoxon

from parity.conformance.agreement import p_text
from parity.conformance.base import (
    BarRule,
    Check,
    CheckInput,
    CheckResult,
    PlanContext,
    all_failed,
    evidence,
    not_applicable,
    request,
    result,
)
from parity.core.exchange import Exchange
from parity.core.request import Request, user

EFFORTS = ("low", "medium", "high")
PROMPTS = [
    "How many times does the letter r occur in 'strawberry'? Answer with a number.",
    "What is 17 * 23? Answer with a number.",
    "A bat and a ball cost $1.10; the bat costs $1.00 more than the ball. "
    "What does the ball cost in cents? Answer with a number.",
    "Is 221 a prime number? Answer yes or no.",
]
MAX_TOKENS = 1024  # enough to rank efforts; a capped "high" still ranks above "medium"
ALPHA = 0.05
CHARS_PER_TOKEN = 4  # only when a provider reports no reasoning_tokens
LEAK_MARKERS = ("<|channel|>", "<think>", "</think>", "<|start|>", "analysis<|message|>")
PREFIX = "conformance/reasoning.efforts"


def _plan(ctx: PlanContext) -> list[Request]:
    return [
        request(
            "reasoning.efforts",
            f"{i}/{effort}",
            {"messages": user(prompt), "reasoning_effort": effort, "max_tokens": MAX_TOKENS},
        )
        for i, prompt in enumerate(PROMPTS)
        for effort in EFFORTS
    ]


def reasoning_tokens(x: Exchange) -> tuple[float | None, str]:
    """How much the answer reasoned, and from where: usage's `reasoning_tokens` when the
    provider reports it, else the reasoning text's length in characters / 4."""
    details = (x.usage or {}).get("completion_tokens_details") or {}
    reported = details.get("reasoning_tokens") if isinstance(details, dict) else None
    if isinstance(reported, int) and (reported > 0 or not x.reasoning):
        return float(reported), "usage.reasoning_tokens"
    if x.reasoning or x.ok:  # an answer without reasoning reasoned for 0 tokens
        return len(x.reasoning) / CHARS_PER_TOKEN, "reasoning text length"
    return None, "none"


def reasons(exchanges: Mapping[str, Exchange]) -> bool:
    """True when any answer carried reasoning (text or a positive reasoning_tokens)."""
    return any((reasoning_tokens(x)[0] or 0) > 0 for x in exchanges.values() if x.ok)


def _no_reasoning(inp: CheckInput) -> CheckResult | None:
    """n/a when the model shows no reasoning at all (judged on the reference when there is
    one); FAIL when the reference reasons and the provider does not."""
    if inp.reference is not None:
        if not reasons(inp.reference):
            return not_applicable("the reference returns no reasoning (the model does not reason)")
        if not reasons(inp.exchanges):
            found = [evidence(k, x) for k, x in list(inp.exchanges.items())[:2]]
            return result(False, "no reasoning returned; the reference reasons", "present", found)
    elif not reasons(inp.exchanges):
        return not_applicable("no reasoning returned (the model does not reason, or it is hidden)")
    return None


def _lengths(
    exchanges: Mapping[str, Exchange], text_only: bool = False
) -> tuple[dict[tuple[int, str], float], str]:
    """Reasoning tokens by (prompt, effort) for the answers that came back, and the source
    (`text_only`: every length from the reasoning text, never from usage)."""
    found: dict[tuple[int, str], float] = {}
    source = "none"
    for i in range(len(PROMPTS)):
        for effort in EFFORTS:
            x = exchanges.get(f"{PREFIX}/{i}/{effort}")
            if x is None or not x.ok:
                continue
            tokens: float | None
            if text_only:
                tokens, how = len(x.reasoning) / CHARS_PER_TOKEN, "reasoning text length"
            else:
                tokens, how = reasoning_tokens(x)
            if tokens is not None:
                found[(i, effort)] = tokens
            source = how if how != "none" else source
    return found, source


def _comparable_lengths(
    mine: Mapping[str, Exchange], reference: Mapping[str, Exchange]
) -> tuple[dict[tuple[int, str], float], dict[tuple[int, str], float]]:
    """Both sides' lengths on one scale: usage's reasoning_tokens where every answer of both
    reports it, else the reasoning text's length (a provider that drops usage has not
    reasoned less)."""

    def counted(exchanges: Mapping[str, Exchange]) -> bool:
        return all(
            reasoning_tokens(x)[1] == "usage.reasoning_tokens"
            for k, x in exchanges.items()
            if k.startswith(PREFIX) and x.ok
        )

    text_only = not (counted(mine) and counted(reference))
    return _lengths(mine, text_only)[0], _lengths(reference, text_only)[0]


def length_shift(
    mine: Mapping[tuple[int, str], float], reference: Mapping[tuple[int, str], float]
) -> tuple[float, float, int] | None:
    """(geometric mean of the provider's reasoning length over the reference's, two-sided
    Wilcoxon signed-rank p of the paired log ratios, pairs) over the (prompt, effort) cells
    both answered; None with fewer than 6 such cells."""
    cells = [c for c in mine if c in reference]
    if len(cells) < 6:
        return None
    logs = [math.log((mine[c] + 1) / (reference[c] + 1)) for c in cells]
    ratio = math.exp(sum(logs) / len(logs))
    if all(abs(v) < 1e-12 for v in logs):
        return ratio, 1.0, len(cells)
    return ratio, float(wilcoxon(logs).pvalue), len(cells)


def _judge_effort(inp: CheckInput) -> CheckResult:
    if (failed := all_failed(inp)) is not None:
        return failed
    if (early := _no_reasoning(inp)) is not None:
        return early
    lengths, source = _lengths(inp.exchanges)
    table: list[list[float]] = [
        [lengths[(i, e)] for e in EFFORTS]
        for i in range(len(PROMPTS))
        if all((i, e) in lengths for e in EFFORTS)
    ]
    bar = f"Page trend test low < medium < high, p < {ALPHA}"
    if len(table) < 3:
        return not_applicable(f"only {len(table)} prompts answered at all three efforts", bar)
    means = np.mean(np.array(table), axis=0)
    test = page_trend_test(np.array(table))
    figure = (
        f"mean reasoning {means[0]:.0f} / {means[1]:.0f} / {means[2]:.0f} tokens "
        f"(low/medium/high, {source}), p={test.pvalue:.3g}"
    )
    ok = test.pvalue < ALPHA
    if inp.reference is not None:
        shift = length_shift(*_comparable_lengths(inp.exchanges, inp.reference))
        bar += (
            f"; lengths not significantly different from the reference's on the same prompts "
            f"(two-sided Wilcoxon signed-rank, p >= {ALPHA})"
        )
        if shift is not None:
            ratio, p, cells = shift
            figure += f"; x{ratio:.2f} the reference's length ({cells} cells, {p_text(p)})"
            ok = ok and p >= ALPHA
    found = []
    if not ok:
        found = [
            evidence(k, x, reasoning_tokens=reasoning_tokens(x)[0])
            for k, x in inp.exchanges.items()
            if k.startswith(f"{PREFIX}/0/")
        ]
    return result(ok, figure, bar, found)


EFFORT = Check(
    id="reasoning.effort",
    family="reasoning",
    checks="reasoning_effort low < medium < high in reasoning tokens (one-sided Page trend "
    f"test over {len(PROMPTS)} prompts)",
    why="an engine that ignores reasoning_effort serves one effort for all prices; in the "
    "brief it cost 13 points of AIME accuracy",
    plan=_plan,
    judge=_judge_effort,
    bar_rule=BarRule.REFERENCE_FIGURE,
    bar=f"Page trend test low < medium < high, p < {ALPHA} (fixed); and, with a reference "
    "that reasons, reasoning lengths not significantly different from the reference's on "
    "the same 12 prompt x effort cells (two-sided Wilcoxon signed-rank of the log ratios, "
    "p >= 0.05): thinking cut short, or padded, fails",
)


def _judge_field(inp: CheckInput) -> CheckResult:
    if (failed := all_failed(inp)) is not None:
        return failed
    leaks = [
        evidence(k, x, problem="reasoning markup leaked into the answer")
        for k, x in inp.exchanges.items()
        if x.ok and any(marker in x.text for marker in LEAK_MARKERS)
    ]
    bar = "reasoning in `reasoning` or `reasoning_content`, none in the answer"
    if leaks:
        return result(False, f"{len(leaks)} answers carry raw reasoning markup", bar, leaks)
    if (early := _no_reasoning(inp)) is not None:
        return early
    fields = sorted({x.reasoning_field for x in inp.exchanges.values() if x.reasoning_field})
    missing = [
        evidence(k, x, problem="no reasoning field" if x.ok else "request failed")
        for k, x in inp.exchanges.items()
        if not x.ok or not x.reasoning
    ]
    n = len(inp.exchanges)
    figure = f"{n - len(missing)}/{n} answers carry reasoning in {', '.join(fields) or 'no field'}"
    return result(not missing, figure, bar, missing)


FIELD = Check(
    id="reasoning.field",
    family="reasoning",
    checks="reasoning comes back in a `reasoning` or `reasoning_content` field (which one is "
    "noted), never as raw markup inside the answer",
    why="clients hide, log or bill reasoning from that field; markup in the answer breaks "
    "parsers and shows users the model's scratchpad",
    plan=_plan,  # the same requests as reasoning.effort: no extra cost
    judge=_judge_field,
    bar="every answer: reasoning in `reasoning` or `reasoning_content`, no markup in the answer",
)

REASONING_CHECKS = [EFFORT, FIELD]
