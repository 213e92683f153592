"""One request/response pair with a provider, as parity records it.

An `Exchange` is what the client returns and what the store keeps: enough to recompute
every metric later without asking the provider again. Nothing in it may hold a secret.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class ErrorClass(StrEnum):
    """Why an exchange did not produce a usable response.

    TIMEOUT covers every limit the client puts on a request, its detail saying which: no
    connection or no response head within `timeout_s`, a stream "stalled" (no data event
    for `timeout_s`: comments and keep-alive bytes are not progress), or the request's whole
    "deadline" (`deadline_s`) passed.
    """

    TIMEOUT = "timeout"
    CONNECT = "connect"
    RATE_LIMITED = "rate_limited"
    HTTP_4XX = "http_4xx"
    HTTP_5XX = "http_5xx"
    MALFORMED_STREAM = "malformed_stream"
    INVALID_JSON = "invalid_json"


@dataclass
class Timings:
    """Clock readings in nanoseconds from `time.perf_counter_ns`, all on one clock.

    `sent` is taken just before the request is written; the others as bytes arrive.
    `token_chunks` holds the arrival time of every chunk that carried generated text
    (reasoning or answer). Absent readings are None.
    """

    sent: int
    headers: int | None = None
    first_chunk: int | None = None
    first_token_chunk: int | None = None
    first_answer_chunk: int | None = None
    token_chunks: list[int] = field(default_factory=list)
    end: int | None = None


@dataclass
class Exchange:
    """The record of one request to one provider (after retries: the last attempt's outcome).

    `text` is the assembled answer content, `reasoning` the assembled reasoning text from
    `reasoning` or `reasoning_content` fields, `reasoning_field` which of the two was used.
    `raw` is the raw response body (non-streamed) and `chunks` the raw SSE data payloads
    (streamed), kept verbatim so fields a provider adds are never lost.
    """

    request: dict[str, Any]
    stream: bool
    timings: Timings
    status: int | None = None
    error: ErrorClass | None = None
    error_detail: str | None = None
    raw: str | None = None
    chunks: list[str] = field(default_factory=list)
    text: str = ""
    reasoning: str = ""
    reasoning_field: str | None = None
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    attempts: int = 1
    transport: dict[str, Any] | None = None
    """Which path carried the request: `client` (name and version), `http` (the version the
    server answered with; None without an answer), `proxy` (its URL without credentials, or
    None: direct) and `accept_encoding` (what was asked for). None in records from before it."""
    request_id: str | None = None
    """The request id parity sent (`Provider.request_id_header`) with the attempt this record
    is: a fresh UUID4 per attempt. None when no header was sent, and in older records."""
    attempt_ids: list[str] = field(default_factory=list)
    """Every attempt's request id, in order (the last is `request_id`): more than one when
    the request was retried."""
    response_id: str | None = None
    """The `id` of the answer's body (`chatcmpl-...`; a stream's first chunk carrying one; a
    Responses API object's `resp_...`), if it had one."""
    provider_ids: dict[str, str] = field(default_factory=dict)
    """The ids the provider's response headers carried, lower-cased name -> value: only the
    headers in `client.PROVIDER_ID_HEADERS` (and the request id header, when echoed), never
    any other header."""

    @property
    def ok(self) -> bool:
        """True when the provider answered with a usable completion."""
        return self.error is None

    def log_ids(self) -> dict[str, Any]:
        """The ids that match this exchange with the provider's server logs, those it has:
        `request_id` (sent with its last attempt), `attempt_ids` (every attempt's, when it
        was retried), `response_id` (the body's `id`) and `provider_ids` (the id headers it
        was answered with). Empty for a record from before they were kept."""
        ids: dict[str, Any] = {}
        if self.request_id is not None:
            ids["request_id"] = self.request_id
        if len(self.attempt_ids) > 1:
            ids["attempt_ids"] = list(self.attempt_ids)
        if self.response_id is not None:
            ids["response_id"] = self.response_id
        if self.provider_ids:
            ids["provider_ids"] = dict(self.provider_ids)
        return ids

    def ttft_ms(self) -> float | None:
        """Request sent -> first chunk carrying generated text (reasoning or answer)."""
        return _ms(self.timings.sent, self.timings.first_token_chunk)

    def ttfat_ms(self) -> float | None:
        """Request sent -> first chunk carrying answer content (after any reasoning)."""
        return _ms(self.timings.sent, self.timings.first_answer_chunk)

    def e2e_ms(self) -> float | None:
        """Request sent -> response fully received (stream closed)."""
        return _ms(self.timings.sent, self.timings.end)

    def completion_tokens(self) -> int | None:
        """Output tokens as the provider reported them in `usage`, if it did."""
        if not self.usage:
            return None
        value = self.usage.get("completion_tokens")
        return value if isinstance(value, int) else None

    def prompt_tokens(self) -> int | None:
        """Input tokens as the provider reported them in `usage`, if it did."""
        if not self.usage:
            return None
        value = self.usage.get("prompt_tokens")
        return value if isinstance(value, int) else None

    def output_tokens(self) -> tuple[int | None, str]:
        """Output tokens and where the count came from: "usage", or "chunks" when a stream
        carried no usage (one token per chunk, as llama.cpp and most engines stream)."""
        tokens = self.completion_tokens()
        if tokens is not None:
            return tokens, "usage"
        if self.stream and self.timings.token_chunks:
            return len(self.timings.token_chunks), "chunks"
        return None, "none"

    def output_tokens_per_s(self) -> float | None:
        """(output tokens - 1) / (last token chunk - first token chunk); see `output_tokens`."""
        tokens, _ = self.output_tokens()
        chunks = self.timings.token_chunks
        if tokens is None or tokens < 2 or len(chunks) < 2:
            return None
        span_ns = chunks[-1] - chunks[0]
        if span_ns <= 0:
            return None
        return (tokens - 1) / (span_ns / 1e9)

    def itl_ms(self) -> list[float]:
        """Gaps between consecutive token-bearing chunks, in milliseconds."""
        chunks = self.timings.token_chunks
        return [(b - a) / 1e6 for a, b in itertools.pairwise(chunks)]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        data = asdict(self)
        data["error"] = self.error.value if self.error else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Exchange:
        """Inverse of `to_dict`."""
        data = dict(data)
        data["timings"] = Timings(**data["timings"])
        data["error"] = ErrorClass(data["error"]) if data.get("error") else None
        return cls(**data)


def _ms(start: int | None, stop: int | None) -> float | None:
    if start is None or stop is None:
        return None
    return (stop - start) / 1e6
