"""Metric arithmetic on exact scripted timings: the README definitions, goodput, aggregates."""

from __future__ import annotations

import json

import numpy as np
import pytest

from parity.core.exchange import ErrorClass, Exchange, Timings
from parity.speed.metrics import aggregate, chunk_kinds, parse_slo, request_metrics

MS = 1_000_000


def _chunk(delta: dict[str, object]) -> str:
    return json.dumps({"choices": [{"index": 0, "delta": delta}]})


def streamed(
    first_ms: int,
    gaps_ms: list[int],
    *,
    reasoning: int = 0,
    usage: dict[str, object] | None = None,
    tail_ms: int = 5,
    answer_ms: int | None = None,
) -> Exchange:
    """A stream: first token chunk at `first_ms`, then one per gap; the first `reasoning`
    token chunks carry reasoning, the rest answer content; closed `tail_ms` after the last."""
    times = [first_ms * MS]
    for gap in gaps_ms:
        times.append(times[-1] + gap * MS)
    chunks = [_chunk({"role": "assistant", "content": ""})]
    chunks += [
        _chunk({"reasoning_content": "r"}) if i < reasoning else _chunk({"content": "a"})
        for i in range(len(times))
    ]
    first_answer = times[reasoning] if reasoning < len(times) else None
    return Exchange(
        request={"messages": [{"role": "user", "content": "hi"}]},
        stream=True,
        timings=Timings(
            sent=0,
            headers=MS,
            first_chunk=MS,
            first_token_chunk=times[0],
            first_answer_chunk=answer_ms * MS if answer_ms is not None else first_answer,
            token_chunks=times,
            end=times[-1] + tail_ms * MS,
        ),
        status=200,
        chunks=chunks,
        text="a" * (len(times) - reasoning),
        reasoning="r" * reasoning,
        usage=usage,
    )


def failed(kind: ErrorClass = ErrorClass.HTTP_4XX) -> Exchange:
    return Exchange(
        request={"messages": []},
        stream=True,
        timings=Timings(sent=0, end=3 * MS),
        status=400,
        error=kind,
        error_detail="HTTP 400: too long",
    )


def test_readme_definitions_on_exact_timings() -> None:
    # 11 token chunks: the first at 100 ms, then every 10 ms; stream closed 5 ms later.
    m = request_metrics(streamed(100, [10] * 10))
    assert m.ttft_ms == 100 and m.ttfat_ms == 100
    assert m.output_tokens == 11 and m.output_tokens_from == "chunks"
    assert m.output_tokens_per_s == pytest.approx(10 / 0.1)  # (11 - 1) / 100 ms
    assert m.e2e_ms == 205
    assert m.tpot_ms == pytest.approx((205 - 100) / 10)  # (E2E - TTFT) / (tokens - 1)
    assert m.itl_ms == [10.0] * 10


def test_usage_counts_win_over_chunks() -> None:
    usage = {"prompt_tokens": 7, "completion_tokens": 21, "total_tokens": 28}
    m = request_metrics(streamed(100, [10] * 10, usage=usage))
    assert m.output_tokens == 21 and m.output_tokens_from == "usage"
    assert m.prompt_tokens == 7 and m.input_tokens == 7
    assert m.output_tokens_per_s == pytest.approx(20 / 0.1)
    assert m.tpot_ms == pytest.approx(105 / 20)


def test_reasoning_counted_apart_and_ttfat_after_reasoning() -> None:
    ex = streamed(50, [10] * 5, reasoning=4)
    assert chunk_kinds(ex) == (4, 2)
    m = request_metrics(ex)
    assert m.ttft_ms == 50 and m.ttfat_ms == 90  # the fifth token chunk is the first answer
    assert m.reasoning_tokens == 4 and m.reasoning_tokens_from == "chunks"
    assert m.answer_tokens == 2
    details = {"completion_tokens_details": {"reasoning_tokens": 30}}
    usage = {"prompt_tokens": 1, "completion_tokens": 40, "total_tokens": 41, **details}
    m = request_metrics(streamed(50, [10] * 5, reasoning=4, usage=usage))
    assert m.reasoning_tokens == 30 and m.reasoning_tokens_from == "usage"
    assert m.answer_tokens == 10


def test_local_counts() -> None:
    m = request_metrics(
        streamed(10, [1, 1], reasoning=1),
        count_text=len,
        count_prompt=lambda messages: 100 + len(messages),
    )
    assert m.local_output_tokens == 3 and m.local_reasoning_tokens == 1
    assert m.local_prompt_tokens == 101


