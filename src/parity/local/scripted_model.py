"""A deterministic, OpenAI-compatible reasoning model served the way vLLM serves gpt-oss.

`create_app()` is a Starlette app with `GET /v1/models`, `POST /v1/chat/completions` and
`POST /v1/responses`. `parity conform --matrix` puts it behind the fault-injecting proxy to
prove that the conformance checks catch faults in behaviours the tiny local llama.cpp model
cannot show: reasoning (`reasoning_content`), automatic and parallel tool calls, the Responses
API, `n`, `logprobs` and `json_schema` output. The checks are judged against it, so on the wire
it behaves like a *correct* provider: usage adds up exactly, `max_tokens` cuts at exactly that
many tokens (reasoning included, as vLLM does), `stop` is honoured, a fixed seed reproduces,
streams reassemble to the non-streamed answer, and bad requests get OpenAI-shaped 4xx errors.

What it is not: a language model. The "tokenizer" is `re.findall(r"\\w+|[^\\w\\s]", text)`,
the prompt is rendered with a harmony-like template (`<|start|>role<|message|>...<|end|>`), and
the answers are templates filled from the last user message: a fixed sentence, the secret word
of a needle-in-a-haystack prompt, an echo of a tool result, or an instance of a JSON schema.
Sampling only picks one of up to 24 openers for that sentence; tool calls are chosen by word
overlap between the message and each tool's name and description. The only randomness is the
per-request `random.Random()` used when no seed is given.
"""

from __future__ import annotations

import json
import math
import random
import re
import time
import uuid
import zlib
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

MODEL_ID = "scripted-reasoner"
CONTEXT_WINDOW = 4096

EFFORT_TOKENS = {"low": 16, "medium": 48, "high": 128}
MAX_VARIANTS = 24
_TOKEN = re.compile(r"\w+|[^\w\s]")
_WORD = re.compile(r"\w+")
_NEEDLE = re.compile(r"The secret word (?:of the (\w+) gate )?is (\w+)\.")
_NEEDLE_QUESTION = re.compile(r"What is the secret word(?: of the (\w+) gate)?")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_NO_SPACE_AFTER = frozenset("([{-/'$#@\\")
_OPENING = frozenset("([{")
_LIST_SENTENCE = "One, two, three, four, five, six, seven, eight, nine, ten."
_THINKING = "I should recall what I know, check each step, and then answer clearly and briefly."
_OPENERS = [
    "Well,", "In short,", "Honestly,", "Simply put,", "To be clear,", "Put briefly,",
    "As it happens,", "In fact,", "Indeed,", "Of course,", "Clearly,", "Basically,",
    "Frankly,", "Naturally,", "So,", "Okay,", "Right,", "Sure,", "Alright,", "Certainly,",
    "Essentially,", "Interestingly,", "Notably,", "In brief,", "Plainly,",
]  # fmt: skip
_COMMON_WORDS = """a an the and or but in on at for of to from with by is are was be me my i it
its you your what whats how which who why when where please tell can could would will do does give
find get show check about that this there their them they have some into just like make want need
know call value data information current using used given return returns tool function specified
specific input output name hello thanks"""
_COMMON = frozenset(_COMMON_WORDS.split())
_LOCATION_HINTS = (
    "city",
    "location",
    "place",
    "town",
    "country",
    "origin",
    "destination",
    "region",
    "timezone",
)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_ALTERNATIVES = [
    " the", " a", " and", " of", " to", " is", " it", " that", ",", ".", " in",
    " for", " on", " with", " as", " this", " was", " but", " be", " at", " by", " or",
]  # fmt: skip


