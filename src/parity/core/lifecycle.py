"""One lifecycle for every run: open (create or resume), then finish, interrupt or fail.

Every command that stores exchanges (run, eval, conform, conform --matrix, bench, equiv
record, equiv test) opens its run here, so a run ends the same way whatever the command:

- the block completes: the run is marked "finished";
- Ctrl-C, or SIGTERM (the CLI turns it into `Terminated`, a KeyboardInterrupt, see
  `interrupt_on_sigterm`): the run is marked "interrupted" and `RunInterrupted` is raised,
  carrying how many exchanges are stored, the command that continues the run (for the kinds
  that resume) and the conventional exit code (130 for SIGINT, 143 for SIGTERM);
- the store fails (read-only, full, locked, damaged, deleted: a `StoreError`): the run is
  marked "interrupted" if the store can still be written (left as it is otherwise) and the
  `StoreError` is raised again with the run's state and the command that continues it;
- any other exception: the run is marked "failed" and the exception goes on.

One writer per run: the run's lease (see `core.store`) is taken when it opens, for a new run
and a resumed one, and released however it ends; a second process that opens the same run
meanwhile is refused with `RunBusy` (who writes it, since when, until when, what to do).

Exchanges are written as they complete (see `core.runner`), so nothing measured is lost in
any of these endings.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from types import FrameType
from typing import Any

from parity import __version__
from parity.core.dburl import Db
from parity.core.errors import LeaseLost, RunBusy, RunInterrupted, StoreError
from parity.core.store import Store

__all__ = [
    "RESUMABLE",
    "DeadlineReached",
    "OpenRun",
    "RunBusy",
    "RunInterrupted",
    "StoreError",
    "Terminated",
    "interrupt_on_sigterm",
    "open_run",
    "resume_command",
]

RESUMABLE = ("run", "eval", "conform")
"""The run kinds whose command takes `--resume RUN_ID` (sends only what is not stored)."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is, so it unwinds like Ctrl-C."""


class DeadlineReached(KeyboardInterrupt):
    """The run's `--max-time` is up: it stops sending and unwinds like Ctrl-C (resumable)."""


@dataclass(frozen=True)
class OpenRun:
    """A run being measured: its store (open for the block's duration) and id."""

    store: Store
    run_id: str
    kind: str
    db: Db


def resume_command(kind: str, db: Db, run_id: str) -> str | None:
    """The command that continues run `run_id` of `kind`, or None for kinds that do not resume."""
    if kind not in RESUMABLE:
        return None
    return f"parity {kind} --db {db} --resume {run_id}"


@contextmanager
def open_run(
    db: Db,
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
            run_id = store.create_run(kind, source, dict(options), __version__, lease=True)
        else:
            run_id = resume
            store.acquire_lease(run_id, command=resume_command(kind, db, run_id))
            store.set_run_status(run_id, "running")
        command = resume_command(kind, db, run_id) if resumable else None
        if announce is not None:
            announce(f"{kind} [bold]{run_id}[/] -> {db}")
        try:
            yield OpenRun(store, run_id, kind, db)
        except KeyboardInterrupt as exc:
            hint = (
                f"continue with: {command}"
                if command
                else "this run does not resume: start it again"
            )
            try:
                store.set_run_status(run_id, "interrupted")
                stored = f"{store.count_exchanges(run_id)} exchanges stored in {db}"
            except (StoreError, LeaseLost) as error:
                stored = f"its exchanges are in {db}, but {error}"
            interrupted = RunInterrupted(f"interrupted: run {run_id}, {stored}; {hint}")
            if isinstance(exc, Terminated):
                interrupted.exit_code = 128 + signal.SIGTERM
            raise interrupted from None
        except RunBusy:
            raise  # the lease lapsed and another process writes the run now: leave it alone
        except StoreError as exc:
            raise _store_failed(store, exc, run_id, kind, resumable) from exc
        except BaseException:
            with suppress(StoreError, RunBusy):
                store.finish_run(run_id, "failed")
            raise
        try:
            store.finish_run(run_id, "finished")
        except StoreError as exc:
            raise _store_failed(store, exc, run_id, kind, resumable) from exc


def _store_failed(
    store: Store, exc: StoreError, run_id: str, kind: str, resumable: bool
) -> StoreError:
    """`exc` (the store failed mid-run) again, saying in which state the run is and how to
    continue it: marked interrupted when the store can still be written, else left as is.
    (The store's path is where it is now: a store deleted mid-run is saved there again.)"""
    command = resume_command(kind, store.ref, run_id) if resumable else None
    then = (
        f"then continue with: {command}"
        if command
        else "then start it again (this run does not resume)"
    )
    try:
        store.set_run_status(run_id, "interrupted")
    except (StoreError, RunBusy):
        state = f"run {run_id} is left as it was (the store cannot be written)"
    else:
        try:
            state = f"run {run_id} is marked interrupted, {store.count_exchanges(run_id)}"
            state += " exchanges stored"
        except StoreError:
            state = f"run {run_id} is marked interrupted"
    return StoreError(f"{exc}; {state}; {then}")


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated


def interrupt_on_sigterm() -> None:
    """Make SIGTERM (sent by `timeout`, systemd, Kubernetes, CI runners) end a run like
    Ctrl-C: the run is marked interrupted and the resume hint printed; exit code 143."""
    signal.signal(signal.SIGTERM, _raise_terminated)
