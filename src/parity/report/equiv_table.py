"""`parity equiv test` in the terminal: one row per provider x method, and the notes."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from parity.equivalence.run import EquivTestResult
from parity.report.format import dollars, significant

__all__ = ["equiv_notes", "equiv_table", "print_equiv", "usd_suffix"]

VERDICT_COLORS = {"same": "green", "different": "red", "inconclusive": "yellow"}


def equiv_table(result: EquivTestResult) -> Table:
    """Per provider the verdict, deciding method, samples used and cost; per method its
    p-value, alpha, effect (`*`: a note below), upper bound and tolerance."""
    settings = result.settings
    if result.recording is not None:
        recorded = sum(len(v) for v in result.recording.side.samples.values())
        source = f"recording {result.against} ({recorded} samples)"
    else:
        source = "the live reference"
    table = Table(
        title=f"equivalence vs {source}: {settings.model}, {settings.prompts} prompts, "
        f"temperature {settings.temperature:g}, {settings.max_tokens} tokens, kernel on "
        f"{settings.length} characters"
    )
    for column in ("provider", "verdict", "decided by", "samples used", "cost"):
        table.add_column(column, overflow="fold")
    for column in ("method", "p-value", "alpha", "effect", "upper bound", "tolerance"):
        table.add_column(column, justify="right" if column != "method" else "left")
    for name, o in result.outcomes.items():
        verdict = o["verdict"]
        shown = f"[{VERDICT_COLORS.get(verdict, 'red')}]{verdict}[/]"
        if "results" not in o:
            table.add_row(name, shown, *[""] * 9)
            continue
        cost = o["cost"]
        tokens = cost["prompt_tokens"] + cost["completion_tokens"]
        head = [
            name,
            shown,
            o["method"] or "-",
            f"{o['samples_used']} ({o['samples_per_prompt']}/prompt, look {o['look']}/"
            f"{o['looks']}) + {o['logprob_tables']} logprob",
            f"{cost['requests']} req, {tokens} tok{usd_suffix(cost['usd'])}",
        ]
        for index, r in enumerate(o["results"]):
            cells = head if index == 0 else [""] * 5
            effect = significant(r["effect"]) + (" *" if r["note"] else "")
            table.add_row(
                *cells,
                r["method"],
                significant(r["p_value"]),
                significant(r["alpha"]),
                effect,
                significant(r["effect_upper"]),
                significant(r["tolerance"]),
            )
    return table


def equiv_notes(result: EquivTestResult) -> list[str]:
    """`* provider, method: note` for every result that carries a note."""
    return [
        f"* {name}, {r['method']}: {r['note']}"
        for name, o in result.outcomes.items()
        for r in o.get("results", [])
        if r["note"]
    ]


def print_equiv(console: Console, result: EquivTestResult) -> None:
    """The table, then the notes."""
    console.print(equiv_table(result))
    for note in equiv_notes(result):
        console.print(note, highlight=False)


def usd_suffix(value: float | None) -> str:
    """`, $0.0123` (nothing without prices)."""
    return "" if value is None else f", {dollars(value, 4)}"