class RequestError(Exception):
    """A request the server refuses; `body()` is the OpenAI error object."""

    def __init__(
        self,
        message: str,
        param: str | None = None,
        status: int = 400,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message, self.param, self.status, self.code = message, param, status, code

    def body(self) -> dict[str, Any]:
        """`{"error": {message, type, param, code}}` as OpenAI sends it."""
        kind = "invalid_request_error"
        return {
            "error": {"message": self.message, "type": kind, "param": self.param, "code": self.code}
        }


def tokenize(text: str) -> list[str]:
    """Split text into tokens: each run of word characters and each other non-space char."""
    return _TOKEN.findall(text)


def _is_word(token: str) -> bool:
    return _WORD.fullmatch(token) is not None


def render_pieces(tokens: Sequence[str]) -> list[str]:
    """The text each token adds: the token with its leading space, if any.

    Words and opening brackets/quotes are spaced; other punctuation is glued to what precedes
    it. `"".join(render_pieces(t))` tokenizes back to `t`, and JSON comes out as `json.dumps`
    writes it.
    """
    pieces: list[str] = []
    quotes = 0
    prev_open_quote = False
    for i, tok in enumerate(tokens):
        opening = tok in _OPENING or (tok == '"' and quotes % 2 == 0)
        glued = i == 0 or prev_open_quote or tokens[i - 1] in _NO_SPACE_AFTER
        if tokens[i - 1 : i] == ["."] and i >= 2 and tokens[i - 2].isdigit() and tok.isdigit():
            glued = True  # a decimal number: 1.5
        spaced = not glued and (_is_word(tok) or opening)
        pieces.append((" " if spaced else "") + tok)
        prev_open_quote = tok == '"' and opening
        quotes += tok == '"'
    return pieces


def detokenize(tokens: Sequence[str]) -> str:
    """Join tokens into text the way `render_pieces` spaces them."""
    return "".join(render_pieces(tokens))


def _text(content: Any) -> str:
    """A message's content as text: a string, or the text parts of a content list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def _message_text(message: Mapping[str, Any]) -> str:
    text = _text(message.get("content"))
    for call in message.get("tool_calls") or []:
        fn = call.get("function", {}) if isinstance(call, dict) else {}
        text += json.dumps({"name": fn.get("name"), "arguments": fn.get("arguments")})
    return text


def render_prompt(body: Mapping[str, Any]) -> str:
    """The chat template: a tools system block (if any), each message, then the assistant."""
    parts = []
    if body.get("tools"):
        parts.append(f"<|start|>system<|message|>{json.dumps(body['tools'])}<|end|>")
    for m in body.get("messages") or []:
        parts.append(f"<|start|>{m.get('role')}<|message|>{_message_text(m)}<|end|>")
    return "".join(parts) + "<|start|>assistant"


def prompt_tokens(body: Mapping[str, Any]) -> int:
    """The prompt_tokens the server reports for a chat completions body."""
    return len(tokenize(render_prompt(body)))


@dataclass(frozen=True)
class ToolCall:
    """One function call the model makes; `arguments` is compact JSON."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class Choice:
    """One generated choice: the pieces are what each token adds to its text."""

    index: int
    reasoning_pieces: list[str]
    content_pieces: list[str] | None
    tool_calls: list[ToolCall]
    finish_reason: str
    logprobs: list[dict[str, Any] | None] | None  # aligned with content_pieces
    completion_tokens: int

    @property
    def reasoning(self) -> str:
        """The reasoning text."""
        return "".join(self.reasoning_pieces)

    @property
    def content(self) -> str | None:
        """The answer text; None when the choice is only reasoning or tool calls."""
        return None if self.content_pieces is None else "".join(self.content_pieces)

    @property
    def reasoning_tokens(self) -> int:
        """Tokens of the reasoning text."""
        return len(tokenize(self.reasoning))


@dataclass(frozen=True)
class Generation:
    """The result of `generate`: the choices and the prompt's token count."""

    choices: list[Choice]
    prompt_tokens: int

    @property
    def usage(self) -> dict[str, Any]:
        """Chat completions usage, summed over the choices."""
        completion = sum(c.completion_tokens for c in self.choices)
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": self.prompt_tokens + completion,
            "completion_tokens_details": {
                "reasoning_tokens": sum(c.reasoning_tokens for c in self.choices)
            },
        }


