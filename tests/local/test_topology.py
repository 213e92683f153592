"""How `fleet_up` wires the vLLM variants, the shared topology and --faults-upstream, with
stand-in processes (a sleeping Python per server) instead of real engines: the commands,
ports, environment and providers file, and that `fleet_down` stops every one."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from parity.cli.main import app
from parity.core.config import load_providers
from parity.core.errors import FleetError
from parity.local import fleet as fleet_module
from parity.local.fleet import SHARED_ENGINE, fleet_down, fleet_status, fleet_up
from parity.local.variants import DEFAULT_VARIANTS, VARIANTS, fleet_reference
from parity.local.vllm_engine import VLLM_MAX_CONCURRENCY, VLLM_MODULE
from tests.local.test_fleet import free_ports, gone

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]


@pytest.fixture
def spawned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """Every server `fleet_up` starts, as {name, command, port, env}; each really runs as
    a sleeping Python, and nothing waits for it to answer."""
    calls: list[dict[str, Any]] = []
    real_spawn = fleet_module._spawn

    def spawn(
        name: str,
        command: list[str],
        port: int,
        state_dir: Path,
        model: Path,
        env: dict[str, str] | None = None,
    ) -> Any:
        calls.append({"name": name, "command": command, "port": port, "env": env})
        server = real_spawn(name, SLEEPER, port, state_dir, model)
        server.command = command  # what the fleet meant to run, for its checks
        return server

    model = tmp_path / "model.gguf"
    model.write_bytes(b"")
    monkeypatch.setattr(fleet_module, "_spawn", spawn)
    monkeypatch.setattr(fleet_module, "_wait_ready", lambda *a, **k: None)
    monkeypatch.setattr(fleet_module, "_check_engine", lambda: None)
    monkeypatch.setattr(fleet_module, "check_vllm", lambda python: None)
    monkeypatch.setattr(fleet_module, "weights_file", lambda variant, cache: model)
    monkeypatch.setattr(fleet_module, "shipped_model_path", lambda: model)
    monkeypatch.setattr(
        fleet_module, "hf_model_dir", lambda source, cache, python, log: tmp_path / "hf"
    )
    yield calls


def by_name(calls: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {call["name"]: call for call in calls}


def flag(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_the_default_fleet_is_the_six_llama_variants() -> None:
    assert list(DEFAULT_VARIANTS) == [
        "reference",
        "reference-b",
        "compressed-mild",
        "compressed-severe",
        "wrong-template",
        "short-context",
    ]
    assert [v.name for v in fleet_module._resolve_variants(None)] == list(DEFAULT_VARIANTS)
    assert {VARIANTS[n].engine for n in ("reference-vllm", "reference-vllm-b")} == {"vllm"}
    shared = ("shared-reference", "shared-reference-b")
    assert {VARIANTS[n].engine for n in shared} == {"shared"}


def test_the_fleet_reference() -> None:
    assert fleet_reference(["reference-b", "reference", "reference-vllm"]) == "reference"
    assert fleet_reference(["reference-vllm-b", "reference-vllm"]) == "reference-vllm"
    assert fleet_reference(["shared-reference-b", "shared-reference"]) == "shared-reference"
    assert fleet_reference(["reference-b", "compressed-mild"]) is None


def test_vllm_variants(tmp_path: Path, spawned: list[dict[str, Any]]) -> None:
    state = tmp_path / "state"
    base = free_ports(2)
    path = fleet_up(state, ["reference-vllm", "reference-vllm-b"], base_port=base)
    try:
        calls = by_name(spawned)
        assert list(calls) == ["reference-vllm", "reference-vllm-b"]
        for index, name in enumerate(calls):
            command = calls[name]["command"]
            assert command[1:3] == ["-m", VLLM_MODULE]
            assert flag(command, "--host") == "127.0.0.1"
            assert flag(command, "--port") == str(base + index)
            assert flag(command, "--model") == str(tmp_path / "hf")
            env = calls[name]["env"]
            assert env["VLLM_NO_USAGE_STATS"] == "1" and env["HF_HUB_OFFLINE"] == "1"
        binds = {calls[n]["env"]["VLLM_CPU_OMP_THREADS_BIND"] for n in calls}
        assert len(binds) == min(2, fleet_module.os.cpu_count() or 1)
        providers = load_providers(path)
        assert [p.name for p in providers.providers] == ["reference-vllm", "reference-vllm-b"]
        reference = providers.reference()
        assert reference is not None and reference.name == "reference-vllm"
        assert {p.max_concurrency for p in providers.providers} == {VLLM_MAX_CONCURRENCY}
        assert "on vLLM" in path.read_text()
        assert all(s.alive for s in fleet_status(state))
    finally:
        stopped = fleet_down(state)
    assert stopped == ["reference-vllm", "reference-vllm-b"]


def test_shared_variants_are_proxies_in_front_of_one_engine(
    tmp_path: Path, spawned: list[dict[str, Any]]
) -> None:
    state = tmp_path / "state"
    base = free_ports(3)
    path = fleet_up(state, ["shared-reference", "shared-reference-b"], base_port=base)
    try:
        calls = by_name(spawned)
        assert list(calls) == [SHARED_ENGINE, "shared-reference", "shared-reference-b"]
        engine = calls[SHARED_ENGINE]["command"]
        assert engine[1:3] == ["-m", fleet_module.SERVER_MODULE]  # ONE llama.cpp server
        assert flag(engine, "--host") == "127.0.0.1"
        assert flag(engine, "--port") == str(base + 2)  # after the variants' ports
        assert flag(engine, "--interrupt_requests") == "False"
        for index, name in enumerate(["shared-reference", "shared-reference-b"]):
            proxy = calls[name]["command"]
            assert proxy[1:3] == ["-m", fleet_module.PROXY_MODULE]
            assert flag(proxy, "--upstream") == f"http://127.0.0.1:{base + 2}/v1"
            assert flag(proxy, "--faults") == ""  # plain: no fault
            assert flag(proxy, "--port") == str(base + index)
        providers = load_providers(path)
        names = [p.name for p in providers.providers]
        assert names == ["shared-reference", "shared-reference-b"]  # the engine is no provider
        reference = providers.reference()
        assert reference is not None and reference.name == "shared-reference"
        assert [p.base_url for p in providers.providers] == [
            f"http://127.0.0.1:{base}/v1",
            f"http://127.0.0.1:{base + 1}/v1",
        ]
        assert {p.max_concurrency for p in providers.providers} == {1}
        assert f"shared llama.cpp server on port {base + 2}" in path.read_text()
        assert [s.variant for s in fleet_status(state)] == list(calls)
        pids = [s.pid for s in fleet_status(state)]
    finally:
        stopped = fleet_down(state)
    assert sorted(stopped) == sorted([SHARED_ENGINE, "shared-reference", "shared-reference-b"])
    assert all(gone(pid) for pid in pids)


def test_shared_next_to_dedicated_servers(tmp_path: Path, spawned: list[dict[str, Any]]) -> None:
    state = tmp_path / "state"
    chosen = ["reference", "reference-b", "shared-reference", "shared-reference-b"]
    path = fleet_up(state, chosen, base_port=free_ports(5))
    try:
        calls = by_name(spawned)
        assert sum(c["command"][2] == fleet_module.SERVER_MODULE for c in spawned) == 3
        assert flag(calls["shared-reference"]["command"], "--upstream").endswith(
            f":{calls[SHARED_ENGINE]['port']}/v1"
        )
        reference = load_providers(path).reference()
        assert reference is not None and reference.name == "reference"
    finally:
        fleet_down(state)


def test_faults_go_in_front_of_the_named_upstream(
    tmp_path: Path, spawned: list[dict[str, Any]]
) -> None:
    state = tmp_path / "state"
    base = free_ports(4)
    path = fleet_up(
        state,
        ["reference", "reference-vllm"],
        base_port=base,
        faults=["drop=seed", "drop-usage"],
        faults_upstream="reference-vllm",
    )
    try:
        calls = by_name(spawned)
        for name in ("faulty-drop-seed", "faulty-drop-usage"):
            proxy = calls[name]["command"]
            assert flag(proxy, "--upstream") == f"http://127.0.0.1:{base + 1}/v1"
        text = path.read_text()
        assert "in front of reference-vllm: drop=seed" in text
        faulty = {p.name: p for p in load_providers(path).providers}["faulty-drop-seed"]
        assert faulty.max_concurrency == VLLM_MAX_CONCURRENCY
    finally:
        fleet_down(state)


def test_faults_default_to_the_fleets_reference(
    tmp_path: Path, spawned: list[dict[str, Any]]
) -> None:
    state = tmp_path / "state"
    base = free_ports(3)
    fleet_up(state, ["reference-vllm", "reference-vllm-b"], base_port=base, faults=["drop=n"])
    try:
        proxy = by_name(spawned)["faulty-drop-n"]["command"]
        assert flag(proxy, "--upstream") == f"http://127.0.0.1:{base}/v1"
    finally:
        fleet_down(state)


@pytest.mark.parametrize(
    ("variants", "faults", "upstream", "message"),
    [
        (["reference-b"], ["drop=seed"], None, "in front of the reference: include it"),
        (["reference"], ["drop=seed"], "reference-vllm", "reference-vllm: not among"),
        (["reference"], ["drop=seed"], "nonsense", "nonsense: not among"),
        (["reference"], [], "reference", "give --faults too"),
    ],
)
def test_bad_faults_upstream_fails_before_anything_starts(
    tmp_path: Path,
    spawned: list[dict[str, Any]],
    variants: list[str],
    faults: list[str],
    upstream: str | None,
    message: str,
) -> None:
    with pytest.raises(FleetError, match=message):
        fleet_up(tmp_path / "s", variants, base_port=free_ports(3), faults=faults,
                 faults_upstream=upstream)  # fmt: skip
    assert spawned == []


def test_the_cli_takes_faults_upstream(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["local", "up", "--state-dir", str(tmp_path), "--variants", "reference",
         "--faults", "drop=seed", "--faults-upstream", "reference-vllm"],
    )  # fmt: skip
    assert isinstance(result.exception, FleetError)  # main() prints it in one line, exit 2
    assert "--faults-upstream reference-vllm: not among" in str(result.exception)
    assert not (tmp_path / "fleet.json").exists()


def test_the_cli_names_the_new_variants() -> None:
    result = CliRunner().invoke(app, ["local", "up", "--variants", "reference,no-such"])
    assert isinstance(result.exception, FleetError)
    for name in ("reference-vllm", "reference-vllm-b", "shared-reference", "shared-reference-b"):
        assert name in str(result.exception)
