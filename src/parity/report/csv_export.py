"""The report model as CSV: one row per provider x metric, for spreadsheets and dashboards."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Any, TypedDict

from parity.report.figures import SPEED_UNITS, figures, statuses
from parity.report.model import Report

COLUMNS = ("run_id", "provider", "pillar", "metric", "value", "low", "high", "n", "unit")


class CsvRow(TypedDict):
    """One row: a provider's metric, its value (a number, a status or None), its interval
    and what it was measured on."""

    run_id: str
    provider: str
    pillar: str
    metric: str
    value: Any
    low: float | None
    high: float | None
    n: int | None
    unit: str


def csv_rows(data: Report | Mapping[str, Any]) -> list[CsvRow]:
    """Every provider's metrics as rows keyed by `COLUMNS` (None where there is no figure).

    Per provider, always in this order: status (equivalent / no difference found / ...),
    verdict, the speed p50s (ttft_ms_p50, ttfat_ms_p50, output_tokens_per_s_p50,
    e2e_ms_p50; n = requests), accuracy (CI in low/high; n = samples),
    accuracy_diff_vs_reference (CI; n = shared
    problems, or pairs for an adaptive eval), p_value, blended_price, cost_usd,
    conformance_passed and conformance_judged (empty when conformance was not run), then
    one row per conformance check whose value is pass / fail / n/a / error. Metrics a run
    did not measure have an empty value.
    """
    data = Report.of(data)
    run_id = data.run.id
    lines = statuses(data)
    rows: list[CsvRow] = []

    for provider in data.providers:
        f = figures(provider)

        def row(
            pillar: str,
            metric: str,
            value: Any,
            low: float | None = None,
            high: float | None = None,
            n: int | None = None,
            unit: str = "",
            name: str = f.name,
        ) -> None:
            rows.append(
                {
                    "run_id": run_id,
                    "provider": name,
                    "pillar": pillar,
                    "metric": metric,
                    "value": value,
                    "low": low,
                    "high": high,
                    "n": n,
                    "unit": unit,
                }
            )

        line = lines.get(f.name)
        row("summary", "status", line.status if line is not None else None)
        row("accuracy", "verdict", f.verdict)
        for metric, unit in SPEED_UNITS.items():
            row("speed", f"{metric}_p50", f.p50(metric), n=f.count(metric) or None, unit=unit)
        acc, vs = f.accuracy, f.vs_reference
        if acc is not None:
            row("accuracy", "accuracy", acc.value, acc.low, acc.high, acc.n_samples, "fraction")
        else:
            row("accuracy", "accuracy", None, unit="fraction")
        if vs is not None:
            row(
                "accuracy",
                "accuracy_diff_vs_reference",
                vs.diff,
                vs.low,
                vs.high,
                vs.shared,
                "fraction",
            )
            row("accuracy", "p_value", vs.p_value, n=vs.shared)
        else:
            row("accuracy", "accuracy_diff_vs_reference", None, unit="fraction")
            row("accuracy", "p_value", None)
        row("price", "blended_price", f.blended_price, unit="USD/1M tokens")
        row("price", "cost_usd", f.cost_usd, unit="USD")
        run = bool(f.conformance)  # no list: conformance was not run (or never reached)
        judged = f.conformance_judged if run else None
        passed = f.conformance_passed if run else None
        row("conformance", "conformance_passed", passed, n=judged, unit="checks")
        total = len(f.conformance) or None
        row("conformance", "conformance_judged", judged, n=total, unit="checks")
        for check in f.conformance:
            row("conformance", check.id, check.status)
    return rows


def to_csv(data: Report | Mapping[str, Any]) -> str:
    """The report model as CSV text (header `COLUMNS`, one row per provider x metric).

    Numbers are written with 6 significant digits, missing figures as empty cells.
    """
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for r in csv_rows(data):
        writer.writerow({k: _cell(v) for k, v in r.items()})
    return buffer.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