@dataclass(frozen=True)
class _Req:
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    tool_choice: Any
    temperature: float
    top_p: float
    seed: int | None
    n: int
    max_tokens: int | None
    stop: list[str]
    top_logprobs: int | None  # None: no logprobs
    effort: str
    response_format: dict[str, Any] | None
    parallel: bool


def _number(body: Mapping[str, Any], name: str, default: float, lo: float, hi: float) -> float:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        raise RequestError(f"{name} must be a number in [{lo:g}, {hi:g}], got {value!r}", name)
    return float(value)


def _integer(body: Mapping[str, Any], name: str, lo: int, hi: int | None = None) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < lo or (hi and value > hi):
        bound = f"in [{lo}, {hi}]" if hi else f">= {lo}"
        raise RequestError(f"{name} must be an integer {bound}, got {value!r}", name)
    return value


def _parse(body: Mapping[str, Any]) -> _Req:
    model = body.get("model")
    if model is not None and model != MODEL_ID:
        raise RequestError(f"The model `{model}` does not exist.", "model", 404, "model_not_found")
    messages = body.get("messages")
    roles = {"system", "developer", "user", "assistant", "tool"}
    if not isinstance(messages, list) or not messages:
        raise RequestError("messages must be a non-empty list", "messages")
    if not all(isinstance(m, dict) and m.get("role") in roles for m in messages):
        raise RequestError(f"each message must be an object with a role in {roles}", "messages")
    tools = body.get("tools") or []
    if not isinstance(tools, list) or not all(
        isinstance(t, dict)
        and t.get("type") == "function"
        and isinstance(t.get("function"), dict)
        and isinstance(t["function"].get("name"), str)
        for t in tools
    ):
        raise RequestError("tools must be a list of {type: function, function: {name}}", "tools")
    names = [t["function"]["name"] for t in tools]
    choice = body.get("tool_choice") or ("auto" if tools else "none")
    if isinstance(choice, dict):
        named = (choice.get("function") or {}).get("name")
        if choice.get("type") != "function" or named not in names:
            raise RequestError(f"tool_choice names no tool in tools: {choice!r}", "tool_choice")
    elif choice not in ("auto", "none", "required"):
        raise RequestError(f"invalid tool_choice {choice!r}", "tool_choice")
    elif choice == "required" and not tools:
        raise RequestError("tool_choice 'required' needs tools", "tool_choice")
    temperature = _number(body, "temperature", 1.0, 0.0, 2.0)
    top_p = _number(body, "top_p", 1.0, 0.0, 1.0)
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise RequestError("seed must be an integer", "seed")
    n = _integer(body, "n", 1, 8) or 1
    limit_name = "max_tokens"
    if body.get("max_completion_tokens") is not None:
        limit_name = "max_completion_tokens"
    max_tokens = _integer(body, limit_name, 1)
    stop = body.get("stop")
    stop = [stop] if isinstance(stop, str) else stop or []
    if not isinstance(stop, list) or len(stop) > 4 or not all(isinstance(s, str) for s in stop):
        raise RequestError("stop must be a string or a list of up to 4 strings", "stop")
    top_logprobs = _integer(body, "top_logprobs", 0, 20)
    if not isinstance(body.get("logprobs", False), bool):
        raise RequestError("logprobs must be a boolean", "logprobs")
    effort = body.get("reasoning_effort") or "medium"
    if effort not in EFFORT_TOKENS:
        raise RequestError(
            f"reasoning_effort must be low, medium or high: {effort!r}", "reasoning_effort"
        )
    fmt = body.get("response_format")
    if fmt is not None and (
        not isinstance(fmt, dict)
        or fmt.get("type") not in ("text", "json_object", "json_schema")
        or (fmt["type"] == "json_schema" and not isinstance(fmt.get("json_schema"), dict))
    ):
        raise RequestError(f"invalid response_format {fmt!r}", "response_format")
    if body.get("stream") and not isinstance(body.get("stream"), bool):
        raise RequestError("stream must be a boolean", "stream")
    return _Req(
        messages=messages,
        tools=tools,
        tool_choice=choice,
        temperature=temperature,
        top_p=top_p,
        seed=seed,
        n=n,
        max_tokens=max_tokens,
        stop=[s for s in stop if s],
        top_logprobs=(top_logprobs or 0) if body.get("logprobs") else None,
        effort=effort,
        response_format=fmt if fmt and fmt.get("type") != "text" else None,
        parallel=body.get("parallel_tool_calls", True) is not False,
    )


