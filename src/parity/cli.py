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
from parity.errors import ConfigError, ParityError
from parity.session import (
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


def _console(stderr: bool = False) -> Console:
    # Piped or captured output has no width: give tables room instead of rich's 80 columns.
    stream = sys.stderr if stderr else sys.stdout
    wide = not stream.isatty() and "COLUMNS" not in os.environ
    return Console(stderr=stderr, width=160 if wide else None)


out = _console()
err = _console(stderr=True)

DbOption = Annotated[Path, typer.Option("--db", help="SQLite store (created if missing).")]


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
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write a JSON summary here.")
    ] = None,
) -> None:
    """Measure every provider in PROVIDERS_FILE: speed, accuracy vs the reference, conformance.

    Cost per provider with the defaults: 5 streamed speed requests (<= 64 output tokens),
    80 problems x 2 repeats (<= 16 output tokens each), 12 conformance requests (one of
    them a long prompt filling 60% of the advertised context window); about 177 requests
    and, for a ~4k context, ~12k tokens. Exit code 1 when a provider is degraded, fails a
    conformance check or is unreachable.
    """
    from parity.config import load_providers
    from parity.plan import RunOptions

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
    results = finish_and_report(db, run_id, options, out, json_out)
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
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the results here.")] = None,
) -> None:
    """Accuracy on a suite, repeated, with confidence intervals and a verdict vs the reference.

    Adaptive (default with a reference): pairs of samples in rounds of 16, the same problems
    and seeds at every provider; each provider stops when its anytime-valid interval decides
    the verdict, at its budget, or at the fixed design's size (problems x repeats). Cost: at
    most problems x repeats samples per provider (easy: 80 x 4 = 320 short requests), usually
    far fewer. Exit code 1 when a provider is degraded.
    """
    from parity.evaluate import EvalOptions
    from parity.session import report_eval, run_eval

    if resume:
        providers, stored, run_id = load_run_for_resume(db, resume, providers_file, "eval")
        options = EvalOptions(**stored)
    else:
        if providers_file is None:
            raise ConfigError("give a providers file, or --resume RUN_ID")
        from parity.config import load_providers

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
    results = report_eval(db, run_id, options, out, json_out)
    degraded = [r for r in results if (r.get("vs_reference") or {}).get("verdict") == "degraded"]
    raise typer.Exit(1 if degraded else 0)


@app.command()
def runs(db: DbOption = Path("parity.db")) -> None:
    """List the runs in the store, newest first. Costs nothing."""
    from parity.report.runs import runs_table
    from parity.store import Store

    if not db.exists():
        raise ConfigError(f"{db}: no such store")
    with Store(db) as store:
        out.print(runs_table(store.runs()))


@app.command()
def report(
    run_id: Annotated[str | None, typer.Argument(help="Run id (default: the newest).")] = None,
    db: DbOption = Path("parity.db"),
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write a JSON summary here.")
    ] = None,
) -> None:
    """Print a run's leaderboard again, recomputed from the store. Costs nothing."""
    from parity.plan import RunOptions
    from parity.store import Store

    if not db.exists():
        raise ConfigError(f"{db}: no such store")
    with Store(db) as store:
        info = store.run(run_id) if run_id else store.latest_run()
        if info is None:
            raise ConfigError(f"{db}: no run {run_id!r}" if run_id else f"{db}: no runs yet")
    if info.kind == "eval":
        from parity.evaluate import EvalOptions
        from parity.session import report_eval

        report_eval(db, info.id, EvalOptions(**info.options), out, json_out)
        return
    finish_and_report(db, info.id, RunOptions(**info.options), out, json_out, finish=False)


@providers_app.command("check")
def providers_check(
    providers_file: Annotated[Path, typer.Argument(help="Providers TOML file.")],
) -> None:
    """Validate a providers file and ping each endpoint (GET /models). One request each."""
    from parity.config import load_providers

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
) -> None:
    """Start the fleet, wait until every server answers, print the providers file's path.

    The first start generates the compressed weights once (~1 minute, cached).
    """
    from parity.local.fleet import default_state_dir, fleet_up

    names = [v.strip() for v in variants.split(",")] if variants else None
    path = fleet_up(state_dir or default_state_dir(), names, base_port=base_port, threads=threads)
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
) -> None:
    """The whole job on the local fleet: start it, run parity on it, print the leaderboard, stop it.

    Costs nothing but CPU: about 6 x 177 requests to local llama.cpp servers, about four
    minutes on two cores (the first time also generates the compressed weights, ~1 minute).
    """
    from parity.config import load_providers
    from parity.local.fleet import fleet_down, fleet_up
    from parity.plan import RunOptions

    signal.signal(signal.SIGTERM, _raise_interrupt)
    state = out_dir / "fleet"
    db = out_dir / "parity.db"
    try:
        err.print("[bold]starting the local fleet[/] (real llama.cpp servers on 127.0.0.1)...")
        providers_file = fleet_up(state, None, base_port=base_port)
        providers = load_providers(providers_file)
        options = RunOptions(repeats=repeats)
        run_id = run_providers(db, providers, options, providers_file, None, err)
        finish_and_report(db, run_id, options, out, out_dir / "summary.json")
        out.print(
            f"store: {db}   summary: {out_dir / 'summary.json'}   run: {run_id}", highlight=False
        )
    finally:
        stopped = fleet_down(state)
        if stopped:
            err.print(f"fleet stopped ({len(stopped)} servers)")


@app.command()
def version() -> None:
    """Print parity's version."""
    out.print(__version__)


def _check_suite(options: object) -> None:
    from parity.evaluate import EvalOptions, load_suite

    assert isinstance(options, EvalOptions)
    try:
        load_suite(options)
    except KeyError as exc:
        raise ConfigError(str(exc.args[0])) from None


def _suite(name: str) -> str:
    from parity.suites import get_suite

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
