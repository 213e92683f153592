"""core.secrets: which keys are accepted, every form a key is redacted in, and that data which
does not hold the key is never touched."""

from __future__ import annotations

import base64
import json
import random
import re
import string
import urllib.parse
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from parity.core.config import load_providers
from parity.core.errors import ConfigError
from parity.core.exchange import ErrorClass, Exchange, Timings
from parity.core.secrets import (
    MIN_KEY_LENGTH,
    REDACTED,
    exception_text,
    key_problem,
    redact,
    redact_chunks,
    redact_exchange,
    redact_message,
    redact_text,
)
from tests.leaks import leaks as find_leaks
from tests.scripted_server import ScriptedServer, chunk, completion, error_body, usage_chunk

# 32 characters, with the three that URL-encoding and JSON-escaping change: / + =
KEY = "sk-Q7mZ/x9Kp+Lw2=Rb4Tn8Vc6Hd3Jf5"
assert len(KEY) == 32


def leaks(text: str | bytes, key: str = KEY) -> list[str]:
    return find_leaks(text, key)


def encodings(key: str) -> dict[str, str]:
    """The key as a provider might echo it, each inside some surrounding text."""
    bearer = f"Bearer {key}"
    return {
        "raw": f"Incorrect API key provided: {bearer}.",
        "json": json.dumps({"error": {"message": bearer}}),
        "json \\/": json.dumps({"error": {"message": bearer}}).replace("/", "\\/"),
        "json \\u00XX": json.dumps({"m": bearer}).replace("/", "\\u002F").replace("+", "\\u002b"),
        "json all \\u": json.dumps({"m": "".join(f"\\u{ord(c):04x}" for c in key)}),
        "json in json": json.dumps({"body": json.dumps({"m": bearer}).replace("/", "\\/")}),
        "repr": repr(f"{bearer}\r".encode()),
        "quote": "https://x.test/login?next=" + urllib.parse.quote(key, safe=""),
        "quote safe /": "https://x.test/" + urllib.parse.quote(key) + "/",
        "quote_plus": "token=" + urllib.parse.quote_plus(bearer) + "&a=1",
        "quote lower hex": re.sub(
            "%[0-9A-F]{2}", lambda m: m.group().lower(), urllib.parse.quote(key, safe="")
        ),
        "quote twice": urllib.parse.quote(urllib.parse.quote(key, safe=""), safe=""),
        "html": "".join(c if c.isalnum() else f"&#{ord(c)};" for c in key),
        "html hex": "".join(c if c.isalnum() else f"&#x{ord(c):X};" for c in key),
        "basic user:key": "Basic " + base64.b64encode(f"user:{key}".encode()).decode(),
        "basic :key": "Basic " + base64.b64encode(f":{key}".encode()).decode(),
        "basic key:": "Basic " + base64.b64encode(f"{key}:".encode()).decode() + " end",
        "basic in json \\/": json.dumps(
            {"auth": "Basic " + base64.b64encode(f"ab:{key}".encode()).decode()}
        ).replace("/", "\\/"),
        "base64 bearer": base64.b64encode(bearer.encode()).decode(),
        "base64url": base64.urlsafe_b64encode(f"xy{key}".encode()).decode().rstrip("="),
    }


# ---- which keys are accepted -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "words"),
    [
        (KEY + "\r", "ends with a carriage return"),
        (KEY + "\r\n", "ends with a carriage return"),
        (KEY[:10] + "\r" + KEY[10:], "contains a carriage return"),
        (KEY + "\n", "leading or trailing whitespace"),
        (" " + KEY, "leading or trailing whitespace"),
        (KEY[:10] + " " + KEY[10:], "contains whitespace"),
        (KEY[:10] + "\t" + KEY[10:], "contains whitespace"),
        (KEY[:10] + "\x1b" + KEY[10:], "control character"),
        (KEY[:10] + "\x7f" + KEY[10:], "control character"),
        (KEY[:10] + "é" + KEY[10:], "not printable ASCII"),
        (KEY[:10] + "\u00a0" + KEY[10:], "whitespace"),
        ("e", "shorter than 8"),
        ("null", "shorter than 8"),
        ("none", "shorter than 8"),
        ("sk-1234", "shorter than 8"),
        ("lm-studio", "lacks a letter or a digit"),
        ("password", "lacks a letter or a digit"),
        ("12345678", "lacks a letter or a digit"),
        ("sk-no-key-required", None),
        ("token-abc123", None),
        ("abcd1234", None),
        (KEY, None),
        ("x" * 40, None),
    ],
)
def test_key_problem(key: str, words: str | None) -> None:
    problem = key_problem(key)
    if words is None:
        assert problem is None
        return
    assert problem is not None and words in problem
    assert "\n" not in problem and "\r" not in problem
    # No part of the key in the words (beyond what any English sentence has).
    if len(key) > 8:
        assert not any(key[i : i + 6] in problem for i in range(len(key) - 5)), problem


