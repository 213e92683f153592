"""A scripted HTTP/1.1 server on 127.0.0.1 that plays OpenAI-compatible providers, good and bad.

It is a real socket server (asyncio, in a background thread, on an ephemeral port), so the
client under test goes through its whole network stack. The first path segment picks a
scenario: `POST {url}/ok/v1/chat/completions` runs the `ok` handler, `GET {url}/ok/v1/models`
answers a model list (for every scenario, unless `MODEL_SCENARIOS` overrides it).

    with ScriptedServer() as server:
        provider = Provider(name="p", base_url=server.base("ok"), model="m")
        ...
        assert server.count("r429") == 2

Adding a scenario: write `async def handler(req: Request, reply: Reply) -> None` and either
add it to `SCENARIOS` or pass `ScriptedServer(scenarios={"name": handler})`. A handler
answers once with `reply.send(...)`, or streams with `reply.start()` then `reply.event(...)`,
`reply.write(...)`, `reply.done()`, and may end the connection early with `reply.cut()`.
`stream_completion` and `completion` build the usual OpenAI shapes.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import json
import socket
import ssl
import threading
import urllib.parse
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

MODEL_ID = "scripted-model"


@dataclass
class Request:
    """One request as the server received it."""

    method: str
    path: str  # without the query string
    query: str
    scenario: str  # first path segment
    endpoint: str  # the rest after the scenario and an optional /v1, e.g. "/chat/completions"
    headers: dict[str, str]  # names lower-cased
    body: bytes
    seq: int  # 1-based: how many requests this scenario + endpoint has had, this one included

    def json(self) -> Any:
        """The body parsed as JSON (None when empty)."""
        return json.loads(self.body) if self.body else None

    @property
    def stream(self) -> bool:
        """True when the JSON body asks for `stream: true`."""
        body = self.json() if self.method == "POST" else None
        return isinstance(body, dict) and body.get("stream") is True


class Reply:
    """What a handler writes its answer with: one `send`, or `start` + writes (streaming)."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        self._chunked = True
        self.started = False
        self.finished = False
        self.closed = False  # the connection must not be reused

    async def send(
        self,
        status: int,
        body: bytes | str | dict[str, Any] | list[Any] = b"",
        *,
        headers: dict[str, str] | None = None,
        content_type: str | None = None,
    ) -> None:
        """A complete response with Content-Length; dicts and lists are sent as JSON."""
        if isinstance(body, dict | list):
            data = json.dumps(body).encode()
            content_type = content_type or "application/json"
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = body
        all_headers = {"Content-Type": content_type or "text/plain; charset=utf-8"}
        all_headers.update(headers or {})
        all_headers["Content-Length"] = str(len(data))
        self._head(status, all_headers)
        self._writer.write(data)
        await self._writer.drain()
        self.started = self.finished = True

    async def start(
        self,
        status: int = 200,
        *,
        headers: dict[str, str] | None = None,
        content_type: str = "text/event-stream",
        chunked: bool = True,
    ) -> None:
        """Send the head of a streamed response: chunked, or ended by closing (`chunked=False`)."""
        all_headers = {"Content-Type": content_type, "Cache-Control": "no-cache"}
        all_headers.update(headers or {})
        self._chunked = chunked
        if chunked:
            all_headers["Transfer-Encoding"] = "chunked"
        else:
            all_headers["Connection"] = "close"
            self.closed = True
        self._head(status, all_headers)
        await self._writer.drain()
        self.started = True

    async def write(self, data: bytes | str) -> None:
        """Send raw body bytes now (one HTTP chunk when chunked)."""
        raw = data.encode() if isinstance(data, str) else data
        if not raw:
            return
        if self._chunked:
            self._writer.write(b"%x\r\n%s\r\n" % (len(raw), raw))
        else:
            self._writer.write(raw)
        await self._writer.drain()

    async def event(self, payload: dict[str, Any] | str) -> None:
        """Send one SSE event `data: <payload>` (dicts as compact JSON)."""
        text = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
        await self.write(f"data: {text}\n\n")

    async def done(self) -> None:
        """Send `data: [DONE]` and end the response."""
        await self.event("[DONE]")
        await self.end()

    async def end(self) -> None:
        """End a streamed response properly (final chunk, or close when not chunked)."""
        if self.finished:
            return
        self.finished = True
        if self._chunked:
            self._writer.write(b"0\r\n\r\n")
            await self._writer.drain()
        else:
            self.closed = True

    async def cut(self) -> None:
        """Close the connection now, whatever was left unsent (a broken-off response)."""
        with contextlib.suppress(ConnectionError):
            await self._writer.drain()
        self.finished = self.closed = True
        self._writer.close()

    def _head(self, status: int, headers: dict[str, str]) -> None:
        try:
            reason = http.HTTPStatus(status).phrase
        except ValueError:
            reason = "Unknown"
        lines = [f"HTTP/1.1 {status} {reason}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))


Handler = Callable[[Request, Reply], Awaitable[None]]


# ---- OpenAI shapes ---------------------------------------------------------------------------


def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    """A `chat.completion.chunk` with one choice carrying `delta`."""
    return {
        "id": "chatcmpl-scripted",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": MODEL_ID,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
    }


def usage(prompt: int = 12, completion_tokens: int = 4) -> dict[str, Any]:
    """An OpenAI `usage` object."""
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt + completion_tokens,
    }