def _last_user(messages: Sequence[Mapping[str, Any]]) -> str:
    return next((_text(m.get("content")) for m in reversed(messages) if m["role"] == "user"), "")


def _words(text: str) -> list[str]:
    return _WORD.findall(text)


def schema_instance(schema: Any) -> Any:
    """An instance of a JSON schema: every property, one array item, the first enum value."""
    if not isinstance(schema, dict):
        return "example"
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            return schema_instance(schema[key][0])
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props = schema.get("properties") or {}
        return {name: schema_instance(sub) for name, sub in props.items()}
    if kind == "array":
        return [schema_instance(schema.get("items", {}))] * max(1, schema.get("minItems", 1))
    if kind in ("integer", "number"):
        value: float = 1 if kind == "integer" else 1.5
        value = max(value, schema.get("minimum", value))
        return min(value, schema.get("maximum", value))
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return "example".ljust(schema.get("minLength", 0), "e")


def _answer_tokens(req: _Req) -> tuple[list[str], bool]:
    """The base answer's tokens, and whether it is JSON (which gets no sampled opener)."""
    user = _last_user(req.messages)
    if asked := _NEEDLE_QUESTION.search(user):
        for m in req.messages:
            for found in _NEEDLE.finditer(_text(m.get("content"))):
                if found.group(1) == asked.group(1):  # the gate asked about (or none)
                    return [found.group(2)], False
    if req.messages[-1]["role"] == "tool":
        tail: list[str] = []
        for m in reversed(req.messages):
            if m["role"] != "tool":
                break
            tail.insert(0, _text(m.get("content")))
        return tokenize("Based on the tool result: " + "; ".join(tail)), False
    words = _words(user)[:6] or ["nothing"]
    base = ["The", "answer", "to", *words, *tokenize("is forty-two."), *tokenize(_LIST_SENTENCE)]
    fmt = req.response_format
    if fmt is None:
        return base, False
    schema = (fmt.get("json_schema") or {}).get("schema") or fmt.get("schema")
    if schema is None:
        return tokenize(json.dumps({"answer": detokenize(base)})), True
    return tokenize(json.dumps(schema_instance(schema))), True


def _variant(req: _Req, index: int) -> int:
    """Which opener (0 = none) sampling picks: K grows with temperature and top_p."""
    if req.temperature == 0:
        return 0
    k = max(1, round(MAX_VARIANTS * min(req.temperature, 2.0) / 2 * req.top_p))
    rng = random.Random(f"{req.seed}:{index}") if req.seed is not None else random.Random()
    return rng.randrange(k)


def _reasoning_tokens(req: _Req) -> list[str]:
    words = _words(_last_user(req.messages))
    target = EFFORT_TOKENS[req.effort] + len(words) % 5 - 2
    out = ["The", "user", "asks", "about", *words[:8], "."]
    thinking = tokenize(_THINKING)
    while len(out) < target:
        out += thinking
    return out[:target]


def _stem(word: str) -> str:
    """A crude stem: words of 5+ letters match on their first 5 ("currencies", "currency");
    shorter ones exactly (so "times" is not "time")."""
    return word.lower()[:5]


