"""Errors a user can act on: each renders as one line, never a traceback."""


class ParityError(Exception):
    """A user-facing error: the CLI prints its message on one line and exits with `exit_code`."""

    exit_code = 2


class ConfigError(ParityError):
    """The providers file or a command-line option is wrong."""


class FleetError(ParityError):
    """The local provider fleet cannot be started, found or stopped."""
