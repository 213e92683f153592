"""Every error a user can act on, in one hierarchy; each renders as one line, never a
traceback, and exits with its `exit_code`:

    ParityError            (2)  anything parity reports as one line
    ├── ConfigError        (2)  a providers file, suite, option or store path is wrong
    ├── FleetError         (2)  the local fleet cannot be started, found or stopped
    ├── StoreError         (2)  the store cannot be opened or written: read-only, full,
    │                           locked, not a store, damaged, folder missing or gone
    ├── RunBusy            (2)  another process holds the run's lease (is writing it)
    │   └── LeaseLost      (2)  this process's lease lapsed and another took the run over
    └── RunInterrupted   (130)  Ctrl-C (143: SIGTERM) stopped a run; what it measured is stored

Library code raises these (never `typer.Exit`, never a bare KeyError/ValueError for a
user's mistake); the CLI's entry point turns them into the line and the exit code.
"""


class ParityError(Exception):
    """A user-facing error: the CLI prints its message on one line and exits with `exit_code`."""

    exit_code = 2


class ConfigError(ParityError):
    """The providers file, a suite, a command-line option or a store path is wrong."""


class FleetError(ParityError):
    """The local provider fleet cannot be started, found or stopped."""


class StoreError(ParityError):
    """The store cannot be opened, read or written (read-only, full, locked, not a store,
    damaged, its folder missing); the message names the path and what to do."""


class RunBusy(ParityError):
    """Another process is writing the run (holds its lease): a second writer is refused."""


class LeaseLost(RunBusy):
    """This process could not renew its lease in time and another process took the run
    over: this one stops writing (the run is the other's now)."""


class RunInterrupted(ParityError):
    """A run was stopped by Ctrl-C (exit code 130) or SIGTERM (143); what it measured is
    stored."""

    exit_code = 130
