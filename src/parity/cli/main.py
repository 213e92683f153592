"""The `parity` command: one typer app, a module per command group, one entry point.

Each command module parses options, calls the library and prints; `main` turns every
`ParityError` into one line on stderr and its exit code (see `cli.common` for the table).
"""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path
from typing import Annotated

import typer

from parity import __version__
from parity.cli.bench import bench
from parity.cli.common import err, json_option, out, reset_consoles, write_json
from parity.cli.conform import conform
from parity.cli.demo import demo
from parity.cli.equiv import equiv_app
from parity.cli.eval import eval_command
from parity.cli.init import init_command
from parity.cli.local import local_app
from parity.cli.providers import providers_app
from parity.cli.report import diff_command, history_command, report_command, runs_command
from parity.cli.run import run
from parity.cli.store import store_app
from parity.cli.watch import watch
from parity.core.errors import ParityError, RunInterrupted
from parity.core.lifecycle import Terminated, interrupt_on_sigterm

app = typer.Typer(
    help="parity: does your inference provider really serve the open-weight model it sells? "
    "Measures speed, price, accuracy (with confidence intervals and a verdict against a "
    "reference provider) and API conformance, for each provider of one model.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command()(run)
app.command("eval")(eval_command)
app.command()(conform)
app.command("bench")(bench)
app.add_typer(equiv_app, name="equiv")
app.command("runs")(runs_command)
app.command("report")(report_command)
app.command("history")(history_command)
app.command("diff")(diff_command)
app.command("watch")(watch)
app.add_typer(providers_app, name="providers")
app.add_typer(local_app, name="local")
app.add_typer(store_app, name="store")
app.command()(demo)
app.command("init")(init_command)


def _print_version(value: bool) -> None:
    if value:
        out.print(__version__, highlight=False)
        raise typer.Exit(0)


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_print_version, help="Print the version and exit."
        ),
    ] = False,
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet", "-q", help="No progress bars or announcements on stderr; results only."
        ),
    ] = False,
) -> None:
    """parity: does your inference provider really serve the open-weight model it sells?"""
    reset_consoles()
    if quiet:
        err.quiet = True


@app.command()
def version(
    json_out: Annotated[
        Path | None, json_option("Write the version and its environment here (JSON).")
    ] = None,
) -> None:
    """Print parity's version."""
    out.print(__version__, highlight=False)
    if json_out is not None:
        info = {"parity": __version__, "python": platform.python_version()}
        write_json(json_out, json.dumps(info, indent=2))


COMPLETE_VAR = "_PARITY_COMPLETE"


def _accept_click_completion_names() -> None:
    """Shell completion answers both spellings of its request: typer's `source_bash` and
    click's `bash_source` (what click's docs and most completion guides tell users to run)."""
    value = os.environ.get(COMPLETE_VAR, "")
    shell, _, action = value.partition("_")
    if action in ("source", "complete") and shell in ("bash", "zsh", "fish", "powershell", "pwsh"):
        os.environ[COMPLETE_VAR] = f"{action}_{shell}"


def main() -> None:
    """Entry point: run the app; a `ParityError` becomes one line on stderr and its exit code;
    Ctrl-C and SIGTERM end any command the same way (exit 130 and 143)."""
    interrupt_on_sigterm()
    _accept_click_completion_names()
    try:
        app(prog_name="parity")
    except RunInterrupted as exc:
        print(f"parity: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except ParityError as exc:
        # Plain print: one line, never wrapped, and no markup read into "[[provider]]".
        print(f"parity: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt as exc:
        print("parity: interrupted; everything measured so far is in the store", file=sys.stderr)
        sys.exit(143 if isinstance(exc, Terminated) else 130)
