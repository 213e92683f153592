"""The conformance error checks judged on hand-made exchanges: what a clean refusal is, the
invalid-value and malformed-request verdicts, and first-try availability."""

import json

import pytest

from parity.conformance.base import Check, CheckInput, CheckResult, PlanContext, Status
from parity.conformance.checks import errors
from parity.core.client import RAW_BODY
from parity.core.config import Provider
from parity.core.exchange import ErrorClass, Exchange
from tests.conformance.checks.exchanges import exchange

PROVIDER = Provider(name="p", base_url="http://127.0.0.1:1/v1", model="m")
OPENAI_ERROR = json.dumps({"error": {"message": "temperature must be >= 0", "type": "invalid"}})


def x(
    status: int | None = 400,
    raw: str | None = OPENAI_ERROR,
    *,
    error: ErrorClass | None = None,
    attempts: int = 1,
) -> Exchange:
    if error is None and status is not None and status >= 400:
        error = ErrorClass.HTTP_4XX if status < 500 else ErrorClass.HTTP_5XX
    return exchange(
        status=status,
        error=error,
        raw=raw,
        attempts=attempts,
    )


def keys(check: Check) -> list[str]:
    return [r.key for r in check.plan(PlanContext(PROVIDER))]


def judge(check: Check, exchanges: dict[str, Exchange]) -> CheckResult:
    return check.judge(CheckInput(PROVIDER, exchanges, None))


def answered() -> Exchange:
    return x(200, '{"choices": []}')


# --- error_shape_problem -----------------------------------------------------------------


def test_clean_refusal_is_a_4xx_in_the_openai_shape() -> None:
    assert errors.error_shape_problem(x(400)) is None
    assert errors.error_shape_problem(x(422)) is None


def test_accepted_request_is_not_a_refusal() -> None:
    assert errors.error_shape_problem(answered()) == "accepted with HTTP 200"


def test_server_error_is_not_a_refusal() -> None:
    assert errors.error_shape_problem(x(500)) == "HTTP 500, not a 4xx"


def test_4xx_without_a_json_body() -> None:
    assert errors.error_shape_problem(x(400, "Bad Request")) == "HTTP 400 without a JSON error body"
    assert errors.error_shape_problem(x(400, None)) == "HTTP 400 without a JSON error body"


def test_4xx_in_the_fastapi_shape_is_not_the_openai_shape() -> None:
    fastapi = json.dumps({"detail": [{"loc": ["body", "messages"], "msg": "field required"}]})
    assert (
        errors.error_shape_problem(x(422, fastapi)) == "HTTP 422 body is not the OpenAI error shape"
    )
    bare = json.dumps({"error": "bad request"})
    assert errors.error_shape_problem(x(400, bare)) == "HTTP 400 body is not the OpenAI error shape"


def test_no_http_status_is_a_connection_problem() -> None:
    dropped = x(None, None, error=ErrorClass.CONNECT)
    assert errors.error_shape_problem(dropped) == "no HTTP answer (connect)"


# --- plans -------------------------------------------------------------------------------


def test_plans_are_keyed_and_stable() -> None:
    assert keys(errors.INVALID_VALUES) == [
        "conformance/errors.invalid_values/temperature-1",
        "conformance/errors.invalid_values/top_p2",
        "conformance/errors.invalid_values/n0",
        "conformance/errors.invalid_values/max_tokens0",
        "conformance/errors.invalid_values/unknown_model",
    ]
    assert keys(errors.MALFORMED_REQUESTS) == [
        "conformance/errors.malformed/body_is_not_JSON",
        "conformance/errors.malformed/no_messages",
        "conformance/errors.malformed/messages_not_a_list",
        "conformance/errors.malformed/message_without_role",
    ]
    for check in errors.ERROR_CHECKS:
        assert keys(check) == keys(check)
        assert len(set(keys(check))) == len(keys(check))


def test_malformed_plan_sends_a_raw_body_that_is_not_json() -> None:
    (raw_case,) = [
        r for r in errors.MALFORMED_REQUESTS.plan(PlanContext(PROVIDER)) if RAW_BODY in r.body
    ]
    assert raw_case.key.endswith("/body_is_not_JSON")
    with pytest.raises(ValueError):
        json.loads(raw_case.body[RAW_BODY])


