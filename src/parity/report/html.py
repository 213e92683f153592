"""The HTML report: one self-contained file a buyer can open offline, on a phone or a laptop.

`render_html` is a pure function of the report model (`parity.report.data.report_data`)
and, optionally, a short history of earlier runs. The page loads nothing: CSS is inline,
charts are inline SVG drawn in Python (`parity.report.svg`), and there is no script at
all (a failing conformance cell opens its evidence with a plain `#fragment` link and the
CSS `:target` rule). A Content-Security-Policy forbids every network load and every
script.

The markup is in jinja2 templates (`parity/report/templates`): `base.html.j2` is the page,
`sections/*.html.j2` hold one section each, `macros.html.j2` the pieces they share and
`report.css` the stylesheet. This module only prepares their view: plain data (sorted,
formatted strings) and the charts' SVG. The templates are rendered with autoescape on, so
every string from the data is escaped (provider names and model outputs are untrusted);
the only markup let through as it is is the charts' SVG, drawn by `parity.report.svg`,
which escapes every label it draws.
"""

from __future__ import annotations

import functools
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from parity.report import format as fmt
from parity.report import svg
from parity.report.model import STATUSES, Report, current_line
from parity.stats.estimates import current_verdict

DASH = "—"
"""What a cell shows for a figure that is missing."""

# Only "equivalent" is green: "no difference found" is the absence of evidence, not a pass.
STATUS_COLOR = {
    "equivalent": "#1a7f37",
    "no difference found": "#9a6700",
    "better": "#8250df",
    "degraded": "#cf222e",
    "suspicious": "#bc4c00",
    "reference": "#0969da",
    "unreachable": "#6e7781",
}
OTHER_COLOR = "#6e7781"
STATUS_MEANING = {
    "equivalent": "its accuracy is shown to be within the margin of the reference's (the "
    "corrected interval of the difference lies inside it), no conformance failure of its own",
    "no difference found": "no difference was shown, and none was ruled out: the interval "
    "contains 0 and reaches past the margin (absence of evidence, not a pass)",
    "better": "accuracy significantly above the reference's (corrected across the providers)",
    "degraded": "accuracy significantly below the reference's (corrected across the providers)",
    "suspicious": "fails conformance checks the reference passes, or has no usable data",
    "reference": "the provider every other one is compared with",
    "unreachable": "did not answer GET /models",
}
# Okabe-Ito: tells providers apart for colour-blind readers (history lines).
PALETTE = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#000000")
SEGMENT_COLORS = ("#0969da", "#8250df", "#bf8700", "#57606a")
MAX_EVIDENCE = 3


View = dict[str, Any]
"""What a template reads: plain values under names the templates use (`row.name`)."""


def render_html(
    data: Report | Mapping[str, Any], history: Sequence[Mapping[str, Any]] | None = None
) -> str:
    """The whole report as one HTML document (a string).

    `data` is `report_data(store, run_id)`, for a `run` or an `eval` run. `history`, when
    it holds more than one run, adds a chart of each provider over runs; each item is::

        {"run_id": str, "created_at": float (unix seconds),
         "providers": [{"name": str, "verdict": str | None,
                        "accuracy": float | None,        # 0..1
                        "accuracy_low": float | None,    # CI bounds, optional
                        "accuracy_high": float | None,
                        "ttft_p50": float | None,        # ms
                        "tok_s_p50": float | None}]}     # output tokens/s

    A run's provider entry may also carry ``cost_by_pillar``, ``{"speed" | "accuracy" |
    "conformance": {"requests", "prompt_tokens", "completion_tokens", "cost_usd"}}``;
    the cost section then splits requests and dollars by pillar (without it, requests are
    split from the speed and accuracy counts and dollars by input/output tokens).

    Sections whose data is missing are left out; nothing is fetched when the page opens.
    """
    page = _view(_Report(data), history or [])
    return _environment().get_template("base.html.j2").render(page=page)


