"""The tool-call checks judged on hand-made exchanges: classification, each check's pass,
fail and n/a paths, pass@k / pass^k and the bar set from the reference's own spread."""

import json
from typing import Any

import pytest

from parity.conformance.base import Check, CheckInput, CheckResult, PlanContext, Status
from parity.conformance.checks import tools
from parity.conformance.checks.tools import CASES, TOOL_CHECKS, classify
from parity.core.config import Provider
from parity.core.exchange import ErrorClass, Exchange, Timings

PROVIDER = Provider(name="p", base_url="http://127.0.0.1:1/v1", model="m")
REFERENCE = Provider(name="ref", base_url="http://127.0.0.1:2/v1", model="m", reference=True)
CASE = {c.name: c for c in CASES}
WEATHER = CASE["weather_paris"]
HAIKU = CASE["none_haiku"]


def call(name: str = "get_weather", args: Any = None, raw: str | None = None) -> dict[str, Any]:
    arguments = raw if raw is not None else json.dumps({"city": "Paris"} if args is None else args)
    return {"id": "c", "type": "function", "function": {"name": name, "arguments": arguments}}


def x(
    *calls: dict[str, Any],
    text: str = "",
    finish: str | None = None,
    error: ErrorClass | None = None,
    status: int = 200,
    stream: bool = False,
) -> Exchange:
    return Exchange(
        request={},
        stream=stream,
        timings=Timings(sent=0),
        status=status,
        error=error,
        text=text if (text or calls) else "fine",
        finish_reason=finish or ("tool_calls" if calls else "stop"),
        tool_calls=list(calls),
    )


def failed(status: int = 400) -> Exchange:
    kind = ErrorClass.HTTP_4XX if status < 500 else ErrorClass.HTTP_5XX
    ex = x(error=kind, status=status)
    ex.raw = '{"error": {"message": "tool messages are not supported"}}'
    ex.error_detail = f"HTTP {status}: tool messages are not supported"
    return ex


GOOD_ARGS: dict[str, dict[str, Any]] = {
    "get_weather": {"city": "Paris"},
    "get_time": {"timezone": "Asia/Tokyo"},
    "convert_currency": {"amount": 250, "from_currency": "EUR", "to_currency": "USD"},
    "search_flights": {"origin": "London", "destination": "Rome", "date": "2026-06-14"},
}


def ideal(case: tools.ToolCase) -> Exchange:
    """What a conforming provider answers to a case."""
    if case.expected_tool is None:
        return x()
    args = dict(GOOD_ARGS[case.expected_tool], **(case.expected_args or {}))
    return x(call(case.expected_tool, args))


def case_keys(tries: int = 1) -> list[str]:
    return [r.key for r in tools.SCHEMA.plan(PlanContext(PROVIDER, tries))]


def answers(tries: int = 1, **overrides: Exchange) -> dict[str, Exchange]:
    """Ideal answers on every case key; `overrides` by '<case>_<try>'."""
    out = {}
    for key in case_keys(tries):
        name, attempt = key.split("/")[-2:]
        out[key] = overrides.get(f"{name}_{attempt}") or ideal(CASE[name])
    return out


def judge(
    check: Check,
    exchanges: dict[str, Exchange],
    reference: dict[str, Exchange] | None = None,
    tries: int = 1,
    provider: Provider = PROVIDER,
) -> CheckResult:
    return check.judge(CheckInput(provider, exchanges, reference, tries))


def only(check: Check) -> list[str]:
    return [r.key for r in check.plan(PlanContext(PROVIDER))]


# --- plans -------------------------------------------------------------------------------


def test_plans_are_keyed_deterministic_and_sized() -> None:
    costs = {1: [8, 8, 3, 1, 1, 4, 2], 3: [24, 24, 3, 1, 1, 4, 2]}
    for tries, expected in costs.items():
        ctx = PlanContext(PROVIDER, tries)
        for check, n in zip(TOOL_CHECKS, expected, strict=True):
            planned = check.plan(ctx)
            assert planned == check.plan(ctx)
            assert all(r.key.startswith("conformance/") for r in planned)
            assert len({r.key for r in planned}) == len(planned) == n == check.cost(ctx)
    assert [c.id for c in TOOL_CHECKS] == [
        "tools.schema",
        "tools.trigger",
        "tools.choice",
        "tools.parallel",
        "tools.multi_turn",
        "tools.streamed",
        "tools.responses_api",
    ]
    assert all(c.family_id == "tools" for c in TOOL_CHECKS)


