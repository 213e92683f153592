"""`parity watch` minus the parsing: durations such as `8h`; one cycle (a `parity run`, the
rolling medians over the window, the diff against the baseline run); and the loop that runs
a cycle now and then one every interval, until a number of cycles or a signal stops it.

Printing and posting the alert are the caller's. Ctrl-C and SIGTERM (see
`core.lifecycle.interrupt_on_sigterm`) raise where the process is, in a cycle or in the
wait between two, and end the loop there.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from parity.core.dburl import Db
from parity.core.errors import ConfigError
from parity.core.plan import RunOptions, RunPlan

if TYPE_CHECKING:
    from rich.console import Console

    from parity.api import RunResult
    from parity.report.figures import Figures
    from parity.report.model import DiffResult
    from parity.report.rolling import Alert, Rolling

__all__ = ["UNITS", "WatchCycle", "parse_duration", "run_cycle", "run_every"]

UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
"""Duration units: seconds, minutes, hours, days."""

_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")


def parse_duration(text: str, option: str = "duration") -> float:
    """Seconds in `text`: one or more number-unit pairs (`30s`, `15m`, `8h`, `1d`, `1h30m`).
    Raises a one-line `ConfigError` naming `option` for anything else, or for zero."""
    value = text.strip().lower()
    parts = _PART.findall(value)
    if not value or "".join(n + u for n, u in parts) != value:
        raise ConfigError(f"{option}: {text!r} is not a duration (like 30s, 15m, 8h, 1d)")
    seconds = sum(float(n) * UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise ConfigError(f"{option}: {text!r} must be longer than zero")
    return seconds


def run_every(
    cycle: Callable[[int], None],
    every_s: float,
    max_runs: int | None = None,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Call `cycle(1)` now, then `cycle(2)`, ... each `every_s` seconds after the previous
    one started (at once when a cycle took longer than that), until `max_runs` cycles have
    run (None: forever). Returns the number of cycles run; an exception from a cycle or a
    signal in the wait ends the loop and goes on up."""
    done = 0
    while max_runs is None or done < max_runs:
        started = clock()
        cycle(done + 1)
        done += 1
        if max_runs is not None and done >= max_runs:
            break
        wait = started + every_s - clock()
        if wait > 0:
            sleep(wait)
    return done


@dataclass(frozen=True)
class WatchCycle:
    """One cycle of `parity watch`: its number (from 1), the run it measured, the rolling
    medians after it, the run it was compared with (`baseline`, None for the first) and
    what `report.history.diff` found, as lines (`diff`) and as records (`alerts`)."""

    number: int
    run: RunResult
    plan: RunPlan
    source: str
    rolling: Rolling
    baseline: str | None
    diff: DiffResult | None
    alerts: list[Alert]

    @property
    def regression(self) -> bool:
        """True when the diff against the baseline found a regression."""
        return bool(self.diff and self.diff["regressions"])

    def payload(self) -> dict[str, Any]:
        """The webhook's JSON: the alerts (provider, metric, before, after, verdict, run
        ids, detail), the regression lines, and `text` (one line, what chat webhooks show)."""
        lines = self.diff["regressions"] if self.diff else []
        return {
            "event": "watch.regression",
            "text": f"parity watch: {len(lines)} regression(s) in run {self.run.run_id} "
            f"against {self.baseline} ({self.source}): " + "; ".join(lines),
            "providers_file": self.source,
            "run_a": self.baseline,
            "run_b": self.run.run_id,
            "alerts": [a.to_dict() for a in self.alerts],
            "regressions": lines,
        }

    def to_dict(self) -> dict[str, Any]:
        """What `--json` writes after each cycle: the rolling medians, the run, the
        baseline, the diff's regression and change lines, and the alerts."""
        return {
            "cycle": self.number,
            "run_id": self.run.run_id,
            "baseline": self.baseline,
            "regression": self.regression,
            "regressions": self.diff["regressions"] if self.diff else [],
            "changes": self.diff["changes"] if self.diff else [],
            "alerts": [a.to_dict() for a in self.alerts],
            "rolling": self.rolling.to_dict(),
        }


def run_cycle(
    number: int,
    providers_file: Path,
    db: Db,
    options: RunOptions,
    window_s: float,
    *,
    baseline: str = "previous",
    console: Console | None = None,
    cache: MutableMapping[str, list[Figures]] | None = None,
) -> WatchCycle:
    """Run `parity run` on `providers_file` once (a new run in `db`), then compute the
    rolling medians over the last `window_s` seconds of that file's finished runs, and diff
    the new run against its `baseline` in the window ("previous" or "oldest"; see
    `report.rolling.baseline_run`). The providers file is read again each cycle (keys
    too), so edits between cycles count. Ctrl-C or SIGTERM during the run marks it
    interrupted and raises `RunInterrupted`, as `parity run` does."""
    from parity import api
    from parity.core.store import Store
    from parity.report.history import diff
    from parity.report.rolling import alerts, baseline_run, rolling, window_runs

    source = str(providers_file.resolve())
    result = api.run(
        providers_file, db=db, console=console, source=Path(source), **options.model_dump()
    )
    now = time.time()
    with Store(db) as store:
        rolled = rolling(store, source, window_s, now, cache=cache)
        newest = store.run(result.run_id)
        base = None
        if newest is not None:
            base = baseline_run(window_runs(store, source, window_s, now), newest, baseline)
        found = diff(store, base, result.run_id) if base is not None else None
    return WatchCycle(
        number=number,
        run=result,
        plan=RunPlan.resolve(options),
        source=source,
        rolling=rolled,
        baseline=base,
        diff=found,
        alerts=alerts(found) if found is not None else [],
    )