def usage_chunk(prompt: int = 12, completion_tokens: int = 4) -> dict[str, Any]:
    """The final `include_usage` chunk: empty choices, usage set."""
    return {
        "id": "chatcmpl-scripted",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": MODEL_ID,
        "choices": [],
        "usage": usage(prompt, completion_tokens),
    }


def completion(
    message: dict[str, Any], finish_reason: str = "stop", completion_tokens: int = 4
) -> dict[str, Any]:
    """A non-streamed `chat.completion` with one choice."""
    return {
        "id": "chatcmpl-scripted",
        "object": "chat.completion",
        "created": 1700000000,
        "model": MODEL_ID,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", **message},
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ],
        "usage": usage(completion_tokens=completion_tokens),
    }


def error_body(message: str, kind: str = "invalid_request_error") -> dict[str, Any]:
    """An OpenAI-shaped error body."""
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


async def stream_completion(
    reply: Reply, deltas: Iterable[dict[str, Any]], *, delay_s: float = 0.002, **kw: Any
) -> None:
    """Stream a role-only chunk, one chunk per delta, a finish chunk, usage, then [DONE]."""
    deltas = list(deltas)
    await reply.start()
    await reply.event(chunk({"role": "assistant", "content": ""}))
    for delta in deltas:
        await asyncio.sleep(delay_s)  # separate reads, so chunk timings differ
        await reply.event(chunk(delta))
    await reply.event(chunk({}, kw.get("finish_reason", "stop")))
    await reply.event(usage_chunk(completion_tokens=kw.get("completion_tokens", len(deltas))))
    await reply.done()


# ---- scenarios -------------------------------------------------------------------------------

OK_PIECES = ["Hello", ",", " world", "!"]
REASONING_PIECES = ["Let me", " think", "."]
TOOL_CALLS = [
    {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    },
    {
        "id": "call_2",
        "type": "function",
        "function": {"name": "get_time", "arguments": '{"tz": "CET"}'},
    },
]


async def ok(req: Request, reply: Reply) -> None:
    """A well-behaved provider: 'Hello, world!'."""
    if req.stream:
        await stream_completion(reply, [{"content": piece} for piece in OK_PIECES])
    else:
        await reply.send(200, completion({"content": "".join(OK_PIECES)}))


def _reasoning(field: str) -> Handler:
    async def handler(req: Request, reply: Reply) -> None:
        if req.stream:
            deltas = [{field: piece, "content": None} for piece in REASONING_PIECES]
            deltas += [{"content": piece} for piece in OK_PIECES]
            await stream_completion(reply, deltas)
        else:
            message = {field: "".join(REASONING_PIECES), "content": "".join(OK_PIECES)}
            await reply.send(200, completion(message))

    return handler


