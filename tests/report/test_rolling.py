"""Rolling medians of `parity watch` on a real SQLite store filled with runs at chosen
times (synthetic exchanges, as `test_history` builds them): which runs the window holds,
the medians and their order-statistic intervals, the baseline, and the alerts a diff gives."""

from __future__ import annotations

import inspect
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from parity.core.plan import RunOptions, plan_requests
from parity.core.store import Store
from parity.report.history import diff
from parity.report.rolling import (
    METRICS,
    ProviderRolling,
    Rolling,
    alerts,
    baseline_run,
    median_interval,
    rolling,
    window_runs,
)
from parity.report.rolling_table import rolling_html, rolling_markdown
from tests.report.test_history import (
    OPTIONS,
    Behaviour,
    accuracy_reply,
    other_reply,
    provider,
    speed_reply,
)

HOUR = 3600.0
NOW = 1_800_000_000.0  # any fixed time: the window is measured back from it
SOURCE = "providers.toml"


@contextmanager
def clock(at: float) -> Iterator[None]:
    """time.time() reads `at` meanwhile: the store stamps the run with it."""
    real = time.time
    time.time = lambda: at  # type: ignore[assignment]
    try:
        yield
    finally:
        time.time = real  # type: ignore[assignment]


def stored_run(
    store: Store,
    behaviours: dict[str, Behaviour],
    at: float,
    *,
    source: str | None = SOURCE,
    status: str = "finished",
    kind: str = "run",
    options: RunOptions = OPTIONS,
    vantage: str | None = None,
) -> str:
    """A run created at `at` from providers file `source` (measured from `vantage`, when
    given), ended with `status`; the first provider is the reference."""
    where = {"vantage": vantage} if vantage else {}
    with clock(at):
        run_id = store.create_run(kind, source, options.model_dump(), "test", **where)
        for i, (name, b) in enumerate(behaviours.items()):
            p = provider(name, reference=i == 0)
            store.add_provider(run_id, name, p.public_dict())
            store.set_reachability(run_id, name, b.reachable, "ok" if b.reachable else "refused")
            if not b.reachable:
                continue
            for req in plan_requests(run_id, p, options):
                if req.key.startswith("accuracy/"):
                    x = accuracy_reply(req.body, req.key, b)
                elif req.key.startswith("speed/") and req.key != "speed/warmup":
                    x = speed_reply(req.body, int(req.key.split("/")[1]), b)
                else:
                    x = other_reply(req.body, req.key, req.stream, b)
                store.add_exchange(run_id, name, req.probe, req.key, x)
        store.finish_run(run_id, status)
    return run_id


def both(ttft_ms: float, right: float = 0.9, reachable: bool = True) -> dict[str, Behaviour]:
    return {"ref": Behaviour(), "x": Behaviour(right=right, ttft_ms=ttft_ms, reachable=reachable)}


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    db = tmp_path_factory.mktemp("rolling") / "p.db"
    with Store(db) as store:
        ids = {
            "too old": stored_run(store, both(900), NOW - 80 * HOUR),
            "h70": stored_run(store, both(100, 0.9), NOW - 70 * HOUR),
            "h40": stored_run(store, both(140, 0.8), NOW - 40 * HOUR),
            "h10": stored_run(store, both(120, 0.9), NOW - 10 * HOUR),
            "interrupted": stored_run(store, both(900), NOW - 3 * HOUR, status="interrupted"),
            "other file": stored_run(store, both(900), NOW - 2 * HOUR, source="other.toml"),
            "h1": stored_run(store, both(160, 0.5), NOW - 1 * HOUR),
            "future": stored_run(store, both(900), NOW + HOUR),
        }
    return db, ids


def test_the_window_holds_the_finished_runs_of_that_file_in_it(
    store_path: tuple[Path, dict[str, str]],
) -> None:
    db, ids = store_path
    with Store(db) as store:
        runs = window_runs(store, SOURCE, 72 * HOUR, NOW)
        rolled = rolling(store, SOURCE, 72 * HOUR, NOW)
        short = rolling(store, SOURCE, 12 * HOUR, NOW)
    expected = [ids["h70"], ids["h40"], ids["h10"], ids["h1"]]
    assert [r.id for r in runs] == expected
    assert rolled.run_ids == expected
    assert short.run_ids == [ids["h10"], ids["h1"]]
    assert (rolled.since, rolled.now) == (NOW - 72 * HOUR, NOW)


