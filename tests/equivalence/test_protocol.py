"""What `parity equiv` sends: fresh seeds, the keys, and the first-token table it reads."""

from __future__ import annotations

import json

from parity.core.exchange import Exchange, Timings
from parity.equivalence.prompts import prompts
from parity.equivalence.protocol import first_token_table, logprob_requests, sample_requests
from parity.equivalence.recording import EquivSettings


def test_requests_are_keyed_per_prompt_and_never_share_a_seed() -> None:
    items = prompts(3)
    settings = EquivSettings(model="m", prompts=3)
    samples = sample_requests(items, settings, 2, 4)
    tables = logprob_requests(items, settings, 2)
    assert sorted(r.key for r in samples) == sorted(
        f"equiv/{p.id}/{i}" for p in items for i in (2, 3)
    )
    assert sorted(r.key for r in tables) == sorted(
        f"equiv-lp/{p.id}/{r}" for p in items for r in (0, 1)
    )
    assert all(r.body["max_tokens"] == 12 and "logprobs" not in r.body for r in samples)
    assert all(r.body["max_tokens"] == 1 and r.body["top_logprobs"] == 5 for r in tables)
    seeds = [r.body["seed"] for r in [*samples, *tables]]
    assert len(set(seeds)) == len(seeds)


def test_first_token_table_keeps_the_k_most_likely() -> None:
    top = [{"token": t, "logprob": lp} for t, lp in (("a", -2.0), ("b", -0.1), ("c", -1.0))]
    body = {"choices": [{"logprobs": {"content": [{"token": "b", "top_logprobs": top}]}}]}
    exchange = Exchange(request={}, stream=False, timings=Timings(sent=0), raw=json.dumps(body))
    assert first_token_table(exchange, 2) == {"b": -0.1, "c": -1.0}
    assert first_token_table(Exchange(request={}, stream=False, timings=Timings(sent=0)), 2) is None
