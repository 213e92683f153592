"""The conformance checks parity knows, in report order, and how a run selects them."""

from __future__ import annotations

from collections.abc import Iterable

from parity.conformance.base import Check
from parity.conformance.checks import (
    context,
    errors,
    params,
    reasoning,
    streaming,
    structured,
    tools,
    usage,
)
from parity.core.errors import ConfigError

CHECKS: list[Check] = [
    *tools.TOOL_CHECKS,
    *reasoning.REASONING_CHECKS,
    *params.PARAMS_CHECKS,
    *structured.STRUCTURED_CHECKS,
    streaming.MATCHES,
    streaming.WELL_FORMED,
    *usage.USAGE_CHECKS,
    context.ADVERTISED,
    *errors.ERROR_CHECKS,
]

RUN_CHECKS: tuple[str, ...] = (
    "usage.reported",
    "usage.streamed",
    "usage.prompt_tokens",
    "params.max_tokens",
    "streaming.matches_plain",
    "streaming.well_formed",
    "context.advertised",
)
"""The core set `parity run` judges by default (cheap); `parity conform` runs them all."""


def get_check(check_id: str) -> Check:
    """A check by id; raises KeyError for an unknown id."""
    for check in CHECKS:
        if check.id == check_id:
            return check
    raise KeyError(check_id)


def families() -> list[str]:
    """Check families in report order."""
    return list(dict.fromkeys(check.family_id for check in CHECKS))


def selected_checks(selection: Iterable[str] | None) -> list[Check]:
    """The checks a selection names, in report order: each item is a check id (`tools.auto`)
    or a family (`tools`, the part before the dot); None selects `RUN_CHECKS`, and "all"
    every check. Raises `ConfigError` naming an unknown item and the valid ones."""
    wanted = list(RUN_CHECKS if selection is None else selection)
    if "all" in wanted:
        return list(CHECKS)
    known = {c.id for c in CHECKS} | {c.family_id for c in CHECKS}
    unknown = [item for item in wanted if item not in known]
    if unknown:
        raise ConfigError(
            f"unknown check or family {unknown[0]!r}; families: {', '.join(families())}"
        )
    return [c for c in CHECKS if c.id in wanted or c.family_id in wanted]
