"""Ctrl-C and SIGTERM end every run-shaped command the same way: exit 130 (SIGTERM: 143, as
`timeout` and shells expect), the run marked
interrupted in the store, one line saying what is stored and (where the command resumes) how
to continue. Real `parity` processes against the scripted server, signalled mid-run."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from tests.cli.test_main import PARITY, provider_toml
from tests.scripted_server import Reply, Request, ScriptedServer, ok


async def slow(req: Request, reply: Reply) -> None:
    await asyncio.sleep(0.3)
    await ok(req, reply)


def sigint_default() -> None:
    """In the child before exec: SIGINT back to its default. A shell starting a job in the
    background without job control (`cmd &` in a script, as a CI runner may) starts it with
    SIGINT ignored, which its children inherit, and Python then installs no Ctrl-C handler:
    the test would signal a process that, by POSIX convention, rightly ignores it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def started(db: Path) -> bool:
    """True once the run is in the store with at least one exchange."""
    if not db.exists():
        return False
    try:
        return bool(sqlite3.connect(db).execute("SELECT 1 FROM exchanges LIMIT 1").fetchone())
    except sqlite3.OperationalError:
        return False


COMMANDS = {
    "run": ["run", "--repeats", "3", "--no-conformance"],
    "eval": ["eval", "--fixed", "--repeats", "3"],
    "conform": ["conform", "--checks", "params"],
    "bench": ["bench", "--requests", "50", "--workload", "100", "--tokenizer", "none"],
}


@pytest.mark.parametrize(
    ("command", "sig"),
    [
        ("run", signal.SIGINT),
        ("run", signal.SIGTERM),
        ("eval", signal.SIGTERM),
        ("conform", signal.SIGTERM),
        ("bench", signal.SIGTERM),
    ],
)
def test_a_signal_mid_run_interrupts_it_the_same_way(
    tmp_path: Path, command: str, sig: signal.Signals
) -> None:
    with ScriptedServer(scenarios={"slow": slow}) as server:
        path = tmp_path / "providers.toml"
        path.write_text(
            provider_toml("a", server.base("slow"), reference=True, concurrency=1)
            + provider_toml("b", server.base("slow"), concurrency=1)
        )
        db = tmp_path / "p.db"
        args = [*COMMANDS[command], "--db", str(db)]
        if command == "bench":
            args += ["--out", str(tmp_path / "bench")]
        proc = subprocess.Popen(
            [*PARITY, args[0], str(path), *args[1:]],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=sigint_default,
        )
        deadline = time.monotonic() + 60
        while not started(db) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, stderr
    (run_id, status) = sqlite3.connect(db).execute("SELECT id, status FROM runs").fetchone()
    assert status == "interrupted"
    assert "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith(f"parity: interrupted: run {run_id}, "), last
    if command == "bench":
        assert "does not resume" in last
    else:
        assert f"continue with: parity {command} --db {db} --resume {run_id}" in last
