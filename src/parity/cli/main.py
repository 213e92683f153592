"""The `parity` command: parses options, calls the library, prints. Nothing else lives here."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from parity import __version__
from parity.cli.bench import bench as bench_command
from parity.cli.equiv import equiv_app
from parity.core.config import ProvidersFile
from parity.core.errors import ConfigError, ParityError
from parity.core.session import (
    check_providers,
    finish_and_report,
    load_run_for_resume,
    run_providers,
)

app = typer.Typer(
    help="parity: does your inference provider really serve the open-weight model it sells? "
    "Measures speed, price, accuracy (with confidence intervals and a verdict against a "
    "reference provider) and API conformance, for each provider of one model.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
providers_app = typer.Typer(help="Validate and ping a providers file.", no_args_is_help=True)
local_app = typer.Typer(
    help="The local provider fleet: real llama.cpp servers with SmolLM2-135M-Instruct on "
    "127.0.0.1, one per variant (reference, a second reference, compressed weights, a wrong "
    "chat template, a short context). Needs the 'local' extra. Costs nothing but CPU.",
    no_args_is_help=True,
)
app.add_typer(providers_app, name="providers")
app.add_typer(local_app, name="local")
app.command("bench")(bench_command)
app.add_typer(equiv_app, name="equiv")


def _console(stderr: bool = False) -> Console:
    # Piped or captured output has no width: give tables room instead of rich's 80 columns.
    stream = sys.stderr if stderr else sys.stdout
    wide = not stream.isatty() and "COLUMNS" not in os.environ
    return Console(stderr=stderr, width=160 if wide else None)


out = _console()
err = _console(stderr=True)

DbOption = Annotated[Path, typer.Option("--db", help="SQLite store (created if missing).")]
JsonOut = Annotated[
    Path | None,
    typer.Option(
        "--json", help="Write the report model here (JSON: every figure, CI and verdict)."
    ),
]
CsvOut = Annotated[
    Path | None, typer.Option("--csv", help="Write one CSV row per provider x metric here.")
]
JunitOut = Annotated[
    Path | None,
    typer.Option(
        "--junit", help="Write JUnit XML here: a test suite per provider, a test per check."
    ),
]
HtmlOut = Annotated[
    Path | None,
    typer.Option("--html", help="Write the self-contained HTML report (works offline) here."),
]
MarkdownOut = Annotated[
    Path | None,
    typer.Option("--markdown", help="Write a Markdown summary (for a PR comment) here."),
]


@app.command()
def run(
    providers_file: Annotated[
        Path | None, typer.Argument(help="Providers TOML file (optional with --resume).")
    ] = None,
    db: DbOption = Path("parity.db"),
    resume: Annotated[
        str | None,
        typer.Option(help="Continue an interrupted run: sends only requests not yet stored."),
    ] = None,
    suite: Annotated[str, typer.Option(help="Accuracy suite.")] = "easy",
    repeats: Annotated[int, typer.Option(min=1, help="Times each problem is asked.")] = 2,
    speed_requests: Annotated[int, typer.Option(min=0, help="Streamed speed requests.")] = 5,
    margin: Annotated[
        float,
        typer.Option(help="Equivalence margin for accuracy, as a fraction (0.03 = 3 points)."),
    ] = 0.03,
    conformance: Annotated[bool, typer.Option(help="Run the conformance checks.")] = True,
    json_out: JsonOut = None,
    csv_out: CsvOut = None,
    html_out: HtmlOut = None,
    junit_out: JunitOut = None,
    markdown_out: MarkdownOut = None,
) -> None:
    """Measure every provider in PROVIDERS_FILE: speed, accuracy vs the reference, conformance.

    Cost per provider with the defaults: 5 streamed speed requests (<= 64 output tokens),
    80 problems x 2 repeats (<= 16 output tokens each), 14 requests for the core
    conformance checks (three of them one document filling 90% of the advertised context
    window; `parity conform` runs the full suite); about 180 requests and, for a ~4k
    context, ~16k tokens. Exit code 1 when a provider is degraded, fails a
    conformance check or is unreachable.
    """
    from parity.core.config import load_providers
    from parity.core.plan import RunOptions

    if resume:
        providers, stored, run_id = load_run_for_resume(db, resume, providers_file, "run")
        options = RunOptions(**stored)
    else:
        if providers_file is None:
            raise ConfigError("give a providers file, or --resume RUN_ID")
        providers = load_providers(providers_file)
        options = RunOptions(
            suite=_suite(suite),
            repeats=repeats,
            speed_requests=speed_requests,
            margin=margin,
            conformance=conformance,
        )
        run_id = None
    run_id = run_providers(db, providers, options, providers_file, run_id, err)
    results = finish_and_report(db, run_id, options, out, None)
    _write_reports(
        db,
        run_id,
        json_path=json_out,
        csv_path=csv_out,
        html_path=html_out,
        junit_path=junit_out,
        markdown_path=markdown_out,
    )
    bad = [r for r in results if r.verdict in ("degraded", "unreachable", "no data")]
    bad += [r for r in results if r.conformance_counts()[0] < r.conformance_counts()[1]]
    raise typer.Exit(1 if bad else 0)


@app.command("eval")
def eval_(
    providers_file: Annotated[
        Path | None, typer.Argument(help="Providers TOML file (optional with --resume).")
    ] = None,
    suite: Annotated[
        str,
        typer.Option(help="easy, aime2025, gsm8k, or a .jsonl/.py suite file; NAME:N takes N."),
    ] = "easy",
    limit: Annotated[int | None, typer.Option(min=1, help="Use N problems (seeded).")] = None,
    repeats: Annotated[
        int, typer.Option(min=1, help="Samples per problem (fixed), or the adaptive cap.")
    ] = 4,
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
    db: DbOption = Path("parity.db"),
    resume: Annotated[str | None, typer.Option(help="Continue an interrupted eval run.")] = None,
    json_out: Annotated[
        Path | None,
        typer.Option(
            "--json", help="Write the results here (the report model; 'run' is the run id)."
        ),
    ] = None,
    csv_out: CsvOut = None,
    html_out: HtmlOut = None,
    junit_out: JunitOut = None,
    markdown_out: MarkdownOut = None,
) -> None:
    """Accuracy on a suite, repeated, with confidence intervals and a verdict vs the reference.

    Adaptive (default with a reference): pairs of samples in rounds of 16, the same problems
    and seeds at every provider; each provider stops when its anytime-valid interval decides
    the verdict, at its budget, or at the fixed design's size (problems x repeats). Cost: at
    most problems x repeats samples per provider (easy: 80 x 4 = 320 short requests), usually
    far fewer. Exit code 1 when a provider is degraded.
    """
    from parity.accuracy.evaluate import EvalOptions
    from parity.core.session import report_eval, run_eval

    if resume:
        providers, stored, run_id = load_run_for_resume(db, resume, providers_file, "eval")
        options = EvalOptions(**stored)
    else:
        if providers_file is None:
            raise ConfigError("give a providers file, or --resume RUN_ID")
        from parity.core.config import load_providers

        providers = load_providers(providers_file)
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
            adaptive=adaptive,
            margin=margin,
            round_pairs=round_pairs,
            budget_tokens=budget_tokens,
            budget_usd=budget_usd,
            sampling=sampling,
            system_prompt=system_prompt,
            cache=cache,
        )
        _check_suite(options)
        run_id = None
    run_id = run_eval(db, providers, options, providers_file, run_id, err)
    results = report_eval(db, run_id, options, out, None)
    _write_reports(
        db,
        run_id,
        json_path=json_out,
        csv_path=csv_out,
        html_path=html_out,
        junit_path=junit_out,
        markdown_path=markdown_out,
        eval_=True,
    )
    degraded = [r for r in results if (r.get("vs_reference") or {}).get("verdict") == "degraded"]
    raise typer.Exit(1 if degraded else 0)


@app.command()
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
    db: DbOption = Path("parity.db"),
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
        typer.Option(help="--matrix: scripted (fast), llama (the real local server) or both."),
    ] = "both",
    json_out: JsonOut = None,
    junit_out: JunitOut = None,
    html_out: HtmlOut = None,
    markdown_out: MarkdownOut = None,
) -> None:
    """Conformance: tool calls, reasoning, sampling parameters, structured output, streaming,
    token accounting, context window and errors, on every provider in PROVIDERS_FILE.

    Prints each check's cost first (about 90 mostly short requests per provider at --tries 1,
    one of them a document filling 90% of the advertised context window), then a check x
    provider table and what was spent. Checks that set their bar from the reference are
    n/a without one. Exit code 1 when a required check fails on any provider.
    """
    from parity.conformance.run import conform_options, failed_required, preview, run_conform
    from parity.core.config import load_providers
    from parity.core.plan import RunOptions

    selection = [c.strip() for c in checks.split(",") if c.strip()] if checks else None
    if matrix:
        from parity.conformance.matrix import matrix_markdown, print_matrix, run_matrix

        if providers_file is not None or resume:
            raise ConfigError("--matrix starts its own servers: give no providers file")
        result = run_matrix(upstream, selection, console=err)
        print_matrix(result, out)
        if markdown_out is not None:
            markdown_out.write_text(matrix_markdown(result), encoding="utf-8")
        raise typer.Exit(0 if result.holds else 1)
    if resume:
        providers, stored, run_id = load_run_for_resume(db, resume, providers_file, "conform")
        options = RunOptions(**stored)
    else:
        if providers_file is None:
            raise ConfigError("give a providers file, --resume RUN_ID, or --matrix")
        providers = load_providers(providers_file)
        options = conform_options(selection, tries)
        run_id = None
    preview(providers, options, err)
    run_id, results = run_conform(db, providers, options, providers_file, run_id, out, err)
    _write_reports(
        db,
        run_id,
        json_path=json_out,
        csv_path=None,
        html_path=html_out,
        junit_path=junit_out,
        markdown_path=markdown_out,
    )
    raise typer.Exit(1 if failed_required(results) else 0)


@app.command()
def runs(db: DbOption = Path("parity.db")) -> None:
    """List the runs in the store, newest first. Costs nothing."""
    from parity.core.store import Store
    from parity.report.runs import runs_table

    if not db.exists():
        raise ConfigError(f"{db}: no such store")
    with Store(db) as store:
        out.print(runs_table(store.runs()))


@app.command()
def report(
    run_id: Annotated[str | None, typer.Argument(help="Run id (default: the newest).")] = None,
    db: DbOption = Path("parity.db"),
    json_out: JsonOut = None,
    csv_out: CsvOut = None,
    html_out: HtmlOut = None,
    junit_out: JunitOut = None,
    markdown_out: MarkdownOut = None,
) -> None:
    """Print a run's leaderboard again, recomputed from the store, and write it as JSON, CSV,
    JUnit XML or Markdown if asked. Costs nothing (no request is sent)."""
    from parity.core.plan import RunOptions
    from parity.core.store import Store

    if not db.exists():
        raise ConfigError(f"{db}: no such store")
    with Store(db) as store:
        info = store.run(run_id) if run_id else store.latest_run()
        if info is None:
            raise ConfigError(f"{db}: no run {run_id!r}" if run_id else f"{db}: no runs yet")
    if info.kind == "eval":
        from parity.accuracy.evaluate import EvalOptions
        from parity.core.session import report_eval

        report_eval(db, info.id, EvalOptions(**info.options), out, None)
    elif info.kind not in ("run",):
        out.print(
            f"{info.id} is a {info.kind} run: its tables were printed by parity {info.kind}; "
            "--json/--csv/--html/--junit/--markdown carry its figures.",
            highlight=False,
        )
    else:
        finish_and_report(db, info.id, RunOptions(**info.options), out, None, finish=False)
    _write_reports(
        db,
        info.id,
        json_path=json_out,
        csv_path=csv_out,
        html_path=html_out,
        junit_path=junit_out,
        markdown_path=markdown_out,
    )


@app.command()
def history(
    db: DbOption = Path("parity.db"),
    provider: Annotated[str | None, typer.Option(help="Only this provider.")] = None,
    metric: Annotated[
        str | None,
        typer.Option(
            help="One figure, a column per provider: accuracy, verdict, status, ttft_p50, "
            "tok_s_p50, cost or conformance."
        ),
    ] = None,
) -> None:
    """Each provider's figures run after run, oldest first: accuracy (95% CI), verdict,
    TTFT and tok/s medians, run cost, conformance passed/judged. Recomputed from the store
    (about a second per run); costs nothing."""
    from parity.core.store import Store
    from parity.report.history import METRICS
    from parity.report.history import history as history_rows
    from parity.report.history_table import history_table

    if metric is not None and metric not in METRICS:
        raise ConfigError(f"unknown metric {metric!r}; known: {', '.join(METRICS)}")
    if not db.exists():
        raise ConfigError(f"{db}: no such store")
    with Store(db) as store:
        if not store.runs():
            raise ConfigError(f"{db}: no runs yet")
        rows = history_rows(store, provider, metric)
    if not rows:
        raise ConfigError(f"{db}: no run has a provider named {provider!r}")
    out.print(history_table(rows, metric))


@app.command()
def diff(
    run_a: Annotated[str, typer.Argument(help="The earlier run (the baseline).")],
    run_b: Annotated[str, typer.Argument(help="The later run.")],
    db: DbOption = Path("parity.db"),
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the comparison (JSON) here.")
    ] = None,
) -> None:
    """What changed from RUN_A to RUN_B, per provider in both, tested beyond noise.

    Accuracy: B's per-problem scores against A's (paired bootstrap CI, sign-flip p); a
    regression when that interval lies below 0 and outside the equivalence margin. Speed:
    TTFT and output tok/s per request, Mann-Whitney U; a regression when p < 0.05 and the
    median is more than 10% worse. Also conformance checks that passed in A and fail in B,
    a verdict turned degraded, a provider unreachable in B. Recomputed from the store;
    costs nothing. Exit code 1 when there is a regression, 0 otherwise, 2 for bad input.
    """
    import json

    from parity.core.store import Store
    from parity.report.history import diff as diff_runs
    from parity.report.history_table import print_diff

    if not db.exists():
        raise ConfigError(f"{db}: no such store")
    with Store(db) as store:
        for run_id in (run_a, run_b):
            if store.run(run_id) is None:
                raise ConfigError(f"{db}: no run {run_id!r} (see: parity runs --db {db})")
        result = diff_runs(store, run_a, run_b)
    print_diff(out, result)
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    raise typer.Exit(1 if result["regressions"] else 0)


@providers_app.command("check")
def providers_check(
    providers_file: Annotated[Path, typer.Argument(help="Providers TOML file.")],
) -> None:
    """Validate a providers file and ping each endpoint (GET /models). One request each."""
    from parity.core.config import load_providers

    providers = load_providers(providers_file)
    ok = asyncio.run(check_providers(providers, out))
    raise typer.Exit(0 if ok else 1)


StateDir = Annotated[
    Path | None, typer.Option(help="Where the fleet keeps pids, logs and its providers file.")
]


@local_app.command("up")
def local_up(
    state_dir: StateDir = None,
    base_port: Annotated[int, typer.Option(help="First port; one port per variant.")] = 8710,
    variants: Annotated[
        str | None, typer.Option(help="Comma-separated variant names (default: all).")
    ] = None,
    threads: Annotated[int, typer.Option(min=1, help="CPU threads per server.")] = 1,
    faults: Annotated[
        list[str] | None,
        typer.Option(
            "--faults",
            help="Add a provider faulty-<SPEC>: a fault-injecting proxy in front of the "
            "reference (repeatable; SPEC e.g. drop=reasoning_effort or "
            "inflate-usage=20,drop-usage). See `python -m parity.local.proxy --help`.",
        ),
    ] = None,
) -> None:
    """Start the fleet, wait until every server answers, print the providers file's path.

    The first start generates the compressed weights once (~1 minute, cached).
    """
    from parity.local.fleet import default_state_dir, fleet_up

    names = [v.strip() for v in variants.split(",")] if variants else None
    path = fleet_up(
        state_dir or default_state_dir(),
        names,
        base_port=base_port,
        threads=threads,
        faults=faults or (),
    )
    err.print("fleet is up; providers file:")
    out.print(str(path), highlight=False)


@local_app.command("down")
def local_down(state_dir: StateDir = None) -> None:
    """Stop exactly the servers `parity local up` started."""
    from parity.local.fleet import default_state_dir, fleet_down

    stopped = fleet_down(state_dir or default_state_dir())
    out.print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


@local_app.command("status")
def local_status(state_dir: StateDir = None) -> None:
    """List the fleet's servers: variant, port, pid, alive."""
    from parity.local.fleet import default_state_dir, fleet_status
    from parity.report.runs import fleet_table

    out.print(fleet_table(fleet_status(state_dir or default_state_dir())))


