"""The fault catalogue on its own: spec parsing and each hook on hand-made bodies (no HTTP)."""

from __future__ import annotations

import json
from fractions import Fraction
from typing import Any

import pytest

from parity.core.errors import ConfigError
from parity.local.faults import (
    FAULTS,
    ActiveFault,
    Ctx,
    Item,
    describe_faults,
    parse_faults,
)

NAMES = [
    "drop",
    "inflate-usage",
    "tool-args-invalid",
    "tool-wrong-name",
    "drop-usage",
    "break-sse",
    "truncate-prompt",
    "delay-first-token",
    "http-429",
    "http-500",
    "inject-system",
    "no-tool-messages",
    "accept-invalid",
    "errors-as-500",
    "strip-reasoning",
]
TOOLS = [{"type": "function", "function": {"name": n}} for n in ("alpha", "beta", "gamma")]


def one(spec: str) -> ActiveFault:
    [fault] = parse_faults(spec)
    return fault


def ctx(spec: str, request: dict[str, Any] | None = None, stream: bool = False) -> Ctx:
    context = one(spec).context("POST", "/chat/completions", request or {})
    context.stream = stream
    return context


def run_events(spec: str, items: list[Item], request: dict[str, Any] | None = None) -> list[Item]:
    fault, context = one(spec).fault, ctx(spec, request, stream=True)
    assert fault.event is not None
    return [out for item in items for out in fault.event(context, item)]


def chunk(delta: dict[str, Any], finish: str | None = None, index: int = 0) -> dict[str, Any]:
    return {
        "id": "c",
        "model": "m",
        "choices": [{"index": index, "delta": delta, "finish_reason": finish}],
    }


def call_delta(index: int, **function: str) -> dict[str, Any]:
    return {"tool_calls": [{"index": index, "function": function}]}


def assemble(items: list[Item]) -> dict[int, dict[str, str]]:
    """Tool calls reassembled from chat stream chunks, as a client does."""
    calls: dict[int, dict[str, str]] = {}
    for item in items:
        assert isinstance(item, dict)
        for choice in item.get("choices", []):
            for call in choice["delta"].get("tool_calls", []):
                target = calls.setdefault(call["index"], {"name": "", "arguments": ""})
                for key in ("name", "arguments"):
                    target[key] += call["function"].get(key) or ""
    return calls


def is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


# --- parsing ---


def test_catalogue_names_and_descriptions() -> None:
    assert [f.name for f in FAULTS] == NAMES
    described = describe_faults()
    assert [d[0] for d in described] == NAMES
    assert all(summary and "\n" not in summary for _, summary, _ in described)
    takes = {name: takes for name, _, takes in described}
    assert takes["drop"] == "a request parameter name"
    assert takes["truncate-prompt"] == "tokens"
    assert takes["break-sse"] is None


def test_parse_in_order_with_values() -> None:
    faults = parse_faults(" drop=reasoning_effort , inflate-usage=20,break-sse,http-429=1/4")
    assert [(f.fault.name, f.value) for f in faults] == [
        ("drop", "reasoning_effort"),
        ("inflate-usage", 20),
        ("break-sse", None),
        ("http-429", Fraction(1, 4)),
    ]
    assert parse_faults("") == parse_faults("  ") == []
    assert one("truncate-prompt=12").value == 12
    assert one("delay-first-token=250").value == 250
    assert one("inflate-usage=12.5%").value == Fraction(25, 2)


