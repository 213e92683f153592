"""Honest labels in every output: "equivalent" only when the corrected interval lies within
the margin, "no difference found" (never "faithful", never green) when nothing was shown
either way, "degraded" when the corrected test finds a difference; an old saved report's
labels read as today's.

One store: a reference (90% right, 4x its repeats), a twin answering exactly as it does
(equivalent), a provider 5 points lower on 4 problems (nothing shown: no difference found)
and a lossy one (degraded); two such runs for history and diff, and a fixed eval."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from rich.console import Console

from parity.core.analysis import analyse_run
from parity.core.plan import RunOptions
from parity.core.store import Store
from parity.report.csv_export import csv_rows
from parity.report.data import report_data
from parity.report.eval_table import eval_table
from parity.report.exports import to_json
from parity.report.history import diff, history
from parity.report.history_table import STATUS_STYLE, diff_table, history_table
from parity.report.html import STATUS_COLOR, render_html
from parity.report.junit import to_junit
from parity.report.markdown import to_markdown
from parity.report.model import Report
from parity.report.terminal import VERDICT_STYLE, leaderboard
from tests.report.test_history import Behaviour, make_eval, make_run

OPTIONS = RunOptions(repeats=2, speed_requests=2, reference_repeats=4)
FLEET = {
    "ref": Behaviour(),
    "twin": Behaviour(),
    "near": Behaviour(right=0.85),
    "lossy": Behaviour(right=0.4),
}
STATUSES = {"ref": "reference", "twin": "equivalent", "near": "no difference found"}
OLD = ("faithful", "inconclusive")
GREEN = "#1a7f37"


@pytest.fixture(scope="module")
def store_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str, str]:
    db = tmp_path_factory.mktemp("labels") / "p.db"
    with Store(db) as store:
        first = make_run(store, FLEET, OPTIONS)
        second = make_run(store, {**FLEET, "near": Behaviour(right=0.9)}, OPTIONS)
        eval_id = make_eval(store, FLEET, repeats=4)
    return db, first, second, eval_id


def text_of(renderable: object) -> str:
    console = Console(width=250, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_the_verdicts_and_their_statuses(store_runs: tuple[Path, str, str, str]) -> None:
    db, first, _, _ = store_runs
    with Store(db) as store:
        report = report_data(store, first)
    verdicts = {p.name: p.verdict for p in report.providers}
    assert verdicts == {
        "ref": "reference",
        "twin": "equivalent",
        "near": "no difference found",
        "lossy": "degraded",
    }
    lines = {line.name: line for line in report.summary}
    assert {n: lines[n].status for n in STATUSES} == STATUSES
    assert lines["lossy"].status in ("degraded", "suspicious")
    assert "not shown to differ, nor to be within ±3 points" in lines["near"].why
    ref = report.providers[0]
    assert ref.accuracy is not None and ref.accuracy.repeats == 8  # 2 x 4
    for p in report.providers[1:]:
        vs = p.accuracy.vs_reference if p.accuracy else None  # type: ignore[union-attr]
        assert vs is not None and vs.correction == "holm" and vs.family == 3
        assert (vs.p_value < 0.05) == (vs.high < 0 or vs.low > 0)


def test_terminal_leaderboard(store_runs: tuple[Path, str, str, str]) -> None:
    db, first, _, _ = store_runs
    with Store(db) as store:
        results = analyse_run(store, first, OPTIONS)
    text = text_of(leaderboard(results, "t"))
    assert "no difference found" in text and "equivalent" in text and "degraded" in text
    assert "Holm CI" in text
    assert not any(old in text for old in OLD)
    assert VERDICT_STYLE["equivalent"] == "green"
    assert "green" not in VERDICT_STYLE["no difference found"]
    assert "inconclusive" not in VERDICT_STYLE


def test_html(store_runs: tuple[Path, str, str, str]) -> None:
    db, first, _, _ = store_runs
    with Store(db) as store:
        text = render_html(report_data(store, first))
    assert 'class="verdict v-equivalent"' in text
    assert 'class="verdict v-no-difference-found"' in text
    assert '<span class="pill s-no-difference-found">no difference found</span>' in text
    assert "faithful" not in text and "inconclusive" not in text
    assert STATUS_COLOR["equivalent"] == GREEN
    assert STATUS_COLOR["no difference found"] != GREEN
    css = (Path(__file__).parents[2] / "src/parity/report/templates/report.css").read_text()
    rule = re.search(r"\.s-no-difference-found\{background:var\(--(\w+)\)", css)
    assert rule is not None and rule.group(1) == "nodiff"
    assert "--nodiff:#9a6700" in css


def test_json_csv_junit_markdown(store_runs: tuple[Path, str, str, str]) -> None:
    db, first, _, _ = store_runs
    with Store(db) as store:
        report = report_data(store, first)
    text = to_json(report)
    assert not any(f'"{old}"' in text for old in OLD)
    data = json.loads(text)
    by_name = {p["name"]: p for p in data["providers"]}
    assert by_name["near"]["verdict"] == "no difference found"
    assert by_name["near"]["accuracy"]["vs_reference"]["verdict"] == "no difference found"
    assert {s["name"]: s["status"] for s in data["summary"]}["twin"] == "equivalent"

    rows = csv_rows(report)
    status = {r["provider"]: r["value"] for r in rows if r["metric"] == "status"}
    assert status["near"] == "no difference found" and status["twin"] == "equivalent"

    root = ET.fromstring(to_junit(report))
    props = {
        s.get("name"): {p.get("name"): p.get("value") for p in s.iter("property")}
        for s in root.iter("testsuite")
    }
    assert props["near"]["verdict"] == "no difference found"
    near = next(s for s in root.iter("testsuite") if s.get("name") == "near")
    case = next(c for c in near.iter("testcase") if c.get("name") == "accuracy vs reference")
    assert case.find("failure") is None  # nothing shown: not a failure, and not called a pass
    out = case.findtext("system-out") or ""
    assert "no difference found" in out and "Holm-corrected" in out
    assert "no difference found is not equivalence" in out

    md = to_markdown(report)
    assert "- ✅ **twin** equivalent:" in md
    assert "- ➖ **near** no difference found:" in md
    assert "✅ **near**" not in md
    assert not any(old in md for old in OLD)


def test_history_and_diff(store_runs: tuple[Path, str, str, str]) -> None:
    db, first, second, _ = store_runs
    with Store(db) as store:
        rows = [r for r in history(store) if r["run_id"] in (first, second)]
        result = diff(store, first, second)
    near = [r for r in rows if r["provider"] == "near"]
    assert [r["status"] for r in near] == ["no difference found", "equivalent"]
    table = text_of(history_table(rows))
    assert "no difference found" in table and not any(old in table for old in OLD)
    assert STATUS_STYLE["equivalent"] == "green"
    assert "green" not in STATUS_STYLE["no difference found"]
    assert "faithful" not in STATUS_STYLE
    entry = next(p for p in result["providers"] if p["name"] == "near")
    assert entry["verdict"] == {"a": "no difference found", "b": "equivalent"}
    assert "near: status no difference found -> equivalent" in result["changes"]
    assert "no difference found" in text_of(diff_table(result))


def test_eval_table(store_runs: tuple[Path, str, str, str]) -> None:
    db, _, _, eval_id = store_runs
    with Store(db) as store:
        report = report_data(store, eval_id)
    results = [p.to_dict() for p in report.providers]
    text = text_of(eval_table(results, "e"))
    verdicts = {r["name"]: r["verdict"] for r in results}
    assert verdicts["twin"] == "equivalent" and verdicts["lossy"] == "degraded"
    assert verdicts["near"] == "no difference found"
    assert "no difference found" in text and not any(old in text for old in OLD)
    near = next(r for r in results if r["name"] == "near")["vs_reference"]
    assert near["correction"] == "holm" and "Holm over 3" in near["method"]


def test_an_old_saved_report_reads_with_todays_labels() -> None:
    saved = json.loads((Path(__file__).parent / "demo_report.json").read_text())
    assert any(s["status"] == "faithful" for s in saved["summary"])
    report = Report.of(saved)
    assert [s.status for s in report.summary if s.name == "reference-b"] == ["no difference found"]
    for text in (to_json(report), to_markdown(report), to_junit(report), render_html(saved)):
        assert "faithful" not in text and "inconclusive" not in text