@app.command()
def demo(
    out_dir: Annotated[Path, typer.Option("--out", help="Where the store and summary go.")] = Path(
        "parity-demo"
    ),
    base_port: Annotated[int, typer.Option(help="First port of the demo fleet.")] = 8720,
    repeats: Annotated[int, typer.Option(min=1, help="Times each problem is asked.")] = 2,
    fault: Annotated[
        str | None,
        typer.Option(
            help="PROVIDER=VARIANT: serve PROVIDER from VARIANT's server, as a provider that "
            "silently swapped its model would (e.g. reference-b=compressed-mild); then "
            "`parity diff` against an earlier demo run names the regression."
        ),
    ] = None,
) -> None:
    """The whole job on the local fleet: start it, run parity on it, print the leaderboard,
    write the store, a JSON summary and the HTML report, stop it.

    Costs nothing but CPU: about 6 x 178 requests to local llama.cpp servers, about four
    minutes on two cores (the first time also generates the compressed weights, ~1 minute).
    Runs accumulate in the demo's store, so `parity history` and `parity diff` work on it.
    """
    from parity.core.config import load_providers
    from parity.core.plan import RunOptions
    from parity.local.fleet import fleet_down, fleet_up

    signal.signal(signal.SIGTERM, _raise_interrupt)
    state = out_dir / "fleet"
    db = out_dir / "parity.db"
    try:
        err.print("[bold]starting the local fleet[/] (real llama.cpp servers on 127.0.0.1)...")
        providers_file = fleet_up(state, None, base_port=base_port)
        providers = load_providers(providers_file)
        if fault:
            providers = _swap(providers, fault)
        options = RunOptions(repeats=repeats)
        run_id = run_providers(db, providers, options, providers_file, None, err)
        finish_and_report(db, run_id, options, out, None)
        summary, html = out_dir / "summary.json", out_dir / "report.html"
        _write_reports(
            db,
            run_id,
            json_path=summary,
            csv_path=None,
            junit_path=None,
            markdown_path=None,
            html_path=html,
        )
        out.print(f"store: {db}   summary: {summary}   run: {run_id}", highlight=False)
        out.print(f"report: {html.resolve()}", highlight=False)
    finally:
        stopped = fleet_down(state)
        if stopped:
            err.print(f"fleet stopped ({len(stopped)} servers)")


