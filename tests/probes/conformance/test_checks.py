"""Each check judged on hand-made exchanges: one that conforms and one with the fault."""

from typing import Any

from parity.config import Provider
from parity.exchange import ErrorClass, Exchange, Timings
from parity.probes.conformance import context, params, streaming, usage
from parity.probes.conformance.base import CheckInput, PlanContext, Status

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
    return Exchange(
        request={},
        stream=False,
        timings=Timings(sent=0),
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
    differ = {key: x("stream" if key.endswith("stream") else "plain") for key in k}
    result = judge(streaming.MATCHES, differ)
    assert result.status is Status.FAIL and result.figure == "0/3 pairs equal"
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


def test_context_window() -> None:
    (k,) = keys(context.ADVERTISED)
    ref = {k: x(prompt=2400)}
    assert judge(context.ADVERTISED, {k: x(prompt=2400)}, ref).status is Status.PASS
    refused = judge(context.ADVERTISED, {k: x(error=ErrorClass.HTTP_4XX, status=400)}, ref)
    assert refused.status is Status.FAIL and "HTTP 400" in refused.figure
    truncated = judge(context.ADVERTISED, {k: x(prompt=1000)}, ref)
    assert truncated.status is Status.FAIL and "truncated" in truncated.figure
    no_window = Provider(name="p", base_url="http://127.0.0.1:1/v1", model="m")
    assert context.ADVERTISED.plan(PlanContext(no_window)) == []
    assert context.ADVERTISED.judge(CheckInput(no_window, {}, None)).status is Status.NOT_APPLICABLE


def test_long_prompt_reaches_its_target_size() -> None:
    prompt = context.long_prompt(2000)
    assert len(prompt) >= 2000 * context.CHARS_PER_TOKEN
    assert context.NEEDLE in prompt and prompt.endswith(context.QUESTION)
