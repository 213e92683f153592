"""Per-request speed metrics and their aggregates: the arithmetic of `parity bench`.

Definitions (README, "Metric definitions"; all from `perf_counter_ns` readings taken as bytes
arrive):

- TTFT: request sent -> first chunk carrying generated text, reasoning or answer.
- TTFAT: request sent -> first chunk of answer content, after any reasoning.
- Output speed: (output tokens - 1) / (last token chunk - first token chunk), output tokens
  from `usage`, else the number of token-bearing chunks (`output_tokens_from: chunks`).
- TPOT (time per output token after the first): (E2E - TTFT) / (output tokens - 1).
- E2E: request sent -> stream closed. ITL: gaps between token-bearing chunks.
- Percentiles over requests (linear interpolation); ITL percentiles over all gaps.

Reasoning tokens are counted apart from answer tokens: from `usage.completion_tokens_details
.reasoning_tokens` when the provider reports it, else by counting the token-bearing chunks
that carried reasoning (and with the local tokenizer, when there is one).
"""

from __future__ import annotations

import operator
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import orjson

from parity.core.exchange import Exchange
from parity.stats.estimates import summarize

__all__ = [
    "SLO",
    "RequestMetrics",
    "aggregate",
    "chunk_kinds",
    "parse_slo",
    "request_metrics",
]


