"""The HTML report: one self-contained file a buyer can open offline, on a phone or a laptop.

`render_html` is a pure function of the report model (`parity.report.data.report_data`)
and, optionally, a short history of earlier runs. The page loads nothing: CSS is inline,
charts are inline SVG drawn in Python (`parity.report.svg`), and there is no script at
all (a failing conformance cell opens its evidence with a plain `#fragment` link and the
CSS `:target` rule). A Content-Security-Policy forbids every network load and every
script, and every string from the data is escaped: provider names and model outputs are
untrusted.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from parity.report import svg
from parity.report.svg import esc

STATUSES = ("faithful", "degraded", "suspicious", "reference", "unreachable")
STATUS_COLOR = {
    "faithful": "#1a7f37",
    "degraded": "#cf222e",
    "suspicious": "#bc4c00",
    "reference": "#0969da",
    "unreachable": "#6e7781",
}
OTHER_COLOR = "#6e7781"
STATUS_MEANING = {
    "faithful": "accuracy not significantly below the reference's, no conformance failure "
    "of its own",
    "degraded": "accuracy significantly below the reference's",
    "suspicious": "fails conformance checks the reference passes, or has no usable data",
    "reference": "the provider every other one is compared with",
    "unreachable": "did not answer GET /models",
}
# Okabe-Ito: tells providers apart for colour-blind readers (history lines).
PALETTE = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#000000")
SEGMENT_COLORS = ("#0969da", "#8250df", "#bf8700", "#57606a")
MAX_EVIDENCE = 3


def render_html(data: dict[str, Any], history: list[dict[str, Any]] | None = None) -> str:
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
    report = _Report(data)
    body = [
        _header(report),
        _verdicts(report),
        _leaderboard(report),
        _speed_price(report),
        _distributions(report),
        _accuracy(report),
        _conformance(report),
        _cost(report),
        _history(report, history or []),
        _footer(report),
    ]
    title = f"parity report · {report.run.get('id', '')}"
    return (
        "<!doctype html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\';'
        " style-src 'unsafe-inline'\">\n"
        '<meta name="color-scheme" content="light">\n'
        f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        '<main class="page">\n' + "\n".join(part for part in body if part) + "\n</main>\n"
        "</body>\n</html>\n"
    )


def write_html(
    path: Path, data: dict[str, Any], history: list[dict[str, Any]] | None = None
) -> None:
    """Write `render_html(data, history)` to `path` (UTF-8), creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(data, history), encoding="utf-8")


# ---------------------------------------------------------------------------------------
# The model, normalised over run and eval shapes.


class _Report:
    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.run: dict[str, Any] = data.get("run") or {}
        self.kind = str(self.run.get("kind") or "run")
        self.providers: list[dict[str, Any]] = list(data.get("providers") or [])
        self.summary: list[dict[str, Any]] = list(data.get("summary") or [])
        self.status = {str(s.get("name")): str(s.get("status")) for s in self.summary}
        for p in self.providers:
            self.status.setdefault(str(p.get("name")), _fallback_status(p))

    def color(self, p: dict[str, Any]) -> str:
        return STATUS_COLOR.get(self.status.get(str(p.get("name")), ""), OTHER_COLOR)

    def reference(self) -> dict[str, Any] | None:
        return next((p for p in self.providers if p.get("reference")), None)


def _fallback_status(p: dict[str, Any]) -> str:
    verdict = str(p.get("verdict") or "")
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
    if v is None:
        return "—"
    return f"{v:,.0f} ms" if v >= 10 else f"{v:.1f} ms"


def _fmt_rate(v: float | None) -> str:
    return "—" if v is None else f"{v:,.1f}"


def _fmt_pct(v: float) -> str:
    return f"{v * 100:.1f}%"


def _fmt_ci(est: dict[str, Any] | None) -> str:
    if est is None:
        return "—"
    return (
        f'{_fmt_pct(est["value"])} <span class="ci">[{est["low"] * 100:.1f}–'
        f"{est['high'] * 100:.1f}]</span>"
    )


def _fmt_delta(vs: dict[str, Any] | None) -> str:
    if vs is None:
        return "—"
    diff = _minus(f"{vs['diff'] * 100:+.1f}")
    low, high = _minus(f"{vs['low'] * 100:+.1f}"), _minus(f"{vs['high'] * 100:+.1f}")
    return f'{diff} pts <span class="ci">[{low}, {high}]</span>'


def _test(vs: dict[str, Any] | None) -> str:
    """The comparison's verdict and p-value (or pairs, for a confidence sequence)."""
    if vs is None:
        return ""
    p = _num(vs.get("p_value"))
    if p is not None:
        detail = "p &lt; 0.001" if p < 0.001 else f"p = {p:.3f}"
    elif vs.get("n_pairs"):
        detail = f"{_fmt_int(vs['n_pairs'])} pairs"
    else:
        detail = ""
    verdict = esc(vs.get("verdict") or "")
    return f'<span class="sub">{verdict}{" · " + detail if detail else ""}</span>'


