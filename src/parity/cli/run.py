"""`parity run`: every pillar's core on every provider of a providers file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from parity import api
from parity.accuracy.probe import DEFAULT_REFERENCE_REPEATS
from parity.cli.common import (
    DEFAULT_DB,
    ApiKeyEnv,
    BaseUrl,
    ConformanceOption,
    CsvOut,
    DbOption,
    HtmlOut,
    JsonOut,
    JunitOut,
    MarginOption,
    MarkdownOut,
    MaxTime,
    ModelName,
    ReferenceModel,
    ReferenceRepeats,
    ReferenceUrl,
    RepeatsOption,
    SpeedRequests,
    SuiteOption,
    VantageOption,
    err,
    exit_with,
    load_target,
    out,
    write_reports,
)
from parity.core.plan import RunOptions, RunPlan
from parity.core.session import load_run_for_resume, print_leaderboard


def run(
    providers_file: Annotated[
        Path | None, typer.Argument(help="Providers TOML file (optional with --resume).")
    ] = None,
    db: DbOption = DEFAULT_DB,
    vantage: VantageOption = None,
    resume: Annotated[
        str | None,
        typer.Option(help="Continue an interrupted run: sends only requests not yet stored."),
    ] = None,
    suite: SuiteOption = "easy",
    repeats: RepeatsOption = 2,
    reference_repeats: ReferenceRepeats = DEFAULT_REFERENCE_REPEATS,
    speed_requests: SpeedRequests = 5,
    margin: MarginOption = 0.03,
    conformance: ConformanceOption = True,
    json_out: JsonOut = None,
    csv_out: CsvOut = None,
    html_out: HtmlOut = None,
    junit_out: JunitOut = None,
    markdown_out: MarkdownOut = None,
    max_time: MaxTime = None,
    base_url: BaseUrl = None,
    model: ModelName = None,
    api_key_env: ApiKeyEnv = None,
    reference_url: ReferenceUrl = None,
    reference_model: ReferenceModel = None,
) -> None:
    """Measure every provider in PROVIDERS_FILE: speed, accuracy vs the reference, conformance.

    Cost per provider with the defaults: 5 streamed speed requests (<= 64 output tokens),
    80 problems x 2 repeats (<= 16 output tokens each), 20 requests for the core
    conformance checks (three of them one document filling 90% of the advertised context
    window; `parity conform` runs the full suite); about 185 requests and, for a ~4k
    context, ~16k tokens. Exit code 1 when a provider is degraded, fails a
    conformance check or is unreachable or unavailable (its checks are then errors, not
    failures).
    """
    if resume:
        providers, stored, run_id = load_run_for_resume(db, resume, providers_file, "run")
        options = RunOptions(**{**stored, "max_time_s": max_time})
    else:
        providers = load_target(
            providers_file, base_url, model, api_key_env, reference_url, reference_model
        )
        options = RunOptions(
            suite=suite,
            repeats=repeats,
            reference_repeats=reference_repeats,
            speed_requests=speed_requests,
            margin=margin,
            conformance=conformance,
            max_time_s=max_time,
        )
        run_id = None
    plan = RunPlan.resolve(options)
    result = api.run(
        providers,
        db=db,
        resume=run_id,
        console=err,
        source=providers_file,
        **options.model_dump(),
    )
    run_id = result.run_id
    print_leaderboard(db, run_id, plan, out, result.providers)
    write_reports(
        db,
        run_id,
        json_path=json_out,
        csv_path=csv_out,
        html_path=html_out,
        junit_path=junit_out,
        markdown_path=markdown_out,
    )
    exit_with(1 if result.failed else 0)
