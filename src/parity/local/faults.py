"""The fault proxy's catalogue: what a bad provider does, one small declarative `Fault` each.

A `Fault` names itself, says in one line what it imitates, says what value it `takes` (None:
none) and implements any of five hooks, all plain functions of a `Ctx`:

- `request(ctx, body) -> body`: the JSON request body before it goes upstream;
- `response(ctx, body) -> body`: a non-streamed 2xx JSON answer;
- `event(ctx, item) -> [items]`: one SSE event of a stream; an item is the payload parsed
  (a JSON object), other payload text (`"[DONE]"`) or raw bytes written as they are (framing
  faults); return `[]` to drop the event, several items to add events;
- `status(ctx) -> Reply | None`: answer this `Reply` instead of forwarding the request;
- `delay(ctx, item) -> seconds`: wait before passing on a stream item or the whole answer.

To add a fault, copy a neighbour in `FAULTS`. A spec such as `"drop=seed,http-429=0.5"` turns
into `ActiveFault`s with `parse_faults`; the proxy applies them in the order given.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import orjson

from parity.core.errors import ConfigError

__all__ = [
    "FAULTS",
    "ActiveFault",
    "Ctx",
    "Fault",
    "Item",
    "Json",
    "Reply",
    "describe_faults",
    "parse_faults",
]

Json = dict[str, Any]
Item = Json | str | bytes
STRAY = ',"'  # appended to tool-call arguments: an unterminated string is never valid JSON


@dataclass
class Ctx:
    """What a hook sees: the fault's value, the client's request, and scratch space."""

    value: Any
    method: str
    path: str  # under /v1, e.g. "/chat/completions"
    request: Json  # the client's JSON body as received ({} when it is not an object)
    stream: bool = False  # set when the upstream answers with an SSE stream
    state: dict[str, Any] = field(default_factory=dict)  # this fault, this request
    shared: dict[str, Any] = field(default_factory=dict)  # this fault, the app's lifetime


@dataclass(frozen=True)
class Reply:
    """An answer the proxy gives instead of forwarding the request."""

    status: int
    body: Json
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Fault:
    """One kind of provider misbehaviour and the hooks that reproduce it."""

    name: str
    summary: str
    takes: str | None = None
    parse: Callable[[str], Any] | None = None  # the value from its text; ValueError if bad
    request: Callable[[Ctx, Json], Json] | None = None
    response: Callable[[Ctx, Json], Json] | None = None
    event: Callable[[Ctx, Item], list[Item]] | None = None
    status: Callable[[Ctx], Reply | None] | None = None
    delay: Callable[[Ctx, Item], float] | None = None
    failure: Callable[[Ctx, int], Reply | None] | None = None  # rewrites an upstream 4xx/5xx


@dataclass
class ActiveFault:
    """A fault with its value, as parsed from a spec; `shared` lives as long as the app."""

    fault: Fault
    value: Any = None
    shared: dict[str, Any] = field(default_factory=dict)

    def fresh(self) -> ActiveFault:
        """The same fault and value with new app-lifetime state (request counters)."""
        return ActiveFault(self.fault, self.value)

    def context(self, method: str, path: str, request: Json) -> Ctx:
        """A new per-request context for this fault's hooks."""
        return Ctx(self.value, method, path, request, shared=self.shared)


# --- where things live in chat completions and Responses API bodies and events ---


def _dicts(value: Any) -> list[Json]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _messages(obj: Json) -> Iterator[tuple[Json, Json]]:
    """(choice, message or delta) of every choice of a completion or a chunk."""
    for choice in _dicts(obj.get("choices")):
        for key in ("message", "delta"):
            if isinstance(part := choice.get(key), dict):
                yield choice, part


def _functions(obj: Json) -> Iterator[tuple[tuple[Any, Any] | None, Json]]:
    """(key, function) of every tool call; key (choice, call index) for stream deltas only."""
    for choice, msg in _messages(obj):
        for pos, call in enumerate(_dicts(msg.get("tool_calls"))):
            if isinstance(fn := call.get("function"), dict):
                key = (choice.get("index"), call.get("index", pos)) if "delta" in choice else None
                yield key, fn
    yield from ((None, item) for item in _items(obj) if item.get("type") == "function_call")


def _outputs(obj: Json) -> list[list[Any]]:
    """Responses API output lists: of an answer, or of the `response` an event carries."""
    inner = obj.get("response")
    found = [obj.get("output"), inner.get("output") if isinstance(inner, dict) else None]
    return [out for out in found if isinstance(out, list)]


def _items(obj: Json) -> list[Json]:
    items = [item for out in _outputs(obj) for item in _dicts(out)]
    return [*items, obj["item"]] if isinstance(obj.get("item"), dict) else items