def test_schema_and_trigger_share_their_requests() -> None:
    ctx = PlanContext(PROVIDER, 3)
    assert tools.SCHEMA.plan(ctx) == tools.TRIGGER.plan(ctx)
    assert case_keys(3)[:3] == [f"conformance/tools.cases/weather_paris/{t}" for t in range(3)]


def test_request_bodies() -> None:
    for req in tools.SCHEMA.plan(PlanContext(PROVIDER)):
        assert "temperature" not in req.body and "tool_choice" not in req.body
        assert req.body["max_tokens"] == 256 and len(req.body["tools"]) == 4
    plain, streamed, plain_again, streamed_again = tools.STREAMED.plan(PlanContext(PROVIDER))
    assert not plain.stream and streamed.stream and plain.body == streamed.body
    assert (plain_again.body, streamed_again.body) == (plain.body, plain.body)
    assert not plain_again.stream and streamed_again.stream
    assert plain.body["temperature"] == 0 and plain.body["seed"] == 7
    for req in tools.RESPONSES_API.plan(PlanContext(PROVIDER)):
        assert req.endpoint == "responses" and req.body["max_output_tokens"] == 256
        assert all("name" in t and "function" not in t for t in req.body["tools"])
    (turn,) = tools.MULTI_TURN.plan(PlanContext(PROVIDER))
    assert [m["role"] for m in turn.body["messages"]] == ["user", "assistant", "tool"]


# --- classification ----------------------------------------------------------------------


def test_classify_ok_and_no_fit() -> None:
    for case in CASES:
        assert classify(case, ideal(case)) == tools.OK
    assert classify(HAIKU, x(text="Leaves fall")) == tools.OK


