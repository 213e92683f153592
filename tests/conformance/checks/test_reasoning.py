"""The reasoning checks judged on hand-made exchanges: where the reasoning count comes from,
the effort trend test, and where the reasoning is returned."""

from typing import Any

from parity.conformance.base import Check, CheckInput, CheckResult, PlanContext, Status
from parity.conformance.checks import reasoning
from parity.core.config import Provider
from parity.core.exchange import ErrorClass, Exchange
from tests.conformance.checks.exchanges import exchange

PROVIDER = Provider(name="p", base_url="http://127.0.0.1:1/v1", model="m")
KEYS = [r.key for r in reasoning.EFFORT.plan(PlanContext(PROVIDER))]
RISING = {"low": 100, "medium": 400, "high": 1200}  # reasoning tokens per effort


def x(
    thinking: str = "",
    *,
    text: str = "42",
    reasoning_tokens: int | None = None,
    field: str | None = "reasoning_content",
    error: ErrorClass | None = None,
    status: int = 200,
) -> Exchange:
    usage: dict[str, Any] = {"prompt_tokens": 20, "completion_tokens": 30, "total_tokens": 50}
    if reasoning_tokens is not None:
        usage["completion_tokens_details"] = {"reasoning_tokens": reasoning_tokens}
    return exchange(
        status=status,
        error=error,
        text=text,
        reasoning=thinking,
        reasoning_field=field if thinking else None,
        finish_reason="stop",
        usage=usage,
    )


def thinks(tokens: int) -> Exchange:
    """An answer that reasoned `tokens` tokens, reported in usage and as text."""
    return x("t" * tokens * reasoning.CHARS_PER_TOKEN, reasoning_tokens=tokens)


def by_effort(tokens: dict[str, int]) -> dict[str, Exchange]:
    """Every prompt answered with `tokens[effort]` reasoning tokens."""
    return {k: thinks(tokens[k.rsplit("/", 1)[-1]]) for k in KEYS}


def silent() -> dict[str, Exchange]:
    return {k: x(field=None) for k in KEYS}


def judge(
    check: Check, exchanges: dict[str, Exchange], reference: dict[str, Exchange] | None = None
) -> CheckResult:
    return check.judge(CheckInput(PROVIDER, exchanges, reference))


# --- plan --------------------------------------------------------------------------------


def test_plan_asks_each_prompt_at_each_effort_and_both_checks_share_it() -> None:
    assert len(KEYS) == len(set(KEYS)) == len(reasoning.PROMPTS) * 3
    assert KEYS[:3] == [f"{reasoning.PREFIX}/0/{e}" for e in ("low", "medium", "high")]
    assert reasoning.FIELD.plan(PlanContext(PROVIDER)) == reasoning.EFFORT.plan(
        PlanContext(PROVIDER)
    )
    efforts = [r.body["reasoning_effort"] for r in reasoning.EFFORT.plan(PlanContext(PROVIDER))]
    assert efforts == ["low", "medium", "high"] * len(reasoning.PROMPTS)


# --- reasoning_tokens --------------------------------------------------------------------


def test_reasoning_tokens_prefers_usage_when_reported() -> None:
    assert reasoning.reasoning_tokens(x("abcd" * 10, reasoning_tokens=77)) == (
        77.0,
        "usage.reasoning_tokens",
    )
    # Hidden reasoning: counted by usage although no text came back.
    assert reasoning.reasoning_tokens(x(reasoning_tokens=50)) == (50.0, "usage.reasoning_tokens")


def test_reasoning_tokens_falls_back_to_text_length() -> None:
    assert reasoning.reasoning_tokens(x("abcd" * 10)) == (10.0, "reasoning text length")
    # A reported 0 beside reasoning text is not believed: the text is counted.
    assert reasoning.reasoning_tokens(x("abcd" * 10, reasoning_tokens=0)) == (
        10.0,
        "reasoning text length",
    )


def test_reasoning_tokens_zero_for_an_answer_without_reasoning() -> None:
    assert reasoning.reasoning_tokens(x()) == (0.0, "reasoning text length")
    assert reasoning.reasoning_tokens(x(reasoning_tokens=0)) == (0.0, "usage.reasoning_tokens")


# --- reasoning.effort --------------------------------------------------------------------


def test_effort_passes_when_reasoning_rises_with_effort() -> None:
    result = judge(reasoning.EFFORT, by_effort(RISING))
    assert result.status is Status.PASS
    assert result.figure.startswith("mean reasoning 100 / 400 / 1200 tokens")
    assert "usage.reasoning_tokens" in result.figure and "p=0.000772" in result.figure
    assert result.evidence == []


def test_effort_counts_text_when_usage_has_no_reasoning_tokens() -> None:
    answers = {k: x("t" * 4 * RISING[k.rsplit("/", 1)[-1]]) for k in KEYS}
    result = judge(reasoning.EFFORT, answers)
    assert result.status is Status.PASS and "reasoning text length" in result.figure