@pytest.mark.parametrize("key", ["e", "null", "none", "true", "model", "sk-test"])
def test_short_or_common_keys_are_refused_when_the_providers_file_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    path = tmp_path / "providers.toml"
    path.write_text(
        '[[provider]]\nname = "p"\nbase_url = "http://127.0.0.1:1/v1"\nmodel = "m"\n'
        'api_key_env = "PARITY_SECRETS_TEST_KEY"\n'
    )
    monkeypatch.setenv("PARITY_SECRETS_TEST_KEY", key)
    with pytest.raises(ConfigError) as info:
        load_providers(path)
    message = str(info.value)
    assert message.startswith(f"{path}: [[provider]] #1 (p): api_key_env:")
    assert "$PARITY_SECRETS_TEST_KEY" in message and "shorter than" in message


def test_redaction_refuses_a_key_that_would_not_be_accepted() -> None:
    for key in ("e", "null", "none", "password"):
        with pytest.raises(ValueError) as info:
            redact_text("the model said null and none", key)
        assert repr(key) not in str(info.value)


# ---- every form --------------------------------------------------------------------------------


def test_the_leak_detector_sees_every_form() -> None:
    # The test's own detector, checked on the unredacted forms (so the tests below mean it).
    for name, text in encodings(KEY).items():
        assert leaks(text), name


@pytest.mark.parametrize("form", list(encodings(KEY)))
def test_every_form_of_the_key_is_redacted(form: str) -> None:
    text = encodings(KEY)[form]
    redacted = redact_text(text, KEY)
    assert REDACTED in redacted
    assert leaks(redacted) == [], (form, redacted)
    assert "Q7mZ" not in redacted and "Jf5" not in redacted


def test_only_the_key_is_replaced_around_it() -> None:
    assert redact_text(f"Bearer {KEY}.", KEY) == "Bearer ***."
    assert redact_text(json.dumps({"m": f"key {KEY}"}).replace("/", "\\/"), KEY) == (
        '{"m": "key ***"}'
    )
    quoted = urllib.parse.quote(KEY, safe="")
    assert redact_text(f"https://x.test/cb?t={quoted}&u=2", KEY) == "https://x.test/cb?t=***&u=2"
    # base64: the whole token goes (its characters next to the key are computed from it).
    basic = base64.b64encode(f"user:{KEY}".encode()).decode()
    assert redact_text(f'{{"authorization": "Basic {basic}"}}', KEY) == (
        '{"authorization": "Basic ***"}'
    )
    assert redact_text(f"{KEY}{KEY} and {KEY}", KEY) == "*** and ***"


def test_random_keys_in_random_forms_are_gone() -> None:
    rng = random.Random(7)
    alphabet = string.ascii_letters + string.digits + "-_/+=.~"
    for _ in range(150):
        key = "sk-" + "".join(rng.choice(alphabet) for _ in range(29))
        if key_problem(key):
            continue
        for name, text in encodings(key).items():
            noise = "".join(rng.choice(string.printable) for _ in range(rng.randint(0, 40)))
            redacted = redact_text(noise + text + noise, key)
            assert leaks(redacted, key) == [], (name, key, redacted)


def test_fragments_are_redacted_in_messages_only() -> None:
    cut = f"HTTP 401: Incorrect API key provided: Bearer {KEY[:20]}..."
    assert redact_message(cut, KEY) == "HTTP 401: Incorrect API key provided: Bearer ***..."
    assert redact_message(f"... {KEY[-12:]} tail", KEY) == "... *** tail"
    # Provider data: only whole occurrences are replaced (a piece of text that happens to
    # share a few characters with the key stays as it was).
    assert redact_text(f"{KEY[:20]}...", KEY) == f"{KEY[:20]}..."
    assert redact_text(KEY[:-1], KEY) == KEY[:-1]
    assert redact_message(None, KEY) is None
    assert redact_message("short pieces sk-Q7 Jf5 stay", KEY) == "short pieces sk-Q7 Jf5 stay"


# ---- split across stream chunks ----------------------------------------------------------------


