"""The terminal table of `parity eval`: accuracy, the verdict vs the reference, and its cost."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.table import Table

from parity.report.format import dollars, grouped, p_value, pct, pct_range, points, points_range
from parity.report.terminal import VERDICT_STYLE


def eval_table(results: Sequence[Mapping[str, Any]], title: str) -> Table:
    """One row per provider: accuracy +- CI, difference with its interval and p (corrected
    across the providers: Holm in the fixed design, Bonferroni on the confidence sequences
    in the adaptive one), the spread of whole-suite scores across repeats, verdict, samples,
    tokens (and the share of the fixed design they are), $ and why sampling stopped."""
    table = Table(title=title, title_justify="left", header_style="bold")
    for column, justify in (
        ("provider", "left"),
        ("accuracy (95% CI)", "right"),
        ("Δ vs ref (interval)", "right"),
        ("spread", "right"),
        ("verdict", "left"),
        ("samples", "right"),
        ("tokens", "right"),
        ("vs fixed", "right"),
        ("cost", "right"),
        ("stopped", "left"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for r in results:
        if r.get("unreachable"):
            table.add_row(r["name"], "-", "-", "-", "[bold red]unreachable[/]", *["-"] * 5)
            continue
        acc = r.get("accuracy")
        vs = r.get("vs_reference")
        verdict = "reference" if r["reference"] else (vs["verdict"] if vs else "no data")
        style = VERDICT_STYLE.get(verdict, "")
        fixed = r.get("fixed_design_tokens")
        share = pct(r["tokens"] / fixed) if fixed else "-"
        samples = str(r["samples"]) + (f" ({r['errors']} err)" if r["errors"] else "")
        table.add_row(
            r["name"],
            f"{pct(acc['value'], 1)} {pct_range(acc['low'], acc['high'])}" if acc else "-",
            _delta(vs),
            _spread(r.get("suite_scores_by_repeat")),
            f"[{style}]{verdict}[/]" if style else verdict,
            samples,
            grouped(r["tokens"]),
            share,
            dollars(r["cost_usd"], 4),
            r["stop_reason"] or "-",
        )
    return table


def _spread(by_repeat: list[float] | None) -> str:
    """Range of whole-suite scores across repeats (fixed design), e.g. '40%-47%'."""
    if not by_repeat or len(by_repeat) < 2:
        return "-"
    return f"{pct(min(by_repeat))}-{pct(max(by_repeat))}"


def _delta(vs: Mapping[str, Any] | None) -> str:
    if not vs:
        return "-"
    text = f"{points(vs.get('diff'))} {points_range(vs['low'], vs['high'])}"
    if vs.get("p_value") is not None:
        text += f" {p_value(vs['p_value'])}"
    if vs.get("n_pairs"):
        text += f" n={vs['n_pairs']}"
    return text
