"""Errors: are bad requests refused with a 4xx in the OpenAI error shape, and does the
service answer on the first try?"""

from __future__ import annotations

import json
from typing import Any

from parity.conformance.base import (
    Check,
    CheckInput,
    CheckResult,
    PlanContext,
    evidence,
    outage,
    request,
    result,
)
from parity.core.client import RAW_BODY
from parity.core.exchange import Exchange
from parity.core.request import Request, user

ASK = user("Say hello.")
INVALID: dict[str, dict[str, Any]] = {
    "temperature=-1": {"messages": ASK, "max_tokens": 4, "temperature": -1},
    "top_p=2": {"messages": ASK, "max_tokens": 4, "top_p": 2},
    "n=0": {"messages": ASK, "max_tokens": 4, "n": 0},
    "max_tokens=0": {"messages": ASK, "max_tokens": 0},
    "unknown model": {"messages": ASK, "max_tokens": 4, "model": "parity-no-such-model"},
}
MALFORMED: dict[str, dict[str, Any]] = {
    "body is not JSON": {RAW_BODY: '{"messages": [{"role": "user", "content": "hi"}'},
    "no messages": {"max_tokens": 4},
    "messages not a list": {"messages": "hello", "max_tokens": 4},
    "message without role": {"messages": [{"content": "hello"}], "max_tokens": 4},
}


def _slug(name: str) -> str:
    return name.replace(" ", "_").replace("=", "")


def _plan(check_id: str, cases: dict[str, dict[str, Any]]) -> list[Request]:
    return [request(check_id, _slug(name), body) for name, body in cases.items()]


def error_shape_problem(x: Exchange) -> str | None:
    """Why `x` is not a clean refusal: a 4xx whose body is `{"error": {"message": ...}}`."""
    if x.status is None:
        return f"no HTTP answer ({x.error.value if x.error else 'none'})"
    if 200 <= x.status < 300:
        return f"accepted with HTTP {x.status}"
    if not 400 <= x.status < 500:
        return f"HTTP {x.status}, not a 4xx"
    try:
        body = json.loads(x.raw or "")
    except ValueError:
        return f"HTTP {x.status} without a JSON error body"
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or not isinstance(error.get("message"), str):
        return f"HTTP {x.status} body is not the OpenAI error shape"
    return None


def _judge(cases: dict[str, dict[str, Any]], check_id: str) -> Any:
    def judge(inp: CheckInput) -> CheckResult:
        if (down := outage(inp.exchanges)) is not None:
            return down
        bad = []
        for name in cases:
            key = f"conformance/{check_id}/{_slug(name)}"
            x = inp.exchanges.get(key)
            if x is None:
                bad.append({"key": key, "case": name, "problem": "not sent"})
            elif problem := error_shape_problem(x):
                bad.append(evidence(key, x, case=name, problem=problem))
        n = len(cases)
        figure = f"{n - len(bad)}/{n} refused cleanly"
        if bad:
            figure += "; " + ", ".join(f"{b['case']}: {b['problem']}" for b in bad[:3])
        return result(not bad, figure, 'all: 4xx with {"error": {"message": ...}}', bad)

    return judge


INVALID_VALUES = Check(
    id="errors.invalid_values",
    family="errors",
    checks="out-of-range values (temperature -1, top_p 2, n 0, max_tokens 0) and an unknown "
    "model are refused with a 4xx in the OpenAI error shape",
    why="a provider that accepts nonsense silently serves something you did not ask for "
    "(or bills an unknown model); a 5xx makes clients retry a request that cannot succeed",
    plan=lambda ctx: _plan("errors.invalid_values", INVALID),
    judge=_judge(INVALID, "errors.invalid_values"),
    bar='every case: a 4xx with {"error": {"message": ...}}',
)

MALFORMED_REQUESTS = Check(
    id="errors.malformed",
    family="errors",
    checks="malformed requests (broken JSON, no messages, wrong types) get a 4xx with an error "
    "body, not a 5xx or a hung connection",
    why="clients retry 5xx and hang on dropped connections: a malformed request must fail "
    "fast and say why",
    plan=lambda ctx: _plan("errors.malformed", MALFORMED),
    judge=_judge(MALFORMED, "errors.malformed"),
    bar='every case: a 4xx with {"error": {"message": ...}}, no 5xx, no hang',
)

AVAILABILITY_REQUESTS = 10
FIRST_TRY_BAR = 0.9


def _plan_availability(ctx: PlanContext) -> list[Request]:
    body = {"messages": ASK, "max_tokens": 1, "temperature": 0}
    return [request("errors.availability", str(i), body) for i in range(AVAILABILITY_REQUESTS)]


def _judge_availability(inp: CheckInput) -> CheckResult:
    if (down := outage(inp.exchanges)) is not None:
        return down
    first_try = [x for x in inp.exchanges.values() if x.ok and x.attempts == 1]
    rate = len(first_try) / max(len(inp.exchanges), 1)
    bad = [
        evidence(k, x, attempts=x.attempts)
        for k, x in inp.exchanges.items()
        if not x.ok or x.attempts > 1
    ]
    failed = sum(not x.ok for x in inp.exchanges.values())
    figure = f"{len(first_try)}/{len(inp.exchanges)} answered on the first try"
    if failed:
        figure += f", {failed} failed after retries"
    return result(rate >= FIRST_TRY_BAR, figure, f">= {FIRST_TRY_BAR:.0%} first try", bad[:5])


AVAILABILITY = Check(
    id="errors.availability",
    family="errors",
    checks=f"{AVAILABILITY_REQUESTS} one-token requests are answered on the first try "
    "(no 429/5xx needing a retry)",
    why="every retry adds latency and a rate-limited provider caps your throughput below "
    "what its price page implies",
    plan=_plan_availability,
    judge=_judge_availability,
    bar=f">= {FIRST_TRY_BAR:.0%} answered on the first try (a service level, not a model trait)",
)

ERROR_CHECKS = [INVALID_VALUES, MALFORMED_REQUESTS, AVAILABILITY]