def payload(delta: dict[str, Any], finish: str | None = None) -> str:
    return json.dumps(chunk(delta, finish), separators=(",", ":"))


def stream_exchange(chunks: list[str], **fields: Any) -> Exchange:
    return Exchange(
        request={"model": "m", "tool_choice": "none"},
        stream=True,
        timings=Timings(sent=1),
        chunks=chunks,
        **fields,
    )


@pytest.mark.parametrize("cut", [1, 5, 16, 31])
def test_key_split_across_two_deltas(cut: int) -> None:
    chunks = [
        payload({"role": "assistant", "content": ""}),
        payload({"content": f"your key is {KEY[:cut]}"}),
        payload({"content": f"{KEY[cut:]} keep it safe"}),
        payload({}, "stop"),
        json.dumps(usage_chunk()),
    ]
    redacted = redact_chunks(chunks, KEY)
    assert leaks("\n".join(redacted)) == []
    contents = [orjson.loads(c)["choices"][0]["delta"].get("content") for c in redacted[:3]]
    assert contents == ["", "your key is ***", "*** keep it safe"]
    # Chunks that held no piece of the key are untouched, byte for byte.
    assert redacted[0] is chunks[0] and redacted[3:] == chunks[3:]
    # Rejoining any two chunks gives nothing either.
    pieces = [orjson.loads(c)["choices"][0]["delta"].get("content") or "" for c in redacted[:3]]
    assert pieces[1].endswith(REDACTED) and pieces[2].startswith(REDACTED)
    assert KEY not in pieces[1] + pieces[2] and not leaks(pieces[1] + pieces[2])


def test_key_streamed_a_few_characters_per_chunk() -> None:
    text = f"Sure: Bearer {KEY}, as you asked."
    pieces = [text[i : i + 3] for i in range(0, len(text), 3)]
    chunks = [payload({"content": piece}) for piece in pieces]
    ex = stream_exchange(chunks, text=text, finish_reason="stop")
    redact_exchange(ex, KEY)
    assert ex.text == "Sure: Bearer ***, as you asked."
    assert leaks("".join(ex.chunks)) == []
    joined = "".join(orjson.loads(c)["choices"][0]["delta"]["content"] for c in ex.chunks)
    assert KEY not in joined and "Sure: Bearer " in joined and ", as you asked." in joined
    assert len(ex.chunks) == len(chunks)  # as many chunks, each still carrying text
    assert all(orjson.loads(c)["choices"][0]["delta"]["content"] for c in ex.chunks)


