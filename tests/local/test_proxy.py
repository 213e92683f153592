"""The fault proxy over real HTTP: a scripted upstream, the proxy in front, httpx as the client."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

pytest.importorskip("starlette")  # the `local` extra
pytest.importorskip("uvicorn")

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from parity.core.sse import SSEParser
from parity.local import proxy as proxy_module
from parity.local.faults import Ctx, Fault, Item, parse_faults
from parity.local.proxy import SSEEvents, create_proxy_app, main
from parity.local.serve import BackgroundServer

pytestmark = pytest.mark.timeout(60)

TOOLS = [{"type": "function", "function": {"name": n, "parameters": {}}} for n in ("f", "g")]
USAGE = {"prompt_tokens": 7, "completion_tokens": 10, "total_tokens": 17}
BASE = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m"}

# --- the scripted upstream ---

received: list[dict[str, Any]] = []  # every request the upstream got: method, path, body...


def completion(tools: bool) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "Hello there",
        "reasoning_content": "thinking",
    }
    if tools:
        function = {"name": "f", "arguments": '{"city": "Paris"}'}
        message["tool_calls"] = [{"id": "call_1", "type": "function", "function": function}]
    choice = {"index": 0, "message": message, "finish_reason": "tool_calls" if tools else "stop"}
    return {**BASE, "object": "chat.completion", "choices": [choice], "usage": USAGE}


def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {**BASE, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def chunks(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Role, reasoning, text (or a tool call), finish, usage: the stream the upstream sends."""
    out = [chunk({"role": "assistant", "content": ""}), chunk({"reasoning_content": "hmm"})]
    if body.get("tools"):
        first = {
            "index": 0,
            "id": "call_1",
            "type": "function",
            "function": {"name": "f", "arguments": ""},
        }
        out.append(chunk({"tool_calls": [first]}))
        for piece in ('{"city": ', '"Paris"}'):
            out.append(chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
    else:
        words = body.get("x_events") or 3
        out += [chunk({"content": f"w{i} "}) for i in range(words)]
    out.append(chunk({}, "tool_calls" if body.get("tools") else "stop"))
    return [*out, {**BASE, "choices": [], "usage": USAGE}]


async def stream(body: dict[str, Any]) -> AsyncIterator[bytes]:
    yield b": ping\r\n\r\n"
    for item in chunks(body):
        yield b"data: " + json.dumps(item).encode() + b"\r\n\r\n"  # like sse-starlette
        if body.get("x_gap_ms"):
            await asyncio.sleep(body["x_gap_ms"] / 1000)
    yield b"data: [DONE]\r\n\r\n"


RESPONSE = {
    "id": "r1",
    "object": "response",
    "status": "completed",
    "output": [
        {"type": "reasoning", "content": [{"type": "reasoning_text", "text": "hmm"}]},
        {"type": "function_call", "call_id": "c", "name": "f", "arguments": '{"a": 1}'},
        {"type": "message", "content": [{"type": "output_text", "text": "Hi"}]},
    ],
    "usage": {"input_tokens": 5, "output_tokens": 10, "total_tokens": 15},
}


async def upstream_endpoint(request: Request) -> Response:
    raw = await request.body()
    body = json.loads(raw) if raw else {}
    rest = request.path_params["rest"]
    received.append(
        {
            "method": request.method,
            "path": rest,
            "body": body,
            "raw": raw,
            "query": request.url.query,
            "headers": dict(request.headers),
        }
    )
    if rest == "chat/completions" and body.get("stream"):
        return StreamingResponse(stream(body), media_type="text/event-stream")
    if rest == "chat/completions":
        return JSONResponse(completion(bool(body.get("tools"))))
    if rest == "responses":
        return JSONResponse(RESPONSE)
    if rest == "models":
        return JSONResponse({"object": "list", "data": [{"id": "m", "object": "model"}]})
    if rest == "text":
        return PlainTextResponse("plain words")
    if rest == "stream-error":  # an SSE content type on an error status
        return Response(b"data: {}\n\n", 503, media_type="text/event-stream")
    error = {"error": {"message": "no such thing", "type": "invalid_request_error"}}
    return JSONResponse(error, 404, headers={"x-upstream": "yes"})


UPSTREAM_APP = Starlette(
    routes=[Route("/v1/{rest:path}", upstream_endpoint, methods=["GET", "POST"])]
)


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    with BackgroundServer(UPSTREAM_APP) as server:
        yield server.url + "/v1"


@contextlib.contextmanager
def proxied(upstream: str, spec: str = "") -> Iterator[httpx.Client]:
    """An httpx client whose base URL is a fault proxy with `spec` in front of `upstream`."""
    received.clear()
    with (
        BackgroundServer(create_proxy_app(upstream, parse_faults(spec))) as proxy,
        httpx.Client(base_url=proxy.url + "/v1", timeout=30) as client,
    ):
        yield client


def payloads(body: bytes) -> list[str]:
    parser = SSEParser()
    out = parser.feed(body) + parser.close()
    assert not parser.problems
    return out


def chat(client: httpx.Client, stream: bool = False, **body: Any) -> httpx.Response:
    return client.post("/chat/completions", json={"model": "m", "stream": stream, **body})


def events(client: httpx.Client, **body: Any) -> list[Any]:
    """The stream's payloads, JSON ones parsed; asserts the stream ends with [DONE]."""
    response = chat(client, stream=True, **body)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    texts = payloads(response.content)
    assert texts[-1] == "[DONE]"
    return [json.loads(text) for text in texts[:-1]]


def assembled(items: list[Any]) -> tuple[str, list[dict[str, str]]]:
    """(text, tool calls) reassembled from chat chunks."""
    text, calls = "", {}
    for item in items:
        for choice in item["choices"]:
            text += choice["delta"].get("content") or ""
            for call in choice["delta"].get("tool_calls", []):
                target = calls.setdefault(call["index"], {"name": "", "arguments": ""})
                for key in ("name", "arguments"):
                    target[key] += call["function"].get(key) or ""
    return text, list(calls.values())


def is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


# --- pass-through ---


def test_no_faults_passes_everything_through(upstream: str) -> None:
    with httpx.Client(base_url=upstream) as direct, proxied(upstream) as client:
        for stream in (False, True):
            for tools in ([], TOOLS):
                body = {"model": "m", "stream": stream, "tools": tools}
                want = direct.post("/chat/completions", json=body)
                got = client.post("/chat/completions", json=body)
                assert got.status_code == want.status_code == 200
                assert got.headers["content-type"] == want.headers["content-type"]
                if stream:
                    assert payloads(got.content) == payloads(want.content)
                    assert b"\r" not in got.content and b": ping\n\n" in got.content
                else:
                    assert got.content == want.content
        assert client.get("/models").json() == direct.get("/models").json()
        assert client.post("/responses", json={}).content == direct.post("/responses").content


def test_request_forwarding(upstream: str) -> None:
    with proxied(upstream) as client:
        client.post(
            "/chat/completions?api-version=1",
            content=b'{"model": "m"}',
            headers={
                "Authorization": "Bearer sk-x",
                "Content-Type": "application/json",
                "X-Other": "no",
            },
        )
        [seen] = received
        assert seen["path"] == "chat/completions" and seen["query"] == "api-version=1"
        assert seen["raw"] == b'{"model": "m"}'  # unchanged bytes when no request fault acts
        assert seen["headers"]["authorization"] == "Bearer sk-x"
        assert "x-other" not in seen["headers"]
        assert client.delete("/models").status_code == 405  # any method goes upstream
        assert client.get("/elsewhere/deep/path").status_code == 404
        assert received[-1]["path"] == "elsewhere/deep/path"


@pytest.mark.parametrize("spec", ["", "inflate-usage=50,strip-reasoning,tool-args-invalid"])
def test_errors_and_non_json_pass_through(upstream: str, spec: str) -> None:
    with proxied(upstream, spec) as client:
        missing = client.post("/nothing", json={})
        assert missing.status_code == 404
        assert missing.headers["x-upstream"] == "yes"
        assert missing.headers["content-type"] == "application/json"
        assert missing.json()["error"]["message"] == "no such thing"
        text = client.get("/text")
        assert (text.status_code, text.text) == (200, "plain words")
        assert text.headers["content-type"].startswith("text/plain")
        broken = client.post("/stream-error", json={})
        assert (broken.status_code, broken.content) == (503, b"data: {}\n\n")


def test_unreachable_upstream_is_a_502() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    with proxied(f"http://127.0.0.1:{port}/v1") as client:
        answer = chat(client)
        assert answer.status_code == 502 and answer.json()["error"]["type"] == "proxy_error"


# --- each fault through HTTP ---


def test_drop_and_truncate_change_what_upstream_receives(upstream: str) -> None:
    body = {
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "what is two plus two"},
        ],
        "max_tokens": 5,
        "max_completion_tokens": 5,
        "tools": TOOLS,
        "tool_choice": "auto",
        "seed": 1,
    }
    with proxied(upstream, "drop=max_tokens,drop=tools,truncate-prompt=4") as client:
        assert chat(client, **body).status_code == 200
        sent = received[-1]["body"]
        assert set(sent) == {"model", "stream", "messages", "seed"}
        assert [m["content"] for m in sent["messages"]] == ["be brief", "what is"]
    with proxied(upstream, "drop=reasoning_effort") as client:
        client.post("/responses", json={"input": "x", "reasoning": {"effort": "low"}})
        assert received[-1]["body"] == {"input": "x"}