def _usages(obj: Json) -> list[Json]:
    inner = obj.get("response")
    found = [obj.get("usage"), inner.get("usage") if isinstance(inner, dict) else None]
    return [usage for usage in found if isinstance(usage, dict)]


def _generates(item: Item) -> bool:
    """Whether a stream item carries generated text (content, reasoning or a tool call)."""
    if not isinstance(item, dict):
        return False
    if str(item.get("type", "")).endswith(".delta"):
        return True
    keys = ("content", "reasoning_content", "reasoning", "tool_calls")
    return any(msg.get(key) for _, msg in _messages(item) for key in keys)


def _on_objects(change: Callable[[Ctx, Json], Json]) -> Callable[[Ctx, Item], list[Item]]:
    """An event hook that applies a body transform to JSON-object events, others untouched."""
    return lambda ctx, item: [change(ctx, item) if isinstance(item, dict) else item]


# --- the hooks ---

_ALSO_DROP = {
    "max_tokens": ("max_completion_tokens", "max_output_tokens"),
    "tools": ("tool_choice",),
    "logprobs": ("top_logprobs",),
    "reasoning_effort": ("reasoning",),
}


def _drop(ctx: Ctx, body: Json) -> Json:
    for key in (ctx.value, *_ALSO_DROP.get(ctx.value, ())):
        body.pop(key, None)
    return body


def _inflate(ctx: Ctx, body: Json) -> Json:
    for usage in _usages(body):
        for out, inp in (("completion_tokens", "prompt_tokens"), ("output_tokens", "input_tokens")):
            if isinstance(count := usage.get(out), int):
                usage[out] = math.ceil(count * (1 + ctx.value / 100))
                if isinstance(usage.get(inp), int):
                    usage["total_tokens"] = usage[inp] + usage[out]
    return body


def _break_args(ctx: Ctx, body: Json) -> Json:
    for _, fn in _functions(body):
        if isinstance(args := fn.get("arguments"), str):
            fn["arguments"] = args.rstrip().removesuffix("}") + STRAY
    return body


def _args_chunk(template: Json, choice: Any, calls: set[Any]) -> Json:
    deltas = [{"index": k, "function": {"arguments": STRAY}} for k in sorted(calls)]
    delta = {"index": choice, "delta": {"tool_calls": deltas}, "finish_reason": None}
    return {**template, "choices": [delta]}


def _break_args_stream(ctx: Ctx, item: Item) -> list[Item]:
    """Append STRAY to each call's arguments: in its finishing delta, or in an extra chunk."""
    pending: dict[Any, set[Any]] = ctx.state.setdefault("pending", {})  # choice -> calls
    if item == "[DONE]":  # calls of choices that never finished
        extra = [_args_chunk(ctx.state.get("template", {}), c, ks) for c, ks in pending.items()]
        pending.clear()
        return [*extra, item]
    if not isinstance(item, dict):
        return [item]
    ctx.state["template"] = {k: item[k] for k in ("id", "object", "created", "model") if k in item}
    out: list[Item] = []
    for choice in _dicts(item.get("choices")):
        index, delta = choice.get("index"), choice.get("delta")
        calls = _dicts(delta.get("tool_calls")) if isinstance(delta, dict) else []
        if calls:
            pending.setdefault(index, set()).update(c.get("index", i) for i, c in enumerate(calls))
        if choice.get("finish_reason") and (unbroken := pending.pop(index, None)):
            for i, call in enumerate(calls):  # this chunk carries the calls' last pieces
                fn = call.setdefault("function", {})
                fn["arguments"] = (fn.get("arguments") or "") + STRAY
                unbroken.discard(call.get("index", i))
            if unbroken:
                out.append(_args_chunk(ctx.state["template"], index, unbroken))
    for found in _items(item):  # Responses API: the complete forms of function calls
        if found.get("type") == "function_call" and isinstance(found.get("arguments"), str):
            found["arguments"] += STRAY
    return [*out, item]


def _tool_names(request: Json) -> list[str]:
    tools = [t.get("function", t) for t in _dicts(request.get("tools"))]
    return [t["name"] for t in tools if isinstance(t, dict) and isinstance(t.get("name"), str)]


def _other_tool(name: str, names: list[str]) -> str:
    if len(names) < 2:
        return "unknown_tool"
    matches = [i for i, n in enumerate(names) if n == name] or [
        i for i, n in enumerate(names) if n.startswith(name)
    ]
    return names[(matches[0] + 1) % len(names)] if matches else names[0]


def _rename(ctx: Ctx, body: Json) -> Json:
    names, named = _tool_names(ctx.request), ctx.state.setdefault("named", set())
    for key, fn in _functions(body):
        if isinstance(name := fn.get("name"), str) and name:
            # A name streamed in pieces (or repeated) keeps only its first, renamed, piece.
            fn["name"] = "" if key is not None and key in named else _other_tool(name, names)
            named.add(key)
    return body