def test_medians_and_their_intervals_rest_on_the_window_runs(
    store_path: tuple[Path, dict[str, str]],
) -> None:
    db, _ = store_path
    with Store(db) as store:
        rolled = rolling(store, SOURCE, 72 * HOUR, NOW)
    by_name = {p.provider: p for p in rolled.providers}
    x = by_name["x"]
    assert (x.runs, x.unreachable, x.reference, by_name["ref"].reference) == (4, 0, False, True)
    # Each run's TTFT p50 is its ttft + 2 ms (five requests, i ms of jitter each).
    ttft = x.metrics["ttft_p50_ms"]
    assert ttft.median == pytest.approx(132.0) and ttft.n == 4
    assert (ttft.low, ttft.high) == (pytest.approx(102.0), pytest.approx(162.0))
    assert ttft.coverage == pytest.approx(1 - 2**-3)  # four runs: [min, max], 87.5%
    accuracy = x.metrics["accuracy"]
    assert accuracy.median == pytest.approx(0.85)
    assert (accuracy.low, accuracy.high) == (pytest.approx(0.5), pytest.approx(0.9))
    assert x.metrics["price_blended"].median == pytest.approx(0.175)  # 3:1 of 0.1 and 0.4
    assert x.metrics["conformance_passed"].n == 4
    assert sum(x.verdicts.values()) == 4
    assert by_name["ref"].metrics["accuracy"].median == pytest.approx(0.9)
    markdown = rolling_markdown(rolled)
    [row] = [line for line in markdown.splitlines() if line.startswith("| x")]  # "x @ host"
    assert "| 4 | 132 ms [102 ms, 162 ms] |" in row


def test_an_unreachable_run_counts_in_runs_not_in_the_figures(tmp_path: Path) -> None:
    with Store(tmp_path / "p.db") as store:
        stored_run(store, both(100), NOW - 2 * HOUR)
        stored_run(store, both(100, reachable=False), NOW - HOUR)
        rolled = rolling(store, SOURCE, 72 * HOUR, NOW)
    x = next(p for p in rolled.providers if p.provider == "x")
    assert (x.runs, x.unreachable) == (2, 1)
    assert x.metrics["ttft_p50_ms"].n == 1 and x.metrics["ttft_p50_ms"].low is None
    assert x.verdicts.get("unreachable") == 1


def test_the_baseline_is_the_previous_or_the_oldest_run_of_the_window(
    store_path: tuple[Path, dict[str, str]],
) -> None:
    db, ids = store_path
    with Store(db) as store:
        runs = window_runs(store, SOURCE, 72 * HOUR, NOW)
    newest = runs[-1]
    assert baseline_run(runs, newest) == ids["h10"]
    assert baseline_run(runs, newest, "oldest") == ids["h70"]
    assert baseline_run(runs[:1], runs[0]) is None
    with pytest.raises(ValueError, match="unknown baseline"):
        baseline_run(runs, newest, "best")


def test_alerts_are_the_diff_regressions_as_records(tmp_path: Path) -> None:
    with Store(tmp_path / "p.db") as store:
        a = stored_run(store, both(100, 0.9), NOW - 2 * HOUR)
        b = stored_run(store, both(300, 0.3), NOW - HOUR)
        down = stored_run(store, both(100, reachable=False), NOW)
        result = diff(store, a, b)
        gone = diff(store, a, down)
    found = alerts(result)
    assert [x.detail for x in found] == result["regressions"]
    by_metric = {x.metric: x for x in found}
    accuracy = by_metric["accuracy"]
    assert (accuracy.provider, accuracy.run_a, accuracy.run_b) == ("x", a, b)
    assert accuracy.before == pytest.approx(0.9) and accuracy.after == pytest.approx(0.3)
    assert accuracy.verdict == "degraded" and accuracy.p_value is not None
    ttft = by_metric["ttft_ms"]
    assert ttft.verdict == "slower" and ttft.after > ttft.before
    assert by_metric["verdict"].after == "degraded"
    [unreachable] = alerts(gone)
    assert (unreachable.metric, unreachable.before, unreachable.after) == ("reachable", True, False)
    assert unreachable.detail == gone["regressions"][0]


