"""The report model as compact Markdown, fit for a pull-request comment."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from parity.report.figures import (
    Figures,
    accuracy_text,
    delta_text,
    describe_run,
    figures,
    statuses,
)
from parity.report.format import dollars, ms, number
from parity.report.model import Report, VerdictLine

# Only "equivalent" gets the check mark: "no difference found" is not a pass.
MARKS = {
    "equivalent": "✅",
    "no difference found": "➖",
    "better": "🔼",
    "reference": "🔷",
    "suspicious": "⚠️",
    "degraded": "❌",
    "unreachable": "❌",
}
# Worst first: the order of the counts line.
ORDER = (
    "degraded",
    "unreachable",
    "suspicious",
    "better",
    "no difference found",
    "equivalent",
    "reference",
)


def to_markdown(data: Report | Mapping[str, Any]) -> str:
    """Verdict lines, a leaderboard table and the failed checks (figure and bar) of a run.

    Table columns that no provider has a figure for (speed, price and conformance in an
    eval run) are left out.
    """
    data = Report.of(data)
    lines = statuses(data)
    provs = [figures(p) for p in data.providers]
    counts = Counter(lines[f.name].status for f in provs if f.name in lines)
    tally = ", ".join(f"{counts[s]} {s}" for s in ORDER if counts[s])
    out = [f"### parity {_inline(describe_run(data.run))}", ""]
    out.append(f"**{tally or 'no providers'}** ({len(provs)} providers)")
    out.append("")
    for f in provs:
        line = lines.get(f.name)
        if line is None:
            line = VerdictLine(name=f.name, status=f.verdict, why="-")
        mark = MARKS.get(line.status, "•")
        out.append(f"- {mark} **{_inline(f.name)}** {line.status}: {_inline(line.why)}")
    out += ["", *_table(provs, lines)]
    for status, heading in (
        ("fail", "**Failed checks**"),
        ("error", "**Checks without a usable answer** (errors: the provider was unavailable; "
                  "an outage, not a conformance failure)"),
    ):  # fmt: skip
        listed = [(f, c) for f in provs for c in f.conformance if c.status == status]
        if listed:
            out += ["", heading, ""]
            for f, c in listed:
                out.append(
                    f"- **{_inline(f.name)}** `{c.id}` ({c.status}): "
                    f"{_inline(c.figure)} (bar: {_inline(c.bar)})"
                )
    return "\n".join(out) + "\n"


def _table(provs: list[Figures], lines: Mapping[str, VerdictLine]) -> list[str]:
    def status(f: Figures) -> str:
        line = lines.get(f.name)
        return line.status if line is not None else f.verdict

    columns: list[tuple[str, str, list[str]]] = [
        ("provider", ":--", [f.name for f in provs]),
        ("status", ":--", [status(f) for f in provs]),
        ("accuracy (95% CI)", "--:", [accuracy_text(f.accuracy) for f in provs]),
        ("Δ vs ref, points", "--:", [delta_text(f.vs_reference) for f in provs]),
        ("TTFT p50", "--:", [ms(f.p50("ttft_ms")) for f in provs]),
        ("tok/s p50", "--:", [number(f.p50("output_tokens_per_s")) for f in provs]),
        ("conformance", "--:", [_conformance(f) for f in provs]),
        ("$/1M blended", "--:", [dollars(f.blended_price) for f in provs]),
        ("run cost", "--:", [dollars(f.cost_usd, 4) for f in provs]),
    ]
    kept = [c for c in columns if c[0] in ("provider", "status") or any(v != "-" for v in c[2])]
    rows = [
        "| " + " | ".join(c[0] for c in kept) + " |",
        "|" + "|".join(c[1] for c in kept) + "|",
    ]
    for i in range(len(provs)):
        rows.append("| " + " | ".join(_cell(c[2][i]) for c in kept) + " |")
    return rows


def _conformance(f: Figures) -> str:
    """'passed/judged' over checks that got an answer; errors (an outage) counted apart."""
    statuses = [c.status for c in f.conformance]
    passed, judged = statuses.count("pass"), statuses.count("pass") + statuses.count("fail")
    text = f"{passed}/{judged}" if judged else ""
    if errors := statuses.count("error"):
        text = (text + " · " if text else "") + f"{errors} error"
    return text or "-"


def _cell(text: str) -> str:
    return _inline(text).replace("|", "\\|")


def _inline(text: str) -> str:
    return " ".join(text.split())