@app.command()
def version() -> None:
    """Print parity's version."""
    out.print(__version__)


def _write_reports(
    db: Path,
    run_id: str,
    *,
    json_path: Path | None,
    csv_path: Path | None,
    junit_path: Path | None,
    html_path: Path | None = None,
    markdown_path: Path | None,
    eval_: bool = False,
) -> None:
    """Write the run's report model in each format given a path (nothing when none is)."""
    if not any((json_path, csv_path, junit_path, markdown_path, html_path)):
        return
    from parity.core.store import Store
    from parity.report.data import report_data
    from parity.report.exports import eval_json, to_json, write_exports
    from parity.report.history import history_series
    from parity.report.html import write_html

    with Store(db) as store:
        data = report_data(store, run_id)
        series = history_series(store) if html_path is not None else None
    write_exports(data, {"csv": csv_path, "junit": junit_path, "markdown": markdown_path})
    if html_path is not None:
        write_html(html_path, data, series)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(to_json(eval_json(data) if eval_ else data), encoding="utf-8")


def _swap(providers: ProvidersFile, fault: str) -> ProvidersFile:
    """The providers with one served from another variant's server (`PROVIDER=VARIANT`)."""
    name, _, variant = fault.partition("=")
    by_name = {p.name: p for p in providers.providers}
    if name not in by_name or variant not in by_name:
        raise ConfigError(f"--fault {fault!r}: give PROVIDER=VARIANT with names from the fleet")
    swapped = [
        p.model_copy(update={"base_url": by_name[variant].base_url}) if p.name == name else p
        for p in providers.providers
    ]
    return ProvidersFile(provider=swapped)


def _check_suite(options: object) -> None:
    from parity.accuracy.evaluate import EvalOptions, load_suite

    assert isinstance(options, EvalOptions)
    try:
        load_suite(options)
    except KeyError as exc:
        raise ConfigError(str(exc.args[0])) from None


def _suite(name: str) -> str:
    from parity.accuracy.suites import get_suite

    try:
        get_suite(name)
    except KeyError as exc:
        raise ConfigError(str(exc.args[0])) from None
    return name


def _raise_interrupt(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt


def main() -> None:
    """Entry point: run the app; a `ParityError` becomes one line on stderr and its exit code."""
    try:
        app()
    except ParityError as exc:
        # Plain print: one line, never wrapped, and no markup read into "[[provider]]".
        print(f"parity: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("parity: interrupted; everything measured so far is in the store", file=sys.stderr)
        sys.exit(130)