def _drop_usage(ctx: Ctx, item: Item) -> list[Item]:
    if not isinstance(item, dict):
        return [item]
    if "usage" in item and item.get("choices") == []:
        return []
    item.pop("usage", None)
    if isinstance(inner := item.get("response"), dict):
        inner.pop("usage", None)
    return [item]


def _drop_usage_body(ctx: Ctx, body: Json) -> Json:
    body.pop("usage", None)
    return body


SYSTEM_PROMPT = "You are a helpful assistant. Answer concisely."


def _inject_system(ctx: Ctx, body: Json) -> Json:
    if isinstance(body.get("messages"), list):
        body["messages"] = [{"role": "system", "content": SYSTEM_PROMPT}, *body["messages"]]
    elif "input" in body:
        body["instructions"] = SYSTEM_PROMPT + " " + str(body.get("instructions") or "")
    return body


def _refuse_tool_messages(ctx: Ctx) -> Reply | None:
    messages = _dicts(ctx.request.get("messages")) + _dicts(ctx.request.get("input"))
    if any(m.get("role") == "tool" or m.get("type") == "function_call_output" for m in messages):
        error = {
            "message": "tool messages are not supported (injected)",
            "type": "invalid_request_error",
        }
        return Reply(400, {"error": error})
    return None


def _accept_invalid(ctx: Ctx, body: Json) -> Json:
    for key, low, high in (("temperature", 0.0, 2.0), ("top_p", 0.0, 1.0), ("n", 1, 8)):
        if isinstance(value := body.get(key), int | float) and not low <= value <= high:
            body[key] = min(max(value, low), high)
    for key in ("max_tokens", "max_completion_tokens"):
        if isinstance(body.get(key), int) and body[key] < 1:
            del body[key]
    body.pop("model", None)  # any model name is served by the one deployment behind
    return body


def _errors_as_500(ctx: Ctx, status: int) -> Reply | None:
    if 400 <= status < 500:
        return Reply(
            500, {"error": {"message": "internal error (injected)", "type": "server_error"}}
        )
    return None


