"""Tool calls: does the provider call tools when it should, in the shape the API defines?

The cases follow the gpt-oss publisher's compatibility test: a few tools, prompts that
should trigger one of them and prompts that none fits, each run `tries` times at the
provider's default sampling (pass@k and pass^k). `tools.schema` and `tools.trigger` plan the
same requests under `conformance/tools.cases/`: the runner sends a key once, and analysis
hands each check the exchanges of the keys it plans, so the two judge one set of answers.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jsonschema

from parity.conformance import agreement
from parity.conformance.base import (
    BarRule,
    Check,
    CheckInput,
    CheckResult,
    PlanContext,
    all_failed,
    evidence,
    not_applicable,
    outage,
    request,
    result,
    transport_failure,
)
from parity.core.exchange import ErrorClass, Exchange
from parity.core.request import Request, user

FAMILY = "tool calls"
MAX_TOKENS = 256  # reasoning models think before they call

# Classifications of one call attempt.
OK = "ok"
INVALID_JSON = "invalid_json"
UNKNOWN_TOOL = "unknown_tool"
SCHEMA_MISMATCH = "schema_mismatch"
NO_CALL = "no_call"
WRONG_TOOL = "wrong_tool"
UNEXPECTED_CALL = "unexpected_call"
ERROR = "error"


def _tool(name: str, description: str, properties: dict[str, Any]) -> dict[str, Any]:
    parameters = {
        "type": "object",
        "properties": properties,
        "required": [p for p in properties if p != "unit"],
        "additionalProperties": False,
    }
    return {
        "type": "function",
        "function": {"name": name, "description": description, "parameters": parameters},
    }


_STR = {"type": "string"}
WEATHER = _tool(
    "get_weather",
    "Current weather for a city: temperature, rain and wind. Use it for questions about the "
    "weather, how warm or cold it is, or whether to take an umbrella.",
    {"city": _STR, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
)
TIME = _tool(
    "get_time",
    "Current local time in a city or timezone.",
    {"timezone": {"type": "string", "description": "IANA name, e.g. Europe/Paris"}},
)
CURRENCY = _tool(
    "convert_currency",
    "Convert an amount of money between currencies (euros, dollars, yen...).",
    {
        "amount": {"type": "number"},
        "from_currency": {"type": "string", "description": "ISO 4217 code, e.g. EUR"},
        "to_currency": {"type": "string", "description": "ISO 4217 code, e.g. USD"},
    },
)
FLIGHTS = _tool(
    "search_flights",
    "Search flights between two cities on a date.",
    {
        "origin": _STR,
        "destination": _STR,
        "date": {"type": "string", "description": "YYYY-MM-DD"},
    },
)
TOOLS = (WEATHER, TIME, CURRENCY, FLIGHTS)


@dataclass(frozen=True)
class ToolCase:
    """A prompt, the tools offered, the tool it should call (None: no tool fits) and a
    subset of arguments robust enough to expect (strings match case-insensitively, inside)."""

    name: str
    prompt: str
    tools: tuple[dict[str, Any], ...]
    expected_tool: str | None
    expected_args: dict[str, Any] | None
    tool_choice: str | dict[str, Any] | None = None

    def body(self) -> dict[str, Any]:
        """The chat completion body (sampling left at the provider's default)."""
        body: dict[str, Any] = {
            "messages": user(self.prompt),
            "tools": list(self.tools),
            "max_tokens": MAX_TOKENS,
        }
        if self.tool_choice is not None:
            body["tool_choice"] = self.tool_choice
        return body


PARIS = "What's the weather in Paris?"
CASES: tuple[ToolCase, ...] = (
    ToolCase("weather_paris", PARIS, TOOLS, "get_weather", {"city": "Paris"}),
    ToolCase(
        "weather_new_york_f",
        "How warm is it in New York right now, in Fahrenheit?",
        TOOLS,
        "get_weather",
        {"city": "New York", "unit": "fahrenheit"},
    ),
    ToolCase(
        "weather_berlin_umbrella",
        "Should I bring an umbrella in Berlin today?",
        TOOLS,
        "get_weather",
        {"city": "Berlin"},
    ),
    ToolCase("time_tokyo", "What time is it in Tokyo right now?", TOOLS, "get_time", None),
    ToolCase(
        "currency_eur_usd",
        "Convert 250 euros to US dollars.",
        TOOLS,
        "convert_currency",
        {"amount": 250},
    ),
    ToolCase(
        "flights_london_rome",
        "Find me flights from London to Rome on 2026-06-14.",
        TOOLS,
        "search_flights",
        {"date": "2026-06-14"},
    ),
    ToolCase("none_haiku", "Write a haiku about autumn.", TOOLS, None, None),
    ToolCase("none_arithmetic", "What is 17 times 3? Answer with the number.", TOOLS, None, None),
)
CASES_BY_NAME = {case.name: case for case in CASES}
CASES_PREFIX = "tools.cases"


# --- classification --------------------------------------------------------------------


def parse_arguments(arguments: Any) -> tuple[bool, Any]:
    """(True, value) when `arguments` is a JSON string (as the API defines it), else
    (False, None)."""
    if not isinstance(arguments, str):
        return False, None
    try:
        return True, json.loads(arguments)
    except ValueError:
        return False, None


def _function(call: Mapping[str, Any]) -> Mapping[str, Any]:
    fn = call.get("function")
    return fn if isinstance(fn, Mapping) else {}


def call_name(call: Mapping[str, Any]) -> Any:
    """The called tool's name as returned (may be anything a provider sends)."""
    return _function(call).get("name")


def call_problem(call: Mapping[str, Any], tools: tuple[dict[str, Any], ...]) -> str | None:
    """unknown_tool, invalid_json or schema_mismatch for one call; None when it is valid."""
    schemas = {t["function"]["name"]: t["function"]["parameters"] for t in tools}
    name = call_name(call)
    if not isinstance(name, str) or name not in schemas:
        return UNKNOWN_TOOL
    parsed, value = parse_arguments(_function(call).get("arguments"))
    if not parsed:
        return INVALID_JSON
    if not jsonschema.Draft202012Validator(schemas[name]).is_valid(value):
        return SCHEMA_MISMATCH
    return None


def classify(case: ToolCase, exchange: Exchange) -> str:
    """One attempt's class: ok, error, no_call, unexpected_call, wrong_tool, or the first
    call's problem (unknown_tool, invalid_json, schema_mismatch)."""
    if not exchange.ok:
        return ERROR
    calls = exchange.tool_calls
    if not calls:
        return NO_CALL if case.expected_tool else OK
    for call in calls:
        if (problem := call_problem(call, case.tools)) is not None:
            return problem
    if case.expected_tool is None:
        return UNEXPECTED_CALL
    if case.expected_tool not in {call_name(c) for c in calls}:
        return WRONG_TOOL
    return OK


def args_match(case: ToolCase, exchange: Exchange) -> bool:
    """Does the expected tool's first call carry `case.expected_args` (a subset)?"""
    for call in exchange.tool_calls:
        if call_name(call) != case.expected_tool:
            continue
        parsed, value = parse_arguments(_function(call).get("arguments"))
        if not parsed or not isinstance(value, dict):
            return False
        return all(_same(want, value.get(k)) for k, want in (case.expected_args or {}).items())
    return False


def _same(want: Any, got: Any) -> bool:
    if isinstance(want, str):
        return isinstance(got, str) and want.lower() in got.lower()
    if isinstance(want, int | float) and not isinstance(want, bool):
        return isinstance(got, int | float) and not isinstance(got, bool) and got == want
    return bool(want == got)


def called(exchange: Exchange | None) -> bool:
    """Did this attempt return a tool call?"""
    return exchange is not None and exchange.ok and bool(exchange.tool_calls)


# --- tools.schema and tools.trigger: the shared cases -----------------------------------


def _case_key(case: ToolCase, attempt: int) -> str:
    return f"conformance/{CASES_PREFIX}/{case.name}/{attempt}"


def _plan_cases(ctx: PlanContext) -> list[Request]:
    return [
        request(CASES_PREFIX, f"{case.name}/{attempt}", case.body())
        for case in CASES
        for attempt in range(ctx.tries)
    ]


def _case_of(key: str) -> ToolCase | None:
    parts = key.split("/")
    return CASES_BY_NAME.get(parts[-2]) if len(parts) >= 2 else None


def _judge_schema(inp: CheckInput) -> CheckResult:
    if (failed := all_failed(inp)) is not None:
        return failed
    counts: Counter[str] = Counter()
    total = 0
    bad = []
    for key, x in inp.exchanges.items():
        case = _case_of(key)
        if case is None or not x.ok:
            continue
        for call in x.tool_calls:
            total += 1
            if (problem := call_problem(call, case.tools)) is not None:
                counts[problem] += 1
                bad.append(evidence(key, x, classification=problem, tool_call=call))
    if not total:
        return not_applicable("no tool calls made: see tools.trigger")
    figure = (
        f"{total - len(bad)}/{total} calls valid; {counts[INVALID_JSON]} invalid_json, "
        f"{counts[UNKNOWN_TOOL]} unknown_tool, {counts[SCHEMA_MISMATCH]} schema_mismatch"
    )
    return result(not bad, figure, "all calls: JSON arguments, known tool, schema-valid", bad)


SCHEMA = Check(
    id="tools.schema",
    family=FAMILY,
    checks="every tool call names an offered tool with JSON arguments valid against its schema",
    why="clients parse and dispatch calls blindly; a broken tool parser or template turns "
    "into unknown tools, unparseable or mistyped arguments",
    plan=_plan_cases,
    judge=_judge_schema,
    bar="every call: JSON arguments, an offered tool, valid against its schema",
)


def f1(truth: list[bool], predicted: list[bool]) -> float:
    """F1 of `predicted` against `truth`, positive class True; 1.0 when neither has one."""
    tp = sum(t and p for t, p in zip(truth, predicted, strict=True))
    wrong = sum(t != p for t, p in zip(truth, predicted, strict=True))
    return 1.0 if tp + wrong == 0 else 2 * tp / (2 * tp + wrong)


def _passes(case: ToolCase, x: Exchange) -> bool:
    return classify(case, x) == OK if case.expected_tool else x.ok and not x.tool_calls


def pass_at_k(exchanges: Mapping[str, Exchange], tries: int) -> tuple[float, float]:
    """(pass@k, pass^k) over the cases: share with at least one passing try, with all."""
    any_pass = all_pass = 0
    for case in CASES:
        results = [
            x is not None and _passes(case, x)
            for x in (exchanges.get(_case_key(case, t)) for t in range(tries))
        ]
        any_pass += any(results)
        all_pass += all(results)
    return any_pass / len(CASES), all_pass / len(CASES)


def _decisions(exchanges: Mapping[str, Exchange], attempt: int) -> list[bool]:
    return [called(exchanges.get(_case_key(c, attempt))) for c in CASES]


def self_f1(reference: Mapping[str, Exchange], tries: int) -> float:
    """The reference's agreement with itself: F1 of try j against try 0, averaged."""
    first = _decisions(reference, 0)
    scores = [f1(first, _decisions(reference, j)) for j in range(1, tries)]
    return sum(scores) / len(scores)


NEVER_CALLS = (
    "the reference never calls a tool on these cases "
    "(the model or engine does not do automatic tool calls)"
)
TRIGGERS = tuple(c for c in CASES if c.expected_tool)


def _judge_trigger(inp: CheckInput) -> CheckResult:
    if (failed := all_failed(inp)) is not None:
        return failed
    tries = inp.tries
    at_k, hat_k = pass_at_k(inp.exchanges, tries)
    matched = [
        args_match(c, x)
        for c in TRIGGERS
        if c.expected_args
        for t in range(tries)
        if (x := inp.exchanges.get(_case_key(c, t))) is not None and classify(c, x) == OK
    ]
    tail = (
        f"pass@{tries} {at_k:.2f}, pass^{tries} {hat_k:.2f} over {len(CASES)} cases; "
        f"args as expected {sum(matched)}/{len(matched)}"
    )
    if inp.reference is None:
        if not inp.provider.reference:
            return not_applicable("no reference provider")
        return _judge_trigger_absolute(inp, tail)
    ref = inp.reference
    if not any(called(ref.get(_case_key(c, t))) for c in TRIGGERS for t in range(tries)):
        return not_applicable(NEVER_CALLS)
    keys = [k for k in (_case_key(c, t) for c in CASES for t in range(tries)) if k in ref]
    truth = [called(ref[k]) for k in keys]
    mine = [called(inp.exchanges.get(k)) for k in keys]
    score = f1(truth, mine)
    rates_ok, rates = _call_rates(keys, truth, mine)
    if tries >= 2:
        spread = self_f1(ref, tries)
        bar_value = max(0.5, spread - 0.15)
        bar = f">= {bar_value:.2f} (reference self-F1 {spread:.2f} - 0.15, at least 0.50)"
        note = ""
    else:
        bar_value, bar = 0.8, ">= 0.80"
        note = "; bar fixed: run with --tries 3 to set it from the reference's spread"
    figure = (
        f"F1 {score:.2f} vs reference ({sum(mine)} vs {sum(truth)} calls in {len(keys)} "
        f"requests); {tail}{note}"
    )
    if not rates_ok:
        figure += f"; {rates}"
    bar += f"; {CALL_RATE_BAR}"
    bad = [
        evidence(
            k,
            x,
            classification=classify(case, x),
            called=m,
            reference_called=t,
            tool_calls=x.tool_calls,
        )
        for k, t, m in zip(keys, truth, mine, strict=True)
        if t != m and (x := inp.exchanges.get(k)) is not None and (case := _case_of(k))
    ]
    return result(score >= bar_value and rates_ok, figure, bar, bad)


CALL_RATE_BAR = (
    "call rate on trigger cases not significantly below the reference's, on no-fit cases not "
    "significantly above (one-sided Boschloo, alpha 0.05)"
)


def _call_rates(keys: list[str], truth: list[bool], mine: list[bool]) -> tuple[bool, str]:
    """Whether the provider calls tools as often as the reference where a tool fits and no
    more often where none does (the reference's own rates, per attempt), and what it found."""
    fits = [case.expected_tool is not None for k in keys if (case := _case_of(k)) is not None]
    ref_hit = agreement.Tally(sum(t for t, f in zip(truth, fits, strict=True) if f), sum(fits))
    my_hit = agreement.Tally(sum(m for m, f in zip(mine, fits, strict=True) if f), sum(fits))
    no_fit = len(fits) - sum(fits)
    # Not calling where no tool fits, as a rate: the provider must not do it less often.
    ref_quiet = agreement.Tally(
        sum(not t for t, f in zip(truth, fits, strict=True) if not f), no_fit
    )
    my_quiet = agreement.Tally(sum(not m for m, f in zip(mine, fits, strict=True) if not f), no_fit)
    p_hit = agreement.p_below(my_hit, ref_hit)
    p_quiet = agreement.p_below(my_quiet, ref_quiet)
    found = (
        f"calls where a tool fits {my_hit} vs the reference's {ref_hit} "
        f"({agreement.p_text(p_hit)}), none where none fits {my_quiet} vs {ref_quiet} "
        f"({agreement.p_text(p_quiet)})"
    )
    return p_hit >= agreement.ALPHA and p_quiet >= agreement.ALPHA, found


def _as_expected(case: ToolCase, x: Exchange) -> bool:
    """Trigger case: the expected tool is among the calls; no-fit case: no call."""
    if case.expected_tool is None:
        return not called(x)
    return called(x) and case.expected_tool in {call_name(c) for c in x.tool_calls}


def _judge_trigger_absolute(inp: CheckInput, tail: str) -> CheckResult:
    """The reference judged on its own: each trigger case calls its tool in at least half
    its tries, and no no-fit case ever calls."""
    tries = inp.tries
    if not any(called(inp.exchanges.get(_case_key(c, t))) for c in TRIGGERS for t in range(tries)):
        return not_applicable(NEVER_CALLS)
    bad = []
    failing = []
    for case in CASES:
        attempts = [(k, inp.exchanges.get(k)) for k in (_case_key(case, t) for t in range(tries))]
        misses = [(k, x) for k, x in attempts if x is None or not _as_expected(case, x)]
        limit = tries // 2 if case.expected_tool else 0  # trigger: >= half the tries hit
        if len(misses) > limit:
            failing.append(case.name)
            bad += [
                evidence(k, x, classification=classify(case, x), tool_calls=x.tool_calls)
                for k, x in misses
                if x is not None
            ]
    figure = f"{len(CASES) - len(failing)}/{len(CASES)} cases as expected; {tail}"
    if failing:
        figure += f"; failing: {', '.join(failing)}"
    bar = "each trigger case calls its tool in >= half its tries; no no-fit case calls"
    return result(not failing, figure, bar, bad)


TRIGGER = Check(
    id="tools.trigger",
    family=FAMILY,
    checks="the provider decides to call a tool (or not) as the reference does on the same "
    "prompts (F1), with pass@k and pass^k per case",
    why="a missing tool parser, a wrong chat template or a quantised model shows first as "
    "calls that never come, or come where no tool fits",
    plan=_plan_cases,
    judge=_judge_trigger,
    needs_reference=True,
    bar_rule=BarRule.REPEAT_AGREEMENT,
    bar="F1 of call decisions vs the reference's >= its own run-to-run F1 - 0.15 (at least "
    "0.50) at --tries >= 2, >= 0.80 at --tries 1; and " + CALL_RATE_BAR + "; the reference "
    "itself: each trigger case calls in >= half its tries, no no-fit case calls",
)


# --- tools.choice --------------------------------------------------------------------------

NAMED = {"type": "function", "function": {"name": "get_time"}}
CHOICE_CASES = {
    "none": ToolCase("none", PARIS, TOOLS, None, None, tool_choice="none"),
    "required": ToolCase(
        "required", "Tell me something useful.", TOOLS, None, None, tool_choice="required"
    ),
    "named": ToolCase("named", PARIS, TOOLS, "get_time", None, tool_choice=NAMED),
}
# OpenAI ends a forced named call with "stop"; auto and "required" calls with "tool_calls".
NAMED_FINISH = ("tool_calls", "stop")


def _plan_choice(ctx: PlanContext) -> list[Request]:
    return [request("tools.choice", name, case.body()) for name, case in CHOICE_CASES.items()]


def _choice_problem(name: str, x: Exchange) -> str | None:
    names = [call_name(c) for c in x.tool_calls]
    if not x.ok:
        return f"request failed: {x.error_detail}"
    if name == "none":
        if names:
            return "tool_choice 'none' but a tool was called"
        if not x.text.strip() and x.finish_reason != "length":
            return "tool_choice 'none' and no text content"
        return None
    if not names:
        return f"tool_choice {name!r} but no tool called"
    if name == "named" and any(n != "get_time" for n in names):
        return f"tool_choice named get_time but called {names}"
    # A forced call is still a call: its arguments must be JSON valid against the tool's
    # schema, as `tools.schema` holds automatic calls to (vLLM does not constrain them).
    for call in x.tool_calls:
        if (problem := call_problem(call, CHOICE_CASES[name].tools)) is not None:
            return f"forced call to {call_name(call)!r}: {problem}"
    allowed = NAMED_FINISH if name == "named" else ("tool_calls",)
    if x.finish_reason not in allowed:
        return f"a call returned with finish_reason {x.finish_reason!r}"
    return None


def _judge_choice(inp: CheckInput) -> CheckResult:
    if (failed := all_failed(inp)) is not None:
        return failed
    failing, bad = [], []
    for name in CHOICE_CASES:
        key = f"conformance/tools.choice/{name}"
        x = inp.exchanges.get(key)
        if x is None:
            continue
        if (problem := _choice_problem(name, x)) is not None:
            failing.append(name)
            bad.append(evidence(key, x, problem=problem, tool_calls=x.tool_calls))
    figure = f"failed: {', '.join(failing)}" if failing else "none, required, named honoured"
    bar = (
        "all three; a forced call schema-valid, finish_reason 'tool_calls' ('stop' too when named)"
    )
    return result(not failing, figure, bar, bad)


CHOICE = Check(
    id="tools.choice",
    family=FAMILY,
    checks="tool_choice 'none', 'required' and a named function are honoured, a forced "
    "call's arguments valid against the tool's schema",
    why="agents force or forbid calls with tool_choice; a provider that ignores it loops "
    "or calls tools it was told not to",
    plan=_plan_choice,
    judge=_judge_choice,
    bar="all three honoured; a forced call's arguments JSON valid against the tool's schema; "
    "finish_reason 'tool_calls' with a call ('stop' too when named)",
)


# --- tools.parallel ------------------------------------------------------------------------

PARALLEL_KEY = "conformance/tools.parallel/paris_tokyo"
PARALLEL_CITIES = ("paris", "tokyo")


def _plan_parallel(ctx: PlanContext) -> list[Request]:
    body = {
        "messages": user("What's the weather in Paris and in Tokyo?"),
        "tools": [WEATHER],
        "max_tokens": MAX_TOKENS,
    }
    return [request("tools.parallel", "paris_tokyo", body)]


def _cities(x: Exchange) -> list[str]:
    cities = []
    for call in x.tool_calls:
        parsed, value = parse_arguments(_function(call).get("arguments"))
        city = value.get("city") if parsed and isinstance(value, dict) else None
        cities.append(city.lower() if isinstance(city, str) else "")
    return cities


def _judge_parallel(inp: CheckInput) -> CheckResult:
    if (failed := all_failed(inp)) is not None:
        return failed
    bar = "two get_weather calls: Paris and Tokyo"
    if inp.reference is not None:
        ref = inp.reference.get(PARALLEL_KEY)
        if ref is None or not ref.ok or len(ref.tool_calls) < 2:
            return not_applicable("the reference makes fewer than 2 calls on it", bar)
    x = inp.exchanges[PARALLEL_KEY]
    cities = _cities(x)
    ok = (
        len(x.tool_calls) == 2
        and all(call_name(c) == "get_weather" for c in x.tool_calls)
        and all(any(want in got for got in cities) for want in PARALLEL_CITIES)
    )
    figure = f"{len(x.tool_calls)} calls, cities {cities}"
    found = [] if ok else [evidence(PARALLEL_KEY, x, tool_calls=x.tool_calls)]
    return result(ok, figure, bar, found)


PARALLEL = Check(
    id="tools.parallel",
    family=FAMILY,
    checks="a question needing two lookups yields two tool calls in one response",
    why="parallel calls save a round trip per tool; a parser that keeps only the first call "
    "silently drops work",
    plan=_plan_parallel,
    judge=_judge_parallel,
    required=False,
    bar="two get_weather calls, Paris and Tokyo (n/a where the reference makes fewer than 2)",
)


# --- tools.multi_turn ----------------------------------------------------------------------

MULTI_TURN_KEY = "conformance/tools.multi_turn/after_result"
CONVERSATION = [
    {"role": "user", "content": PARIS},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": '{"temperature_c": 21, "sky": "sunny"}'},
]


def _plan_multi_turn(ctx: PlanContext) -> list[Request]:
    body = {"messages": CONVERSATION, "tools": list(TOOLS), "max_tokens": MAX_TOKENS}
    return [request("tools.multi_turn", "after_result", body)]


def _judge_multi_turn(inp: CheckInput) -> CheckResult:
    bar = "accepted, with an answer or a further call"
    x = inp.exchanges[MULTI_TURN_KEY]
    if (down := outage(inp.exchanges)) is not None:
        return down
    if x.error in (ErrorClass.HTTP_4XX, ErrorClass.HTTP_5XX):
        found = [evidence(MULTI_TURN_KEY, x, error_body=(x.raw or "")[:1000])]
        return result(False, f"rejected: {x.error_detail}", bar, found)
    if (failed := all_failed(inp)) is not None:
        return failed
    answered = bool(x.text.strip() or x.tool_calls or x.reasoning)
    figure = "answered after the tool result" if answered else "empty answer after the result"
    return result(answered, figure, bar, [] if answered else [evidence(MULTI_TURN_KEY, x)])


MULTI_TURN = Check(
    id="tools.multi_turn",
    family=FAMILY,
    checks="a conversation holding an assistant tool call and its tool result is accepted "
    "and answered",
    why="every agent sends the tool's result back; a provider that rejects that turn "
    "cannot run a tool loop at all",
    plan=_plan_multi_turn,
    judge=_judge_multi_turn,
    bar="accepted, with an answer or a further call",
)


# --- tools.streamed ------------------------------------------------------------------------

STREAM_SETTINGS = {
    "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
    "temperature": 0,
    "seed": 7,
    "max_tokens": MAX_TOKENS,
}


STREAMED_ASKS = ("", "/2")  # the second ask of the same request: its repeat agreement


def _plan_streamed(ctx: PlanContext) -> list[Request]:
    body = {"messages": user(PARIS), "tools": list(TOOLS), **STREAM_SETTINGS}
    return [
        request("tools.streamed", f"{path}{again}", body, stream=path == "stream")
        for again in STREAMED_ASKS
        for path in ("plain", "stream")
    ]


def _parsed_calls(x: Exchange) -> list[tuple[Any, Any]] | None:
    out = []
    for call in x.tool_calls:
        parsed, value = parse_arguments(_function(call).get("arguments"))
        if not parsed:
            return None
        out.append((call_name(call), value))
    return out


def _pair_problem(plain: Exchange, streamed: Exchange) -> str | None:
    """What breaks the contract in one plain + streamed ask (their equality aside)."""
    calls = [_parsed_calls(x) for x in (plain, streamed)]
    if not (plain.ok and streamed.ok):
        return "a request failed"
    if not (plain.tool_calls and streamed.tool_calls):
        return "no tool call in " + ("the stream" if plain.tool_calls else "the plain reply")
    if calls[0] is None or calls[1] is None:
        return "arguments that do not parse as JSON"
    names = [name for side in calls if side is not None for name, _ in side]
    if (wrong := next((n for n in names if n != "get_weather"), None)) is not None:
        return f"named get_weather but called {wrong!r}"
    if plain.finish_reason != streamed.finish_reason or plain.finish_reason not in NAMED_FINISH:
        return f"finish_reason {plain.finish_reason!r} plain, {streamed.finish_reason!r} stream"
    return None


def _streamed_key(path: str, again: str) -> str:
    return f"conformance/tools.streamed/{path}{again}"


def _said_calls(x: Exchange | None) -> str | None:
    calls = _parsed_calls(x) if x is not None and x.ok and x.tool_calls else None
    return None if calls is None else json.dumps(calls, sort_keys=True)


def streamed_paths(exchanges: Mapping[str, Exchange]) -> agreement.Paths:
    """Plain vs streamed calls on each ask, and each path vs its repeat."""
    got = {
        (path, again): exchanges.get(_streamed_key(path, again))
        for path in ("plain", "stream")
        for again in STREAMED_ASKS
    }
    usable = {k: x for k, x in got.items() if x is not None and not transport_failure(x)}
    cross = [
        (_said_calls(usable[("plain", a)]), _said_calls(usable[("stream", a)]))
        for a in STREAMED_ASKS
        if ("plain", a) in usable and ("stream", a) in usable
    ]
    within = [
        (_said_calls(usable[(p, "")]), _said_calls(usable[(p, "/2")]))
        for p in ("plain", "stream")
        if (p, "") in usable and (p, "/2") in usable
    ]
    return agreement.Paths(agreement.pairs(cross), agreement.pairs(within))


def _judge_streamed(inp: CheckInput) -> CheckResult:
    if (failed := all_failed(inp)) is not None:
        return failed
    bar = "same calls, JSON-equal arguments, same finish_reason ('tool_calls' or 'stop')"
    asks = []
    for again in STREAMED_ASKS:
        keys = (_streamed_key("plain", again), _streamed_key("stream", again))
        pair = [inp.exchanges.get(k) for k in keys]
        if any(x is None or transport_failure(x) for x in pair):
            continue  # no answer at all: an outage, not a finding (see the unavailable rule)
        asks.append((keys, pair))
    problem = next(
        (p for _, (a, b) in asks if a is not None and b is not None and (p := _pair_problem(a, b))),
        None,
    )
    mine = streamed_paths(inp.exchanges)
    ref = streamed_paths(inp.reference) if inp.reference is not None else None
    same, suffix, same_bar = agreement.judge_paths(mine, ref)
    bar += f"; equal calls: {same_bar}"
    if problem is None and not same:
        problem = f"streamed call differs from the plain one ({mine.cross} asks equal{suffix})"
    if problem is None:
        return result(True, "streamed call reassembles to the plain call", bar)
    found = [
        evidence(k, x, problem=problem, tool_calls=x.tool_calls)
        for keys, pair in asks
        for k, x in zip(keys, pair, strict=True)
        if x is not None
    ]
    return result(False, problem, bar, found)


STREAMED = Check(
    id="tools.streamed",
    family=FAMILY,
    checks="at temperature 0 with a seed, streamed tool-call deltas reassemble to the call "
    "the non-streamed reply returns",
    why="streaming clients rebuild calls from argument fragments; a provider whose deltas "
    "drop or repeat fragments breaks them",
    plan=_plan_streamed,
    judge=_judge_streamed,
    bar_rule=BarRule.REPEAT_AGREEMENT,
    bar="both asks: a get_weather call with JSON arguments and the same finish_reason on "
    "each path; the calls equal, exact where each path repeats itself exactly (and the "
    "reference's pairs agree exactly), else not significantly less often than the "
    "reference's (one-sided Boschloo, p >= 0.05)",
)


# --- tools.responses_api -------------------------------------------------------------------

RESPONSES_CASES = {"weather": CASES_BY_NAME["weather_paris"], "no_fit": CASES_BY_NAME["none_haiku"]}


def responses_tools(tools: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    """Chat-shaped tools in the Responses API's flat shape."""
    return [{"type": "function", **t["function"]} for t in tools]


def _plan_responses(ctx: PlanContext) -> list[Request]:
    return [
        request(
            "tools.responses_api",
            name,
            {
                "input": case.prompt,
                "tools": responses_tools(case.tools),
                "max_output_tokens": MAX_TOKENS,
            },
            endpoint="responses",
        )
        for name, case in RESPONSES_CASES.items()
    ]


def _no_endpoint(exchanges: Mapping[str, Exchange]) -> bool:
    return bool(exchanges) and all(x.status in (404, 405) for x in exchanges.values())


def _judge_responses(inp: CheckInput) -> CheckResult:
    bar = "weather: a schema-valid get_weather call; no-fit: no call"
    if _no_endpoint(inp.exchanges):
        return not_applicable("no /v1/responses endpoint", bar)
    if inp.reference is not None and _no_endpoint(inp.reference):
        return not_applicable("the reference has no /v1/responses endpoint", bar)
    if (failed := all_failed(inp)) is not None:
        return failed
    bad = []
    for name, case in RESPONSES_CASES.items():
        key = f"conformance/tools.responses_api/{name}"
        x = inp.exchanges[key]
        if not _passes(case, x):
            bad.append(evidence(key, x, classification=classify(case, x), tool_calls=x.tool_calls))
    n = len(RESPONSES_CASES)
    return result(not bad, f"{n - len(bad)}/{n} cases as expected", bar, bad)


RESPONSES_API = Check(
    id="tools.responses_api",
    family=FAMILY,
    checks="through the Responses API, the weather prompt yields a valid get_weather call "
    "and a no-fit prompt none",
    why="agent SDKs default to /v1/responses; a provider serving it must turn function "
    "tools into calls there too",
    plan=_plan_responses,
    judge=_judge_responses,
    bar="weather: a schema-valid get_weather call; no-fit: no call (n/a without the endpoint)",
)


TOOL_CHECKS: list[Check] = [
    SCHEMA,
    TRIGGER,
    CHOICE,
    PARALLEL,
    MULTI_TURN,
    STREAMED,
    RESPONSES_API,
]
