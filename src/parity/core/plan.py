"""What a run asks: its options and the requests they plan for each provider."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from parity.accuracy import probe as accuracy
from parity.accuracy.suites import get_suite
from parity.bench import probe as speed
from parity.conformance.base import PlanContext
from parity.conformance.registry import selected_checks
from parity.core.config import Provider
from parity.core.request import Request


class RunOptions(BaseModel):
    """The settings of a run, stored with it so `--resume` plans the same requests."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    suite: str = "easy"
    repeats: int = Field(default=2, ge=1, le=1000)
    speed_requests: int = Field(default=5, ge=0, le=10_000)
    speed_max_tokens: int = Field(default=64, ge=2)
    margin: float = Field(default=0.03, gt=0, lt=1)
    conformance: bool = True
    retries: int = Field(default=3, ge=0)
    accuracy: bool = True
    checks: tuple[str, ...] | None = None
    """Conformance check ids or families to run; None: the core set `parity run` uses."""
    tries: int = Field(default=1, ge=1, le=100)
    """Tries per case for checks that repeat (tool calls: pass@k and pass^k)."""


def plan_requests(run_id: str, provider: Provider, options: RunOptions) -> list[Request]:
    """Every request the run sends to `provider`, deduplicated by key, in sending order."""
    planned: list[Request] = []
    if options.speed_requests:
        planned += speed.plan(run_id, options.speed_requests, options.speed_max_tokens)
    if options.accuracy:
        planned += accuracy.plan(get_suite(options.suite), options.repeats)
    if options.conformance:
        context = PlanContext(provider, options.tries)
        for check in selected_checks(options.checks):
            planned += check.plan(context)
    unique: dict[str, Request] = {}
    for req in planned:
        unique.setdefault(req.key, req)
    return list(unique.values())
