"""A fault-injecting HTTP proxy in front of a real OpenAI-compatible server.

`create_proxy_app(upstream, faults)` serves every path under `/v1/` by forwarding it to
`upstream + rest` (`/v1/chat/completions` -> `{upstream}/chat/completions`), with the faults
of `parity.local.faults` applied in order: to the JSON request body, to a non-streamed 2xx
JSON answer, to each SSE event of a stream (re-framed event by event, each flushed as it
arrives), or instead of forwarding at all. Anything else (errors, non-JSON bodies) passes
through unchanged.

    python -m parity.local.proxy --upstream http://127.0.0.1:8710/v1 --port 8720 \\
        --faults drop=reasoning_effort,inflate-usage=20

serves on 127.0.0.1 only, in the foreground.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import AsyncIterator, Sequence

import httpx
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from parity.core.errors import ConfigError
from parity.local.faults import ActiveFault, Ctx, Fault, Item, Json, describe_faults, parse_faults
from parity.local.serve import HOST, serve_forever

__all__ = ["create_proxy_app", "main"]

Hooked = list[tuple[Fault, Ctx]]
_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]
_FORWARD = ("authorization", "content-type", "accept")
# Not passed back: set again by this server, or no longer true after httpx decoded the body.
_HOP = {"connection", "content-length", "content-encoding", "transfer-encoding", "date", "server"}


class SSEEvents:
    """Cuts an SSE byte stream into events: blank-line separated, `\\r\\n`/`\\r`/`\\n` lines."""

    def __init__(self) -> None:
        self._rest = b""
        self._cr = False  # the last read ended with b"\r": maybe half of b"\r\n"

    def feed(self, data: bytes) -> list[bytes]:
        """Every event completed by `data` (without its blank line), in order."""
        if self._cr:
            data = b"\r" + data
        self._cr = data.endswith(b"\r")
        if self._cr:
            data = data[:-1]
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        events = (self._rest + data).split(b"\n\n")
        self._rest = events.pop()
        return [event for event in events if event.strip(b"\n")]

    def rest(self) -> bytes:
        """The bytes of an event the stream ended inside of (b"" when it ended cleanly)."""
        return self._rest + (b"\n" if self._cr else b"")


def _split_event(event: bytes) -> tuple[list[bytes], str | None]:
    """(the other field lines, the joined `data:` payload or None when there is none)."""
    fields: list[bytes] = []
    data: list[bytes] = []
    for line in event.split(b"\n"):
        if line.startswith(b"data:"):
            data.append(line[6:] if line.startswith(b"data: ") else line[5:])
        elif line:
            fields.append(line)
    return fields, b"\n".join(data).decode(errors="replace") if data else None


def _frame(fields: list[bytes], item: Item, first: bool) -> bytes:
    """One SSE event for `item`, after the upstream event's other fields (`event:`, `id:`...).

    Events a fault added (not `first`) get only an `event:` line, named by their "type".
    """
    if isinstance(item, bytes):
        return item
    if first:
        head = b"".join(line + b"\n" for line in fields)
    else:
        kind = item.get("type") if isinstance(item, dict) else None
        named = isinstance(kind, str) and any(line.startswith(b"event:") for line in fields)
        head = b"event: " + str(kind).encode() + b"\n" if named else b""
    text = orjson.dumps(item) if isinstance(item, dict) else item.encode()
    return head + b"".join(b"data: " + line + b"\n" for line in text.split(b"\n")) + b"\n"


async def _event(event: bytes, hooked: Hooked) -> bytes:
    """The bytes to send for one upstream event, after every stream fault has acted on it."""
    fields, payload = _split_event(event) if hooked else ([], None)
    if payload is None:
        return event + b"\n\n"  # no stream faults, or no data: as it came
    try:
        parsed = orjson.loads(payload)
    except orjson.JSONDecodeError:
        parsed = None
    items: list[Item] = [parsed if isinstance(parsed, dict) else payload]
    for fault, ctx in hooked:
        out: list[Item] = []
        for item in items:
            if isinstance(item, bytes):
                out.append(item)
                continue
            if fault.delay and (seconds := fault.delay(ctx, item)) > 0:
                await asyncio.sleep(seconds)
            out += fault.event(ctx, item) if fault.event else [item]
        items = out
    return b"".join(_frame(fields, item, i == 0) for i, item in enumerate(items))


async def _relay(upstream: httpx.Response, hooked: Hooked) -> AsyncIterator[bytes]:
    """The proxied stream: one write per event, as each arrives."""
    events = SSEEvents()
    try:
        async for data in upstream.aiter_bytes():
            for event in events.feed(data):
                if out := await _event(event, hooked):
                    yield out
        if rest := events.rest():
            yield rest  # the upstream stream ended inside an event: pass it on as it came
    finally:
        await upstream.aclose()


async def _answer(upstream: httpx.Response, hooked: Hooked) -> Response:
    """A non-streamed answer: 2xx JSON objects go through the faults, the rest unchanged."""
    body = await upstream.aread()
    await upstream.aclose()
    headers = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP}
    ctype = upstream.headers.get("content-type", "")
    if not upstream.is_success:
        for fault, ctx in hooked:
            if fault.failure and (reply := fault.failure(ctx, upstream.status_code)) is not None:
                return JSONResponse(reply.body, reply.status, headers=reply.headers)
    if hooked and upstream.is_success and "json" in ctype:
        data = _json_object(body)
        if data is not None:
            for fault, ctx in hooked:
                if fault.delay and (seconds := fault.delay(ctx, data)) > 0:
                    await asyncio.sleep(seconds)
                data = fault.response(ctx, data) if fault.response else data
            body = orjson.dumps(data)
    return Response(body, upstream.status_code, headers=headers)


def _json_object(body: bytes) -> Json | None:
    try:
        data = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def create_proxy_app(upstream: str, faults: Sequence[ActiveFault]) -> Starlette:
    """A Starlette app forwarding `/v1/{rest}` to `{upstream}/{rest}` with `faults` applied.

    Each app counts requests for rate faults on its own (the faults are copied fresh).
    """
    base = upstream.rstrip("/")
    active = [fault.fresh() for fault in faults]
    clients: list[httpx.AsyncClient] = []  # made on first use, in the server's event loop

    def client() -> httpx.AsyncClient:
        if not clients:
            timeout = httpx.Timeout(10.0, read=None, pool=None)
            limits = httpx.Limits(max_connections=1000, max_keepalive_connections=100)
            clients.append(httpx.AsyncClient(timeout=timeout, limits=limits))
        return clients[0]

    async def proxy(request: Request) -> Response:
        path = "/" + request.path_params["rest"]
        raw = await request.body()
        body = _json_object(raw)
        hooked = [(a.fault, a.context(request.method, path, body or {})) for a in active]
        for fault, ctx in hooked:
            reply = fault.status(ctx) if fault.status else None
            if reply is not None:
                return JSONResponse(reply.body, reply.status, headers=reply.headers)
        if body is not None and any(fault.request for fault, _ in hooked):
            sent = orjson.loads(raw)  # a copy: hooks see the client's body in ctx.request
            for fault, ctx in hooked:
                sent = fault.request(ctx, sent) if fault.request else sent
            raw = orjson.dumps(sent)
        url = base + path + (f"?{request.url.query}" if request.url.query else "")
        headers = {k: v for k in _FORWARD if (v := request.headers.get(k)) is not None}
        try:
            sent_request = client().build_request(request.method, url, content=raw, headers=headers)
            answer = await client().send(sent_request, stream=True)
        except httpx.HTTPError as exc:
            error = {"message": f"upstream unreachable: {exc!r}", "type": "proxy_error"}
            return JSONResponse({"error": error}, 502)
        ctype = answer.headers.get("content-type", "")
        if not (answer.is_success and ctype.startswith("text/event-stream")):
            wanted = [h for h in hooked if h[0].response or h[0].delay or h[0].failure]
            return await _answer(answer, wanted)
        for _, ctx in hooked:
            ctx.stream = True
        stream_hooked = [h for h in hooked if h[0].event or h[0].delay]
        headers = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP}
        return StreamingResponse(_relay(answer, stream_hooked), answer.status_code, headers)

    return Starlette(routes=[Route("/v1/{rest:path}", proxy, methods=_METHODS)])


def _epilog() -> str:
    lines = ["faults (comma-separated, applied in order):"]
    for name, summary, takes in describe_faults():
        lines.append(f"  {name}{f'=<{takes}>' if takes else ''}\n      {summary}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the proxy in the foreground on 127.0.0.1; 2 (one-line message) for bad options."""
    parser = argparse.ArgumentParser(
        prog="python -m parity.local.proxy",
        description="Serve a fault-injecting proxy in front of an OpenAI-compatible server.",
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--upstream", required=True, help="base URL, e.g. http://127.0.0.1:8710/v1")
    parser.add_argument("--port", type=int, required=True, help=f"port to serve on ({HOST})")
    parser.add_argument("--faults", default="", help="e.g. drop=seed,inflate-usage=20")
    args = parser.parse_args(argv)
    try:
        if not args.upstream.startswith(("http://", "https://")):
            raise ConfigError(f"--upstream {args.upstream!r} is not an http(s) URL")
        faults = parse_faults(args.faults)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    url = f"http://{HOST}:{args.port}/v1"
    print(f"fault proxy {url} -> {args.upstream}: {args.faults or 'no faults'}", file=sys.stderr)
    serve_forever(create_proxy_app(args.upstream, faults), args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