@dataclass
class RequestMetrics:
    """Everything measured about one request (times in ms, since the run's start in s), and
    the ids that match it with the provider's logs (`Exchange.request_id` and the rest)."""

    index: int
    key: str
    ok: bool
    error: str | None = None
    error_detail: str | None = None
    status: int | None = None
    ttft_ms: float | None = None
    ttfat_ms: float | None = None
    e2e_ms: float | None = None
    tpot_ms: float | None = None
    output_tokens_per_s: float | None = None
    itl_ms: list[float] = field(default_factory=list)
    output_tokens: int | None = None
    output_tokens_from: str = "none"
    reasoning_tokens: int | None = None
    reasoning_tokens_from: str = "none"
    answer_tokens: int | None = None
    prompt_tokens: int | None = None
    local_prompt_tokens: int | None = None
    local_output_tokens: int | None = None
    local_reasoning_tokens: int | None = None
    token_chunks: int = 0
    reasoning_chunks: int = 0
    answer_chunks: int = 0
    finish_reason: str | None = None
    scheduled_s: float | None = None
    started_s: float | None = None
    finished_s: float | None = None
    in_flight: int | None = None
    request_id: str | None = None
    attempt_ids: list[str] = field(default_factory=list)
    response_id: str | None = None
    provider_ids: dict[str, str] = field(default_factory=dict)

    @property
    def input_tokens(self) -> int | None:
        """Prompt tokens: the provider's `usage`, else the local count."""
        return self.prompt_tokens if self.prompt_tokens is not None else self.local_prompt_tokens

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: every field, its lists and dicts copied (what `asdict` gives, without
        its per-element deep copy: ten times faster, which tells at 1,000 streams)."""
        out: dict[str, Any] = {}
        for name in _METRIC_FIELDS:
            value = getattr(self, name)
            if isinstance(value, list):
                value = list(value)
            elif isinstance(value, dict):
                value = dict(value)
            out[name] = value
        return out


_METRIC_FIELDS = tuple(f.name for f in fields(RequestMetrics))


def chunk_kinds(exchange: Exchange) -> tuple[int, int]:
    """(reasoning chunks, answer chunks) among a stream's token-bearing chunks.

    A chunk carrying reasoning (`reasoning` or `reasoning_content`) counts as reasoning,
    one carrying only answer content or tool-call text as answer.
    """
    reasoning = answer = 0
    for payload in exchange.chunks:
        try:
            chunk = orjson.loads(payload)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(chunk, dict):
            continue
        choices = chunk.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            continue
        delta = choices[0].get("delta")
        if not isinstance(delta, dict):
            continue
        if any(
            isinstance(delta.get(k), str) and delta[k] for k in ("reasoning", "reasoning_content")
        ):
            reasoning += 1
        elif (isinstance(delta.get("content"), str) and delta["content"]) or delta.get(
            "tool_calls"
        ):
            answer += 1
    return reasoning, answer


def _usage_reasoning(exchange: Exchange) -> int | None:
    details = (exchange.usage or {}).get("completion_tokens_details")
    if isinstance(details, dict):
        value = details.get("reasoning_tokens")
        if isinstance(value, int):
            return value
    return None


def request_metrics(
    exchange: Exchange,
    index: int = 0,
    key: str = "",
    *,
    count_text: Callable[[str], int] | None = None,
    count_prompt: Callable[[list[dict[str, Any]]], int | None] | None = None,
) -> RequestMetrics:
    """The metrics of one exchange; `count_text`/`count_prompt` give local token counts
    (of generated text, and of the request's messages with the chat template)."""
    m = RequestMetrics(
        index=index,
        key=key,
        ok=exchange.ok,
        error=exchange.error.value if exchange.error else None,
        error_detail=exchange.error_detail,
        status=exchange.status,
        finish_reason=exchange.finish_reason,
        prompt_tokens=exchange.prompt_tokens(),
        request_id=exchange.request_id,
        attempt_ids=list(exchange.attempt_ids),
        response_id=exchange.response_id,
        provider_ids=dict(exchange.provider_ids),
    )
    m.e2e_ms = exchange.e2e_ms()
    if count_prompt is not None:
        messages = exchange.request.get("messages")
        if isinstance(messages, list):
            m.local_prompt_tokens = count_prompt(messages)
    if not exchange.ok:
        return m
    m.ttft_ms = exchange.ttft_ms()
    m.ttfat_ms = exchange.ttfat_ms()
    m.output_tokens_per_s = exchange.output_tokens_per_s()
    m.itl_ms = exchange.itl_ms()
    m.output_tokens, m.output_tokens_from = exchange.output_tokens()
    m.token_chunks = len(exchange.timings.token_chunks)
    m.reasoning_chunks, m.answer_chunks = chunk_kinds(exchange) if exchange.stream else (0, 0)
    usage_reasoning = _usage_reasoning(exchange)
    if usage_reasoning is not None:
        m.reasoning_tokens, m.reasoning_tokens_from = usage_reasoning, "usage"
    elif exchange.stream:
        m.reasoning_tokens, m.reasoning_tokens_from = m.reasoning_chunks, "chunks"
    if count_text is not None:
        m.local_reasoning_tokens = count_text(exchange.reasoning) if exchange.reasoning else 0
        m.local_output_tokens = m.local_reasoning_tokens + (
            count_text(exchange.text) if exchange.text else 0
        )
    if m.output_tokens is not None and m.reasoning_tokens is not None:
        m.answer_tokens = m.output_tokens - m.reasoning_tokens
    if (
        m.output_tokens is not None
        and m.output_tokens >= 2
        and m.e2e_ms is not None
        and m.ttft_ms is not None
    ):
        m.tpot_ms = (m.e2e_ms - m.ttft_ms) / (m.output_tokens - 1)
    return m


# --------------------------------------------------------------------------------------------
# SLOs and goodput
# --------------------------------------------------------------------------------------------

_SLO_METRICS = {
    "ttft": ("ttft_ms", "ms"),
    "ttfat": ("ttfat_ms", "ms"),
    "e2e": ("e2e_ms", "ms"),
    "tpot": ("tpot_ms", "ms"),
    "itl": ("itl_max_ms", "ms"),
    "speed": ("output_tokens_per_s", "tok/s"),
}
_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    "<": operator.lt,
    ">=": operator.ge,
    ">": operator.gt,
}
_SLO_RE = re.compile(r"^\s*([a-z0-9_]+)\s*(<=|>=|<|>)\s*([0-9.]+)\s*(ms|s|tok/s)?\s*$")


@dataclass(frozen=True)
class SLO:
    """One service-level objective on a per-request metric, e.g. `ttft<=1s`."""

    text: str
    metric: str  # ttft, ttfat, e2e, tpot, itl (the request's largest gap), speed
    op: str
    threshold: float  # ms for times, tok/s for speed

    def met(self, m: RequestMetrics) -> bool:
        """Whether request `m` meets it (a failed request or a missing value does not)."""
        if not m.ok:
            return False
        if self.metric == "itl":
            value: float | None = max(m.itl_ms) if m.itl_ms else None
        else:
            value = getattr(m, _SLO_METRICS[self.metric][0])
        return value is not None and _OPS[self.op](value, self.threshold)


def parse_slo(text: str) -> SLO:
    """`ttft<=1s`, `ttfat<2000ms`, `e2e<=30s`, `tpot<=50ms`, `itl<=200ms`, `speed>=20`;
    times default to ms; ValueError names the accepted forms."""
    match = _SLO_RE.match(text.lower())
    if not match or match.group(1) not in _SLO_METRICS:
        names = ", ".join(_SLO_METRICS)
        raise ValueError(f"bad SLO {text!r}: use METRIC OP VALUE, METRIC one of {names}")
    metric, op, raw, unit = match.groups()
    value = float(raw)
    kind = _SLO_METRICS[metric][1]
    if kind == "ms":
        if unit == "tok/s":
            raise ValueError(f"bad SLO {text!r}: {metric} is a time (s or ms)")
        value = value * 1000 if unit == "s" else value
    elif unit in ("s", "ms"):
        raise ValueError(f"bad SLO {text!r}: speed is in tok/s")
    return SLO(text.strip(), metric, op, value)


