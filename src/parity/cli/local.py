"""`parity local`: start, stop and list the local provider fleet."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from parity.cli.common import err, out

local_app = typer.Typer(
    help="The local provider fleet: real llama.cpp servers with SmolLM2-135M-Instruct on "
    "127.0.0.1, one per variant (reference, a second reference, compressed weights, a wrong "
    "chat template, a short context; on request vLLM servers and a shared-engine pair). "
    "Needs the 'local' extra. Costs nothing but CPU.",
    no_args_is_help=True,
)

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
    faults_upstream: Annotated[
        str | None,
        typer.Option(
            help="The variant the --faults proxies go in front of, e.g. reference-vllm "
            "(default: the fleet's reference: reference, else reference-vllm, else "
            "shared-reference).",
        ),
    ] = None,
) -> None:
    """Start the fleet, wait until every server answers, print the providers file's path.

    The first start generates the compressed weights once (~1 minute, cached). The default
    is the six llama.cpp variants; reference-vllm and reference-vllm-b (vLLM, the 'vllm'
    extra or PARITY_VLLM_PYTHON) and shared-reference and shared-reference-b (two proxies
    sharing one llama.cpp server) start only when named.
    """
    from parity.local.fleet import default_state_dir, fleet_up

    names = [v.strip() for v in variants.split(",")] if variants else None
    path = fleet_up(
        state_dir or default_state_dir(),
        names,
        base_port=base_port,
        threads=threads,
        faults=faults or (),
        faults_upstream=faults_upstream,
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