def _fmt_price(v: Any) -> str:
    n = _num(v)
    return "—" if n is None else f"${n:,.3f}"


def _fmt_usd(v: Any) -> str:
    n = _num(v)
    if n is None:
        return "—"
    if n == 0:
        return "$0"
    if n >= 1:
        return f"${n:,.2f}"
    return f"${n:.{max(2, 2 - math.floor(math.log10(n)))}f}"  # 3 significant digits


def _fmt_int(v: Any) -> str:
    n = _num(v)
    return "—" if n is None else f"{n:,.0f}"


def _fmt_when(ts: Any) -> str:
    n = _num(ts)
    if n is None:
        return "—"
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(n))


def _pill(status: str) -> str:
    cls = status if status in STATUSES else "other"
    return f'<span class="pill s-{cls}">{esc(status)}</span>'


def _section(ident: str, title: str, lede: str, *content: str) -> str:
    intro = f'<p class="lede">{lede}</p>' if lede else ""
    return (
        f'<section id="{ident}" class="card">\n<h2>{esc(title)}</h2>\n{intro}\n'
        + "\n".join(c for c in content if c)
        + "\n</section>"
    )


def _figure(chart: str, caption: str = "") -> str:
    cap = f"<figcaption>{caption}</figcaption>" if caption else ""
    return f'<figure class="fig">\n<div class="fig-box">{chart}</div>\n{cap}</figure>'


def _legend(statuses: Iterable[str]) -> str:
    seen = [s for s in STATUSES if s in set(statuses)]
    items = "".join(f'<li><i class="sw s-{s}"></i>{esc(s)}</li>' for s in seen)
    return f'<ul class="legend">{items}</ul>' if items else ""


