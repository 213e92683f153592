"""The Python API: each pillar as a function with a typed result, against the scripted
server on loopback (a real HTTP server)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import parity
from parity.api import BenchResult, ConformResult, EvalResult, RunResult
from parity.core.analysis import ProviderResult
from parity.report.model import Report
from tests.scripted_server import MODEL_ID, ScriptedServer


def fleet(server: ScriptedServer) -> list[parity.Provider]:
    return [
        parity.Provider(name="ref", base_url=server.base("ok"), model=MODEL_ID, reference=True),
        parity.Provider(name="b", base_url=server.base("ok"), model=MODEL_ID),
    ]


def test_import_parity_is_cheap_and_exposes_the_api() -> None:
    code = "import parity, sys; print('parity.api' in sys.modules, callable(parity.run))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.split() == ["False", "True"], out.stderr


def test_run_returns_typed_results_and_the_report_model(tmp_path: Path) -> None:
    with ScriptedServer() as server:
        result = parity.run(
            fleet(server), db=tmp_path / "p.db", repeats=1, speed_requests=1, conformance=False
        )
    assert isinstance(result, RunResult)
    assert [p.name for p in result.providers] == ["ref", "b"]
    assert all(isinstance(p, ProviderResult) for p in result.providers)
    report = result.report()
    assert isinstance(report, Report) and report.run.id == result.run_id


def test_conform_names_required_failures(tmp_path: Path) -> None:
    with ScriptedServer() as server:
        result = parity.conform(fleet(server), checks=["usage"], db=tmp_path / "p.db")
    assert isinstance(result, ConformResult)
    assert result.failed == bool(result.failures)
    assert {row["id"].split(".")[0] for r in result.providers for row in r.conformance} == {"usage"}


def test_evaluate_and_a_target(tmp_path: Path) -> None:
    with ScriptedServer() as server:
        target = parity.Target(base_url=server.base("ok"), model=MODEL_ID)
        result = parity.evaluate(
            target, db=tmp_path / "p.db", suite="easy:4", repeats=1, adaptive=False
        )
    assert isinstance(result, EvalResult)
    assert [p["name"] for p in result.providers] == ["endpoint"]


def test_bench(tmp_path: Path) -> None:
    with ScriptedServer() as server:
        result = parity.bench(
            fleet(server)[:1], db=tmp_path / "p.db", workloads=["100"], requests=2,
            tokenizer="none",
        )  # fmt: skip
    assert isinstance(result, BenchResult)
    assert [p["name"] for p in result.data["providers"]] == ["ref"]