def test_inflate_usage(upstream: str) -> None:
    with proxied(upstream, "inflate-usage=20") as client:
        want = {"prompt_tokens": 7, "completion_tokens": 12, "total_tokens": 19}
        assert chat(client).json()["usage"] == want
        assert events(client)[-1]["usage"] == want
        usage = client.post("/responses", json={}).json()["usage"]
        assert usage == {"input_tokens": 5, "output_tokens": 12, "total_tokens": 17}


def test_tool_args_invalid(upstream: str) -> None:
    with proxied(upstream, "tool-args-invalid") as client:
        call = chat(client, tools=TOOLS).json()["choices"][0]["message"]["tool_calls"][0]
        assert not is_json(call["function"]["arguments"])
        _, [streamed] = assembled(events(client, tools=TOOLS))
        assert streamed["arguments"].startswith('{"city": "Paris"}')
        assert not is_json(streamed["arguments"])
        output = client.post("/responses", json={}).json()["output"]
        assert not is_json(output[1]["arguments"])


def test_tool_wrong_name(upstream: str) -> None:
    with proxied(upstream, "tool-wrong-name") as client:
        call = chat(client, tools=TOOLS).json()["choices"][0]["message"]["tool_calls"][0]
        assert call["function"]["name"] == "g"
        _, [streamed] = assembled(events(client, tools=TOOLS))
        assert streamed == {"name": "g", "arguments": '{"city": "Paris"}'}
        call = chat(client, tools=TOOLS[:1]).json()["choices"][0]["message"]["tool_calls"][0]
        assert call["function"]["name"] == "unknown_tool"


