"""`parity demo` on the real local fleet, checked as a new user would read its output.

Runs the real command once per session (about four minutes on two cores): six llama.cpp
servers, every probe, the leaderboard, the store and the JSON summary.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from parity.accuracy.probe import DEFAULT_REFERENCE_REPEATS
from parity.local.fleet import fleet_status
from tests.local.test_fleet import free_ports

pytest.importorskip("llama_cpp")
pytestmark = [pytest.mark.fleet, pytest.mark.timeout(1500)]

VERDICTS = {"reference", "equivalent", "degraded", "better", "no difference found"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path_factory.mktemp("demo")
    base = free_ports(6)
    (out / "ports").write_text(" ".join(str(base + i) for i in range(6)))
    result = subprocess.run(
        [sys.executable, "-m", "parity", "demo", "--out", str(out), "--base-port", str(base)],
        capture_output=True,
        text=True,
        timeout=1400,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result, out


def servers_on(ports: list[str]) -> list[int]:
    """Pids of live llama_cpp.server processes started with one of `ports`."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            state = (proc / "stat").read_text().split()[2]
        except OSError:
            continue
        text = [a.decode(errors="replace") for a in argv]
        on_port = any(text[i + 1] in ports for i, a in enumerate(text[:-1]) if a == "--port")
        if "llama_cpp.server" in text and state != "Z" and on_port:
            found.append(int(proc.name))
    return found


def providers(out: Path) -> dict[str, dict[str, Any]]:
    data = json.loads((out / "summary.json").read_text())
    return {p["name"]: p for p in data["providers"]}


def test_demo_prints_the_leaderboard_and_stops_the_fleet(demo: tuple[Any, Path]) -> None:
    result, out = demo
    for name in (
        "reference",
        "reference-b",
        "compressed-mild",
        "compressed-severe",
        "wrong-template",
        "short-context",
    ):
        assert name in result.stdout
    assert "fleet stopped (6 servers)" in result.stderr
    report = out / "report.html"
    assert f"report: {report.resolve()}" in result.stdout
    assert "<svg" in report.read_text() and "compressed-severe" in report.read_text()
    assert fleet_status(out / "fleet") == []
    ports = (out / "ports").read_text().split()
    assert servers_on(ports) == [], "llama.cpp servers left running"
    assert "Traceback" not in result.stderr


def test_every_variant_gets_a_verdict(demo: tuple[Any, Path]) -> None:
    found = providers(demo[1])
    assert len(found) == 6
    for name, p in found.items():
        assert p["verdict"] in VERDICTS, (name, p["verdict"])
        acc = p["accuracy"]["accuracy"]
        assert acc["low"] <= acc["value"] <= acc["high"]


def test_reference_ranks_above_compressed_severe_with_non_overlapping_intervals(
    demo: tuple[Any, Path],
) -> None:
    found = providers(demo[1])
    ref = found["reference"]["accuracy"]["accuracy"]
    severe = found["compressed-severe"]["accuracy"]["accuracy"]
    assert severe["high"] < ref["low"]


def test_faults_come_out_worse_and_the_control_does_not(demo: tuple[Any, Path]) -> None:
    found = providers(demo[1])
    for name in ("compressed-mild", "compressed-severe", "wrong-template"):
        vs = found[name]["accuracy"]["vs_reference"]
        assert vs["diff"] < 0 and vs["high"] < 0, (name, vs)
        assert found[name]["verdict"] == "degraded"
    assert found["reference-b"]["verdict"] in ("equivalent", "no difference found")
    assert found["short-context"]["verdict"] in ("equivalent", "no difference found")


def test_conformance_catches_the_template_and_the_context(demo: tuple[Any, Path]) -> None:
    found = providers(demo[1])

    def status(name: str, check: str) -> str:
        return next(c["status"] for c in found[name]["conformance"] if c["id"] == check)

    assert status("wrong-template", "usage.prompt_tokens") == "fail"
    assert status("short-context", "context.advertised") == "fail"
    assert status("reference-b", "usage.prompt_tokens") == "pass"
    assert status("reference-b", "context.advertised") == "pass"
    ref_passed = {c["id"] for c in found["reference"]["conformance"] if c["status"] == "pass"}
    b_passed = {c["id"] for c in found["reference-b"]["conformance"] if c["status"] == "pass"}
    assert ref_passed <= b_passed


def test_store_holds_every_exchange_once(demo: tuple[Any, Path]) -> None:
    db = sqlite3.connect(demo[1] / "parity.db")
    query = "SELECT provider, key, COUNT(*) FROM exchanges GROUP BY provider, key"
    rows = db.execute(query).fetchall()
    assert all(n == 1 for *_, n in rows)
    per_provider = {p: 0 for p, *_ in rows}
    for p, *_ in rows:
        per_provider[p] += 1
    # The same requests everywhere, and the reference's extra accuracy repeats (80 x 2 x 3).
    extra = 80 * 2 * (DEFAULT_REFERENCE_REPEATS - 1)
    others = {n for p, n in per_provider.items() if p != "reference"}
    assert len(per_provider) == 6 and len(others) == 1
    assert per_provider["reference"] == others.pop() + extra
    (status,) = db.execute("SELECT status FROM runs").fetchone()
    assert status == "finished"
