"""Async client for OpenAI-compatible Chat Completions endpoints.

`ProviderClient.chat` sends one chat completion request (streamed or not), retries the
failures worth retrying, and returns an `Exchange`: the body sent, clock readings taken as
bytes arrive, the assembled answer, and every raw payload. It never raises because of what a
provider did; every failure is an `Exchange` whose `error` says which kind it was.

The API key goes into the `Authorization` header only. If a provider echoes it back (in an
error message, or even in generated text) it is replaced by `***` everywhere in the Exchange.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import os
import random
import ssl
import time
import urllib.parse
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import httpx
import orjson

from parity import __version__
from parity.core.config import Provider
from parity.core.exchange import ErrorClass, Exchange, Timings
from parity.core.sse import SSEParser

__all__ = ["ModelsProbe", "ProviderClient"]

log = logging.getLogger(__name__)

_RETRY_STATUSES = frozenset((429, 500, 502, 503, 504))
_RETRY_AFTER_STATUSES = frozenset((429, 503))
CHAT_ENDPOINT = "chat/completions"
RESPONSES_ENDPOINT = "responses"
RAW_BODY = "__raw_body__"
"""A request body `{RAW_BODY: text}` is sent as `text` verbatim (malformed-JSON tests)."""
_RETRY_CLASSES = frozenset((ErrorClass.CONNECT, ErrorClass.TIMEOUT, ErrorClass.RATE_LIMITED))
_ERROR_BODY_LIMIT = 64 * 1024  # bytes of an error body worth reading
_DETAIL_BODY_CHARS = 300
_SCRUBBED = "***"


@dataclass(frozen=True)
class ModelsProbe:
    """Outcome of `GET {base_url}/models`.

    `reachable` is True when the server answered HTTP at all (whatever the status);
    `models` lists the ids it reported (empty unless it answered 200 with a model list).
    """

    reachable: bool
    status: int | None
    models: list[str] = field(default_factory=list)
    detail: str = ""


class ProviderClient:
    """Chat Completions client for one provider; use it as an async context manager.

    Connections are pooled (at most `provider.max_concurrency`) and reused across calls.
    `provider.timeout_s` bounds each network operation: connecting, writing the request,
    and every wait for the next bytes of the response (so a slow but steady stream is not
    cut). Waiting for a free pooled connection is not bounded and not timed.
    """

    def __init__(
        self,
        provider: Provider,
        *,
        retries: int = 3,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """Prepare a client; no connection is opened until the first request.

        Connect errors, timeouts, 429 and 500/502/503/504 are retried up to `retries` more
        times, waiting `backoff_s * 2**n` (with jitter, at most `max_backoff_s`) or what a
        `Retry-After` header on 429/503 asks for (also capped at `max_backoff_s`).
        `transport` replaces the network transport (for tests).
        """
        if retries < 0:
            raise ValueError("retries must be >= 0")
        self.provider = provider
        self.retries = retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self._key = provider.api_key()
        self._chat_url = f"{provider.base_url}/{CHAT_ENDPOINT}"
        self._models_url = f"{provider.base_url}/models"
        headers = {"User-Agent": f"parity/{__version__}"}
        headers.update(provider.headers)
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        self._http = httpx.AsyncClient(
            headers=headers,
            timeout=httpx.Timeout(provider.timeout_s, pool=None),
            limits=httpx.Limits(
                max_connections=provider.max_concurrency,
                max_keepalive_connections=provider.max_concurrency,
            ),
            transport=transport,
            follow_redirects=False,
        )
        # Streams go through a lean HTTP/1.1 reader of our own (see `_RawStreams`): httpx
        # spends ~10 us of CPU per SSE event in h11's per-chunk machinery, more than the
        # whole parse. Not with an injected transport, a proxy, or odd header values.
        self._raw: _RawStreams | None = None
        if transport is None and not _proxy_configured() and _plain_headers(headers):
            self._raw = _RawStreams(self._chat_url, headers, provider)

    def __repr__(self) -> str:
        return f"ProviderClient({self.provider.name!r}, {self.provider.base_url!r})"

    async def __aenter__(self) -> ProviderClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close pooled connections; the client cannot be used afterwards."""
        await self._http.aclose()
        if self._raw is not None:
            await self._raw.aclose()

    async def chat(
        self, body: dict[str, Any], *, stream: bool, endpoint: str = CHAT_ENDPOINT
    ) -> Exchange:
        """Send one request (a chat completion unless `endpoint` says otherwise) and return
        its Exchange; never raises for the provider's behaviour.

        The body sent is `{**provider.extra_body, "model": provider.model, **body,
        "stream": stream}` (a body may name another model, to test how that is refused),
        plus `stream_options: {"include_usage": true}` when streaming a chat completion
        unless `body` sets `stream_options`; `Exchange.request` is exactly that body. A body
        `{RAW_BODY: text}` sends `text` verbatim instead (malformed-request tests).
        `endpoint` "responses" (the Responses API) is read into the same Exchange fields:
        output_text as text, function_call items as tool_calls, input/output tokens as usage.
        After retries, the Exchange is the last attempt's, with `attempts` counting all.
        Raises `TypeError` only if `body` is not JSON-serialisable.
        """
        if RAW_BODY in body:
            sent_body: dict[str, Any] = dict(body)
            payload = str(body[RAW_BODY]).encode()
        else:
            request: dict[str, Any] = {
                **self.provider.extra_body,
                "model": self.provider.model,
                **body,
                "stream": stream,
            }
            if stream and endpoint == CHAT_ENDPOINT and "stream_options" not in body:
                request["stream_options"] = {"include_usage": True}
            payload = orjson.dumps(request)
            # A copy decoded from the bytes sent: exactly what went out, immune to mutation.
            sent_body = orjson.loads(payload)
        url = f"{self.provider.base_url}/{endpoint}"
        attempt = 0
        while True:
            attempt += 1
            exchange, retry_after = await self._attempt(sent_body, payload, stream, url)
            exchange.attempts = attempt
            if attempt > self.retries or not _retryable(exchange):
                break
            delay = self._delay(attempt, retry_after)
            log.debug(
                "%s: attempt %d failed (%s), retrying in %.2fs",
                self.provider.name,
                attempt,
                exchange.error,
                delay,
            )
            await asyncio.sleep(delay)
        if self._key:
            _scrub_exchange(exchange, self._key)
        return exchange

    async def list_models(self) -> ModelsProbe:
        """`GET {base_url}/models` once (no retries) and report what the server said.

        Never raises for the server's behaviour: unreachable servers, HTTP errors and bodies
        that are not a model list all come back as a `ModelsProbe` with a `detail`.
        """
        try:
            response = await self._http.get(self._models_url)
        except httpx.TimeoutException as exc:
            return self._probe(False, None, f"timed out: {_exc_text(exc)}")
        except httpx.HTTPError as exc:
            return self._probe(False, None, f"cannot connect: {_exc_text(exc)}")
        status = response.status_code
        if status != 200:
            return self._probe(True, status, f"HTTP {status}: {_body_snippet(response.content)}")
        try:
            data = orjson.loads(response.content)
            items = data["data"]
            models = [item["id"] for item in items if isinstance(item.get("id"), str)]
        except (orjson.JSONDecodeError, TypeError, KeyError, AttributeError):
            return self._probe(
                True, status, f"not an OpenAI model list: {_body_snippet(response.content)}"
            )
        return self._probe(True, status, f"{len(models)} model(s)", models)

    def _probe(
        self, reachable: bool, status: int | None, detail: str, models: list[str] | None = None
    ) -> ModelsProbe:
        if self._key:
            detail = _scrub(detail, self._key)
            models = _scrub(models, self._key)
        return ModelsProbe(reachable=reachable, status=status, models=models or [], detail=detail)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before attempt `attempt + 1`."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_backoff_s)
        base = min(self.backoff_s * 2.0 ** (attempt - 1), self.max_backoff_s)
        return base * (0.5 + random.random() / 2)  # jitter: spread retries of parallel callers

    async def _attempt(
        self, request: dict[str, Any], payload: bytes, stream: bool, url: str
    ) -> tuple[Exchange, float | None]:
        """One HTTP round trip; returns the Exchange and the Retry-After delay, if any."""
        if stream and self._raw is not None and url == self._chat_url:
            return await self._raw.attempt(request, payload)
        timings = Timings(sent=time.perf_counter_ns())
        exchange = Exchange(request=request, stream=stream, timings=timings)

        async def trace(name: str, info: dict[str, Any]) -> None:
            # httpcore calls this around each step: gives `sent` after pool wait and connect.
            if name.endswith("send_request_headers.started"):
                timings.sent = time.perf_counter_ns()
            elif name.endswith("receive_response_headers.complete"):
                timings.headers = time.perf_counter_ns()

        http_request = self._http.build_request(
            "POST",
            url,
            content=payload,
            headers={
                "Content-Type": "application/json",
                "Accept": "text/event-stream" if stream else "application/json",
            },
            extensions={"trace": trace},
        )
        timings.sent = time.perf_counter_ns()
        try:
            response = await self._http.send(http_request, stream=True)
        except httpx.TimeoutException as exc:
            timings.end = time.perf_counter_ns()
            _fail(exchange, ErrorClass.TIMEOUT, f"timed out before a response: {_exc_text(exc)}")
            return exchange, None
        except httpx.HTTPError as exc:
            timings.end = time.perf_counter_ns()
            _fail(exchange, ErrorClass.CONNECT, f"no response: {_exc_text(exc)}")
            return exchange, None
        if timings.headers is None:
            timings.headers = time.perf_counter_ns()
        exchange.status = status = response.status_code
        retry_after: float | None = None
        try:
            if not 200 <= status < 300:
                await self._read_error(response, exchange)
                if status in _RETRY_AFTER_STATUSES:
                    retry_after = _parse_retry_after(response.headers.get("retry-after"))
            elif stream:
                await self._read_stream(response, exchange)
            elif url.endswith(f"/{RESPONSES_ENDPOINT}"):
                await self._read_response_object(response, exchange)
            else:
                await self._read_body(response, exchange)
        except httpx.TimeoutException as exc:
            timings.end = timings.end or time.perf_counter_ns()
            _fail(exchange, ErrorClass.TIMEOUT, f"timed out reading the response: {_exc_text(exc)}")
        except httpx.HTTPError as exc:
            timings.end = timings.end or time.perf_counter_ns()
            if exchange.error is None:
                kind = ErrorClass.MALFORMED_STREAM if stream else ErrorClass.INVALID_JSON
                _fail(exchange, kind, f"response broken off: {_exc_text(exc)}")
        finally:
            await response.aclose()
        return exchange, retry_after

    async def _read_error(self, response: httpx.Response, exchange: Exchange) -> None:
        """Read (a bounded part of) a non-2xx body and classify the status."""
        body = await _read_limited(response, _ERROR_BODY_LIMIT)
        exchange.timings.end = time.perf_counter_ns()
        _classify_error(exchange, response.status_code, response.headers, body)

    async def _read_json(self, response: httpx.Response, exchange: Exchange) -> Any:
        """Read a whole non-streamed body into `exchange.raw`; its JSON, or None (failed)."""
        timings = exchange.timings
        parts: list[bytes] = []
        async for part in response.aiter_bytes():
            if timings.first_chunk is None:
                timings.first_chunk = time.perf_counter_ns()
            parts.append(part)
        timings.end = time.perf_counter_ns()
        body = b"".join(parts)
        exchange.raw = body.decode(errors="replace")
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            _fail(exchange, ErrorClass.INVALID_JSON, f"body is not JSON: {_body_snippet(body)}")
            return None

    async def _read_response_object(self, response: httpx.Response, exchange: Exchange) -> None:
        """Read a Responses API answer into the Exchange's chat-shaped fields."""
        data = await self._read_json(response, exchange)
        if exchange.error is not None:
            return
        output = data.get("output") if isinstance(data, dict) else None
        if not isinstance(output, list):
            snippet = _body_snippet((exchange.raw or "").encode())
            _fail(exchange, ErrorClass.INVALID_JSON, f"not a response with output: {snippet}")
            return
        texts: list[str] = []
        for item in output:
            if not isinstance(item, dict):
                continue
            if item.get("type") == "function_call":
                exchange.tool_calls.append(
                    {
                        "id": item.get("call_id"),
                        "type": "function",
                        "function": {
                            "name": item.get("name"),
                            "arguments": item.get("arguments"),
                        },
                    }
                )
            elif item.get("type") in ("message", "reasoning"):
                parts = [
                    part["text"]
                    for part in item.get("content") or []
                    if isinstance(part, dict) and isinstance(part.get("text"), str)
                ]
                if item["type"] == "message":
                    texts += parts
                elif parts:
                    exchange.reasoning += "".join(parts)
                    exchange.reasoning_field = "reasoning"
        exchange.text = "".join(texts)
        incomplete = data.get("incomplete_details") or {}
        if exchange.tool_calls:
            exchange.finish_reason = "tool_calls"
        elif data.get("status") == "incomplete" and isinstance(incomplete, dict):
            reason = incomplete.get("reason")
            exchange.finish_reason = "length" if reason == "max_output_tokens" else str(reason)
        elif data.get("status") == "completed":
            exchange.finish_reason = "stop"
        usage = data.get("usage")
        if isinstance(usage, dict):
            prompt, completion = usage.get("input_tokens"), usage.get("output_tokens")
            exchange.usage = {
                **usage,
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": usage.get("total_tokens"),
            }

    async def _read_body(self, response: httpx.Response, exchange: Exchange) -> None:
        """Read a non-streamed completion and fill the Exchange from `choices[0].message`."""
        data = await self._read_json(response, exchange)
        if exchange.error is not None:
            return
        body = (exchange.raw or "").encode()
        choices = data.get("choices") if isinstance(data, dict) else None
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            _fail(
                exchange,
                ErrorClass.INVALID_JSON,
                f"not a chat completion with choices: {_body_snippet(body)}",
            )
            return
        choice = choices[0]
        message = choice.get("message")
        if not isinstance(message, dict):
            _fail(exchange, ErrorClass.INVALID_JSON, "choices[0] has no message object")
            return
        content = message.get("content")
        if isinstance(content, str):
            exchange.text = content
        for name in ("reasoning", "reasoning_content"):
            value = message.get(name)
            if isinstance(value, str) and value:
                exchange.reasoning = value
                exchange.reasoning_field = name
                break
        tool_calls = message.get("tool_calls")
        if isinstance(tool_calls, list):
            exchange.tool_calls = [call for call in tool_calls if isinstance(call, dict)]
        finish = choice.get("finish_reason")
        if isinstance(finish, str):
            exchange.finish_reason = finish
        usage = data.get("usage")
        if isinstance(usage, dict):
            exchange.usage = usage

    async def _read_stream(self, response: httpx.Response, exchange: Exchange) -> None:
        """Read an SSE stream, timing every chunk, and assemble the answer from the deltas.

        Only the first choice of each chunk is read: parity asks for one choice (n=1).
        """
        timings = exchange.timings
        content_type = response.headers.get("content-type", "")
        if not content_type.lower().startswith("text/event-stream"):
            body = await _read_limited(response, _ERROR_BODY_LIMIT)
            timings.end = time.perf_counter_ns()
            _not_a_stream(exchange, content_type, body)
            return
        parser = SSEParser()
        state = _StreamState(exchange)
        try:
            async for part in response.aiter_bytes():
                now = time.perf_counter_ns()
                payloads = parser.feed(part)
                if payloads and not state.take(payloads, now):
                    break
            else:
                state.take(parser.close(), time.perf_counter_ns())
        finally:
            # Also when the connection breaks: keep what arrived, for diagnosis.
            timings.end = time.perf_counter_ns()
            state.finish()
        if exchange.error is not None:
            return
        if parser.problems:
            _fail(exchange, ErrorClass.MALFORMED_STREAM, "; ".join(parser.problems))
        elif not state.done:
            _fail(exchange, ErrorClass.MALFORMED_STREAM, "stream ended without data: [DONE]")