def test_drop_usage(upstream: str) -> None:
    with proxied(upstream, "drop-usage") as client:
        items = events(client, stream_options={"include_usage": True})
        assert items and all("usage" not in item for item in items)
        assert items[-1]["choices"][0]["finish_reason"] == "stop"
        assert "usage" not in chat(client).json()  # and none in plain answers


def test_break_sse(upstream: str) -> None:
    with proxied(upstream, "break-sse") as client:
        texts = payloads(chat(client, stream=True).content)
        assert "[DONE]" not in texts
        assert [is_json(text) for text in texts[:4]] == [True, True, False, True]
        assert json.dumps(chunk({"content": "w0 "}), separators=(",", ":")).startswith(texts[2])


def test_strip_reasoning(upstream: str) -> None:
    with proxied(upstream, "strip-reasoning") as client:
        message = chat(client).json()["choices"][0]["message"]
        assert message == {"role": "assistant", "content": "Hello there"}
        items = events(client)
        assert not any("reasoning_content" in c["delta"] for i in items for c in i["choices"])
        assert assembled(items)[0] == "w0 w1 w2 "
        output = client.post("/responses", json={}).json()["output"]
        assert [item["type"] for item in output] == ["function_call", "message"]


def arrivals(client: httpx.Client, **body: Any) -> list[tuple[float, str]]:
    """(seconds since the request, payload) for each event as the client reads it."""
    start = time.perf_counter()
    parser, seen = SSEParser(), []
    with client.stream("POST", "/chat/completions", json={"stream": True, **body}) as answer:
        for data in answer.iter_bytes():
            seen += [(time.perf_counter() - start, p) for p in parser.feed(data)]
    return seen


