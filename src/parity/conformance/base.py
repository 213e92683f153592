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
from parity.core.exchange import Exchange
from parity.core.request import Request

PROBE = "conformance"


class Status(StrEnum):
    """Outcome of one check on one provider."""

    PASS = "pass"
    FAIL = "fail"
    NOT_APPLICABLE = "n/a"
    ERROR = "error"  # the provider did not answer the check's requests at all


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
    `parity conform` exit 1 (an optional check only informs).
    """

    id: str
    family: str
    checks: str
    why: str
    plan: Callable[[PlanContext], list[Request]]
    judge: Callable[[CheckInput], CheckResult]
    needs_reference: bool = False
    required: bool = True

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
    """A compact evidence record: the request, what came back, and the figures judged."""
    return {
        "key": key,
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
    """An ERROR result when no exchange of the check succeeded, else None."""
    if inp.exchanges and all(not x.ok for x in inp.exchanges.values()):
        classes = sorted({x.error.value for x in inp.exchanges.values() if x.error})
        figure = f"no usable response ({', '.join(classes)})"
        return CheckResult(Status.ERROR, figure, "-", failed_requests(inp))
    return None
