"""`parity local up | status | down` as a user types them, on real llama.cpp servers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from parity.core.config import load_providers
from tests.integration.test_demo import servers_on
from tests.local.test_fleet import free_ports

pytest.importorskip("llama_cpp")
pytestmark = [pytest.mark.fleet, pytest.mark.timeout(300)]


def parity(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "parity", *args], capture_output=True, text=True, timeout=240
    )


def test_local_up_status_down(tmp_path: Path) -> None:
    base = free_ports(2)
    state = ["--state-dir", str(tmp_path)]
    two = ["--variants", "reference,short-context"]
    up = parity("local", "up", *state, "--base-port", str(base), *two)
    try:
        assert up.returncode == 0, up.stderr
        path = Path(up.stdout.strip())
        providers = load_providers(path)
        assert [p.name for p in providers.providers] == ["reference", "short-context"]
        assert all(p.base_url.startswith("http://127.0.0.1:") for p in providers.providers)
        status = parity("local", "status", *state)
        assert status.stdout.count("yes") == 2
        check = parity("providers", "check", str(path))
        assert check.returncode == 0, check.stdout
        again = parity("local", "up", *state, "--base-port", str(base))
        assert again.returncode == 2 and "parity local down" in again.stderr
        assert len(again.stderr.strip().splitlines()) == 1
    finally:
        down = parity("local", "down", *state)
    assert down.returncode == 0 and "reference" in down.stdout
    assert servers_on([str(base), str(base + 1)]) == []
    assert "nothing was running" in parity("local", "down", *state).stdout


def test_busy_port_is_one_clear_line(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = parity(
            "local",
            "up",
            "--state-dir",
            str(tmp_path),
            "--base-port",
            str(port),
            "--variants",
            "reference",
        )
    assert result.returncode == 2
    assert str(port) in result.stderr and len(result.stderr.strip().splitlines()) == 1
