"""Every way a report writes a number: times, rates, counts, percentages, points, p-values,
prices and timestamps, each once.

A missing figure (None) is written `none`, "-" unless a function says otherwise; the HTML
report passes "—". Fractions (0.4375) are written as percentages or percentage points;
times are in milliseconds; prices and costs in US dollars. Nothing here knows the report
model: these take plain numbers, so the terminal tables, the exports, `parity history`,
`parity diff` and `parity bench` all print the same figure the same way.
"""

from __future__ import annotations

import math
import time

__all__ = [
    "NONE",
    "dollars",
    "duration",
    "grouped",
    "iso_utc",
    "local_time",
    "margin_points",
    "ms",
    "ms_fine",
    "number",
    "p_value",
    "pct",
    "pct_range",
    "points",
    "points_range",
    "signed_pct",
    "significant",
    "usd",
    "usd_3sig",
    "utc_time",
]

NONE = "-"
"""What a missing figure is written as."""


# Numbers ------------------------------------------------------------------------------------


def number(value: float | None, fmt: str = ".1f", unit: str = "", none: str = NONE) -> str:
    """`value` in the format spec `fmt`, then `unit`: 55.07 -> "55.1"; (302.4, ".0f", " ms")
    -> "302 ms"; None -> "-"."""
    return none if value is None else f"{value:{fmt}}{unit}"


def grouped(value: float | None, digits: int = 0, none: str = NONE) -> str:
    """With thousands separators and `digits` decimals: 12345 -> "12,345"; (1234.56, 1) ->
    "1,234.6"; None -> "-"."""
    return none if value is None else f"{value:,.{digits}f}"


def significant(value: object, digits: int = 3, none: str = NONE) -> str:
    """A float to `digits` significant digits (0.012345 -> "0.0123", 1e-5 -> "1e-05"),
    "inf" for an infinite or NaN float, any other value as `str` (7 -> "7"), None -> "-"."""
    if value is None:
        return none
    if isinstance(value, float):
        return f"{value:.{digits}g}" if math.isfinite(value) else "inf"
    return str(value)


# Times --------------------------------------------------------------------------------------


def ms(value: float | None, none: str = NONE) -> str:
    """Milliseconds, whole: 302.4 -> "302 ms"; None -> "-"."""
    return number(value, ".0f", " ms", none)


def ms_fine(value: float | None, none: str = NONE) -> str:
    """Milliseconds, one decimal below 10 ms, whole and grouped from 10 ms: 9.54 -> "9.5 ms",
    1234.4 -> "1,234 ms"; None -> "-"."""
    if value is None:
        return none
    return f"{value:,.0f} ms" if value >= 10 else f"{value:.1f} ms"


def duration(value_ms: float | None, none: str = NONE) -> str:
    """A time given in milliseconds, in seconds from 10 s: 302.4 -> "302 ms", 12345 ->
    "12.35 s"; None -> "-"."""
    if value_ms is None:
        return none
    return f"{value_ms / 1000:.2f} s" if value_ms >= 10_000 else f"{value_ms:.0f} ms"


def local_time(timestamp: float | None, seconds: bool = False) -> str:
    """Unix seconds as local time: "2026-12-01 18:14" ("2026-12-01 18:14:44" with
    `seconds`); None is the epoch."""
    fmt = "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M"
    return time.strftime(fmt, time.localtime(timestamp or 0))


def utc_time(timestamp: float | None, none: str = NONE) -> str:
    """Unix seconds as UTC: "2026-12-01 18:14 UTC"; None -> "-"."""
    if timestamp is None:
        return none
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(timestamp))


def iso_utc(timestamp: float | None) -> str:
    """Unix seconds as ISO 8601 UTC without a zone: "2026-12-01T18:14:44"; None is the
    epoch."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(timestamp or 0))


# Fractions: percentages and percentage points -----------------------------------------------


def pct(value: float | None, digits: int = 0, none: str = NONE) -> str:
    """A fraction as a percentage: 0.4375 -> "44%"; (0.4375, 1) -> "43.8%"; None -> "-"."""
    return none if value is None else f"{value * 100:.{digits}f}%"


def signed_pct(value: float | None, digits: int = 1, none: str = NONE) -> str:
    """A relative change as a signed percentage: 0.05 -> "+5.0%"; (-0.5, 0) -> "-50%";
    None -> "-"."""
    return none if value is None else f"{value * 100:+.{digits}f}%"


def pct_range(low: float, high: float, digits: int = 0) -> str:
    """An interval of fractions as percentages: (0.34, 0.53) -> "[34%, 53%]"."""
    return f"[{pct(low, digits)}, {pct(high, digits)}]"


def points(value: float | None, digits: int = 1, none: str = "?") -> str:
    """A difference of fractions in percentage points, signed: -0.156 -> "-15.6"; (-0.156, 0)
    -> "-16"; None -> "?"."""
    return none if value is None else f"{value * 100:+.{digits}f}"


def points_range(low: float, high: float, digits: int = 0) -> str:
    """An interval of differences in percentage points, signed: (-0.27, -0.04) ->
    "[-27, -4]"; (-0.27, -0.04, 1) -> "[-27.0, -4.0]"."""
    return f"[{points(low, digits)}, {points(high, digits)}]"


def margin_points(value: float) -> str:
    """A margin (a fraction) in percentage points, shortest form: 0.03 -> "3", 0.025 ->
    "2.5"."""
    return f"{value * 100:g}"


def p_value(value: float) -> str:
    """A p-value to two significant digits: 0.00312 -> "p=0.0031", 0.5 -> "p=0.5"."""
    return f"p={value:.2g}"


# Money --------------------------------------------------------------------------------------


def dollars(value: float | None, digits: int = 2, none: str = NONE, thousands: bool = False) -> str:
    """US dollars with `digits` decimals: 0.175 -> "$0.17"; (0.0001234, 6) -> "$0.000123";
    with `thousands`, grouped: (1234.5, 3) -> "$1,234.500"; None -> "-"."""
    if value is None:
        return none
    return f"${value:,.{digits}f}" if thousands else f"${value:.{digits}f}"


def usd(value: float | None, none: str = NONE) -> str:
    """US dollars: two decimals from $0.10 ("$0.15"), else six with trailing zeros cut
    ("$0.0012"); None -> "-"."""
    if value is None:
        return none
    return f"${value:.2f}" if value >= 0.1 else f"${value:.6f}".rstrip("0")


def usd_3sig(value: float | None, none: str = NONE) -> str:
    """US dollars: "$0" for zero, grouped cents from $1 ("$1,234.50"), else three significant
    digits ("$0.150", "$0.00123"); None -> "-"."""
    if value is None:
        return none
    if value == 0:
        return "$0"
    if value >= 1:
        return f"${value:,.2f}"
    return f"${value:.{max(2, 2 - math.floor(math.log10(value)))}f}"
