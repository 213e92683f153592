"""The structured-output check judged on hand-made exchanges: schema validation, and the
verdict with the first problem (and a failed request's error) in its figure."""

import json

from parity.conformance.base import CheckInput, CheckResult, PlanContext, Status
from parity.conformance.checks import structured
from parity.core.config import Provider
from parity.core.exchange import ErrorClass, Exchange, Timings

PROVIDER = Provider(name="p", base_url="http://127.0.0.1:1/v1", model="m")
KEYS = [r.key for r in structured.JSON_SCHEMA.plan(PlanContext(PROVIDER))]
VALID = json.dumps({"name": "Ada Lovelace", "age": 36, "city": "London"})


def x(text: str = VALID, *, error: ErrorClass | None = None, status: int = 200) -> Exchange:
    return Exchange(
        request={}, stream=False, timings=Timings(sent=0), status=status, error=error, text=text
    )


def http_500() -> Exchange:
    ex = x("", error=ErrorClass.HTTP_5XX, status=500)
    ex.error_detail = "HTTP 500: guided decoding backend crashed"
    return ex


def judge(exchanges: dict[str, Exchange]) -> CheckResult:
    return structured.JSON_SCHEMA.judge(CheckInput(PROVIDER, exchanges, None))


def test_plan_sends_the_schema_on_every_request() -> None:
    requests = structured.JSON_SCHEMA.plan(PlanContext(PROVIDER))
    assert len(KEYS) == len(set(KEYS)) == len(structured.PROMPTS)
    assert all(r.body["response_format"] == structured.RESPONSE_FORMAT for r in requests)
    assert structured.RESPONSE_FORMAT["json_schema"]["strict"] is True


def test_schema_problem_none_on_a_valid_document() -> None:
    assert structured.schema_problem(VALID, structured.PERSON) is None


def test_schema_problem_on_text_that_is_not_json() -> None:
    problem = structured.schema_problem("Ada Lovelace, 36, London", structured.PERSON)
    assert problem == "not JSON: 'Ada Lovelace, 36, London'"
    fenced = "```json\n" + VALID + "\n```"
    assert str(structured.schema_problem(fenced, structured.PERSON)).startswith("not JSON")


def test_schema_problem_on_a_schema_mismatch() -> None:
    wrong_type = json.dumps({"name": "Ada", "age": "36", "city": "London"})
    assert structured.schema_problem(wrong_type, structured.PERSON) == (
        "schema mismatch: '36' is not of type 'integer'"
    )
    missing = json.dumps({"name": "Ada", "age": 36})
    assert "'city' is a required property" in str(
        structured.schema_problem(missing, structured.PERSON)
    )
    extra = json.dumps({"name": "Ada", "age": 36, "city": "London", "job": "maths"})
    assert str(structured.schema_problem(extra, structured.PERSON)).startswith("schema mismatch")


def test_judge_passes_when_every_answer_is_valid() -> None:
    result = judge({k: x() for k in KEYS})
    assert result.status is Status.PASS and result.figure == "2/2 answers schema-valid"
    assert result.evidence == []


def test_judge_fails_with_the_first_problem_in_the_figure() -> None:
    result = judge({KEYS[0]: x(), KEYS[1]: x('{"name": "Ada"')})
    assert result.status is Status.FAIL
    assert result.figure == '1/2 answers schema-valid: not JSON: \'{"name": "Ada"\''
    assert result.evidence[0]["key"] == KEYS[1]


def test_judge_figure_names_the_error_of_a_failed_request() -> None:
    result = judge({KEYS[0]: http_500(), KEYS[1]: x()})
    assert result.status is Status.FAIL
    assert result.figure == (
        "1/2 answers schema-valid: refused with HTTP 500 "
        "(HTTP 500: guided decoding backend crashed)"
    )


def test_judge_fails_when_the_provider_refuses_json_schema() -> None:
    result = judge({k: http_500() for k in KEYS})
    assert result.status is Status.FAIL and result.figure.startswith("0/2 answers schema-valid")


def test_judge_error_when_nothing_answered() -> None:
    dead = x()
    dead.status, dead.error = None, ErrorClass.CONNECT
    result = judge(dict.fromkeys(KEYS, dead))
    assert result.status is Status.ERROR and "connect" in result.figure