def _table(head: Sequence[str], rows: Sequence[str], cls: str = "") -> str:
    th = "".join(f"<th{_cls(h)}>{_label(h)}</th>" for h in head)
    return (
        f'<div class="table-wrap"><table class="{cls}"><thead><tr>{th}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _cls(head: str) -> str:
    return ' class="num"' if head.startswith("#") else ""


def _label(head: str) -> str:
    return head.lstrip("#")


# ---------------------------------------------------------------------------------------
# Sections.


def _header(r: _Report) -> str:
    run = r.run
    opts = run.get("options") or {}
    bits = []
    if opts.get("suite"):
        suite = f"suite <b>{esc(opts['suite'])}</b>"
        if opts.get("repeats"):
            suite += f" × {esc(opts['repeats'])}"
        bits.append(suite)
    if r.kind == "eval":
        bits.append("adaptive design" if opts.get("adaptive") else "fixed design")
    created, finished = _num(run.get("created_at")), _num(run.get("finished_at"))
    if created is not None:
        bits.append(esc(_fmt_when(created)))
    if created is not None and finished is not None and finished >= created:
        minutes, seconds = divmod(round(finished - created), 60)
        bits.append(f"{minutes} min {seconds} s" if minutes else f"{seconds} s")
    if run.get("exchanges") is not None:
        bits.append(f"{_fmt_int(run['exchanges'])} exchanges")
    status = str(run.get("status") or "")
    if status and status != "finished":
        bits.append(f'<span class="warn">{esc(status)}</span>')
    kind = "accuracy eval" if r.kind == "eval" else "provider audit"
    return (
        '<header class="top">\n'
        f'<p class="eyebrow">parity · {esc(kind)}</p>\n'
        f"<h1>{esc(_headline(r))}</h1>\n"
        f'<p class="meta">run <code>{esc(run.get("id", "?"))}</code> · '
        + " · ".join(bits)
        + "</p>\n</header>"
    )


def _headline(r: _Report) -> str:
    n = len(r.providers)
    providers = f"{n} provider{'' if n == 1 else 's'} of one model"
    return providers + (", measured against a reference" if r.reference() else "")


def _verdicts(r: _Report) -> str:
    if not r.summary:
        return ""
    counts = {s: sum(1 for line in r.summary if line.get("status") == s) for s in STATUSES}
    tally = " ".join(
        f'<span class="tally-item s-{s}"><b>{counts[s]}</b> {esc(s)}</span>'
        for s in ("faithful", "degraded", "suspicious", "unreachable")
        if counts[s]
    )
    items = []
    for line in r.summary:
        status = str(line.get("status"))
        cls = status if status in STATUSES else "other"
        items.append(
            f'<li class="verdict v-{cls}">{_pill(status)}'
            f'<span class="vname">{esc(line.get("name"))}</span>'
            f'<span class="why">{esc(line.get("why") or "—")}</span></li>'
        )
    used = {str(line.get("status")) for line in r.summary}
    key = "".join(f"<li>{_pill(s)} {esc(STATUS_MEANING[s])}</li>" for s in STATUSES if s in used)
    return (
        '<section id="verdicts" class="card verdicts">\n<h2>Verdict</h2>\n'
        f'<p class="tally">{tally}</p>\n<ul class="verdict-list">{"".join(items)}</ul>\n'
        f'<details class="key"><summary>What the verdicts mean</summary><ul>{key}</ul>'
        "</details>\n</section>"
    )


def _name_cell(p: dict[str, Any]) -> str:
    ref = ' <span class="tag">ref</span>' if p.get("reference") else ""
    return f'<th scope="row" class="pname">{esc(p.get("name"))}{ref}</th>'


def _leaderboard(r: _Report) -> str:
    if not r.providers:
        return ""
    if r.kind == "eval":
        return _leaderboard_eval(r)
    rows = []
    for p in r.providers:
        status = r.status.get(str(p.get("name")), "other")
        if status == "unreachable":
            rows.append(
                f"<tr>{_name_cell(p)}<td>{_pill(status)}</td>"
                + '<td class="num">—</td>' * 5
                + f'<td class="num">{_fmt_price(p.get("blended_price"))}</td>'
                '<td class="num">—</td></tr>'
            )
            continue
        vs = _vs(p)
        passed, judged = p.get("conformance_passed"), p.get("conformance_judged")
        conform = "—"
        if judged:
            bad = " bad" if passed is not None and passed < judged else ""
            conform = f'<span class="conf{bad}">{esc(passed)}/{esc(judged)}</span>'
        rows.append(
            f"<tr>{_name_cell(p)}<td>{_pill(status)}</td>"
            f'<td class="num">{_fmt_ms(_speed(p, "ttft_ms"))}</td>'
            f'<td class="num">{_fmt_rate(_speed(p, "output_tokens_per_s"))}</td>'
            f'<td class="num">{_fmt_ci(_estimate(p))}</td>'
            f'<td class="num">{_fmt_delta(vs)}{_test(vs)}</td>'
            f'<td class="num">{conform}</td>'
            f'<td class="num">{_fmt_price(p.get("blended_price"))}</td>'
            f'<td class="num">{_fmt_usd(p.get("cost_usd"))}</td></tr>'
        )
    head = [
        "provider",
        "verdict",
        "#TTFT p50",
        "#tok/s p50",
        "#accuracy [95% CI]",
        "#Δ vs reference [95% CI]",
        "#conformance",
        "#$/1M blended",
        "#run cost",
    ]
    lede = (
        "TTFT and output speed are medians over streamed requests; accuracy is the share of "
        "problems solved; Δ is the paired difference from the reference, with its test's "
        "verdict and p-value. Blended price weighs input and output tokens 3:1."
    )
    return _section("leaderboard", "Leaderboard", lede, _table(head, rows, "board"))


def _leaderboard_eval(r: _Report) -> str:
    ks = sorted({int(k) for p in r.providers for k in (p.get("pass_at_k") or {})})
    rows = []
    for p in r.providers:
        status = r.status.get(str(p.get("name")), "other")
        vs = _vs(p)
        samples = _fmt_int(p.get("samples"))
        if p.get("fixed_design_samples"):
            samples += f' <span class="ci">of {_fmt_int(p["fixed_design_samples"])}</span>'
        passk = "".join(f'<td class="num">{_fmt_pass(p, k)}</td>' for k in ks)
        rows.append(
            f"<tr>{_name_cell(p)}<td>{_pill(status)}</td>"
            f'<td class="num">{_fmt_ci(_estimate(p))}</td>'
            f'<td class="num">{_fmt_delta(vs)}{_test(vs)}</td>'
            f'<td class="num">{samples}</td>'
            f'<td class="num">{_fmt_int(p.get("tokens"))}</td>'
            f'<td class="num">{_fmt_usd(p.get("cost_usd"))}</td>'
            f"<td>{esc(p.get('stop_reason') or '—')}</td>{passk}</tr>"
        )
    head = [
        "provider",
        "verdict",
        "#accuracy [95% CI]",
        "#Δ vs reference [95% CI]",
        "#samples",
        "#tokens",
        "#cost",
        "stopped",
        *[f"#pass@{k}" for k in ks],
    ]
    lede = (
        "Accuracy is the share of problems solved with a 95% confidence interval; Δ is the "
        "paired difference from the reference (an anytime-valid confidence sequence in the "
        "adaptive design, which stops sampling a provider once its verdict is decided)."
    )
    return _section("leaderboard", "Leaderboard", lede, _table(head, rows, "board"))


def _fmt_pass(p: dict[str, Any], k: int) -> str:
    value = _num((p.get("pass_at_k") or {}).get(str(k)))
    return "—" if value is None else _fmt_pct(value)


def _output_speed(p: dict[str, Any]) -> float | None:
    return _speed(p, "output_tokens_per_s")


def _accuracy_value(p: dict[str, Any]) -> float | None:
    return _num((_estimate(p) or {}).get("value"))


def _speed_price(r: _Report) -> str:
    price_axis = svg.Axis("blended price, $/1M tokens (3:1 in:out)", prefix="$", include_zero=True)
    figures = []
    statuses: set[str] = set()
    for chart_name, title, axis, value, caption in (
        (
            "speed-price",
            "Output speed vs blended price",
            svg.Axis("output tokens/s (median)", include_zero=True),
            _output_speed,
            "<b>Output speed</b> vs price",
        ),
        (
            "accuracy-price",
            "Accuracy vs blended price",
            svg.Axis("accuracy", suffix="%", factor=100, domain=(0.0, 1.0)),
            _accuracy_value,
            "<b>Accuracy</b> vs price: the same model should score the same everywhere",
        ),
    ):
        points = []
        for p in r.providers:
            y, price = value(p), _num(p.get("blended_price"))
            if y is not None and price is not None:
                points.append(svg.Point(str(p.get("name")), price, y, r.color(p)))
                statuses.add(r.status.get(str(p.get("name")), ""))
        if not points:
            continue
        desc = "; ".join(f"{pt.label}: {axis.fmt(pt.y, 0.01)} at ${pt.x:.3f}/1M" for pt in points)
        corner = "↖ faster and cheaper" if chart_name == "speed-price" else "↖ better and cheaper"
        chart = svg.scatter(chart_name, title, desc, points, price_axis, axis, corner=corner)
        figures.append(_figure(chart, caption))
    if not figures:
        return ""
    lede = (
        "Each point is a provider, coloured by its verdict: up is better, left is cheaper. "
        "A cheap, fast provider is only a bargain if it serves the model faithfully."
    )
    return _section(
        "price",
        "Speed, accuracy and price",
        lede,
        _legend(statuses),
        '<div class="grid">' + "".join(figures) + "</div>",
    )


def _distributions(r: _Report) -> str:
    figures = []
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
        if rows:
            desc = "; ".join(
                f"{row.label}: {len(row.values)} requests, median "
                f"{fmt(svg.quantile(sorted(row.values), 0.5))}"
                for row in rows
            )
            chart = svg.distribution(name, f"{title} per provider", desc, rows, axis)
            figures.append(_figure(chart, f"<b>{esc(title)}</b>, every request"))
    if not figures:
        return ""
    lede = (
        "Boxes span the middle half of the requests, the bold tick is the median, whiskers "
        "reach the fastest and slowest, and every request is a dot."
    )
    return _section(
        "speed", "Speed distributions", lede, '<div class="grid">' + "".join(figures) + "</div>"
    )


def _accuracy(r: _Report) -> str:
    figures = []
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
        figures.append(
            _figure(chart, "<b>Accuracy</b>, 95% CI; the shaded band is the reference's interval")
        )
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
        figures.append(
            _figure(
                chart,
                "<b>Δ vs reference</b>, 95% CI: an interval wholly left of the margin is "
                "degraded, wholly inside it equivalent",
            )
        )
    boxes = []
    for p in r.providers:
        scores = [float(v) for v in (p.get("suite_scores_by_repeat") or []) if _num(v) is not None]
        if scores:
            boxes.append(
                svg.DistRow(
                    str(p.get("name")),
                    scores,
                    r.color(p),
                    f"{len(scores)} runs",
                )
            )
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
        figures.append(
            _figure(
                chart,
                "<b>Whole-suite score across repeats</b>: each dot is the suite run once "
                "(the spread one run alone would hide)",
            )
        )
    if not figures:
        return ""
    return _section(
        "accuracy",
        "Accuracy",
        "Same problems, same sampling settings, graded the same way at every provider.",
        '<div class="grid">' + "".join(figures) + "</div>",
    )


def _conformance(r: _Report) -> str:
    providers = [p for p in r.providers if p.get("conformance")]
    if not providers:
        return ""
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
    head = "".join(f'<th scope="col">{esc(p.get("name"))}</th>' for p in providers)
    rows = []
    panels: list[str] = []
    shared_used = False
    for check_id, check in checks.items():
        cells = []
        for p in providers:
            c = next((x for x in p["conformance"] if str(x.get("id")) == check_id), None)
            if c is None:
                cells.append('<td class="c c-none">—</td>')
                continue
            status = str(c.get("status"))
            figure = str(c.get("figure") or "")
            if status == "pass":
                cells.append(f'<td class="c c-pass" title="{esc(figure)}">✓ pass</td>')
            elif status in ("fail", "error"):
                ident = f"ev-{len(panels) + 1}"
                shared = not p.get("reference") and check_id in ref_failed
                shared_used |= shared
                mark = "✗" if status == "fail" else "⚠"
                star = "*" if shared else ""
                cls = " shared" if shared else ""
                cells.append(
                    f'<td class="c c-{status}{cls}"><a class="open" href="#{ident}"'
                    f' aria-controls="{ident}" title="{esc(figure)}">{mark} {status}{star}</a></td>'
                )
                panels.append(_evidence(ident, p, c, shared))
            else:
                cells.append(f'<td class="c c-na" title="{esc(figure)}">{esc(status)}</td>')
        rows.append(
            f'<tr><th scope="row" class="check"><code>{esc(check_id)}</code>'
            f'<span class="sub">{esc(check.get("checks") or "")}</span></th>{"".join(cells)}</tr>'
        )
    totals = "".join(
        f'<td class="c c-total">{esc(p.get("conformance_passed", "?"))}/'
        f"{esc(p.get('conformance_judged', '?'))}</td>"
        for p in providers
    )
    rows.append(f'<tr class="total"><th scope="row">passed / judged</th>{totals}</tr>')
    table = (
        '<div class="table-wrap"><table class="matrix"><thead><tr><th scope="col">check</th>'
        f"{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )
    note = (
        '<p class="note">* the reference fails this check too: it is the serving engine\'s, '
        "not this provider's.</p>"
        if shared_used
        else ""
    )
    lede = (
        "Does each provider behave like the API it claims to serve? Select a failing cell to "
        "see the request, the response and the bar it missed."
    )
    hint = (
        '<p class="hint">Select a failing cell above to show its evidence here.</p>'
        if panels
        else ""
    )
    return _section(
        "conformance",
        "Conformance",
        lede,
        table,
        note,
        '<div class="panels">' + hint + "".join(panels) + "</div>" if panels else "",
    )


def _evidence(ident: str, p: dict[str, Any], c: dict[str, Any], shared: bool) -> str:
    items = list(c.get("evidence") or [])
    parts = [
        f'<div class="evidence" id="{ident}" role="region"'
        f' aria-label="evidence: {esc(p.get("name"))}, {esc(c.get("id"))}">',
        '<div class="ev-head">'
        f'<span class="pill s-degraded">{esc(c.get("status"))}</span>'
        f" <b>{esc(p.get('name'))}</b> · <code>{esc(c.get('id'))}</code>"
        f'<a class="close" href="#conformance" aria-label="close evidence">close ✕</a></div>',
        '<dl class="ev-facts">'
        f"<dt>checks</dt><dd>{esc(c.get('checks') or '—')}</dd>"
        f"<dt>found</dt><dd><b>{esc(c.get('figure') or '—')}</b></dd>"
        f"<dt>bar</dt><dd>{esc(c.get('bar') or '—')}</dd>"
        + ("<dt>note</dt><dd>the reference fails this check too</dd>" if shared else "")
        + "</dl>",
    ]
    for item in items[:MAX_EVIDENCE]:
        parts.append(_evidence_item(item))
    if len(items) > MAX_EVIDENCE:
        parts.append(f'<p class="note">and {len(items) - MAX_EVIDENCE} more exchanges</p>')
    if not items:
        parts.append('<p class="note">no exchange recorded as evidence</p>')
    parts.append("</div>")
    return "".join(parts)


TEXT_FIELDS = ("text", "plain_text", "streamed_text", "error_detail")


def _evidence_item(item: Any) -> str:
    if not isinstance(item, dict):
        return f'<pre class="resp">{esc(_clip_text(str(item), 800))}</pre>'
    request = item.get("request")
    req = (
        f'<h5>request</h5><pre class="req">{esc(_pretty(request))}</pre>'
        if request is not None
        else ""
    )
    texts = "".join(
        f'<h5>{esc(k.replace("_", " "))}</h5><pre class="resp">'
        f"{esc(_clip_text(str(item[k]), 800))}</pre>"
        for k in TEXT_FIELDS
        if item.get(k) not in (None, "")
    )
    facts = "".join(
        f"<dt>{esc(k)}</dt><dd>{esc(_short(v))}</dd>"
        for k, v in item.items()
        if k not in ("request", "key", *TEXT_FIELDS) and v is not None
    )
    response = texts + (f'<dl class="ev-facts">{facts}</dl>' if facts else "")
    return (
        f'<div class="ev-item"><p class="ev-key"><code>{esc(item.get("key") or "")}</code></p>'
        f'<div class="ev-cols"><div>{req}</div><div><h5 class="resp-h">response</h5>'
        f"{response or '<p class=note>no response recorded</p>'}</div></div></div>"
    )


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


def _cost(r: _Report) -> str:
    return _cost_eval(r) if r.kind == "eval" else _cost_run(r)


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


def _swatches(names: Sequence[str], first: int = 0) -> str:
    """A legend of segment colours, from SEGMENT_COLORS[first] on."""
    items = "".join(
        f'<li><i class="sw" style="background:{SEGMENT_COLORS[(first + i) % len(SEGMENT_COLORS)]}">'
        f"</i>{esc(k)}</li>"
        for i, k in enumerate(names)
    )
    return f'<ul class="legend">{items}</ul>'


def _cost_run(r: _Report) -> str:
    providers = [p for p in r.providers if _num(p.get("requests"))]
    if not providers:
        return ""
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
        err = ", ".join(f"{esc(k)} {esc(v)}" for k, v in errors.items()) or "0"
        price_in, price_out = _num(p.get("price_input")), _num(p.get("price_output"))
        prices = (
            f"{_fmt_price(price_in)} · {_fmt_price(price_out)}"
            if price_in is not None and price_out is not None
            else "—"
        )
        pillar_cells = "".join(
            f'<td class="num">{_fmt_usd((by_pillar.get(k) or {}).get("cost_usd"))}</td>'
            for k in pillars
        )
        rows.append(
            f"<tr>{_name_cell(p)}"
            f'<td class="num">{_fmt_int(p.get("requests"))}</td>'
            f'<td class="num">{" · ".join(_fmt_int(v) for v in split)}</td>'
            f'<td class="num">{err}</td>'
            f'<td class="num">{_fmt_int(p.get("prompt_tokens"))}</td>'
            f'<td class="num">{_fmt_int(p.get("completion_tokens"))}</td>'
            f'<td class="num">{prices}</td>{pillar_cells}'
            f'<td class="num"><b>{_fmt_usd(p.get("cost_usd"))}</b></td></tr>'
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
    split_head = " · ".join(pillars or ["speed", "accuracy", "conformance + warm-up"])
    head = [
        "provider",
        "#requests",
        f"#{split_head}",
        "#errors",
        "#prompt tokens",
        "#completion tokens",
        "#$/1M in · out",
        *[f"#{k} $" for k in pillars],
        "#cost",
    ]
    total = sum(_num(p.get("cost_usd")) or 0 for p in providers)
    requests = sum(_num(p.get("requests")) or 0 for p in providers)
    lede = (
        f"The run sent {_fmt_int(requests)} requests"
        + (f" and cost {_fmt_usd(total)} in all" if cost_bars else "")
        + ", billed from each provider's own usage figures at its listed prices."
    )
    figures = []
    if cost_bars:
        desc = "; ".join(f"{b.label}: {b.note}" for b in cost_bars)
        chart = svg.bars(
            "cost", "What the run cost per provider", desc, cost_bars, svg.Axis("US $", prefix="$")
        )
        legend = _swatches(pillars, 2) if pillars else _swatches(["input", "output"])
        figures.append(
            _figure(
                chart,
                "<b>Cost</b> per provider, by " + ("pillar" if pillars else "token kind") + legend,
            )
        )
    if token_bars:
        desc = "; ".join(f"{b.label}: {b.note} tokens" for b in token_bars)
        chart = svg.bars(
            "tokens", "Tokens billed per provider", desc, token_bars, svg.Axis("tokens")
        )
        figures.append(
            _figure(
                chart,
                "<b>Tokens</b> per provider, from its own usage figures"
                + _swatches(["input (prompt)", "output (completion)"]),
            )
        )
    grid = '<div class="grid">' + "".join(figures) + "</div>" if figures else ""
    return _section("cost", "What the run cost", lede, grid, _table(head, rows, "costs"))


def _cost_eval(r: _Report) -> str:
    providers = [p for p in r.providers if _num(p.get("samples"))]
    if not providers:
        return ""
    rows = []
    bars = []
    for p in providers:
        tokens, fixed = _num(p.get("tokens")), _num(p.get("fixed_design_tokens"))
        saved = f"{(1 - tokens / fixed) * 100:.0f}%" if tokens is not None and fixed else "—"
        rows.append(
            f"<tr>{_name_cell(p)}"
            f'<td class="num">{_fmt_int(p.get("samples"))}</td>'
            f'<td class="num">{_fmt_int(p.get("fixed_design_samples"))}</td>'
            f'<td class="num">{_fmt_int(tokens)}</td><td class="num">{_fmt_int(fixed)}</td>'
            f'<td class="num">{saved}</td><td class="num">{_fmt_int(p.get("errors"))}</td>'
            f'<td class="num"><b>{_fmt_usd(p.get("cost_usd"))}</b></td>'
            f"<td>{esc(p.get('stop_reason') or '—')}</td></tr>"
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
    head = [
        "provider",
        "#samples",
        "#fixed design",
        "#tokens",
        "#fixed design tokens",
        "#saved",
        "#errors",
        "#cost",
        "stopped",
    ]
    total = sum(_num(p.get("cost_usd")) or 0 for p in providers)
    lede = (
        f"The eval cost {_fmt_usd(total)} in all. Tokens are the provider's own usage; "
        "the fixed design would have sent every problem every repeat."
    )
    content = [_table(head, rows, "costs")]
    if bars:
        desc = "; ".join(f"{b.label}: {b.note} tokens (fixed design {b.ghost})" for b in bars)
        chart = svg.bars(
            "eval-tokens", "Tokens used vs the fixed design", desc, bars, svg.Axis("tokens")
        )
        content.insert(
            0,
            _figure(
                chart,
                "<b>Tokens used</b>; the dashed outline is what the fixed design would have used",
            ),
        )
    return _section("cost", "What the eval cost", lede, *content)


def _history(r: _Report, history: list[dict[str, Any]]) -> str:
    runs = sorted(
        (h for h in history if isinstance(h, dict)), key=lambda h: _num(h.get("created_at")) or 0
    )
    if len(runs) < 2:
        return ""
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
            figures.append(_figure(chart, f"<b>{esc(title)}</b>"))
    if not figures:
        return ""
    legend = "".join(
        f'<li><i class="sw" style="background:{color[n]}"></i>{esc(n)}</li>' for n in names
    )
    return _section(
        "history",
        "History",
        f"The last {len(runs)} runs in this store, oldest first (times in UTC).",
        f'<ul class="legend">{legend}</ul>',
        '<div class="grid">' + "".join(figures) + "</div>",
    )


def _footer(r: _Report) -> str:
    run = r.run
    source = run.get("source")
    src = f" · providers file <code>{esc(source)}</code>" if source else ""
    return (
        '<footer class="foot">'
        f"parity {esc(r.data.get('parity_version', '?'))} · run <code>{esc(run.get('id', '?'))}"
        f"</code> · {esc(_fmt_when(run.get('created_at')))}{src} · "
        "every figure recomputed from the store</footer>"
    )


CSS = """
:root{--ink:#1f2328;--muted:#59636e;--line:#d1d9e0;--soft:#f6f8fa;--bg:#f3f4f6;
--faithful:#1a7f37;--degraded:#cf222e;--suspicious:#bc4c00;--reference:#0969da;
--unreachable:#6e7781;--other:#6e7781}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;background:var(--bg);color:var(--ink);
font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
overflow-wrap:anywhere}
.page{max-width:1240px;margin:0 auto;padding:20px 20px 40px}
code{font:0.86em/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
h1{font-size:1.55rem;line-height:1.25;margin:.1rem 0 .4rem;letter-spacing:-.01em}
h2{font-size:1.1rem;margin:0 0 .35rem}
h5{font-size:.72rem;text-transform:uppercase;letter-spacing:.06em;color:var(--muted);
margin:.6rem 0 .25rem}
.top{padding:6px 2px 14px}
.eyebrow{margin:0;color:var(--muted);font-size:.8rem;text-transform:uppercase;
letter-spacing:.08em;font-weight:600}
.meta{margin:0;color:var(--muted);font-size:.9rem}
.meta b{color:var(--ink)}
.warn{color:var(--degraded);font-weight:600}
.card{background:#fff;border:1px solid var(--line);border-radius:10px;padding:18px 20px;
margin:0 0 16px}
.lede{margin:0 0 12px;color:var(--muted);font-size:.9rem;max-width:78ch}
.note,.hint{color:var(--muted);font-size:.85rem;margin:.5rem 0 0}
.tally{margin:0 0 10px;display:flex;flex-wrap:wrap;gap:8px 18px;font-size:.95rem}
.tally-item b{font-size:1.35rem;margin-right:3px}
.tally-item.s-faithful b{color:var(--faithful)}
.tally-item.s-degraded b{color:var(--degraded)}
.tally-item.s-suspicious b{color:var(--suspicious)}
.tally-item.s-unreachable b{color:var(--unreachable)}
.verdict-list{list-style:none;margin:0;padding:0}
.verdict{display:grid;grid-template-columns:7.2rem minmax(8rem,12rem) 1fr;gap:4px 14px;
align-items:baseline;padding:9px 12px;border-left:4px solid var(--other);
background:var(--soft);border-radius:6px;margin:0 0 6px}
.v-faithful{border-left-color:var(--faithful)}.v-degraded{border-left-color:var(--degraded)}
.v-suspicious{border-left-color:var(--suspicious)}.v-reference{border-left-color:var(--reference)}
.v-unreachable{border-left-color:var(--unreachable)}
.vname{font-weight:650}
.why{color:var(--muted);font-size:.9rem}
.pill{display:inline-block;min-width:5.6rem;text-align:center;padding:1px 10px;
border-radius:999px;font-size:.76rem;font-weight:650;text-transform:uppercase;
letter-spacing:.04em;color:#fff;background:var(--other);white-space:nowrap}
.s-faithful{background:var(--faithful)}.s-degraded{background:var(--degraded)}
.s-suspicious{background:var(--suspicious)}.s-reference{background:var(--reference)}
.s-unreachable{background:var(--unreachable)}
.tally-item{background:none}
.key{margin-top:8px;font-size:.85rem;color:var(--muted)}
.key summary{cursor:pointer}
.key ul{list-style:none;padding:0;margin:6px 0 0}.key li{margin:3px 0}
.key .pill{min-width:6.4rem;margin-right:6px}
.table-wrap{overflow-x:auto;-webkit-overflow-scrolling:touch;border:1px solid var(--line);
border-radius:8px}
table{border-collapse:collapse;width:100%;font-size:.88rem}
th,td{padding:7px 9px;border-bottom:1px solid #e8ebef;text-align:left;vertical-align:top}
thead th{min-width:4.5rem;background:var(--soft);font-size:.72rem;text-transform:uppercase;
letter-spacing:.03em;color:var(--muted);font-weight:650;vertical-align:bottom}
tbody tr:last-child th,tbody tr:last-child td{border-bottom:0}
.num{text-align:right;font-variant-numeric:tabular-nums}
td.num{white-space:nowrap}
th.num{text-align:right}
.pname{font-weight:650;white-space:nowrap;overflow-wrap:normal;position:sticky;left:0;
background:#fff;z-index:1}
.board td,.costs td{white-space:nowrap}
.tag{font-size:.68rem;font-weight:650;color:var(--reference);border:1px solid currentColor;
border-radius:4px;padding:0 4px;margin-left:4px;vertical-align:1px}
.ci{color:var(--muted);font-size:.86em}
.sub{display:block;color:var(--muted);font-size:.78rem;font-weight:400;white-space:normal}
.conf.bad{color:var(--degraded);font-weight:650}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,440px),1fr));gap:16px}
.fig{margin:0}
.fig-box{overflow-x:auto}
.chart{display:block;width:100%;height:auto;font-family:inherit}
figcaption{font-size:.84rem;color:var(--muted);margin-top:6px}
.legend{list-style:none;display:flex;flex-wrap:wrap;gap:4px 14px;padding:0;margin:6px 0;
font-size:.84rem;color:var(--muted)}
.sw{display:inline-block;width:10px;height:10px;border-radius:50%;margin-right:6px;
vertical-align:0}
.matrix th.check{min-width:15rem;max-width:24rem}
.matrix th.check code{font-weight:650}
.matrix thead th{text-transform:none;font-size:.8rem;letter-spacing:0;color:var(--ink)}
.c{text-align:center;white-space:nowrap;font-weight:600;font-size:.82rem;min-width:6.5rem}
.c-pass{color:var(--faithful);background:#f0faf3}
.c-fail,.c-error{background:#ffebe9}
.c-fail.shared,.c-error.shared{background:#fff5f4}
.c-na,.c-none{color:var(--muted);background:var(--soft);font-weight:400}
.c .open{display:block;color:var(--degraded);text-decoration:none;border-radius:4px;
padding:1px 4px;border:1px solid #ffcecb}
.c .open:hover,.c .open:focus{background:#fff;outline:2px solid var(--degraded)}
.c.shared .open{color:#a40e26;border-style:dashed;font-weight:500}
.total th,.total td{background:var(--soft);font-weight:650}
.evidence{display:none;border:1px solid #ffcecb;border-left:4px solid var(--degraded);
border-radius:8px;padding:12px 14px;margin-top:12px;background:#fff;scroll-margin-top:12px}
.evidence:target{display:block}
.panels:has(.evidence:target) .hint{display:none}
.ev-head{display:flex;flex-wrap:wrap;align-items:center;gap:6px 8px}
.ev-head .pill{min-width:0}
.close{margin-left:auto;font-size:.82rem;color:var(--muted)}
.ev-facts{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:10px 0 0;
font-size:.88rem}
.ev-facts dt{color:var(--muted)}.ev-facts dd{margin:0}
.ev-item{border-top:1px solid #eee;margin-top:10px;padding-top:6px}
.ev-key{margin:0;color:var(--muted);font-size:.82rem}
.ev-cols{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,320px),1fr));
gap:4px 16px}
.ev-cols>div{min-width:0}
pre{margin:0;padding:8px 10px;background:#f6f8fa;border:1px solid #e8ebef;border-radius:6px;
font:12px/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;white-space:pre-wrap;
overflow-wrap:anywhere;max-height:22rem;overflow:auto}
.foot{color:var(--muted);font-size:.8rem;text-align:center;padding:8px 0}
a{color:var(--reference)}
@media (max-width:700px){
.page{padding:12px 10px 28px}
.card{padding:14px 12px;border-radius:8px}
h1{font-size:1.25rem}
.verdict{grid-template-columns:auto 1fr}
.why{grid-column:1/-1}
.matrix th.check{min-width:11rem}
}
@media print{.evidence{display:block}.card{break-inside:avoid}body{background:#fff}}
"""
