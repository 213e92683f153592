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
import email.utils
import logging
import random
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import httpx
import orjson

from parity import __version__
from parity.config import Provider
from parity.exchange import ErrorClass, Exchange, Timings
from parity.sse import SSEParser

__all__ = ["ModelsProbe", "ProviderClient"]

log = logging.getLogger(__name__)

_RETRY_STATUSES = frozenset((429, 500, 502, 503, 504))
_RETRY_AFTER_STATUSES = frozenset((429, 503))
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
        self._chat_url = f"{provider.base_url}/chat/completions"
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

    async def chat(self, body: dict[str, Any], *, stream: bool) -> Exchange:
        """Send one chat completion request and return its Exchange; never raises for the
        provider's behaviour.

        The body sent is `{**provider.extra_body, **body, "model": provider.model,
        "stream": stream}`, plus `stream_options: {"include_usage": true}` when streaming
        unless `body` sets `stream_options`; `Exchange.request` is exactly that body.
        After retries, the Exchange is the last attempt's, with `attempts` counting all.
        Raises `TypeError` only if `body` is not JSON-serialisable.
        """
        request: dict[str, Any] = {
            **self.provider.extra_body,
            **body,
            "model": self.provider.model,
            "stream": stream,
        }
        if stream and "stream_options" not in body:
            request["stream_options"] = {"include_usage": True}
        payload = orjson.dumps(request)
        # A copy decoded from the bytes sent: exactly what went out, immune to later mutation.
        sent_body: dict[str, Any] = orjson.loads(payload)
        attempt = 0
        while True:
            attempt += 1
            exchange, retry_after = await self._attempt(sent_body, payload, stream)
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
        self, request: dict[str, Any], payload: bytes, stream: bool
    ) -> tuple[Exchange, float | None]:
        """One HTTP round trip; returns the Exchange and the Retry-After delay, if any."""
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
            self._chat_url,
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
        exchange.raw = body.decode(errors="replace")
        status = response.status_code
        if status == 429:
            kind = ErrorClass.RATE_LIMITED
        elif status >= 500:
            kind = ErrorClass.HTTP_5XX
        else:  # 4xx, and redirects, which a provider API should not answer
            kind = ErrorClass.HTTP_4XX
        detail = f"HTTP {status}"
        if 300 <= status < 400 and "location" in response.headers:
            detail += f" redirect to {response.headers['location']}"
        snippet = _body_snippet(body)
        _fail(exchange, kind, f"{detail}: {snippet}" if snippet else detail)

    async def _read_body(self, response: httpx.Response, exchange: Exchange) -> None:
        """Read a non-streamed completion and fill the Exchange from `choices[0].message`."""
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
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            _fail(exchange, ErrorClass.INVALID_JSON, f"body is not JSON: {_body_snippet(body)}")
            return
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
            exchange.raw = body.decode(errors="replace")
            _fail(
                exchange,
                ErrorClass.MALFORMED_STREAM,
                f"asked for a stream but got content-type {content_type or 'none'!r}: "
                f"{_body_snippet(body)}",
            )
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