def _tool_words(tool: Mapping[str, Any]) -> set[str]:
    fn = tool["function"]
    raw = fn["name"].split("_") + _words(str(fn.get("description") or ""))
    return {_stem(w) for w in raw if len(w) >= 4 and w.lower() not in _COMMON}


def _pick_tool(req: _Req, user: str) -> dict[str, Any] | None:
    said = {_stem(w) for w in _words(user) if len(w) >= 4}
    scores = [len(_tool_words(t) & said) for t in req.tools]
    best = max(range(len(scores)), key=lambda i: (scores[i], -i))
    choice = req.tool_choice
    if isinstance(choice, dict):
        return next(t for t in req.tools if t["function"]["name"] == choice["function"]["name"])
    if choice == "required":
        return req.tools[best]
    if choice == "auto" and scores[best] > 0 and req.messages[-1]["role"] != "tool":
        return req.tools[best]
    return None


def _proper_nouns(user: str, skip: set[str]) -> list[str]:
    """Runs of capitalised words, minus common and tool words ("New York", "Paris")."""
    groups: list[list[str]] = [[]]
    for tok in tokenize(user):
        low = tok.lower()
        if tok[0].isupper() and low not in _COMMON and _stem(low) not in skip:
            groups[-1].append(tok)
        elif groups[-1]:
            groups.append([])
    return [" ".join(g) for g in groups if g]


def _fill(name: str, schema: Mapping[str, Any], user: str, place: str | None) -> tuple[Any, bool]:
    """A value for one property from the message, and whether the message made it obvious."""
    said = {w.lower() for w in _words(user)}
    if schema.get("enum"):
        mentioned = [v for v in schema["enum"] if str(v).lower() in said]
        return (mentioned or schema["enum"])[0], bool(mentioned)
    kind = schema.get("type", "string")
    if kind in ("integer", "number"):
        found = _NUMBER.search(user)
        value = float(found.group()) if found else 1
        return (int(value) if kind == "integer" else value), found is not None
    if kind == "string" and any(h in name.lower() for h in _LOCATION_HINTS):
        return place or "unknown", place is not None
    if kind == "string" and "date" in name.lower() and (date := _DATE.search(user)):
        return date.group(), True
    if kind == "string":
        words = [w for w in _words(user) if w.lower() not in _COMMON]
        return " ".join(words[:5]) or "example", False
    return schema_instance(schema), False


def _tool_calls(req: _Req, tool: Mapping[str, Any], user: str) -> list[ToolCall]:
    fn = tool["function"]
    params = fn.get("parameters") or {}
    props: dict[str, Any] = params.get("properties") or {}
    required = set(params.get("required") or [])
    located = any(any(h in p.lower() for h in _LOCATION_HINTS) for p in props)
    places: list[str | None] = [*_proper_nouns(user, _tool_words(tool))]
    if not (located and len(places) >= 2 and "and" in user.lower().split() and req.parallel):
        places = places[:1] or [None]
    key = zlib.crc32(render_prompt({"messages": req.messages}).encode()) % 10**8
    calls = []
    for i, place in enumerate(places[:4]):
        args = {}
        # Several place-like properties (origin, destination) take the places in order.
        spare = iter(_proper_nouns(user, _tool_words(tool)))
        for name, sub in props.items():
            here = place
            if any(h in name.lower() for h in _LOCATION_HINTS) and len(places) == 1:
                here = next(spare, place)
            value, obvious = _fill(name, sub if isinstance(sub, dict) else {}, user, here)
            if name in required or obvious:
                args[name] = value
        arguments = json.dumps(args, separators=(",", ":"))
        calls.append(ToolCall(f"call_{key:08d}{i}", fn["name"], arguments))
    return calls