def test_key_split_in_tool_call_arguments_and_reasoning() -> None:
    args = json.dumps({"token": KEY})
    chunks = [
        payload({"reasoning_content": f"the user gave {KEY[:9]}"}),
        payload({"reasoning_content": f"{KEY[9:]} so"}),
        payload({"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "f"}}]}),
        payload({"tool_calls": [{"index": 0, "function": {"arguments": args[:20]}}]}),
        payload({"tool_calls": [{"index": 0, "function": {"arguments": args[20:]}}]}),
    ]
    calls = [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": args}}]
    ex = stream_exchange(chunks, reasoning=f"the user gave {KEY} so", tool_calls=calls)
    redact_exchange(ex, KEY)
    assert leaks("".join(ex.chunks) + ex.reasoning + json.dumps(ex.tool_calls)) == []
    assert ex.reasoning == "the user gave *** so"
    assert ex.tool_calls[0]["function"]["arguments"] == '{"token": "***"}'
    assert ex.chunks[2] == chunks[2]


def test_key_split_across_chunks_that_are_not_json() -> None:
    redacted = redact_chunks([f"oops {KEY[:12]}", f"{KEY[12:]} end"], KEY)
    assert redacted == ["oops ***", "*** end"]


# ---- data without the key is never touched ------------------------------------------------------

UNTOUCHED = [
    '{"model":"m","tool_choice":"none","n":null,"stop":null,"logprobs":false}',
    '{"id":"chatcmpl-1","object":"chat.completion","model":"model-e","choices":[]}',
    '{"error":{"message":"max_tokens is too large: 999999999","type":"e","param":null}}',
    '{"a":"\\/\\u00e9\\"\\\\","b":"50% off &amp; more %2F","c":"&#47;"}',
    "data: [DONE]",
    "Basic dXNlcjpwYXNzd29yZA==",  # base64 of user:password
    "sk-Q7mZ x9Kp Lw2 Rb4Tn8 Vc6Hd3",  # pieces of the key shorter than MIN_KEY_LENGTH
    "",
]


@pytest.mark.parametrize("text", UNTOUCHED)
def test_text_without_the_key_is_returned_as_is(text: str) -> None:
    assert redact_text(text, KEY) is text
    assert redact_message(text, KEY) is text


def test_random_text_without_the_key_is_byte_identical() -> None:
    rng = random.Random(11)
    for _ in range(300):
        size = rng.randint(0, 400)
        text = "".join(rng.choice(string.printable + "éü€\\%&#") for _ in range(size))
        assert redact_text(text, KEY) is text


def test_json_values_without_the_key_are_the_same_objects() -> None:
    value = {"tool_choice": "none", "stop": None, "list": ["e", "null", 1, 2.5, True], "t": (1,)}
    assert redact(value, KEY) is value
    assert redact(None, KEY) is None and redact(3, KEY) == 3
    changed = redact({"keep": ["a"], "msg": f"k={KEY}", KEY: 1}, KEY)
    assert changed == {"keep": ["a"], "msg": "k=***", REDACTED: 1}


def test_an_exchange_without_the_key_is_unchanged() -> None:
    chunks = [payload({"content": "Hello"}), payload({"content": " null none e"}, "stop")]
    ex = stream_exchange(chunks, text="Hello null none e", finish_reason="stop")
    ex.usage = {"prompt_tokens": 1, "completion_tokens": 2}
    before = ex.to_dict()
    redact_exchange(ex, KEY)
    assert orjson.dumps(ex.to_dict()) == orjson.dumps(before)
    assert ex.chunks is chunks


def test_request_is_never_edited() -> None:
    # The request is what parity sent; the key is never in it (it travels in a header).
    request = {"model": "m", "tool_choice": "none", "messages": [{"role": "user", "content": "e"}]}
    ex = Exchange(request=request, stream=False, timings=Timings(sent=1))
    ex.raw = json.dumps(error_body(f"bad key Bearer {KEY}"))
    ex.error, ex.error_detail = ErrorClass.HTTP_4XX, f"HTTP 401: bad key Bearer {KEY}"
    redact_exchange(ex, KEY)
    assert ex.request is request and ex.request["tool_choice"] == "none"
    assert leaks(orjson.dumps(ex.to_dict())) == []
    assert ex.error_detail == "HTTP 401: bad key Bearer ***"


def test_non_streamed_body_keeps_parsing() -> None:
    body = json.dumps(completion({"content": f"key {KEY}"}))
    ex = Exchange(request={}, stream=False, timings=Timings(sent=1), raw=body, text=f"key {KEY}")
    redact_exchange(ex, KEY)
    assert json.loads(ex.raw or "")["choices"][0]["message"]["content"] == "key ***"
    assert ex.text == "key ***"


# ---- exceptions ----------------------------------------------------------------------------------


def test_exception_text_keeps_network_messages_and_drops_the_rest() -> None:
    assert exception_text(httpx.ConnectError("[Errno 111] Connection refused")) == (
        "ConnectError: [Errno 111] Connection refused"
    )
    assert exception_text(httpx.ReadTimeout("")) == "ReadTimeout"
    assert exception_text(ConnectionResetError(104, "Connection reset by peer")) == (
        "ConnectionResetError: [Errno 104] Connection reset by peer"
    )
    assert exception_text(httpx.RemoteProtocolError(f"echo {KEY}"), KEY) == (
        "RemoteProtocolError: echo ***"
    )
    header = f"Illegal header value b'Bearer {KEY}\\r'"
    assert exception_text(httpx.LocalProtocolError(header)) == "LocalProtocolError"
    assert exception_text(ValueError(header)) == "ValueError"
    assert exception_text(UnicodeEncodeError("ascii", KEY, 1, 2, "bad")) == "UnicodeEncodeError"


async def test_exception_text_of_a_real_illegal_header_value() -> None:
    # What httpx really raises for a key read from a CRLF file (finding 1), through a socket.
    with ScriptedServer() as server:
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {KEY}\r"}) as http:
            with pytest.raises(httpx.HTTPError) as info:
                await http.get(f"{server.base('ok')}/models")
    assert KEY in str(info.value)  # what the old error detail carried
    text = exception_text(info.value, KEY)
    assert text == "LocalProtocolError" and leaks(text) == []


def test_min_key_length_is_what_config_refuses() -> None:
    assert key_problem("a1" * (MIN_KEY_LENGTH // 2)) is None
    assert key_problem("a1b2c3d") is not None
