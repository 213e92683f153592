"""Every number formatter of the reports, pinned: what it prints, and "-" (or the given
placeholder) for a missing figure."""

from __future__ import annotations

import time

import pytest

from parity.report import format as fmt


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (fmt.number(55.07), "55.1"),
        (fmt.number(302.4, ".0f", " ms"), "302 ms"),
        (fmt.number(None), "-"),
        (fmt.grouped(12345), "12,345"),
        (fmt.grouped(1234.56, 1), "1,234.6"),
        (fmt.grouped(None, none="—"), "—"),
        (fmt.significant(0.012345), "0.0123"),
        (fmt.significant(float("inf")), "inf"),
        (fmt.significant(7), "7"),
        (fmt.significant(None), "-"),
        (fmt.ms(302.4), "302 ms"),
        (fmt.ms(None), "-"),
        (fmt.ms_fine(9.54), "9.5 ms"),
        (fmt.ms_fine(1234.4), "1,234 ms"),
        (fmt.ms_fine(None, "—"), "—"),
        (fmt.duration(302.4), "302 ms"),
        (fmt.duration(12345), "12.35 s"),
        (fmt.duration(None), "-"),
        (fmt.pct(0.4375), "44%"),
        (fmt.pct(0.4375, 1), "43.8%"),
        (fmt.pct(None), "-"),
        (fmt.signed_pct(0.05), "+5.0%"),
        (fmt.signed_pct(-0.5, 0), "-50%"),
        (fmt.pct_range(0.34, 0.53), "[34%, 53%]"),
        (fmt.points(-0.156), "-15.6"),
        (fmt.points(-0.156, 0), "-16"),
        (fmt.points(None), "?"),
        (fmt.points_range(-0.27, -0.04), "[-27, -4]"),
        (fmt.points_range(-0.27, 0.04, 1), "[-27.0, +4.0]"),
        (fmt.margin_points(0.03), "3"),
        (fmt.margin_points(0.025), "2.5"),
        (fmt.p_value(0.00312), "p=0.0031"),
        (fmt.dollars(0.175), "$0.17"),
        (fmt.dollars(0.0001234, 6), "$0.000123"),
        (fmt.dollars(1234.5, 3, thousands=True), "$1,234.500"),
        (fmt.dollars(None), "-"),
        (fmt.usd(0.15), "$0.15"),
        (fmt.usd(0.0012), "$0.0012"),
        (fmt.usd(None), "-"),
        (fmt.usd_3sig(0), "$0"),
        (fmt.usd_3sig(1234.5), "$1,234.50"),
        (fmt.usd_3sig(0.15), "$0.150"),
        (fmt.usd_3sig(0.00123), "$0.00123"),
        (fmt.usd_3sig(None, "—"), "—"),
        (fmt.utc_time(0), "1970-01-01 00:00 UTC"),
        (fmt.utc_time(None), "-"),
        (fmt.iso_utc(86400 + 61), "1970-01-02T00:01:01"),
    ],
)
def test_formatters(text: str, expected: str) -> None:
    assert text == expected


def test_local_time() -> None:
    stamp = 1_800_000_000.0
    assert fmt.local_time(stamp) == time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp))
    assert fmt.local_time(stamp, seconds=True).endswith(time.strftime(":%S", time.localtime(stamp)))
