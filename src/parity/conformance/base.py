"""A conformance check as a small declarative unit.

A `Check` says what it checks, why it matters, which requests it costs (`plan`) and how it
judges the answers (`judge`), keeping evidence when it fails. Add one by copying a
neighbour in this package and listing it in `registry.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from parity.core.config import Provider
from parity.core.exchange import ErrorClass, Exchange
from parity.core.request import Request

PROBE = "conformance"
GATEWAY_STATUSES = frozenset((502, 503, 504))
"""HTTP statuses of a gateway with nothing (or nothing in time) behind it: an outage."""
UNAVAILABLE = "unavailable"
"""How an ERROR figure begins when the provider did not answer at all (an outage)."""


class Status(StrEnum):
    """Outcome of one check on one provider."""

    PASS = "pass"
    FAIL = "fail"
    NOT_APPLICABLE = "n/a"
    ERROR = "error"  # no usable answer (an outage, not a finding), or the judge crashed


class BarRule(StrEnum):
    """How a check's bar is set (the "how the bar is set" column of docs/conformance.md)."""

    FIXED = "fixed"
    """The API's contract, the same for every provider."""
    REPEAT_AGREEMENT = "from the reference's repeat agreement"
    """From how often the reference's own repeated answers agree; the reference itself is
    judged against its own expected agreement."""
    REFERENCE_FIGURE = "relative to the reference's figure"
    """Relative to what the reference measures on the same requests."""


@dataclass(frozen=True)
class PlanContext:
    """What a check's plan may depend on: the provider and how many tries per case."""

    provider: Provider
    tries: int = 1


@dataclass(frozen=True)
class CheckInput:
    """What a check's judge sees: its exchanges, by key, for the provider and the reference
    (None when there is no reference, or the provider is the reference)."""

    provider: Provider
    exchanges: Mapping[str, Exchange]
    reference: Mapping[str, Exchange] | None
    tries: int = 1


@dataclass(frozen=True)
class CheckResult:
    """A check's verdict with the figure it measured, the bar it applied and its evidence."""

    status: Status
    figure: str
    bar: str
    evidence: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Check:
    """One conformance check.

    `plan` lists the requests it sends (keys must start with `conformance/<id>/`), `judge`
    turns their exchanges into a verdict. `needs_reference`: the bar comes from the
    reference's own answers, so without one the check is n/a. `required`: a failure makes
    `parity conform` exit 1 (an optional check only informs). `bar_rule` and `bar` say how
    the bar is set (the rule, and in words).
    """

    id: str
    family: str
    checks: str
    why: str
    plan: Callable[[PlanContext], list[Request]]
    judge: Callable[[CheckInput], CheckResult]
    needs_reference: bool = False
    required: bool = True
    bar_rule: BarRule = BarRule.FIXED
    bar: str = ""

    @property
    def family_id(self) -> str:
        """The id's prefix (`tools` for `tools.auto`): what `--checks` selects a family by."""
        return self.id.split(".", 1)[0]

    def cost(self, context: PlanContext) -> int:
        """Requests the check sends to `context.provider`."""
        return len(self.plan(context))


def request(
    check_id: str,
    name: str,
    body: dict[str, Any],
    stream: bool = False,
    endpoint: str = "chat/completions",
) -> Request:
    """A conformance request keyed under its check."""
    return Request(f"conformance/{check_id}/{name}", PROBE, body, stream=stream, endpoint=endpoint)


def result(
    ok: bool, figure: str, bar: str, found: list[dict[str, Any]] | None = None
) -> CheckResult:
    """PASS or FAIL with its figure, bar and evidence."""
    return CheckResult(Status.PASS if ok else Status.FAIL, figure, bar, found or [])


def not_applicable(reason: str, bar: str = "-") -> CheckResult:
    """An n/a result that says why."""
    return CheckResult(Status.NOT_APPLICABLE, reason, bar)