def test_effort_fails_when_the_engine_ignores_it() -> None:
    # Every effort reasons as much: the brief's engine serving its default effort.
    flat = {k: thinks(300 + 50 * int(k.split("/")[-2])) for k in KEYS}
    result = judge(reasoning.EFFORT, flat)
    assert result.status is Status.FAIL
    assert "mean reasoning 375 / 375 / 375 tokens" in result.figure and "p=0.576" in result.figure
    assert [e["key"] for e in result.evidence] == KEYS[:3]
    assert [e["reasoning_tokens"] for e in result.evidence] == [300.0, 300.0, 300.0]


def test_effort_not_applicable_when_the_reference_does_not_reason() -> None:
    result = judge(reasoning.EFFORT, by_effort(RISING), silent())
    assert result.status is Status.NOT_APPLICABLE
    assert "the reference returns no reasoning" in result.figure


def test_effort_fails_when_the_reference_reasons_and_the_provider_does_not() -> None:
    result = judge(reasoning.EFFORT, silent(), by_effort(RISING))
    assert result.status is Status.FAIL
    assert result.figure == "no reasoning returned; the reference reasons"
    assert len(result.evidence) == 2


def test_effort_not_applicable_without_reference_or_reasoning() -> None:
    result = judge(reasoning.EFFORT, silent())
    assert result.status is Status.NOT_APPLICABLE
    assert result.figure.startswith("no reasoning returned (the model does not reason")


def test_effort_not_applicable_with_too_few_complete_prompts() -> None:
    answers = by_effort(RISING)
    for i in (0, 1):  # two prompts lose their "high" answer
        answers[f"{reasoning.PREFIX}/{i}/high"] = x(error=ErrorClass.HTTP_5XX, status=500)
    result = judge(reasoning.EFFORT, answers)
    assert result.status is Status.NOT_APPLICABLE
    assert result.figure == "only 2 prompts answered at all three efforts"


def test_effort_error_when_every_request_failed() -> None:
    failed = {k: x(error=ErrorClass.HTTP_5XX, status=500) for k in KEYS}
    result = judge(reasoning.EFFORT, failed)
    assert result.status is Status.ERROR and "http_5xx" in result.figure


# --- reasoning.field ---------------------------------------------------------------------


def test_field_passes_and_names_the_field() -> None:
    result = judge(reasoning.FIELD, by_effort(RISING))
    assert result.status is Status.PASS
    assert result.figure == "12/12 answers carry reasoning in reasoning_content"


def test_field_names_every_field_used() -> None:
    answers = by_effort(RISING)
    answers[KEYS[0]].reasoning_field = "reasoning"
    result = judge(reasoning.FIELD, answers)
    assert result.status is Status.PASS and "in reasoning, reasoning_content" in result.figure


def test_field_fails_on_harmony_markup_in_the_answer() -> None:
    answers = by_effort(RISING)
    answers[KEYS[1]] = x(text="<|channel|>analysis<|message|>Count the r's...<|end|>42")
    result = judge(reasoning.FIELD, answers)
    assert result.status is Status.FAIL
    assert result.figure == "1 answers carry raw reasoning markup"
    assert result.evidence[0]["key"] == KEYS[1]
    assert result.evidence[0]["problem"] == "reasoning markup leaked into the answer"


def test_field_fails_on_think_tags_even_without_a_reference() -> None:
    leaked = {k: x(text="<think>17*23 = 391</think>391", field=None) for k in KEYS}
    result = judge(reasoning.FIELD, leaked)
    assert result.status is Status.FAIL and result.figure == "12 answers carry raw reasoning markup"


def test_field_fails_when_some_answers_lack_reasoning() -> None:
    answers = by_effort(RISING)
    answers[KEYS[0]] = x(field=None)
    answers[KEYS[5]] = x(field=None)
    result = judge(reasoning.FIELD, answers, by_effort(RISING))
    assert result.status is Status.FAIL
    assert result.figure == "10/12 answers carry reasoning in reasoning_content"
    assert [e["key"] for e in result.evidence] == [KEYS[0], KEYS[5]]
    assert all(e["problem"] == "no reasoning field" for e in result.evidence)


def test_field_fails_when_the_reference_reasons_and_the_provider_does_not() -> None:
    result = judge(reasoning.FIELD, silent(), by_effort(RISING))
    assert result.status is Status.FAIL and "the reference reasons" in result.figure


def test_field_not_applicable_when_nobody_reasons() -> None:
    result = judge(reasoning.FIELD, silent(), silent())
    assert result.status is Status.NOT_APPLICABLE and "reference" in result.figure
    assert judge(reasoning.FIELD, silent()).status is Status.NOT_APPLICABLE


def test_effort_counts_an_unreasoned_low_answer_as_zero_tokens() -> None:
    # Text-only reasoning, no reasoning_tokens in usage: 0 / 400 / 1200 is a clear trend.
    said = {"low": 0, "medium": 400, "high": 1200}
    exchanges = {k: x("t" * 4 * said[k.rsplit("/", 1)[-1]]) for k in KEYS}
    assert judge(reasoning.EFFORT, exchanges).status is Status.PASS


def test_field_counts_a_failed_request_as_missing_reasoning() -> None:
    exchanges = {k: thinks(50) for k in KEYS}
    exchanges[KEYS[0]] = x(status=500, error=ErrorClass.HTTP_5XX)
    result = judge(reasoning.FIELD, exchanges)
    assert result.status is Status.FAIL and result.figure.startswith(f"{len(KEYS) - 1}/{len(KEYS)}")
