"""The report model as JUnit XML, so a CI shows each provider's checks as tests.

One `<testsuite>` per provider; in it one `<testcase>` for the accuracy verdict against the
reference and one per conformance check. A degraded (or unmeasurable) accuracy and a failed
check are `<failure>`s whose message gives the figure and the bar; an unreachable provider,
and a check without a usable answer (an outage: the provider unreachable or unavailable, or
every request of the check failed at the transport), are `<error>`s, never `<failure>`s;
checks that do not apply, and the reference's own accuracy verdict, are `<skipped>`. Counts
follow the common JUnit schema: `tests`, `failures`, `errors`, `skipped` on every suite and
on `<testsuites>`.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from parity.report.figures import Figures, describe_run, figures, statuses
from parity.report.format import iso_utc, margin_points, p_value, pct, points, points_range
from parity.report.model import ConformanceRow, Difference, Report

_EVIDENCE_CHARS = 2000  # per evidence item: the request and the response excerpt

# Characters XML 1.0 cannot carry at all (provider text may hold any of them).
_INVALID_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True)
class Case:
    """One test case's outcome: kind is 'pass', 'failure', 'error' or 'skipped'."""

    classname: str
    name: str
    kind: str
    message: str = ""
    text: str = ""


def accuracy_bar(vs: Difference | None, margin: float | None) -> str:
    """The bar an accuracy verdict is held to, in words."""
    confidence = (vs.confidence if vs is not None else None) or 0.95
    margin = (vs.margin if vs is not None else None) or margin or 0.03
    corrected = {"holm": " (Holm-corrected)", "bonferroni": " (Bonferroni-corrected)"}.get(
        str(getattr(vs, "correction", None)), ""
    )
    return (
        f"the {pct(confidence, _digits(confidence))} interval{corrected} of the difference "
        f"from the reference must not lie below 0 (equivalent only within "
        f"±{margin_points(margin)} points; no difference found is not equivalence)"
    )


def _digits(confidence: float) -> int:
    """Decimals that show a confidence level as it is: 95%, 98.75%, 99.7%."""
    for digits in range(3):
        if abs(round(confidence * 100, digits) - confidence * 100) < 1e-9:
            return digits
    return 1


def delta_figure(vs: Difference | None) -> str:
    """'-15.6 points [-27, -4], p=0.003' or 'no comparison'."""
    if vs is None:
        return "no comparison"
    text = f"{points(vs.diff)} points {points_range(vs.low, vs.high)}"
    if vs.p_value is not None:
        text += f", {p_value(vs.p_value)}"
    return text


def verdict_case(f: Figures, why: str, margin: float | None) -> Case:
    """The accuracy-vs-reference test case of one provider."""
    classname, name = f"{f.name}.accuracy", "accuracy vs reference"
    if f.unreachable:
        return Case(classname, name, "error", f"unreachable: {f.detail or 'no answer'}", why)
    if f.reference:
        return Case(classname, name, "skipped", "this provider is the reference")
    bar = accuracy_bar(f.vs_reference, margin)
    figure = f"accuracy vs the reference: {f.verdict}, {delta_figure(f.vs_reference)}"
    if f.verdict == "degraded":
        return Case(classname, name, "failure", f"{figure} (bar: {bar})", why)
    if f.verdict in ("no data", "no reference") or f.vs_reference is None:
        if f.verdict == "no reference":
            return Case(classname, name, "skipped", "no reference provider in this run")
        return Case(classname, name, "failure", f"no usable accuracy data (bar: {bar})", why)
    return Case(classname, name, "pass", text=f"{figure} (bar: {bar})")


def check_case(provider: str, check: ConformanceRow) -> Case:
    """The test case of one conformance check of one provider."""
    status = check.status
    classname, name = f"{provider}.conformance", check.id
    message = f"{check.figure} (bar: {check.bar})"
    text = f"checks: {check.checks}\nfigure: {check.figure}\n"
    text += f"bar: {check.bar}"
    for item in check.evidence[:2]:
        text += "\nevidence: " + json.dumps(item, default=str)[:_EVIDENCE_CHARS]
    kind = {"pass": "pass", "fail": "failure", "error": "error"}.get(status, "skipped")
    if kind == "skipped":
        message = f"{status}: {check.figure}"
    elif kind == "error" and check.bar == "-":
        message = check.figure  # no bar was applied: there was nothing to judge
    return Case(classname, name, kind, message, text)


def provider_cases(data: Report) -> list[tuple[Figures, str, list[Case]]]:
    """Per provider: its figures, its verdict line and its test cases, in report order."""
    lines = statuses(data)
    options = data.run.options or {}
    margin = options.get("margin")
    out = []
    for provider in data.providers:
        f = figures(provider)
        line = lines.get(f.name)
        why = f"{line.status}: {line.why}" if line is not None else "-: -"
        accuracy_run = options.get("accuracy", True)
        cases = [verdict_case(f, why, margin)] if accuracy_run else []
        cases += [check_case(f.name, c) for c in f.conformance]
        out.append((f, why, cases))
    return out


def to_junit(data: Report | Mapping[str, Any]) -> str:
    """The report model as a JUnit XML document (UTF-8, with an XML declaration)."""
    data = Report.of(data)
    run = data.run
    stamp = iso_utc(run.created_at)
    root = ET.Element("testsuites", name=_clean(f"parity {describe_run(run)}"))
    totals = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)
    for f, why, cases in provider_cases(data):
        counts = {
            "tests": len(cases),
            "failures": sum(c.kind == "failure" for c in cases),
            "errors": sum(c.kind == "error" for c in cases),
            "skipped": sum(c.kind == "skipped" for c in cases),
        }
        attrib = {"name": _clean(f.name), **{k: str(v) for k, v in counts.items()}}
        suite = ET.SubElement(root, "testsuite", attrib, timestamp=stamp, time="0")
        props = ET.SubElement(suite, "properties")
        for key, value in (
            ("run_id", run.id),
            ("kind", run.kind),
            ("reference", str(f.reference).lower()),
            ("verdict", f.verdict),
        ):
            ET.SubElement(props, "property", name=key, value=_clean(str(value)))
        for case in cases:
            element = ET.SubElement(
                suite, "testcase", classname=_clean(case.classname), name=_clean(case.name)
            )
            element.set("time", "0")
            if case.kind in ("failure", "error"):
                child = ET.SubElement(
                    element, case.kind, message=_clean(case.message), type=case.kind
                )
                child.text = _clean(case.text)
            elif case.kind == "skipped":
                ET.SubElement(element, "skipped", message=_clean(case.message))
            elif case.text:
                ET.SubElement(element, "system-out").text = _clean(case.text)
        ET.SubElement(suite, "system-out").text = _clean(why)
        for key in totals:
            totals[key] += counts[key]
    for key, total in totals.items():
        root.set(key, str(total))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _clean(text: str) -> str:
    return _INVALID_XML.sub("\ufffd", text)
