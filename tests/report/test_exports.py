"""CSV, JUnit XML and Markdown drawn from the report model of synthetic runs: a reference, a
degraded provider, one failing a conformance check and one unreachable."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from parity.cli.main import app
from parity.core.store import Store
from parity.report.csv_export import COLUMNS
from parity.report.data import report_data
from parity.report.exports import eval_json, to_csv, to_junit, to_markdown, write_exports
from tests.report.test_history import Behaviour, make_eval, make_run

PROVIDERS = {
    "ref": Behaviour(),
    "lossy": Behaviour(right=0.5),
    "sloppy": Behaviour(usage=False),
    "down": Behaviour(reachable=False),
}
SCALARS = [
    "status",
    "verdict",
    "ttft_ms_p50",
    "ttfat_ms_p50",
    "output_tokens_per_s_p50",
    "e2e_ms_p50",
    "accuracy",
    "accuracy_diff_vs_reference",
    "p_value",
    "blended_price",
    "cost_usd",
    "conformance_passed",
    "conformance_judged",
]


@pytest.fixture(scope="module")
def store_and_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    db = tmp_path_factory.mktemp("exports") / "p.db"
    with Store(db) as store:
        run_id = make_run(store, PROVIDERS)
        eval_id = make_eval(store, {"ref": Behaviour(), "lossy": Behaviour(right=0.5)})
    return db, run_id, eval_id


@pytest.fixture(scope="module")
def data(store_and_runs: tuple[Path, str, str]) -> dict[str, Any]:
    db, run_id, _ = store_and_runs
    with Store(db) as store:
        return report_data(store, run_id)


@pytest.fixture(scope="module")
def eval_data(store_and_runs: tuple[Path, str, str]) -> dict[str, Any]:
    db, _, eval_id = store_and_runs
    with Store(db) as store:
        return report_data(store, eval_id)


def rows_by(text: str) -> dict[tuple[str, str], dict[str, str]]:
    reader = csv.DictReader(io.StringIO(text))
    assert tuple(reader.fieldnames or ()) == COLUMNS
    return {(r["provider"], r["metric"]): r for r in reader}


def test_csv_one_row_per_provider_and_metric(data: dict[str, Any]) -> None:
    text = to_csv(data)
    rows = list(csv.DictReader(io.StringIO(text)))
    by = rows_by(text)
    checks = [c["id"] for c in data["providers"][0]["conformance"]]
    assert len(checks) == 7
    for name in ("ref", "lossy", "sloppy"):
        metrics = [r["metric"] for r in rows if r["provider"] == name]
        assert metrics == SCALARS + checks
    assert all(r["run_id"] == data["run"]["id"] for r in rows)
    acc = by[("lossy", "accuracy")]
    assert acc["pillar"] == "accuracy" and acc["unit"] == "fraction" and acc["n"] == "160"
    assert float(acc["low"]) <= float(acc["value"]) == 0.5 <= float(acc["high"])
    delta = by[("lossy", "accuracy_diff_vs_reference")]
    assert float(delta["value"]) == pytest.approx(-0.4) and float(delta["high"]) < 0
    assert float(by[("lossy", "p_value")]["value"]) < 0.01
    assert by[("lossy", "verdict")]["value"] == "degraded"
    ttft = by[("ref", "ttft_ms_p50")]
    assert (ttft["pillar"], ttft["value"], ttft["n"], ttft["unit"]) == ("speed", "102", "5", "ms")
    assert float(by[("ref", "output_tokens_per_s_p50")]["value"]) > 0
    assert by[("ref", "blended_price")]["value"] == "0.175"
    assert float(by[("ref", "cost_usd")]["value"]) > 0
    assert by[("sloppy", "usage.reported")]["value"] == "fail"
    assert by[("ref", "usage.reported")]["value"] == "pass"
    statuses = {r["value"] for r in rows if r["pillar"] == "conformance" and "." in r["metric"]}
    assert statuses <= {"pass", "fail", "n/a", "error"}
    passed = by[("sloppy", "conformance_passed")]
    assert int(passed["value"]) == int(by[("lossy", "conformance_passed")]["value"]) - 1
    assert passed["n"] == by[("sloppy", "conformance_judged")]["value"]
    # Unreachable: a status and empty figures; every check an error (an outage), no fail.
    assert by[("down", "status")]["value"] == "unreachable"
    assert by[("down", "accuracy")]["value"] == "" and by[("down", "ttft_ms_p50")]["value"] == ""
    assert [r["metric"] for r in rows if r["provider"] == "down"] == SCALARS + checks
    assert {by[("down", c)]["value"] for c in checks} == {"error"}


def test_csv_of_an_eval_run_leaves_speed_and_conformance_empty(
    eval_data: dict[str, Any],
) -> None:
    by = rows_by(to_csv(eval_data))
    assert by[("lossy", "accuracy")]["value"] == "0.5"
    assert by[("lossy", "ttft_ms_p50")]["value"] == ""
    assert by[("lossy", "conformance_judged")]["value"] == ""
    assert by[("lossy", "verdict")]["value"] == "degraded"


def junit_counts(element: ET.Element) -> dict[str, int]:
    return {k: int(element.get(k, "-1")) for k in ("tests", "failures", "errors", "skipped")}


def test_junit_suites_cases_and_counts(data: dict[str, Any]) -> None:
    root = ET.fromstring(to_junit(data))
    assert root.tag == "testsuites"
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert list(suites) == list(PROVIDERS)
    totals = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)
    for suite in suites.values():
        cases = suite.findall("testcase")
        counts = junit_counts(suite)
        assert counts == {
            "tests": len(cases),
            "failures": sum(c.find("failure") is not None for c in cases),
            "errors": sum(c.find("error") is not None for c in cases),
            "skipped": sum(c.find("skipped") is not None for c in cases),
        }
        for case in cases:
            assert case.get("name") and case.get("classname")
            outcomes = [c.tag for c in case if c.tag in ("failure", "error", "skipped")]
            assert len(outcomes) <= 1
        for key in totals:
            totals[key] += counts[key]
    assert junit_counts(root) == totals

    def case(provider: str, name: str) -> ET.Element:
        found = suites[provider].find(f"testcase[@name='{name}']")
        assert found is not None
        return found

    assert junit_counts(suites["ref"])["tests"] == 1 + 7
    assert case("ref", "accuracy vs reference").find("skipped") is not None
    degraded = case("lossy", "accuracy vs reference").find("failure")
    assert degraded is not None
    message = degraded.get("message", "")
    assert "degraded" in message and "-40.0 points" in message and "bar:" in message
    check = case("sloppy", "usage.reported").find("failure")
    assert check is not None
    assert "no usage in the response" in check.get("message", "")
    assert "(bar: all)" in check.get("message", "")
    assert case("sloppy", "accuracy vs reference").find("failure") is None
    # Unreachable: its accuracy and each of its 7 checks an <error>, never a <failure>.
    assert junit_counts(suites["down"]) == {"tests": 8, "failures": 0, "errors": 8, "skipped": 0}
    outage = case("down", "usage.reported").find("error")
    assert outage is not None and outage.get("message", "").startswith("unavailable: ")
    unreachable = case("down", "accuracy vs reference").find("error")
    assert unreachable is not None and "refused" in unreachable.get("message", "")
    na = [c for c in data["providers"][0]["conformance"] if c["status"] == "n/a"]
    assert na, "the reference has a check that does not apply to it"
    assert case("ref", na[0]["id"]).find("skipped") is not None


def test_junit_stays_well_formed_with_odd_provider_text(data: dict[str, Any]) -> None:
    odd = json.loads(json.dumps(data.to_dict()))
    check = next(c for c in odd["providers"][1]["conformance"] if c["id"] == "usage.reported")
    check.update(status="fail", figure='reply "\x1b[31m<b>&\x00" was cut', bar="all ]]>")
    root = ET.fromstring(to_junit(odd))
    failure = root.find("testsuite[@name='lossy']/testcase[@name='usage.reported']/failure")
    assert failure is not None and "<b>&" in failure.get("message", "")


def test_markdown_verdicts_leaderboard_and_failed_checks(data: dict[str, Any]) -> None:
    text = to_markdown(data)
    assert text.startswith(f"### parity run {data['run']['id']}, suite easy x2, margin 3%")
    assert "**1 degraded, 1 unreachable, 1 suspicious, 1 reference** (4 providers)" in text
    assert "- ❌ **lossy** degraded: accuracy -40.0 points" in text
    sloppy = next(line for line in text.splitlines() if "**sloppy**" in line)
    assert sloppy.startswith("- ⚠️ **sloppy** suspicious: ") and "fails usage.reported" in sloppy
    table = [line for line in text.splitlines() if line.startswith("|")]
    assert table[0].startswith("| provider | status | accuracy (95% CI) | Δ vs ref, points |")
    assert "TTFT p50" in table[0] and "conformance" in table[0]
    assert len(table) == 2 + len(PROVIDERS)
    assert all(line.count("|") == table[0].count("|") for line in table)
    assert "| lossy | degraded | 50% [" in text
    assert "**Failed checks**" in text
    assert "- **sloppy** `usage.reported` (fail): 0/1 responses with consistent usage: " in text
    assert "(bar: all)" in text


def test_markdown_of_an_eval_run_drops_empty_columns(eval_data: dict[str, Any]) -> None:
    text = to_markdown(eval_data)
    header = next(line for line in text.splitlines() if line.startswith("| provider"))
    assert "TTFT" not in header and "conformance" not in header
    assert "Failed checks" not in text
    assert "❌ **lossy** degraded" in text


def test_write_exports_and_eval_json(data: dict[str, Any], tmp_path: Path) -> None:
    paths = {"csv": tmp_path / "a" / "r.csv", "junit": None, "markdown": tmp_path / "r.md"}
    assert write_exports(data, paths) == [tmp_path / "a" / "r.csv", tmp_path / "r.md"]
    assert (tmp_path / "r.md").read_text(encoding="utf-8") == to_markdown(data)
    legacy = eval_json(data)
    assert legacy["run"] == data["run"]["id"] and legacy["run_info"] == data["run"]
    assert legacy["providers"] == data["providers"]


def test_report_command_writes_every_format(
    store_and_runs: tuple[Path, str, str], data: dict[str, Any], tmp_path: Path
) -> None:
    db, run_id, _ = store_and_runs
    files = {ext: tmp_path / f"r.{ext}" for ext in ("json", "csv", "xml", "md")}
    result = CliRunner().invoke(
        app,
        [
            "report",
            run_id,
            "--db",
            str(db),
            "--json",
            str(files["json"]),
            "--csv",
            str(files["csv"]),
            "--junit",
            str(files["xml"]),
            "--markdown",
            str(files["md"]),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "lossy" in result.output  # the leaderboard is still printed
    written = json.loads(files["json"].read_text())
    assert written["run"]["id"] == run_id and written["summary"] == data["summary"]
    lossy = written["providers"][1]
    # The keys of the older JSON summary are all still there.
    assert {"name", "verdict", "accuracy", "speed", "conformance_passed"} <= set(lossy)
    assert lossy["speed_samples"]["ttft_ms"]
    assert files["csv"].read_text() == to_csv(data)
    assert files["xml"].read_text() == to_junit(data)
    assert files["md"].read_text(encoding="utf-8") == to_markdown(data)
