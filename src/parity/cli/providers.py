"""`parity providers`: validate a providers file and ping each endpoint."""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from parity.cli.common import exit_with, json_option, out, write_json
from parity.core.config import load_providers
from parity.core.session import probe_providers, providers_table

providers_app = typer.Typer(help="Validate and ping a providers file.", no_args_is_help=True)


@providers_app.command("check")
def providers_check(
    providers_file: Annotated[Path, typer.Argument(help="Providers TOML file.")],
    json_out: Annotated[
        Path | None, json_option("Write each provider's result here (JSON).")
    ] = None,
) -> None:
    """Validate a providers file and check each endpoint answers: GET /models, then a real
    one-token chat completion (reachable only when it gets a valid answer). Two requests each."""
    providers = load_providers(providers_file)
    checks = asyncio.run(probe_providers(providers))
    out.print(providers_table(checks))
    if json_out is not None:
        rows = [asdict(c) | {"model_listed": c.model_listed} for c in checks]
        write_json(json_out, json.dumps({"providers": rows}, indent=2))
    exit_with(0 if all(c.reachable for c in checks) else 1)
