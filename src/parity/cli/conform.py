"""`parity conform`: the conformance suite on every provider, or `--matrix` to prove it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from parity.cli.common import (
    DEFAULT_DB,
    ApiKeyEnv,
    BaseUrl,
    DbOption,
    HtmlOut,
    JsonOut,
    JunitOut,
    MarkdownOut,
    MaxTime,
    ModelName,
    ReferenceModel,
    ReferenceUrl,
    VantageOption,
    err,
    exit_with,
    load_target,
    out,
    write_reports,
)
from parity.conformance.run import conform_options, failed_required, preview, run_conform
from parity.core.errors import ConfigError
from parity.core.plan import RunOptions, RunPlan
from parity.core.session import load_run_for_resume


def conform(
    providers_file: Annotated[
        Path | None,
        typer.Argument(help="Providers TOML file (not with --matrix; optional with --resume)."),
    ] = None,
    checks: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated families or check ids (e.g. tools,params.seed); default all."
        ),
    ] = None,
    tries: Annotated[
        int, typer.Option(min=1, max=100, help="Tries per tool-call case (pass@k, pass^k).")
    ] = 1,
    db: DbOption = DEFAULT_DB,
    vantage: VantageOption = None,
    resume: Annotated[str | None, typer.Option(help="Continue an interrupted conform run.")] = None,
    matrix: Annotated[
        bool,
        typer.Option(
            "--matrix",
            help="Prove the checks instead: run them against a clean reference, a second "
            "reference (A/A) and one fault-injecting proxy per fault; print check x fault.",
        ),
    ] = False,
    upstream: Annotated[
        str,
        typer.Option(
            help="--matrix: scripted (fast), llama (the real local server), vllm, or both "
            "(scripted + llama)."
        ),
    ] = "both",
    json_out: JsonOut = None,
    junit_out: JunitOut = None,
    html_out: HtmlOut = None,
    markdown_out: MarkdownOut = None,
    max_time: MaxTime = None,
    base_url: BaseUrl = None,
    model: ModelName = None,
    api_key_env: ApiKeyEnv = None,
    reference_url: ReferenceUrl = None,
    reference_model: ReferenceModel = None,
) -> None:
    """Conformance: tool calls, reasoning, sampling parameters, structured output, streaming,
    token accounting, context window and errors, on every provider in PROVIDERS_FILE.

    Prints each check's cost first (about 105 mostly short requests per provider at --tries
    1, one of them a document filling 90% of the advertised context window), then a check x
    provider table and what was spent. Checks that set their bar from the reference are
    n/a without one. Exit code 1 when a required check fails on any provider, and 1 too
    when a provider is unreachable or unavailable (its checks are errors, not failures).
    """

    selection = [c.strip() for c in checks.split(",") if c.strip()] if checks else None
    if matrix:
        from parity.conformance.matrix import matrix_markdown, print_matrix, run_matrix

        if providers_file is not None or resume:
            raise ConfigError("--matrix starts its own servers: give no providers file")
        result = run_matrix(upstream, selection, console=err)
        print_matrix(result, out)
        if markdown_out is not None:
            markdown_out.write_text(matrix_markdown(result), encoding="utf-8")
        exit_with(0 if result.holds else 1)
    if resume:
        providers, stored, run_id = load_run_for_resume(db, resume, providers_file, "conform")
        options = RunOptions(**{**stored, "max_time_s": max_time})
    else:
        providers = load_target(
            providers_file, base_url, model, api_key_env, reference_url, reference_model
        )
        options = conform_options(selection, tries).model_copy(update={"max_time_s": max_time})
        run_id = None
    plan = RunPlan.resolve(options)
    preview(providers, plan, err)
    run_id, results = run_conform(db, providers, plan, providers_file, run_id, out, err)
    write_reports(
        db,
        run_id,
        json_path=json_out,
        csv_path=None,
        html_path=html_out,
        junit_path=junit_out,
        markdown_path=markdown_out,
    )
    exit_with(1 if failed_required(results) else 0)