def _break_sse(ctx: Ctx, item: Item) -> list[Item]:
    if item == "[DONE]":
        return []
    count = ctx.state["count"] = ctx.state.get("count", 0) + 1
    if count != 3 or isinstance(item, bytes):
        return [item]
    text = item if isinstance(item, str) else orjson.dumps(item).decode()
    return [text[: max(1, len(text) // 2)]]


def _truncate(ctx: Ctx, body: Json) -> Json:
    budget = ctx.value

    def cut(text: str) -> str:
        nonlocal budget
        words = text.split()
        kept, budget = words[:budget], max(0, budget - len(words))
        return text if len(kept) == len(words) else " ".join(kept)

    def cut_content(content: Any) -> Any:
        if isinstance(content, str):
            return cut(content)
        for part in _dicts(content):
            if isinstance(part.get("text"), str):
                part["text"] = cut(part["text"])
        return content

    if isinstance(body.get("input"), str):
        body["input"] = cut(body["input"])
    for msg in _dicts(body.get("messages")) + _dicts(body.get("input")):
        if "content" in msg:
            msg["content"] = cut_content(msg["content"])
    return body


def _delay_first(ctx: Ctx, item: Item) -> float:
    if ctx.state.get("done") or (ctx.stream and not _generates(item)):
        return 0.0
    ctx.state["done"] = True
    return float(ctx.value) / 1000


def _strip_reasoning(ctx: Ctx, body: Json) -> Json:
    for _, msg in _messages(body):
        msg.pop("reasoning_content", None)
        msg.pop("reasoning", None)
    for out in _outputs(body):
        out[:] = [item for item in out if not _is_reasoning(item)]
    return body


def _is_reasoning(item: Any) -> bool:
    return isinstance(item, dict) and item.get("type") == "reasoning"


def _strip_reasoning_event(ctx: Ctx, item: Item) -> list[Item]:
    if not isinstance(item, dict):
        return [item]
    if "reasoning" in str(item.get("type", "")) or _is_reasoning(item.get("item")):
        return []  # Responses API reasoning events
    return [_strip_reasoning(ctx, item)]


def _every(
    status: int, message: str, kind: str, headers: dict[str, str] | None = None
) -> Callable[[Ctx], Reply | None]:
    """Answer `status` to request i (1-based, POSTs only) when floor(i·rate) > floor((i-1)·rate)."""

    def hook(ctx: Ctx) -> Reply | None:
        if ctx.method != "POST":
            return None
        i = ctx.shared["requests"] = ctx.shared.get("requests", 0) + 1
        if math.floor(i * ctx.value) > math.floor((i - 1) * ctx.value):
            return Reply(status, {"error": {"message": message, "type": kind}}, headers or {})
        return None

    return hook


# --- values ---


def _name(text: str) -> str:
    if not text or any(c.isspace() for c in text):
        raise ValueError("needs a parameter name")
    return text


def _number(text: str) -> Fraction:
    try:
        value = Fraction(text.strip().removesuffix("%"))
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"{text!r} is not a number") from None
    if value < 0:
        raise ValueError(f"{text!r} is negative")
    return value


def _percent(text: str) -> Fraction:
    if (value := _number(text)) == 0:
        raise ValueError("must be above 0")
    return value


def _rate(text: str) -> Fraction:
    if not 0 < (value := _number(text)) <= 1:
        raise ValueError(f"{text!r} is not in (0, 1]")
    return value


def _count(text: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"{text!r} is not a whole number")
    return int(text)


FAULTS: tuple[Fault, ...] = (
    Fault(
        "drop",
        "ignores a request parameter (it is removed before it reaches the model)",
        takes="a request parameter name",
        parse=_name,
        request=_drop,
    ),
    Fault(
        "inflate-usage",
        "over-reports completion tokens by this percent (rounded up)",
        takes="percent",
        parse=_percent,
        response=_inflate,
        event=_on_objects(_inflate),
    ),
    Fault(
        "tool-args-invalid",
        "returns tool-call arguments that are not valid JSON",
        response=_break_args,
        event=_break_args_stream,
    ),
    Fault(
        "tool-wrong-name",
        "calls another tool than the one the model chose",
        response=_rename,
        event=_on_objects(_rename),
    ),
    Fault(
        "drop-usage",
        "reports no usage: not in answers, no usage chunk in streams",
        response=_drop_usage_body,
        event=_drop_usage,
    ),
    Fault("break-sse", "breaks SSE framing: a cut-off JSON event, no [DONE]", event=_break_sse),
    Fault(
        "truncate-prompt",
        "silently truncates the prompt to this many tokens (a word stands in for a token)",
        takes="tokens",
        parse=_count,
        request=_truncate,
    ),
    Fault(
        "delay-first-token",
        "is slow to the first token by this many milliseconds",
        takes="milliseconds",
        parse=_number,
        delay=_delay_first,
    ),
    Fault(
        "http-429",
        "rate-limits this fraction of requests (429, Retry-After: 0)",
        takes="rate 0-1",
        parse=_rate,
        status=_every(429, "rate limited (injected)", "rate_limit_error", {"Retry-After": "0"}),
    ),
    Fault(
        "http-500",
        "fails this fraction of requests with a server error (500)",
        takes="rate 0-1",
        parse=_rate,
        status=_every(500, "internal error (injected)", "server_error"),
    ),
    Fault(
        "inject-system",
        "adds a hidden system prompt (a different template): the model sees, and you pay "
        "for, a prompt you did not send",
        request=_inject_system,
    ),
    Fault(
        "no-tool-messages",
        "refuses conversations that carry a tool result (400), as a template without a tool "
        "role does",
        status=_refuse_tool_messages,
    ),
    Fault(
        "accept-invalid",
        "accepts out-of-range values (clamps them) and any model name",
        request=_accept_invalid,
    ),
    Fault(
        "errors-as-500",
        "answers client errors (4xx) with a 500",
        failure=_errors_as_500,
    ),
    Fault(
        "strip-reasoning",
        "hides the model's reasoning from answers and streams",
        response=_strip_reasoning,
        event=_strip_reasoning_event,
    ),
)
_BY_NAME = {fault.name: fault for fault in FAULTS}


def describe_faults() -> list[tuple[str, str, str | None]]:
    """(name, summary, what value it takes or None) for every fault, for help text."""
    return [(fault.name, fault.summary, fault.takes) for fault in FAULTS]


def _parse_one(part: str) -> ActiveFault:
    name, has_value, text = part.partition("=")
    fault = _BY_NAME.get(name.strip())
    if fault is None:
        raise ValueError("unknown fault")
    if fault.parse is None:
        if has_value:
            raise ValueError(f"{fault.name} takes no value")
        return ActiveFault(fault)
    if not has_value or not text.strip():
        raise ValueError(f"{fault.name} needs a value ({fault.takes})")
    return ActiveFault(fault, fault.parse(text.strip()))


def parse_faults(spec: str) -> list[ActiveFault]:
    """Parse `"name"` / `"name=value"` parts, comma-separated, in order; "" gives none.

    Raises ConfigError, one line naming the bad part and listing the valid fault names.
    """
    if not spec.strip():
        return []
    faults = []
    for part in spec.split(","):
        try:
            faults.append(_parse_one(part.strip()))
        except ValueError as exc:
            valid = ", ".join(_BY_NAME)
            bad = part.strip()
            raise ConfigError(f"bad fault {bad!r}: {exc} (valid faults: {valid})") from None
    return faults
