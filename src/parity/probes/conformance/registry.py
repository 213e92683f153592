"""The conformance checks parity runs, in report order."""

from __future__ import annotations

from parity.probes.conformance import context, params, streaming, usage
from parity.probes.conformance.base import Check

CHECKS: list[Check] = [
    usage.REPORTED,
    usage.STREAMED,
    usage.PROMPT_TOKENS,
    params.MAX_TOKENS_CHECK,
    streaming.MATCHES,
    streaming.WELL_FORMED,
    context.ADVERTISED,
]


def get_check(check_id: str) -> Check:
    """A check by id; raises KeyError for an unknown id."""
    for check in CHECKS:
        if check.id == check_id:
            return check
    raise KeyError(check_id)
