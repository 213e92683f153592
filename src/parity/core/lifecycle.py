"""One lifecycle for every run: open (create or resume), then finish, interrupt or fail.

Every command that stores exchanges (run, eval, conform, conform --matrix, bench, equiv
record, equiv test) opens its run here, so a run ends the same way whatever the command:

- the block completes: the run is marked "finished";
- Ctrl-C, or SIGTERM (the CLI turns it into `Terminated`, a KeyboardInterrupt, see
  `interrupt_on_sigterm`): the run is marked "interrupted" and `RunInterrupted` is raised,
  carrying how many exchanges are stored, the command that continues the run (for the kinds
  that resume) and the conventional exit code (130 for SIGINT, 143 for SIGTERM);
- any other exception: the run is marked "failed" and the exception goes on.

Exchanges are written as they complete (see `core.runner`), so nothing measured is lost in
any of the three endings.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from parity import __version__
from parity.core.errors import RunInterrupted
from parity.core.store import Store

__all__ = [
    "RESUMABLE",
    "OpenRun",
    "RunInterrupted",
    "Terminated",
    "interrupt_on_sigterm",
    "open_run",
    "resume_command",
]

RESUMABLE = ("run", "eval", "conform")
"""The run kinds whose command takes `--resume RUN_ID` (sends only what is not stored)."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is, so it unwinds like Ctrl-C."""


@dataclass(frozen=True)
class OpenRun:
    """A run being measured: its store (open for the block's duration) and id."""

    store: Store
    run_id: str
    kind: str
    db: Path


def resume_command(kind: str, db: Path, run_id: str) -> str | None:
    """The command that continues run `run_id` of `kind`, or None for kinds that do not resume."""
    if kind not in RESUMABLE:
        return None
    return f"parity {kind} --db {db} --resume {run_id}"


@contextmanager
def open_run(
    db: Path,
    kind: str,
    options: Mapping[str, Any],
    *,
    source: str | None = None,
    resume: str | None = None,
    announce: Callable[[str], None] | None = None,
    resumable: bool = True,
) -> Iterator[OpenRun]:
    """Create a run of `kind` (or mark run `resume` running again), yield it, and record how
    it ended: finished, interrupted (raises `RunInterrupted` with the resume hint) or failed.

    `announce` receives one line naming the run and the store (rich markup allowed);
    `resumable=False` drops the resume hint (a run whose providers were temporary servers).
    """
    with Store(db) as store:
        if resume is None:
            run_id = store.create_run(kind, source, dict(options), __version__)
        else:
            run_id = resume
            store.set_run_status(run_id, "running")
        if announce is not None:
            announce(f"{kind} [bold]{run_id}[/] -> {db}")
        try:
            yield OpenRun(store, run_id, kind, db)
        except KeyboardInterrupt as exc:
            store.set_run_status(run_id, "interrupted")
            stored = store.count_exchanges(run_id)
            command = resume_command(kind, db, run_id) if resumable else None
            hint = (
                f"continue with: {command}"
                if command
                else "this run does not resume: start it again"
            )
            interrupted = RunInterrupted(
                f"interrupted: run {run_id}, {stored} exchanges stored in {db}; {hint}"
            )
            if isinstance(exc, Terminated):
                interrupted.exit_code = 128 + signal.SIGTERM
            raise interrupted from None
        except BaseException:
            store.finish_run(run_id, "failed")
            raise
        store.finish_run(run_id, "finished")


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated


def interrupt_on_sigterm() -> None:
    """Make SIGTERM (sent by `timeout`, systemd, Kubernetes, CI runners) end a run like
    Ctrl-C: the run is marked interrupted and the resume hint printed; exit code 143."""
    signal.signal(signal.SIGTERM, _raise_terminated)
