"""Small inline-SVG charts for the HTML report: no dependencies, no scripts, no network.

Every chart is one `<svg>` with a `data-chart` name, a `<title>` and a `<desc>` (read by
screen readers), a `viewBox` so it scales with its container, and plain shapes (lines,
rects, circles, paths). Every string that reaches the markup is escaped here, so callers
may pass untrusted labels (provider names come from a user's file).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

FONT = 13.0
GRID = "#e6e8eb"
AXIS = "#8c959f"
INK = "#1f2328"
MUTED = "#59636e"
LABEL = 12.0
MAX_SCALE = 1.12
WIDTH = 520.0


def esc(value: object) -> str:
    """`value` as text safe inside SVG/HTML markup and attribute values."""
    return escape(str(value), quote=True)


def text_width(text: str, size: float = FONT, bold: bool = False) -> float:
    """Rough rendered width of `text` in a proportional sans-serif font (generous, so that
    wide fallback fonts such as DejaVu Sans still fit)."""
    return len(text) * size * (0.64 if bold else 0.6)


def clip(text: str, limit: int) -> str:
    """`text` cut to `limit` characters with an ellipsis."""
    return text if len(text) <= limit else text[: max(1, limit - 1)] + "…"


def nice_ticks(lo: float, hi: float, count: int = 5) -> tuple[float, float, float, list[float]]:
    """A rounded domain covering [lo, hi] and its ticks: (lo, hi, step, ticks)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        lo, hi = 0.0, 1.0
    if hi < lo:
        lo, hi = hi, lo
    if hi - lo < 1e-12:
        pad = abs(hi) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / max(1, count)
    step = 10 ** math.floor(math.log10(raw))
    ratio = raw / step
    if ratio >= 7.5:
        step *= 10
    elif ratio >= 3.5:
        step *= 5
    elif ratio >= 1.5:
        step *= 2
    start = math.floor(lo / step + 1e-9) * step
    end = math.ceil(hi / step - 1e-9) * step
    ticks = []
    value = start
    while value <= end + step * 1e-6:
        ticks.append(round(value, 12))
        value += step
    return start, end, step, ticks


@dataclass(frozen=True)
class Axis:
    """How a value axis is labelled: `prefix`/`suffix` around value x `factor`."""

    label: str
    prefix: str = ""
    suffix: str = ""
    factor: float = 1.0
    include_zero: bool = False
    domain: tuple[float, float] | None = None
    signed: bool = False

    def fmt(self, value: float, step: float) -> str:
        """A tick label for `value` on an axis whose ticks are `step` apart."""
        v = value * self.factor
        s = step * self.factor
        decimals = max(0, -math.floor(math.log10(s) + 1e-9)) if s > 0 else 0
        text = f"{abs(v):,.{decimals}f}" if abs(v) >= 1000 else f"{abs(v):.{decimals}f}"
        if v < 0 and float(text.replace(",", "")) != 0:
            sign = "−"
        elif self.signed and v > 0:
            sign = "+"
        else:
            sign = ""
        return f"{sign}{self.prefix}{text}{self.suffix}"

    def bounds(
        self, values: Sequence[float], count: int = 5
    ) -> tuple[float, float, float, list[float]]:
        """The axis domain and ticks for the plotted `values`."""
        if self.domain is not None:
            lo, hi = self.domain
            _, _, step, ticks = nice_ticks(lo, hi, count)
            return lo, hi, step, [t for t in ticks if lo - 1e-9 <= t <= hi + 1e-9]
        finite = [v for v in values if math.isfinite(v)] or [0.0, 1.0]
        lo, hi = min(finite), max(finite)
        if self.include_zero:
            lo, hi = min(lo, 0.0), max(hi, 0.0)
        return nice_ticks(lo, hi, count)

    def fit(
        self, values: Sequence[float], span: float, vertical: bool = False
    ) -> tuple[float, float, float, list[float]]:
        """Like `bounds`, with as many ticks (at most 6) as fit in `span` pixels without
        their labels touching."""
        for count in range(6, 1, -1):
            lo, hi, step, ticks = self.bounds(values, count)
            gap = span / max(1, len(ticks) - 1)
            need = 22.0 if vertical else max(text_width(self.fmt(t, step)) for t in ticks) + 12
            if gap >= need:
                break
        return lo, hi, step, ticks


@dataclass(frozen=True)
class Linear:
    """A linear map from the domain [lo, hi] onto the pixel range [a, b]."""

    lo: float
    hi: float
    a: float
    b: float

    def __call__(self, value: float) -> float:
        span = self.hi - self.lo or 1.0
        return self.a + (value - self.lo) / span * (self.b - self.a)