# --- errors.invalid_values / errors.malformed --------------------------------------------


def test_invalid_values_pass_when_every_case_is_refused_cleanly() -> None:
    result = judge(errors.INVALID_VALUES, {k: x(400) for k in keys(errors.INVALID_VALUES)})
    assert result.status is Status.PASS and result.figure == "5/5 refused cleanly"


def test_invalid_values_fail_listing_the_bad_cases() -> None:
    answers = {k: x(400) for k in keys(errors.INVALID_VALUES)}
    answers["conformance/errors.invalid_values/temperature-1"] = answered()
    answers["conformance/errors.invalid_values/unknown_model"] = x(500)
    result = judge(errors.INVALID_VALUES, answers)
    assert result.status is Status.FAIL
    assert result.figure == (
        "3/5 refused cleanly; temperature=-1: accepted with HTTP 200, "
        "unknown model: HTTP 500, not a 4xx"
    )
    assert [e["case"] for e in result.evidence] == ["temperature=-1", "unknown model"]


def test_malformed_pass_when_every_case_is_refused_cleanly() -> None:
    result = judge(errors.MALFORMED_REQUESTS, {k: x(400) for k in keys(errors.MALFORMED_REQUESTS)})
    assert result.status is Status.PASS and result.figure == "4/4 refused cleanly"


def test_malformed_fail_on_5xx_dropped_connection_and_fastapi_shape() -> None:
    k = keys(errors.MALFORMED_REQUESTS)
    answers = {
        k[0]: x(500, "Internal Server Error"),
        k[1]: x(None, None, error=ErrorClass.CONNECT),
        k[2]: x(422, json.dumps({"detail": "messages must be a list"})),
        k[3]: x(400),
    }
    result = judge(errors.MALFORMED_REQUESTS, answers)
    assert result.status is Status.FAIL
    assert result.figure == (
        "1/4 refused cleanly; body is not JSON: HTTP 500, not a 4xx, "
        "no messages: no HTTP answer (connect), "
        "messages not a list: HTTP 422 body is not the OpenAI error shape"
    )
    assert len(result.evidence) == 3


# --- errors.availability -----------------------------------------------------------------


def test_availability_passes_when_all_answer_first_try() -> None:
    result = judge(errors.AVAILABILITY, {k: answered() for k in keys(errors.AVAILABILITY)})
    assert result.status is Status.PASS
    assert result.figure == "10/10 answered on the first try" and result.evidence == []


def test_availability_fails_when_half_needed_a_retry() -> None:
    answers = {
        k: x(200, "{}", attempts=1 if i % 2 else 2) for i, k in enumerate(keys(errors.AVAILABILITY))
    }
    result = judge(errors.AVAILABILITY, answers)
    assert result.status is Status.FAIL and result.figure == "5/10 answered on the first try"
    assert all(e["attempts"] == 2 for e in result.evidence) and len(result.evidence) == 5


def test_availability_nine_of_ten_meets_the_bar() -> None:
    answers = {k: answered() for k in keys(errors.AVAILABILITY)}
    answers[keys(errors.AVAILABILITY)[0]] = x(200, "{}", attempts=3)
    result = judge(errors.AVAILABILITY, answers)
    assert result.status is Status.PASS and result.figure == "9/10 answered on the first try"


def test_availability_fails_when_requests_fail_after_retries() -> None:
    answers = {k: answered() for k in keys(errors.AVAILABILITY)}
    for k in keys(errors.AVAILABILITY)[:2]:
        answers[k] = x(429, None, error=ErrorClass.RATE_LIMITED, attempts=3)
    result = judge(errors.AVAILABILITY, answers)
    assert result.status is Status.FAIL
    assert result.figure == "8/10 answered on the first try, 2 failed after retries"
    assert [e["error"] for e in result.evidence] == ["rate_limited", "rate_limited"]


def test_cases_never_sent_are_failures_not_passes() -> None:
    result = judge(errors.INVALID_VALUES, {})
    assert result.status is Status.FAIL and result.figure.startswith("0/5 refused cleanly")
    assert {b["problem"] for b in result.evidence} == {"not sent"}
