"""The load generator on virtual time: concurrency held, open-loop rate achieved."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from parity.speed.load import LoadSpec, arrival_times, parse_load, run_load, sweep_levels


class VirtualClock:
    """Time that moves only when a coroutine sleeps on it."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.0)
        await asyncio.sleep(0)


def test_parse_load() -> None:
    assert parse_load("sequential") == LoadSpec()
    assert parse_load("c8").concurrency == 8 and parse_load("c8").name == "c8"
    assert parse_load("concurrency=3").concurrency == 3
    assert parse_load("sweep").sweep_cap == 8 and parse_load("sweep:16").name == "sweep16"
    poisson = parse_load("rate=2.5")
    assert poisson.mode == "rate" and poisson.rate == 2.5 and poisson.name == "poisson2.5"
    gamma = parse_load("gamma:4:0.5")
    assert gamma.arrival == "gamma" and gamma.burstiness == 0.5 and gamma.name == "gamma4b0.5"
    for bad in ("c0", "rate=0", "fast", "gamma:1"):
        with pytest.raises(ValueError):
            parse_load(bad)


def test_sweep_levels() -> None:
    assert sweep_levels(8) == [1, 2, 4, 8]
    assert sweep_levels(12) == [1, 2, 4, 8, 12]
    assert sweep_levels(1) == [1]


@pytest.mark.parametrize("concurrency", [1, 3, 8])
async def test_fixed_concurrency_is_held(concurrency: int) -> None:
    in_flight = 0
    peak = 0

    async def send(i: int) -> int:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        for _ in range(1 + i % 3):  # requests of different lengths
            await asyncio.sleep(0)
        in_flight -= 1
        return i

    result = await run_load(send, LoadSpec(concurrency=concurrency), requests=20)
    assert peak == concurrency and result.max_in_flight == concurrency
    assert [s.value for s in result.sent] == list(range(20))
    assert result.stopped_by == "count"


async def test_duration_stops_a_closed_loop() -> None:
    clock = VirtualClock()

    async def send(i: int) -> int:
        await clock.sleep(1.0)
        return i

    result = await run_load(
        send, LoadSpec(concurrency=2), duration_s=5.0, clock=clock, sleep=clock.sleep
    )
    assert result.stopped_by == "duration"
    assert all(s.started_s < 5.0 for s in result.sent)
    assert 2 <= len(result.sent) <= 12


def test_poisson_schedule_rate_and_dispersion() -> None:
    times = np.asarray(arrival_times(4.0, 4001, seed=1))
    gaps = np.diff(times)
    assert times[0] == 0
    assert 4000 / times[-1] == pytest.approx(4.0, rel=0.05)
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, rel=0.1)  # exponential: CV 1
    assert arrival_times(4.0, 10, seed=1) == arrival_times(4.0, 10, seed=1)


@pytest.mark.parametrize("burstiness", [0.25, 4.0])
def test_gamma_schedule_burstiness(burstiness: float) -> None:
    gaps = np.diff(arrival_times(2.0, 4001, arrival="gamma", burstiness=burstiness, seed=3))
    assert gaps.mean() == pytest.approx(0.5, rel=0.1)
    assert gaps.std() / gaps.mean() == pytest.approx(1 / np.sqrt(burstiness), rel=0.1)


async def test_open_loop_starts_on_schedule_whatever_is_in_flight() -> None:
    clock = VirtualClock()
    release = asyncio.Event()

    async def send(i: int) -> int:
        await release.wait()  # nothing finishes until every request has started
        return i

    async def open_gate() -> None:
        while len(started) < 50:
            await asyncio.sleep(0)
        release.set()

    started: list[int] = []

    async def tracked(i: int) -> int:
        started.append(i)
        return await send(i)

    gate = asyncio.ensure_future(open_gate())
    spec = LoadSpec(mode="rate", rate=5.0)
    result = await run_load(tracked, spec, requests=50, seed=2, clock=clock, sleep=clock.sleep)
    await gate
    schedule = arrival_times(5.0, 50, seed=2)
    assert [s.started_s for s in result.sent] == pytest.approx(schedule)
    assert [s.scheduled_s for s in result.sent] == pytest.approx(schedule)
    assert result.max_in_flight == 50  # open loop: nobody waited for a free slot
    assert result.asked_rate == 5.0
    assert result.achieved_rate == pytest.approx(result.schedule_rate)
    assert result.schedule_rate == pytest.approx(49 / schedule[-1])


async def test_open_loop_duration_cuts_the_schedule() -> None:
    clock = VirtualClock()

    async def send(i: int) -> int:
        return i

    spec = LoadSpec(mode="rate", rate=10.0)
    result = await run_load(send, spec, duration_s=3.0, seed=5, clock=clock, sleep=clock.sleep)
    assert result.sent and all(s.scheduled_s < 3.0 for s in result.sent)
    assert result.stopped_by == "duration"
    assert len(result.sent) == sum(t < 3.0 for t in arrival_times(10.0, 70, seed=5))
