"""What a run asks: its options, resolved once into a plan, and the requests it sends.

`RunOptions` is what the user chose (stored with the run); `RunPlan.resolve` turns it into
the suite and checks it names, once, raising `ConfigError` for an unknown one. The same plan
is handed to the preview, the runner and the analysis, so they cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from parity.accuracy import probe as accuracy
from parity.accuracy.suites import Suite, get_suite
from parity.conformance.base import Check, PlanContext
from parity.conformance.registry import selected_checks
from parity.core.config import Provider
from parity.core.errors import ConfigError
from parity.core.request import Request
from parity.speed import probe as speed


class RunOptions(BaseModel):
    """The settings of a run, stored with it so `--resume` plans the same requests."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    suite: str = "easy"
    repeats: int = Field(default=2, ge=1, le=1000)
    reference_repeats: int = Field(default=1, ge=1, le=100)
    """The reference's accuracy repeats, a multiple of `repeats` (it is in every comparison,
    so its noise is in every difference); `parity run` gives 4. 1: options stored before."""
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
    max_time_s: float | None = Field(default=None, gt=0)
    """Stop sending after this many seconds (the run ends interrupted, resumable); None: no
    limit. Not part of the plan: `--resume` takes the limit given to it, not this one."""


@dataclass(frozen=True)
class RunPlan:
    """A run's options resolved: the suite and the conformance checks they name."""

    options: RunOptions
    suite: Suite
    checks: tuple[Check, ...]

    @classmethod
    def resolve(cls, options: RunOptions) -> RunPlan:
        """Resolve `options` once; `ConfigError` names an unknown suite or check."""
        try:
            suite = get_suite(options.suite)
        except KeyError as exc:
            raise ConfigError(str(exc.args[0])) from None
        checks = tuple(selected_checks(options.checks)) if options.conformance else ()
        return cls(options, suite, checks)

    @classmethod
    def of(cls, plan: RunPlan | RunOptions) -> RunPlan:
        """`plan` itself, or the plan its options resolve to."""
        return plan if isinstance(plan, RunPlan) else cls.resolve(plan)

    def requests(self, run_id: str, provider: Provider) -> list[Request]:
        """Every request the run sends to `provider`, deduplicated by key, in sending order."""
        options = self.options
        planned: list[Request] = []
        if options.speed_requests:
            planned += speed.plan(run_id, options.speed_requests, options.speed_max_tokens)
        if options.accuracy:
            factor = options.reference_repeats if provider.reference else 1
            planned += accuracy.plan(self.suite, options.repeats * factor)
        context = PlanContext(provider, options.tries)
        for check in self.checks:
            planned += check.plan(context)
        unique: dict[str, Request] = {}
        for req in planned:
            unique.setdefault(req.key, req)
        return list(unique.values())


def plan_requests(run_id: str, provider: Provider, plan: RunPlan | RunOptions) -> list[Request]:
    """Every request the run sends to `provider`, deduplicated by key, in sending order."""
    return RunPlan.of(plan).requests(run_id, provider)
