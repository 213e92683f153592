"""`parity bench`: the speed and price pillar as a benchmark command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from parity import api
from parity.cli.common import (
    DEFAULT_DB,
    ApiKeyEnv,
    BaseUrl,
    DbOption,
    GuidellmCsvOut,
    GuidellmJsonOut,
    MaxTime,
    ModelName,
    ReferenceModel,
    ReferenceUrl,
    VantageOption,
    err,
    json_option,
    load_target,
)
from parity.cli.common import out as console
from parity.cli.common import (
    write_json as write_json_to,
)

__all__ = ["bench"]


def bench(
    providers_file: Annotated[
        Path | None, typer.Argument(help="Providers TOML file (or --base-url/--model).")
    ] = None,
    preset: Annotated[
        str,
        typer.Option(
            help="quick (the local fleet in about a minute), standard (1k/1k x 10), aa (the "
            "four Artificial Analysis shapes), sweep (concurrency 1..16), load (Poisson "
            "1/s for 60 s), fleet-sweep."
        ),
    ] = "quick",
    workload: Annotated[
        list[str] | None,
        typer.Option(
            help="100 (100 in/300 out), 1k, 10k, 100k, or IN/OUT such as 2000/16; repeatable. "
            "Replaces the preset's workloads."
        ),
    ] = None,
    load: Annotated[
        list[str] | None,
        typer.Option(
            help="sequential, cN (N in flight), sweep[:CAP] (1, 2, 4, ... CAP), rate=R "
            "(Poisson, R req/s) or gamma:R:B (burstiness B); repeatable."
        ),
    ] = None,
    requests: Annotated[
        int | None,
        typer.Option(min=0, help="Measured requests per workload x load (0: no limit)."),
    ] = None,
    duration: Annotated[
        float | None, typer.Option(min=0.1, help="Stop each workload x load after S seconds.")
    ] = None,
    warmup: Annotated[
        int | None, typer.Option(min=0, help="Warmup requests per step (not counted).")
    ] = None,
    slo: Annotated[
        list[str] | None,
        typer.Option(help="Goodput SLO, e.g. ttft<=1s, tpot<=50ms, e2e<=30s, speed>=20."),
    ] = None,
    only: Annotated[
        list[str] | None, typer.Option(help="Bench only this provider (repeatable).")
    ] = None,
    tokenizer: Annotated[
        str,
        typer.Option(
            help="auto (the local fleet's GGUF for its model), none, a .gguf file or a "
            "tokenizer directory: local token counts next to the server's."
        ),
    ] = "auto",
    temperature: Annotated[float | None, typer.Option(help="Sampling temperature.")] = None,
    retries: Annotated[
        int, typer.Option(min=0, help="Retries per request (0: every failure counts).")
    ] = 0,
    seed: Annotated[int, typer.Option(help="Seed of the open-loop arrival schedule.")] = 0,
    db: DbOption = DEFAULT_DB,
    vantage: VantageOption = None,
    out: Annotated[
        Path, typer.Option("--out", help="Folder for <run>.json, <run>.csv and <run>.svg.")
    ] = Path("parity-bench"),
    detail: Annotated[
        bool, typer.Option(help="Also print count/mean/p50/p90/p99/min/max of every metric.")
    ] = False,
    max_time: MaxTime = None,
    guidellm_json: GuidellmJsonOut = None,
    guidellm_csv: GuidellmCsvOut = None,
    json_out: Annotated[
        Path | None,
        json_option("Also write the whole report (the --out folder's JSON) here."),
    ] = None,
    base_url: BaseUrl = None,
    model: ModelName = None,
    api_key_env: ApiKeyEnv = None,
    reference_url: ReferenceUrl = None,
    reference_model: ReferenceModel = None,
) -> None:
    """Benchmark speed and price: TTFT, TTFAT, output speed, TPOT, ITL, E2E, throughput,
    goodput, token counts and cost, per provider, under a chosen workload and load.

    Providers are measured one after another. Every exchange is stored (run kind "bench");
    tables go to the terminal, and JSON, CSV and a speed-vs-price SVG to --out;
    --guidellm-json/--guidellm-csv also write the benchmarks under guidellm's metric names.
    """
    from parity.speed.report import print_report, write_csv, write_json, write_svg

    result = api.bench(
        load_target(providers_file, base_url, model, api_key_env, reference_url, reference_model),
        db=db,
        preset=preset,
        workloads=workload,
        loads=load,
        requests=requests,
        duration_s=duration,
        warmup=warmup,
        slos=slo or (),
        only=only,
        tokenizer=tokenizer,
        temperature=temperature,
        retries=retries,
        seed=seed,
        max_time_s=max_time,
        console=err,
        source=providers_file,
    )
    run_id, report, options = result.run_id, result.data, result.data["options"]
    print_report(report, console, detail=detail)
    paths = {ext: out / f"{run_id}.{ext}" for ext in ("json", "csv", "svg")}
    write_json(report, paths["json"])
    if json_out is not None:
        write_json_to(json_out, json.dumps(report, indent=1, default=str))
    write_csv(report, paths["csv"])
    write_svg(report, paths["svg"])
    console.print(
        f"store: {db}   json: {paths['json']}   csv: {paths['csv']}   chart: {paths['svg']}",
        highlight=False,
    )
    if guidellm_json is not None or guidellm_csv is not None:
        from parity.report.guidellm import write_guidellm

        for path in write_guidellm({**report, "options": options}, guidellm_json, guidellm_csv):
            console.print(f"guidellm: {path}", highlight=False)
