"""Async client for OpenAI-compatible endpoints, over one HTTP/1.1 transport of its own.

`ProviderClient.chat` sends one request (a chat completion, streamed or not, or a Responses
API call), retries the failures worth retrying, and returns an `Exchange`: the body sent,
clock readings taken as bytes arrive, the assembled answer, and every raw payload. It never
raises because of what a provider did; every failure is an `Exchange` whose `error` says
which kind it was.

One transport carries every request, whatever the environment: streams, plain JSON answers
and the `GET /models` probe all go through `_Http11`, parity's own keep-alive HTTP/1.1
client, which stamps each block of bytes with `perf_counter_ns` in the event loop's I/O
callback, as it arrives (docs/transport.md has the figures that chose it over aiohttp and
httpx). It asks for `Accept-Encoding: identity` on every request, so no intermediary's gzip
can buffer a stream (a body compressed anyway is still decoded), and never follows redirects.
Proxies come from the environment as curl reads them (`HTTP_PROXY`, `HTTPS_PROXY`,
`ALL_PROXY`, `NO_PROXY`, either case): an `http://` proxy carries `http://` targets in
absolute form and `https://` targets through a `CONNECT` tunnel; a SOCKS or HTTPS proxy
that would apply to a provider is a one-line `ConfigError`. `Exchange.transport` records
which path ran (client, HTTP version, proxy).

Limits (all `asyncio.timeout`s):

- `timeout_s` bounds connecting, the wait for the response head, each wait for bytes of a
  plain body, and a stream's wait for its next *data event*: a stream that brings only SSE
  comments (`: ping`) or keep-alive bytes for `timeout_s` is stalled (TIMEOUT, "stalled").
- `deadline_s` bounds one attempt whole, connect to last byte (`request_deadline`: default
  `timeout_s + max_tokens / DEADLINE_TOKENS_PER_S`); past it the attempt is a TIMEOUT
  ("deadline"), keeping what arrived.

A provider is unavailable (`ProviderClient.availability`) after `UNAVAILABLE_AFTER`
consecutive attempts that failed at the transport (connect error, timeout, stall, deadline,
HTTP 502/503/504) with no other outcome in between; the client then stops retrying, and the
runner sends it nothing more.

Every request carries a request id, so a record can be matched with the provider's server logs:
a fresh UUID4 per attempt (a retry is a new attempt, with a new id) in the header
`Provider.request_id_header` (`X-Request-ID` unless the providers file names another; ""
sends none). The Exchange keeps the id sent (`request_id`, and `attempt_ids` for every
attempt) and the ids the provider gave back: the body's `id` (`response_id`) and the
response headers named in `PROVIDER_ID_HEADERS` (`provider_ids`), no other header. A request
resent on a new connection because the pooled one had been closed before it was answered is
the same attempt, with the same id.

The API key goes into the `Authorization` header only. If a provider echoes it back (in an
error message, or even in generated text), in any form, it is replaced by `***` everywhere in
the Exchange (`core.secrets`); an error detail never quotes what was sent (`_exc_text`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import email.utils
import ipaddress
import logging
import random
import ssl
import time
import urllib.parse
import urllib.request
import uuid
import zlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol

import httpx
import orjson

from parity import __version__
from parity.core.config import Provider
from parity.core.errors import ConfigError
from parity.core.exchange import ErrorClass, Exchange, Timings
from parity.core.secrets import exception_text, redact, redact_exchange, redact_message
from parity.core.sse import SSEParser

__all__ = [
    "DEADLINE_DEFAULT_TOKENS",
    "DEADLINE_TOKENS_PER_S",
    "PROVIDER_ID_HEADERS",
    "TRANSPORT",
    "UNAVAILABLE_AFTER",
    "Availability",
    "ModelsProbe",
    "ProviderClient",
    "request_deadline",
]

log = logging.getLogger(__name__)

_RETRY_STATUSES = frozenset((429, 500, 502, 503, 504))
_RETRY_AFTER_STATUSES = frozenset((429, 503))
_GATEWAY_STATUSES = frozenset((502, 503, 504))
CHAT_ENDPOINT = "chat/completions"
RESPONSES_ENDPOINT = "responses"
MODELS_ENDPOINT = "models"
RAW_BODY = "__raw_body__"
"""A request body `{RAW_BODY: text}` is sent as `text` verbatim (malformed-JSON tests)."""
_RETRY_CLASSES = frozenset((ErrorClass.CONNECT, ErrorClass.TIMEOUT, ErrorClass.RATE_LIMITED))
_ERROR_BODY_LIMIT = 64 * 1024  # bytes of an error body worth reading
_BODY_LIMIT = 256 * 1024 * 1024  # a 2xx body or a whole stream; past it: malformed
_MODELS_LIMIT = 16 * 1024 * 1024  # a model list
_DETAIL_BODY_CHARS = 300

TRANSPORT = "parity-http11"
PRECONNECT_BATCH = 100
"""How many connections `ProviderClient.preconnect` opens at once."""
"""The name `Exchange.transport["client"]` gives the transport (with parity's version)."""
DEADLINE_TOKENS_PER_S = 5.0
"""The slowest output rate the default deadline allows for (a slow but live provider)."""
DEADLINE_DEFAULT_TOKENS = 4096
"""The output length the default deadline assumes for a request that sets no limit."""
UNAVAILABLE_AFTER = 3
"""Consecutive transport failures after which a provider is unavailable."""
PROVIDER_ID_HEADERS = (
    "x-request-id",
    "request-id",
    "openai-request-id",
    "x-openai-request-id",
    "x-client-request-id",
    "x-ms-request-id",
    "apim-request-id",
    "x-amzn-requestid",
    "x-amz-request-id",
    "x-amzn-trace-id",
    "x-cloud-trace-context",
    "cf-ray",
    "x-trace-id",
    "x-correlation-id",
)
"""Response headers that carry a provider's (or a gateway's) id of a request: the only
headers stored (`Exchange.provider_ids`), with the request id header when it is echoed."""
_ID_CHARS = 256  # longest id value kept (from a header or a body)


def request_deadline(provider: Provider, body: Mapping[str, Any]) -> float:
    """Seconds one attempt of `body` may take in all: connect, response head, whole body.

    `provider.deadline_s` when set; else `timeout_s` (for the first token) plus the output
    limit (`max_completion_tokens`, `max_tokens` or `max_output_tokens`; else
    `DEADLINE_DEFAULT_TOKENS`) at `DEADLINE_TOKENS_PER_S`: 120 s + 64 / 5 = 132.8 s for a
    64-token request at the default timeout.
    """
    if provider.deadline_s is not None:
        return provider.deadline_s
    tokens = DEADLINE_DEFAULT_TOKENS
    for name in ("max_completion_tokens", "max_tokens", "max_output_tokens"):
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            tokens = value
            break
    return provider.timeout_s + tokens / DEADLINE_TOKENS_PER_S


class Availability:
    """Whether a provider still answers, from the outcome of every attempt.

    An attempt that failed at the transport (connect error; timeout, stall or deadline;
    HTTP 502, 503 or 504) counts one; any other outcome (a success, but also a 4xx or a
    malformed answer: the provider did answer) resets the count. `after` in a row make the
    provider `unavailable`, until an attempt already in flight comes back otherwise.
    """

    def __init__(self, after: int = UNAVAILABLE_AFTER) -> None:
        if after < 1:
            raise ValueError("after must be >= 1")
        self.after = after
        self.failures = 0
        self.last: str | None = None

    def record(self, exchange: Exchange) -> None:
        """Count one attempt's outcome."""
        if _transport_failure(exchange):
            self.failures += 1
            self.last = f"{exchange.error}: {exchange.error_detail}"
        else:
            self.failures = 0

    @property
    def unavailable(self) -> bool:
        """True after `after` consecutive transport failures."""
        return self.failures >= self.after

    def describe(self) -> str:
        """Why the provider is unavailable, on one line."""
        return f"{self.failures} consecutive transport failures (the last: {self.last})"


def _transport_failure(exchange: Exchange) -> bool:
    error = exchange.error
    if error in (ErrorClass.CONNECT, ErrorClass.TIMEOUT):
        return True
    return error is ErrorClass.HTTP_5XX and exchange.status in _GATEWAY_STATUSES


@dataclass(frozen=True)
class ModelsProbe:
    """Outcome of `GET {base_url}/models`.

    `reachable` is True when the server answered HTTP at all (whatever the status);
    `models` lists the ids it reported (empty unless it answered 200 with a model list).
    `request_id` is the id sent with it and `provider_ids` the ids its response headers
    carried (as in `Exchange`); neither takes part in comparisons.
    """

    reachable: bool
    status: int | None
    models: list[str] = field(default_factory=list)
    detail: str = ""
    request_id: str | None = field(default=None, compare=False)
    provider_ids: dict[str, str] = field(default_factory=dict, compare=False)


class ProviderClient:
    """Client for one provider's OpenAI-compatible API; use it as an async context manager.

    Connections are pooled (at most `provider.max_concurrency`) and reused across calls;
    waiting for a free one is not bounded and not timed. `provider.timeout_s` and
    `request_deadline` bound each attempt (see the module docstring).
    Raises `ConfigError` for settings no request could be sent with: a header value with a
    line break, or a SOCKS or HTTPS proxy in the environment that applies to the provider.
    """

    def __init__(
        self,
        provider: Provider,
        *,
        retries: int = 3,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        unavailable_after: int = UNAVAILABLE_AFTER,
    ) -> None:
        """Prepare a client; no connection is opened until the first request.

        Connect errors, timeouts, 429 and 500/502/503/504 are retried up to `retries` more
        times, waiting `backoff_s * 2**n` (with jitter, at most `max_backoff_s`) or what a
        `Retry-After` header on 429/503 asks for (also capped at `max_backoff_s`), unless
        the provider has become unavailable (`unavailable_after` transport failures in a
        row). `transport` hands every request to an httpx transport instead of the network
        (for tests: `httpx.MockTransport`); answers are read by the same code.
        """
        if retries < 0:
            raise ValueError("retries must be >= 0")
        self.provider = provider
        self.retries = retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.availability = Availability(unavailable_after)
        self._key = provider.api_key()
        headers = {"User-Agent": f"parity/{__version__}"}
        headers.update(provider.headers)
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        for name, value in headers.items():
            problem = _header_problem(name, value)
            if problem:
                raise ConfigError(f"provider {provider.name}: header {name!r} {problem}")
        self._id_header = provider.request_id_header
        if self._id_header and _header_problem(self._id_header, ""):
            raise ConfigError(
                f"provider {provider.name}: request_id_header {self._id_header!r} is not a "
                "valid header name"
            )
        self._http = _Http11(provider, headers, transport)

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
        self._http.aclose()

    async def preconnect(self, count: int) -> int:
        """Open connections until `count` (at most `provider.max_concurrency`) are idle in
        the pool, `PRECONNECT_BATCH` at a time, and return how many are. A load run that puts
        `count` requests in flight at once then does not open them all while it times the
        first ones (at 1,000 streams, opening them held the event loop for ~40 ms, late on
        every first-wave token). Nothing is sent; a connection that fails stops it there and
        is left for the requests to meet and record (0 with an injected `transport`)."""
        return await self._http.preconnect(count)

    @property
    def transport(self) -> dict[str, Any]:
        """The transport and its settings, as `Exchange.transport` records them (`http`:
        None here; each exchange has the version its server answered with)."""
        return self._http.describe(None)

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
        After retries, the Exchange is the last attempt's, with `attempts` counting all and
        `attempt_ids` holding each attempt's request id (a fresh UUID4 each).
        Raises `TypeError` only if `body` is not JSON-serialisable.
        """
        if RAW_BODY in body:
            sent_body: dict[str, Any] = dict(body)
            payload = str(body[RAW_BODY]).encode()
            deadline = request_deadline(self.provider, {})
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
            deadline = request_deadline(self.provider, sent_body)
        attempt = 0
        ids: list[str] = []
        while True:
            attempt += 1
            exchange, retry_after = await self._attempt(
                sent_body, payload, stream, endpoint, deadline
            )
            exchange.attempts = attempt
            if exchange.request_id is not None:
                ids.append(exchange.request_id)
            exchange.attempt_ids = list(ids)
            self.availability.record(exchange)
            if attempt > self.retries or not _retryable(exchange) or self.availability.unavailable:
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
            redact_exchange(exchange, self._key)
        return exchange

    async def list_models(self) -> ModelsProbe:
        """`GET {base_url}/models` once (no retries) and report what the server said.

        Never raises for the server's behaviour: unreachable servers, HTTP errors and bodies
        that are not a model list all come back as a `ModelsProbe` with a `detail`. Bounded
        by `timeout_s` per wait and `deadline_s` (default: twice `timeout_s`) in all.
        """
        provider = self.provider
        deadline = provider.deadline_s or 2 * provider.timeout_s
        request_id = self._new_request_id()
        ids: dict[str, str] = {}
        async with self._http.slot():
            try:
                async with asyncio.timeout(deadline):
                    response = await self._http.open(
                        "GET", MODELS_ENDPOINT, None, "application/json", None, request_id
                    )
                    try:
                        status = response.status
                        ids = self._provider_ids(response.headers)
                        content = await response.read_limited(_MODELS_LIMIT, self._http.timeout)
                    finally:
                        await self._http.release(response)
            except _NoResponse as exc:
                verb = "timed out" if exc.kind is ErrorClass.TIMEOUT else "cannot connect"
                reason = exc.detail.removeprefix("no response: ")
                reason = reason.removeprefix("timed out before a response: ")
                return self._probe(False, None, f"{verb}: {reason}", request_id=request_id)
            except TimeoutError:
                detail = f"timed out: no model list within {deadline:g} s"
                return self._probe(False, None, detail, request_id=request_id, ids=ids)
        if status != 200:
            detail = f"HTTP {status}: {_body_snippet(content)}"
            return self._probe(True, status, detail, request_id=request_id, ids=ids)
        try:
            data = orjson.loads(content)
            items = data["data"]
            models = [item["id"] for item in items if isinstance(item.get("id"), str)]
        except (orjson.JSONDecodeError, TypeError, KeyError, AttributeError):
            detail = f"not an OpenAI model list: {_body_snippet(content)}"
            return self._probe(True, status, detail, request_id=request_id, ids=ids)
        return self._probe(
            True, status, f"{len(models)} model(s)", models, request_id=request_id, ids=ids
        )

    def _probe(
        self,
        reachable: bool,
        status: int | None,
        detail: str,
        models: list[str] | None = None,
        *,
        request_id: str | None = None,
        ids: dict[str, str] | None = None,
    ) -> ModelsProbe:
        if self._key:
            detail = redact_message(detail, self._key)
            models = redact(models, self._key)
            ids = redact(ids, self._key)
        return ModelsProbe(
            reachable=reachable,
            status=status,
            models=models or [],
            detail=detail,
            request_id=request_id,
            provider_ids=ids or {},
        )

    def _new_request_id(self) -> str | None:
        """A fresh request id for one attempt (a UUID4), or None when none is sent."""
        return str(uuid.uuid4()) if self._id_header else None

    def _provider_ids(self, headers: Mapping[str, str]) -> dict[str, str]:
        """The id-carrying headers of a response (`PROVIDER_ID_HEADERS`, and the request id
        header when the server echoes it), nothing else."""
        echoed = self._id_header.lower()
        found: dict[str, str] = {}
        for name, value in headers.items():
            if (name in PROVIDER_ID_HEADERS or name == echoed) and value:
                found[name] = value[:_ID_CHARS]
        return found

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before attempt `attempt + 1`."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_backoff_s)
        base = min(self.backoff_s * 2.0 ** (attempt - 1), self.max_backoff_s)
        return base * (0.5 + random.random() / 2)  # jitter: spread retries of parallel callers

    async def _attempt(
        self, request: dict[str, Any], payload: bytes, stream: bool, endpoint: str, deadline: float
    ) -> tuple[Exchange, float | None]:
        """One HTTP round trip within `deadline` seconds (a pooled connection waited for
        first, untimed); returns the Exchange and the Retry-After delay, if any."""
        async with self._http.slot():
            timings = Timings(sent=time.perf_counter_ns())
            exchange = Exchange(request=request, stream=stream, timings=timings)
            exchange.transport = self._http.describe(None)
            exchange.request_id = self._new_request_id()
            try:
                async with asyncio.timeout(deadline) as limit:
                    return exchange, await self._round_trip(exchange, payload, endpoint)
            except TimeoutError:
                if not limit.expired():
                    raise
                timings.end = time.perf_counter_ns()
                received = f"; {len(exchange.chunks)} data events had arrived" if stream else ""
                _fail(
                    exchange,
                    ErrorClass.TIMEOUT,
                    f"deadline: no complete answer within {deadline:g} s (deadline_s){received}",
                )
                return exchange, None

    async def _round_trip(self, exchange: Exchange, payload: bytes, endpoint: str) -> float | None:
        """Send the request and read its answer into `exchange`; the Retry-After delay."""
        timings = exchange.timings
        accept = "text/event-stream" if exchange.stream else "application/json"
        try:
            response = await self._http.open(
                "POST", endpoint, payload, accept, timings, exchange.request_id
            )
        except _NoResponse as exc:
            timings.end = time.perf_counter_ns()
            _fail(exchange, exc.kind, exc.detail)
            return None
        timings.headers = response.arrived
        exchange.status = status = response.status
        exchange.provider_ids = self._provider_ids(response.headers)
        exchange.transport = self._http.describe(response.version)
        retry_after: float | None = None
        try:
            if not 200 <= status < 300:
                body = await response.read_limited(_ERROR_BODY_LIMIT, self._http.timeout)
                timings.end = time.perf_counter_ns()
                _classify_error(exchange, status, response.headers, body)
                if status in _RETRY_AFTER_STATUSES:
                    retry_after = _parse_retry_after(response.headers.get("retry-after"))
            elif exchange.stream:
                await self._read_stream(response, exchange)
            elif endpoint == RESPONSES_ENDPOINT:
                await self._read_response_object(response, exchange)
            else:
                await self._read_body(response, exchange)
        finally:
            await self._http.release(response)
        return retry_after

    async def _read_json(self, response: _Response, exchange: Exchange) -> Any:
        """Read a whole non-streamed body into `exchange.raw`; its JSON, or None (failed).

        Each wait for bytes is bounded by `timeout_s`; the whole by the deadline."""
        timings = exchange.timings
        parts: list[bytes] = []
        size = 0
        loop = asyncio.get_running_loop()
        timeout = self._http.timeout
        failure: tuple[ErrorClass, str] | None = None
        try:
            async with asyncio.timeout_at(loop.time() + timeout) as wait:
                while True:
                    segments = await response.body.read()
                    if not segments:
                        break
                    wait.reschedule(loop.time() + timeout)
                    for at, part in segments:
                        if timings.first_chunk is None:
                            timings.first_chunk = at
                        parts.append(part)
                        size += len(part)
                    if size > _BODY_LIMIT:
                        failure = (
                            ErrorClass.INVALID_JSON,
                            f"body larger than {_BODY_LIMIT >> 20} MiB",
                        )
                        break
        except TimeoutError:
            failure = (
                ErrorClass.TIMEOUT,
                f"timed out reading the response: no bytes for {timeout:g} s (timeout_s)",
            )
        except (OSError, _ProtocolError, zlib.error) as exc:
            failure = (ErrorClass.INVALID_JSON, f"response broken off: RemoteProtocolError: {exc}")
        timings.end = response.body.ended_at or time.perf_counter_ns()
        body = b"".join(parts)
        exchange.raw = body.decode(errors="replace")
        if failure is not None:
            _fail(exchange, *failure)
            return None
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            _fail(exchange, ErrorClass.INVALID_JSON, f"body is not JSON: {_body_snippet(body)}")
            return None

    async def _read_response_object(self, response: _Response, exchange: Exchange) -> None:
        """Read a Responses API answer into the Exchange's chat-shaped fields."""
        data = await self._read_json(response, exchange)
        if exchange.error is not None:
            return
        exchange.response_id = _body_id(data)
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

    async def _read_body(self, response: _Response, exchange: Exchange) -> None:
        """Read a non-streamed completion and fill the Exchange from `choices[0].message`."""
        data = await self._read_json(response, exchange)
        if exchange.error is not None:
            return
        exchange.response_id = _body_id(data)
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

    async def _read_stream(self, response: _Response, exchange: Exchange) -> None:
        """Read an SSE stream, timing every chunk by its arrival, and assemble the answer.

        Only the first choice of each chunk is read: parity asks for one choice (n=1). The
        stream is stalled (TIMEOUT) when `timeout_s` passes without a new data event:
        comments, blank lines and bytes of an event still unfinished are not progress.
        """
        timings = exchange.timings
        content_type = response.headers.get("content-type", "")
        if not content_type.lower().startswith("text/event-stream"):
            data = await response.read_limited(_ERROR_BODY_LIMIT, self._http.timeout)
            timings.end = time.perf_counter_ns()
            _not_a_stream(exchange, content_type, data)
            return
        body = response.body
        parser = SSEParser()
        state = _StreamState(exchange)
        timeout = self._http.timeout
        loop = asyncio.get_running_loop()
        last = 0  # arrival of the last bytes of a stream that ended properly
        size = 0
        idle = 0  # bytes since the last data event
        try:
            async with asyncio.timeout_at(loop.time() + timeout) as stall:
                reading = True
                while reading:
                    segments = await body.read()
                    if not segments:
                        last = max(last, body.ended_at)
                        state.take(parser.close(), last)
                        break
                    for at, data in segments:
                        last = at
                        size += len(data)
                        if size > _BODY_LIMIT:
                            raise _ProtocolError(f"stream larger than {_BODY_LIMIT >> 20} MiB")
                        payloads = parser.feed(data)
                        if not payloads:
                            idle += len(data)
                            continue
                        idle = 0
                        stall.reschedule(loop.time() + timeout)
                        if not state.take(payloads, at):
                            reading = False
                            last = 0
                            break
        except TimeoutError as exc:
            if stall.expired():
                detail = f"stalled: no data event for {timeout:g} s (timeout_s)"
                if idle:
                    detail += (
                        f"; {idle} bytes since, none of them a data event (comments or "
                        "keep-alive, or an event never finished)"
                    )
            else:  # the socket's own (ETIMEDOUT)
                detail = f"timed out reading the response: {exc}"
            _fail(exchange, ErrorClass.TIMEOUT, detail)
        except (OSError, _ProtocolError, zlib.error) as exc:
            if exchange.error is None:
                _fail(
                    exchange,
                    ErrorClass.MALFORMED_STREAM,
                    f"response broken off: RemoteProtocolError: {exc}",
                )
        finally:
            # Stream closed: when the last bytes arrived (else, on a failure, now). Also when
            # the connection breaks or the deadline cuts it: keep what arrived, for diagnosis.
            timings.end = last if last and exchange.error is None else time.perf_counter_ns()
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
            if exchange.response_id is None:
                exchange.response_id = _body_id(chunk)
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


def _body_id(data: Any) -> str | None:
    """The `id` of a response body or stream chunk (a Responses API stream event's
    `response.id`), when it is a non-empty string; at most `_ID_CHARS` characters."""
    if not isinstance(data, dict):
        return None
    value = data.get("id")
    if not isinstance(value, str):
        inner = data.get("response")
        value = inner.get("id") if isinstance(inner, dict) else None
    return value[:_ID_CHARS] if isinstance(value, str) and value else None


def _retryable(exchange: Exchange) -> bool:
    if exchange.error is None:
        return False
    if exchange.error in _RETRY_CLASSES:
        return True
    return exchange.error is ErrorClass.HTTP_5XX and exchange.status in _RETRY_STATUSES


def _fail(exchange: Exchange, kind: ErrorClass, detail: str) -> None:
    exchange.error = kind
    exchange.error_detail = detail


def _body_snippet(body: bytes) -> str:
    """The start of a body on one line, at most ~300 characters."""
    text = " ".join(body.decode(errors="replace").split())
    if len(text) > _DETAIL_BODY_CHARS:
        return text[:_DETAIL_BODY_CHARS] + "..."
    return text


def _exc_text(exc: BaseException) -> str:
    """An exception for an error detail: never its text as such (httpx's LocalProtocolError
    quotes a header value), only the class and, for network errors, their message; parity's
    own `_ProtocolError` words only describe what the server or proxy did."""
    if isinstance(exc, _ProtocolError):
        return f"{type(exc).__name__}: {exc}"
    return exception_text(exc)


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


def _header_problem(name: str, value: str) -> str | None:
    """Why a header cannot be sent as is (named, never quoted: it may hold the key)."""
    if any(char in name + value for char in "\r\n\0"):
        return "holds a line break or NUL"
    if not name or ":" in name or not name.isascii() or not name.isprintable():
        return "is not a valid header name"
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return "holds a character HTTP/1.1 headers cannot carry (not Latin-1)"
    return None


# ---- the transport: parity's own HTTP/1.1 client --------------------------------------------

_READ_SIZE = 256 * 1024
_HEAD_LIMIT = 64 * 1024
_SOCKS = ("socks", "socks4", "socks4a", "socks5", "socks5h")


class _ProtocolError(Exception):
    """The server broke HTTP/1.1 framing, or closed the connection in the middle of it."""


class _Stale(Exception):
    """A reused keep-alive connection was closed by the server before it answered."""


class _NoResponse(Exception):
    """No response head came back: `kind` (CONNECT or TIMEOUT) and the Exchange's detail."""

    def __init__(self, kind: ErrorClass, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


Segment = tuple[int, bytes]
"""Bytes as they came off the socket, with the `perf_counter_ns` of their arrival."""


class _Source(Protocol):
    """Where a response's bytes come from: a connection, or an injected httpx transport."""

    async def read(self) -> list[Segment]: ...

    def closed_detail(self) -> str: ...


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


class _InjectedSource:
    """The body of a response from an injected httpx transport, stamped as it is read."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._parts: AsyncIterator[bytes] = stream.__aiter__()

    async def read(self) -> list[Segment]:
        try:
            data = await self._parts.__anext__()
        except StopAsyncIteration:
            return []
        return [(time.perf_counter_ns(), bytes(data))]

    def closed_detail(self) -> str:
        return ""

    async def aclose(self) -> None:
        close = getattr(self._stream, "aclose", None)
        if close is not None:
            await close()


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
        self, conn: _Source, headers: Mapping[str, str], pending: list[Segment], status: int
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


@dataclass
class _Response:
    """A response whose head has arrived: status, HTTP version, headers (names lower-cased),
    the head's arrival time, and its body, decoded as it is read."""

    status: int
    version: str
    headers: dict[str, str]
    arrived: int
    body: _Body
    conn: _Conn | None  # None: from an injected transport
    injected: _InjectedSource | None = None

    async def read_limited(self, limit: int, timeout: float) -> bytes:
        """Up to `limit` bytes of the body within `timeout` seconds, or what arrived before
        the connection failed; the rest is left unread (the connection is then dropped)."""
        parts: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(timeout):
                while size < limit:
                    segments = await self.body.read()
                    if not segments:
                        break
                    for _at, data in segments:
                        parts.append(data)
                        size += len(data)
        except (OSError, _ProtocolError, TimeoutError, zlib.error):
            pass
        return b"".join(parts)[:limit]


@dataclass(frozen=True)
class _Proxy:
    """An HTTP proxy from the environment: where it is, its credentials, how to show it."""

    host: str
    port: int
    authorization: str | None
    shown: str  # the URL without credentials


def _proxy_for(name: str, target: urllib.parse.SplitResult) -> _Proxy | None:
    """The proxy the environment names for `target`, as curl reads it: `<scheme>_proxy` or
    `all_proxy` (lower case first), unless `no_proxy` exempts the host; None: direct.

    Raises `ConfigError` (one line, credentials left out) for a proxy parity cannot use.
    """
    proxies = urllib.request.getproxies_environment()
    variable = f"{target.scheme.upper()}_PROXY"
    url = proxies.get(target.scheme)
    if not url:
        variable, url = "ALL_PROXY", proxies.get("all")
    host = target.hostname or ""
    if not url:
        return None
    if _no_proxy(
        proxies.get("no", ""), host, target.port or (443 if target.scheme == "https" else 80)
    ):
        return None
    if "://" not in url:
        url = "http://" + url
    parts = urllib.parse.urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
        parts = parts._replace(netloc="")
    shown = f"{parts.scheme}://{parts.hostname or ''}" + (f":{port}" if port else "")
    fix = f"use an http:// proxy, or exempt the provider with NO_PROXY={host}"
    if parts.scheme.lower() in _SOCKS:
        raise ConfigError(
            f"provider {name}: {variable} is a SOCKS proxy ({shown}), which parity does not "
            f"speak; {fix}"
        )
    if parts.scheme.lower() != "http" or not parts.hostname:
        raise ConfigError(
            f"provider {name}: {variable} ({shown}) is not an http://host:port proxy; {fix}"
        )
    authorization = None
    if parts.username is not None:
        user = urllib.parse.unquote(parts.username)
        password = urllib.parse.unquote(parts.password or "")
        authorization = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    return _Proxy(parts.hostname, port or 80, authorization, shown)


def _no_proxy(entries: str, host: str, port: int) -> bool:
    """Whether NO_PROXY exempts `host:port`, as curl reads it: `*`; a domain (`example.com`,
    `.example.com` or `*.example.com`: it and its subdomains); an address or a CIDR block
    (`10.0.0.0/8`, `::1`); any of them with `:port` to exempt that port only."""
    host = host.strip("[]").lower().rstrip(".")
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for raw in entries.split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        if entry.startswith("[") and "]" in entry:  # [::1] or [::1]:8080
            name, _, rest = entry[1:].partition("]")
            entry_port = rest.removeprefix(":")
        elif entry.count(":") == 1:
            name, _, entry_port = entry.partition(":")
        else:
            name, entry_port = entry, ""
        if entry_port and entry_port != str(port):
            continue
        if address is not None and any(c.isdigit() for c in name) and (":" in name or "." in name):
            with contextlib.suppress(ValueError):
                if address in ipaddress.ip_network(name, strict=False):
                    return True
                continue
        name = name.removeprefix("*").removeprefix(".").rstrip(".")
        if name and (host == name or host.endswith("." + name)):
            return True
    return False


class _Http11:
    """Keep-alive HTTP/1.1 connections to one provider: every request parity sends.

    At most `max_concurrency` requests at once (`slot`); connections are pooled. Bytes are
    stamped as they arrive (`_Conn`), and each block is de-chunked in one pass, so the
    per-event cost of a stream is the SSE split and one `orjson.loads`.
    """

    def __init__(
        self,
        provider: Provider,
        headers: Mapping[str, str],
        injected: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        parts = urllib.parse.urlsplit(provider.base_url)
        self._tls = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port or (443 if self._tls else 80)
        default = (self._tls and self._port == 443) or (not self._tls and self._port == 80)
        host = f"[{self._host}]" if ":" in self._host else self._host
        self._authority = f"{host}:{self._port}"
        self._host_header = host if default else self._authority
        self._origin = f"{parts.scheme}://{self._host_header}"
        self._base_path = parts.path.rstrip("/")
        self._injected = injected
        self.proxy = None if injected is not None else _proxy_for(provider.name, parts)
        ours = {"host", "accept", "accept-encoding", "connection", "content-type", "content-length"}
        self._headers = {k: v for k, v in headers.items() if k.lower() not in ours}
        if self.proxy is not None and self.proxy.authorization and not self._tls:
            self._headers["Proxy-Authorization"] = self.proxy.authorization
        lines = [f"Host: {self._host_header}"] + [f"{k}: {v}" for k, v in self._headers.items()]
        lines += ["Accept-Encoding: identity", "Connection: keep-alive"]
        self._fixed = "\r\n".join(lines)
        self._id_header = provider.request_id_header
        self.timeout = provider.timeout_s
        self._slots = asyncio.Semaphore(provider.max_concurrency)
        self._max_connections = provider.max_concurrency
        self._idle: list[_Conn] = []
        self._ssl: ssl.SSLContext | None = None

    def describe(self, version: str | None) -> dict[str, Any]:
        """What `Exchange.transport` records."""
        client = f"{TRANSPORT} {__version__}"
        if self._injected is not None:
            client = f"injected {type(self._injected).__name__}"
        return {
            "client": client,
            "http": version,
            "proxy": self.proxy.shown if self.proxy is not None else None,
            "accept_encoding": "identity",
        }

    def slot(self) -> asyncio.Semaphore:
        """Held for each request: at most `max_concurrency` in flight."""
        return self._slots

    def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    async def preconnect(self, count: int) -> int:
        """See `ProviderClient.preconnect`."""
        if self._injected is not None:
            return 0
        for conn in self._idle:
            if not conn.usable():
                conn.close()
        self._idle = [conn for conn in self._idle if conn.usable()]
        want = min(count, self._max_connections) - len(self._idle)
        while want > 0:
            batch = min(want, PRECONNECT_BATCH)
            results = await asyncio.gather(
                *(self._connect() for _ in range(batch)), return_exceptions=True
            )
            refused = False
            cancelled: BaseException | None = None
            for result in results:
                if isinstance(result, _Conn):
                    self._idle.append(result)  # what opened stays pooled, whatever follows
                elif isinstance(result, Exception):
                    refused = True
                else:
                    cancelled = result
            if cancelled is not None:
                raise cancelled
            if refused:
                break  # the provider refuses connections: its requests will record why
            want -= batch
        return len(self._idle)

    def _message(
        self, method: str, endpoint: str, payload: bytes | None, accept: str, request_id: str | None
    ) -> bytes:
        path = f"{self._base_path}/{endpoint}"
        target = self._origin + path if self.proxy is not None and not self._tls else path
        head = f"{method} {target} HTTP/1.1\r\n{self._fixed}\r\nAccept: {accept}\r\n"
        if request_id is not None:
            head += f"{self._id_header}: {request_id}\r\n"
        if payload is None:
            return (head + "\r\n").encode("latin-1")
        head += f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        return head.encode("latin-1") + payload

    def _context(self) -> ssl.SSLContext:
        if self._ssl is None:
            # httpx's: certifi's CA bundle, or SSL_CERT_FILE / SSL_CERT_DIR when set.
            self._ssl = httpx.create_ssl_context()
            self._ssl.set_alpn_protocols(["http/1.1"])
        return self._ssl

    async def _connect(self) -> _Conn:
        loop = asyncio.get_running_loop()
        context = self._context() if self._tls else None
        async with asyncio.timeout(self.timeout):
            if self.proxy is None:
                _transport, conn = await loop.create_connection(
                    _Conn,
                    self._host,
                    self._port,
                    ssl=context,
                    server_hostname=self._host if context else None,
                )
                return conn
            _transport, conn = await loop.create_connection(_Conn, self.proxy.host, self.proxy.port)
            if context is None:
                return conn
            try:
                await self._tunnel(conn)
                assert conn.transport is not None
                tls = await loop.start_tls(
                    conn.transport, conn, context, server_hostname=self._host
                )
            except BaseException:
                conn.close()
                raise
            if tls is None:
                conn.close()
                raise _ProtocolError("TLS through the proxy's tunnel failed")
            conn.transport = tls
            return conn

    async def _tunnel(self, conn: _Conn) -> None:
        """`CONNECT host:port` through the proxy; raises `_ProtocolError` unless it agrees."""
        assert self.proxy is not None
        lines = [f"CONNECT {self._authority} HTTP/1.1", f"Host: {self._authority}"]
        if self.proxy.authorization:
            lines.append(f"Proxy-Authorization: {self.proxy.authorization}")
        conn.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        buf = bytearray()
        while (end := buf.find(b"\r\n\r\n")) < 0:
            segments = await conn.read()
            if not segments:
                raise _ProtocolError("the proxy closed the connection instead of a tunnel")
            for _at, data in segments:
                buf += data
            if len(buf) > _HEAD_LIMIT:
                raise _ProtocolError("the proxy's answer to CONNECT is too large")
        status, _version, _headers = _parse_head(bytes(buf[:end]))
        if not 200 <= status < 300:
            raise _ProtocolError(
                f"the proxy {self.proxy.shown} refused the tunnel to {self._authority}: "
                f"HTTP {status}"
            )

    async def open(
        self,
        method: str,
        endpoint: str,
        payload: bytes | None,
        accept: str,
        timings: Timings | None,
        request_id: str | None = None,
    ) -> _Response:
        """Send a request and read its response head (a pooled connection is reused when
        one is idle); `timings.sent` is stamped as the request is written. `request_id`,
        when given, goes in the provider's request id header (the same on a resend over a
        new connection: it is the same attempt).

        Raises `_NoResponse` when no head comes back: CONNECT (refused, TLS, broken) or
        TIMEOUT (no connection or no head within `timeout_s`).
        """
        if self._injected is not None:
            return await self._open_injected(method, endpoint, payload, accept, timings, request_id)
        message = self._message(method, endpoint, payload, accept, request_id)
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
                    raise _NoResponse(
                        ErrorClass.TIMEOUT,
                        f"timed out before a response: ConnectTimeout: no connection within "
                        f"{self.timeout:g} s (timeout_s)",
                    ) from None
                except (OSError, ssl.SSLError, _ProtocolError, ValueError) as exc:
                    raise _NoResponse(
                        ErrorClass.CONNECT, f"no response: ConnectError: {_exc_text(exc)}"
                    ) from None
            if timings is not None:
                timings.sent = time.perf_counter_ns()
            try:
                status, version, headers, arrived, pending = await self._send(conn, message, fresh)
                break
            except _Stale:
                conn.close()
                conn = None  # the server closed an idle connection: open a new one
            except TimeoutError:
                conn.close()
                raise _NoResponse(
                    ErrorClass.TIMEOUT,
                    f"timed out before a response: ReadTimeout: no response head within "
                    f"{self.timeout:g} s (timeout_s)",
                ) from None
            except (OSError, _ProtocolError, ValueError) as exc:
                conn.close()
                raise _NoResponse(
                    ErrorClass.CONNECT, f"no response: RemoteProtocolError: {exc}"
                ) from None
            except BaseException:  # cancelled (the deadline): the connection is mid-request
                conn.close()
                raise
        body = _Body(conn, headers, pending, status)
        return _Response(status, version, headers, arrived, body, conn)

    async def _open_injected(
        self,
        method: str,
        endpoint: str,
        payload: bytes | None,
        accept: str,
        timings: Timings | None,
        request_id: str | None,
    ) -> _Response:
        assert self._injected is not None
        headers = {**self._headers, "Accept": accept, "Accept-Encoding": "identity"}
        if request_id is not None:
            headers[self._id_header] = request_id
        if payload is not None:
            headers["Content-Type"] = "application/json"
        request = httpx.Request(
            method, f"{self._origin}{self._base_path}/{endpoint}", headers=headers, content=payload
        )
        if timings is not None:
            timings.sent = time.perf_counter_ns()
        try:
            response = await self._injected.handle_async_request(request)
        except httpx.TimeoutException as exc:
            raise _NoResponse(
                ErrorClass.TIMEOUT, f"timed out before a response: {_exc_text(exc)}"
            ) from None
        except httpx.HTTPError as exc:
            raise _NoResponse(ErrorClass.CONNECT, f"no response: {_exc_text(exc)}") from None
        arrived = time.perf_counter_ns()
        lowered: dict[str, str] = {}
        for key, value in response.headers.multi_items():
            name = key.lower()
            lowered[name] = f"{lowered[name]}, {value}" if name in lowered else value
        # The transport hands over the body de-framed: read it to its end.
        framing = {
            k: v for k, v in lowered.items() if k not in ("transfer-encoding", "content-length")
        }
        source = _InjectedSource(response.stream)
        body = _Body(source, framing, [], response.status_code)
        version = str(response.extensions.get("http_version", b"HTTP/1.1").decode())
        return _Response(response.status_code, version, lowered, arrived, body, None, source)

    async def release(self, response: _Response) -> None:
        """Done with `response`: its connection goes back to the pool if it can be reused."""
        if response.injected is not None:
            await response.injected.aclose()
            return
        conn = response.conn
        assert conn is not None
        body = response.body
        if (
            body.complete
            and not body.leftover
            and response.headers.get("connection", "").lower() != "close"
            and conn.usable()
        ):
            self._idle.append(conn)
        else:
            conn.close()

    async def _send(
        self, conn: _Conn, message: bytes, fresh: bool
    ) -> tuple[int, str, dict[str, str], int, list[Segment]]:
        """Write the request and read the response head: (status, HTTP version, headers,
        arrival time of the head's end, the body's segments received with it)."""
        got_any = False
        try:
            buf = bytearray()
            async with asyncio.timeout(self.timeout):
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
                            status, version, headers = _parse_head(bytes(buf[:end]))
                            del buf[: end + 4]
                            if 100 <= status < 200:  # interim (103 Early Hints): skip it
                                continue
                            pending = [(at, bytes(buf))] if buf else []
                            return status, version, headers, at, pending + segments[index + 1 :]
                    if len(buf) > _HEAD_LIMIT:
                        raise _ProtocolError("response head too large")
        except (OSError, _ProtocolError) as exc:
            if not fresh and not got_any and not isinstance(exc, TimeoutError):
                raise _Stale from exc
            raise


def _parse_head(head: bytes) -> tuple[int, str, dict[str, str]]:
    """Status, HTTP version and headers (names lower-cased, repeats joined with ", ") of a
    response head; raises `_ProtocolError` for anything that is not one."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if (
        len(parts) < 2
        or not parts[0].startswith("HTTP/")
        or len(parts[1]) != 3
        or not parts[1].isdigit()
        or not parts[1].isascii()
    ):
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
    return int(parts[1]), parts[0], headers