class _StreamState:
    """Accumulates a streamed completion; the per-chunk hot path lives in `take`."""

    __slots__ = ("calls", "done", "exchange", "reasoning", "text")

    def __init__(self, exchange: Exchange) -> None:
        self.exchange = exchange
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.calls: dict[int, dict[str, Any]] = {}
        self.done = False

    def take(self, payloads: list[str], now: int) -> bool:
        """Process payloads that arrived at `now`; False when the stream must be abandoned."""
        if not payloads:
            return True
        exchange = self.exchange
        timings = exchange.timings
        if timings.first_chunk is None:
            timings.first_chunk = now
        for payload in payloads:
            if payload == "[DONE]":
                self.done = True
                continue
            exchange.chunks.append(payload)
            if self.done:
                _fail(exchange, ErrorClass.MALFORMED_STREAM, "data after data: [DONE]")
                return False
            try:
                chunk = orjson.loads(payload)
            except orjson.JSONDecodeError:
                _fail(exchange, ErrorClass.MALFORMED_STREAM, f"data is not JSON: {payload[:120]!r}")
                return False
            if not isinstance(chunk, dict):
                _fail(
                    exchange,
                    ErrorClass.MALFORMED_STREAM,
                    f"data is not an object: {payload[:120]!r}",
                )
                return False
            if chunk.get("error"):
                _fail(
                    exchange,
                    ErrorClass.MALFORMED_STREAM,
                    f"provider sent an error mid-stream: {payload[:_DETAIL_BODY_CHARS]}",
                )
                return False
            usage = chunk.get("usage")
            if usage and isinstance(usage, dict):
                exchange.usage = usage
            choices = chunk.get("choices")
            if not choices or not isinstance(choices, list):
                continue
            choice = choices[0]
            if not isinstance(choice, dict):
                continue
            finish = choice.get("finish_reason")
            if finish and isinstance(finish, str):
                exchange.finish_reason = finish
            delta = choice.get("delta")
            if not delta or not isinstance(delta, dict):
                continue
            generated = False
            content = delta.get("content")
            if content and isinstance(content, str):
                self.text.append(content)
                generated = True
                if timings.first_answer_chunk is None:
                    timings.first_answer_chunk = now
            reasoning = delta.get("reasoning")
            name = "reasoning"
            if not reasoning or not isinstance(reasoning, str):
                reasoning = delta.get("reasoning_content")
                name = "reasoning_content"
            if reasoning and isinstance(reasoning, str):
                self.reasoning.append(reasoning)
                generated = True
                if exchange.reasoning_field is None:
                    exchange.reasoning_field = name
            tool_calls = delta.get("tool_calls")
            if tool_calls and isinstance(tool_calls, list) and self._merge_calls(tool_calls):
                generated = True
            if generated:
                timings.token_chunks.append(now)
                if timings.first_token_chunk is None:
                    timings.first_token_chunk = now
        return True

    def _merge_calls(self, deltas: list[Any]) -> bool:
        """Fold tool-call deltas into `calls` by index; True when any carried generated text."""
        generated = False
        for position, delta in enumerate(deltas):
            if not isinstance(delta, dict):
                continue
            index = delta.get("index")
            if not isinstance(index, int):
                index = position
            call = self.calls.get(index)
            if call is None:
                call = self.calls[index] = {
                    "id": None,
                    "type": "function",
                    "function": {"name": "", "arguments": ""},
                }
            if isinstance(delta.get("id"), str) and delta["id"]:
                call["id"] = delta["id"]
            if isinstance(delta.get("type"), str) and delta["type"]:
                call["type"] = delta["type"]
            function = delta.get("function")
            if not isinstance(function, dict):
                continue
            target = call["function"]
            name = function.get("name")
            # Most providers send the name once, some in pieces, a few repeat it whole.
            if isinstance(name, str) and name and name != target["name"]:
                target["name"] += name
                generated = True
            arguments = function.get("arguments")
            if isinstance(arguments, str) and arguments:
                target["arguments"] += arguments
                generated = True
        return generated

    def finish(self) -> None:
        """Write the assembled text, reasoning and tool calls into the Exchange."""
        exchange = self.exchange
        exchange.text = "".join(self.text)
        exchange.reasoning = "".join(self.reasoning)
        exchange.tool_calls = [self.calls[index] for index in sorted(self.calls)]


