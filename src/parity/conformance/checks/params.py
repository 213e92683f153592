"""Sampling parameters: are they honoured as the OpenAI API defines them?"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping

from parity.conformance import agreement as agree
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
    outage,
    request,
    result,
)
from parity.core.exchange import Exchange
from parity.core.request import Request, user

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
    bar=f"exactly {MAX_TOKENS} completion tokens and finish_reason 'length', every time (a cap "
    "is no sampling: nondeterminism does not move it)",
)


STOP_PROMPT = user("Write two sentences about the sea.")
STOP = ["e"]  # any English sentence about the sea contains an "e"


def _plan_stop(ctx: PlanContext) -> list[Request]:
    body = {"messages": STOP_PROMPT, "stop": STOP, "max_tokens": 48, "temperature": 0}
    return [request("params.stop", "0", body)]


def _judge_stop(inp: CheckInput) -> CheckResult:
    if (failed := all_failed(inp)) is not None:
        return failed
    key, x = next(iter(inp.exchanges.items()))
    leaked = [s for s in STOP if s in x.text]
    ok = x.ok and not leaked and x.finish_reason == "stop"
    figure = f"text {x.text[:40]!r}, finish_reason {x.finish_reason!r}"
    found = [] if ok else [evidence(key, x, stop=STOP, leaked=leaked)]
    return result(ok, figure, f"no {STOP} in the text, finish_reason 'stop'", found)


STOP_CHECK = Check(
    id="params.stop",
    family="sampling parameters",
    checks='stop=["e"] on a sentence about the sea ends the answer before the first "e", '
    "with finish_reason 'stop'",
    why="agents and parsers rely on stop sequences to end turns; an ignored stop runs on and "
    "bills the extra tokens",
    plan=_plan_stop,
    judge=_judge_stop,
    bar=f"no {STOP} in the text, finish_reason 'stop'",
)

SAMPLE_PROMPT = user("Tell me a one-line story about a fox.")
REPEATS = 6
DIVERSE = 6
SAMPLE_TOKENS = 64  # room for a reasoning model's default thinking plus some answer


def _samples(group: str, n: int, **settings: float) -> list[Request]:
    body = {"messages": SAMPLE_PROMPT, "max_tokens": SAMPLE_TOKENS, **settings}
    return [request("params.samples", f"{group}/{i}", body) for i in range(n)]


def _group(exchanges: Mapping[str, Exchange], group: str) -> list[Exchange]:
    prefix = f"conformance/params.samples/{group}/"
    return [x for k, x in sorted(exchanges.items()) if k.startswith(prefix) and x.ok]


def output(x: Exchange) -> str:
    """What a sample said: reasoning and answer (a reasoning model samples both)."""
    return x.reasoning + "\n" + x.text


def agreement(texts: list[str]) -> float:
    """Share of texts equal to the most common one (1.0: all the same)."""
    if not texts:
        return 0.0
    return Counter(texts).most_common(1)[0][1] / len(texts)


def _tally(exchanges: Mapping[str, Exchange] | None, group: str) -> agree.Tally:
    """Repeat agreement of a sample group (see `agreement.repeats`); 0/0 without answers."""
    if exchanges is None:
        return agree.Tally(0, 0)
    return agree.repeats([output(x) for x in _group(exchanges, group)])


def _hot_plan() -> list[Request]:
    return _samples("hot", DIVERSE, temperature=1.5, top_p=1.0)


def _plan_zero(ctx: PlanContext) -> list[Request]:
    # The T=1.5 samples are params.diversity's (sent once): the reference's own baseline.
    return _samples("t0", REPEATS, temperature=0) + _hot_plan()


def _judge_zero(inp: CheckInput) -> CheckResult:
    if (failed := all_failed(inp)) is not None:
        return failed
    zero = _group(inp.exchanges, "t0")
    rate = agreement([output(x) for x in zero])
    mine = agree.repeats([output(x) for x in zero])
    figure = f"agreement {rate:.2f} over {len(zero)} repeats"
    ref = _tally(inp.reference, "t0")
    if ref.total:
        # A GPU reference need not be bit-reproducible: hold the provider to its own rate.
        p = agree.p_below(mine, ref)
        ok = p >= agree.ALPHA
        figure += f" ({mine} vs the reference's {ref}, {agree.p_text(p)})"
        bar = (
            f"not significantly below the reference's {ref} (one-sided Boschloo, "
            f"p >= {agree.ALPHA})"
        )
    else:
        hot = _tally(inp.exchanges, "hot")
        p = agree.p_below(hot, mine)
        ok = mine.exact or p < agree.ALPHA
        figure += f" ({mine}; {hot} at T=1.5, {agree.p_text(p)})"
        bar = (
            "all equal, or significantly more often than at T=1.5 (its own expected "
            f"agreement; one-sided Boschloo, p < {agree.ALPHA})"
        )
    found = [] if ok else [evidence(k, x) for k, x in inp.exchanges.items() if "/t0/" in k]
    return result(ok, figure, bar, found)


TEMPERATURE_ZERO = Check(
    id="params.temperature_zero",
    family="sampling parameters",
    checks=f"{REPEATS} repeats at temperature 0 agree as often as the reference's do",
    why="temperature 0 is how evals and caches get repeatable answers; a provider that "
    "ignores it samples at its default",
    plan=_plan_zero,
    judge=_judge_zero,
    bar_rule=BarRule.REPEAT_AGREEMENT,
    bar=f"agreement of {REPEATS} repeats not significantly below the reference's (one-sided "
    "Boschloo, p >= 0.05); the reference itself, or a provider without one: all equal, or "
    f"significantly more alike than {DIVERSE} samples at T=1.5",
)


def _plan_diversity(ctx: PlanContext) -> list[Request]:
    return _hot_plan() + _samples("narrow", DIVERSE, temperature=1.5, top_p=0.01)


def _judge_diversity(inp: CheckInput) -> CheckResult:
    if (failed := all_failed(inp)) is not None:
        return failed
    hot_x = _group(inp.exchanges, "hot")
    hot = len({output(x) for x in hot_x})
    narrow = agreement([output(x) for x in _group(inp.exchanges, "narrow")])
    mine_hot, mine_narrow = _tally(inp.exchanges, "hot"), _tally(inp.exchanges, "narrow")
    ref_hot, ref_narrow = _tally(inp.reference, "hot"), _tally(inp.reference, "narrow")
    figure = f"{hot}/{DIVERSE} distinct at T=1.5; {narrow:.2f} agreement at T=1.5 top_p=0.01"
    if ref_hot.total:
        # At T=1.5 as varied as the reference: not significantly more alike than its samples.
        p_hot = agree.p_below(ref_hot, mine_hot)
        hot_ok = p_hot >= agree.ALPHA
        hot_bar = f"T=1.5 not significantly more alike than the reference's {ref_hot}"
    else:
        hot_ok, hot_bar = hot >= 2, ">= 2 distinct at T=1.5"
    if ref_narrow.total:
        # top_p=0.01 keeps only the most likely token: as repeatable as the reference there.
        p_narrow = agree.p_below(mine_narrow, ref_narrow)
        narrow_ok = p_narrow >= agree.ALPHA
        narrow_bar = f"top_p=0.01 not significantly less alike than the reference's {ref_narrow}"
    else:
        # Its own expected agreement: top_p=0.01 far more alike than top_p=1 at the same T.
        p_narrow = agree.p_below(mine_hot, mine_narrow)
        narrow_ok = mine_narrow.exact or p_narrow < agree.ALPHA
        narrow_bar = "top_p=0.01 all equal, or significantly more alike than top_p=1"
    ok = hot_ok and narrow_ok
    found = [] if ok else [{"distinct_hot": hot, "agreement_narrow": narrow}]
    bar = f"{hot_bar}; {narrow_bar} (one-sided Boschloo, alpha {agree.ALPHA})"
    return result(ok, figure, bar, found)


DIVERSITY = Check(
    id="params.diversity",
    family="sampling parameters",
    checks="temperature 1.5 gives answers as varied as the reference's, and top_p=0.01 at the "
    "same temperature answers as repeatably as the reference does",
    why="a provider that drops temperature or top_p serves another sampler than you asked for",
    plan=_plan_diversity,
    judge=_judge_diversity,
    bar_rule=BarRule.REPEAT_AGREEMENT,
    bar=f"{DIVERSE} samples each: at T=1.5 not significantly more alike than the reference's, "
    "at top_p=0.01 not significantly less alike (one-sided Boschloo, alpha 0.05); without a "
    "reference: >= 2 distinct at T=1.5, and top_p=0.01 all equal or significantly more alike "
    "than top_p=1",
)


SEEDS = (11, 12, 13, 14, 15, 16)  # six pairs: enough to tell a rate, not only "all equal"


def _plan_seed(ctx: PlanContext) -> list[Request]:
    return [
        request(
            "params.seed",
            f"{seed}/{i}",
            {
                "messages": SAMPLE_PROMPT,
                "max_tokens": SAMPLE_TOKENS,
                "temperature": 1.0,
                "seed": seed,
            },
        )
        for seed in SEEDS
        for i in range(2)
    ]


def _seeded(exchanges: Mapping[str, Exchange], seed: int, i: int) -> str | None:
    x = exchanges.get(f"conformance/params.seed/{seed}/{i}")
    return output(x) if x is not None and x.ok else None


def seed_tallies(exchanges: Mapping[str, Exchange]) -> tuple[agree.Tally, agree.Tally]:
    """(same-seed pairs, pairs of different seeds): the second ask of each seed against the
    first ask of the next seed, which is what sampling agrees by chance."""
    same: list[tuple[str | None, str | None]] = []
    cross: list[tuple[str | None, str | None]] = []
    for n, seed in enumerate(SEEDS):
        a, b = _seeded(exchanges, seed, 0), _seeded(exchanges, seed, 1)
        if a is not None and b is not None:
            same.append((a, b))
        c = _seeded(exchanges, SEEDS[(n + 1) % len(SEEDS)], 0)
        if b is not None and c is not None:
            cross.append((b, c))
    return agree.pairs(same), agree.pairs(cross)


def _judge_seed(inp: CheckInput) -> CheckResult:
    if (failed := all_failed(inp)) is not None:
        return failed
    same, cross = seed_tallies(inp.exchanges)
    figure = f"{same} same-seed pairs equal"
    ref_same, ref_cross = seed_tallies(inp.reference) if inp.reference is not None else (None, None)
    if ref_same is not None and ref_cross is not None and ref_same.total:
        if ref_same.agree == 0 or ref_same.rate <= ref_cross.rate:
            return not_applicable(
                f"the reference does not reproduce a seed ({ref_same} same-seed pairs equal, "
                f"{ref_cross} of different seeds)"
            )
        p = agree.p_below(same, ref_same)
        ok = same.total > 0 and p >= agree.ALPHA
        figure += f" vs the reference's {ref_same} ({agree.p_text(p)})"
        bar = (
            f"not significantly below the reference's {ref_same} (one-sided Boschloo, "
            f"p >= {agree.ALPHA})"
        )
    else:
        p = agree.p_below(cross, same)
        ok = same.exact or p < agree.ALPHA
        if not same.exact:
            figure += f"; {cross} of different seeds ({agree.p_text(p)})"
        bar = (
            "all equal, or significantly more often than pairs of different seeds (its own "
            f"expected agreement; one-sided Boschloo, p < {agree.ALPHA})"
        )
    found = [] if ok else [evidence(k, x) for k, x in inp.exchanges.items()]
    return result(ok, figure, bar, found)


SEED = Check(
    id="params.seed",
    family="sampling parameters",
    checks="two requests with the same seed at temperature 1 give the same answer as often "
    "as the reference's do",
    why="seeded sampling is how a sampled eval is replayed; a dropped seed makes every audit "
    "unrepeatable",
    plan=_plan_seed,
    judge=_judge_seed,
    bar_rule=BarRule.REPEAT_AGREEMENT,
    bar=f"{len(SEEDS)} same-seed pairs agree not significantly less often than the reference's "
    "(one-sided Boschloo, p >= 0.05; n/a where the reference never reproduces a seed); the "
    "reference itself, or a provider without one: all equal, or significantly more often "
    "than pairs of different seeds",
)


def _plan_n(ctx: PlanContext) -> list[Request]:
    body = {"messages": SAMPLE_PROMPT, "max_tokens": SAMPLE_TOKENS, "temperature": 1.0, "n": 2}
    return [request("params.n", "2", body)]


def choices_count(x: Exchange) -> int | None:
    """How many choices a non-streamed response carried (None: no JSON body)."""
    try:
        data = json.loads(x.raw or "")
    except ValueError:
        return None
    choices = data.get("choices") if isinstance(data, dict) else None
    return len(choices) if isinstance(choices, list) else None


def _judge_n(inp: CheckInput) -> CheckResult:
    if (down := outage(inp.exchanges)) is not None:
        return down
    key, x = next(iter(inp.exchanges.items()))
    if x.status is not None and 400 <= x.status < 500 and x.status != 429:
        return result(False, f"n=2 refused with HTTP {x.status}", "2 choices", [evidence(key, x)])
    if (failed := all_failed(inp)) is not None:
        return failed
    got = choices_count(x)
    ref = inp.reference.get(key) if inp.reference is not None else None
    if ref is not None and ref.ok and choices_count(ref) != 2:
        return not_applicable("the reference does not honour n either (an engine limit)")
    found = [] if got == 2 else [evidence(key, x, choices=got)]
    return result(got == 2, f"{got} choices for n=2", "2 choices", found)


N_CHECK = Check(
    id="params.n",
    family="sampling parameters",
    checks="n=2 returns two choices",
    why="best-of-n and self-consistency pay for n answers in one prompt; a provider that "
    "returns one silently halves what you get",
    plan=_plan_n,
    judge=_judge_n,
    required=False,
    bar="2 choices (n/a where the reference returns fewer: an engine limit)",
)

TOP_LOGPROBS = 3


def _plan_logprobs(ctx: PlanContext) -> list[Request]:
    body = {
        "messages": SAMPLE_PROMPT,
        "max_tokens": 64,
        "reasoning_effort": "low",  # leaves a reasoning model room for answer tokens
        "temperature": 0,
        "logprobs": True,
        "top_logprobs": TOP_LOGPROBS,
    }
    return [request("params.logprobs", "0", body)]


def logprob_problems(x: Exchange) -> list[str]:
    """What is wrong with a response's `choices[0].logprobs` (empty list: well formed)."""
    try:
        data = json.loads(x.raw or "")
        content = data["choices"][0]["logprobs"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        return ["no choices[0].logprobs.content"]
    if not isinstance(content, list) or not content:
        return ["logprobs.content is empty"]
    problems = []
    for i, entry in enumerate(content):
        top = entry.get("top_logprobs") if isinstance(entry, dict) else None
        lp = entry.get("logprob") if isinstance(entry, dict) else None
        if not isinstance(lp, int | float) or lp > 1e-6:
            problems.append(f"token {i}: logprob {lp!r} is not <= 0")
        if not isinstance(top, list) or len(top) != TOP_LOGPROBS:
            problems.append(
                f"token {i}: {len(top) if isinstance(top, list) else 'no'} "
                f"top_logprobs, asked {TOP_LOGPROBS}"
            )
            continue
        raw = [t.get("logprob") if isinstance(t, dict) else None for t in top]
        values = [float(v) for v in raw if isinstance(v, int | float)]
        if len(values) != len(top):
            problems.append(f"token {i}: top_logprobs without numbers")
            continue
        if values != sorted(values, reverse=True):
            problems.append(f"token {i}: top_logprobs not sorted")
        if sum(math.exp(min(v, 1.0)) for v in values) > 1.001:
            problems.append(f"token {i}: top_logprobs sum to more than probability 1")
    return problems


def _judge_logprobs(inp: CheckInput) -> CheckResult:
    if (failed := all_failed(inp)) is not None:
        return failed
    key, x = next(iter(inp.exchanges.items()))
    problems = logprob_problems(x)
    figure = "well formed" if not problems else problems[0]
    found = [evidence(key, x, problems=problems[:5])] if problems else []
    bar = f"per token: logprob <= 0, {TOP_LOGPROBS} sorted top_logprobs, probabilities <= 1"
    return result(not problems, figure, bar, found)


LOGPROBS = Check(
    id="params.logprobs",
    family="sampling parameters",
    checks=f"logprobs with top_logprobs={TOP_LOGPROBS} come back per token, sorted, "
    "normalised (probabilities sum to at most 1)",
    why="logprobs drive classifiers, calibration and parity's own equivalence test; "
    "missing or unnormalised ones silently break them",
    plan=_plan_logprobs,
    judge=_judge_logprobs,
    bar=f"per token: logprob <= 0, {TOP_LOGPROBS} sorted top_logprobs, probabilities <= 1",
)

PARAMS_CHECKS = [MAX_TOKENS_CHECK, STOP_CHECK, TEMPERATURE_ZERO, DIVERSITY, SEED, N_CHECK, LOGPROBS]