async def tools(req: Request, reply: Reply) -> None:
    """Two tool calls; streamed as id/name first, then arguments in small pieces."""
    if not req.stream:
        await reply.send(200, completion({"content": None, "tool_calls": TOOL_CALLS}, "tool_calls"))
        return
    deltas: list[dict[str, Any]] = []
    for index, call in enumerate(TOOL_CALLS):
        head = {"index": index, "id": call["id"], "type": "function"}
        head["function"] = {"name": call["function"]["name"], "arguments": ""}
        deltas.append({"tool_calls": [head]})
        args = call["function"]["arguments"]
        for start in range(0, len(args), 5):
            piece = {"index": index, "function": {"arguments": args[start : start + 5]}}
            deltas.append({"tool_calls": [piece]})
    await stream_completion(reply, deltas, delay_s=0, finish_reason="tool_calls")


async def r429(req: Request, reply: Reply) -> None:
    """429 (Retry-After: 0) on the first request, then behaves like `ok`."""
    if req.seq == 1:
        await reply.send(429, error_body("slow down", "rate_limit"), headers={"Retry-After": "0"})
    else:
        await ok(req, reply)


async def always429(req: Request, reply: Reply) -> None:
    """Always 429 with Retry-After: 0."""
    await reply.send(429, error_body("slow down", "rate_limit"), headers={"Retry-After": "0"})


async def r503date(req: Request, reply: Reply) -> None:
    """503 with an HTTP-date Retry-After (already past) on the first request, then `ok`."""
    if req.seq == 1:
        past = "Wed, 21 Oct 2015 07:28:00 GMT"
        await reply.send(
            503, error_body("overloaded", "server_error"), headers={"Retry-After": past}
        )
    else:
        await ok(req, reply)


async def always500(req: Request, reply: Reply) -> None:
    """Always 500 with an OpenAI-shaped error body."""
    await reply.send(500, error_body("internal error: the model crashed", "server_error"))


async def bad_request(req: Request, reply: Reply) -> None:
    """Always 400 (must not be retried)."""
    await reply.send(400, error_body("max_tokens is too large: 999999999"))


async def html(req: Request, reply: Reply) -> None:
    """200 with an HTML page (a proxy or login page in front of the API)."""
    page = "<html><body><h1>Welcome to nginx!</h1></body></html>"
    await reply.send(200, page, content_type="text/html; charset=utf-8")


async def badjson(req: Request, reply: Reply) -> None:
    """200 application/json that is not JSON."""
    await reply.send(200, '{"id": "chatcmpl-1", "choices": [', content_type="application/json")


async def nochoices(req: Request, reply: Reply) -> None:
    """200 JSON that is no chat completion."""
    await reply.send(200, {"object": "error", "message": "model is loading"})


async def broken_sse(req: Request, reply: Reply) -> None:
    """A stream whose second event's data is not JSON."""
    await reply.start()
    await reply.event(chunk({"role": "assistant", "content": ""}))
    await reply.event("{this is not json")
    await reply.event(chunk({"content": "late"}))
    await reply.done()


async def garbage_sse(req: Request, reply: Reply) -> None:
    """A stream with a line that is no SSE field among otherwise valid events."""
    await reply.start()
    await reply.event(chunk({"role": "assistant", "content": ""}))
    await reply.write("this line is not server-sent events\n\n")
    await reply.event(chunk({"content": "Hi"}))
    await reply.done()


async def cut(req: Request, reply: Reply) -> None:
    """Chunked stream closed mid-way: no terminating chunk, no [DONE]."""
    await reply.start()
    await reply.event(chunk({"role": "assistant", "content": ""}))
    await reply.event(chunk({"content": "Hel"}))
    await reply.cut()


async def no_done(req: Request, reply: Reply) -> None:
    """Close-delimited stream that ends cleanly but without `data: [DONE]`."""
    await reply.start(chunked=False)
    await reply.event(chunk({"role": "assistant", "content": ""}))
    await reply.event(chunk({"content": "Hi"}, "stop"))
    await reply.end()


async def slow(req: Request, reply: Reply) -> None:
    """Waits 5 s before answering at all."""
    await asyncio.sleep(5)
    await ok(req, reply)


