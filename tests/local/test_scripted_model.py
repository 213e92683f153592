"""The scripted reasoning model: pure generation logic, and the wire over a real socket."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import pytest

from parity.local.scripted_model import (
    CONTEXT_WINDOW,
    MODEL_ID,
    RequestError,
    create_app,
    detokenize,
    generate,
    prompt_tokens,
    tokenize,
)
from parity.local.serve import BackgroundServer

WEATHER: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
        },
    },
}
STOCK: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_stock_price",
        "description": "Look up the latest stock price of a company by ticker",
        "parameters": {
            "type": "object",
            "properties": {"ticker": {"type": "string"}},
            "required": ["ticker"],
        },
    },
}
PROMPTS = [
    "What is the capital of France?",
    "Name three primary colours.",
    "Write a long essay about the history of the bicycle.",
    "Why is the sky blue?",
]


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def body(text: str = PROMPTS[0], **extra: Any) -> dict[str, Any]:
    return {"model": MODEL_ID, "messages": user(text), **extra}


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    with BackgroundServer(create_app()) as server:
        yield server.url + "/v1"


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as c:
        yield c


def post(client: httpx.Client, url: str, payload: dict[str, Any]) -> dict[str, Any]:
    response = client.post(url, json=payload)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def stream(client: httpx.Client, url: str, payload: dict[str, Any]) -> list[Any]:
    """The decoded `data:` payloads of a stream, `[DONE]` kept as the string."""
    with client.stream("POST", url, json={**payload, "stream": True}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = response.read().decode()
    events = [block for block in raw.split("\n\n") if block]
    assert all(e.startswith("data: ") for e in events)
    return [e[6:] if e == "data: [DONE]" else json.loads(e[6:]) for e in events]


# --- pure logic -----------------------------------------------------------------------------


def test_detokenize_round_trips_and_renders_json() -> None:
    text = 'The answer is forty-two. {"a": [1.5, "b c"], "d": {}}'
    assert detokenize(tokenize(text)) == text
    assert tokenize(detokenize(["x", "(", "y", ")", ".", "z"])) == ["x", "(", "y", ")", ".", "z"]


def test_usage_adds_up_and_matches_prompt_tokens() -> None:
    for text in PROMPTS:
        payload = body(text, temperature=0, tools=[WEATHER])
        gen = generate(payload)
        choice = gen.choices[0]
        usage = gen.usage
        assert usage["prompt_tokens"] == prompt_tokens(payload)
        returned = len(tokenize(choice.reasoning)) + len(tokenize(choice.content or ""))
        returned += sum(len(tokenize(c.name + " " + c.arguments)) for c in choice.tool_calls)
        assert usage["completion_tokens"] == returned
        assert usage["completion_tokens_details"]["reasoning_tokens"] == choice.reasoning_tokens
        assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_prompt_tokens_count_the_template_and_tools() -> None:
    plain = body("Hi there")
    # <|start|>user<|message|>Hi there<|end|><|start|>assistant: 5+1+5+2+5+5+1 tokens
    assert prompt_tokens(plain) == 24
    assert prompt_tokens({**plain, "tools": [WEATHER]}) > prompt_tokens(plain) + 20


@pytest.mark.parametrize("limit", [1, 8, 47, 60, 70])
def test_max_tokens_cuts_exactly_reasoning_included(limit: int) -> None:
    gen = generate(body(PROMPTS[2], temperature=0, max_tokens=limit))
    choice = gen.choices[0]
    assert choice.finish_reason == "length"
    assert gen.usage["completion_tokens"] == limit
    if limit <= choice.reasoning_tokens:
        assert choice.content is None  # the budget ended inside the reasoning
    else:
        assert len(tokenize(choice.content or "")) == limit - choice.reasoning_tokens


def test_stop_string_ends_the_answer_before_it() -> None:
    full = generate(body(temperature=0)).choices[0].content or ""
    gen = generate(body(temperature=0, stop=["four", "nine"]))
    choice = gen.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.content == full[: full.index("four")]
    assert gen.usage["completion_tokens"] == choice.reasoning_tokens + len(
        tokenize(choice.content or "")
    )


def test_temperature_zero_and_fixed_seed_are_deterministic() -> None:
    cold = {generate(body(temperature=0)).choices[0].content for _ in range(5)}
    assert len(cold) == 1
    seeded = {generate(body(temperature=1.5, seed=7)).choices[0].content for _ in range(5)}
    assert len(seeded) == 1
    other_seeds = {generate(body(temperature=1.5, seed=s)).choices[0].content for s in range(20)}
    assert len(other_seeds) > 1


def distinct(**sampling: Any) -> int:
    return len({generate(body(**sampling)).choices[0].content for _ in range(20)})


def test_more_temperature_more_diversity_and_top_p_narrows() -> None:
    assert distinct(temperature=1.5) > distinct(temperature=0.2)
    assert distinct(temperature=0.2) <= 2
    assert distinct(temperature=1.5, top_p=0.01) == 1


def test_n_gives_distinct_indexed_choices_and_summed_usage() -> None:
    gen = generate(body(temperature=1.0, seed=3, n=3))
    assert [c.index for c in gen.choices] == [0, 1, 2]
    assert gen.usage["completion_tokens"] == sum(c.completion_tokens for c in gen.choices)


def test_reasoning_effort_orders_reasoning_length() -> None:
    for text in PROMPTS:
        counts = [
            generate(body(text, reasoning_effort=e)).choices[0].reasoning_tokens
            for e in ("low", "medium", "high")
        ]
        assert counts[0] < counts[1] < counts[2]
    lengths = {
        generate(body(t, reasoning_effort="low")).choices[0].reasoning_tokens for t in PROMPTS
    }
    assert len(lengths) > 1  # varies with the prompt


def test_auto_tool_call_fits_the_message() -> None:
    choice = generate(body("What's the weather in Paris?", tools=[STOCK, WEATHER])).choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.content is None
    assert choice.reasoning
    [call] = choice.tool_calls
    assert call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "Paris"}
    assert call.id.startswith("call_")


def test_no_call_when_no_tool_fits_or_choice_is_none() -> None:
    choice = generate(body("What is the capital of France?", tools=[WEATHER])).choices[0]
    assert not choice.tool_calls and choice.content and choice.finish_reason == "stop"
    none = generate(body("Weather in Paris?", tools=[WEATHER], tool_choice="none")).choices[0]
    assert not none.tool_calls and none.content


def test_required_and_named_tool_choice_force_a_call() -> None:
    required = generate(body("Tell me a joke", tools=[WEATHER], tool_choice="required"))
    assert required.choices[0].tool_calls[0].name == "get_weather"
    named = {"type": "function", "function": {"name": "get_stock_price"}}
    forced = generate(body("Weather in Paris?", tools=[WEATHER, STOCK], tool_choice=named))
    [call] = forced.choices[0].tool_calls
    assert call.name == "get_stock_price"
    assert set(json.loads(call.arguments)) == {"ticker"}


def test_parallel_calls_one_per_place() -> None:
    gen = generate(body("What is the weather in Paris and Tokyo, in fahrenheit?", tools=[WEATHER]))
    calls = gen.choices[0].tool_calls
    assert [json.loads(c.arguments) for c in calls] == [
        {"city": "Paris", "unit": "fahrenheit"},
        {"city": "Tokyo", "unit": "fahrenheit"},
    ]
    assert len({c.id for c in calls}) == 2
    single = generate(
        body("Weather in Paris and Tokyo?", tools=[WEATHER], parallel_tool_calls=False)
    )
    assert len(single.choices[0].tool_calls) == 1


def test_tool_result_turn_answers_from_the_result() -> None:
    first = generate(body("What's the weather in Paris?", tools=[WEATHER])).choices[0]
    call = first.tool_calls[0]
    messages = [
        *user("What's the weather in Paris?"),
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call.id, "content": "sunny and 21 degrees"},
    ]
    choice = generate({"messages": messages, "tools": [WEATHER], "temperature": 0}).choices[0]
    assert not choice.tool_calls
    assert choice.content == "Based on the tool result: sunny and 21 degrees"


def test_json_schema_output_validates() -> None:
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "age": {"type": "integer", "minimum": 18},
            "score": {"type": "number"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "kind": {"type": "string", "enum": ["cat", "dog"]},
            "ok": {"type": "boolean"},
            "address": {"type": "object", "properties": {"zip": {"type": "string"}}},
        },
        "required": ["name", "age", "score", "tags", "kind", "ok", "address"],
        "additionalProperties": False,
    }
    fmt = {"type": "json_schema", "json_schema": {"name": "person", "schema": schema}}
    for temperature in (0, 1.5):
        content = generate(body(response_format=fmt, temperature=temperature)).choices[0].content
        jsonschema.validate(json.loads(content or ""), schema)
    plain = generate(body(response_format={"type": "json_object"})).choices[0].content
    assert set(json.loads(plain or "")) == {"answer"}


def test_needle_retrieval() -> None:
    haystack = " ".join(f"{i}. The train was late again." for i in range(200))
    text = f"{haystack} The secret word is marmalade. {haystack}\n\nWhat is the secret word?"
    choice = generate(body(text, temperature=0)).choices[0]
    assert choice.content == "marmalade"


def test_validation_errors_name_their_param() -> None:
    cases = {
        "temperature": {"temperature": -1},
        "top_p": {"top_p": 2},
        "n": {"n": 0},
        "max_tokens": {"max_tokens": 0},
        "top_logprobs": {"logprobs": True, "top_logprobs": 21},
        "reasoning_effort": {"reasoning_effort": "extreme"},
        "tool_choice": {"tools": [WEATHER], "tool_choice": {"function": {"name": "nope"}}},
        "max_completion_tokens": {"max_completion_tokens": 0},
    }
    for param, extra in cases.items():
        with pytest.raises(RequestError) as info:
            generate(body(**extra))
        assert info.value.param == param and info.value.status == 400
    with pytest.raises(RequestError) as info:
        generate({"messages": []})
    assert info.value.param == "messages"


# --- the wire ------------------------------------------------------------------------------


def test_models_lists_the_model(base: str, client: httpx.Client) -> None:
    data = client.get(base + "/models").json()
    assert data["object"] == "list"
    [model] = data["data"]
    assert model["id"] == MODEL_ID and model["owned_by"] == "parity"
    assert model["context_length"] == model["max_model_len"] == CONTEXT_WINDOW


def test_chat_completion_over_the_wire(base: str, client: httpx.Client) -> None:
    payload = body(PROMPTS[1], temperature=0, max_tokens=8)
    data = post(client, base + "/chat/completions", payload)
    assert data["object"] == "chat.completion" and data["model"] == MODEL_ID
    [choice] = data["choices"]
    assert choice["finish_reason"] == "length" and choice["message"]["content"] is None
    assert data["usage"]["completion_tokens"] == 8
    assert data["usage"]["prompt_tokens"] == prompt_tokens(payload)
    assert choice["message"]["reasoning_content"]


def test_logprobs_are_well_formed(base: str, client: httpx.Client) -> None:
    payload = body(temperature=0, logprobs=True, top_logprobs=5)
    data = post(client, base + "/chat/completions", payload)
    choice = data["choices"][0]
    entries = choice["logprobs"]["content"]
    assert "".join(e["token"] for e in entries) == choice["message"]["content"]
    assert (
        len(entries)
        == data["usage"]["completion_tokens"]
        - data["usage"]["completion_tokens_details"]["reasoning_tokens"]
    )
    for e in entries:
        tops = e["top_logprobs"]
        assert len(tops) == 5 and e["logprob"] <= 0
        assert [t["logprob"] for t in tops] == sorted((t["logprob"] for t in tops), reverse=True)
        assert tops[0]["token"] == e["token"]  # temperature 0: the top token is chosen
        assert sum(math.exp(t["logprob"]) for t in tops) <= 1.0001
        assert bytes(e["bytes"]).decode() == e["token"]


@pytest.mark.parametrize(
    "extra",
    [
        {"temperature": 0, "max_tokens": 64},
        {"temperature": 0.8, "seed": 11, "stop": "six"},
        {"tools": [WEATHER], "content": "What is the weather in Paris and Tokyo?"},
    ],
)
def test_stream_reassembles_the_plain_answer(
    base: str, client: httpx.Client, extra: dict[str, Any]
) -> None:
    payload = body(extra.pop("content", PROMPTS[1]), **extra)
    plain = post(client, base + "/chat/completions", payload)
    options = {"stream_options": {"include_usage": True}}
    events = stream(client, base + "/chat/completions", {**payload, **options})
    assert events[-1] == "[DONE]"
    usage_chunk = events[-2]
    assert usage_chunk["choices"] == [] and usage_chunk["usage"] == plain["usage"]
    chunks = events[:-2]
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == MODEL_ID for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant"}
    final = chunks[-1]["choices"][0]
    assert final["delta"] == {} and final["finish_reason"] == plain["choices"][0]["finish_reason"]
    deltas = [c["choices"][0]["delta"] for c in chunks]
    message = plain["choices"][0]["message"]
    assert "".join(d.get("reasoning_content", "") for d in deltas) == message["reasoning_content"]
    content = "".join(d.get("content", "") for d in deltas)
    assert content == (message["content"] or "")
    calls: dict[int, dict[str, Any]] = {}
    for d in deltas:
        for piece in d.get("tool_calls", []):
            call = calls.setdefault(piece["index"], {"arguments": ""})
            call.update({k: piece[k] for k in ("id", "type") if k in piece})
            call["name"] = piece["function"].get("name", call.get("name"))
            call["arguments"] += piece["function"]["arguments"]
    expected = [
        {"id": c["id"], "type": c["type"], **c["function"]} for c in message.get("tool_calls", [])
    ]
    assert [calls[i] for i in sorted(calls)] == expected


def test_context_overflow_is_refused(base: str, client: httpx.Client) -> None:
    payload = body("word " * CONTEXT_WINDOW)
    response = client.post(base + "/chat/completions", json=payload)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "context_length_exceeded" and error["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("payload", "status", "param"),
    [
        (body(temperature=-1), 400, "temperature"),
        (body(top_p=2), 400, "top_p"),
        (body(n=0), 400, "n"),
        ({**body(), "model": "gpt-nope"}, 404, "model"),
    ],
)
def test_bad_requests_get_openai_errors(
    base: str, client: httpx.Client, payload: dict[str, Any], status: int, param: str
) -> None:
    response = client.post(base + "/chat/completions", json=payload)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error"
    assert isinstance(error["message"], str) and "code" in error
    if status == 404:
        assert error["code"] == "model_not_found"


def test_malformed_body_and_unknown_route(base: str, client: httpx.Client) -> None:
    response = client.post(
        base + "/chat/completions",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400 and "error" in response.json()
    missing = client.post(base + "/completions", json=body())
    assert missing.status_code == 404 and "error" in missing.json()


RESPONSES_WEATHER: dict[str, Any] = {"type": "function", **WEATHER["function"]}


def test_responses_api_tool_call_then_text(base: str, client: httpx.Client) -> None:
    first = post(
        client,
        base + "/responses",
        {"model": MODEL_ID, "input": "What's the weather in Paris?", "tools": [RESPONSES_WEATHER]},
    )
    assert first["object"] == "response" and first["status"] == "completed"
    kinds = [item["type"] for item in first["output"]]
    assert kinds == ["reasoning", "function_call"]
    call = first["output"][1]
    assert call["name"] == "get_weather" and json.loads(call["arguments"]) == {"city": "Paris"}
    usage = first["usage"]
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert usage["output_tokens_details"]["reasoning_tokens"] > 0

    follow = [
        {"role": "user", "content": "What's the weather in Paris?"},
        {
            "type": "function_call",
            "call_id": call["call_id"],
            "name": call["name"],
            "arguments": call["arguments"],
        },
        {"type": "function_call_output", "call_id": call["call_id"], "output": "rain"},
    ]
    second = post(
        client,
        base + "/responses",
        {"model": MODEL_ID, "input": follow, "tools": [RESPONSES_WEATHER], "temperature": 0},
    )
    message = second["output"][-1]
    assert message["type"] == "message" and message["role"] == "assistant"
    assert message["content"][0]["text"] == "Based on the tool result: rain"


def test_responses_api_text_limits_and_errors(base: str, client: httpx.Client) -> None:
    text = post(client, base + "/responses", {"input": PROMPTS[0], "temperature": 0})
    assert text["output"][-1]["content"][0]["type"] == "output_text"
    cut = post(
        client,
        base + "/responses",
        {"input": PROMPTS[0], "max_output_tokens": 5, "reasoning": {"effort": "low"}},
    )
    assert cut["status"] == "incomplete"
    assert cut["incomplete_details"] == {"reason": "max_output_tokens"}
    assert cut["usage"]["output_tokens"] == 5
    bad = client.post(base + "/responses", json={"input": PROMPTS[0], "max_output_tokens": 0})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "max_output_tokens"
