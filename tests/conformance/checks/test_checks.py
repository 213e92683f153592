"""Each check judged on hand-made exchanges: one that conforms and one with the fault."""

from typing import Any

from parity.conformance.base import CheckInput, PlanContext, Status
from parity.conformance.checks import context, params, streaming, usage
from parity.core.config import Provider
from parity.core.exchange import ErrorClass, Exchange
from tests.conformance.checks.exchanges import exchange

PROVIDER = Provider(name="p", base_url="http://127.0.0.1:1/v1", model="m", context_window=4096)


def x(
    text: str = "ok",
    *,
    prompt: int = 10,
    completion: int = 2,
    finish: str = "stop",
    error: ErrorClass | None = None,
    status: int = 200,
    usage_on: bool = True,
) -> Exchange:
    u: dict[str, Any] | None = (
        {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        if usage_on
        else None
    )
    return exchange(
        status=status,
        error=error,
        text=text,
        finish_reason=finish,
        usage=u,
    )


def keys(check: Any) -> list[str]:
    return [r.key for r in check.plan(PlanContext(PROVIDER))]


def judge(check: Any, exchanges: dict[str, Exchange], reference: dict[str, Exchange] | None = None):
    return check.judge(CheckInput(PROVIDER, exchanges, reference))


def test_usage_reported_and_streamed() -> None:
    for check in (usage.REPORTED, usage.STREAMED):
        (k,) = keys(check)
        assert judge(check, {k: x()}).status is Status.PASS
        result = judge(check, {k: x(usage_on=False)})
        assert result.status is Status.FAIL and result.evidence[0]["problem"].startswith("no usage")
        wrong_total = x()
        wrong_total.usage = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 5}
        assert judge(check, {k: wrong_total}).status is Status.FAIL
        assert judge(check, {k: x("text", completion=0)}).status is Status.FAIL


def test_usage_prompt_tokens_against_reference() -> None:
    (k,) = keys(usage.PROMPT_TOKENS)
    ref = {k: x(prompt=38)}
    assert judge(usage.PROMPT_TOKENS, {k: x(prompt=38)}, ref).status is Status.PASS
    assert judge(usage.PROMPT_TOKENS, {k: x(prompt=41)}, ref).status is Status.PASS
    failed = judge(usage.PROMPT_TOKENS, {k: x(prompt=17)}, ref)
    assert failed.status is Status.FAIL and "17 vs reference 38" in failed.figure
    assert judge(usage.PROMPT_TOKENS, {k: x(prompt=42)}, ref).status is Status.FAIL
    assert judge(usage.PROMPT_TOKENS, {k: x()}, None).status is Status.NOT_APPLICABLE


def test_max_tokens() -> None:
    k = keys(params.MAX_TOKENS_CHECK)
    good = {key: x(completion=params.MAX_TOKENS, finish="length") for key in k}
    assert judge(params.MAX_TOKENS_CHECK, good).status is Status.PASS
    ignored = {key: x(completion=40, finish="stop") for key in k}
    assert judge(params.MAX_TOKENS_CHECK, ignored).status is Status.FAIL
    failed = {key: x(error=ErrorClass.HTTP_5XX, status=500) for key in k}
    assert judge(params.MAX_TOKENS_CHECK, failed).status is Status.ERROR


def test_streaming_matches_plain() -> None:
    k = keys(streaming.MATCHES)
    same = {key: x("a") for key in k}
    assert judge(streaming.MATCHES, same).status is Status.PASS
    differ = {key: x("stream" if streaming.is_stream_key(key) else "plain") for key in k}
    result = judge(streaming.MATCHES, differ)
    assert result.status is Status.FAIL and result.figure == "0/6 pairs equal"
    # When the reference itself is not reproducible, the bar is its own rate.
    ref = {key: x("stream" if key.endswith("0/stream") else "a") for key in k}
    one_off = {key: x("stream" if key.endswith("1/stream") else "a") for key in k}
    assert judge(streaming.MATCHES, one_off, ref).status is Status.PASS


def test_streaming_well_formed() -> None:
    k = keys(streaming.WELL_FORMED)
    assert judge(streaming.WELL_FORMED, {key: x() for key in k}).status is Status.PASS
    broken = {
        key: (x(error=ErrorClass.MALFORMED_STREAM) if key.endswith("0/stream") else x())
        for key in k
    }
    assert judge(streaming.WELL_FORMED, broken).status is Status.FAIL
    no_finish = {key: x(finish=None) for key in k}  # type: ignore[arg-type]
    assert judge(streaming.WELL_FORMED, no_finish).status is Status.FAIL


