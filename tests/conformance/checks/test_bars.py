"""How each bar is set, judged on hand-made exchanges: an honest but nondeterministic
reference and its twin pass (GPU batching, prefix caches, a shared server), a real change
still fails, accounting errs either way, and an outage is an error, never a failure."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from parity.conformance import agreement
from parity.conformance.agreement import Paths, Tally, judge_paths, p_below
from parity.conformance.base import (
    BarRule,
    Check,
    CheckInput,
    CheckResult,
    PlanContext,
    Status,
    outage,
    transport_failure,
    unavailable,
)
from parity.conformance.checks import context, params, reasoning, streaming, tools, usage
from parity.conformance.registry import CHECKS
from parity.core.config import Provider
from parity.core.exchange import ErrorClass, Exchange
from tests.conformance.checks.exchanges import exchange
from tests.docs.markdown_blocks import section

PROVIDER = Provider(name="p", base_url="http://127.0.0.1:1/v1", model="m", context_window=4096)
DOCS = Path(__file__).parents[3] / "docs" / "conformance.md"


def said(text: str, *, reasoning_text: str = "", prompt: int = 10, completion: int = 4) -> Exchange:
    return exchange(
        text=text,
        reasoning=reasoning_text,
        finish_reason="stop",
        usage={
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    )


def keys(check: Check, tries: int = 1) -> list[str]:
    return [r.key for r in check.plan(PlanContext(PROVIDER, tries))]


def judge(
    check: Check,
    mine: dict[str, Exchange],
    reference: dict[str, Exchange] | None = None,
    tries: int = 1,
) -> CheckResult:
    return check.judge(CheckInput(PROVIDER, mine, reference, tries))


# --- the test itself -----------------------------------------------------------------------


def test_boschloo_figures_the_docs_quote() -> None:
    assert p_below(Tally(3, 6), Tally(6, 6)) == pytest.approx(0.034, abs=0.001)
    assert p_below(Tally(0, 6), Tally(4, 6)) == pytest.approx(0.011, abs=0.001)
    assert p_below(Tally(5, 6), Tally(6, 6)) == pytest.approx(0.39, abs=0.01)
    assert p_below(Tally(6, 6), Tally(3, 6)) == 1.0  # not below: no test
    assert p_below(Tally(0, 0), Tally(6, 6)) == 1.0
    assert agreement.repeats(["a", "a", "b", "a"]) == Tally(2, 3)
    assert agreement.repeats(["a", "b", "c"]) == Tally(0, 2)
    assert agreement.pairs([("a", "a"), ("a", "b"), (None, None)]) == Tally(1, 3)
    assert agreement.p_text(0.0004) == "p<0.001" and agreement.p_text(0.0338) == "p=0.034"


def test_paths_are_exact_only_where_both_sides_repeat_themselves() -> None:
    quiet = Paths(Tally(6, 6), Tally(6, 6))
    one_off_but_quiet = Paths(Tally(5, 6), Tally(6, 6))
    noisy = Paths(Tally(5, 6), Tally(4, 6))
    ok, _, bar = judge_paths(one_off_but_quiet, quiet)
    assert not ok and bar.startswith("every pair equal (exact")  # a systematic difference
    ok, suffix, bar = judge_paths(noisy, quiet)
    assert ok and "the reference's 6/6" in bar and "p=0.39" in suffix  # noise explains it
    ok, _, bar = judge_paths(Paths(Tally(2, 6), Tally(4, 6)), quiet)
    assert not ok
    ok, _, bar = judge_paths(one_off_but_quiet, Paths(Tally(4, 6), Tally(5, 6)))
    assert ok and "not significantly below the reference's 4/6" in bar
    ok, _, bar = judge_paths(Paths(Tally(3, 6), Tally(4, 6)), None)
    assert ok and "its own repeat agreement 4/6" in bar


# --- an honest nondeterministic server: the reference and its twin pass ------------------


def noisy(rng: random.Random, agree: float) -> str:
    """One answer of a server that gives its usual answer with probability `agree` (else
    one of two others, as a near-tie token flips under batching)."""
    return "usual" if rng.random() < agree else rng.choice(("flip-a", "flip-b"))


def seed_answers(rng: random.Random, agree: float) -> dict[str, Exchange]:
    out = {}
    for seed in params.SEEDS:
        for i in range(2):
            out[f"conformance/params.seed/{seed}/{i}"] = said(f"fox {seed} {noisy(rng, agree)}")
    return out


def zero_answers(rng: random.Random, agree: float) -> dict[str, Exchange]:
    out = {}
    for key in keys(params.TEMPERATURE_ZERO):
        group = key.split("/")[-2]
        text = noisy(rng, agree) if group == "t0" else f"story {rng.random()}"
        out[key] = said(text)
    return out


def pair_answers(rng: random.Random, agree: float) -> dict[str, Exchange]:
    return {
        key: said(f"{key.split('/')[2]} {noisy(rng, agree)}") for key in keys(streaming.MATCHES)
    }


NOISY: list[tuple[Check, Callable[[random.Random, float], dict[str, Exchange]]]] = [
    (params.SEED, seed_answers),
    (params.TEMPERATURE_ZERO, zero_answers),
    (streaming.MATCHES, pair_answers),
]


@pytest.mark.parametrize(("check", "answers"), NOISY, ids=[c.id for c, _ in NOISY])
def test_a_nondeterministic_reference_and_its_twin_pass(
    check: Check, answers: Callable[[random.Random, float], dict[str, Exchange]]
) -> None:
    """60 runs of a server whose answers agree 90% of the time: the reference passes its
    own check and its twin passes against it, nearly always (each bar's false alarms are
    at most alpha, 5%); the old "all equal" bars failed most of these runs."""
    rng = random.Random(7)
    runs = 60
    ref_fails = twin_fails = 0
    for _ in range(runs):
        ref, twin = answers(rng, 0.9), answers(rng, 0.9)
        ref_fails += judge(check, ref).status is not Status.PASS
        twin_fails += judge(check, twin, ref).status is not Status.PASS
    assert ref_fails <= runs * 0.1, ref_fails
    assert twin_fails <= runs * 0.1, twin_fails


def test_the_field_reference_passes_its_own_checks_and_still_sets_the_bar() -> None:
    """The shared server of the field report: 2 pairs in 3 equal (4/6 here)."""
    ref = {k: said(f"fox {k.split('/')[-2]}") for k in keys(params.SEED)}
    for seed in params.SEEDS[:2]:  # two of six pairs differ
        ref[f"conformance/params.seed/{seed}/1"] = said("another fox")
    assert judge(params.SEED, ref).status is Status.PASS
    dropped = {k: said(f"fox {k}") for k in keys(params.SEED)}  # every answer different
    result = judge(params.SEED, dropped, ref)
    assert result.status is Status.FAIL  # no longer silenced: held to the reference's 4/6
    assert "vs the reference's 4/6" in result.figure
    pairs = {k: said("same") for k in keys(streaming.MATCHES)}
    pairs["conformance/streaming.pairs/0/stream"] = said("other")
    pairs["conformance/streaming.pairs/1/stream/2"] = said("other")
    assert judge(streaming.MATCHES, pairs).status is Status.PASS


# --- real changes still fail ----------------------------------------------------------------


def test_a_dropped_seed_fails_against_a_deterministic_and_a_noisy_reference() -> None:
    rng = random.Random(1)
    for agree_rate in (1.0, 0.8):
        ref = seed_answers(rng, agree_rate)
        dropped = {k: said(f"fox {rng.random()}") for k in keys(params.SEED)}
        assert judge(params.SEED, dropped, ref).status is Status.FAIL, agree_rate


def test_an_ignored_temperature_fails_against_a_noisy_reference() -> None:
    ref = zero_answers(random.Random(2), 0.8)
    sampled = {k: said(f"story {i}") for i, k in enumerate(keys(params.TEMPERATURE_ZERO))}
    result = judge(params.TEMPERATURE_ZERO, sampled, ref)
    assert result.status is Status.FAIL and "vs the reference's" in result.figure


def test_a_stream_that_differs_systematically_fails_even_on_one_prompt() -> None:
    ref = {k: said("same") for k in keys(streaming.MATCHES)}
    other = dict(ref)  # each path repeats itself exactly, but prompt 2 streams another answer
    for k in ("conformance/streaming.pairs/2/stream", "conformance/streaming.pairs/2/stream/2"):
        other[k] = said("another template")
    result = judge(streaming.MATCHES, other, ref)
    assert result.status is Status.FAIL and result.figure == "4/6 pairs equal"
    assert result.bar.startswith("every pair equal (exact")
    assert len(result.evidence) == 2


def test_a_broken_stream_fails_against_a_noisy_reference() -> None:
    ref = pair_answers(random.Random(3), 0.8)
    broken = {
        k: (
            said("", completion=0)
            if not streaming.is_stream_key(k)
            else exchange(error=ErrorClass.MALFORMED_STREAM, stream=True)
        )
        for k in keys(streaming.MATCHES)
    }
    assert judge(streaming.MATCHES, broken, ref).status is Status.FAIL


def test_a_streamed_tool_call_that_differs_systematically_fails() -> None:
    def call(city: str) -> Exchange:
        arguments = json.dumps({"city": city})
        return exchange(
            finish_reason="tool_calls",
            tool_calls=[
                {"type": "function", "function": {"name": "get_weather", "arguments": arguments}}
            ],
        )

    _, streamed, plain_again, streamed_again = keys(tools.STREAMED)
    ref = {k: call("Paris") for k in keys(tools.STREAMED)}
    assert judge(tools.STREAMED, ref, ref).status is Status.PASS
    systematic = {**ref, streamed: call("Pari"), streamed_again: call("Pari")}
    assert judge(tools.STREAMED, systematic, ref).status is Status.FAIL
    # A server that flips on a repeat too: the difference is its noise, not a broken stream.
    flaky = {**ref, streamed: call("Paris, France"), plain_again: call("Paris, France")}
    assert judge(tools.STREAMED, flaky, ref).status is Status.PASS


def tool_answers(tries: int, missing: int = 0) -> dict[str, Exchange]:
    """Every tool case answered as expected over `tries`, but `missing` trigger attempts
    come back without their call."""
    out = {}
    dropped = 0
    for key in keys(tools.TRIGGER, tries):
        case = tools.CASES_BY_NAME[key.split("/")[-2]]
        if case.expected_tool is None:
            out[key] = said("a haiku")
        elif dropped < missing:
            dropped += 1
            out[key] = said("I cannot look that up.")
        else:
            arguments = '{"city": "Paris"}'
            out[key] = exchange(
                finish_reason="tool_calls",
                tool_calls=[
                    {
                        "type": "function",
                        "function": {"name": case.expected_tool, "arguments": arguments},
                    }
                ],
            )
    return out


def test_tool_call_rate_below_the_reference_fails_where_f1_alone_lets_it_through() -> None:
    ref = tool_answers(3)
    # 4 of 18 calls missing: F1 28/32 = 0.875 clears the 0.85 bar; the call rate does not.
    result = judge(tools.TRIGGER, tool_answers(3, missing=4), ref, tries=3)
    assert result.status is Status.FAIL and result.figure.startswith("F1 0.88")
    assert "calls where a tool fits 14/18 vs the reference's 18/18" in result.figure
    assert judge(tools.TRIGGER, tool_answers(3, missing=1), ref, tries=3).status is Status.PASS


def reasoned(tokens: dict[str, float]) -> dict[str, Exchange]:
    out = {}
    for key in keys(reasoning.EFFORT):
        n = int(tokens[key.rsplit("/", 1)[-1]] * (1 + int(key.split("/")[-2]) / 10))
        x = said("42", reasoning_text="t" * n * reasoning.CHARS_PER_TOKEN)
        x.reasoning_field = "reasoning_content"
        out[key] = x
    return out


def test_reasoning_cut_short_fails_though_it_still_rises_with_effort() -> None:
    ref = reasoned({"low": 200, "medium": 600, "high": 1800})
    halved = reasoned({"low": 100, "medium": 300, "high": 900})
    result = judge(reasoning.EFFORT, halved, ref)
    assert result.status is Status.FAIL and "x0.50 the reference's length" in result.figure
    assert judge(reasoning.EFFORT, halved).status is Status.PASS  # no reference: trend only
    # Sampling noise both ways (x1.25 and x0.8 alternately) is no shift.
    jitter = {}
    for i, (key, x) in enumerate(ref.items()):
        factor = 1.25 if i % 2 else 0.8
        y = said("42", reasoning_text="t" * int(len(x.reasoning) * factor))
        y.reasoning_field = "reasoning_content"
        jitter[key] = y
    assert judge(reasoning.EFFORT, jitter, ref).status is Status.PASS


def test_context_truncation_of_five_percent_fails() -> None:
    needles = {
        k: said(context.NEEDLES[float(k.rsplit("/", 1)[-1])][1], prompt=3700)
        for k in keys(context.ADVERTISED)
    }
    cut = {k: said(x.text, prompt=3515) for k, x in needles.items()}  # 5% of the document gone
    result = judge(context.ADVERTISED, cut, needles)
    assert result.status is Status.FAIL and "silently truncated" in result.figure
    assert context.truncation_floor(3700) == 3626 and context.truncation_floor(1000) == 968


# --- accounting errs either way ------------------------------------------------------------


def test_completion_tokens_undercount_fails_like_an_overcharge() -> None:
    ref = {k: said("Red, yellow, blue.", completion=10) for k in keys(usage.COMPLETION_TOKENS)}
    under = {k: said("Red, yellow, blue.", completion=8) for k in ref}
    result = judge(usage.COMPLETION_TOKENS, under, ref)
    assert result.status is Status.FAIL and "-20.0%" in result.figure
    assert "undercount" in result.bar
    near = {k: said("Red, yellow, blue.", completion=10) for k in ref}
    assert judge(usage.COMPLETION_TOKENS, near, ref).status is Status.PASS


def test_prompt_tokens_fewer_than_the_reference_fails_by_one_token() -> None:
    (k,) = keys(usage.PROMPT_TOKENS)
    ref = {k: said("", prompt=35)}
    result = judge(usage.PROMPT_TOKENS, {k: said("", prompt=34)}, ref)
    assert result.status is Status.FAIL and "(-1)" in result.figure
    assert judge(usage.PROMPT_TOKENS, {k: said("", prompt=38)}, ref).status is Status.PASS
    assert judge(usage.PROMPT_TOKENS, {k: said("", prompt=39)}, ref).status is Status.FAIL


# --- an outage is an error, never a failure -----------------------------------------------


def down(kind: str) -> Exchange:
    if kind == "502":
        return exchange(status=502, error=ErrorClass.HTTP_5XX, error_detail="HTTP 502")
    if kind == "504":
        return exchange(status=504, error=ErrorClass.HTTP_5XX, error_detail="HTTP 504")
    if kind == "timeout":
        return exchange(status=None, error=ErrorClass.TIMEOUT, error_detail="timed out")
    return exchange(status=None, error=ErrorClass.CONNECT, error_detail="connection refused")


@pytest.mark.parametrize("kind", ["502", "504", "timeout", "connect"])
@pytest.mark.parametrize("check", CHECKS, ids=[c.id for c in CHECKS])
def test_no_answer_at_all_is_an_error_never_a_failure(check: Check, kind: str) -> None:
    mine = {k: down(kind) for k in keys(check)}
    ref = {k: said("fine") for k in keys(check)}
    for reference in (None, ref):
        result = judge(check, mine, reference)
        assert result.status is Status.ERROR, (check.id, result)
        assert result.figure.startswith("unavailable: no answer to"), result.figure


def test_a_500_or_a_refusal_is_not_an_outage() -> None:
    assert transport_failure(down("502")) and transport_failure(down("timeout"))
    assert not transport_failure(exchange(status=500, error=ErrorClass.HTTP_5XX))
    assert not transport_failure(exchange(status=400, error=ErrorClass.HTTP_4XX))
    assert not transport_failure(exchange(status=429, error=ErrorClass.RATE_LIMITED))
    assert outage({"a": exchange(status=500, error=ErrorClass.HTTP_5XX)}) is None
    assert outage({}) is None
    assert outage({"a": down("502"), "b": said("ok")}) is None


def test_a_provider_marked_unavailable_errors_where_its_verdict_rests_on_the_outage() -> None:
    why = "unavailable: 3 consecutive transport failures"
    assert unavailable(2, {"a": said("ok"), "b": said("ok")}, why) is None
    held = unavailable(3, {"a": said("ok")}, why)
    assert held is not None and held.status is Status.ERROR
    assert (
        held.figure
        == "unavailable: 3 consecutive transport failures; 2 of its 3 request(s) not sent"
    )
    failed = unavailable(2, {"a": said("ok"), "b": down("504")}, why)
    assert failed is not None and "1 without an answer (HTTP 504)" in failed.figure


# --- how the bar is set: said by every check, and in the docs ----------------------------


def test_every_check_says_how_its_bar_is_set() -> None:
    for check in CHECKS:
        assert check.bar and check.bar == check.bar.strip(), check.id
        assert isinstance(check.bar_rule, BarRule)
    rules = {c.id: c.bar_rule for c in CHECKS}
    for check_id in (
        "params.seed",
        "params.temperature_zero",
        "params.diversity",
        "streaming.matches_plain",
        "tools.streamed",
        "tools.trigger",
    ):
        assert rules[check_id] is BarRule.REPEAT_AGREEMENT, check_id
    for check_id in (
        "usage.prompt_tokens",
        "usage.completion_tokens",
        "reasoning.effort",
        "context.advertised",
    ):
        assert rules[check_id] is BarRule.REFERENCE_FIGURE, check_id


def test_the_docs_table_has_each_checks_rule_and_cost() -> None:
    text = section(DOCS.read_text(encoding="utf-8"), "## The checks")
    header = next(line for line in text.splitlines() if line.startswith("| id |"))
    columns = [c.strip() for c in header.strip("|").split("|")]
    assert "how the bar is set" in columns
    rule_at, cost_at = (
        columns.index("how the bar is set"),
        columns.index(next(c for c in columns if c.startswith("requests"))),
    )
    rows: dict[str, list[str]] = {}
    for line in text.splitlines():
        found = re.match(r"\| `([a-z_.]+)`", line)
        if found:
            rows[found.group(1)] = [c.strip() for c in line.strip("|").split("|")]
    for check in CHECKS:
        cells = rows[check.id]
        assert cells[rule_at].startswith(check.bar_rule.value), check.id
        cost = int(cells[cost_at].split()[0])
        assert cost == check.cost(PlanContext(PROVIDER)), check.id


def test_reasoning_lengths_are_compared_on_one_scale() -> None:
    """A provider that drops usage is measured by its reasoning text, and so then is the
    reference: the same thinking, counted another way, is no shift."""
    ref = reasoned({"low": 200, "medium": 600, "high": 1800})
    for x in ref.values():
        assert x.usage is not None
        x.usage["completion_tokens_details"] = {"reasoning_tokens": len(x.reasoning) // 2}
    no_usage = reasoned({"low": 200, "medium": 600, "high": 1800})
    for x in no_usage.values():
        x.usage = None
    assert judge(reasoning.EFFORT, no_usage, ref).status is Status.PASS
