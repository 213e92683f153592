"""The fault matrix on the scripted reasoning model (in-process, ~25 s): every check passes on
the reference and its A/A twin, and the fault built to break each check breaks it."""

from __future__ import annotations

import pytest

from parity.conformance.matrix import (
    MATRIX_FAULTS,
    REFERENCE,
    TWIN,
    MatrixResult,
    matrix_markdown,
    run_matrix,
)
from parity.conformance.registry import CHECKS

pytest.importorskip("uvicorn")

# The fault each check exists to catch (a check may catch others too: that is fine).
DESIGNED = {
    "tools.schema": "tool-args-invalid",
    "tools.trigger": "drop=tools",
    "tools.choice": "drop=tool_choice",
    "tools.parallel": "tool-wrong-name",
    "tools.multi_turn": "no-tool-messages",
    "tools.streamed": "tool-args-invalid",
    "tools.responses_api": "tool-args-invalid",
    "reasoning.effort": "drop=reasoning_effort",
    "reasoning.field": "strip-reasoning",
    "params.max_tokens": "drop=max_tokens",
    "params.stop": "drop=stop",
    "params.temperature_zero": "drop=temperature",
    "params.diversity": "drop=top_p",
    "params.seed": "drop=seed",
    "params.n": "drop=n",
    "params.logprobs": "drop=logprobs",
    "structured.json_schema": "drop=response_format",
    "streaming.matches_plain": "break-sse",
    "streaming.well_formed": "break-sse",
    "usage.reported": "drop-usage",
    "usage.streamed": "drop-usage",
    "usage.prompt_tokens": "inject-system",
    "usage.completion_tokens": "inflate-usage=20",
    "context.advertised": "truncate-prompt=300",
    "errors.invalid_values": "accept-invalid",
    "errors.malformed": "errors-as-500",
    "errors.availability": "http-429=0.5",
}


@pytest.fixture(scope="module")
def matrix() -> MatrixResult:
    return run_matrix("scripted")


def test_every_check_has_a_designed_fault_in_the_matrix() -> None:
    assert set(DESIGNED) == {c.id for c in CHECKS}
    assert set(DESIGNED.values()) <= set(MATRIX_FAULTS)


def test_the_matrix_holds(matrix: MatrixResult) -> None:
    assert matrix.problems() == []
    assert matrix.holds


def test_reference_and_twin_pass_every_check(matrix: MatrixResult) -> None:
    for check in matrix.checks:
        assert matrix.status[("scripted", TWIN, check)] == "pass", check
        # Checks whose bar is the reference are n/a on the reference itself.
        assert matrix.status[("scripted", REFERENCE, check)] in ("pass", "n/a"), check
    assert matrix.applicable["scripted"] == set(matrix.checks)


@pytest.mark.parametrize(("check", "fault"), sorted(DESIGNED.items()))
def test_designed_fault_is_caught(matrix: MatrixResult, check: str, fault: str) -> None:
    assert matrix.caught(check, fault) == ["scripted"], matrix.figure.get(
        ("scripted", fault, check)
    )


def test_a_slow_first_token_is_no_conformance_failure(matrix: MatrixResult) -> None:
    assert matrix.uncaught_faults() == ["delay-first-token=200"]


def test_markdown_has_a_row_per_check_and_a_column_per_fault(matrix: MatrixResult) -> None:
    lines = matrix_markdown(matrix).splitlines()
    assert len(lines) == 2 + len(matrix.checks)
    assert all(line.count("|") == len(MATRIX_FAULTS) + 4 for line in lines)
    assert "`drop=reasoning_effort`" in lines[0]


def test_a_check_no_fault_catches_breaks_the_matrix(matrix: MatrixResult) -> None:
    only_delay = MatrixResult(
        matrix.upstreams,
        matrix.checks,
        ["delay-first-token=200"],
        matrix.status,
        matrix.figure,
        matrix.applicable,
    )
    assert not only_delay.holds
    assert any("no fault makes it fail" in p for p in only_delay.problems())
