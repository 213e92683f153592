"""`parity eval` on the real local fleet: verdicts, adaptive savings, and the hard suites
running end to end (the 135M model scores about zero on them, which is fine)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from parity.accuracy.probe import DEFAULT_REFERENCE_REPEATS
from parity.local.fleet import fleet_down, fleet_up
from tests.local.test_fleet import free_ports

pytest.importorskip("llama_cpp")
pytestmark = [pytest.mark.fleet, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    state = tmp_path_factory.mktemp("fleet")
    variants = ["reference", "reference-b", "compressed-severe"]
    providers = fleet_up(state, variants, base_port=free_ports(3))
    try:
        yield providers
    finally:
        fleet_down(state)


def parity_eval(providers: Path, out: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "parity",
            "eval",
            str(providers),
            "--db",
            str(out / "p.db"),
            "--json",
            str(out / "eval.json"),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=800,
        env={**os.environ, "COLUMNS": "200"},
    )
    data = json.loads((out / "eval.json").read_text()) if (out / "eval.json").exists() else {}
    return result.returncode, {p["name"]: p for p in data.get("providers", [])}, result.stdout


def test_adaptive_eval_on_the_fleet(fleet: Path, tmp_path: Path) -> None:
    code, found, stdout = parity_eval(fleet, tmp_path)
    assert code == 1  # compressed-severe is degraded
    severe = found["compressed-severe"]
    assert severe["vs_reference"]["verdict"] == "degraded"
    assert severe["vs_reference"]["high"] < 0
    assert found["reference-b"]["vs_reference"]["verdict"] in ("equivalent", "no difference found")
    assert severe["tokens"] < severe["fixed_design_tokens"]
    assert "vs fixed" in stdout and f"{severe['tokens']:,}" in stdout


@pytest.mark.parametrize(("suite", "max_tokens"), [("aime2025:3", "48"), ("gsm8k:5", "64")])
def test_hard_suites_run_end_to_end(
    fleet: Path, tmp_path: Path, suite: str, max_tokens: str
) -> None:
    code, found, _ = parity_eval(
        fleet, tmp_path, "--suite", suite, "--max-tokens", max_tokens, "--repeats", "1", "--fixed"
    )
    assert code in (0, 1)
    assert set(found) == {"reference", "reference-b", "compressed-severe"}
    for p in found.values():
        factor = DEFAULT_REFERENCE_REPEATS if p["reference"] else 1
        assert p["errors"] == 0 and p["samples"] == int(suite.split(":")[1]) * factor
        assert p["accuracy"] is not None