def _open(name: str, title: str, desc: str, width: float, height: float) -> list[str]:
    ident = "chart-" + "".join(c if c.isalnum() else "-" for c in name)
    # Scales down to fit a phone; never drawn much larger than designed.
    size = f"max-width:{width * MAX_SCALE:.0f}px"
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-chart="{esc(name)}"'
        f' viewBox="0 0 {width:.0f} {height:.0f}" style="{size}" role="img"'
        f' aria-labelledby="{ident}-t {ident}-d" font-size="{FONT:.0f}">',
        f'<title id="{ident}-t">{esc(title)}</title>',
        f'<desc id="{ident}-d">{esc(desc)}</desc>',
    ]


def _text(
    x: float,
    y: float,
    text: str,
    *,
    anchor: str = "start",
    fill: str = MUTED,
    size: float | None = None,
    weight: str | None = None,
    full: str | None = None,
) -> str:
    extra = f' font-size="{size:g}"' if size else ""
    extra += f' font-weight="{weight}"' if weight else ""
    tip = f"<title>{esc(full)}</title>" if full and full != text else ""
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="{fill}"{extra}>'
        f"{tip}{esc(text)}</text>"
    )


def _line(x1: float, y1: float, x2: float, y2: float, stroke: str, width: float = 1.0) -> str:
    return (
        f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}"'
        f' stroke="{stroke}" stroke-width="{width:g}"/>'
    )


# ---------------------------------------------------------------------------------------
# Row charts: one horizontal band per label, a shared value axis along the bottom.


@dataclass(frozen=True)
class _Rows:
    width: float
    height: float
    left: float
    right: float
    top: float
    row_h: float
    x: Linear
    step: float
    ticks: list[float]

    def mid(self, i: int) -> float:
        return self.top + self.row_h * (i + 0.5)


def _row_frame(
    labels: Sequence[str],
    values: Sequence[float],
    axis: Axis,
    *,
    width: float,
    row_h: float,
    note_w: float,
    out: list[str],
) -> _Rows:
    shown = [clip(label, 22) for label in labels]
    left = min(170.0, max((text_width(s) for s in shown), default=40.0) + 18)
    right = width - 14 - note_w
    top = 12.0
    bottom = top + row_h * len(labels)
    lo, hi, step, ticks = axis.fit(values, right - left)
    x = Linear(lo, hi, left, right)
    height = bottom + 44
    frame = _Rows(width, height, left, right, top, row_h, x, step, ticks)
    for i in range(len(labels)):
        if i % 2 == 1:
            out.append(
                f'<rect x="0" y="{top + row_h * i:.1f}" width="{width:.0f}"'
                f' height="{row_h:.1f}" fill="#f6f8fa"/>'
            )
    for t in ticks:
        out.append(_line(x(t), top, x(t), bottom, GRID))
        out.append(_text(x(t), bottom + 16, axis.fmt(t, step), anchor="middle"))
    out.append(_line(left, bottom, right, bottom, AXIS))
    out.append(_text((left + right) / 2, bottom + 36, axis.label, anchor="middle", fill=INK))
    for i, (label, short) in enumerate(zip(labels, shown, strict=True)):
        out.append(_text(left - 10, frame.mid(i) + 4, short, anchor="end", fill=INK, full=label))
    return frame


def _assemble(
    name: str, title: str, desc: str, body: list[str], width: float, height: float
) -> str:
    return "\n".join([*_open(name, title, desc, width, height), *body, "</svg>"])


@dataclass(frozen=True)
class DistRow:
    """One provider's samples for a box-and-strip plot."""

    label: str
    values: Sequence[float]
    color: str
    note: str = ""


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """The q-quantile of sorted values, linear interpolation (numpy's default)."""
    if not sorted_values:
        return math.nan
    pos = (len(sorted_values) - 1) * q
    low = math.floor(pos)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (pos - low)


