"""What every command shares: the consoles, the shared options, report writing, exit codes.

Typer lives only in `parity.cli`; the library below raises `ParityError`s, which the entry
point (`cli.main.main`) prints as one line.

Exit codes: 0 ok; 1 a finding (a provider degraded, different or unreachable, a required
check failed, a regression, a matrix that does not hold); 2 bad input (usage, providers
file, store); 130 interrupted by Ctrl-C, 143 by SIGTERM (the run is stored and resumable).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from parity.core.config import ProvidersFile, load_providers
from parity.core.dburl import Db, DbRef, parse_db
from parity.core.errors import ConfigError
from parity.core.target import Target, quick_providers

__all__ = [
    "DEFAULT_DB",
    "STDOUT",
    "ApiKeyEnv",
    "BaseUrl",
    "CsvOut",
    "DbOption",
    "GuidellmCsvOut",
    "GuidellmJsonOut",
    "HtmlOut",
    "InspectLogOut",
    "JsonOut",
    "JunitOut",
    "LmEvalOut",
    "MarkdownOut",
    "MaxTime",
    "ModelName",
    "ReferenceModel",
    "ReferenceUrl",
    "VantageOption",
    "console",
    "err",
    "exit_with",
    "json_option",
    "json_to_stdout",
    "load_target",
    "out",
    "reset_consoles",
    "write_foreign",
    "write_json",
    "write_reports",
]

WIDE = 200
"""Width of piped or captured output, which has none of its own (rich would take 80)."""


def console(stderr: bool = False) -> Console:
    """A console on stdout (or stderr); WIDE columns when the stream is not a terminal and
    COLUMNS is unset, so tables are not squeezed in logs and captures."""
    stream = sys.stderr if stderr else sys.stdout
    wide = not stream.isatty() and "COLUMNS" not in os.environ
    return Console(stderr=stderr, width=WIDE if wide else None)


out = console()
"""Results: tables, leaderboards, paths written."""
err = console(stderr=True)
"""Progress and announcements, so stdout carries only results."""


BaseUrl = Annotated[
    str | None,
    typer.Option(
        "--base-url",
        rich_help_panel="One endpoint, no providers file",
        help="Audit this OpenAI-compatible endpoint without a providers file (fallback: "
        "$OPENAI_BASE_URL).",
    ),
]
ModelName = Annotated[
    str | None,
    typer.Option(
        "--model",
        rich_help_panel="One endpoint, no providers file",
        help="The endpoint's model id (default: the one model its GET /models lists).",
    ),
]
ApiKeyEnv = Annotated[
    str | None,
    typer.Option(
        "--api-key-env",
        metavar="VAR",
        rich_help_panel="One endpoint, no providers file",
        help="Environment variable holding the endpoint's key (default: OPENAI_API_KEY when "
        "set). Keys are never given on the command line.",
    ),
]
ReferenceUrl = Annotated[
    str | None,
    typer.Option(
        "--reference-url",
        rich_help_panel="One endpoint, no providers file",
        help="A reference endpoint to compare with (default: --base-url, with --reference-model).",
    ),
]
ReferenceModel = Annotated[
    str | None,
    typer.Option(
        "--reference-model",
        rich_help_panel="One endpoint, no providers file",
        help="The reference's model id.",
    ),
]


def load_target(
    providers_file: Path | None,
    base_url: str | None,
    model: str | None,
    api_key_env: str | None,
    reference_url: str | None = None,
    reference_model: str | None = None,
) -> ProvidersFile:
    """The providers to measure: the providers file, or the endpoint the quick-mode options
    (or OPENAI_BASE_URL) name; a one-line `ConfigError` when neither, or both, are given."""
    target = Target(base_url, model, api_key_env, reference_url, reference_model)
    if providers_file is not None:
        if target.given:
            raise ConfigError("give a providers file or --base-url/--model, not both")
        return load_providers(providers_file)
    providers = quick_providers(target)
    if providers is None:
        raise ConfigError("give a providers file, --base-url URL --model M, or set OPENAI_BASE_URL")
    return providers


def exit_with(code: int) -> None:
    """End the command with exit code `code` (0: nothing found; see the module docstring)."""
    raise typer.Exit(code)


DbOption = Annotated[
    DbRef,
    typer.Option(
        "--db",
        parser=parse_db,
        envvar="PARITY_DB",
        metavar="PATH|URL",
        show_default="parity.db",
        help="The store: an SQLite file (created if missing) or a PostgreSQL URL "
        "postgresql://user@host:port/db (docs/store.md). Default: $PARITY_DB, else parity.db.",
    ),
]
DEFAULT_DB = DbRef(path=Path("parity.db"))
"""`--db`'s default when PARITY_DB is unset."""


def set_vantage(ctx: typer.Context, value: str | None) -> str | None:
    """Option callback: the runs this command creates record `value` as their vantage (the
    host name when not given); reset when the command's context closes."""
    from parity.core.store import reset_default_vantage, set_default_vantage

    token = set_default_vantage(value)
    ctx.call_on_close(lambda: reset_default_vantage(token))
    return value