async def slow_stream(req: Request, reply: Reply) -> None:
    """Sends headers and a role chunk, then stalls for 5 s."""
    await reply.start()
    await reply.event(chunk({"role": "assistant", "content": ""}))
    await asyncio.sleep(5)
    await reply.done()


HOSTILE_LIMIT_S = 20.0
"""How long the never-ending scenarios below go on at most: they stop by themselves."""


async def ping_forever(req: Request, reply: Reply) -> None:
    """Headers and a role chunk, then only `: ping` comments (every 50 ms), never an event."""
    await reply.start()
    await reply.event(chunk({"role": "assistant", "content": ""}))
    loop = asyncio.get_running_loop()
    stop = loop.time() + HOSTILE_LIMIT_S
    while loop.time() < stop:
        await asyncio.sleep(0.05)
        await reply.write(": ping\n\n")
    await reply.done()


async def byte_drip(req: Request, reply: Reply) -> None:
    """Headers, then a data event one byte at a time, a byte every 100 ms."""
    await reply.start()
    text = f"data: {json.dumps(chunk({'content': 'x' * 400}))}\n\n"
    for char in text[: int(HOSTILE_LIMIT_S * 10)]:
        await reply.write(char)
        await asyncio.sleep(0.1)
    await reply.cut()


async def events_forever(req: Request, reply: Reply) -> None:
    """A token every 50 ms, never a finish: alive, but without end (only a deadline ends it)."""
    await reply.start()
    loop = asyncio.get_running_loop()
    stop = loop.time() + HOSTILE_LIMIT_S
    while loop.time() < stop:
        await reply.event(chunk({"content": "tok "}))
        await asyncio.sleep(0.05)
    await reply.done()


async def hang(req: Request, reply: Reply) -> None:
    """Reads the request and never answers (for `HOSTILE_LIMIT_S`), GET /models included."""
    await asyncio.sleep(HOSTILE_LIMIT_S)
    await reply.cut()


async def hang_chat(req: Request, reply: Reply) -> None:
    """Answers `GET /models`, then never answers a completion (for `HOSTILE_LIMIT_S`)."""
    await hang(req, reply)


async def big_event(req: Request, reply: Reply) -> None:
    """One 10 MB content event (then finish, usage and [DONE]), written in 64 KiB pieces."""
    content = "y" * (10 * 1024 * 1024)
    data = f"data: {json.dumps(chunk({'content': content}))}\n\n".encode()
    await reply.start()
    await reply.event(chunk({"role": "assistant", "content": ""}))
    for start in range(0, len(data), 65536):
        await reply.write(data[start : start + 65536])
    await reply.event(chunk({}, "stop"))
    await reply.event(usage_chunk(completion_tokens=1))
    await reply.done()


async def gzip_stream(req: Request, reply: Reply) -> None:
    """A stream gzip-compressed although the client asked for identity, flushed event by
    event (as nginx's gzip does with `gzip_buffers` small), 20 ms apart."""
    compressor = zlib.compressobj(wbits=31)
    await reply.start(headers={"Content-Encoding": "gzip"})
    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": piece}) for piece in OK_PIECES]
    events += [chunk({}, "stop"), usage_chunk(completion_tokens=len(OK_PIECES))]
    texts = [f"data: {json.dumps(e)}\n\n" for e in events] + ["data: [DONE]\n\n"]
    for text in texts:
        await reply.write(compressor.compress(text.encode()) + compressor.flush(zlib.Z_SYNC_FLUSH))
        await asyncio.sleep(0.02)
    await reply.write(compressor.flush())
    await reply.end()


async def echo_auth(req: Request, reply: Reply) -> None:
    """Echoes the Authorization header: in a 401 error body, or (streamed) in the answer."""
    auth = req.headers.get("authorization", "")
    if req.stream:
        await stream_completion(reply, [{"content": f"your header was {auth}"}])
    else:
        await reply.send(401, error_body(f"Incorrect API key provided: {auth}"))