def distribution(
    name: str, title: str, desc: str, rows: Sequence[DistRow], axis: Axis, width: float = WIDTH
) -> str:
    """Box (quartiles, median, min-max whiskers) plus every sample as a jittered dot, one
    row per label."""
    body: list[str] = []
    values = [v for r in rows for v in r.values]
    frame = _row_frame(
        [r.label for r in rows], values, axis, width=width, row_h=34, note_w=88, out=body
    )
    x = frame.x
    for i, row in enumerate(rows):
        cy = frame.mid(i)
        data = sorted(v for v in row.values if math.isfinite(v))
        if data:
            q1, med, q3 = (quantile(data, q) for q in (0.25, 0.5, 0.75))
            body.append(_line(x(data[0]), cy, x(data[-1]), cy, row.color, 1.5))
            for end in (data[0], data[-1]):
                body.append(_line(x(end), cy - 5, x(end), cy + 5, row.color, 1.5))
            body.append(
                f'<rect x="{x(q1):.1f}" y="{cy - 8:.1f}" width="{max(1.5, x(q3) - x(q1)):.1f}"'
                f' height="16" rx="2" fill="{row.color}" fill-opacity="0.16"'
                f' stroke="{row.color}" stroke-width="1.5"/>'
            )
            body.append(_line(x(med), cy - 9, x(med), cy + 9, row.color, 2.5))
            for j, v in enumerate(row.values):
                jitter = ((j * 0.618034) % 1.0 - 0.5) * 14
                body.append(
                    f'<circle cx="{x(v):.1f}" cy="{cy + jitter:.1f}" r="2.6"'
                    f' fill="{row.color}" fill-opacity="0.75"/>'
                )
        if row.note:
            body.append(_text(frame.right + 10, cy + 4, row.note, fill=INK))
    return _assemble(name, title, desc, body, width, frame.height)


@dataclass(frozen=True)
class IntervalRow:
    """A point estimate with its confidence interval."""

    label: str
    value: float
    low: float
    high: float
    color: str
    note: str = ""


@dataclass(frozen=True)
class Band:
    """A shaded vertical band across all rows (a reference interval, a margin)."""

    low: float
    high: float
    label: str
    color: str = "#0969da"


def intervals(
    name: str,
    title: str,
    desc: str,
    rows: Sequence[IntervalRow],
    axis: Axis,
    band: Band | None = None,
    rule: float | None = None,
    width: float = WIDTH,
) -> str:
    """Dot and error bar per row; an optional shaded band and a vertical rule (e.g. zero)."""
    body: list[str] = []
    values = [v for r in rows for v in (r.low, r.high, r.value)]
    if band is not None:
        values += [band.low, band.high]
    if rule is not None:
        values.append(rule)
    frame = _row_frame(
        [r.label for r in rows], values, axis, width=width, row_h=30, note_w=110, out=body
    )
    x = frame.x
    bottom = frame.top + frame.row_h * len(rows)
    if band is not None:
        b0, b1 = x(max(band.low, x.lo)), x(min(band.high, x.hi))
        body.append(
            f'<rect x="{b0:.1f}" y="{frame.top:.1f}" width="{max(1.0, b1 - b0):.1f}"'
            f' height="{bottom - frame.top:.1f}" fill="{band.color}" fill-opacity="0.10"/>'
        )
        body.append(_line(b0, frame.top, b0, bottom, band.color, 0.8))
        body.append(_line(b1, frame.top, b1, bottom, band.color, 0.8))
        body.append(
            _text(
                (b0 + b1) / 2,
                frame.height + 6,
                band.label,
                anchor="middle",
                fill=band.color,
                size=11,
            )
        )
    if rule is not None:
        body.append(_line(x(rule), frame.top, x(rule), bottom, INK, 1.2))
    for i, row in enumerate(rows):
        cy = frame.mid(i)
        body.append(_line(x(row.low), cy, x(row.high), cy, row.color, 2.5))
        for end in (row.low, row.high):
            body.append(_line(x(end), cy - 6, x(end), cy + 6, row.color, 2))
        body.append(
            f'<circle cx="{x(row.value):.1f}" cy="{cy:.1f}" r="5.5" fill="{row.color}"'
            ' stroke="#fff" stroke-width="1.5"/>'
        )
        if row.note:
            body.append(_text(frame.right + 10, cy + 4, row.note, fill=INK))
    return _assemble(name, title, desc, body, width, frame.height + (12 if band else 0))


@dataclass(frozen=True)
class Segment:
    """One stacked part of a bar."""

    value: float
    color: str
    label: str = ""


@dataclass(frozen=True)
class BarRow:
    """A horizontal bar of stacked segments; `ghost` draws an outlined bar behind it."""

    label: str
    segments: Sequence[Segment]
    note: str = ""
    ghost: float | None = None