def write_html(
    path: Path,
    data: Report | Mapping[str, Any],
    history: Sequence[Mapping[str, Any]] | None = None,
) -> None:
    """Write `render_html(data, history)` to `path` (UTF-8), creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(data, history), encoding="utf-8")


@functools.cache
def _environment() -> jinja2.Environment:
    """The templates, shipped inside the package; every printed value is escaped, and a
    name a template does not know is an error, not an empty string."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("parity.report", "templates"),
        autoescape=jinja2.select_autoescape(("html", "html.j2"), default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.globals["status_class"] = _status_class
    return env


def _status_class(status: str) -> str:
    """The CSS class suffix of a verdict: its name (spaces as dashes), or `other` for an
    unknown one."""
    return status.replace(" ", "-") if status in STATUSES else "other"


def _svg(chart: str) -> Markup:
    """A chart drawn by `parity.report.svg` (trusted markup: it escapes every label)."""
    return Markup(chart)


def _view(r: _Report, history: Sequence[Mapping[str, Any]]) -> View:
    """Everything the page shows; a section whose view is None is left out."""
    return {
        "title": f"parity report · {r.run.get('id', '')}",
        "header": _header(r),
        "verdicts": _verdicts(r),
        "leaderboard": _leaderboard(r),
        "price": _speed_price(r),
        "speed": _distributions(r),
        "accuracy": _accuracy(r),
        "conformance": _conformance(r),
        "cost": _cost_eval(r) if r.kind == "eval" else _cost_run(r),
        "history": _history(history),
        "footer": _footer(r),
    }


# ---------------------------------------------------------------------------------------
# The model, normalised over run and eval shapes.


class _Report:
    def __init__(self, data: Report | Mapping[str, Any]) -> None:
        self.data = data
        self.run: dict[str, Any] = data.get("run") or {}
        self.kind = str(self.run.get("kind") or "run")
        self.providers: list[dict[str, Any]] = list(data.get("providers") or [])
        verdicts = {str(p.get("name")): str(p.get("verdict") or "") for p in self.providers}
        # A report saved before the labels changed, given as a dict: its "faithful" is read
        # as what its accuracy verdict showed (`report.model.current_status`).
        self.summary: list[dict[str, Any]] = [
            dict(current_line(s, verdicts)) for s in data.get("summary") or []
        ]
        self.status = {str(s.get("name")): str(s.get("status")) for s in self.summary}
        for p in self.providers:
            self.status.setdefault(str(p.get("name")), _fallback_status(p))

    def color(self, p: dict[str, Any]) -> str:
        return STATUS_COLOR.get(self.status.get(str(p.get("name")), ""), OTHER_COLOR)

    def reference(self) -> dict[str, Any] | None:
        return next((p for p in self.providers if p.get("reference")), None)


def _fallback_status(p: dict[str, Any]) -> str:
    verdict = current_verdict(str(p.get("verdict") or ""))
    if p.get("reachable") is False or p.get("unreachable"):
        return "unreachable"
    if p.get("reference"):
        return "reference"
    return verdict if verdict in STATUSES else "other"


def _estimate(p: dict[str, Any]) -> dict[str, Any] | None:
    """The provider's accuracy estimate {value, low, high, ...} in either shape."""
    acc = p.get("accuracy")
    if not isinstance(acc, dict):
        return None
    inner = acc.get("accuracy") if "value" not in acc else acc
    return inner if _numeric(inner, "value", "low", "high") else None


def _vs(p: dict[str, Any]) -> dict[str, Any] | None:
    """The provider's comparison with the reference in either shape."""
    acc = p.get("accuracy")
    vs = acc.get("vs_reference") if isinstance(acc, dict) and "value" not in acc else None
    vs = vs or p.get("vs_reference")
    return vs if _numeric(vs, "diff", "low", "high") else None


def _numeric(entry: Any, *keys: str) -> bool:
    """True when `entry` is a dict whose `keys` are all finite numbers."""
    return isinstance(entry, dict) and all(_num(entry.get(k)) is not None for k in keys)


def _speed(p: dict[str, Any], metric: str) -> float | None:
    speed = p.get("speed")
    if not isinstance(speed, dict):
        return None
    summary = speed.get(metric)
    return _num(summary.get("p50")) if isinstance(summary, dict) else None


def _num(value: Any) -> float | None:
    """`value` as a float when it is a finite number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


# ---------------------------------------------------------------------------------------
# Formatting.


def _minus(text: str) -> str:
    return text.replace("-", "−")


def _fmt_ms(v: float | None) -> str:
    return fmt.ms_fine(v, DASH)


def _fmt_rate(v: float | None) -> str:
    return fmt.grouped(v, 1, DASH)


def _fmt_pct(v: float) -> str:
    return fmt.pct(v, 1)


def _estimate_text(est: dict[str, Any] | None) -> View | None:
    """An accuracy estimate as text: value, low and high of its 95% CI."""
    if est is None:
        return None
    return {
        "value": _fmt_pct(est["value"]),
        "low": f"{est['low'] * 100:.1f}",
        "high": f"{est['high'] * 100:.1f}",
    }


def _vs_text(vs: dict[str, Any] | None) -> View | None:
    """A comparison with the reference as text: the difference and its CI in points, the
    test's verdict and its p-value (or pairs, for a confidence sequence)."""
    if vs is None:
        return None
    p = _num(vs.get("p_value"))
    if p is not None:
        detail = "p < 0.001" if p < 0.001 else f"p = {p:.3f}"
    elif vs.get("n_pairs"):
        detail = f"{_fmt_int(vs['n_pairs'])} pairs"
    else:
        detail = ""
    return {
        "diff": _minus(f"{vs['diff'] * 100:+.1f}"),
        "low": _minus(f"{vs['low'] * 100:+.1f}"),
        "high": _minus(f"{vs['high'] * 100:+.1f}"),
        "verdict": current_verdict(str(vs.get("verdict") or "")),
        "detail": detail,
    }


def _fmt_price(v: Any) -> str:
    return fmt.dollars(_num(v), 3, DASH, thousands=True)


def _fmt_usd(v: Any) -> str:
    return fmt.usd_3sig(_num(v), DASH)


def _fmt_int(v: Any) -> str:
    return fmt.grouped(_num(v), 0, DASH)


def _fmt_when(ts: Any) -> str:
    return fmt.utc_time(_num(ts), DASH)


def _who(p: dict[str, Any]) -> View:
    """What a provider's first cell shows: its name, tagged when it is the reference."""
    return {"name": str(p.get("name")), "reference": bool(p.get("reference"))}


# ---------------------------------------------------------------------------------------
# Sections: each builds the view its template (templates/sections/) reads.


def _header(r: _Report) -> View:
    run = r.run
    opts = run.get("options") or {}
    facts = []
    if r.kind == "eval":
        facts.append("adaptive design" if opts.get("adaptive") else "fixed design")
    created, finished = _num(run.get("created_at")), _num(run.get("finished_at"))
    if created is not None:
        facts.append(_fmt_when(created))
    if created is not None and finished is not None and finished >= created:
        minutes, seconds = divmod(round(finished - created), 60)
        facts.append(f"{minutes} min {seconds} s" if minutes else f"{seconds} s")
    if run.get("exchanges") is not None:
        facts.append(f"{_fmt_int(run['exchanges'])} exchanges")
    status = str(run.get("status") or "")
    suite = opts.get("suite")
    return {
        "kind": "accuracy eval" if r.kind == "eval" else "provider audit",
        "headline": _headline(r),
        "run_id": str(run.get("id", "?")),
        "suite": str(suite) if suite else None,
        "repeats": str(opts["repeats"]) if suite and opts.get("repeats") else None,
        "facts": facts,
        "warning": status if status and status != "finished" else None,
    }


def _headline(r: _Report) -> str:
    n = len(r.providers)
    providers = f"{n} provider{'' if n == 1 else 's'} of one model"
    return providers + (", measured against a reference" if r.reference() else "")


def _verdicts(r: _Report) -> View | None:
    if not r.summary:
        return None
    counts = {s: sum(1 for line in r.summary if line.get("status") == s) for s in STATUSES}
    used = {str(line.get("status")) for line in r.summary}
    return {
        "tally": [(s, counts[s]) for s in STATUSES if s != "reference" and counts[s]],
        "lines": [
            {
                "status": str(line.get("status")),
                "name": str(line.get("name")),
                "why": str(line.get("why") or "—"),
            }
            for line in r.summary
        ],
        "key": [(s, STATUS_MEANING[s]) for s in STATUSES if s in used],
    }


def _leaderboard(r: _Report) -> View | None:
    if not r.providers:
        return None
    if r.kind == "eval":
        return _leaderboard_eval(r)
    rows = []
    for p in r.providers:
        status = r.status.get(str(p.get("name")), "other")
        row = {
            **_who(p),
            "status": status,
            "unreachable": status == "unreachable",
            "price": _fmt_price(p.get("blended_price")),
        }
        if status != "unreachable":
            passed, judged = p.get("conformance_passed"), p.get("conformance_judged")
            conformance = None
            if judged:
                bad = passed is not None and passed < judged
                conformance = {"passed": str(passed), "judged": str(judged), "bad": bad}
            row |= {
                "ttft": _fmt_ms(_speed(p, "ttft_ms")),
                "tok_s": _fmt_rate(_speed(p, "output_tokens_per_s")),
                "estimate": _estimate_text(_estimate(p)),
                "vs": _vs_text(_vs(p)),
                "conformance": conformance,
                "cost": _fmt_usd(p.get("cost_usd")),
            }
        rows.append(row)
    return {"eval": False, "rows": rows}


def _leaderboard_eval(r: _Report) -> View:
    ks = sorted({int(k) for p in r.providers for k in (p.get("pass_at_k") or {})})
    rows = []
    for p in r.providers:
        fixed = p.get("fixed_design_samples")
        rows.append(
            {
                **_who(p),
                "status": r.status.get(str(p.get("name")), "other"),
                "estimate": _estimate_text(_estimate(p)),
                "vs": _vs_text(_vs(p)),
                "samples": _fmt_int(p.get("samples")),
                "fixed_samples": _fmt_int(fixed) if fixed else None,
                "tokens": _fmt_int(p.get("tokens")),
                "cost": _fmt_usd(p.get("cost_usd")),
                "stopped": str(p.get("stop_reason") or "—"),
                "pass_at_k": [_fmt_pass(p, k) for k in ks],
            }
        )
    return {"eval": True, "ks": ks, "rows": rows}


def _fmt_pass(p: dict[str, Any], k: int) -> str:
    value = _num((p.get("pass_at_k") or {}).get(str(k)))
    return "—" if value is None else _fmt_pct(value)


def _output_speed(p: dict[str, Any]) -> float | None:
    return _speed(p, "output_tokens_per_s")


def _accuracy_value(p: dict[str, Any]) -> float | None:
    return _num((_estimate(p) or {}).get("value"))


def _speed_price(r: _Report) -> View | None:
    price_axis = svg.Axis("blended price, $/1M tokens (3:1 in:out)", prefix="$", include_zero=True)
    charts: dict[str, Markup | None] = {}
    statuses: set[str] = set()
    value: Callable[[dict[str, Any]], float | None]
    for chart_name, title, axis, value, corner in (
        (
            "speed-price",
            "Output speed vs blended price",
            svg.Axis("output tokens/s (median)", include_zero=True),
            _output_speed,
            "↖ faster and cheaper",
        ),
        (
            "accuracy-price",
            "Accuracy vs blended price",
            svg.Axis("accuracy", suffix="%", factor=100, domain=(0.0, 1.0)),
            _accuracy_value,
            "↖ better and cheaper",
        ),
    ):
        points = []
        for p in r.providers:
            y, price = value(p), _num(p.get("blended_price"))
            if y is not None and price is not None:
                points.append(svg.Point(str(p.get("name")), price, y, r.color(p)))
                statuses.add(r.status.get(str(p.get("name")), ""))
        charts[chart_name] = None
        if points:
            desc = "; ".join(
                f"{pt.label}: {axis.fmt(pt.y, 0.01)} at ${pt.x:.3f}/1M" for pt in points
            )
            chart = svg.scatter(chart_name, title, desc, points, price_axis, axis, corner=corner)
            charts[chart_name] = _svg(chart)
    if not any(charts.values()):
        return None
    return {
        "statuses": [s for s in STATUSES if s in statuses],
        "speed_price": charts["speed-price"],
        "accuracy_price": charts["accuracy-price"],
    }


def _distributions(r: _Report) -> View | None:
    charts: dict[str, Markup | None] = {}
    fmt: Callable[[float | None], str]
    for metric, name, title, axis, fmt in (
        ("ttft_ms", "ttft", "Time to first token", svg.Axis("ms", include_zero=True), _fmt_ms),
        (
            "output_tokens_per_s",
            "output-speed",
            "Output speed",
            svg.Axis("output tokens/s", include_zero=True),
            _fmt_rate,
        ),
    ):
        rows = []
        for p in r.providers:
            samples = (p.get("speed_samples") or {}).get(metric) or []
            values = [float(v) for v in samples if _num(v) is not None]
            if values:
                med = _speed(p, metric)
                note = f"p50 {fmt(med)}" if med is not None else ""
                rows.append(svg.DistRow(str(p.get("name")), values, r.color(p), note))
        charts[name] = None
        if rows:
            desc = "; ".join(
                f"{row.label}: {len(row.values)} requests, median "
                f"{fmt(svg.quantile(sorted(row.values), 0.5))}"
                for row in rows
            )
            charts[name] = _svg(svg.distribution(name, f"{title} per provider", desc, rows, axis))
    if not any(charts.values()):
        return None
    return {"ttft": charts["ttft"], "output_speed": charts["output-speed"]}


def _accuracy(r: _Report) -> View | None:
    view: dict[str, Markup | None] = {"estimates": None, "vs_reference": None, "suite_scores": None}
    rows = []
    for p in r.providers:
        est = _estimate(p)
        if est is not None:
            rows.append(
                svg.IntervalRow(
                    str(p.get("name")),
                    float(est["value"]),
                    float(est["low"]),
                    float(est["high"]),
                    r.color(p),
                    f"{est['value'] * 100:.1f}%",
                )
            )
    ref = r.reference()
    ref_est = _estimate(ref) if ref else None
    if rows:
        band = (
            svg.Band(float(ref_est["low"]), float(ref_est["high"]), "reference 95% CI")
            if ref_est
            else None
        )
        desc = "; ".join(
            f"{row.label}: {row.value * 100:.1f}% [{row.low * 100:.1f}, {row.high * 100:.1f}]"
            for row in rows
        )
        chart = svg.intervals(
            "accuracy",
            "Accuracy with 95% confidence intervals",
            desc,
            rows,
            svg.Axis("accuracy", suffix="%", factor=100, domain=(0.0, 1.0)),
            band=band,
        )
        view["estimates"] = _svg(chart)
    diffs = []
    margin = None
    for p in r.providers:
        vs = _vs(p)
        if vs is not None:
            margin = _num(vs.get("margin")) or margin
            diffs.append(
                svg.IntervalRow(
                    str(p.get("name")),
                    float(vs["diff"]),
                    float(vs["low"]),
                    float(vs["high"]),
                    r.color(p),
                    _minus(f"{vs['diff'] * 100:+.1f} pts"),
                )
            )
    if diffs:
        band = (
            svg.Band(-margin, margin, f"equivalence margin ±{margin * 100:g} pts", "#1a7f37")
            if margin
            else None
        )
        desc = "; ".join(
            f"{row.label}: {row.value * 100:+.1f} points [{row.low * 100:+.1f}, "
            f"{row.high * 100:+.1f}]"
            for row in diffs
        )
        chart = svg.intervals(
            "vs-reference",
            "Difference in accuracy from the reference",
            desc,
            diffs,
            svg.Axis(
                "accuracy − reference, points",
                suffix="",
                factor=100,
                signed=True,
                include_zero=True,
            ),
            band=band,
            rule=0.0,
        )
        view["vs_reference"] = _svg(chart)
    boxes = []
    for p in r.providers:
        scores = [float(v) for v in (p.get("suite_scores_by_repeat") or []) if _num(v) is not None]
        if scores:
            boxes.append(svg.DistRow(str(p.get("name")), scores, r.color(p), f"{len(scores)} runs"))
    if boxes:
        desc = "; ".join(
            f"{b.label}: {len(b.values)} repeats, median "
            f"{svg.quantile(sorted(b.values), 0.5) * 100:.1f}%"
            for b in boxes
        )
        chart = svg.distribution(
            "suite-scores",
            "Whole-suite score of each repeat",
            desc,
            boxes,
            svg.Axis("suite score", suffix="%", factor=100, domain=(0.0, 1.0)),
        )
        view["suite_scores"] = _svg(chart)
    return view if any(view.values()) else None


def _conformance(r: _Report) -> View | None:
    providers = [p for p in r.providers if p.get("conformance")]
    if not providers:
        return None
    checks: dict[str, dict[str, Any]] = {}
    for p in providers:
        for c in p["conformance"]:
            checks.setdefault(str(c.get("id")), c)
    ref = r.reference()
    ref_failed = {
        str(c.get("id"))
        for c in (ref or {}).get("conformance") or []
        if c.get("status") in ("fail", "error")
    }
    rows = []
    panels: list[View] = []
    shared_used = False
    for check_id, check in checks.items():
        cells: list[View | None] = []
        for p in providers:
            c = next((x for x in p["conformance"] if str(x.get("id")) == check_id), None)
            if c is None:
                cells.append(None)
                continue
            status = str(c.get("status"))
            cell = {
                "status": status,
                "figure": str(c.get("figure") or ""),
                "shared": False,
                "evidence": None,  # the id of the evidence panel a failing cell opens
            }
            if status in ("fail", "error"):
                ident = f"ev-{len(panels) + 1}"
                shared = not p.get("reference") and check_id in ref_failed
                shared_used |= shared
                cell |= {"shared": shared, "evidence": ident}
                panels.append(_evidence(ident, p, c, shared))
            cells.append(cell)
        rows.append({"check": check_id, "checks": str(check.get("checks") or ""), "cells": cells})
    return {
        "providers": [str(p.get("name")) for p in providers],
        "rows": rows,
        "totals": [
            (str(p.get("conformance_passed", "?")), str(p.get("conformance_judged", "?")))
            for p in providers
        ],
        "shared": shared_used,
        "panels": panels,
    }


def _evidence(ident: str, p: dict[str, Any], c: dict[str, Any], shared: bool) -> View:
    items = list(c.get("evidence") or [])
    return {
        "ident": ident,
        "provider": str(p.get("name")),
        "check": str(c.get("id")),
        "status": str(c.get("status")),
        "checks": str(c.get("checks") or "—"),
        "figure": str(c.get("figure") or "—"),
        "bar": str(c.get("bar") or "—"),
        "shared": shared,
        "exchanges": [_exchange(item) for item in items[:MAX_EVIDENCE]],
        "more": max(0, len(items) - MAX_EVIDENCE),
    }


TEXT_FIELDS = ("text", "plain_text", "streamed_text", "error_detail")


def _exchange(item: Any) -> View:
    """One exchange of evidence: its key, the request as pretty JSON, the response's texts
    (clipped) and its other fields; or, for evidence that is not a dict, its text."""
    if not isinstance(item, dict):
        return {"plain": _clip_text(str(item), 800)}
    request = item.get("request")
    return {
        "plain": None,
        "key": str(item.get("key") or ""),
        "request": _pretty(request) if request is not None else None,
        "texts": [
            (k.replace("_", " "), _clip_text(str(item[k]), 800))
            for k in TEXT_FIELDS
            if item.get(k) not in (None, "")
        ],
        "facts": [
            (str(k), _short(v))
            for k, v in item.items()
            if k not in ("request", "key", *TEXT_FIELDS) and v is not None
        ],
    }


def _truncate(value: Any) -> Any:
    if isinstance(value, str):
        return _clip_text(value, 300)
    if isinstance(value, list):
        head = [_truncate(v) for v in value[:12]]
        return head + ([f"… {len(value) - 12} more"] if len(value) > 12 else [])
    if isinstance(value, dict):
        return {str(k): _truncate(v) for k, v in value.items()}
    return value


def _pretty(value: Any) -> str:
    text = json.dumps(_truncate(value), indent=2, ensure_ascii=False, default=str)
    lines = text.splitlines()
    if len(lines) > 60:
        lines = [*lines[:60], f"… {len(lines) - 60} more lines"]
    return "\n".join(lines)


def _clip_text(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"… ({len(text) - limit} more chars)"


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return _clip_text(text, 200)


def _pillar_requests(p: dict[str, Any]) -> tuple[int | None, int | None, int | None]:
    total = _num(p.get("requests"))
    speed = _num((p.get("speed") or {}).get("requests"))
    acc = p.get("accuracy") or {}
    est = acc.get("accuracy") if isinstance(acc, dict) else None
    samples = _num(est.get("n_samples")) if isinstance(est, dict) else None
    acc_n = samples + (_num(acc.get("errors")) or 0) if samples is not None else None
    rest = None
    if total is not None:
        rest = total - (speed or 0) - (acc_n or 0)
    return (
        None if speed is None else int(speed),
        None if acc_n is None else int(acc_n),
        None if rest is None else int(rest),
    )


def _swatches(names: Sequence[str], first: int = 0) -> list[tuple[str, str]]:
    """A legend of segment colours, from SEGMENT_COLORS[first] on: (colour, name) pairs."""
    return [(SEGMENT_COLORS[(first + i) % len(SEGMENT_COLORS)], k) for i, k in enumerate(names)]


def _cost_run(r: _Report) -> View | None:
    providers = [p for p in r.providers if _num(p.get("requests"))]
    if not providers:
        return None
    pillars = [
        k
        for k in ("speed", "accuracy", "conformance")
        if any(k in (p.get("cost_by_pillar") or {}) for p in providers)
    ]
    rows = []
    cost_bars = []
    token_bars = []
    for p in providers:
        by_pillar = p.get("cost_by_pillar") or {}
        if pillars:
            split = [_num((by_pillar.get(k) or {}).get("requests")) for k in pillars]
        else:
            split = [None if v is None else float(v) for v in _pillar_requests(p)]
        errors = p.get("errors") or {}
        price_in, price_out = _num(p.get("price_input")), _num(p.get("price_output"))
        rows.append(
            {
                **_who(p),
                "requests": _fmt_int(p.get("requests")),
                "split": " · ".join(_fmt_int(v) for v in split),
                "errors": ", ".join(f"{k} {v}" for k, v in errors.items()) or "0",
                "prompt_tokens": _fmt_int(p.get("prompt_tokens")),
                "completion_tokens": _fmt_int(p.get("completion_tokens")),
                "prices": (
                    f"{_fmt_price(price_in)} · {_fmt_price(price_out)}"
                    if price_in is not None and price_out is not None
                    else "—"
                ),
                "pillar_costs": [
                    _fmt_usd((by_pillar.get(k) or {}).get("cost_usd")) for k in pillars
                ],
                "cost": _fmt_usd(p.get("cost_usd")),
            }
        )
        name = str(p.get("name"))
        prompt, completion = _num(p.get("prompt_tokens")), _num(p.get("completion_tokens"))
        if prompt is not None or completion is not None:
            token_bars.append(
                svg.BarRow(
                    name,
                    [
                        svg.Segment(prompt or 0.0, SEGMENT_COLORS[0], "input (prompt) tokens"),
                        svg.Segment(
                            completion or 0.0, SEGMENT_COLORS[1], "output (completion) tokens"
                        ),
                    ],
                    _fmt_int((prompt or 0) + (completion or 0)),
                )
            )
        cost = _num(p.get("cost_usd"))
        if cost is None:
            continue
        if pillars:
            segments = [
                svg.Segment(
                    _num((by_pillar.get(k) or {}).get("cost_usd")) or 0.0,
                    SEGMENT_COLORS[(2 + i) % len(SEGMENT_COLORS)],
                    k,
                )
                for i, k in enumerate(pillars)
            ]
        elif price_in is not None and price_out is not None:
            segments = [
                svg.Segment((prompt or 0) * price_in / 1e6, SEGMENT_COLORS[0], "input tokens"),
                svg.Segment(
                    (completion or 0) * price_out / 1e6, SEGMENT_COLORS[1], "output tokens"
                ),
            ]
        else:
            segments = [svg.Segment(cost, SEGMENT_COLORS[0], "cost")]
        cost_bars.append(svg.BarRow(name, segments, _fmt_usd(cost)))
    total = sum(_num(p.get("cost_usd")) or 0 for p in providers)
    requests = sum(_num(p.get("requests")) or 0 for p in providers)
    cost_chart = token_chart = None
    if cost_bars:
        desc = "; ".join(f"{b.label}: {b.note}" for b in cost_bars)
        chart = svg.bars(
            "cost", "What the run cost per provider", desc, cost_bars, svg.Axis("US $", prefix="$")
        )
        cost_chart = _svg(chart)
    if token_bars:
        desc = "; ".join(f"{b.label}: {b.note} tokens" for b in token_bars)
        chart = svg.bars(
            "tokens", "Tokens billed per provider", desc, token_bars, svg.Axis("tokens")
        )
        token_chart = _svg(chart)
    return {
        "eval": False,
        "requests": _fmt_int(requests),
        "total": _fmt_usd(total) if cost_bars else None,
        "pillars": pillars,
        "split_head": " · ".join(pillars or ["speed", "accuracy", "conformance + warm-up"]),
        "cost_chart": cost_chart,
        "cost_swatches": _swatches(pillars, 2) if pillars else _swatches(["input", "output"]),
        "token_chart": token_chart,
        "token_swatches": _swatches(["input (prompt)", "output (completion)"]),
        "rows": rows,
    }


def _cost_eval(r: _Report) -> View | None:
    providers = [p for p in r.providers if _num(p.get("samples"))]
    if not providers:
        return None
    rows = []
    bars = []
    for p in providers:
        tokens, fixed = _num(p.get("tokens")), _num(p.get("fixed_design_tokens"))
        rows.append(
            {
                **_who(p),
                "samples": _fmt_int(p.get("samples")),
                "fixed_samples": _fmt_int(p.get("fixed_design_samples")),
                "tokens": _fmt_int(tokens),
                "fixed_tokens": _fmt_int(fixed),
                "saved": (
                    f"{(1 - tokens / fixed) * 100:.0f}%" if tokens is not None and fixed else "—"
                ),
                "errors": _fmt_int(p.get("errors")),
                "cost": _fmt_usd(p.get("cost_usd")),
                "stopped": str(p.get("stop_reason") or "—"),
            }
        )
        if tokens is not None:
            bars.append(
                svg.BarRow(
                    str(p.get("name")),
                    [svg.Segment(tokens, r.color(p), "tokens used")],
                    f"{_fmt_int(tokens)}",
                    fixed,
                )
            )
    token_chart = None
    if bars:
        desc = "; ".join(f"{b.label}: {b.note} tokens (fixed design {b.ghost})" for b in bars)
        chart = svg.bars(
            "eval-tokens", "Tokens used vs the fixed design", desc, bars, svg.Axis("tokens")
        )
        token_chart = _svg(chart)
    total = sum(_num(p.get("cost_usd")) or 0 for p in providers)
    return {"eval": True, "total": _fmt_usd(total), "token_chart": token_chart, "rows": rows}


def _history(history: Sequence[Mapping[str, Any]]) -> View | None:
    runs = sorted(
        (h for h in history if isinstance(h, dict)), key=lambda h: _num(h.get("created_at")) or 0
    )
    if len(runs) < 2:
        return None
    names: list[str] = []
    for h in runs:
        for p in h.get("providers") or []:
            if str(p.get("name")) not in names:
                names.append(str(p.get("name")))
    color = {n: PALETTE[i % len(PALETTE)] for i, n in enumerate(names)}
    stamps = [time.gmtime(_num(h.get("created_at")) or 0) for h in runs]
    days = {time.strftime("%Y-%m-%d", t) for t in stamps}
    fmt = "%b %d" if len(days) == len(stamps) else "%m-%d %H:%M"
    labels = [time.strftime(fmt, t) for t in stamps]

    def column(name: str, key: str) -> list[float | None]:
        out: list[float | None] = []
        for h in runs:
            entry = next((p for p in h.get("providers") or [] if str(p.get("name")) == name), None)
            out.append(_num(entry.get(key)) if entry else None)
        return out

    figures = []
    for key, chart_name, title, axis in (
        (
            "accuracy",
            "history-accuracy",
            "Accuracy over runs",
            svg.Axis("accuracy", suffix="%", factor=100, domain=(0.0, 1.0)),
        ),
        ("ttft_p50", "history-ttft", "TTFT p50 over runs", svg.Axis("ms", include_zero=True)),
        (
            "tok_s_p50",
            "history-speed",
            "Output speed p50 over runs",
            svg.Axis("tokens/s", include_zero=True),
        ),
    ):
        series = []
        for n in names:
            values = column(n, key)
            if any(v is not None for v in values):
                low = column(n, key + "_low") if key == "accuracy" else []
                high = column(n, key + "_high") if key == "accuracy" else []
                series.append(svg.Series(n, color[n], values, low, high))
        if series:
            desc = "; ".join(
                f"{s.label}: " + ", ".join("—" if v is None else f"{v:.3g}" for v in s.values)
                for s in series
            )
            chart = svg.lines(chart_name, title, desc, series, labels, axis)
            figures.append({"chart": _svg(chart), "title": title})
    if not figures:
        return None
    return {"runs": len(runs), "lines": [(color[n], n) for n in names], "figures": figures}


def _footer(r: _Report) -> View:
    run = r.run
    source = run.get("source")
    return {
        "version": str(r.data.get("parity_version", "?")),
        "run_id": str(run.get("id", "?")),
        "when": _fmt_when(run.get("created_at")),
        "source": str(source) if source else None,
    }
