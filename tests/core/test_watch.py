"""The schedule of `parity watch`: durations, and the loop's cadence on a stepped clock."""

from __future__ import annotations

import pytest

from parity.core.errors import ConfigError
from parity.core.watch import parse_duration, run_every


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("15m", 900), ("8h", 28800), ("1d", 86400), ("1h30m", 5400), ("0.5s", 0.5)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["8x", "8", "h", "", "8h 30m", "-1h", "1h-", "1.h"])
def test_a_bad_duration_is_one_line(text: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_duration(text, "--every")
    assert str(refused.value) == (f"--every: {text!r} is not a duration (like 30s, 15m, 8h, 1d)")


def test_a_zero_duration_is_refused() -> None:
    with pytest.raises(ConfigError, match="longer than zero"):
        parse_duration("0s", "--window")


class Clock:
    """A clock that moves only when the loop sleeps or a cycle says it took time."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_cycles_start_every_interval_after_the_last_one_started() -> None:
    clock = Clock()
    started: list[tuple[int, float]] = []
    took = {1: 2.0, 2: 15.0, 3: 1.0}

    def cycle(n: int) -> None:
        started.append((n, clock.now))
        clock.now += took.get(n, 0.0)

    assert run_every(cycle, 10.0, 4, clock=lambda: clock.now, sleep=clock.sleep) == 4
    # Cycle 2 took longer than the interval: cycle 3 starts at once, then the cadence goes on.
    assert started == [(1, 0.0), (2, 10.0), (3, 25.0), (4, 35.0)]
    assert clock.slept == [8.0, 9.0]  # no sleep after the last cycle


def test_a_signal_in_the_wait_ends_the_loop() -> None:
    runs: list[int] = []

    def interrupted(seconds: float) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_every(runs.append, 60.0, None, clock=lambda: 0.0, sleep=interrupted)
    assert runs == [1]