@pytest.mark.parametrize(
    ("spec", "bad", "why"),
    [
        ("drop=seed,nope", "nope", "unknown fault"),
        ("nope=3", "nope=3", "unknown fault"),
        ("inflate-usage", "inflate-usage", "needs a value (percent)"),
        ("drop=", "drop=", "needs a value"),
        ("inflate-usage=lots", "inflate-usage=lots", "not a number"),
        ("inflate-usage=-5", "inflate-usage=-5", "negative"),
        ("inflate-usage=0", "inflate-usage=0", "above 0"),
        ("http-429=0", "http-429=0", "not in (0, 1]"),
        ("http-500=1.5", "http-500=1.5", "not in (0, 1]"),
        ("http-500=nan", "http-500=nan", "not a number"),
        ("truncate-prompt=2.5", "truncate-prompt=2.5", "not a whole number"),
        ("delay-first-token=1/0", "delay-first-token=1/0", "not a number"),
        ("break-sse=1", "break-sse=1", "takes no value"),
        ("drop=a b", "drop=a b", "parameter name"),
        ("drop=seed,", "", "unknown fault"),
    ],
)
def test_parse_errors_are_one_line_and_list_the_names(spec: str, bad: str, why: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_faults(spec)
    message = str(caught.value)
    assert "\n" not in message
    assert f"bad fault {bad!r}" in message
    assert why in message
    assert ", ".join(NAMES) in message


# --- request hooks ---


def apply_request(spec: str, body: dict[str, Any]) -> dict[str, Any]:
    fault, context = one(spec).fault, ctx(spec, body)
    assert fault.request is not None
    return fault.request(context, json.loads(json.dumps(body)))


@pytest.mark.parametrize(
    ("param", "gone"),
    [
        ("max_tokens", {"max_tokens", "max_completion_tokens", "max_output_tokens"}),
        ("tools", {"tools", "tool_choice"}),
        ("logprobs", {"logprobs", "top_logprobs"}),
        ("reasoning_effort", {"reasoning_effort", "reasoning"}),
        ("seed", {"seed"}),
        ("anything_else", {"anything_else"}),
    ],
)
def test_drop(param: str, gone: set[str]) -> None:
    keys = [
        "model",
        "seed",
        "max_tokens",
        "max_completion_tokens",
        "max_output_tokens",
        "tools",
        "tool_choice",
        "logprobs",
        "top_logprobs",
        "reasoning_effort",
        "reasoning",
        "anything_else",
    ]
    body = apply_request(f"drop={param}", dict.fromkeys(keys, 1))
    assert set(body) == set(keys) - gone


def test_truncate_prompt_counts_words_across_messages() -> None:
    body = {
        "messages": [
            {"role": "system", "content": "one two  three"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "four five six"},
                    {"type": "image_url", "image_url": {"url": "x"}},
                    {"type": "text", "text": "seven"},
                ],
            },
            {"role": "assistant", "content": None, "tool_calls": []},
            {"role": "user", "content": "eight"},
        ]
    }
    out = apply_request("truncate-prompt=4", body)["messages"]
    assert out[0]["content"] == "one two  three"  # within budget: untouched
    assert [p.get("text") for p in out[1]["content"]] == ["four", None, ""]
    assert out[2]["content"] is None
    assert out[3]["content"] == ""
    assert [m["role"] for m in out] == ["system", "user", "assistant", "user"]
    assert apply_request("truncate-prompt=0", body)["messages"][0]["content"] == ""


def test_truncate_prompt_responses_input() -> None:
    assert apply_request("truncate-prompt=2", {"input": "a b c d"})["input"] == "a b"
    body = {"input": [{"role": "user", "content": [{"type": "input_text", "text": "a b c"}]}]}
    out = apply_request("truncate-prompt=1", body)
    assert out["input"][0]["content"][0]["text"] == "a"


# --- response and event hooks ---


def apply_response(spec: str, body: dict[str, Any], request: dict[str, Any] | None = None) -> Any:
    fault, context = one(spec).fault, ctx(spec, request)
    assert fault.response is not None
    return fault.response(context, body)


def test_inflate_usage_rounds_up_exactly() -> None:
    usage = {"prompt_tokens": 7, "completion_tokens": 10, "total_tokens": 17}
    out = apply_response("inflate-usage=20", {"usage": dict(usage)})["usage"]
    assert out == {"prompt_tokens": 7, "completion_tokens": 12, "total_tokens": 19}  # not 13
    out = apply_response("inflate-usage=25", {"usage": dict(usage)})["usage"]
    assert out["completion_tokens"] == 13  # 12.5 rounded up
    responses = {"usage": {"input_tokens": 5, "output_tokens": 3, "total_tokens": 8}}
    assert apply_response("inflate-usage=100", responses)["usage"]["total_tokens"] == 11
    [event] = run_events("inflate-usage=50", [{"response": {"usage": {"output_tokens": 4}}}])
    assert isinstance(event, dict) and event["response"]["usage"]["output_tokens"] == 6


def test_tool_args_invalid_non_stream() -> None:
    calls = [{"function": {"name": "a", "arguments": args}} for args in ('{"x": 1}', "{}", "")]
    body = {
        "choices": [{"index": 0, "message": {"tool_calls": calls}}],
        "output": [{"type": "function_call", "name": "a", "arguments": '{"y": 2} '}],
    }
    out = apply_response("tool-args-invalid", body)
    broken = [c["function"]["arguments"] for c in out["choices"][0]["message"]["tool_calls"]]
    assert broken == ['{"x": 1,"', '{,"', ',"']
    assert out["output"][0]["arguments"] == '{"y": 2,"'
    assert not any(is_json(args) for args in [*broken, out["output"][0]["arguments"]])


