"""The fault matrix on the real llama.cpp server (slow: ~1 minute per fault on two cores, so
it runs with `pytest -m slow`, not in the default run). The scripted half of the matrix runs
in the default suite (tests/conformance/test_matrix.py)."""

from __future__ import annotations

import pytest

from parity.conformance.matrix import REFERENCE, TWIN, run_matrix

pytest.importorskip("llama_cpp")
pytestmark = [pytest.mark.fleet, pytest.mark.slow, pytest.mark.timeout(3000)]

# Faults aimed at what llama-cpp-python does implement, and the check each must trip.
EXPECTED = {
    "drop=max_tokens": "params.max_tokens",
    "drop=stop": "params.stop",
    "drop=temperature": "params.temperature_zero",
    "drop=top_p": "params.diversity",
    "drop=seed": "params.seed",
    "drop=logprobs": "params.logprobs",
    "tool-args-invalid": "tools.streamed",
    "break-sse": "streaming.well_formed",
    "drop-usage": "usage.reported",
    "truncate-prompt=300": "context.advertised",
    "http-429=0.5": "errors.availability",
}


def test_llama_matrix() -> None:
    result = run_matrix("llama", faults=list(EXPECTED))
    # A/A: a second reference (the same server through a clean proxy) raises no alarm.
    assert result.false_alarms() == []
    applicable = result.applicable["llama"]
    for check in applicable:
        assert result.status[("llama", TWIN, check)] == "pass"
        assert result.status[("llama", REFERENCE, check)] in ("pass", "n/a")
    for fault, check in EXPECTED.items():
        assert check in applicable, check
        assert result.caught(check, fault) == ["llama"], (fault, check)
