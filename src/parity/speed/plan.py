"""What a bench sends: steps (workload x load x count), bundled into presets.

A step is one workload under one load pattern, with its warmup requests and its stop
condition. A preset is a list of steps; `--workload`/`--load`/`--requests`/`--duration`/
`--warmup` on the command line replace the preset's choices.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from parity.speed.load import LoadSpec, parse_load
from parity.speed.workloads import Workload, parse_workload

__all__ = ["PRESETS", "Step", "build_steps"]


@dataclass(frozen=True)
class Step:
    """One workload under one load pattern."""

    workload: Workload
    load: LoadSpec
    requests: int | None = 10
    duration_s: float | None = None
    warmup: int = 1

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (stored with the run's options)."""
        return {
            "workload": self.workload.name,
            "input_tokens": self.workload.input_tokens,
            "output_tokens": self.workload.output_tokens,
            "load": self.load.name,
            "requests": self.requests,
            "duration_s": self.duration_s,
            "warmup": self.warmup,
        }


def _step(
    workload: str, load: str, requests: int | None, warmup: int, duration_s: float | None = None
) -> Step:
    return Step(parse_workload(workload), parse_load(load), requests, duration_s, warmup)


PRESETS: dict[str, list[Step]] = {
    # Fits the local fleet on 2 cores (about a minute for six servers): short prompts and
    # answers one at a time, then one 10k request each, which a 4k-context server must refuse.
    "quick": [_step("100/32", "sequential", 4, 1), _step("10k", "sequential", 1, 0)],
    # Artificial Analysis's default shape, one request at a time.
    "standard": [_step("1k", "sequential", 10, 1)],
    # All four AA shapes, one at a time.
    "aa": [
        _step("100", "sequential", 5, 1),
        _step("1k", "sequential", 5, 0),
        _step("10k", "sequential", 5, 0),
        _step("100k", "sequential", 3, 0),
    ],
    # Throughput against latency: concurrency 1, 2, 4, 8, 16.
    "sweep": [_step("1k", "sweep:16", 16, 1)],
    # Open-loop Poisson arrivals at 1 request/s for a minute.
    "load": [_step("1k", "rate=1", None, 1, 60.0)],
    # The fleet under load (each server runs one request at a time): a small sweep.
    "fleet-sweep": [_step("100/32", "sweep:4", 8, 1)],
}
"""Named bundles of steps; `quick` is the default."""


def build_steps(
    preset: str,
    workloads: list[str] | None = None,
    loads: list[str] | None = None,
    requests: int | None = None,
    duration_s: float | None = None,
    warmup: int | None = None,
) -> list[Step]:
    """The preset's steps, or (with workloads and/or loads given) every workload x load,
    the preset's first step filling in what is not given. Raises ValueError on bad specs."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}: use one of {', '.join(PRESETS)}")
    base = PRESETS[preset]
    if workloads or loads:
        first = base[0]
        ws = [parse_workload(w) for w in workloads] if workloads else [first.workload]
        ls = [parse_load(x) for x in loads] if loads else [first.load]
        steps = [replace(first, workload=w, load=x) for w in ws for x in ls]
    else:
        steps = list(base)
    if requests is not None:
        steps = [replace(s, requests=requests or None) for s in steps]  # 0: no count limit
    if duration_s is not None:
        steps = [replace(s, duration_s=duration_s) for s in steps]
    if warmup is not None:
        steps = [replace(s, warmup=warmup) for s in steps]
    for s in steps:
        if s.requests is None and s.duration_s is None:
            raise ValueError("give --requests, --duration or both")
    return steps
