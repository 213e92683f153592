"""Structured output: is `response_format` json_schema honoured?"""

from __future__ import annotations

import json
from typing import Any

import jsonschema

from parity.conformance.base import (
    Check,
    CheckInput,
    CheckResult,
    PlanContext,
    all_failed,
    evidence,
    outage,
    request,
    result,
)
from parity.core.request import Request, user

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer"},
        "city": {"type": "string"},
    },
    "required": ["name", "age", "city"],
    "additionalProperties": False,
}
PROMPTS = [
    "Invent a person and describe them.",
    "Who is a famous scientist? Give their details.",
]
RESPONSE_FORMAT = {
    "type": "json_schema",
    "json_schema": {"name": "person", "schema": PERSON, "strict": True},
}


def _plan(ctx: PlanContext) -> list[Request]:
    return [
        request(
            "structured.json_schema",
            str(i),
            {
                "messages": user(prompt),
                "response_format": RESPONSE_FORMAT,
                "max_tokens": 512,
                "temperature": 0,
            },
        )
        for i, prompt in enumerate(PROMPTS)
    ]


def schema_problem(text: str, schema: dict[str, Any]) -> str | None:
    """Why `text` is not a JSON document valid against `schema` (None: it is)."""
    try:
        document = json.loads(text)
    except ValueError:
        return f"not JSON: {text[:60]!r}"
    try:
        jsonschema.validate(document, schema)
    except jsonschema.ValidationError as exc:
        return f"schema mismatch: {exc.message[:80]}"
    return None


def _judge(inp: CheckInput) -> CheckResult:
    # A provider that answers json_schema with an HTTP error refuses the feature: a failure.
    # Only when nothing answered at all (timeouts, connection errors) is the check an error.
    if (down := outage(inp.exchanges)) is not None:
        return down
    answered = any(x.status is not None for x in inp.exchanges.values())
    if not answered and (failed := all_failed(inp)) is not None:
        return failed
    bad = []
    for key, x in inp.exchanges.items():
        problem = f"refused with HTTP {x.status}" if not x.ok else schema_problem(x.text, PERSON)
        if problem:
            bad.append(evidence(key, x, problem=problem))
    n = len(inp.exchanges)
    figure = f"{n - len(bad)}/{n} answers schema-valid"
    if bad:
        figure += f": {bad[0]['problem']}"
        if bad[0]["error_detail"]:
            figure += f" ({bad[0]['error_detail'][:80]})"
    return result(not bad, figure, "all: valid JSON, valid against the schema", bad)


JSON_SCHEMA = Check(
    id="structured.json_schema",
    family="structured output",
    checks='response_format {"type": "json_schema"} gives JSON valid against the schema',
    why="structured output is a contract: programs parse it without a human; one invalid "
    "document is a crash downstream",
    plan=_plan,
    judge=_judge,
    bar="every answer: valid JSON, valid against the schema (an HTTP refusal fails)",
)

STRUCTURED_CHECKS = [JSON_SCHEMA]