def test_tool_args_invalid_stream_extra_delta_before_finish() -> None:
    items: list[Item] = [
        chunk({"role": "assistant"}),
        chunk(call_delta(0, name="a", arguments="")),
        chunk(call_delta(0, arguments='{"x": 1}')),
        chunk(call_delta(1, name="b", arguments="{}")),
        chunk({}, "tool_calls"),
        {"id": "c", "choices": [], "usage": {"completion_tokens": 3}},
        "[DONE]",
    ]
    out = run_events("tool-args-invalid", items)
    assert len(out) == len(items) + 1
    extra = out[4]
    assert isinstance(extra, dict) and extra["id"] == "c" and extra["model"] == "m"
    assert out[5] == items[4]
    calls = assemble([i for i in out if isinstance(i, dict)])
    assert [c["arguments"] for c in calls.values()] == ['{"x": 1},"', '{},"']
    assert not any(is_json(c["arguments"]) for c in calls.values())


def test_tool_args_invalid_stream_finish_in_same_chunk_or_no_finish() -> None:
    out = run_events("tool-args-invalid", [chunk(call_delta(0, name="a", arguments="{}"), "stop")])
    assert assemble(out)[0]["arguments"] == '{},"'
    out = run_events("tool-args-invalid", [chunk(call_delta(0, arguments="{}")), "[DONE]"])
    assert out[-1] == "[DONE]" and assemble(out[:-1])[0]["arguments"] == '{},"'