def evidence(key: str, exchange: Exchange, **figures: Any) -> dict[str, Any]:
    """A compact evidence record: the request, what came back, the figures judged, and the
    ids to find the exchange in the provider's logs (`request_ids`: `Exchange.log_ids`, when
    it has any; first, so a clipped record still shows them)."""
    ids = exchange.log_ids()
    return {
        "key": key,
        **({"request_ids": ids} if ids else {}),
        "request": exchange.request,
        "status": exchange.status,
        "error": exchange.error.value if exchange.error else None,
        "error_detail": exchange.error_detail,
        "text": exchange.text[:300],
        "finish_reason": exchange.finish_reason,
        "usage": exchange.usage,
        **figures,
    }


def failed_requests(inp: CheckInput) -> list[dict[str, Any]]:
    """Evidence for every exchange of the check that got no usable response."""
    return [evidence(key, x) for key, x in inp.exchanges.items() if not x.ok]


def all_failed(inp: CheckInput) -> CheckResult | None:
    """An ERROR result when no exchange of the check succeeded, else None (an outage, every
    request failed at the transport, says so: see `outage`)."""
    if (down := outage(inp.exchanges)) is not None:
        return down
    if inp.exchanges and all(not x.ok for x in inp.exchanges.values()):
        classes = sorted({x.error.value for x in inp.exchanges.values() if x.error})
        figure = f"no usable response ({', '.join(classes)})"
        return CheckResult(Status.ERROR, figure, "-", failed_requests(inp))
    return None


def transport_failure(x: Exchange) -> bool:
    """True when the request got no answer from the model's server at all: no connection, a
    timeout (connect, response head, stalled stream or whole-request deadline), or a
    gateway's 502/503/504. The same rule as the client's `Availability`."""
    if x.error in (ErrorClass.CONNECT, ErrorClass.TIMEOUT):
        return True
    return x.error is ErrorClass.HTTP_5XX and x.status in GATEWAY_STATUSES


def _failure_kinds(exchanges: Mapping[str, Exchange]) -> str:
    kinds = sorted(
        {
            f"HTTP {x.status}" if x.status is not None else (x.error.value if x.error else "?")
            for x in exchanges.values()
            if not x.ok
        }
    )
    return ", ".join(kinds)


def outage(exchanges: Mapping[str, Exchange], why: str | None = None) -> CheckResult | None:
    """ERROR "unavailable: ..." when every exchange failed at the transport (see
    `transport_failure`): the provider was down, which is no finding about its conformance.
    None when any request got an answer (or there are none). `why` adds the reason the run
    recorded (the provider marked unavailable)."""
    if not exchanges or not all(transport_failure(x) for x in exchanges.values()):
        return None
    kinds = _failure_kinds(exchanges)
    figure = f"{UNAVAILABLE}: no answer to {len(exchanges)} request(s) ({kinds})"
    if why:
        figure += f"; {why}"
    found = [evidence(key, x) for key, x in exchanges.items()]
    return CheckResult(Status.ERROR, figure, "-", found[:5])


def _short(why: str, limit: int = 100) -> str:
    """The run's reason, once per check: its first clause, without a repeated prefix, cut."""
    text = " ".join(why.split(";")[0].split())
    text = text.removeprefix(f"{UNAVAILABLE}:").strip() or text
    return text if len(text) <= limit else text[: limit - 1] + "…"


def unavailable(planned: int, exchanges: Mapping[str, Exchange], why: str) -> CheckResult | None:
    """For a provider the run marked unavailable (or unreachable): ERROR "unavailable: why"
    when the check is incomplete (requests held back) or any of its stored requests failed at
    the transport, since its verdict would rest on the outage; None when every planned
    request was stored and none failed at the transport (then it is judged as usual)."""
    down = {k: x for k, x in exchanges.items() if transport_failure(x)}
    if len(exchanges) == planned and not down:
        return None
    held = planned - len(exchanges)
    figure = f"{UNAVAILABLE}: {_short(why)}"
    if held:
        figure += f"; {held} of its {planned} request(s) not sent"
    if down:
        figure += f"; {len(down)} without an answer ({_failure_kinds(down)})"
    found = [evidence(key, x) for key, x in down.items()]
    return CheckResult(Status.ERROR, figure, "-", found[:5])
