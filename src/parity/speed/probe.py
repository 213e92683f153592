"""Speed: a handful of streamed requests per provider, timed as bytes arrive.

Each request has a unique prompt (no prefix-cache flattery) and is sent with nothing else in
flight, so providers sharing one machine (the local fleet) do not slow each other down.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

from parity.core.exchange import Exchange
from parity.core.request import Request, user
from parity.stats.estimates import summarize

PROBE = "speed"
TOPICS = [
    "a lighthouse keeper",
    "a lost umbrella",
    "the first snow",
    "a night train",
    "a city garden",
    "an old radio",
    "a river crossing",
    "a market at dawn",
]


def plan(run_id: str, requests: int = 5, max_tokens: int = 64) -> list[Request]:
    """One warmup request (not counted), then `requests` streamed requests with distinct
    prompts that ask for a longer reply."""
    warmup = {"messages": user(f"[{run_id}] Say hello."), "max_tokens": 4, "temperature": 0}
    planned = [Request("speed/warmup", PROBE, warmup, stream=True, sequential=True)]
    for i in range(requests):
        topic = TOPICS[i % len(TOPICS)]
        prompt = f"[{run_id}-{i}] Write a short story about {topic}, in about 150 words."
        body = {"messages": user(prompt), "max_tokens": max_tokens, "temperature": 0.7}
        planned.append(Request(f"speed/{i}", PROBE, body, stream=True, sequential=True))
    return planned


def analyse(exchanges: Iterable[Exchange]) -> dict[str, Any]:
    """TTFT, TTFAT, output speed, e2e and ITL summaries over the successful requests."""
    done = list(exchanges)
    ok = [x for x in done if x.ok]
    itl = [gap for x in ok for gap in x.itl_ms()]
    sources = sorted({x.output_tokens()[1] for x in ok})
    return {
        "requests": len(done),
        "errors": len(done) - len(ok),
        "output_tokens_from": sources,
        "ttft_ms": asdict(summarize([v for x in ok if (v := x.ttft_ms()) is not None])),
        "ttfat_ms": asdict(summarize([v for x in ok if (v := x.ttfat_ms()) is not None])),
        "output_tokens_per_s": asdict(
            summarize([v for x in ok if (v := x.output_tokens_per_s()) is not None])
        ),
        "e2e_ms": asdict(summarize([v for x in ok if (v := x.e2e_ms()) is not None])),
        "itl_ms": asdict(summarize(itl)),
    }