def _classify_error(
    exchange: Exchange, status: int, headers: Mapping[str, str], body: bytes
) -> None:
    """Fill in a non-2xx answer: raw body, error class and a one-line detail."""
    exchange.raw = body.decode(errors="replace")
    if status == 429:
        kind = ErrorClass.RATE_LIMITED
    elif status >= 500:
        kind = ErrorClass.HTTP_5XX
    else:  # 4xx, and redirects, which a provider API should not answer
        kind = ErrorClass.HTTP_4XX
    detail = f"HTTP {status}"
    if 300 <= status < 400 and "location" in headers:
        detail += f" redirect to {headers['location']}"
    snippet = _body_snippet(body)
    _fail(exchange, kind, f"{detail}: {snippet}" if snippet else detail)


def _not_a_stream(exchange: Exchange, content_type: str, body: bytes) -> None:
    exchange.raw = body.decode(errors="replace")
    _fail(
        exchange,
        ErrorClass.MALFORMED_STREAM,
        f"asked for a stream but got content-type {content_type or 'none'!r}: "
        f"{_body_snippet(body)}",
    )


def _retryable(exchange: Exchange) -> bool:
    if exchange.error is None:
        return False
    if exchange.error in _RETRY_CLASSES:
        return True
    return exchange.error is ErrorClass.HTTP_5XX and exchange.status in _RETRY_STATUSES


