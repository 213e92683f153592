"""A hand-built Exchange for judge tests: what a check sees, without a network."""

from __future__ import annotations

from typing import Any

from parity.core.exchange import Exchange, Timings


def exchange(**fields: Any) -> Exchange:
    """An Exchange of a non-streamed request answered 200, with `fields` set on top."""
    base: dict[str, Any] = {
        "request": {},
        "stream": False,
        "timings": Timings(sent=0),
        "status": 200,
    }
    return Exchange(**{**base, **fields})