def _logprob_entry(piece: str, position: int, top: int) -> dict[str, Any]:
    """Deterministic logprobs for a token: it is the most likely; each alternative half as likely
    as the one before, out of what the chosen token leaves (so the top list sums below 1)."""
    chosen = 0.5 + 0.49 * (zlib.crc32(f"{position}:{piece}".encode()) % 1000) / 1000
    alternatives = [a for a in _ALTERNATIVES if a != piece][: max(0, top - 1)]
    ranked = [(piece, chosen)]
    ranked += [(a, (1 - chosen) / 2 ** (j + 1)) for j, a in enumerate(alternatives)]
    entries = [{"token": t, "logprob": math.log(p), "bytes": list(t.encode())} for t, p in ranked]
    return {**entries[0], "top_logprobs": entries[:top]}


def _cut_text(pieces: list[str], budget: int, stop: list[str]) -> tuple[list[str], str]:
    """Cut answer pieces at `budget` tokens or before the first stop string."""
    text = "".join(pieces)
    limit = len("".join(pieces[:budget]))  # a stop string must be complete within the budget
    hits = [at for s in stop if (at := text.find(s)) >= 0 and at + len(s) <= limit]
    if hits:
        at = min(hits)
        out, used = [], 0
        for piece in pieces:
            if used + len(piece) > at:
                piece = piece[: at - used]
            if piece:
                out.append(piece)
            used += len(piece)
            if used >= at:
                break
        return out, "stop"
    return pieces[:budget], "length" if budget < len(pieces) else "stop"


def _choice(req: _Req, index: int, budget: int) -> Choice:
    reasoning = render_pieces(_reasoning_tokens(req))
    user = _last_user(req.messages)
    tool = _pick_tool(req, user) if req.tools else None
    if budget < len(reasoning):
        lp: list[dict[str, Any] | None] | None = None if req.top_logprobs is None else []
        return Choice(index, reasoning[:budget], None, [], "length", lp, budget)
    left = budget - len(reasoning)
    content: list[str] | None = None
    calls: list[ToolCall] = []
    if tool is not None:
        calls = _tool_calls(req, tool, user)
        call_tokens = [t for c in calls for t in tokenize(c.name) + tokenize(c.arguments)]
        finish = "tool_calls"
        if len(call_tokens) > left:  # cut mid-call: the unparsed call text comes back as content
            content, calls, finish = render_pieces(call_tokens[:left]), [], "length"
    else:
        tokens, is_json = _answer_tokens(req)
        variant = 0 if is_json else _variant(req, index)
        if variant:
            tokens = [*tokenize(_OPENERS[variant - 1]), tokens[0].lower(), *tokens[1:]]
        content, finish = _cut_text(render_pieces(tokens), left, req.stop)
    logprobs = None
    if req.top_logprobs is not None and content is not None:
        logprobs = [
            _logprob_entry(p, i, req.top_logprobs) if p.strip() else None
            for i, p in enumerate(content)
        ]
    used = len(reasoning) + len(tokenize("".join(content or [])))
    used += sum(len(tokenize(c.name)) + len(tokenize(c.arguments)) for c in calls)
    return Choice(index, reasoning, content, calls, finish, logprobs, used)


def generate(body: Mapping[str, Any]) -> Generation:
    """Validate a chat completions body and generate its choices (raises `RequestError`)."""
    req = _parse(body)
    prompt = prompt_tokens(body)
    if prompt > CONTEXT_WINDOW or prompt + (req.max_tokens or 0) > CONTEXT_WINDOW:
        raise RequestError(
            f"This model's maximum context length is {CONTEXT_WINDOW} tokens. However, you "
            f"requested {prompt + (req.max_tokens or 0)} tokens ({prompt} in the messages, "
            f"{req.max_tokens or 0} in the completion).",
            "messages",
            code="context_length_exceeded",
        )
    budget = req.max_tokens or CONTEXT_WINDOW - prompt
    return Generation([_choice(req, i, budget) for i in range(req.n)], prompt)


def _tool_call_json(call: ToolCall) -> dict[str, Any]:
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments},
    }