# --------------------------------------------------------------------------------------------
# Aggregates
# --------------------------------------------------------------------------------------------


def _summary(values: Iterable[float | None]) -> dict[str, Any]:
    return asdict(summarize([v for v in values if v is not None]))


def _sum(values: Iterable[int | None]) -> int | None:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def _mismatch(server: int | None, local: int | None) -> float | None:
    """(server - local) / local: +0.05 means the server counted 5% more tokens."""
    if server is None or local is None or local == 0:
        return None
    return (server - local) / local


def aggregate(
    metrics: Sequence[RequestMetrics],
    *,
    span_s: float | None = None,
    slos: Sequence[SLO] = (),
) -> dict[str, Any]:
    """Aggregates of one provider x workload x load level: count, mean, p50, p90, p99, min,
    max of every metric; throughput over `span_s` (first start -> last finish; computed from
    the requests' own times when not given); error rate by class; goodput against `slos`.
    """
    total = len(metrics)
    ok = [m for m in metrics if m.ok]
    errors = Counter(m.error or "unknown" for m in metrics if not m.ok)
    if span_s is None:
        starts = [m.started_s for m in metrics if m.started_s is not None]
        ends = [m.finished_s for m in metrics if m.finished_s is not None]
        span_s = max(ends) - min(starts) if starts and ends else None
    out_tokens = _sum(m.output_tokens for m in ok)
    in_tokens = _sum(m.input_tokens for m in ok)
    sources = sorted({m.output_tokens_from for m in ok})
    per_s = span_s if span_s else None

    def rate(value: float | None) -> float | None:
        return value / per_s if value is not None and per_s else None

    good = [m for m in metrics if all(slo.met(m) for slo in slos)] if slos else ok
    server_out = _sum(m.output_tokens for m in ok if m.local_output_tokens is not None)
    local_out = _sum(m.local_output_tokens for m in ok)
    server_in = _sum(m.prompt_tokens for m in ok if m.local_prompt_tokens is not None)
    local_in = _sum(m.local_prompt_tokens for m in ok if m.prompt_tokens is not None)
    return {
        "requests": total,
        "ok": len(ok),
        "errors": dict(sorted(errors.items())),
        "error_rate": {k: v / total for k, v in sorted(errors.items())} if total else {},
        "error_rate_total": (total - len(ok)) / total if total else None,
        "error_details": sorted({m.error_detail or "" for m in metrics if not m.ok})[:3],
        "ttft_ms": _summary(m.ttft_ms for m in ok),
        "ttfat_ms": _summary(m.ttfat_ms for m in ok),
        "output_tokens_per_s": _summary(m.output_tokens_per_s for m in ok),
        "tpot_ms": _summary(m.tpot_ms for m in ok),
        "itl_ms": _summary(gap for m in ok for gap in m.itl_ms),
        "e2e_ms": _summary(m.e2e_ms for m in ok),
        "output_tokens_from": sources,
        "input_tokens": _summary(m.input_tokens for m in ok),
        "output_tokens": _summary(m.output_tokens for m in ok),
        "reasoning_tokens": _summary(m.reasoning_tokens for m in ok),
        "answer_tokens": _summary(m.answer_tokens for m in ok),
        "reasoning_tokens_total": _sum(m.reasoning_tokens for m in ok),
        "answer_tokens_total": _sum(m.answer_tokens for m in ok),
        "tokens": {
            "server_output": server_out,
            "local_output": local_out,
            "output_mismatch": _mismatch(server_out, local_out),
            "server_input": server_in,
            "local_input": local_in,
            "input_mismatch": _mismatch(server_in, local_in),
        },
        "span_s": span_s,
        "throughput": {
            "requests_per_s": rate(len(ok)) if ok else (0.0 if per_s else None),
            "output_tokens_per_s": rate(out_tokens),
            "input_tokens_per_s": rate(in_tokens),
        },
        "goodput": {
            "slos": [s.text for s in slos],
            "good": len(good),
            "fraction": len(good) / total if total else None,
            "requests_per_s": rate(len(good)),
        },
    }
