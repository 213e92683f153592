"""The speed-vs-price chart, in Artificial Analysis's style, as a standalone SVG.

One point per provider: blended price ($ per 1M tokens, 3:1) across, median output speed
(tokens/s) up; the most attractive quadrant (faster and cheaper than the medians) is
shaded. No plotting library: the SVG is written by hand, so it needs nothing installed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

__all__ = ["Point", "speed_price_svg"]


@dataclass(frozen=True)
class Point:
    """One provider on the chart."""

    label: str
    price: float  # blended $ per 1M tokens
    speed: float  # output tokens/s (median)


def _nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high]."""
    if high <= low:
        high = low + 1.0
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(low / step) * step
    ticks = []
    value = start
    while value <= high + step * 0.5:
        ticks.append(round(value, 10))
        value += step
    return ticks


def _fmt(value: float) -> str:
    return f"{value:g}" if abs(value) >= 0.01 or value == 0 else f"{value:.3g}"


_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")


def speed_price_svg(points: Sequence[Point], title: str, subtitle: str = "") -> str:
    """An SVG document: output speed (y) against blended price (x), one labelled point each.

    Points without a price or speed should be left out by the caller; an empty list gives a
    chart that says there is nothing to plot.
    """
    width, height = 760, 500
    left, right, top, bottom = 80, 30, 70, 60
    plot_w, plot_h = width - left - right, height - top - bottom
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="Helvetica, Arial, sans-serif">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left}" y="28" font-size="18" font-weight="bold">{escape(title)}</text>',
        f'<text x="{left}" y="48" font-size="12" fill="#555">{escape(subtitle)}</text>',
    ]
    if not points:
        parts.append(
            f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" font-size="14">'
            "no provider has both a price and a measured speed</text></svg>"
        )
        return "\n".join(parts)
    prices = [p.price for p in points]
    speeds = [p.speed for p in points]
    x_ticks = _nice_ticks(0.0, max(prices) * 1.15 or 1.0)
    y_ticks = _nice_ticks(0.0, max(speeds) * 1.15 or 1.0)
    x_max, y_max = x_ticks[-1], y_ticks[-1]

    def sx(v: float) -> float:
        return left + v / x_max * plot_w

    def sy(v: float) -> float:
        return top + plot_h - v / y_max * plot_h

    # The attractive quadrant: cheaper and faster than the medians.
    mid_price = sorted(prices)[len(prices) // 2]
    mid_speed = sorted(speeds)[len(speeds) // 2]
    parts.append(
        f'<rect x="{left}" y="{top}" width="{sx(mid_price) - left:.1f}" '
        f'height="{sy(mid_speed) - top:.1f}" fill="#2ca02c" fill-opacity="0.08"/>'
    )
    parts.append(
        f'<text x="{left + 6}" y="{top + 16}" font-size="11" fill="#2ca02c">'
        "most attractive quadrant</text>"
    )
    for tick in x_ticks:
        x = sx(tick)
        parts.append(
            f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + plot_h}" stroke="#eee"/>'
        )
        parts.append(
            f'<text x="{x:.1f}" y="{top + plot_h + 18}" font-size="11" text-anchor="middle">'
            f"${_fmt(tick)}</text>"
        )
    for tick in y_ticks:
        y = sy(tick)
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#eee"/>'
        )
        parts.append(
            f'<text x="{left - 8}" y="{y + 4:.1f}" font-size="11" text-anchor="end">'
            f"{_fmt(tick)}</text>"
        )
    parts.append(
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#888"/>'
    )
    parts.append(
        f'<text x="{left + plot_w / 2}" y="{height - 18}" font-size="12" text-anchor="middle">'
        "Price (USD per 1M tokens, blended 3:1 input:output)</text>"
    )
    parts.append(
        f'<text x="20" y="{top + plot_h / 2}" font-size="12" text-anchor="middle" '
        f'transform="rotate(-90 20 {top + plot_h / 2})">Output speed (tokens/s, median)</text>'
    )
    placed: list[tuple[float, float]] = []
    for i, point in enumerate(points):
        x, y = sx(point.price), sy(point.speed)
        color = _COLORS[i % len(_COLORS)]
        ly = y - 9
        # Nudge labels of points that sit on top of each other.
        while any(abs(px - x) < 90 and abs(py - ly) < 13 for px, py in placed):
            ly -= 13
        placed.append((x, ly))
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="6" fill="{color}"/>')
        parts.append(
            f'<text x="{x + 9:.1f}" y="{ly:.1f}" font-size="12" fill="{color}">'
            f"{escape(point.label)}</text>"
        )
    parts.append("</svg>")
    return "\n".join(parts)
