"""An outage is not non-conformance, in every report: the leaderboard, the conform table,
Markdown, JUnit and the run diff show a check without a usable answer as an error, apart
from the failures."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from rich.console import Console

from parity.core.analysis import ProviderResult
from parity.core.store import Store
from parity.report.conform_table import conform_table, cost_table
from parity.report.data import report_data
from parity.report.exports import to_junit, to_markdown
from parity.report.terminal import conformance_cell, errors, failures, leaderboard, print_report
from tests.report.test_history import Behaviour, make_run, provider


def row(check_id: str, status: str, figure: str = "f", bar: str = "b") -> dict[str, Any]:
    return {
        "id": check_id,
        "family": check_id.split(".")[0],
        "checks": "-",
        "required": True,
        "status": status,
        "figure": figure,
        "bar": bar,
        "cost": 1,
        "evidence": [],
    }


def result(name: str, rows: list[dict[str, Any]], reachable: bool = True) -> ProviderResult:
    return ProviderResult(
        name=name,
        reference=False,
        reachable=reachable,
        detail=None if reachable else "unavailable: 3 consecutive transport failures",
        price_input=None,
        price_output=None,
        blended_price=None,
        conformance=rows,
    )


def text(renderable: Any) -> str:
    console = Console(record=True, width=220, color_system=None)
    console.print(renderable)
    return console.export_text()


GONE = result(
    "gone",
    [row("usage.reported", "pass"), row("params.seed", "fail")]
    + [row(f"errors.{i}", "error", "unavailable: no answer to 4 request(s) (HTTP 502)")
       for i in range(3)],
)  # fmt: skip


def test_the_leaderboard_counts_errors_apart_from_failures() -> None:
    assert conformance_cell(GONE) == "[red]1/2[/] · [yellow]3 error[/]"
    assert conformance_cell(result("ok", [row("a.b", "pass"), row("c.d", "n/a")])) == "1/1"
    outage = result("down", [row("a.b", "error"), row("c.d", "error")], reachable=False)
    assert conformance_cell(outage) == "[yellow]2 error[/]"
    assert conformance_cell(result("none", [])) == "-"
    board = text(leaderboard([GONE, outage], "t"))
    assert "1/2 · 3 error" in board and "2 error" in board and "unreachable" in board


def test_failure_lines_and_error_lines_are_apart() -> None:
    assert len(failures([GONE])) == 1 and "params.seed" in failures([GONE])[0]
    assert len(errors([GONE])) == 3 and all("unavailable" in line for line in errors([GONE]))
    console = Console(record=True, width=220, color_system=None)
    print_report(console, [GONE], "t")
    printed = console.export_text()
    assert "conformance failures" in printed and "conformance errors" in printed
    assert "an outage, not a conformance failure" in printed


def test_the_conform_table_and_the_cost_table() -> None:
    from parity.conformance.registry import CHECKS

    table = text(conform_table([GONE], "t"))
    assert "error unavailable: no answer to 4 request(s)" in table
    costs = text(cost_table(CHECKS, [provider("p")], 1))
    assert "from the reference's repeat agreement" in costs and "fixed" in costs


def test_markdown_junit_and_diff_of_an_unreachable_provider(tmp_path: Path) -> None:
    from parity.report.history import diff

    with Store(tmp_path / "p.db") as store:
        up = make_run(store, {"ref": Behaviour(), "down": Behaviour()})
        run_id = make_run(store, {"ref": Behaviour(), "down": Behaviour(reachable=False)})
        data = report_data(store, run_id)
        changed = diff(store, up, run_id)
    markdown = to_markdown(data)
    assert "**Checks without a usable answer**" in markdown
    assert "`usage.reported` (error): unavailable: refused" in markdown
    assert not [line for line in markdown.splitlines() if "**down**" in line and "(fail)" in line]
    table_row = next(line for line in markdown.splitlines() if line.startswith("| down |"))
    assert "7 error" in table_row
    suites = {s.get("name"): s for s in ET.fromstring(to_junit(data)).iter("testsuite")}
    down = suites["down"]
    assert down.get("failures") == "0" and down.get("errors") == "8"
    assert not down.findall(".//failure")
    # The diff: one reachability regression, not one per check.
    assert changed["regressions"] == ["down: unreachable in B (refused; reachable in A)"]


def test_the_verdict_line_names_an_outage_apart_from_a_failure(tmp_path: Path) -> None:
    from parity.core.exchange import ErrorClass, Exchange, Timings
    from parity.core.plan import plan_requests
    from tests.report.test_history import OPTIONS, accuracy_reply, other_reply, speed_reply

    gateway = Exchange(
        request={}, stream=False, timings=Timings(sent=0), status=504,
        error=ErrorClass.HTTP_5XX, error_detail="HTTP 504",
    )  # fmt: skip
    with Store(tmp_path / "p.db") as store:
        run_id = store.create_run("run", None, OPTIONS.model_dump(), "test")
        for i, (name, b) in enumerate({"ref": Behaviour(), "x": Behaviour(usage=False)}.items()):
            p = provider(name, reference=i == 0)
            store.add_provider(run_id, name, p.public_dict())
            store.set_reachability(run_id, name, True, "1 model(s)")
            for req in plan_requests(run_id, p, OPTIONS):
                if req.key.startswith("accuracy/"):
                    x = accuracy_reply(req.body, req.key, b)
                elif req.key.startswith("speed/") and req.key != "speed/warmup":
                    x = speed_reply(req.body, int(req.key.split("/")[1]), b)
                elif name == "x" and req.key.startswith("conformance/usage.streamed/"):
                    x = gateway  # this check's only request timed out at the gateway
                else:
                    x = other_reply(req.body, req.key, req.stream, b)
                store.add_exchange(run_id, name, req.probe, req.key, x)
        store.finish_run(run_id)
        data = report_data(store, run_id)
    line = next(s for s in data.summary if s.name == "x")
    assert "fails usage.reported" in line.why
    assert "no usable answer to usage.streamed (an outage, not a failure)" in line.why
    assert "fails usage.streamed" not in line.why