async def crlf(req: Request, reply: Reply) -> None:
    """Valid SSE written with CRLF, comments, event/id/retry lines and multi-line data,
    in 7-byte writes."""
    role = json.dumps(chunk({"role": "assistant", "content": ""}))
    first = json.dumps(chunk({"content": "Hello"}), indent=1).split("\n")
    text = (
        ": keep-alive\r\n\r\n"
        "retry: 1000\r\n"
        f"id: 1\r\nevent: message\r\ndata: {role}\r\n\r\n"
        + "".join(f"data: {line}\r\n" for line in first)
        + "\r\n: ping\r\n\r\n"
        + f"data: {json.dumps(chunk({'content': ' there'}, 'stop'))}\r\n\r\n"
        + f"data: {json.dumps(usage_chunk(completion_tokens=2))}\r\n\r\n"
        + "data: [DONE]\r\n\r\n"
    )
    data = text.encode()
    await reply.start()
    for start in range(0, len(data), 7):
        await reply.write(data[start : start + 7])
    await reply.end()


async def stream_error(req: Request, reply: Reply) -> None:
    """200 stream that turns into an OpenAI-shaped error event."""
    await reply.start()
    await reply.event(chunk({"role": "assistant", "content": ""}))
    await reply.event(error_body("upstream model crashed", "server_error"))
    await reply.done()


async def unauthorized(req: Request, reply: Reply) -> None:
    """401 for everything, model list included."""
    await reply.send(401, error_body("no API key provided"))


async def models(req: Request, reply: Reply) -> None:
    """The default `GET /models`: one model, `MODEL_ID`."""
    data = [{"id": MODEL_ID, "object": "model", "created": 1700000000, "owned_by": "parity"}]
    await reply.send(200, {"object": "list", "data": data})


SCENARIOS: dict[str, Handler] = {
    "ok": ok,
    "reasoning": _reasoning("reasoning_content"),
    "reasoning-field": _reasoning("reasoning"),
    "tools": tools,
    "r429": r429,
    "always429": always429,
    "r503date": r503date,
    "500": always500,
    "400": bad_request,
    "html": html,
    "badjson": badjson,
    "nochoices": nochoices,
    "broken-sse": broken_sse,
    "garbage-sse": garbage_sse,
    "cut": cut,
    "no-done": no_done,
    "slow": slow,
    "slow-stream": slow_stream,
    "echo-auth": echo_auth,
    "crlf": crlf,
    "stream-error": stream_error,
    "unauthorized": unauthorized,
    "ping-forever": ping_forever,
    "byte-drip": byte_drip,
    "events-forever": events_forever,
    "hang": hang,
    "hang-chat": hang_chat,
    "big-event": big_event,
    "gzip-stream": gzip_stream,
}
"""Scenario name (first path segment) -> handler for everything but `GET .../models`."""

MODEL_SCENARIOS: dict[str, Handler] = {"unauthorized": unauthorized, "hang": hang}
"""Scenarios whose `GET .../models` is not the default `models` handler."""


# ---- the server ------------------------------------------------------------------------------


