"""Fixtures shared by every test folder: a real PostgreSQL server (tests/postgres.py)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from tests.postgres import PostgresServer, find_bin


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the session (initdb + pg_ctl on 127.0.0.1, a free port),
    stopped after. Without PostgreSQL installed: a failure under CI=1 (.ci/run installs
    Debian's postgresql), a skip otherwise."""
    bindir = find_bin()
    if bindir is None:
        message = (
            "PostgreSQL is not installed (no initdb on PATH or in /usr/lib/postgresql/*/bin):"
            " apt-get install postgresql"
        )
        if os.environ.get("CI") == "1":
            pytest.fail(message)
        pytest.skip(message)
    server = PostgresServer(bindir)
    try:
        server.start()
    except Exception:
        server.stop()
        raise
    yield server
    server.stop()


@pytest.fixture
def pg_url(postgres_server: PostgresServer) -> str:
    """The URL (password included) of a new, empty database on the session's server."""
    return postgres_server.database()


@pytest.fixture
def new_pg_url(postgres_server: PostgresServer) -> Callable[[], str]:
    """Make more new databases in one test."""
    return postgres_server.database
