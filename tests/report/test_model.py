"""The typed report model: `report_data` returns it, its JSON form round-trips exactly (a
saved report read back writes the same bytes), and the transitional mapping shim reads it
like the former nested dicts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from parity.core.store import Store
from parity.report.data import report_data
from parity.report.exports import to_json
from parity.report.model import (
    Comparison,
    EvalProvider,
    Report,
    RunProvider,
    UnreachableEvalProvider,
)
from tests.report.test_history import Behaviour, make_eval, make_run

DEMO = Path(__file__).parent / "demo_report.json"


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> tuple[Report, Report]:
    db = tmp_path_factory.mktemp("model") / "p.db"
    with Store(db) as store:
        run_id = make_run(store, {"ref": Behaviour(), "down": Behaviour(reachable=False)})
        eval_id = make_eval(store, {"ref": Behaviour(), "lossy": Behaviour(right=0.5)})
        return report_data(store, run_id), report_data(store, eval_id)


def test_a_stored_report_reads_back_to_the_same_json() -> None:
    saved = json.loads(DEMO.read_text(encoding="utf-8"))
    report = Report.of(saved)
    assert isinstance(report.providers[0], RunProvider)
    # Saved before the labels changed: its "inconclusive" and "faithful" read as today's
    # labels, nothing else moves, and what it reads as round-trips exactly.
    current = json.loads(
        DEMO.read_text(encoding="utf-8")
        .replace('"verdict": "inconclusive"', '"verdict": "no difference found"')
        .replace('"status": "faithful"', '"status": "no difference found"')
        .replace("(inconclusive)", "(no difference found)")
        .replace("; no significant difference found (not proven equivalent)", "")
    )
    assert current != saved
    assert report.to_dict() == current
    assert to_json(report) == json.dumps(current, indent=2) + "\n"
    assert to_json(Report.of(current)) == to_json(report)


def test_report_data_is_typed_and_its_json_round_trips(reports: tuple[Report, Report]) -> None:
    run, eval_ = reports
    ref, down = run.providers
    assert isinstance(ref, RunProvider) and isinstance(down, RunProvider)
    assert ref.accuracy is not None and ref.accuracy.accuracy is not None
    assert ref.speed is not None and ref.speed.ttft_ms.count == 5
    assert down.reachable is False and down.verdict == "unreachable"
    assert [line.status for line in run.summary] == ["reference", "unreachable"]
    lossy = eval_.providers[1]
    assert isinstance(lossy, EvalProvider) and isinstance(lossy.vs_reference, Comparison)
    assert lossy.verdict == "degraded" and lossy.pass_at_k
    for report in reports:
        text = to_json(report)
        assert to_json(Report.of(json.loads(text))) == text


def test_only_the_keys_the_producer_wrote(reports: tuple[Report, Report]) -> None:
    run, _ = reports
    ref = run.providers[0]
    assert isinstance(ref, RunProvider) and ref.accuracy is not None
    assert ref.accuracy.vs_reference is None  # the reference is not compared with itself
    assert "vs_reference" not in ref.accuracy.to_dict()
    gone = Report.of(
        {**run.to_dict(), "run": {**run.run.to_dict(), "kind": "eval"}, "providers": []}
    )
    assert gone.providers == []
    entry = {"name": "x", "reference": False, "unreachable": True, "verdict": "unreachable"}
    typed = Report.of({**gone.to_dict(), "providers": [entry]}).providers[0]
    assert isinstance(typed, UnreachableEvalProvider) and typed.to_dict() == entry


def test_mapping_shim_reads_the_json_form(reports: tuple[Report, Report]) -> None:
    run, _ = reports
    assert run["run"] == run.run.to_dict() and isinstance(run["run"], dict)
    assert run["providers"][0]["name"] == run.providers[0].name == "ref"
    assert run["providers"][0]["accuracy"]["accuracy"]["value"] == pytest.approx(0.9)
    assert run.get("parity_version") == run.parity_version
    assert "summary" in run and "nope" not in run and run.get("nope", 1) == 1
    with pytest.raises(KeyError):
        run["nope"]
    accuracy = run.providers[0].accuracy
    assert accuracy is not None and accuracy.get("vs_reference", "absent") == "absent"