class ScriptedServer:
    """The server; `with ScriptedServer() as server:` runs it, `server.url` is its base URL."""

    def __init__(
        self,
        scenarios: dict[str, Handler] | None = None,
        model_scenarios: dict[str, Handler] | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.tls = tls
        self.scenarios = {**SCENARIOS, **(scenarios or {})}
        self.model_scenarios = {**MODEL_SCENARIOS, **(model_scenarios or {})}
        self.requests: list[Request] = []
        self.url = ""
        self._counts: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None

    def base(self, scenario: str) -> str:
        """The `base_url` a Provider should use for `scenario` (ends in /v1)."""
        return f"{self.url}/{scenario}/v1"

    def count(self, scenario: str, endpoint: str = "/chat/completions") -> int:
        """How many requests `scenario` + `endpoint` has received."""
        with self._lock:
            return self._counts[(scenario, endpoint)]

    def received(self, scenario: str | None = None) -> list[Request]:
        """Requests received so far (for one scenario, or all), in arrival order."""
        with self._lock:
            return [r for r in self.requests if scenario is None or r.scenario == scenario]

    def __enter__(self) -> ScriptedServer:
        self._thread = threading.Thread(target=self._run, name="scripted-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(10) or self._error is not None:
            raise RuntimeError(f"scripted server did not start: {self._error!r}")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # surfaced by __enter__ if it happens at start-up
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        tasks: set[asyncio.Task[Any]] = set()

        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            tasks.add(task)
            try:
                await self._connection(reader, writer)
            except asyncio.CancelledError:
                pass  # the server is stopping: a handler still waiting ends quietly
            finally:
                tasks.discard(task)
                writer.close()

        server = await asyncio.start_server(on_connect, "127.0.0.1", 0, ssl=self.tls)
        port = server.sockets[0].getsockname()[1]
        host = "localhost" if self.tls else "127.0.0.1"  # the test certificate names localhost
        self.url = f"{'https' if self.tls else 'http'}://{host}:{port}"
        self._ready.set()
        await self._stop.wait()
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                return
            lines = head.decode("latin-1").split("\r\n")
            method, target, _version = lines[0].split(" ", 2)
            headers: dict[str, str] = {}
            for line in lines[1:]:
                if line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            try:
                body = await reader.readexactly(int(headers.get("content-length", "0")))
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            request = self._record(method, target, headers, body)
            reply = Reply(writer)
            try:
                await self._dispatch(request, reply)
                if not reply.started:
                    await reply.send(500, error_body("scripted handler sent nothing"))
                await reply.end()
            except ConnectionError:
                return
            if reply.closed or headers.get("connection", "").lower() == "close":
                return

    def _record(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Request:
        path, _, query = target.partition("?")
        segments = path.strip("/").split("/")
        scenario = segments[0]
        rest = segments[1:]
        if rest and rest[0] == "v1":
            rest = rest[1:]
        endpoint = "/" + "/".join(rest)
        with self._lock:
            self._counts[(scenario, endpoint)] += 1
            request = Request(
                method=method,
                path=path,
                query=query,
                scenario=scenario,
                endpoint=endpoint,
                headers=headers,
                body=body,
                seq=self._counts[(scenario, endpoint)],
            )
            self.requests.append(request)
        return request

    async def _dispatch(self, request: Request, reply: Reply) -> None:
        if request.method == "GET" and request.endpoint == "/models":
            handler = self.model_scenarios.get(request.scenario, models)
            if request.scenario in self.scenarios or request.scenario in self.model_scenarios:
                await handler(request, reply)
                return
        elif request.scenario in self.scenarios:
            await self.scenarios[request.scenario](request, reply)
            return
        await reply.send(404, error_body(f"no scenario {request.scenario!r}", "not_found"))


def unused_port() -> int:
    """A localhost TCP port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class ForwardProxy:
    """An HTTP forward proxy on 127.0.0.1, in a background thread: absolute-form requests
    (`POST http://host:port/path`, forwarded with `Connection: close`) and `CONNECT` tunnels.
    `lines` lists the request line of everything it was asked, in order.

        with ScriptedServer() as server, ForwardProxy() as proxy:
            monkeypatch.setenv("HTTP_PROXY", proxy.url)
    """

    def __init__(self) -> None:
        self.url = ""
        self.lines: list[str] = []
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None

    def __enter__(self) -> ForwardProxy:
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(),), daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("forward proxy did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        tasks: set[asyncio.Task[Any]] = set()

        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            tasks.add(task)
            try:
                await self._relay(reader, writer)
            except (ConnectionError, OSError, asyncio.IncompleteReadError, ValueError):
                pass
            finally:
                tasks.discard(task)
                writer.close()

        server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        self._ready.set()
        await self._stop.wait()
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        line, _, rest = head.decode("latin-1").partition("\r\n")
        self.lines.append(line)
        method, target, version = line.split(" ", 2)
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
            up_reader, up_writer = await asyncio.open_connection(host.strip("[]"), int(port))
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        else:
            parts = urllib.parse.urlsplit(target)
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            headers = [h for h in rest.split("\r\n") if h and not h.lower().startswith("conn")]
            headers = [h for h in headers if not h.lower().startswith("proxy-")]
            forwarded = "\r\n".join([f"{method} {path} {version}", *headers, "Connection: close"])
            up_reader, up_writer = await asyncio.open_connection(parts.hostname, parts.port or 80)
            up_writer.write((forwarded + "\r\n\r\n").encode("latin-1"))

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
