from parity.core.exchange import Exchange, Timings
from parity.speed import probe as speed

MS = 1_000_000


def streamed(first_token_ms: int, gaps_ms: list[int], usage: bool = True) -> Exchange:
    chunks = [first_token_ms * MS]
    for gap in gaps_ms:
        chunks.append(chunks[-1] + gap * MS)
    return Exchange(
        request={},
        stream=True,
        timings=Timings(
            sent=0,
            headers=MS,
            first_chunk=first_token_ms * MS // 2,
            first_token_chunk=chunks[0],
            first_answer_chunk=chunks[0],
            token_chunks=chunks,
            end=chunks[-1] + MS,
        ),
        usage={
            "prompt_tokens": 5,
            "completion_tokens": len(chunks),
            "total_tokens": 5 + len(chunks),
        }
        if usage
        else None,
    )


def test_plan_has_a_warmup_then_unique_prompts() -> None:
    planned = speed.plan("run1", requests=4)
    assert planned[0].key == "speed/warmup"
    prompts = [r.body["messages"][0]["content"] for r in planned[1:]]
    assert len(set(prompts)) == 4 and all("run1" in p for p in prompts)
    assert all(r.stream and r.sequential for r in planned)


def test_analyse_follows_the_readme_definitions() -> None:
    # 11 tokens, the first at 100 ms, then one every 10 ms: (11 - 1) / 0.1 s = 100 tok/s.
    result = speed.analyse([streamed(100, [10] * 10), streamed(300, [20] * 10, usage=False)])
    assert result["requests"] == 2 and result["errors"] == 0
    assert result["ttft_ms"]["p50"] == 200
    assert result["ttft_ms"]["min"] == 100
    assert result["output_tokens_per_s"]["max"] == 100
    assert result["output_tokens_per_s"]["min"] == 50  # counted from chunks: no usage
    assert result["output_tokens_from"] == ["chunks", "usage"]
    assert result["itl_ms"]["count"] == 20
    assert result["e2e_ms"]["min"] == 201
