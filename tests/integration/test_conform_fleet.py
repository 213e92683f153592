"""`parity conform` on the real local fleet, with `parity local up --faults` proxies: the
findings the brief asks for, on a real llama.cpp server (a few checks, to keep CI short;
the README shows a full run)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from parity.local.fleet import fleet_down, fleet_status, fleet_up
from tests.local.test_fleet import free_ports

pytest.importorskip("llama_cpp")
pytestmark = [pytest.mark.fleet, pytest.mark.timeout(900)]

VARIANTS = ["reference", "wrong-template", "short-context"]
FAULTS = ["drop=temperature", "inflate-usage=20"]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    state = tmp_path_factory.mktemp("fleet")
    providers = fleet_up(
        state, VARIANTS, base_port=free_ports(len(VARIANTS) + len(FAULTS)), faults=FAULTS
    )
    try:
        yield state, providers
    finally:
        fleet_down(state)


def test_fault_proxies_are_part_of_the_fleet(fleet: tuple[Path, Path]) -> None:
    state, providers = fleet
    text = providers.read_text()
    assert 'name = "faulty-drop-temperature"' in text and "faulty-inflate-usage-20" in text
    statuses = {s.variant: s.alive for s in fleet_status(state)}
    assert statuses == {
        **dict.fromkeys(VARIANTS, True),
        "faulty-drop-temperature": True,
        "faulty-inflate-usage-20": True,
    }


def test_conform_finds_the_fleet_faults(fleet: tuple[Path, Path], tmp_path: Path) -> None:
    _, providers = fleet
    checks = "usage.prompt_tokens,usage.completion_tokens,context,params.temperature_zero"
    result = subprocess.run(
        [
            sys.executable, "-m", "parity", "conform", str(providers), "--checks", checks,
            "--db", str(tmp_path / "c.db"), "--json", str(tmp_path / "c.json"),
        ],
        capture_output=True,
        text=True,
        timeout=800,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    data = json.loads((tmp_path / "c.json").read_text())
    status = {
        (p["name"], c["id"]): (c["status"], c["figure"])
        for p in data["providers"]
        for c in p["conformance"]
    }
    # The reference passes what it can; reference-bound checks are n/a on itself.
    assert status[("reference", "context.advertised")][0] == "pass"
    assert status[("reference", "params.temperature_zero")][0] == "pass"
    assert status[("reference", "usage.prompt_tokens")][0] == "n/a"
    # A different chat template costs other prompt tokens.
    assert status[("wrong-template", "usage.prompt_tokens")][0] == "fail"
    # A 1024-token server selling 4096 refuses the long document, loudly.
    context = status[("short-context", "context.advertised")]
    assert context[0] == "fail" and "refused" in context[1]
    # Proxies in front of the reference: a dropped temperature, an inflated bill.
    assert status[("faulty-drop-temperature", "params.temperature_zero")][0] == "fail"
    overcharge = status[("faulty-inflate-usage-20", "usage.completion_tokens")]
    assert overcharge[0] == "fail" and "+2" in overcharge[1]  # about +20%
    assert status[("faulty-inflate-usage-20", "params.temperature_zero")][0] == "pass"
