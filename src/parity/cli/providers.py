"""`parity providers`: validate a providers file and ping each endpoint."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from parity.cli.common import exit_with, out
from parity.core.config import load_providers
from parity.core.session import check_providers

providers_app = typer.Typer(help="Validate and ping a providers file.", no_args_is_help=True)


@providers_app.command("check")
def providers_check(
    providers_file: Annotated[Path, typer.Argument(help="Providers TOML file.")],
) -> None:
    """Validate a providers file and check each endpoint answers: GET /models, then a real
    one-token chat completion (reachable only when it gets a valid answer). Two requests each."""
    providers = load_providers(providers_file)
    ok = asyncio.run(check_providers(providers, out))
    exit_with(0 if ok else 1)