@pytest.mark.skipif(
    "vantage" not in inspect.signature(Store.create_run).parameters,
    reason="this store records no vantage",
)
def test_runs_from_each_vantage_are_summarised_and_compared_apart(tmp_path: Path) -> None:
    with Store(tmp_path / "p.db") as store:
        eu = [stored_run(store, both(100 + i), NOW - (5 - i) * HOUR, vantage="eu") for i in (0, 2)]
        us = [stored_run(store, both(300 + i), NOW - (4 - i) * HOUR, vantage="us") for i in (0, 2)]
        rolled = rolling(store, SOURCE, 72 * HOUR, NOW)
        runs = window_runs(store, SOURCE, 72 * HOUR, NOW)
    by_key = {(p.provider, p.vantage): p for p in rolled.providers}
    assert set(by_key) == {("ref", "eu"), ("ref", "us"), ("x", "eu"), ("x", "us")}
    assert by_key["x", "eu"].runs == 2
    assert by_key["x", "eu"].metrics["ttft_p50_ms"].median == pytest.approx(103.0)
    assert by_key["x", "us"].metrics["ttft_p50_ms"].median == pytest.approx(303.0)
    newest_eu = next(r for r in runs if r.id == eu[-1])
    assert baseline_run(runs, newest_eu) == eu[0]  # not the us run created in between
    assert baseline_run(runs, runs[-1]) == us[0]


@pytest.mark.parametrize(
    ("n", "k", "coverage"),
    [(6, 1, 1 - 2 / 64), (9, 2, 1 - 2 * 10 / 512), (20, 6, 0.9586105), (50, 18, 0.9671)],
)
def test_the_interval_is_the_textbook_order_statistic_one(n: int, k: int, coverage: float) -> None:
    values = list(range(1, n + 1))
    m = median_interval(reversed(values))
    assert (m.low, m.high, m.n) == (k, n + 1 - k, n)
    assert m.coverage == pytest.approx(coverage, abs=1e-4)
    assert m.median == pytest.approx((n + 1) / 2)


def test_small_samples_say_their_real_coverage() -> None:
    assert median_interval([]).median is None
    one = median_interval([3.0])
    assert (one.median, one.low, one.high, one.coverage) == (3.0, None, None, None)
    five = median_interval([5, 1, 4, 2, 3])
    assert (five.low, five.high, five.coverage) == (1, 5, pytest.approx(0.9375))
    assert median_interval([1.0, float("nan"), 2.0]).n == 2


def test_the_interval_covers_the_median_as_often_as_it_says() -> None:
    rng = np.random.default_rng(7)
    samples = rng.lognormal(mean=5.0, sigma=0.5, size=(4000, 9))  # skewed, like latencies
    true_median = float(np.exp(5.0))
    hits = 0
    for row in samples:
        m = median_interval(row)
        hits += m.low is not None and m.high is not None and m.low <= true_median <= m.high
    # Exact coverage for n = 9 is 96.1%; 4,000 draws put 3 standard errors at 0.9%.
    assert hits / len(samples) == pytest.approx(1 - 2 * 10 / 512, abs=0.01)


def test_the_html_page_escapes_what_it_shows() -> None:
    hostile = "<script>alert(1)</script>"
    m = median_interval([1.0, 2.0, 3.0])
    rolled = Rolling(
        source=SOURCE,
        window_s=72 * HOUR,
        now=NOW,
        since=NOW - 72 * HOUR,
        confidence=0.95,
        run_ids=["r1", "r2", "r3"],
        providers=[ProviderRolling(hostile, hostile, False, 3, 0, dict.fromkeys(METRICS, m))],
    )
    page = rolling_html(rolled)
    assert hostile not in page and "&lt;script&gt;" in page
    assert page.count("<tr>") == 2 and "<td>2 ms [1 ms, 3 ms]</td>" in page