def _fail(exchange: Exchange, kind: ErrorClass, detail: str) -> None:
    exchange.error = kind
    exchange.error_detail = detail


async def _read_limited(response: httpx.Response, limit: int) -> bytes:
    """Up to `limit` bytes of the body, or what arrived before the connection failed.

    The rest is left unread; closing the response then drops the connection.
    """
    parts: list[bytes] = []
    size = 0
    try:
        async for part in response.aiter_bytes():
            parts.append(part)
            size += len(part)
            if size >= limit:
                break
    except httpx.HTTPError:
        pass
    return b"".join(parts)[:limit]


def _body_snippet(body: bytes) -> str:
    """The start of a body on one line, at most ~300 characters."""
    text = " ".join(body.decode(errors="replace").split())
    if len(text) > _DETAIL_BODY_CHARS:
        return text[:_DETAIL_BODY_CHARS] + "..."
    return text


def _exc_text(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delay-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(when.timestamp() - time.time(), 0.0)


def _scrub(value: Any, key: str) -> Any:
    if isinstance(value, str):
        return value.replace(key, _SCRUBBED) if key in value else value
    if isinstance(value, list):
        return [_scrub(item, key) for item in value]
    if isinstance(value, dict):
        return {_scrub(k, key): _scrub(v, key) for k, v in value.items()}
    return value


def _scrub_exchange(exchange: Exchange, key: str) -> None:
    """Replace the API key with `***` in every field, should a provider have echoed it."""
    exchange.request = _scrub(exchange.request, key)
    exchange.error_detail = _scrub(exchange.error_detail, key)
    exchange.raw = _scrub(exchange.raw, key)
    exchange.chunks = _scrub(exchange.chunks, key)
    exchange.text = _scrub(exchange.text, key)
    exchange.reasoning = _scrub(exchange.reasoning, key)
    exchange.finish_reason = _scrub(exchange.finish_reason, key)
    exchange.usage = _scrub(exchange.usage, key)
    exchange.tool_calls = _scrub(exchange.tool_calls, key)


# ---- streams over a lean HTTP/1.1 reader -----------------------------------------------------

_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy")
_READ_SIZE = 256 * 1024
_HEAD_LIMIT = 64 * 1024


def _proxy_configured() -> bool:
    """Whether the environment names a proxy (httpx honours it; the raw reader does not)."""
    return any(os.environ.get(name) or os.environ.get(name.upper()) for name in _PROXY_VARIABLES)


def _plain_headers(headers: Mapping[str, str]) -> bool:
    return all("\r" not in f"{k}{v}" and "\n" not in f"{k}{v}" for k, v in headers.items())


class _ProtocolError(Exception):
    """The server broke HTTP/1.1 framing, or closed the connection in the middle of it."""


class _Stale(Exception):
    """A reused keep-alive connection was closed by the server before it answered."""


Segment = tuple[int, bytes]
"""Bytes as they came off the socket, with the `perf_counter_ns` of their arrival."""


class _Conn(asyncio.Protocol):
    """One keep-alive connection. Every block of bytes is stamped with `perf_counter_ns` in
    the event loop's I/O callback, the moment it is received, so a client that is busy
    parsing other streams still times each one by its arrival, not by when it got to it."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.segments: list[Segment] = []
        self.closed = False
        self.error: BaseException | None = None
        self._buffered = 0
        self._paused = False
        self._waiter: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.segments.append((time.perf_counter_ns(), data))
        self._buffered += len(data)
        if self._buffered > _READ_SIZE and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self.closed = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.error = exc
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def read(self) -> list[Segment]:
        """The segments received since the last call, waiting for one; [] once closed."""
        if not self.segments:
            if self.closed:
                return []
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        out, self.segments = self.segments, []
        self._buffered = 0
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return out

    def write(self, data: bytes) -> None:
        if self.transport is None or self.closed:
            raise ConnectionResetError("connection closed")
        self.transport.write(data)

    def usable(self) -> bool:
        return not self.closed and self.transport is not None and not self.transport.is_closing()

    def close(self) -> None:
        if self.transport is not None:
            with contextlib.suppress(Exception):
                self.transport.close()

    def closed_detail(self) -> str:
        return f" ({self.error})" if self.error else ""


class _Body:
    """Decodes a response body as its segments arrive: chunked, by Content-Length or until
    close, then gzip/deflate if the server compressed it anyway. Each decoded piece keeps
    the arrival time of the segment it came in."""

    __slots__ = (
        "_buf",
        "_conn",
        "_inflate",
        "_last",
        "_left",
        "_mode",
        "_pending",
        "_skip",
        "complete",
        "ended_at",
        "leftover",
    )

    def __init__(
        self, conn: _Conn, headers: Mapping[str, str], pending: list[Segment], status: int
    ) -> None:
        self._conn = conn
        self._pending = pending
        self._buf = bytearray()
        self._left = 0
        self._skip = 0
        self._last = False
        self.complete = False
        self.leftover = False
        self.ended_at = 0
        encoding = headers.get("transfer-encoding", "").lower()
        length = headers.get("content-length")
        if "chunked" in encoding:
            self._mode = "chunked"
        elif length is not None and length.strip().isdigit():
            self._mode = "length"
            self._left = int(length)
            self.complete = self._left == 0
        elif status in (204, 304):
            self._mode = "length"
            self.complete = True
        else:
            self._mode = "close"
        coding = headers.get("content-encoding", "").lower().strip()
        self._inflate: Any = None
        if coding in ("gzip", "x-gzip"):
            self._inflate = zlib.decompressobj(wbits=31)
        elif coding == "deflate":
            self._inflate = zlib.decompressobj()

    async def read(self) -> list[Segment]:
        """The next decoded pieces of the body with their arrival times; [] at its end."""
        while True:
            out: list[Segment] = []
            for at, raw in self._pending:
                if self.complete:
                    self.leftover = True  # bytes past the end: the connection is not reused
                    break
                self._buf += raw
                data = self._decode()
                if self.complete:
                    self.ended_at = at
                if data and self._inflate is not None:
                    data = self._inflate.decompress(data)
                if data:
                    out.append((at, data))
            self._pending = []
            if out:
                return out
            if self.complete:
                return []
            self._pending = await self._conn.read()
            if not self._pending:
                if self._mode == "close":
                    self.complete = True
                    self.ended_at = time.perf_counter_ns()
                    return []
                raise _ProtocolError(
                    "peer closed connection without sending complete body"
                    + self._conn.closed_detail()
                )

    def _decode(self) -> bytes:
        buf = self._buf
        if self._mode == "close":
            data = bytes(buf)
            buf.clear()
            return data
        if self._mode == "length":
            take = min(self._left, len(buf))
            data = bytes(buf[:take])
            del buf[:take]
            self._left -= take
            if not self._left:
                self.complete = True
                self.leftover = bool(buf)
            return data
        out: list[bytes] = []
        pos = 0
        end = len(buf)
        while pos < end:
            if self._left:
                take = min(self._left, end - pos)
                out.append(bytes(buf[pos : pos + take]))
                pos += take
                self._left -= take
                if not self._left:
                    self._skip = 2  # the CRLF after the chunk's data
                continue
            if self._skip:
                take = min(self._skip, end - pos)
                pos += take
                self._skip -= take
                continue
            if self._last:  # after the last chunk: optional trailers, then an empty line
                if buf.startswith(b"\r\n", pos):
                    pos += 2
                else:
                    stop = buf.find(b"\r\n\r\n", pos)
                    if stop < 0:
                        break
                    pos = stop + 4
                self.complete = True
                self.leftover = pos < end
                break
            line_end = buf.find(b"\r\n", pos)
            if line_end < 0:
                if end - pos > 1024:
                    raise _ProtocolError("chunk size line too long")
                break
            line = bytes(buf[pos:line_end])
            try:
                size = int(line.split(b";", 1)[0], 16)
            except ValueError:
                raise _ProtocolError(f"bad chunk size line {line[:40]!r}") from None
            pos = line_end + 2
            if size == 0:
                self._last = True
            else:
                self._left = size
        del buf[:pos]
        return b"".join(out)


class _RawStreams:
    """Streamed chat completions over our own keep-alive HTTP/1.1 connections.

    Same contract as the httpx path (error classes, details, timings, Retry-After); proxies
    and injected transports keep the httpx path, and redirects are not followed in either.
    Connections are pooled; at most `max_concurrency` streams run at once. Bytes are
    stamped as they arrive (`_Conn`), and each block is de-chunked in one pass, so the
    per-event cost is the SSE split and one `orjson.loads`.
    """

    def __init__(self, url: str, headers: Mapping[str, str], provider: Provider) -> None:
        parts = urllib.parse.urlsplit(url)
        self._tls = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port or (443 if self._tls else 80)
        default = (self._tls and self._port == 443) or (not self._tls and self._port == 80)
        host = f"[{self._host}]" if ":" in self._host else self._host
        host_header = host if default else f"{host}:{self._port}"
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        lines = [f"POST {path} HTTP/1.1", f"Host: {host_header}"]
        all_headers = {
            **headers,
            "Content-Type": "application/json",
            "Accept": "text/event-stream",
            "Accept-Encoding": "identity",
            "Connection": "keep-alive",
        }
        lines += [f"{k}: {v}" for k, v in all_headers.items()]
        self._head = ("\r\n".join(lines) + "\r\nContent-Length: ").encode("latin-1")
        self._timeout = provider.timeout_s
        self._slots = asyncio.Semaphore(provider.max_concurrency)
        self._idle: list[_Conn] = []
        self._ssl: ssl.SSLContext | None = None

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    async def _connect(self) -> _Conn:
        context: ssl.SSLContext | None = None
        if self._tls:
            if self._ssl is None:
                self._ssl = httpx.create_ssl_context()
            context = self._ssl
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(self._timeout):
            _transport, conn = await loop.create_connection(
                _Conn,
                self._host,
                self._port,
                ssl=context,
                server_hostname=self._host if context else None,
            )
        return conn

    async def attempt(
        self, request: dict[str, Any], payload: bytes
    ) -> tuple[Exchange, float | None]:
        """One streamed round trip; returns the Exchange and the Retry-After delay, if any."""
        async with self._slots:
            return await self._attempt(request, payload)

    async def _attempt(
        self, request: dict[str, Any], payload: bytes
    ) -> tuple[Exchange, float | None]:
        timings = Timings(sent=time.perf_counter_ns())
        exchange = Exchange(request=request, stream=True, timings=timings)
        message = self._head + b"%d\r\n\r\n%s" % (len(payload), payload)
        conn: _Conn | None = None
        while True:
            fresh = True
            while self._idle:
                candidate = self._idle.pop()
                if candidate.usable():
                    conn, fresh = candidate, False
                    break
                candidate.close()
            if conn is None:
                try:
                    conn = await self._connect()
                except TimeoutError:
                    timings.end = time.perf_counter_ns()
                    _fail(
                        exchange, ErrorClass.TIMEOUT, "timed out before a response: ConnectTimeout"
                    )
                    return exchange, None
                except (OSError, ssl.SSLError) as exc:
                    timings.end = time.perf_counter_ns()
                    _fail(exchange, ErrorClass.CONNECT, f"no response: ConnectError: {exc}")
                    return exchange, None
            timings.sent = time.perf_counter_ns()
            try:
                status, headers, arrived, pending = await self._send(conn, message, fresh)
                break
            except _Stale:
                conn.close()
                conn = None  # the server closed an idle connection: open a new one
            except TimeoutError:
                conn.close()
                timings.end = time.perf_counter_ns()
                _fail(exchange, ErrorClass.TIMEOUT, "timed out before a response: ReadTimeout")
                return exchange, None
            except (OSError, _ProtocolError, ValueError) as exc:
                conn.close()
                timings.end = time.perf_counter_ns()
                _fail(exchange, ErrorClass.CONNECT, f"no response: RemoteProtocolError: {exc}")
                return exchange, None
        timings.headers = arrived
        exchange.status = status
        body = _Body(conn, headers, pending, status)
        reusable = False
        retry_after: float | None = None
        try:
            if not 200 <= status < 300:
                data = await self._read_limited(body)
                timings.end = time.perf_counter_ns()
                _classify_error(exchange, status, headers, data)
                if status in _RETRY_AFTER_STATUSES:
                    retry_after = _parse_retry_after(headers.get("retry-after"))
            elif not headers.get("content-type", "").lower().startswith("text/event-stream"):
                data = await self._read_limited(body)
                timings.end = time.perf_counter_ns()
                _not_a_stream(exchange, headers.get("content-type", ""), data)
            else:
                await self._read_stream(body, exchange)
            reusable = (
                body.complete
                and not body.leftover
                and headers.get("connection", "").lower() != "close"
                and conn.usable()
            )
        finally:
            if reusable:
                self._idle.append(conn)
            else:
                conn.close()
        return exchange, retry_after

    async def _send(
        self, conn: _Conn, message: bytes, fresh: bool
    ) -> tuple[int, dict[str, str], int, list[Segment]]:
        """Write the request and read the response head: (status, headers, arrival time of
        the head's end, the body's segments received with it)."""
        got_any = False
        try:
            buf = bytearray()
            async with asyncio.timeout(self._timeout):
                conn.write(message)
                while True:
                    segments = await conn.read()
                    if not segments:
                        raise _ProtocolError(
                            "Server disconnected without sending a response." + conn.closed_detail()
                        )
                    got_any = True
                    for index, (at, data) in enumerate(segments):
                        buf += data
                        while (end := buf.find(b"\r\n\r\n")) >= 0:
                            status, headers = _parse_head(bytes(buf[:end]))
                            del buf[: end + 4]
                            if 100 <= status < 200:  # interim (103 Early Hints): skip it
                                continue
                            pending = [(at, bytes(buf))] if buf else []
                            return status, headers, at, pending + segments[index + 1 :]
                    if len(buf) > _HEAD_LIMIT:
                        raise _ProtocolError("response head too large")
        except (OSError, _ProtocolError) as exc:
            if not fresh and not got_any:
                raise _Stale from exc
            raise

    async def _read_limited(self, body: _Body) -> bytes:
        parts: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self._timeout):
                while size < _ERROR_BODY_LIMIT:
                    segments = await body.read()
                    if not segments:
                        break
                    for _at, data in segments:
                        parts.append(data)
                        size += len(data)
        except (OSError, _ProtocolError, TimeoutError, zlib.error):
            pass
        return b"".join(parts)[:_ERROR_BODY_LIMIT]

    async def _read_stream(self, body: _Body, exchange: Exchange) -> None:
        """The SSE loop: each piece is de-chunked, split and folded in at its arrival time."""
        timings = exchange.timings
        parser = SSEParser()
        state = _StreamState(exchange)
        timeout = self._timeout
        loop = asyncio.get_running_loop()
        last = 0  # arrival of the last bytes of a stream that ended properly
        try:
            async with asyncio.timeout(None) as deadline:
                reading = True
                while reading:
                    deadline.reschedule(loop.time() + timeout)
                    segments = await body.read()
                    if not segments:
                        last = max(last, body.ended_at)
                        state.take(parser.close(), last)
                        break
                    for at, data in segments:
                        last = at
                        payloads = parser.feed(data)
                        if payloads and not state.take(payloads, at):
                            reading = False
                            last = 0
                            break
        except TimeoutError:
            _fail(exchange, ErrorClass.TIMEOUT, "timed out reading the response: ReadTimeout")
        except (OSError, _ProtocolError, zlib.error) as exc:
            if exchange.error is None:
                _fail(
                    exchange,
                    ErrorClass.MALFORMED_STREAM,
                    f"response broken off: RemoteProtocolError: {exc}",
                )
        finally:
            # Stream closed: when the last bytes arrived (else, on a failure, now).
            timings.end = last if last and exchange.error is None else time.perf_counter_ns()
            state.finish()
        if exchange.error is not None:
            return
        if parser.problems:
            _fail(exchange, ErrorClass.MALFORMED_STREAM, "; ".join(parser.problems))
        elif not state.done:
            _fail(exchange, ErrorClass.MALFORMED_STREAM, "stream ended without data: [DONE]")


def _parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    """Status and headers (names lower-cased, repeats joined with ", ") of a response head."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise _ProtocolError(f"not an HTTP response: {lines[0][:80]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            continue
        key = name.strip().lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    if parts[0] == "HTTP/1.0" and "keep-alive" not in headers.get("connection", "").lower():
        headers["connection"] = "close"
    return int(parts[1]), headers