def test_delay_first_token(upstream: str) -> None:
    with proxied(upstream, "delay-first-token=400") as client:
        seen = arrivals(client)
        assert '"role"' in seen[0][1] and seen[0][0] < 0.3  # the role chunk is not held back
        assert '"reasoning_content"' in seen[1][1] and seen[1][0] >= 0.4  # first generated
        start = time.perf_counter()
        assert chat(client).status_code == 200
        assert time.perf_counter() - start >= 0.4


def test_events_are_flushed_as_they_arrive(upstream: str) -> None:
    with proxied(upstream, "inflate-usage=10") as client:
        seen = arrivals(client, x_gap_ms=150)
        assert seen[-1][0] - seen[0][0] >= 0.15 * (len(seen) - 2)


@pytest.mark.parametrize(("fault", "status"), [("http-429", 429), ("http-500", 500)])
def test_http_errors_at_a_deterministic_rate(upstream: str, fault: str, status: int) -> None:
    with proxied(upstream, f"{fault}=0.5") as client:
        codes = []
        for _ in range(6):
            codes.append(chat(client).status_code)
            assert client.get("/models").status_code == 200  # GETs are neither failed nor counted
        assert codes == [200, status] * 3
        assert len(received) == 3 + 6  # failed requests never reach upstream
    with proxied(upstream, f"{fault}=1") as client:
        answer = chat(client)
        assert answer.status_code == status
        assert answer.json()["error"]["message"].endswith("(injected)")
        if status == 429:
            assert answer.headers["retry-after"] == "0"
            assert answer.json()["error"]["type"] == "rate_limit_error"


def test_each_app_counts_on_its_own(upstream: str) -> None:
    faults = parse_faults("http-500=0.5")
    with (
        BackgroundServer(create_proxy_app(upstream, faults)) as one,
        BackgroundServer(create_proxy_app(upstream, faults)) as two,
    ):
        url = "/v1/chat/completions"
        codes = [httpx.post(server.url + url, json={}).status_code for server in (one, two, one)]
        assert codes == [200, 200, 500]


def test_several_faults_in_order(upstream: str) -> None:
    with proxied(upstream, "http-500=1,http-429=1") as client:
        assert chat(client).status_code == 500
    spec = "drop=seed,inflate-usage=50,strip-reasoning,tool-wrong-name,tool-args-invalid"
    with proxied(upstream, spec) as client:
        items = events(client, tools=TOOLS, seed=3)
        assert "seed" not in received[-1]["body"]
        _, [call] = assembled(items)
        assert call["name"] == "g" and not is_json(call["arguments"])
        assert items[-1]["usage"]["completion_tokens"] == 15
        message = chat(client, tools=TOOLS).json()["choices"][0]["message"]
        assert "reasoning_content" not in message
        assert message["tool_calls"][0]["function"]["name"] == "g"


def test_a_long_stream_adds_little_time(upstream: str) -> None:
    body = {"model": "m", "stream": True, "x_events": 1000}
    spec = "inflate-usage=20,strip-reasoning,drop-usage,tool-wrong-name,delay-first-token=0"
    with httpx.Client(base_url=upstream) as direct, proxied(upstream, spec) as client:
        direct.post("/chat/completions", json=body)  # warm up both paths
        client.post("/chat/completions", json=body)
        start = time.perf_counter()
        want = payloads(direct.post("/chat/completions", json=body).content)
        middle = time.perf_counter()
        got = payloads(client.post("/chat/completions", json=body).content)
        end = time.perf_counter()
        assert len(got) == len(want) - 1 == 1000 + 4  # role, reasoning, finish, [DONE]
        assert (end - middle) - (middle - start) < 0.5


# --- framing ---


def test_sse_events_cut_on_any_line_ending_split_anywhere() -> None:
    raw = b'data: {"a": 1}\r\n\r\nevent: x\r\ndata: 2\r\ndata: 3\r\n\r\n: ping\n\ndata: 4\r\rtail'
    for size in (1, 2, 3, len(raw)):
        cutter = SSEEvents()
        out = [e for i in range(0, len(raw), size) for e in cutter.feed(raw[i : i + size])]
        assert out == [b'data: {"a": 1}', b"event: x\ndata: 2\ndata: 3", b": ping", b"data: 4"]
        assert cutter.rest() == b"tail"