def bars(
    name: str, title: str, desc: str, rows: Sequence[BarRow], axis: Axis, width: float = WIDTH
) -> str:
    """Horizontal (stacked) bars, one per row, from zero."""
    body: list[str] = []
    totals = [sum(s.value for s in r.segments) for r in rows]
    ghosts = [r.ghost for r in rows if r.ghost is not None]
    frame = _row_frame(
        [r.label for r in rows],
        [0.0, *totals, *ghosts],
        Axis(axis.label, axis.prefix, axis.suffix, axis.factor, True, axis.domain),
        width=width,
        row_h=30,
        note_w=96,
        out=body,
    )
    x = frame.x
    for i, row in enumerate(rows):
        cy = frame.mid(i)
        if row.ghost is not None:
            body.append(
                f'<rect x="{x(0):.1f}" y="{cy - 9:.1f}" width="{max(0.0, x(row.ghost) - x(0)):.1f}"'
                f' height="18" rx="2" fill="none" stroke="{AXIS}" stroke-dasharray="4 3"/>'
            )
        start = 0.0
        for seg in row.segments:
            if seg.value <= 0:
                continue
            w = max(1.0, x(start + seg.value) - x(start))
            tip = f"<title>{esc(seg.label)}</title>" if seg.label else ""
            body.append(
                f'<rect x="{x(start):.1f}" y="{cy - 9:.1f}" width="{w:.1f}" height="18"'
                f' rx="2" fill="{seg.color}">{tip}</rect>'
            )
            start += seg.value
        if row.note:
            body.append(_text(frame.right + 10, cy + 4, row.note, fill=INK))
    return _assemble(name, title, desc, body, width, frame.height)


# ---------------------------------------------------------------------------------------
# Scatter (speed vs price) and lines (history).


@dataclass(frozen=True)
class Point:
    """A labelled point."""

    label: str
    x: float
    y: float
    color: str


def _overlaps(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return not (a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1])


def scatter(
    name: str,
    title: str,
    desc: str,
    points: Sequence[Point],
    x_axis: Axis,
    y_axis: Axis,
    corner: str = "",
    width: float = WIDTH,
    height: float = 340,
) -> str:
    """One labelled dot per point; labels are placed to avoid each other and the dots.
    `corner` is a hint written in the top-left corner (e.g. "faster and cheaper")."""
    left, right, top, bottom = 64.0, width - 20, 16.0, height - 52
    x0, x1, xs, xt = x_axis.fit([p.x for p in points], right - left)
    y0, y1, ys, yt = y_axis.fit([p.y for p in points], bottom - top, vertical=True)
    x = Linear(x0, x1, left, right)
    y = Linear(y0, y1, bottom, top)
    body: list[str] = []
    for t in xt:
        body.append(_line(x(t), top, x(t), bottom, GRID))
        body.append(_text(x(t), bottom + 18, x_axis.fmt(t, xs), anchor="middle"))
    for t in yt:
        body.append(_line(left, y(t), right, y(t), GRID))
        body.append(_text(left - 8, y(t) + 4, y_axis.fmt(t, ys), anchor="end"))
    body.append(_line(left, bottom, right, bottom, AXIS))
    body.append(_line(left, top, left, bottom, AXIS))
    body.append(_text((left + right) / 2, height - 12, x_axis.label, anchor="middle", fill=INK))
    cy = (top + bottom) / 2
    body.append(
        f'<text x="16" y="{cy:.1f}" text-anchor="middle" fill="{INK}"'
        f' transform="rotate(-90 16 {cy:.1f})">{esc(y_axis.label)}</text>'
    )
    if corner:
        body.append(_text(left + 8, top + 14, corner, fill="#1a7f37", size=11, weight="600"))
    placed: list[tuple[float, float, float, float]] = [(left, top, left + 150, top + 18)]
    dots = [(x(p.x), y(p.y)) for p in points]
    for px, py in dots:
        placed.append((px - 7, py - 7, px + 7, py + 7))
    labels: list[str] = []
    # Rightmost points first: a label there has the fewest places to go.
    order = sorted(range(len(points)), key=lambda i: (-dots[i][0], dots[i][1]))
    for i in order:
        p, (px, py) = points[i], dots[i]
        text = clip(p.label, 26)
        w, h = text_width(text, LABEL, bold=True) + 4, LABEL + 3
        candidates = [
            (px + 9, py - h / 2),
            (px - 9 - w, py - h / 2),
            (px - w / 2, py - 9 - h),
            (px - w / 2, py + 9),
            (px + 5, py - 5 - h),
            (px + 5, py + 5),
            (px - 5 - w, py - 5 - h),
            (px - 5 - w, py + 5),
        ]
        for k in range(1, 8):
            candidates += [(px + 9, py - h / 2 - k * h), (px + 9, py - h / 2 + k * h)]
            candidates += [(px - 9 - w, py - h / 2 - k * h), (px - 9 - w, py - h / 2 + k * h)]
        box, chosen = (px + 9, py - h / 2, px + 9 + w, py + h / 2), 0
        for index, (cx, cyy) in enumerate(candidates):
            cand = (cx, cyy, cx + w, cyy + h)
            inside = cx >= left and cx + w <= right + 16 and cyy >= top and cyy + h <= bottom
            if inside and not any(_overlaps(cand, o) for o in placed):
                box, chosen = cand, index
                break
        placed.append(box)
        lx, ly = box[0], box[1] + h / 2
        if chosen >= 8:  # moved away from its dot: a leader line says whose label it is
            ex, ey = min(max(px, box[0]), box[2]), min(max(py, box[1] + 2), box[3] - 2)
            labels.append(_line(px, py, ex, ey, p.color, 0.9))
        labels.append(
            _text(lx + 2, ly + LABEL * 0.35, text, fill=INK, size=LABEL, weight="600", full=p.label)
        )
    body.extend(labels)
    for p, (px, py) in zip(points, dots, strict=True):
        body.append(
            f'<circle cx="{px:.1f}" cy="{py:.1f}" r="6.5" fill="{p.color}" stroke="#fff"'
            f' stroke-width="2"><title>{esc(p.label)}</title></circle>'
        )
    return _assemble(name, title, desc, body, width, height)


