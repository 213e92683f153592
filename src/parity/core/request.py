"""What every probe shares: a planned request with a stable key."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Request:
    """One request a probe wants sent to a provider.

    `key` is unique within a provider's run and stable across resumes; two probes that plan
    the same key share one request (the body must then be the same). `sequential` requests
    are sent one at a time, before the provider's others, with no other request to that
    provider in flight (speed); other providers are measured meanwhile.
    `endpoint` is the path under the provider's base URL ("responses": the Responses API).
    """

    key: str
    probe: str
    body: dict[str, Any] = field(hash=False)
    stream: bool = False
    sequential: bool = False
    endpoint: str = "chat/completions"


def user(content: str) -> list[dict[str, str]]:
    """A one-message conversation."""
    return [{"role": "user", "content": content}]
