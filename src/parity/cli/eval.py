"""`parity eval`: accuracy on a suite, repeated, with intervals and a verdict vs the reference."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from parity import api
from parity.accuracy.evaluate import EvalOptions
from parity.accuracy.probe import DEFAULT_REFERENCE_REPEATS
from parity.accuracy.run import check_suite, print_eval
from parity.cli.common import (
    DEFAULT_DB,
    ApiKeyEnv,
    BaseUrl,
    CsvOut,
    DbOption,
    HtmlOut,
    InspectLogOut,
    JunitOut,
    LmEvalOut,
    MarkdownOut,
    MaxTime,
    ModelName,
    ReferenceModel,
    ReferenceRepeats,
    ReferenceUrl,
    VantageOption,
    err,
    exit_with,
    json_option,
    load_target,
    out,
    write_foreign,
    write_reports,
)
from parity.core.errors import ConfigError
from parity.core.session import load_run_for_resume


def eval_command(
    providers_file: Annotated[
        Path | None, typer.Argument(help="Providers TOML file (optional with --resume).")
    ] = None,
    suite: Annotated[
        str,
        typer.Option(
            help="easy, aime2025, gsm8k, a suite file (.jsonl, .json, .csv, .parquet, .arrow, "
            ".toml, .py) or a data set folder; NAME:N takes N."
        ),
    ] = "easy",
    field: Annotated[
        list[str] | None,
        typer.Option(
            "--field",
            metavar="FIELD=COLUMN",
            help="Suite files: which column is a parity field (id, input, target, choices), "
            "e.g. --field input=question --field target=answer; repeatable.",
        ),
    ] = None,
    scorer: Annotated[
        str | None,
        typer.Option(
            help="Suite files: the default scorer (numeric, math, exact, regex, "
            "multiple_choice, ...)."
        ),
    ] = None,
    few_shot: Annotated[
        int | None,
        typer.Option(
            min=0, help="Suite files: ask N rows of the file before each problem (not asked)."
        ),
    ] = None,
    few_shot_seed: Annotated[
        int | None, typer.Option(help="Suite files: seed drawing the few-shot rows (0).")
    ] = None,
    split: Annotated[
        str | None,
        typer.Option(help="Data set folders: the split (default test, else the only one)."),
    ] = None,
    template: Annotated[
        str | None,
        typer.Option(
            help="Suite files: the prompt, a str.format template over the row's columns, "
            "{input} and {choices}."
        ),
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Use N problems (seeded).")] = None,
    repeats: Annotated[
        int, typer.Option(min=1, help="Samples per problem (fixed), or the adaptive cap.")
    ] = 4,
    reference_repeats: ReferenceRepeats = DEFAULT_REFERENCE_REPEATS,
    adaptive: Annotated[
        bool,
        typer.Option(
            "--adaptive/--fixed",
            help="Adaptive: stop each provider once its verdict is decided (needs a reference). "
            "Fixed: every problem x repeats.",
        ),
    ] = True,
    margin: Annotated[float, typer.Option(help="Equivalence margin (0.03 = 3 points).")] = 0.03,
    round_pairs: Annotated[
        int, typer.Option(min=1, help="Adaptive: pairs per round (decisions after each round).")
    ] = 16,
    budget_tokens: Annotated[
        int | None, typer.Option(help="Stop a provider after this many tokens.")
    ] = None,
    budget_usd: Annotated[
        float | None, typer.Option(help="Stop a provider after this many $.")
    ] = None,
    temperature: Annotated[float | None, typer.Option(help="Override the suite's.")] = None,
    top_p: Annotated[float | None, typer.Option(help="Override the suite's.")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="Override the suite's.")] = None,
    reasoning_effort: Annotated[
        str | None, typer.Option(help="Send reasoning_effort (low, medium, high).")
    ] = None,
    system_prompt: Annotated[
        str | None, typer.Option(help="System message for every problem.")
    ] = None,
    cache: Annotated[
        bool, typer.Option(help="Reuse stored responses to identical requests: a rerun spends 0.")
    ] = False,
    db: DbOption = DEFAULT_DB,
    vantage: VantageOption = None,
    resume: Annotated[str | None, typer.Option(help="Continue an interrupted eval run.")] = None,
    json_out: Annotated[
        Path | None, json_option("Write the results here (the report model; 'run' is the run id).")
    ] = None,
    csv_out: CsvOut = None,
    html_out: HtmlOut = None,
    junit_out: JunitOut = None,
    markdown_out: MarkdownOut = None,
    inspect_log: InspectLogOut = None,
    lm_eval: LmEvalOut = None,
    max_time: MaxTime = None,
    base_url: BaseUrl = None,
    model: ModelName = None,
    api_key_env: ApiKeyEnv = None,
    reference_url: ReferenceUrl = None,
    reference_model: ReferenceModel = None,
) -> None:
    """Accuracy on a suite, repeated, with confidence intervals and a verdict vs the reference.

    Adaptive (default with a reference): pairs of samples in rounds of 16, the same problems
    and seeds at every provider; each provider stops when its anytime-valid interval decides
    the verdict, at its budget, or at the fixed design's size (problems x repeats). Cost: at
    most problems x repeats samples per provider (easy: 80 x 4 = 320 short requests), usually
    far fewer. Exit code 1 when a provider is degraded.
    """
    if resume:
        providers, stored, run_id = load_run_for_resume(db, resume, providers_file, "eval")
        options = EvalOptions(**{**stored, "max_time_s": max_time})
    else:
        providers = load_target(
            providers_file, base_url, model, api_key_env, reference_url, reference_model
        )
        sampling = {
            k: v
            for k, v in {
                "temperature": temperature,
                "top_p": top_p,
                "max_tokens": max_tokens,
                "reasoning_effort": reasoning_effort,
            }.items()
            if v is not None
        }
        options = EvalOptions(
            suite=suite,
            limit=limit,
            repeats=repeats,
            reference_repeats=reference_repeats,
            adaptive=adaptive,
            margin=margin,
            round_pairs=round_pairs,
            budget_tokens=budget_tokens,
            budget_usd=budget_usd,
            sampling=sampling,
            system_prompt=system_prompt,
            cache=cache,
            max_time_s=max_time,
            fields=parse_fields(field or []),
            scorer=scorer,
            few_shot=few_shot,
            few_shot_seed=few_shot_seed,
            split=split,
            template=template,
        )
        check_suite(options)
        run_id = None
    result = api.evaluate(
        providers, db=db, resume=run_id, console=err, source=providers_file,
        **options.model_dump(),
    )  # fmt: skip
    run_id, results = result.run_id, result.providers
    print_eval(results, run_id, options, out)
    write_reports(
        db,
        run_id,
        json_path=json_out,
        csv_path=csv_out,
        html_path=html_out,
        junit_path=junit_out,
        markdown_path=markdown_out,
        eval_=True,
    )
    write_foreign(db, run_id, inspect_log=inspect_log, lm_eval=lm_eval)
    exit_with(1 if result.failed else 0)


def parse_fields(values: list[str]) -> dict[str, str]:
    """`--field FIELD=COLUMN` values as a mapping; a value without '=' is a `ConfigError`."""
    fields: dict[str, str] = {}
    for value in values:
        name, sep, column = value.partition("=")
        if not sep or not name.strip() or not column.strip():
            raise ConfigError(f"--field {value!r}: write FIELD=COLUMN, e.g. input=question")
        fields[name.strip()] = column.strip()
    return fields
