"""The load generator: sequential, fixed concurrency, a concurrency sweep, open-loop arrivals.

It knows nothing of HTTP: it calls `send(index)` (an async function) on a schedule and
records when each call was scheduled, started and finished, how many were in flight at
most, and the rate it achieved. The clock and the sleep are injectable, so tests can run
it on virtual time.

Load specs (the `--load` option):

- `sequential` (or `c1`): one request at a time.
- `cN` or `concurrency=N`: N requests in flight at all times (closed loop).
- `sweep` / `sweep:CAP`: concurrency 1, 2, 4, ... up to CAP (default 8), one run each.
- `rate=R` / `poisson:R`: open loop, Poisson arrivals at R requests/s, whatever is in
  flight; `gamma:R:B`: gamma-distributed gaps with mean 1/R and burstiness B (the shape:
  B < 1 is burstier than Poisson, B = 1 is Poisson, B > 1 is more regular).

A run stops after `requests` requests or `duration_s` seconds, whichever comes first.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

import numpy as np

__all__ = [
    "LoadResult",
    "LoadSpec",
    "Sent",
    "arrival_times",
    "parse_load",
    "run_load",
    "sweep_levels",
]

T = TypeVar("T")
Mode = Literal["concurrency", "rate"]


@dataclass(frozen=True)
class LoadSpec:
    """One load pattern; `sweep` expands to several concurrency specs (`sweep_levels`)."""

    mode: Mode = "concurrency"
    concurrency: int = 1
    rate: float | None = None
    arrival: Literal["poisson", "gamma"] = "poisson"
    burstiness: float = 1.0
    sweep_cap: int | None = None

    @property
    def name(self) -> str:
        """A short name for keys and tables: `sequential`, `c4`, `sweep8`, `poisson2`, ..."""
        if self.sweep_cap is not None:
            return f"sweep{self.sweep_cap}"
        if self.mode == "rate":
            rate = f"{self.rate:g}"
            if self.arrival == "gamma":
                return f"gamma{rate}b{self.burstiness:g}"
            return f"poisson{rate}"
        return "sequential" if self.concurrency == 1 else f"c{self.concurrency}"


_FLOAT = r"(\d+(?:\.\d+)?)"


def parse_load(spec: str) -> LoadSpec:
    """Parse a `--load` value (see the module docstring); ValueError names the forms."""
    text = spec.strip().lower().replace(" ", "")
    if text in ("sequential", "seq", "c1"):
        return LoadSpec()
    if m := re.fullmatch(r"(?:c|concurrency=)(\d+)", text):
        n = int(m.group(1))
        if n < 1:
            raise ValueError(f"load {spec!r}: concurrency must be >= 1")
        return LoadSpec(concurrency=n)
    if m := re.fullmatch(r"sweep(?::(\d+))?", text):
        cap = int(m.group(1) or 8)
        if cap < 1:
            raise ValueError(f"load {spec!r}: the sweep cap must be >= 1")
        return LoadSpec(sweep_cap=cap)
    if m := re.fullmatch(rf"(?:rate=|poisson:){_FLOAT}", text):
        rate = float(m.group(1))
        if rate <= 0:
            raise ValueError(f"load {spec!r}: the rate must be > 0")
        return LoadSpec(mode="rate", rate=rate)
    if m := re.fullmatch(rf"gamma:{_FLOAT}:{_FLOAT}", text):
        rate, burst = float(m.group(1)), float(m.group(2))
        if rate <= 0 or burst <= 0:
            raise ValueError(f"load {spec!r}: rate and burstiness must be > 0")
        return LoadSpec(mode="rate", rate=rate, arrival="gamma", burstiness=burst)
    raise ValueError(
        f"unknown load {spec!r}: use sequential, cN, sweep[:CAP], rate=R (Poisson) "
        "or gamma:R:BURSTINESS"
    )


def sweep_levels(cap: int) -> list[int]:
    """1, 2, 4, ... up to `cap`, with `cap` itself last if it is no power of two."""
    levels = []
    n = 1
    while n < cap:
        levels.append(n)
        n *= 2
    levels.append(cap)
    return levels


def arrival_times(
    rate: float,
    count: int,
    *,
    arrival: Literal["poisson", "gamma"] = "poisson",
    burstiness: float = 1.0,
    seed: int = 0,
) -> list[float]:
    """Seconds from the start at which `count` open-loop requests arrive; the first at 0.

    Gaps are exponential with mean 1/rate (Poisson), or gamma with shape `burstiness` and
    scale 1/(rate x burstiness) (mean 1/rate, coefficient of variation 1/sqrt(burstiness)).
    """
    if rate <= 0 or burstiness <= 0:
        raise ValueError("rate and burstiness must be > 0")
    if count <= 0:
        return []
    rng = np.random.default_rng(seed)
    if arrival == "gamma":
        gaps = rng.gamma(burstiness, 1.0 / (rate * burstiness), count - 1)
    else:
        gaps = rng.exponential(1.0 / rate, count - 1)
    return [0.0, *(float(t) for t in np.cumsum(gaps))]


@dataclass
class Sent(Generic[T]):
    """One request of a load run: seconds since the run started, and what `send` returned."""

    index: int
    scheduled_s: float
    started_s: float
    finished_s: float
    in_flight: int  # requests in flight right after this one started (itself included)
    value: T


@dataclass
class LoadResult(Generic[T]):
    """What a load run did: every request, the peak concurrency and the achieved rate."""

    spec: LoadSpec
    sent: list[Sent[T]] = field(default_factory=list)
    max_in_flight: int = 0
    asked_rate: float | None = None
    schedule_rate: float | None = None
    duration_s: float = 0.0
    stopped_by: str = "count"

    @property
    def achieved_rate(self) -> float | None:
        """Requests started per second: (n - 1) / (last start - first start)."""
        return _rate([s.started_s for s in self.sent])

    @property
    def span_s(self) -> float:
        """First start to last finish, in seconds (0 without requests)."""
        if not self.sent:
            return 0.0
        return max(s.finished_s for s in self.sent) - min(s.started_s for s in self.sent)


def _rate(starts: list[float]) -> float | None:
    if len(starts) < 2:
        return None
    span = max(starts) - min(starts)
    return (len(starts) - 1) / span if span > 0 else None


Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


async def run_load(
    send: Callable[[int], Awaitable[T]],
    spec: LoadSpec,
    *,
    requests: int | None = None,
    duration_s: float | None = None,
    seed: int = 0,
    clock: Clock = time.perf_counter,
    sleep: Sleep = asyncio.sleep,
    stop: Callable[[], bool] | None = None,
) -> LoadResult[T]:
    """Drive `send(0)`, `send(1)`, ... with `spec` until `requests` were started or
    `duration_s` has passed (requests in flight then are awaited and kept), or `stop()`
    says so before a request would start (`stopped_by` "stopped": its provider is gone).

    Closed loop (`concurrency`): N workers, each sends its next request when its previous
    one finished. Open loop (`rate`): requests start at `arrival_times`, however many are
    in flight. `send` must not raise; its return values are kept in order of index.
    """
    if spec.sweep_cap is not None:
        raise ValueError("run_load takes one level; expand a sweep with sweep_levels")
    if requests is None and duration_s is None:
        raise ValueError("give requests, duration_s or both")
    limit = requests if requests is not None else math.inf
    result: LoadResult[T] = LoadResult(spec)
    start = clock()
    in_flight = 0

    def elapsed() -> float:
        return clock() - start

    def out_of_time() -> bool:
        return duration_s is not None and elapsed() >= duration_s

    def stopped() -> bool:
        return stop is not None and stop()

    async def one(index: int, scheduled: float) -> None:
        nonlocal in_flight
        in_flight += 1
        result.max_in_flight = max(result.max_in_flight, in_flight)
        started = elapsed()
        record_in_flight = in_flight
        try:
            value = await send(index)
        finally:
            in_flight -= 1
        result.sent.append(Sent(index, scheduled, started, elapsed(), record_in_flight, value))

    if spec.mode == "concurrency":
        counter = 0

        async def worker() -> None:
            nonlocal counter
            while counter < limit and not out_of_time() and not stopped():
                index = counter
                counter += 1
                await one(index, elapsed())

        await asyncio.gather(*(worker() for _ in range(spec.concurrency)))
        result.stopped_by = "count" if counter >= limit else "stopped" if stopped() else "duration"
    else:
        assert spec.rate is not None
        result.asked_rate = spec.rate
        count = requests if requests is not None else _open_loop_count(spec.rate, duration_s)
        times = arrival_times(
            spec.rate, count, arrival=spec.arrival, burstiness=spec.burstiness, seed=seed
        )
        if duration_s is not None:
            times = [t for t in times if t < duration_s]
        result.schedule_rate = _rate(times)
        tasks: list[asyncio.Task[None]] = []
        for index, at in enumerate(times):
            delay = at - elapsed()
            if delay > 0:
                await sleep(delay)
            if stopped():
                break
            tasks.append(asyncio.ensure_future(one(index, at)))
            await asyncio.sleep(0)  # let it start now, not when the next sleep begins
        await asyncio.gather(*tasks)
        if len(tasks) < len(times):
            result.stopped_by = "stopped"
        else:
            result.stopped_by = "count" if len(times) == count else "duration"
    result.sent.sort(key=lambda s: s.index)
    result.duration_s = elapsed()
    return result


def _open_loop_count(rate: float, duration_s: float | None) -> int:
    """Enough arrivals to outlast `duration_s` at `rate` (times past it are dropped)."""
    assert duration_s is not None
    return max(1, math.ceil(rate * duration_s * 2 + 10))
