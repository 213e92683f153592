"""What `parity equiv` sends (the protocol, `PROTOCOL`) and how it reads the answers.

For every prompt of the built-in set (`parity.equivalence.prompts`), one user message, no
system message;

* sample requests: `temperature` (default 1), `top_p` 1, `max_tokens` (default 12), and a
  fresh random `seed` per request. Seeds are drawn from the operating system's random source,
  so the two sides never share one: llama.cpp and other engines honour seeds, and two
  identical servers given the same seed return the same text, which would make an A/A test
  trivially pass without measuring any distribution. Each seed is kept in the store with its
  request, so an exchange can be replayed.
* logprob requests: the same message, `max_tokens` 1, `logprobs: true`,
  `top_logprobs` (default 5): the first token's top-k table. Each repeat is one pass over the
  prompts in a fresh random order (engines reuse the previous prompt's cache, which can
  change the numerics slightly -- a llama.cpp server's logprobs on its first requests after
  start-up differed by a few hundredths from later ones; a random order gives both sides the
  same mix of cache states).

Requests are keyed `equiv/<prompt>/<i>` (samples) and `equiv-lp/<prompt>/<r>` (logprobs).
"""

from __future__ import annotations

import json
import random
import secrets
from collections.abc import Sequence
from typing import TYPE_CHECKING

from parity.core.exchange import Exchange
from parity.core.request import Request
from parity.equivalence.prompts import EquivPrompt

if TYPE_CHECKING:
    from parity.equivalence.recording import EquivSettings

__all__ = [
    "LOGPROB_PROBE",
    "PROTOCOL",
    "SAMPLE_PROBE",
    "first_token_table",
    "logprob_requests",
    "messages",
    "request_seed",
    "sample_requests",
]

PROTOCOL = "equiv-v1"
"""How requests are built (see the module docstring); bumped when that changes."""
SAMPLE_PROBE = "equiv"
LOGPROB_PROBE = "equiv-lp"


def messages(prompt: EquivPrompt) -> list[dict[str, str]]:
    """The chat messages of `prompt`: one user message, no system message."""
    return [{"role": "user", "content": prompt.text}]


def request_seed() -> int:
    """A fresh seed for one request, from the operating system's random source."""
    return secrets.randbelow(2**31 - 1)


def sample_requests(
    items: Sequence[EquivPrompt], settings: EquivSettings, start: int, stop: int
) -> list[Request]:
    """Sample requests `start <= i < stop` for every prompt, in a random order, fresh seeds."""
    planned = [
        Request(
            key=f"{SAMPLE_PROBE}/{p.id}/{i}",
            probe=SAMPLE_PROBE,
            body={
                "messages": messages(p),
                "temperature": settings.temperature,
                "top_p": settings.top_p,
                "max_tokens": settings.max_tokens,
                "seed": request_seed(),
            },
        )
        for i in range(start, stop)
        for p in items
    ]
    random.SystemRandom().shuffle(planned)
    return planned


def logprob_requests(
    items: Sequence[EquivPrompt], settings: EquivSettings, repeats: int
) -> list[Request]:
    """`repeats` passes over the prompts, each in a fresh random order: first-token tables."""
    planned: list[Request] = []
    shuffle = random.SystemRandom().shuffle
    for r in range(repeats):
        one_pass = [
            Request(
                key=f"{LOGPROB_PROBE}/{p.id}/{r}",
                probe=LOGPROB_PROBE,
                body={
                    "messages": messages(p),
                    "temperature": settings.temperature,
                    "top_p": 1.0,
                    "max_tokens": 1,
                    "logprobs": True,
                    "top_logprobs": settings.top_logprobs,
                    "seed": request_seed(),
                },
            )
            for p in items
        ]
        shuffle(one_pass)
        planned += one_pass
    return planned


def first_token_table(exchange: Exchange, k: int) -> dict[str, float] | None:
    """The first generated token's top-`k` table (token -> logprob) from a raw response.

    None when the exchange failed or carries no logprobs (some engines leave them out when
    the first token is end-of-sequence). Entries beyond the `k` most likely are dropped
    (llama.cpp adds the sampled token when it is not in the top k).
    """
    if not exchange.ok or not exchange.raw:
        return None
    try:
        data = json.loads(exchange.raw)
        content = data["choices"][0]["logprobs"]["content"]
        entries = content[0]["top_logprobs"]
        table = {str(e["token"]): float(e["logprob"]) for e in entries}
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    if not table:
        return None
    best = sorted(table.items(), key=lambda item: -item[1])[:k]
    return dict(best)
