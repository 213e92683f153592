"""`parity init`: write a commented providers file to start from."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated

import typer

from parity.cli.common import err, out
from parity.core.errors import ConfigError

TEMPLATE = "templates/providers.toml"


def template() -> str:
    """The commented providers file `parity init` writes (a reference and one paid provider)."""
    return resources.files("parity.cli").joinpath(TEMPLATE).read_text(encoding="utf-8")


def init_command(
    path: Annotated[Path, typer.Argument(help="Where to write it.")] = Path("providers.toml"),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented providers file (a reference and one provider) to edit. Sends
    nothing."""
    if path.exists() and not force:
        raise ConfigError(f"{path} exists: give another path, or --force to overwrite it")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template(), encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write ({exc.strerror})") from None
    out.print(str(path), highlight=False)
    err.print(f"edit it, then: parity providers check {path}", highlight=False)