def test_failed_request_has_no_speed() -> None:
    m = request_metrics(failed(), count_prompt=lambda messages: 5)
    assert not m.ok and m.error == "http_4xx" and m.ttft_ms is None and m.tpot_ms is None
    assert m.e2e_ms == 3 and m.local_prompt_tokens == 5


def test_aggregates_match_numpy_linear_percentiles() -> None:
    rng = np.random.default_rng(7)
    firsts = rng.integers(50, 500, 37).tolist()
    metrics = [request_metrics(streamed(int(f), [10] * 4), i) for i, f in enumerate(firsts)]
    agg = aggregate(metrics, span_s=10.0)
    ttft = np.asarray(firsts, dtype=float)
    assert agg["ttft_ms"]["count"] == 37
    assert agg["ttft_ms"]["mean"] == pytest.approx(ttft.mean())
    for q in (50, 90, 99):
        assert agg["ttft_ms"][f"p{q}"] == pytest.approx(np.percentile(ttft, q))
    assert agg["ttft_ms"]["min"] == ttft.min() and agg["ttft_ms"]["max"] == ttft.max()
    assert agg["itl_ms"]["count"] == 37 * 4
    assert agg["throughput"]["requests_per_s"] == pytest.approx(3.7)
    assert agg["throughput"]["output_tokens_per_s"] == pytest.approx(37 * 5 / 10)


def test_error_rate_by_class_and_goodput() -> None:
    fast = [request_metrics(streamed(100, [10] * 10), i) for i in range(6)]  # TTFT 100 ms
    slow = [request_metrics(streamed(1500, [10] * 10), 6 + i) for i in range(2)]  # 1.5 s
    errors = [
        request_metrics(failed(ErrorClass.HTTP_4XX), 8),
        request_metrics(failed(ErrorClass.TIMEOUT), 9),
    ]
    slos = [parse_slo("ttft<=1s"), parse_slo("speed>=50")]
    agg = aggregate(fast + slow + errors, span_s=4.0, slos=slos)
    assert agg["requests"] == 10 and agg["ok"] == 8
    assert agg["errors"] == {"http_4xx": 1, "timeout": 1}
    assert agg["error_rate"] == {"http_4xx": 0.1, "timeout": 0.1}
    assert agg["error_rate_total"] == 0.2
    assert agg["goodput"]["good"] == 6 and agg["goodput"]["fraction"] == 0.6
    assert agg["goodput"]["requests_per_s"] == pytest.approx(1.5)
    assert agg["goodput"]["slos"] == ["ttft<=1s", "speed>=50"]


def test_slo_parsing() -> None:
    assert parse_slo("ttft<=1s").threshold == 1000
    assert parse_slo("tpot < 50ms").threshold == 50 and parse_slo("tpot < 50ms").op == "<"
    assert parse_slo("e2e<=2500").threshold == 2500  # ms by default
    assert parse_slo("speed>=20").threshold == 20
    itl = parse_slo("itl<=15ms")
    assert not itl.met(request_metrics(streamed(1, [10, 20])))  # largest gap 20 ms
    assert itl.met(request_metrics(streamed(1, [10, 12])))
    for bad in ("ttft=1s", "latency<1s", "speed>=2s", "ttft<=3tok/s"):
        with pytest.raises(ValueError):
            parse_slo(bad)


def test_token_mismatch_server_vs_local() -> None:
    usage = {"prompt_tokens": 110, "completion_tokens": 12, "total_tokens": 122}
    m = request_metrics(
        streamed(10, [1] * 9, usage=usage), count_text=len, count_prompt=lambda _m: 100
    )
    agg = aggregate([m])
    tokens = agg["tokens"]
    assert tokens["server_output"] == 12 and tokens["local_output"] == 10
    assert tokens["output_mismatch"] == pytest.approx(0.2)
    assert tokens["server_input"] == 110 and tokens["local_input"] == 100
    assert tokens["input_mismatch"] == pytest.approx(0.1)


def test_request_metrics_to_dict_is_asdict_with_its_own_lists() -> None:
    from dataclasses import asdict

    m = request_metrics(streamed(100, [10, 20, 30]), 3, "bench/x/c1/3")
    m.attempt_ids = ["a1"]
    m.provider_ids = {"x-request-id": "r1"}
    out = m.to_dict()
    assert out == asdict(m)
    assert json.loads(json.dumps(out)) == out
    out["itl_ms"].append(99.0)
    out["attempt_ids"].clear()
    out["provider_ids"]["extra"] = "y"
    assert m.itl_ms == [10.0, 20.0, 30.0]
    assert m.attempt_ids == ["a1"]
    assert m.provider_ids == {"x-request-id": "r1"}