def test_tool_wrong_name_next_tool_cyclically() -> None:
    request = {"tools": TOOLS}
    calls = [{"function": {"name": n, "arguments": "{}"}} for n in ("alpha", "gamma", "other")]
    body = {
        "choices": [{"index": 0, "message": {"tool_calls": calls}}],
        "output": [{"type": "function_call", "name": "beta", "arguments": "{}"}],
    }
    out = apply_response("tool-wrong-name", body, request)
    names = [c["function"]["name"] for c in out["choices"][0]["message"]["tool_calls"]]
    assert names == ["beta", "alpha", "alpha"]
    assert out["output"][0]["name"] == "gamma"
    single = {"choices": [{"index": 0, "message": {"tool_calls": calls[:1]}}]}
    out = apply_response("tool-wrong-name", single, {"tools": TOOLS[:1]})
    assert out["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "unknown_tool"


def test_tool_wrong_name_stream_name_in_pieces() -> None:
    items: list[Item] = [
        chunk(call_delta(0, name="al")),
        chunk(call_delta(0, name="pha", arguments="{}")),
        chunk(call_delta(1, name="beta", arguments="{}")),
        chunk(call_delta(1, name="beta")),  # a provider that repeats the name whole
    ]
    calls = assemble(run_events("tool-wrong-name", items, {"tools": TOOLS}))
    assert [c["name"] for c in calls.values()] == ["beta", "gamma"]


def test_drop_usage_in_streams_and_answers() -> None:
    usage = {"completion_tokens": 1}
    out = run_events(
        "drop-usage",
        [chunk({"content": "x"}) | {"usage": usage}, {"choices": [], "usage": usage}, "[DONE]"],
    )
    assert out == [chunk({"content": "x"}), "[DONE]"]
    [event] = run_events("drop-usage", [{"type": "response.completed", "response": {"usage": 1}}])
    assert event == {"type": "response.completed", "response": {}}
    active = one("drop-usage")
    hook = active.fault.response
    assert hook is not None
    assert hook(active.context("POST", "/chat/completions", {}), {"usage": {}, "id": 1}) == {
        "id": 1
    }


def test_break_sse_cuts_the_third_event_and_drops_done() -> None:
    items: list[Item] = [chunk({"content": str(i)}) for i in range(5)] + ["[DONE]"]
    out = run_events("break-sse", items)
    assert len(out) == 5 and "[DONE]" not in out
    assert out[:2] == items[:2] and out[3:] == items[3:5]
    cut = out[2]
    assert isinstance(cut, str) and not is_json(cut)
    assert json.dumps(items[2], separators=(",", ":")).startswith(cut)


def test_strip_reasoning() -> None:
    body = {
        "choices": [
            {"index": 0, "message": {"content": "a", "reasoning_content": "r", "reasoning": "r"}}
        ],
        "output": [{"type": "reasoning"}, {"type": "message"}],
    }
    out = apply_response("strip-reasoning", body)
    assert out == {
        "choices": [{"index": 0, "message": {"content": "a"}}],
        "output": [{"type": "message"}],
    }
    items: list[Item] = [
        chunk({"reasoning_content": "r"}),
        chunk({"content": "a", "reasoning": "r"}),
        {"type": "response.reasoning_summary_text.delta", "delta": "r"},
        {"type": "response.output_item.added", "item": {"type": "reasoning"}},
        {"type": "response.completed", "response": {"output": [{"type": "reasoning"}]}},
        "[DONE]",
    ]
    assert run_events("strip-reasoning", items) == [
        chunk({}),
        chunk({"content": "a"}),
        {"type": "response.completed", "response": {"output": []}},
        "[DONE]",
    ]


def test_delay_first_token_waits_once_before_generated_text() -> None:
    fault = one("delay-first-token=250").fault
    assert fault.delay is not None
    context = ctx("delay-first-token=250", stream=True)
    waits = [
        fault.delay(context, item)
        for item in (
            chunk({"role": "assistant", "content": ""}),
            chunk({"content": "a"}),
            chunk({"content": "b"}),
        )
    ]
    assert waits == [0, 0.25, 0]
    assert fault.delay(ctx("delay-first-token=250"), {"choices": []}) == 0.25  # non-streamed
    response_stream = ctx("delay-first-token=100", stream=True)
    assert fault.delay(response_stream, {"type": "response.output_text.delta"}) == 0.1


@pytest.mark.parametrize(
    ("rate", "failing"),
    [("0.5", [2, 4, 6]), ("1/3", [3, 6]), ("1", [1, 2, 3, 4, 5, 6]), ("0.25", [4])],
)
def test_rate_is_deterministic(rate: str, failing: list[int]) -> None:
    active = one(f"http-500={rate}")
    status = active.fault.status
    assert status is not None
    answers = [status(active.context("POST", "/chat/completions", {})) for _ in range(6)]
    assert [i for i, reply in enumerate(answers, 1) if reply] == failing
    assert status(active.context("GET", "/models", {})) is None  # GETs are not counted
    reply = next(r for r in answers if r)
    assert reply.status == 500
    assert reply.body == {"error": {"message": "internal error (injected)", "type": "server_error"}}


def test_429_reply_and_fresh_counters() -> None:
    active = one("http-429=1")
    assert active.fault.status is not None
    reply = active.fault.status(active.context("POST", "/x", {}))
    assert reply is not None and reply.status == 429 and reply.headers == {"Retry-After": "0"}
    assert reply.body["error"]["type"] == "rate_limit_error"
    half = one("http-429=0.5")
    assert half.fault.status is not None
    half.fault.status(half.context("POST", "/x", {}))
    fresh = half.fresh()
    assert fresh.fault.status is not None
    assert fresh.fault.status(fresh.context("POST", "/x", {})) is None  # its request 1, not 2


# --- faults that stand for template, gateway and validation problems ---


def test_inject_system_prepends_a_system_message() -> None:
    active = one("inject-system")
    hook = active.fault.request
    assert hook is not None
    ctx = active.context("POST", "/chat/completions", {})
    body = hook(ctx, {"messages": [{"role": "user", "content": "hi"}]})
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert "instructions" in hook(ctx, {"input": "hi"})


def test_no_tool_messages_refuses_tool_results_only() -> None:
    active = one("no-tool-messages")
    status = active.fault.status
    assert status is not None
    plain = {"messages": [{"role": "user", "content": "hi"}]}
    assert status(active.context("POST", "/chat/completions", plain)) is None
    tool = {"messages": [*plain["messages"], {"role": "tool", "content": "{}"}]}
    reply = status(active.context("POST", "/chat/completions", tool))
    assert reply is not None and reply.status == 400 and "error" in reply.body
    responses = {"input": [{"type": "function_call_output", "call_id": "c", "output": "{}"}]}
    assert status(active.context("POST", "/responses", responses)) is not None


def test_accept_invalid_clamps_values_and_drops_the_model() -> None:
    active = one("accept-invalid")
    hook = active.fault.request
    assert hook is not None
    body = hook(
        active.context("POST", "/chat/completions", {}),
        {"model": "nope", "temperature": -1, "top_p": 2, "n": 0, "max_tokens": 0, "seed": 3},
    )
    assert body == {"temperature": 0.0, "top_p": 1.0, "n": 1, "seed": 3}


def test_errors_as_500_rewrites_client_errors_only() -> None:
    active = one("errors-as-500")
    failure = active.fault.failure
    assert failure is not None
    ctx = active.context("POST", "/chat/completions", {})
    reply = failure(ctx, 400)
    assert reply is not None and reply.status == 500
    assert failure(ctx, 503) is None
