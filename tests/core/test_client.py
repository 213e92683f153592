"""ProviderClient against the scripted server: assembly, timings, errors, retries, secrets."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from parity.core.client import ModelsProbe, ProviderClient, _parse_retry_after
from parity.core.config import Provider
from parity.core.exchange import ErrorClass, Exchange
from tests.scripted_server import (
    MODEL_ID,
    OK_PIECES,
    REASONING_PIECES,
    TOOL_CALLS,
    Reply,
    Request,
    ScriptedServer,
    chunk,
    unused_port,
)

KEY = "sk-parity-FAKE-1234567890"
KEY_ENV = "PARITY_TEST_CLIENT_KEY"
BODY: dict[str, Any] = {"messages": [{"role": "user", "content": "Say hello"}], "max_tokens": 16}


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as running:
        yield running


def provider(base_url: str, **overrides: Any) -> Provider:
    settings: dict[str, Any] = {
        "name": "scripted",
        "base_url": base_url,
        "model": "test-model",
        "api_key_env": KEY_ENV,
        "timeout_s": 2.0,
    }
    settings.update(overrides)
    return Provider(**settings)


async def chat(
    base_url: str,
    *,
    stream: bool,
    body: dict[str, Any] | None = None,
    retries: int = 3,
    **overrides: Any,
) -> Exchange:
    async with ProviderClient(
        provider(base_url, **overrides), retries=retries, backoff_s=0.01, max_backoff_s=0.05
    ) as client:
        exchange = await client.chat(BODY if body is None else body, stream=stream)
    assert_no_key(exchange)
    return exchange


def assert_no_key(exchange: Exchange) -> None:
    dumped = json.dumps(exchange.to_dict())
    assert KEY not in dumped
    assert Exchange.from_dict(json.loads(dumped)) == exchange


def assert_ordered(exchange: Exchange) -> None:
    t = exchange.timings
    assert t.headers is not None and t.first_chunk is not None and t.end is not None
    assert t.first_token_chunk is not None and t.first_answer_chunk is not None
    assert t.sent <= t.headers <= t.first_chunk <= t.first_token_chunk
    assert t.first_token_chunk <= t.first_answer_chunk <= t.end
    assert t.token_chunks == sorted(t.token_chunks)
    assert t.token_chunks[0] == t.first_token_chunk
    assert t.token_chunks[-1] <= t.end


# ---- well-formed answers ---------------------------------------------------------------------


async def test_streamed_ok(server: ScriptedServer) -> None:
    ex = await chat(server.base("ok"), stream=True)
    assert ex.ok and ex.status == 200 and ex.attempts == 1
    assert ex.text == "Hello, world!"
    assert ex.reasoning == "" and ex.reasoning_field is None
    assert ex.finish_reason == "stop"
    assert ex.usage == {"prompt_tokens": 12, "completion_tokens": 4, "total_tokens": 16}
    assert ex.raw is None
    # role chunk + 4 content chunks + finish chunk + usage chunk; [DONE] is not kept
    assert len(ex.chunks) == 7 and all(json.loads(c)["model"] == MODEL_ID for c in ex.chunks)
    assert_ordered(ex)
    assert len(ex.timings.token_chunks) == len(OK_PIECES)
    # the role-only chunk is not a token chunk
    assert ex.timings.first_chunk is not None and ex.timings.first_token_chunk is not None
    assert ex.timings.first_chunk < ex.timings.first_token_chunk
    ttft = ex.ttft_ms()
    assert ttft is not None and ttft > 0
    assert ex.ttfat_ms() == ttft
    assert len(ex.itl_ms()) == len(OK_PIECES) - 1 and all(gap >= 0 for gap in ex.itl_ms())
    e2e = ex.e2e_ms()
    assert e2e is not None and e2e >= ttft
    assert ex.output_tokens_per_s() is not None


async def test_request_body_and_headers(server: ScriptedServer) -> None:
    ex = await chat(
        server.base("ok"),
        stream=True,
        extra_body={"temperature": 0, "max_tokens": 1},
        headers={"X-Team": "parity"},
    )
    expected = {
        "temperature": 0,
        "max_tokens": 16,  # the call's body wins over extra_body
        "messages": BODY["messages"],
        "model": "test-model",
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    assert ex.request == expected
    (received,) = server.received("ok")
    assert received.json() == expected
    assert received.endpoint == "/chat/completions" and received.method == "POST"
    assert received.headers["authorization"] == f"Bearer {KEY}"
    assert received.headers["x-team"] == "parity"
    assert received.headers["content-type"] == "application/json"


async def test_body_stream_options_and_model_precedence(server: ScriptedServer) -> None:
    body = {**BODY, "model": "other", "stream": False, "stream_options": {"include_usage": False}}
    ex = await chat(server.base("ok"), stream=True, body=body)
    # A body may name another model (conformance asks for an unknown one on purpose).
    assert ex.request["model"] == "other" and ex.request["stream"] is True
    assert ex.request["stream_options"] == {"include_usage": False}
    ex = await chat(server.base("ok"), stream=False)
    assert "stream_options" not in ex.request and ex.request["stream"] is False


async def test_request_is_a_copy(server: ScriptedServer) -> None:
    body = {"messages": [{"role": "user", "content": "hi"}]}
    ex = await chat(server.base("ok"), stream=False, body=body)
    body["messages"].append({"role": "user", "content": "later"})
    assert len(ex.request["messages"]) == 1


async def test_no_key_no_authorization_header(server: ScriptedServer) -> None:
    ex = await chat(server.base("ok"), stream=False, api_key_env=None)
    assert ex.ok
    assert "authorization" not in server.received("ok")[0].headers


async def test_non_streamed_ok(server: ScriptedServer) -> None:
    ex = await chat(server.base("ok"), stream=False)
    assert ex.ok and ex.status == 200 and not ex.stream
    assert ex.text == "Hello, world!" and ex.finish_reason == "stop"
    assert ex.usage is not None and ex.completion_tokens() == 4 and ex.prompt_tokens() == 12
    assert ex.raw is not None and json.loads(ex.raw)["object"] == "chat.completion"
    assert ex.chunks == []
    t = ex.timings
    assert t.first_token_chunk is None and t.first_answer_chunk is None and t.token_chunks == []
    assert t.headers is not None and t.first_chunk is not None and t.end is not None
    assert t.sent <= t.headers <= t.first_chunk <= t.end
    assert ex.ttft_ms() is None and ex.e2e_ms() is not None


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
@pytest.mark.parametrize("stream", [True, False])
async def test_reasoning(server: ScriptedServer, field: str, stream: bool) -> None:
    scenario = "reasoning" if field == "reasoning_content" else "reasoning-field"
    ex = await chat(server.base(scenario), stream=stream)
    assert ex.ok
    assert ex.reasoning == "".join(REASONING_PIECES) and ex.reasoning_field == field
    assert ex.text == "Hello, world!"
    if stream:
        assert_ordered(ex)
        t = ex.timings
        assert t.first_token_chunk is not None and t.first_answer_chunk is not None
        assert t.first_token_chunk < t.first_answer_chunk  # reasoning came first
        assert len(t.token_chunks) == len(REASONING_PIECES) + len(OK_PIECES)
        ttfat, ttft = ex.ttfat_ms(), ex.ttft_ms()
        assert ttfat is not None and ttft is not None and ttfat > ttft


@pytest.mark.parametrize("stream", [True, False])
async def test_tool_calls(server: ScriptedServer, stream: bool) -> None:
    ex = await chat(server.base("tools"), stream=stream)
    assert ex.ok and ex.finish_reason == "tool_calls" and ex.text == ""
    assert ex.tool_calls == TOOL_CALLS
    for call in ex.tool_calls:
        json.loads(call["function"]["arguments"])
    if stream:
        assert len(ex.timings.token_chunks) > 2  # argument pieces count as generated output
        assert ex.timings.first_answer_chunk is None


async def test_crlf_comments_and_multiline_data(server: ScriptedServer) -> None:
    ex = await chat(server.base("crlf"), stream=True)
    assert ex.ok, ex.error_detail
    assert ex.text == "Hello there" and ex.finish_reason == "stop"
    assert ex.completion_tokens() == 2
    assert len(ex.chunks) == 4 and "\n" in ex.chunks[1]  # multi-line data kept verbatim


async def test_custom_scenario_and_client_reuse() -> None:
    async def split_name(req: Request, reply: Reply) -> None:
        await reply.start(headers={"X-Custom": "1"})
        deltas = [
            {"tool_calls": [{"index": 0, "id": "c", "function": {"name": "get_"}}]},
            {"tool_calls": [{"index": 0, "function": {"name": "weather", "arguments": "{}"}}]},
        ]
        for delta in deltas:
            await reply.event(chunk(delta))
        await reply.done()

    with ScriptedServer(scenarios={"split-name": split_name}) as server:
        async with ProviderClient(provider(server.base("split-name")), backoff_s=0.01) as client:
            first = await client.chat(BODY, stream=True)
            second = await client.chat(BODY, stream=True)
        assert server.count("split-name") == 2
    for ex in (first, second):
        assert ex.ok
        assert ex.tool_calls == [
            {"id": "c", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
        ]


# ---- errors ----------------------------------------------------------------------------------


async def test_connect_error_is_retried() -> None:
    ex = await chat(f"http://127.0.0.1:{unused_port()}/v1", stream=True, retries=2)
    assert ex.error is ErrorClass.CONNECT and ex.status is None and ex.attempts == 3
    assert ex.error_detail and "ConnectError" in ex.error_detail
    assert ex.timings.end is not None


async def test_timeout_before_response(server: ScriptedServer) -> None:
    start = time.monotonic()
    ex = await chat(server.base("slow"), stream=False, retries=1, timeout_s=0.2)
    assert time.monotonic() - start < 2
    assert ex.error is ErrorClass.TIMEOUT and ex.status is None
    assert ex.attempts == 2 and server.count("slow") == 2


async def test_timeout_mid_stream(server: ScriptedServer) -> None:
    ex = await chat(server.base("slow-stream"), stream=True, retries=0, timeout_s=0.2)
    assert ex.error is ErrorClass.TIMEOUT and ex.status == 200 and ex.attempts == 1
    assert len(ex.chunks) == 1  # the role chunk that did arrive is kept
    assert ex.timings.first_chunk is not None and ex.timings.end is not None


async def test_429_then_success(server: ScriptedServer) -> None:
    ex = await chat(server.base("r429"), stream=True)
    assert ex.ok and ex.attempts == 2 and server.count("r429") == 2
    assert ex.text == "Hello, world!"


async def test_503_with_http_date_retry_after(server: ScriptedServer) -> None:
    ex = await chat(server.base("r503date"), stream=False)
    assert ex.ok and ex.attempts == 2


async def test_always_429_gives_up(server: ScriptedServer) -> None:
    ex = await chat(server.base("always429"), stream=True, retries=2)
    assert ex.error is ErrorClass.RATE_LIMITED and ex.status == 429
    assert ex.attempts == 3 and server.count("always429") == 3
    assert ex.error_detail is not None and "slow down" in ex.error_detail


async def test_5xx_is_retried(server: ScriptedServer) -> None:
    ex = await chat(server.base("500"), stream=False, retries=1)
    assert ex.error is ErrorClass.HTTP_5XX and ex.status == 500 and ex.attempts == 2
    assert ex.error_detail is not None
    assert ex.error_detail.startswith("HTTP 500: ") and "the model crashed" in ex.error_detail
    assert ex.raw is not None and "the model crashed" in ex.raw


async def test_4xx_is_not_retried(server: ScriptedServer) -> None:
    ex = await chat(server.base("400"), stream=True)
    assert ex.error is ErrorClass.HTTP_4XX and ex.status == 400
    assert ex.attempts == 1 and server.count("400") == 1
    assert ex.error_detail is not None and "max_tokens is too large" in ex.error_detail


async def test_unknown_path_is_4xx(server: ScriptedServer) -> None:
    ex = await chat(server.base("no-such-scenario"), stream=False)
    assert ex.error is ErrorClass.HTTP_4XX and ex.status == 404 and ex.attempts == 1


async def test_html_instead_of_stream(server: ScriptedServer) -> None:
    ex = await chat(server.base("html"), stream=True)
    assert ex.error is ErrorClass.MALFORMED_STREAM and ex.status == 200 and ex.attempts == 1
    assert ex.error_detail is not None and "text/html" in ex.error_detail
    assert ex.raw is not None and "nginx" in ex.raw


async def test_html_instead_of_json(server: ScriptedServer) -> None:
    ex = await chat(server.base("html"), stream=False)
    assert ex.error is ErrorClass.INVALID_JSON and ex.attempts == 1


async def test_badjson(server: ScriptedServer) -> None:
    ex = await chat(server.base("badjson"), stream=False)
    assert ex.error is ErrorClass.INVALID_JSON and ex.status == 200 and ex.attempts == 1
    assert ex.raw == '{"id": "chatcmpl-1", "choices": ['


async def test_json_without_choices(server: ScriptedServer) -> None:
    ex = await chat(server.base("nochoices"), stream=False)
    assert ex.error is ErrorClass.INVALID_JSON
    assert ex.error_detail is not None and "model is loading" in ex.error_detail


async def test_non_json_data(server: ScriptedServer) -> None:
    ex = await chat(server.base("broken-sse"), stream=True)
    assert ex.error is ErrorClass.MALFORMED_STREAM and ex.attempts == 1
    assert ex.error_detail is not None and "not JSON" in ex.error_detail
    assert ex.chunks[-1] == "{this is not json"  # kept verbatim; reading stopped there


async def test_non_sse_line(server: ScriptedServer) -> None:
    ex = await chat(server.base("garbage-sse"), stream=True)
    assert ex.error is ErrorClass.MALFORMED_STREAM
    assert ex.error_detail is not None and "not an SSE line" in ex.error_detail
    assert ex.text == "Hi"  # what was readable is still assembled


async def test_connection_cut_mid_stream(server: ScriptedServer) -> None:
    ex = await chat(server.base("cut"), stream=True)
    assert ex.error is ErrorClass.MALFORMED_STREAM and ex.status == 200 and ex.attempts == 1
    assert ex.text == "Hel"
    assert ex.timings.end is not None


async def test_stream_without_done(server: ScriptedServer) -> None:
    ex = await chat(server.base("no-done"), stream=True)
    assert ex.error is ErrorClass.MALFORMED_STREAM
    assert ex.error_detail == "stream ended without data: [DONE]"
    assert ex.text == "Hi" and ex.finish_reason == "stop"


async def test_data_after_done() -> None:
    async def after_done(req: Request, reply: Reply) -> None:
        await reply.start()
        await reply.event(chunk({"content": "a"}))
        await reply.event("[DONE]")
        await reply.event(chunk({"content": "b"}))
        await reply.done()

    with ScriptedServer(scenarios={"after-done": after_done}) as server:
        ex = await chat(server.base("after-done"), stream=True)
    assert ex.error is ErrorClass.MALFORMED_STREAM and ex.error_detail == "data after data: [DONE]"
    assert ex.text == "a"


async def test_error_event_mid_stream(server: ScriptedServer) -> None:
    ex = await chat(server.base("stream-error"), stream=True)
    assert ex.error is ErrorClass.MALFORMED_STREAM
    assert ex.error_detail is not None and "upstream model crashed" in ex.error_detail


# ---- secrets ---------------------------------------------------------------------------------


async def test_key_echoed_in_error_is_scrubbed(server: ScriptedServer) -> None:
    ex = await chat(server.base("echo-auth"), stream=False)
    assert ex.error is ErrorClass.HTTP_4XX and ex.status == 401
    assert ex.error_detail is not None and "Bearer ***" in ex.error_detail
    assert ex.raw is not None and "Bearer ***" in ex.raw


async def test_key_echoed_in_stream_is_scrubbed(server: ScriptedServer) -> None:
    ex = await chat(server.base("echo-auth"), stream=True)
    assert ex.ok and ex.text == "your header was Bearer ***"
    assert any("Bearer ***" in c for c in ex.chunks)


async def test_key_not_in_logs_or_repr(
    server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with ProviderClient(provider(server.base("echo-auth")), backoff_s=0.01) as client:
        await client.chat(BODY, stream=False)
        assert KEY not in repr(client)
        probe = await client.list_models()
    assert probe.reachable
    await chat(server.base("always429"), stream=False, retries=1)
    assert KEY not in caplog.text


# ---- retry timing ----------------------------------------------------------------------------


def test_parse_retry_after() -> None:
    assert _parse_retry_after(None) is None
    assert _parse_retry_after("") is None
    assert _parse_retry_after("7") == 7.0
    assert _parse_retry_after(" 1.5 ") == 1.5
    assert _parse_retry_after("-3") == 0.0
    assert _parse_retry_after("soon") is None
    assert _parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    future = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 100))
    delay = _parse_retry_after(future)
    assert delay is not None and 90 < delay <= 100


async def test_backoff_delays() -> None:
    client = ProviderClient(provider("http://127.0.0.1:1/v1"), backoff_s=1.0, max_backoff_s=5.0)
    try:
        for attempt, base in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 5.0), (9, 5.0)]:
            assert base / 2 <= client._delay(attempt, None) <= base
        assert client._delay(1, 120.0) == 5.0  # Retry-After is capped
        assert client._delay(3, 0.0) == 0.0
    finally:
        await client.aclose()


async def test_retry_after_capped_by_max_backoff() -> None:
    async def slow429(req: Request, reply: Reply) -> None:
        if req.seq == 1:
            await reply.send(429, "busy", headers={"Retry-After": "3600"})
        else:
            await reply.send(200, {"choices": [{"message": {"content": "ok"}}]})

    with ScriptedServer(scenarios={"slow429": slow429}) as server:
        start = time.monotonic()
        ex = await chat(server.base("slow429"), stream=False)
        assert time.monotonic() - start < 1
    assert ex.ok and ex.attempts == 2 and ex.text == "ok"


# ---- transport injection and models probe ----------------------------------------------------


async def test_custom_transport() -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"choices": [{"message": {"content": "mocked"}}]})

    client = ProviderClient(
        provider("http://provider.test/v1"), transport=httpx.MockTransport(handle)
    )
    async with client:
        ex = await client.chat(BODY, stream=False)
    assert ex.ok and ex.text == "mocked"
    assert str(seen[0].url) == "http://provider.test/v1/chat/completions"


async def test_list_models(server: ScriptedServer) -> None:
    async with ProviderClient(provider(server.base("ok"))) as client:
        probe = await client.list_models()
    assert probe == ModelsProbe(True, 200, [MODEL_ID], "1 model(s)")
    assert server.received("ok")[0].headers["authorization"] == f"Bearer {KEY}"


async def test_list_models_http_error(server: ScriptedServer) -> None:
    async with ProviderClient(provider(server.base("unauthorized"))) as client:
        probe = await client.list_models()
    assert probe.reachable and probe.status == 401 and probe.models == []
    assert "no API key provided" in probe.detail


async def test_list_models_not_a_list() -> None:
    async def not_a_list(req: Request, reply: Reply) -> None:
        await reply.send(200, {"models": ["a", "b"]})

    with ScriptedServer(model_scenarios={"odd": not_a_list}) as server:
        async with ProviderClient(provider(server.base("odd"))) as client:
            probe = await client.list_models()
    assert probe.reachable and probe.status == 200 and probe.models == []
    assert probe.detail.startswith("not an OpenAI model list")


async def test_list_models_unreachable() -> None:
    async with ProviderClient(provider(f"http://127.0.0.1:{unused_port()}/v1")) as client:
        probe = await client.list_models()
    assert not probe.reachable and probe.status is None and probe.models == []
    assert "cannot connect" in probe.detail
