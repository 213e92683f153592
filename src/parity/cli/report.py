"""Commands that read the store and send nothing: runs, report, history, diff."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from parity.cli.common import (
    DEFAULT_DB,
    CsvOut,
    DbOption,
    GuidellmCsvOut,
    GuidellmJsonOut,
    HtmlOut,
    InspectLogOut,
    JsonOut,
    JunitOut,
    LmEvalOut,
    MarkdownOut,
    exit_with,
    json_option,
    out,
    write_foreign,
    write_json,
    write_reports,
)
from parity.core.errors import ConfigError
from parity.core.session import print_leaderboard


def runs_command(
    db: DbOption = DEFAULT_DB,
    json_out: Annotated[Path | None, json_option("Write the list of runs here (JSON).")] = None,
) -> None:
    """List the runs in the store, newest first. Costs nothing."""
    from parity.core.store import Store
    from parity.report.runs import runs_table

    if not db.exists():
        raise ConfigError(f"{db}: no such store")
    with Store(db) as store:
        runs = store.runs()
    out.print(runs_table(runs))
    if json_out is not None:
        write_json(json_out, json.dumps({"runs": [asdict(r) for r in runs]}, indent=2))


def report_command(
    run_id: Annotated[str | None, typer.Argument(help="Run id (default: the newest).")] = None,
    db: DbOption = DEFAULT_DB,
    json_out: JsonOut = None,
    csv_out: CsvOut = None,
    html_out: HtmlOut = None,
    junit_out: JunitOut = None,
    markdown_out: MarkdownOut = None,
    inspect_log: InspectLogOut = None,
    lm_eval: LmEvalOut = None,
    guidellm_json: GuidellmJsonOut = None,
    guidellm_csv: GuidellmCsvOut = None,
) -> None:
    """Print a run's leaderboard again, recomputed from the store, and write it as JSON, CSV,
    JUnit XML or Markdown if asked; an eval run also as inspect_ai logs or lm-eval results,
    a bench run in guidellm's shape. Costs nothing (no request is sent)."""
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
        from parity.accuracy.run import analyse_and_store_eval, print_eval

        eval_options = EvalOptions(**info.options)
        results = analyse_and_store_eval(db, info.id, eval_options)
        print_eval(results, info.id, eval_options, out)
    elif info.kind not in ("run",):
        out.print(
            f"{info.id} is a {info.kind} run: its tables were printed by parity {info.kind}; "
            "--json/--csv/--html/--junit/--markdown carry its figures.",
            highlight=False,
        )
    else:
        print_leaderboard(db, info.id, RunOptions(**info.options), out)
    write_reports(
        db,
        info.id,
        json_path=json_out,
        csv_path=csv_out,
        html_path=html_out,
        junit_path=junit_out,
        markdown_path=markdown_out,
    )
    write_foreign(
        db,
        info.id,
        inspect_log=inspect_log,
        lm_eval=lm_eval,
        guidellm_json=guidellm_json,
        guidellm_csv=guidellm_csv,
    )


def history_command(
    db: DbOption = DEFAULT_DB,
    provider: Annotated[str | None, typer.Option(help="Only this provider.")] = None,
    metric: Annotated[
        str | None,
        typer.Option(
            help="One figure, a column per provider: accuracy, verdict, status, ttft_p50, "
            "tok_s_p50, cost or conformance."
        ),
    ] = None,
    vantage: Annotated[
        str | None,
        typer.Option(
            "--vantage",
            metavar="LABEL",
            help="Only the runs measured from this vantage (without it, runs from several "
            "vantages are split by it: a vantage column, a column per provider @ vantage).",
        ),
    ] = None,
    json_out: Annotated[Path | None, json_option("Write the history rows here (JSON).")] = None,
) -> None:
    """Each provider's figures run after run, oldest first: accuracy (95% CI), verdict,
    TTFT and tok/s medians, run cost, conformance passed/judged, and the vantage each run
    was measured from. Recomputed from the store (about a second per run); costs nothing."""
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
        if vantage is not None and vantage not in store.vantages():
            known = ", ".join(store.vantages()) or "none recorded"
            raise ConfigError(f"{db}: no run from vantage {vantage!r} (vantages: {known})")
        rows = history_rows(store, provider, metric, vantage=vantage)
    if not rows:
        raise ConfigError(f"{db}: no run has a provider named {provider!r}")
    out.print(history_table(rows, metric))
    if json_out is not None:
        write_json(json_out, json.dumps({"history": rows}, indent=2, default=str))


def diff_command(
    run_a: Annotated[str, typer.Argument(help="The earlier run (the baseline).")],
    run_b: Annotated[str, typer.Argument(help="The later run.")],
    db: DbOption = DEFAULT_DB,
    json_out: Annotated[Path | None, json_option("Write the comparison (JSON) here.")] = None,
) -> None:
    """What changed from RUN_A to RUN_B, per provider in both, tested beyond noise.

    Accuracy: B's per-problem scores against A's (paired bootstrap CI, sign-flip p); a
    regression when that interval lies below 0 and outside the equivalence margin. Speed:
    TTFT and output tok/s per request, Mann-Whitney U; a regression when p < 0.05 and the
    median is more than 10% worse. Also conformance checks that passed in A and fail in B,
    a verdict turned degraded, a provider unreachable in B. Recomputed from the store;
    costs nothing. Exit code 1 when there is a regression, 0 otherwise, 2 for bad input.
    """
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
        write_json(json_out, json.dumps(result, indent=2))
    exit_with(1 if result["regressions"] else 0)