def chat_response(gen: Generation) -> dict[str, Any]:
    """The non-streamed chat.completion object for a generation."""
    choices = []
    for c in gen.choices:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": c.content,
            "reasoning_content": c.reasoning,
        }
        if c.tool_calls:
            message["tool_calls"] = [_tool_call_json(call) for call in c.tool_calls]
        lp = None if c.logprobs is None else {"content": [e for e in c.logprobs if e]}
        choices.append(
            {"index": c.index, "message": message, "logprobs": lp, "finish_reason": c.finish_reason}
        )
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": MODEL_ID,
        "choices": choices,
        "usage": gen.usage,
    }


def chat_chunks(gen: Generation, include_usage: bool) -> list[dict[str, Any]]:
    """The chat.completion.chunk objects of a stream, one per token, in order."""
    head = {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": MODEL_ID,
    }
    extra: dict[str, Any] = {"usage": None} if include_usage else {}
    chunks: list[dict[str, Any]] = []

    def emit(index: int, delta: dict[str, Any], finish: str | None = None, lp: Any = None) -> None:
        choice = {"index": index, "delta": delta, "logprobs": lp, "finish_reason": finish}
        chunks.append({**head, "choices": [choice], **extra})

    for c in gen.choices:
        emit(c.index, {"role": "assistant"})
        for piece in c.reasoning_pieces:
            emit(c.index, {"reasoning_content": piece})
        for i, piece in enumerate(c.content_pieces or []):
            entry = c.logprobs[i] if c.logprobs else None
            emit(c.index, {"content": piece}, lp={"content": [entry]} if entry else None)
        for k, call in enumerate(c.tool_calls):
            first = {**_tool_call_json(call), "index": k}
            first["function"] = {"name": call.name, "arguments": ""}
            emit(c.index, {"tool_calls": [first]})
            step = max(1, -(-len(call.arguments) // 3))
            for at in range(0, len(call.arguments), step):
                piece = call.arguments[at : at + step]
                emit(c.index, {"tool_calls": [{"index": k, "function": {"arguments": piece}}]})
        emit(c.index, {}, c.finish_reason)
    if include_usage:
        chunks.append({**head, "choices": [], "usage": gen.usage})
    return chunks


_RESPONSES_PARAMS = {
    "messages": "input",
    "max_tokens": "max_output_tokens",
    "reasoning_effort": "reasoning.effort",
}


def responses_to_chat(body: Mapping[str, Any]) -> dict[str, Any]:
    """Translate a Responses API body into the chat completions body it means."""
    source = body.get("input")
    messages: list[dict[str, Any]] = []
    if isinstance(body.get("instructions"), str):
        messages.append({"role": "system", "content": body["instructions"]})
    if isinstance(source, str):
        messages.append({"role": "user", "content": source})
    elif isinstance(source, list):
        for item in source:
            kind = item.get("type", "message") if isinstance(item, dict) else None
            if kind == "message":
                messages.append({"role": item.get("role"), "content": item.get("content")})
            elif kind == "function_call_output":
                messages.append(
                    {
                        "role": "tool",
                        "tool_call_id": item.get("call_id"),
                        "content": _text(item.get("output")),
                    }
                )
            elif kind == "function_call":
                call = {
                    "id": item.get("call_id"),
                    "type": "function",
                    "function": {"name": item.get("name"), "arguments": item.get("arguments")},
                }
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
            elif kind != "reasoning":
                raise RequestError(f"unsupported input item {item!r}", "input")
    chat = {k: body[k] for k in ("model", "temperature", "top_p", "seed") if k in body}
    chat.update(messages=messages, max_tokens=body.get("max_output_tokens"))
    tools = body.get("tools") or []
    if not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools):
        raise RequestError("tools must be a list of function tools", "tools")
    chat["tools"] = [
        {"type": t.get("type"), "function": {k: t[k] for k in t if k != "type"}} for t in tools
    ]
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") == "function":
        choice = {"type": "function", "function": {"name": choice.get("name")}}
    chat["tool_choice"] = choice
    reasoning, text = body.get("reasoning"), body.get("text")
    chat["reasoning_effort"] = reasoning.get("effort") if isinstance(reasoning, dict) else None
    fmt = text.get("format") if isinstance(text, dict) else None
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        chat["response_format"] = {"type": "json_schema", "json_schema": fmt}
    elif fmt is not None:
        chat["response_format"] = fmt
    return chat


def response_object(gen: Generation) -> dict[str, Any]:
    """The Responses API `response` object for a one-choice generation."""
    c = gen.choices[0]
    output: list[dict[str, Any]] = [
        {
            "type": "reasoning",
            "id": f"rs_{uuid.uuid4().hex}",
            "summary": [],
            "content": [{"type": "reasoning_text", "text": c.reasoning}],
        }
    ]
    for call in c.tool_calls:
        output.append(
            {
                "type": "function_call",
                "id": f"fc_{uuid.uuid4().hex}",
                "call_id": call.id,
                "name": call.name,
                "arguments": call.arguments,
                "status": "completed",
            }
        )
    if c.content is not None:
        text = {"type": "output_text", "text": c.content, "annotations": []}
        output.append(
            {
                "type": "message",
                "id": f"msg_{uuid.uuid4().hex}",
                "role": "assistant",
                "status": "completed",
                "content": [text],
            }
        )
    cut = c.finish_reason == "length"
    return {
        "id": f"resp_{uuid.uuid4().hex}",
        "object": "response",
        "created_at": int(time.time()),
        "model": MODEL_ID,
        "status": "incomplete" if cut else "completed",
        "incomplete_details": {"reason": "max_output_tokens"} if cut else None,
        "error": None,
        "output": output,
        "usage": {
            "input_tokens": gen.prompt_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": c.completion_tokens,
            "output_tokens_details": {"reasoning_tokens": c.reasoning_tokens},
            "total_tokens": gen.prompt_tokens + c.completion_tokens,
        },
    }


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except ValueError as exc:
        raise RequestError(f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise RequestError("request body must be a JSON object")
    return body


def _error(exc: RequestError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status)


async def _models(request: Request) -> Response:
    model = {
        "id": MODEL_ID,
        "object": "model",
        "created": 0,
        "owned_by": "parity",
        "context_length": CONTEXT_WINDOW,
        "max_model_len": CONTEXT_WINDOW,
    }
    return JSONResponse({"object": "list", "data": [model]})


async def _chat(request: Request) -> Response:
    try:
        body = await _body(request)
        gen = generate(body)
    except RequestError as exc:
        return _error(exc)
    if not body.get("stream"):
        return JSONResponse(chat_response(gen))
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    chunks = chat_chunks(gen, include_usage)

    async def events() -> AsyncIterator[str]:
        for chunk in chunks:
            yield f"data: {json.dumps(chunk)}\n\n"
        yield "data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


async def _responses(request: Request) -> Response:
    try:
        body = await _body(request)
        if body.get("stream"):
            raise RequestError("streaming not supported by this scripted server", "stream")
        try:
            gen = generate(responses_to_chat(body))
        except RequestError as exc:
            if exc.param in _RESPONSES_PARAMS:
                name = _RESPONSES_PARAMS[exc.param]
                exc.message, exc.param = exc.message.replace(exc.param, name), name
            raise
    except RequestError as exc:
        return _error(exc)
    return JSONResponse(response_object(gen))


async def _not_found(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 404
    message = f"{request.method} {request.url.path} is not supported by this server"
    return _error(RequestError(message, None, status))


def create_app() -> Starlette:
    """The scripted model's ASGI app: /v1/models, /v1/chat/completions, /v1/responses."""
    routes = [
        Route("/v1/models", _models, methods=["GET"]),
        Route("/v1/chat/completions", _chat, methods=["POST"]),
        Route("/v1/responses", _responses, methods=["POST"]),
    ]
    return Starlette(routes=routes, exception_handlers={404: _not_found, 405: _not_found})