def test_other_fields_and_multi_line_data_survive_faults() -> None:
    async def frames() -> list[bytes]:
        [active] = parse_faults("drop-usage")
        hooked = [(active.fault, active.context("POST", "/responses", {}))]
        events = [
            b'event: response.completed\nid: 7\ndata: {"type": "response.completed"}',
            b"data: line one\ndata: line two",
            b": comment",
        ]
        return [await proxy_module._event(event, hooked) for event in events]

    assert asyncio.run(frames()) == [
        b'event: response.completed\nid: 7\ndata: {"type":"response.completed"}\n\n',
        b"data: line one\ndata: line two\n\n",
        b": comment\n\n",
    ]


def test_events_a_fault_adds_or_writes_raw() -> None:
    def add(ctx: Ctx, item: Item) -> list[Item]:
        return [item, {"type": "extra"}, b"raw junk"]

    adding = Fault("add", "adds an event and raw bytes", event=add)
    context = Ctx(None, "POST", "/responses", {}, stream=True)

    async def frame() -> bytes:
        event = b'event: first\nid: 7\ndata: {"type": "first"}'
        return await proxy_module._event(event, [(adding, context)])

    assert asyncio.run(frame()) == (
        b'event: first\nid: 7\ndata: {"type":"first"}\n\n'
        b'event: extra\ndata: {"type":"extra"}\n\n'
        b"raw junk"
    )


# --- the command line ---


def run_module(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "parity.local.proxy", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=30)


def test_help_lists_the_faults() -> None:
    done = run_module("--help")
    assert done.returncode == 0
    assert "inflate-usage=<percent>" in done.stdout and "break-sse" in done.stdout


@pytest.mark.parametrize("spec", ["bogus", "drop", "http-429=2"])
def test_bad_faults_is_one_line_and_exit_2(spec: str) -> None:
    done = run_module("--upstream", "http://127.0.0.1:1/v1", "--port", "1", "--faults", spec)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: bad fault")
    assert "Traceback" not in done.stderr


def test_main_serves_the_app(monkeypatch: pytest.MonkeyPatch) -> None:
    served: list[tuple[Any, int]] = []
    monkeypatch.setattr(proxy_module, "serve_forever", lambda app, port: served.append((app, port)))
    assert (
        main(["--upstream", "http://127.0.0.1:9/v1", "--port", "8123", "--faults", "drop=n"]) == 0
    )
    assert isinstance(served[0][0], Starlette) and served[0][1] == 8123
    assert main(["--upstream", "127.0.0.1:9", "--port", "1"]) == 2


def _outside_address() -> str | None:
    """An address of this machine that is not loopback, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("192.0.2.1", 9))  # no packet is sent: picks the outgoing interface
        except OSError:
            return None
        address = str(sock.getsockname()[0])
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def test_module_serves_on_loopback_only(upstream: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [
        sys.executable,
        "-m",
        "parity.local.proxy",
        "--upstream",
        upstream,
        "--port",
        str(port),
        "--faults",
        "inflate-usage=100",
    ]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        deadline = time.monotonic() + 20
        while True:
            try:
                answer = httpx.post(url, json={"model": "m"})
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline and process.poll() is None
                time.sleep(0.05)
        assert answer.json()["usage"]["completion_tokens"] == 20
        outside = _outside_address()
        if outside is not None:
            with pytest.raises(httpx.ConnectError):
                httpx.get(f"http://{outside}:{port}/v1/models", timeout=2)
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert process.stderr is not None
    assert f"fault proxy http://127.0.0.1:{port}/v1" in process.stderr.read()


def test_errors_as_500_turns_an_upstream_4xx_into_a_500(upstream: str) -> None:
    with proxied(upstream) as client:
        assert client.post("/v1/no-such-thing", json={}).status_code == 404
    with proxied(upstream, "errors-as-500") as client:
        response = client.post("/v1/no-such-thing", json={})
        assert response.status_code == 500 and response.json()["error"]["type"] == "server_error"