# Arguments as an object, not a JSON string; an amount as a string, not a number.
OBJECT_ARGS = {"id": "c", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
STRING_AMOUNT = {"amount": "250", "from_currency": "EUR", "to_currency": "USD"}


@pytest.mark.parametrize(
    ("case", "exchange", "expected"),
    [
        (WEATHER, x(call(raw='{"city": "Paris"')), tools.INVALID_JSON),
        (WEATHER, x(call(raw="")), tools.INVALID_JSON),
        (WEATHER, x(OBJECT_ARGS), tools.INVALID_JSON),
        (WEATHER, x(call("get_forecast")), tools.UNKNOWN_TOOL),
        (WEATHER, x(call(args={"town": "Paris"})), tools.SCHEMA_MISMATCH),
        (WEATHER, x(call(args={"city": "Paris", "unit": "kelvin"})), tools.SCHEMA_MISMATCH),
        (CASE["currency_eur_usd"], x(call("convert_currency", STRING_AMOUNT)), "schema_mismatch"),
        (WEATHER, x(text="It is probably sunny."), tools.NO_CALL),
        (WEATHER, x(call("get_time", {"timezone": "Europe/Paris"})), tools.WRONG_TOOL),
        (HAIKU, x(call()), tools.UNEXPECTED_CALL),
        (WEATHER, failed(500), tools.ERROR),
    ],
)
def test_classify_faults(case: tools.ToolCase, exchange: Exchange, expected: str) -> None:
    assert classify(case, exchange) == expected


def test_args_match_is_a_loose_subset() -> None:
    assert tools.args_match(WEATHER, x(call(args={"city": "Paris, France", "unit": "celsius"})))
    assert not tools.args_match(WEATHER, x(call(args={"city": "Lyon"})))
    currency = CASE["currency_eur_usd"]
    assert tools.args_match(currency, ideal(currency))
    wrong = {"amount": 25, "from_currency": "EUR", "to_currency": "USD"}
    assert not tools.args_match(currency, x(call("convert_currency", wrong)))


# --- tools.schema ------------------------------------------------------------------------


def test_schema_passes_on_valid_calls() -> None:
    result = judge(tools.SCHEMA, answers())
    assert result.status is Status.PASS
    assert result.figure == "6/6 calls valid; 0 invalid_json, 0 unknown_tool, 0 schema_mismatch"


def test_schema_fails_and_counts_each_fault() -> None:
    bad = answers(
        weather_paris_0=x(call(raw="{city: Paris}")),
        time_tokyo_0=x(call("what_time")),
        none_haiku_0=x(call(args={"city": 3})),  # a call where none fits still counts
    )
    result = judge(tools.SCHEMA, bad)
    assert result.status is Status.FAIL
    assert result.figure == "4/7 calls valid; 1 invalid_json, 1 unknown_tool, 1 schema_mismatch"
    assert {e["classification"] for e in result.evidence} == {
        "invalid_json",
        "unknown_tool",
        "schema_mismatch",
    }


def test_schema_not_applicable_without_calls_and_error_when_all_fail() -> None:
    silent = {k: x(text="no tools here") for k in case_keys()}
    result = judge(tools.SCHEMA, silent)
    assert result.status is Status.NOT_APPLICABLE and "see tools.trigger" in result.figure
    assert judge(tools.SCHEMA, {k: failed() for k in case_keys()}).status is Status.ERROR


# --- tools.trigger -----------------------------------------------------------------------


def test_trigger_agrees_with_reference_and_fixed_bar_at_one_try() -> None:
    result = judge(tools.TRIGGER, answers(), answers())
    assert result.status is Status.PASS and result.figure.startswith("F1 1.00")
    assert "bar fixed: run with --tries 3" in result.figure and result.bar.startswith(">= 0.80;")
    assert "pass@1 1.00, pass^1 1.00" in result.figure and "args as expected 5/5" in result.figure


def test_trigger_fails_when_calls_never_come() -> None:
    silent = {k: x(text="I cannot look that up.") for k in case_keys()}
    result = judge(tools.TRIGGER, silent, answers())
    assert result.status is Status.FAIL and result.figure.startswith("F1 0.00")
    assert len(result.evidence) == 6 and result.evidence[0]["classification"] == "no_call"
    # One miss and one call where none fits: F1 = 2*5 / (2*5 + 2) = 0.83 >= 0.8.
    two_off = answers(weather_paris_0=x(text="Sunny."), none_haiku_0=x(call()))
    result = judge(tools.TRIGGER, two_off, answers())
    assert result.status is Status.PASS and result.figure.startswith("F1 0.83")


def test_trigger_not_applicable_when_reference_never_calls() -> None:
    silent = {k: x(text="no") for k in case_keys()}
    result = judge(tools.TRIGGER, answers(), silent)
    assert result.status is Status.NOT_APPLICABLE
    assert "does not do automatic tool calls" in result.figure
    assert judge(tools.TRIGGER, answers(), None).status is Status.NOT_APPLICABLE


def test_pass_at_k_and_pass_hat_k_with_three_tries() -> None:
    # weather_paris: 2 of 3 tries pass; time_tokyo: none; none_haiku: 1 of 3; the rest all.
    mine = answers(
        3,
        weather_paris_1=x(text="Sunny."),
        time_tokyo_0=x(call("get_weather")),
        time_tokyo_1=x(call("get_weather")),
        time_tokyo_2=x(text="noon"),
        none_haiku_0=x(call()),
        none_haiku_2=x(call()),
    )
    at_k, hat_k = tools.pass_at_k(mine, 3)
    assert at_k == pytest.approx(7 / 8) and hat_k == pytest.approx(5 / 8)
    result = judge(tools.TRIGGER, mine, answers(3), tries=3)
    assert "pass@3 0.88, pass^3 0.62 over 8 cases" in result.figure


def test_bar_comes_from_the_reference_spread() -> None:
    assert tools.f1([True, True, False], [True, False, True]) == pytest.approx(0.5)
    assert tools.f1([False, False], [False, False]) == 1.0
    steady = answers(3)
    assert tools.self_f1(steady, 3) == 1.0
    result = judge(tools.TRIGGER, answers(3), steady, tries=3)
    assert result.status is Status.PASS and result.bar.startswith(">= 0.85")
    assert "bar fixed" not in result.figure
    # The reference itself drops three of its six calls on try 1: self-F1 (1 + 2/3) / 2.
    dropped = {f"{c.name}_1": x(text="?") for c in CASES[:3]}
    shaky = answers(3, **dropped)
    assert tools.self_f1(shaky, 3) == pytest.approx((1 + 2 * 3 / (2 * 3 + 3)) / 2)
    result = judge(tools.TRIGGER, answers(3), shaky, tries=3)
    assert result.bar.startswith(">= 0.68")
    # A provider as shaky on other requests: F1 24/30, over the lowered bar, under 0.85.
    mine = answers(3, **{f"{c.name}_2": x(text="?") for c in CASES[3:6]})
    result = judge(tools.TRIGGER, mine, shaky, tries=3)
    assert result.status is Status.PASS and result.figure.startswith("F1 0.80")
    worse = answers(3, **{f"{c.name}_{t}": x(text="?") for c in CASES[:6] for t in (1, 2)})
    assert judge(tools.TRIGGER, worse, shaky, tries=3).status is Status.FAIL


def test_bar_has_a_floor_of_one_half() -> None:
    # A reference that calls on try 0 only: self-F1 0, bar 0.5.
    ref = answers(3, **{f"{c.name}_{t}": x(text="?") for c in CASES[:6] for t in (1, 2)})
    result = judge(tools.TRIGGER, answers(3), ref, tries=3)
    assert result.bar.startswith(">= 0.50")


def test_trigger_judges_the_reference_on_its_own() -> None:
    own = answers(3, weather_paris_0=x(text="Sunny."))  # 2 of 3 tries still call
    result = judge(tools.TRIGGER, own, None, tries=3, provider=REFERENCE)
    assert result.status is Status.PASS and result.figure.startswith("8/8 cases")
    misses = answers(3, weather_paris_0=x(text="?"), weather_paris_1=x(text="?"))
    result = judge(tools.TRIGGER, misses, None, tries=3, provider=REFERENCE)
    assert result.status is Status.FAIL and "failing: weather_paris" in result.figure
    once = answers(3, none_haiku_2=x(call()))
    result = judge(tools.TRIGGER, once, None, tries=3, provider=REFERENCE)
    assert result.status is Status.FAIL and result.evidence[0]["key"].endswith("none_haiku/2")
    silent = {k: x(text="no") for k in case_keys(3)}
    result = judge(tools.TRIGGER, silent, None, tries=3, provider=REFERENCE)
    assert result.status is Status.NOT_APPLICABLE


# --- tools.choice ------------------------------------------------------------------------

NONE_KEY, REQUIRED_KEY, NAMED_KEY = only(tools.CHOICE)


def test_choice_honoured() -> None:
    good = {
        NONE_KEY: x(text="I can't check live weather."),
        REQUIRED_KEY: x(call("get_time", {"timezone": "UTC"})),
        NAMED_KEY: x(call("get_time", {"timezone": "Europe/Paris"}), finish="stop"),
    }
    result = judge(tools.CHOICE, good)
    assert result.status is Status.PASS and result.figure == "none, required, named honoured"


def test_choice_ignored() -> None:
    bad = {
        NONE_KEY: x(call()),
        REQUIRED_KEY: x(text="Drink water."),
        NAMED_KEY: x(call("get_weather")),
    }
    result = judge(tools.CHOICE, bad)
    assert result.status is Status.FAIL and result.figure == "failed: none, required, named"
    mislabelled = {
        NONE_KEY: x(text="ok"),
        REQUIRED_KEY: x(call("get_time", {"timezone": "UTC"}), finish="stop"),
        NAMED_KEY: failed(400),
    }
    result = judge(tools.CHOICE, mislabelled)
    assert result.figure == "failed: required, named"
    assert "finish_reason 'stop'" in result.evidence[0]["problem"]


def test_choice_forced_call_held_to_the_schema() -> None:
    """vLLM's forced calls carry any JSON: a named or required call whose arguments are not
    valid against the tool's schema fails, whatever its name and finish_reason."""
    base = {
        NONE_KEY: x(text="I can't check live weather."),
        REQUIRED_KEY: x(call("get_time", {"timezone": "UTC"})),
        NAMED_KEY: x(call("get_time", {"timezone": "Europe/Paris"}), finish="stop"),
    }
    for bad_args in ("27", '"chaccerd"', '["qdeProboc"]', '{"nombea": "surrugo"}', "{oops"):
        forced = {**base, NAMED_KEY: x(call("get_time", raw=bad_args), finish="stop")}
        result = judge(tools.CHOICE, forced)
        assert result.status is Status.FAIL and result.figure == "failed: named", bad_args
        problem = result.evidence[0]["problem"]
        assert problem.startswith("forced call to 'get_time': ")
        assert problem.endswith("invalid_json" if bad_args == "{oops" else "schema_mismatch")
    required = {**base, REQUIRED_KEY: x(call("get_weather", {"city": 3}))}
    result = judge(tools.CHOICE, required)
    assert result.status is Status.FAIL and result.figure == "failed: required"
    unknown = {**base, REQUIRED_KEY: x(call("get_stock", {"ticker": "X"}))}
    assert "unknown_tool" in judge(tools.CHOICE, unknown).evidence[0]["problem"]


# --- tools.parallel ----------------------------------------------------------------------


def test_parallel() -> None:
    (key,) = only(tools.PARALLEL)
    both = x(call(args={"city": "Tokyo"}), call(args={"city": "Paris"}))
    assert judge(tools.PARALLEL, {key: both}).status is Status.PASS
    one = {key: x(call())}
    assert judge(tools.PARALLEL, one).status is Status.FAIL
    assert judge(tools.PARALLEL, one, {key: both}).status is Status.FAIL
    result = judge(tools.PARALLEL, one, {key: x(call())})
    assert result.status is Status.NOT_APPLICABLE
    assert tools.PARALLEL.required is False


# --- tools.multi_turn --------------------------------------------------------------------


def test_multi_turn() -> None:
    (key,) = only(tools.MULTI_TURN)
    answered = x(text="It is sunny and 21 °C in Paris.")
    assert judge(tools.MULTI_TURN, {key: answered}).status is Status.PASS
    assert judge(tools.MULTI_TURN, {key: x(call())}).status is Status.PASS
    result = judge(tools.MULTI_TURN, {key: failed(400)})
    assert result.status is Status.FAIL and result.figure.startswith("rejected: HTTP 400")
    assert "not supported" in result.evidence[0]["error_body"]
    assert judge(tools.MULTI_TURN, {key: x(text=" ", finish="stop")}).status is Status.FAIL
    timeout = x(error=ErrorClass.TIMEOUT, status=0)
    assert judge(tools.MULTI_TURN, {key: timeout}).status is Status.ERROR


# --- tools.streamed ----------------------------------------------------------------------


def twice(plain_answer: Exchange, streamed_answer: Exchange) -> dict[str, Exchange]:
    """tools.streamed's four requests: each ask answered the same way on each path."""
    plain, streamed, plain_again, streamed_again = only(tools.STREAMED)
    return {
        plain: plain_answer,
        streamed: streamed_answer,
        plain_again: plain_answer,
        streamed_again: streamed_answer,
    }


def test_streamed_reassembles_to_the_plain_call() -> None:
    same = twice(x(call(raw='{"city":"Paris"}')), x(call(raw='{ "city": "Paris" }')))
    assert judge(tools.STREAMED, same).status is Status.PASS
    named_stop = twice(x(call(), finish="stop"), x(call(), finish="stop"))
    assert judge(tools.STREAMED, named_stop).status is Status.PASS
    differ = twice(x(call()), x(call(args={"city": "Pa"})))
    result = judge(tools.STREAMED, differ)
    assert result.status is Status.FAIL and len(result.evidence) == 4
    broken = twice(x(call()), x(call(raw='{"city": "Paris"}{"city"')))
    assert judge(tools.STREAMED, broken).figure == "arguments that do not parse as JSON"
    finish = twice(x(call(), finish="stop"), x(call()))
    assert judge(tools.STREAMED, finish).figure.startswith("finish_reason 'stop' plain")
    dropped = twice(x(call()), x(text=""))
    assert judge(tools.STREAMED, dropped).figure == "no tool call in the stream"


# --- tools.responses_api -----------------------------------------------------------------


def test_responses_api() -> None:
    weather, no_fit = only(tools.RESPONSES_API)
    good = {weather: x(call()), no_fit: x(text="Crisp leaves falling")}
    assert judge(tools.RESPONSES_API, good).status is Status.PASS
    assert judge(tools.RESPONSES_API, good, good).status is Status.PASS
    bad = {weather: x(call(args={"town": "Paris"})), no_fit: x(call())}
    result = judge(tools.RESPONSES_API, bad)
    assert result.status is Status.FAIL and result.figure == "0/2 cases as expected"
    assert [e["classification"] for e in result.evidence] == ["schema_mismatch", "unexpected_call"]


def test_responses_api_not_applicable_without_the_endpoint() -> None:
    weather, no_fit = only(tools.RESPONSES_API)
    missing = {weather: failed(404), no_fit: failed(405)}
    result = judge(tools.RESPONSES_API, missing)
    assert result.status is Status.NOT_APPLICABLE and result.figure == "no /v1/responses endpoint"
    good = {weather: x(call()), no_fit: x(text="ok")}
    result = judge(tools.RESPONSES_API, good, missing)
    assert result.status is Status.NOT_APPLICABLE and "reference" in result.figure
    half = {weather: failed(404), no_fit: x(text="ok")}
    assert judge(tools.RESPONSES_API, half).status is Status.FAIL
    assert judge(tools.RESPONSES_API, {k: failed(500) for k in good}).status is Status.ERROR
