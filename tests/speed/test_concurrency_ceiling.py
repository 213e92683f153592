"""benchmarks/concurrency_ceiling.py at a tiny size, so it cannot rot: real server processes
(two on one port), a real client process per level, parity's bench path and its client path.
Nothing here judges a timing; the figures only have to exist and add up."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "concurrency_ceiling.py"
LEVEL, WAVES, TOKENS = 20, 2, 4


def _run(tmp_path: Path, path: str) -> dict[str, Any]:
    out = tmp_path / f"{path}.json"
    done = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--levels",
            str(LEVEL),
            "--waves",
            str(WAVES),
            "--tokens",
            str(TOKENS),
            "--ttft-ms",
            "20",
            "--itl-ms",
            "5",
            "--servers",
            "2",
            "--path",
            path,
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| streams |" in done.stdout
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value >= 0


@pytest.mark.parametrize("path", ["bench", "client"])
def test_every_stream_is_matched_to_the_servers_records(tmp_path: Path, path: str) -> None:
    result = _run(tmp_path, path)
    assert result["settings"]["path"] == path
    [[row]] = result["rounds"]
    requests = LEVEL * WAVES
    assert row["level"] == LEVEL
    assert row["requests"] == row["records"] == row["ok"] == requests
    assert row["failed"] == 0 and row["unmatched"] == 0 and row["errors"] == {}
    assert row["chunks"] == requests * TOKENS
    for key in ("ttft_err_ms", "itl_err_ms", "ttft_err_first_wave_ms", "ttft_err_later_waves_ms"):
        assert _finite(row[key]["p50"]) and _finite(row[key]["p99"]), key
        assert row[key]["p50"] <= row[key]["p99"]
    assert _finite(row["cpu_s"]) and row["cpu_s"] > 0
    assert row["cpu_us_per_chunk"] == pytest.approx(row["cpu_s"] / row["chunks"] * 1e6)
    assert 0 < row["rss_before_mb"] <= row["rss_peak_mb"]
    assert len(row["server_cpu_share"]) == 2 and all(map(_finite, row["server_cpu_share"]))
    assert math.isfinite(row["server_late_ms"]["p99"])  # can be a hair early: no sign test
    assert len(row["load_before"]) == 3
    assert row["limited_by"] == "-" or set(row["limited_by"].split("+")) <= {
        "server",
        "machine",
        "client",
    }
    if path == "client":  # raw stamps: the TTFT error splits into its two sides
        assert _finite(row["send_ms"]["p99"]) and _finite(row["receive_ms"]["p99"])