# --- context.advertised ------------------------------------------------------------------

TARGET = int(4096 * context.FILL)  # PROVIDER advertises 4096 tokens
WORDS = {depth: word for depth, (_, word) in context.NEEDLES.items()}


def needles(prompt: int = 3700, missed: tuple[float, ...] = ()) -> dict[str, Exchange]:
    """An answer on every needle key: the secret word (capitalised, as models answer), or a
    shrug at the depths in `missed`; `prompt` tokens served."""
    return {
        k: x(
            "I could not find it." if d in missed else WORDS[d].capitalize() + ".",
            prompt=prompt,
        )
        for k, d in zip(keys(context.ADVERTISED), context.DEPTHS, strict=True)
    }


def test_context_plan_asks_three_questions_of_one_document() -> None:
    planned = context.ADVERTISED.plan(PlanContext(PROVIDER))
    assert [r.key for r in planned] == [
        f"conformance/context.needles/{TARGET}/{d}" for d in context.DEPTHS
    ]
    doc = context.document(TARGET)
    for r, depth in zip(planned, context.DEPTHS, strict=True):
        assert r.body["messages"][0]["content"] == doc + "\n\n" + context.question(depth)
        assert r.body["temperature"] == 0
    no_window = Provider(name="p", base_url="http://127.0.0.1:1/v1", model="m")
    assert context.ADVERTISED.plan(PlanContext(no_window)) == []
    result = context.ADVERTISED.judge(CheckInput(no_window, {}, None))
    assert result.status is Status.NOT_APPLICABLE and "no context_window" in result.figure


def test_document_reaches_its_target_size_with_needles_in_order() -> None:
    doc = context.document(2000)
    assert len(doc) >= 2000 * context.CHARS_PER_TOKEN
    at = [doc.index(context.needle(d)) / len(doc) for d in context.DEPTHS]
    assert at == sorted(at)
    assert abs(at[0] - 0.25 / context.FILL) < 0.03 and abs(at[1] - 0.5 / context.FILL) < 0.03
    assert doc.endswith(context.needle(0.9))
    assert context.long_prompt(2000) == doc + "\n\n" + context.question(context.DEPTHS[0])
    assert "north gate" in context.question(0.25) and "marmalade" in context.needle(0.25)


def test_context_passes_when_served_whole_and_needles_found() -> None:
    result = judge(context.ADVERTISED, needles(), needles())
    assert result.status is Status.PASS
    assert result.figure == "served 3700 prompt tokens; needles found 3/3"
    assert f"~{TARGET}-token prompt" in result.bar and result.evidence == []


def test_context_does_not_hold_a_needle_the_reference_missed() -> None:
    result = judge(context.ADVERTISED, needles(missed=(0.5,)), needles(missed=(0.5,)))
    assert result.status is Status.PASS and result.figure.endswith("needles found 2/3")


def test_context_fails_loudly_on_a_refusal() -> None:
    answers = needles()
    answers[keys(context.ADVERTISED)[2]] = x(error=ErrorClass.HTTP_4XX, status=400)
    result = judge(context.ADVERTISED, answers, needles())
    assert result.status is Status.FAIL
    assert result.figure == f"refused a ~{TARGET}-token prompt with HTTP 400 (loudly)"
    assert result.evidence[0]["key"] == keys(context.ADVERTISED)[2]


def test_context_fails_on_silent_truncation_against_the_reference() -> None:
    # 3300 < 90% of the reference's 3700: the start of the document was dropped.
    result = judge(context.ADVERTISED, needles(prompt=3300), needles())
    assert result.status is Status.FAIL
    assert "prompt_tokens 3300 vs reference 3700: silently truncated" in result.figure
    # 2% of the reference's 3700 is 74 tokens: 3626 is served whole, 3620 is not.
    assert judge(context.ADVERTISED, needles(prompt=3626), needles()).status is Status.PASS
    assert judge(context.ADVERTISED, needles(prompt=3620), needles()).status is Status.FAIL


def test_context_fails_when_a_needle_the_reference_found_is_missed() -> None:
    result = judge(context.ADVERTISED, needles(missed=(0.25,)), needles())
    assert result.status is Status.FAIL
    assert result.figure == (
        "served 3700 prompt tokens; needles found 2/3; "
        "needle at 25% not found; the reference found it"
    )


