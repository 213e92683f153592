"""`parity watch`: `parity run` now and then every interval, rolling medians over a window,
and a regression against the window's baseline run as an exit code and a webhook alert."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from parity.accuracy.probe import DEFAULT_REFERENCE_REPEATS
from parity.cli.common import (
    DEFAULT_DB,
    ConformanceOption,
    DbOption,
    MarginOption,
    ReferenceRepeats,
    RepeatsOption,
    SpeedRequests,
    SuiteOption,
    VantageOption,
    err,
    exit_with,
    json_option,
    out,
    write_json,
)
from parity.core.errors import ConfigError, RunInterrupted
from parity.core.plan import RunOptions, RunPlan

WEBHOOK_ENV = "PARITY_WEBHOOK"


def watch(
    providers_file: Annotated[Path, typer.Argument(help="Providers TOML file, as parity run.")],
    db: DbOption = DEFAULT_DB,
    vantage: VantageOption = None,
    every: Annotated[
        str,
        typer.Option(
            metavar="DURATION",
            help="Run again this long after each run started: 30s, 15m, 8h, 1d, 1h30m.",
        ),
    ] = "8h",
    window: Annotated[
        str,
        typer.Option(
            metavar="DURATION",
            help="Rolling medians over the finished runs of this providers file created in "
            "the last DURATION (72h: Artificial Analysis's window).",
        ),
    ] = "72h",
    once: Annotated[
        bool,
        typer.Option(
            "--once",
            help="One cycle, then exit: 1 on a regression, 0 otherwise (for cron, systemd "
            "timers, Kubernetes CronJobs).",
        ),
    ] = False,
    max_runs: Annotated[
        int | None,
        typer.Option(min=1, metavar="N", help="Stop after N cycles (default: run until stopped)."),
    ] = None,
    baseline: Annotated[
        str,
        typer.Option(
            help="What the newest run is compared with: previous (the window's run before "
            "it) or oldest (the window's first run)."
        ),
    ] = "previous",
    webhook: Annotated[
        str | None,
        typer.Option(
            metavar="URL",
            envvar=WEBHOOK_ENV,
            show_envvar=True,
            help="POST a JSON alert here on a regression (the URL is never printed: it "
            "may hold a token).",
        ),
    ] = None,
    suite: SuiteOption = "easy",
    repeats: RepeatsOption = 2,
    reference_repeats: ReferenceRepeats = DEFAULT_REFERENCE_REPEATS,
    speed_requests: SpeedRequests = 5,
    margin: MarginOption = 0.03,
    conformance: ConformanceOption = True,
    json_out: Annotated[
        Path | None,
        json_option(
            "After each cycle, write the rolling medians, the baseline, the regressions "
            "and the alerts here (JSON)."
        ),
    ] = None,
    html_out: Annotated[
        Path | None,
        typer.Option(
            "--html", help="After each cycle, write the rolling medians as an HTML page here."
        ),
    ] = None,
    markdown_out: Annotated[
        Path | None,
        typer.Option(
            "--markdown", help="After each cycle, write the rolling medians as Markdown here."
        ),
    ] = None,
) -> None:
    """Run `parity run` on PROVIDERS_FILE now and then every --every, appending each run to
    the store; after each, print the rolling medians per provider over the last --window
    (TTFT, output speed, accuracy, price, run cost, conformance passed; each with a
    confidence interval and its number of runs), and diff the run against the window's
    baseline with `parity diff`'s statistics. A regression is printed, POSTed to --webhook
    and makes --once (and --max-runs) exit 1. Ctrl-C or SIGTERM stops it between runs or
    during one (that run is marked interrupted); exit 130 or 143.
    """
    from parity.core.config import load_providers
    from parity.core.session import print_leaderboard
    from parity.core.watch import WatchCycle, parse_duration, run_cycle, run_every
    from parity.core.webhook import check_url, post_alert
    from parity.report.figures import Figures
    from parity.report.history_table import print_diff
    from parity.report.rolling import BASELINES
    from parity.report.rolling_table import rolling_html, rolling_markdown, rolling_table

    every_s = parse_duration(every, "--every")
    window_s = parse_duration(window, "--window")
    if baseline not in BASELINES:
        raise ConfigError(f"--baseline: {baseline!r} is not one of {', '.join(BASELINES)}")
    if webhook is not None:
        check_url(webhook)
    load_providers(providers_file)  # a bad file is refused now, not at the first cycle
    options = RunOptions(
        suite=suite,
        repeats=repeats,
        reference_repeats=reference_repeats,
        speed_requests=speed_requests,
        margin=margin,
        conformance=conformance,
    )
    RunPlan.resolve(options)  # a bad suite too
    cache: dict[str, list[Figures]] = {}
    cycles: list[WatchCycle] = []

    def cycle(number: int) -> None:
        try:
            done = run_cycle(
                number,
                providers_file,
                db,
                options,
                window_s,
                baseline=baseline,
                console=err,
                cache=cache,
            )
        except RunInterrupted as exc:
            stopped = RunInterrupted(f"watch stopped during cycle {number}: {exc}")
            stopped.exit_code = exc.exit_code
            raise stopped from None
        cycles.append(done)
        print_leaderboard(db, done.run.run_id, done.plan, out, done.run.providers)
        out.print(rolling_table(done.rolling))
        if done.diff is not None:
            out.print(f"run {done.run.run_id} against baseline {done.baseline}:", highlight=False)
            print_diff(out, done.diff)
        else:
            out.print("no baseline run in the window yet: nothing to compare", highlight=False)
        if done.regression and webhook is not None:
            failure = post_alert(webhook, done.payload())
            err.print(
                f"parity watch: {failure}" if failure else "parity watch: alert posted",
                highlight=False,
                markup=False,
            )
        if json_out is not None:
            write_json(json_out, json.dumps(done.to_dict(), indent=2, default=str))
        if markdown_out is not None:
            _write_text(markdown_out, rolling_markdown(done.rolling))
        if html_out is not None:
            _write_text(html_out, rolling_html(done.rolling))

    try:
        run_every(cycle, every_s, 1 if once else max_runs)
    except KeyboardInterrupt as exc:
        from parity.core.lifecycle import Terminated

        last = f"; the last: run {cycles[-1].run.run_id}" if cycles else ""
        stopped = RunInterrupted(f"watch stopped between runs after {len(cycles)} run(s){last}")
        stopped.exit_code = 143 if isinstance(exc, Terminated) else 130
        raise stopped from None
    exit_with(1 if any(c.regression for c in cycles) else 0)


def _write_text(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write ({exc.strerror})") from None
    err.print(f"wrote {path}", highlight=False)