@dataclass(frozen=True)
class Series:
    """One line: a value (or None) per x position, with an optional interval."""

    label: str
    color: str
    values: Sequence[float | None]
    low: Sequence[float | None] = field(default_factory=list)
    high: Sequence[float | None] = field(default_factory=list)


def lines(
    name: str,
    title: str,
    desc: str,
    series: Sequence[Series],
    x_labels: Sequence[str],
    axis: Axis,
    width: float = WIDTH,
    height: float = 260,
) -> str:
    """A line per series over evenly spaced x positions, with dots and optional whiskers."""
    left, right, top, bottom = 60.0, width - 20, 14.0, height - 46
    values = [
        v
        for s in series
        for seq in (s.values, s.low, s.high)
        for v in seq
        if v is not None and math.isfinite(v)
    ]
    y0, y1, ys, yt = axis.fit(values, bottom - top, vertical=True)
    n = max(1, len(x_labels))
    x = Linear(0, max(1, n - 1), left + 36, right - 36)
    y = Linear(y0, y1, bottom, top)
    body: list[str] = []
    for t in yt:
        body.append(_line(left, y(t), right, y(t), GRID))
        body.append(_text(left - 8, y(t) + 4, axis.fmt(t, ys), anchor="end"))
    body.append(_line(left, bottom, right, bottom, AXIS))
    shown = [clip(label, 14) for label in x_labels]
    spacing = (x(1) - x(0)) if n > 1 else right - left
    widest = max((text_width(label) for label in shown), default=0.0) + 12
    every = max(1, math.ceil(widest / max(1.0, spacing)))
    for i, label in enumerate(x_labels):
        if i % every == 0:
            body.append(_text(x(i), bottom + 18, shown[i], anchor="middle", full=label))
    cy = (top + bottom) / 2
    body.append(
        f'<text x="14" y="{cy:.1f}" text-anchor="middle" fill="{INK}"'
        f' transform="rotate(-90 14 {cy:.1f})">{esc(axis.label)}</text>'
    )
    for s in series:
        pts = [(x(i), y(v)) for i, v in enumerate(s.values) if v is not None and math.isfinite(v)]
        if len(pts) > 1:
            path = " ".join(
                f"{'M' if k == 0 else 'L'}{px:.1f},{py:.1f}" for k, (px, py) in enumerate(pts)
            )
            body.append(
                f'<path d="{path}" fill="none" stroke="{s.color}" stroke-width="2"'
                ' stroke-linejoin="round"/>'
            )
        for i, v in enumerate(s.values):
            if v is None or not math.isfinite(v):
                continue
            lo = s.low[i] if i < len(s.low) else None
            hi = s.high[i] if i < len(s.high) else None
            if lo is not None and hi is not None:
                body.append(_line(x(i), y(lo), x(i), y(hi), s.color, 1.2))
            body.append(
                f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3.5" fill="{s.color}"'
                f' stroke="#fff" stroke-width="1"><title>{esc(s.label)}:'
                f" {esc(axis.fmt(v, ys / 10))}</title></circle>"
            )
    return _assemble(name, title, desc, body, width, height)


__all__ = [
    "Axis",
    "Band",
    "BarRow",
    "DistRow",
    "IntervalRow",
    "Point",
    "Segment",
    "Series",
    "bars",
    "clip",
    "distribution",
    "esc",
    "intervals",
    "lines",
    "nice_ticks",
    "quantile",
    "scatter",
    "text_width",
]