def test_context_without_reference_fails_below_half_the_target() -> None:
    result = judge(context.ADVERTISED, needles(prompt=1000))
    assert result.status is Status.FAIL
    assert f"prompt_tokens 1000 for a ~{TARGET}-token prompt: silently truncated" in result.figure
    assert judge(context.ADVERTISED, needles(prompt=TARGET // 2 + 1)).status is Status.PASS


# --- usage.completion_tokens -------------------------------------------------------------


def streamed(completion: int, chunks: int, text: str = "ok") -> Exchange:
    ex = x(text, completion=completion)
    ex.stream = True
    ex.timings.token_chunks = list(range(chunks))
    return ex


def test_completion_tokens_pass_when_billed_as_the_reference_bills() -> None:
    k = keys(usage.COMPLETION_TOKENS)
    assert k == [r.key for r in streaming.plan_first_pairs(PlanContext(PROVIDER))]
    same = {key: x("Red, yellow, blue.", completion=10) for key in k}
    result = judge(usage.COMPLETION_TOKENS, same, same)
    assert result.status is Status.PASS
    assert result.figure == "billed 60 vs 60 returned (+0.0%; the reference's count, same text)"


def test_completion_tokens_fail_with_the_overcharge_in_percent() -> None:
    k = keys(usage.COMPLETION_TOKENS)
    ref = {key: x("Red, yellow, blue.", completion=10) for key in k}
    padded = {key: x("Red, yellow, blue.", completion=12) for key in k}
    result = judge(usage.COMPLETION_TOKENS, padded, ref)
    assert result.status is Status.FAIL and "+20.0%" in result.figure
    assert result.figure.startswith("billed 72 vs 60 returned")
    assert len(result.evidence) == 6 and result.evidence[0]["billed"] == 12


def test_completion_tokens_counted_by_stream_chunks_without_reference() -> None:
    k = keys(usage.COMPLETION_TOKENS)
    honest = {key: streamed(10, 10) if key.endswith("stream") else x() for key in k}
    result = judge(usage.COMPLETION_TOKENS, honest)
    assert result.status is Status.PASS and "streamed token chunks" in result.figure
    short = {key: streamed(5, 10) if key.endswith("stream") else x() for key in k}
    result = judge(usage.COMPLETION_TOKENS, short)
    assert result.status is Status.FAIL
    assert result.figure == "billed 15 vs 30 returned (-50.0%; streamed token chunks)"
    assert {e["counted_by"] for e in result.evidence} == {"streamed token chunks"}


def test_completion_tokens_more_than_the_chunks_is_no_overcharge() -> None:
    """A chunk carries at least one token: vLLM merged 32 tokens into 28 chunks once, its
    API server behind on two busy cores (finish_reason "length" at max_tokens 32, billed
    32). Without a reference's count for the same text, a bill above the chunks proves
    nothing; the reference's count still catches an overcharge."""
    k = keys(usage.COMPLETION_TOKENS)
    merged = {key: streamed(32, 28) if key.endswith("stream") else x() for key in k}
    assert judge(usage.COMPLETION_TOKENS, merged).status is Status.PASS
    padded = {key: streamed(20, 10) if key.endswith("stream") else x() for key in k}
    assert judge(usage.COMPLETION_TOKENS, padded).status is Status.PASS
    ref = {key: streamed(10, 10) if key.endswith("stream") else x() for key in k}
    assert judge(usage.COMPLETION_TOKENS, padded, ref).status is Status.FAIL


def test_completion_tokens_not_applicable_when_nothing_can_be_counted() -> None:
    k = keys(usage.COMPLETION_TOKENS)
    result = judge(usage.COMPLETION_TOKENS, {key: x(usage_on=False) for key in k})
    assert result.status is Status.NOT_APPLICABLE and "nothing to count against" in result.figure
    # Usage, but plain answers only and a reference that said something else.
    other = {key: x("something else") for key in k}
    result = judge(usage.COMPLETION_TOKENS, {key: x("mine") for key in k}, other)
    assert result.status is Status.NOT_APPLICABLE


def test_context_rate_limit_is_not_a_refusal() -> None:
    answers = needles()
    first = keys(context.ADVERTISED)[0]
    answers[first] = x(status=429, error=ErrorClass.RATE_LIMITED)
    result = judge(context.ADVERTISED, answers)
    assert "refused" not in result.figure
