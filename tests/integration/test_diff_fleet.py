"""Two runs on the real fleet, the second with a provider silently serving compressed
weights: `parity diff` must name the regression (exit 1), and history must show both."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from parity.core.config import load_providers
from parity.local.fleet import fleet_down, fleet_up
from tests.local.test_fleet import free_ports

pytest.importorskip("llama_cpp")
pytestmark = [pytest.mark.fleet, pytest.mark.timeout(900)]


def parity(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "parity", *args],
        capture_output=True,
        text=True,
        timeout=800,
        env={**os.environ, "COLUMNS": "200"},
    )


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    state = tmp_path_factory.mktemp("fleet")
    providers = fleet_up(state, ["reference", "reference-b", "compressed-severe"], free_ports(3))
    try:
        yield providers
    finally:
        fleet_down(state)


def test_diff_names_a_provider_that_swapped_its_model(fleet: Path, tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    options = ["--db", str(db), "--repeats", "1", "--speed-requests", "2", "--no-conformance"]
    first = parity("run", str(fleet), *options)
    assert first.returncode == 1, first.stderr  # compressed-severe is degraded
    # Same provider name, same URL in the file: its server now runs the compressed weights.
    providers = load_providers(fleet)
    severe = next(p for p in providers.providers if p.name == "compressed-severe")
    swapped = fleet.read_text().replace(
        next(p for p in providers.providers if p.name == "reference-b").base_url,
        severe.base_url,
    )
    second_file = tmp_path / "providers-swapped.toml"
    second_file.write_text(swapped)
    second = parity("run", str(second_file), *options)
    assert second.returncode == 1
    runs = [
        line.split("│")[1].strip()
        for line in parity("runs", "--db", str(db)).stdout.splitlines()
        if line.count("│") > 3 and "run" not in line.split("│")[1]
    ]
    newest, oldest = runs[0], runs[-1]
    diff = parity("diff", oldest, newest, "--db", str(db))
    assert diff.returncode == 1, diff.stdout + diff.stderr
    regressions = [line for line in diff.stdout.splitlines() if "reference-b" in line]
    assert any("accuracy" in line for line in regressions), diff.stdout
    unchanged = parity("diff", oldest, oldest, "--db", str(db))
    assert unchanged.returncode == 0
    history = parity("history", "--db", str(db), "--provider", "reference-b")
    assert history.returncode == 0 and oldest in history.stdout and newest in history.stdout