VantageOption = Annotated[
    str | None,
    typer.Option(
        "--vantage",
        metavar="LABEL",
        envvar="PARITY_VANTAGE",
        callback=set_vantage,
        help="Where this run measures from (a region, a CI runner), stored with the run: "
        "parity runs shows it, parity history --vantage splits by it. Default: the host name.",
    ),
]
MaxTime = Annotated[
    float | None,
    typer.Option(
        "--max-time",
        min=0.001,
        metavar="SECONDS",
        help="Stop sending after SECONDS: what is stored stays, the run ends interrupted "
        "(exit 130) and, for run, eval and conform, --resume goes on.",
    ),
]
STDOUT = "-"
"""`--json -`: the JSON goes to stdout, alone; tables and progress go to stderr."""


def reset_consoles() -> None:
    """Point the consoles at this invocation's stdout and stderr, loud: `--json -` and
    `--quiet` change them for one command only (the CLI may be invoked many times in one
    process, as tests and notebooks do)."""
    out.stderr = False  # rich then writes to whatever sys.stdout is at print time
    err.quiet = False


def json_to_stdout(ctx: typer.Context, value: Path | None) -> Path | None:
    """Option callback: with `--json -`, send everything else this command prints to
    stderr, so stdout carries the JSON alone (`parity report --json - | jq`); the consoles
    are reset when the command's context closes."""
    if value is not None and str(value) == STDOUT:
        out.stderr = True
        ctx.call_on_close(reset_consoles)
    return value


def write_json(path: Path, text: str) -> None:
    """Write `text` (a JSON document) to `path`, or to stdout when `path` is `-`."""
    if str(path) == STDOUT:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        sys.stdout.flush()
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write ({exc.strerror})") from None


def json_option(help_text: str) -> Any:
    """A `--json PATH` option (PATH `-`: stdout) with `help_text`."""
    return typer.Option(
        "--json", help=f"{help_text} `-` writes it to stdout.", callback=json_to_stdout
    )


JsonOut = Annotated[
    Path | None,
    json_option("Write the report model here (JSON: every figure, CI and verdict)."),
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
SuiteOption = Annotated[str, typer.Option("--suite", help="Accuracy suite.")]
RepeatsOption = Annotated[
    int, typer.Option("--repeats", min=1, help="Times each problem is asked.")
]
SpeedRequests = Annotated[
    int, typer.Option("--speed-requests", min=0, help="Streamed speed requests.")
]
MarginOption = Annotated[
    float,
    typer.Option(
        "--margin", help="Equivalence margin for accuracy, as a fraction (0.03 = 3 points)."
    ),
]
ConformanceOption = Annotated[
    bool, typer.Option("--conformance/--no-conformance", help="Run the conformance checks.")
]
"""The options of `parity run` that `parity watch` passes on to each run."""

ReferenceRepeats = Annotated[
    int,
    typer.Option(
        "--reference-repeats",
        min=1,
        max=100,
        metavar="K",
        help="Sample the reference K times as often as each provider: it is in every "
        "comparison, so its noise is in every difference.",
    ),
]
InspectLogOut = Annotated[
    Path | None,
    typer.Option(
        "--inspect-log",
        metavar="PATH",
        help="Eval runs: write inspect_ai eval logs (one per provider) under this folder "
        "(inspect view --log-dir PATH), or to PATH.json.",
    ),
]
LmEvalOut = Annotated[
    Path | None,
    typer.Option(
        "--lm-eval",
        metavar="PATH",
        help="Eval runs: write lm-eval results (PATH/<provider>/results_<date>.json and "
        "samples), or to PATH.json.",
    ),
]
GuidellmJsonOut = Annotated[
    Path | None,
    typer.Option(
        "--guidellm-json",
        metavar="PATH",
        help="Bench runs: write the benchmarks in guidellm's report shape (its metric names).",
    ),
]
GuidellmCsvOut = Annotated[
    Path | None,
    typer.Option(
        "--guidellm-csv",
        metavar="PATH",
        help="Bench runs: one CSV row per benchmark, guidellm's column names "
        "(time_to_first_token_ms_p99, ...).",
    ),
]


def write_foreign(
    db: Db,
    run_id: str,
    *,
    inspect_log: Path | None = None,
    lm_eval: Path | None = None,
    guidellm_json: Path | None = None,
    guidellm_csv: Path | None = None,
) -> None:
    """Write the run in the formats of other tools given a path: inspect_ai logs and lm-eval
    results (eval runs), guidellm JSON and CSV (bench runs); prints the files written."""
    if not any((inspect_log, lm_eval, guidellm_json, guidellm_csv)):
        return
    from parity.core.store import Store

    written: list[Path] = []
    with Store(db) as store:
        if inspect_log is not None:
            from parity.report.inspect_log import write_inspect_logs

            written += write_inspect_logs(store, run_id, inspect_log)
        if lm_eval is not None:
            from parity.report.lm_eval import write_lm_eval

            written += write_lm_eval(store, run_id, lm_eval)
        if guidellm_json is not None or guidellm_csv is not None:
            from parity.report.guidellm import bench_report, write_guidellm

            written += write_guidellm(bench_report(store, run_id), guidellm_json, guidellm_csv)
    for path in written:
        err.print(f"wrote {path}", highlight=False)


def write_reports(
    db: Db,
    run_id: str,
    *,
    json_path: Path | None = None,
    csv_path: Path | None = None,
    junit_path: Path | None = None,
    html_path: Path | None = None,
    markdown_path: Path | None = None,
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
        write_json(json_path, to_json(eval_json(data) if eval_ else data))
