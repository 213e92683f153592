r"""API keys: which strings may be one, the forms one takes in what comes back, redacting them.

parity sends a key in the `Authorization` header and nowhere else, so the request as stored
(`Exchange.request`, the body parity built) never holds it, and neither does anything parity
writes from its own settings (`Provider.public_dict` hides header values). Only what a
provider sends back can: an error body quoting the header, generated text repeating it, a
stream that splits it across chunks. That text is redacted here, before anything is stored,
logged or reported.

Redaction is safe only for keys that cannot occur by chance, so keys are validated when the
providers file is loaded (`key_problem`): printable ASCII, no whitespace or control
character, at least `MIN_KEY_LENGTH` characters, and below `MIXED_KEY_LENGTH` characters a
mix of letters and digits (a word such as "lm-studio" could be in an answer). For such a key
only whole occurrences are replaced by `REDACTED`, in every form it is matched in:

- raw;
- JSON-escaped: `\/`, `\"`, `\\` (any depth of escaping), `\u00XX` in either case;
- URL-encoded: `quote`, `quote_plus`, upper or lower hex, double encoding (`%252F`);
- HTML character references (`&#47;`, `&#x2F;`);
- base64 in the standard and the URL-safe alphabet at each of the three byte alignments,
  as in `Basic base64(user:key)`: the whole base64 token around it is replaced, since all of
  its characters near the key are computed from the key's bits;
- split across the chunks of a stream (`redact_chunks`).

These forms mix freely within one occurrence (some characters escaped, others not). Text
that holds no form of the key is returned unchanged, the very same object.
"""

from __future__ import annotations

import base64
import functools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, overload

import orjson

from parity.core.exchange import Exchange

__all__ = [
    "MIN_KEY_LENGTH",
    "MIXED_KEY_LENGTH",
    "REDACTED",
    "exception_text",
    "key_problem",
    "redact",
    "redact_chunks",
    "redact_exchange",
    "redact_message",
    "redact_text",
]

REDACTED = "***"
"""What an occurrence of a key is replaced with."""

MIN_KEY_LENGTH = 8
"""The shortest key accepted; also the shortest fragment `redact_message` removes."""

MIXED_KEY_LENGTH = 16
"""Keys shorter than this must contain both a letter and a digit."""

_B64_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_")


def key_problem(key: str) -> str | None:
    """Why `key` cannot be an API key, in words that hold no part of it; None when it can.

    The words complete "the key in $VAR ...", e.g. "ends with a carriage return (\\r) ...".
    """
    if "\r" in key:
        where = "contains" if "\r" in key.rstrip("\r\n") else "ends with"
        return (
            f"{where} a carriage return (\\r): read from a file with Windows line endings? "
            "remove it"
        )
    if key != key.strip():
        return "has leading or trailing whitespace: remove it"
    if any(char.isspace() for char in key):
        return "contains whitespace"
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in key):
        return "contains a control character"
    if not key.isascii() or not key.isprintable():
        return "contains a character that is not printable ASCII"
    if len(key) < MIN_KEY_LENGTH:
        return (
            f"is shorter than {MIN_KEY_LENGTH} characters "
            "(an endpoint that needs no key: remove api_key_env)"
        )
    if len(key) < MIXED_KEY_LENGTH and not (
        any(char.isalpha() for char in key) and any(char.isdigit() for char in key)
    ):
        return (
            f"is shorter than {MIXED_KEY_LENGTH} characters and lacks a letter or a digit: "
            "a word like that could occur in what a provider sends back "
            "(an endpoint that needs no key: remove api_key_env)"
        )
    return None


def redact_text(text: str, secret: str | None) -> str:
    """`text` with every whole occurrence of `secret`, in any form, replaced by `REDACTED`.

    Returns `text` itself when it holds no form of `secret` (or `secret` is None or empty).
    Raises `ValueError` for a secret `key_problem` refuses.
    """
    if not secret or not text:
        return text
    forms = _forms(secret)
    if not forms.suspect(text):
        return text
    return _replace(text, forms.spans(text))


def redact(value: Any, secret: str | None) -> Any:
    """Any JSON-like value (str, list, tuple, dict: keys and values) with `redact_text` applied
    to every string in it; other values pass through.

    Returns `value` itself when nothing in it holds `secret`; otherwise a copy of the parts
    that changed (lists and dicts are rebuilt, never modified in place).
    """
    if not secret:
        return value
    if isinstance(value, str):
        return redact_text(value, secret)
    if isinstance(value, list | tuple):
        items = [redact(item, secret) for item in value]
        if all(new is old for new, old in zip(items, value, strict=True)):
            return value
        return type(value)(items)
    if isinstance(value, dict):
        pairs = [(redact(k, secret), redact(v, secret)) for k, v in value.items()]
        if all(
            nk is ok and nv is ov for (nk, nv), (ok, ov) in zip(pairs, value.items(), strict=True)
        ):
            return value
        return dict(pairs)
    return value


@overload
def redact_message(text: str, secret: str | None) -> str: ...
@overload
def redact_message(text: None, secret: str | None) -> None: ...
def redact_message(text: str | None, secret: str | None) -> str | None:
    """A message parity composed (an error detail): `redact_text`, and also every fragment of
    `secret` at least `MIN_KEY_LENGTH` characters long, as a message may quote a body cut off
    in the middle of the key. None stays None.
    """
    if text is None or not secret:
        return text
    text = redact_text(text, secret)
    return _replace(text, _fragments(text, secret, MIN_KEY_LENGTH))


def redact_chunks(chunks: list[str], secret: str | None) -> list[str]:
    """The raw SSE payloads of one stream with `secret` redacted, also where it is split
    across chunks (a model echoing the key streams it a token or so per chunk).

    Each chunk is first redacted on its own (`redact_text`). Then, for every place in the
    JSON of the chunks (a path such as `choices.0.delta.content`), the strings found there
    in chunk order are concatenated and searched; each chunk holding a piece of an occurrence
    has that piece replaced by `REDACTED` and is written back as compact JSON (a chunk that
    is not JSON is edited as text). So no two chunks can be rejoined into the key, and the
    chunks still carry text where they did (chunk counts by kind are unchanged). Chunks that
    held no piece of the key are returned unchanged, byte for byte.
    """
    if not secret:
        return chunks
    forms = _forms(secret)
    out = [redact_text(chunk, secret) for chunk in chunks]
    parsed: dict[int, Any] = {}
    streams: dict[tuple[Any, ...], list[tuple[int, tuple[Any, ...], str]]] = {}
    for index, payload in enumerate(out):
        try:
            data = orjson.loads(payload)
        except orjson.JSONDecodeError:
            streams.setdefault(("<payload>",), []).append((index, (), payload))
            continue
        parsed[index] = data
        for path, leaf in _leaves(data, ()):
            streams.setdefault(path, []).append((index, path, leaf))
    edits: dict[tuple[int, tuple[Any, ...]], tuple[str, list[tuple[int, int]]]] = {}
    for pieces in streams.values():
        joined = "".join(leaf for _, _, leaf in pieces)
        if len(pieces) < 2 or not forms.suspect(joined):
            continue
        spans = forms.spans(joined)
        start = 0
        for index, path, leaf in pieces:
            end = start + len(leaf)
            for lo, hi in spans:
                if max(lo, start) < min(hi, end):
                    ranges = edits.setdefault((index, path), (leaf, []))[1]
                    ranges.append((max(lo, start) - start, min(hi, end) - start))
            start = end
    for (index, path), (leaf, ranges) in edits.items():
        new = _replace(leaf, ranges)
        if index in parsed:
            parsed[index] = _set_leaf(parsed[index], path, new)
            out[index] = orjson.dumps(parsed[index]).decode()
        else:
            out[index] = new
    return out


def redact_exchange(exchange: Exchange, secret: str | None) -> None:
    """Redact `secret` in place in every field of `exchange` that a provider's answer fills.

    `request` is left alone: it is the body parity built, which never holds the key (that
    travels in a header), and editing it would falsify what was sent; so are `request_id`
    and `attempt_ids`, the UUIDs parity generated. `error_detail` is a message
    (`redact_message`); `raw`, `text`, `reasoning`, `finish_reason`, `usage`, `tool_calls`,
    and the provider's ids (`response_id`, `provider_ids`) are redacted whole occurrences
    only; `chunks` also where the key is split across them (`redact_chunks`), which is looked
    for when the assembled text, reasoning or tool calls held the key.
    """
    if not secret:
        return
    text = redact_text(exchange.text, secret)
    reasoning = redact_text(exchange.reasoning, secret)
    tool_calls = redact(exchange.tool_calls, secret)
    split = exchange.stream and (
        text is not exchange.text
        or reasoning is not exchange.reasoning
        or tool_calls is not exchange.tool_calls
    )
    if split:
        exchange.chunks = redact_chunks(exchange.chunks, secret)
    elif any(map(_forms(secret).suspect, exchange.chunks)):  # the common case: fast, no copy
        exchange.chunks = [redact_text(chunk, secret) for chunk in exchange.chunks]
    exchange.text, exchange.reasoning, exchange.tool_calls = text, reasoning, tool_calls
    exchange.error_detail = redact_message(exchange.error_detail, secret)
    exchange.raw = redact(exchange.raw, secret)
    exchange.finish_reason = redact(exchange.finish_reason, secret)
    exchange.usage = redact(exchange.usage, secret)
    exchange.response_id = redact(exchange.response_id, secret)
    exchange.provider_ids = redact(exchange.provider_ids, secret)


def exception_text(exc: BaseException, secret: str | None = None) -> str:
    """`ClassName: message` for an exception, safe for a message, a store row or a report.

    The message is kept only for exceptions about the peer or the network (timeouts,
    connection errors, TLS errors, a server breaking HTTP), and then redacted for `secret`;
    any other exception (httpx's LocalProtocolError quotes a header value it refused) is
    described by its class name alone. Exceptions chained under a kept one are not read.
    """
    name = type(exc).__name__
    if not isinstance(exc, _peer_exceptions()):
        return name
    text = " ".join(str(exc).split())
    text = redact_message(text, secret)
    return f"{name}: {text}" if text else name


@functools.cache
def _peer_exceptions() -> tuple[type[BaseException], ...]:
    """Exceptions whose message describes the peer or the network, never what was sent (httpx,
    imported here so that loading a providers file does not import it)."""
    import httpx

    return (
        httpx.TimeoutException,
        httpx.NetworkError,
        httpx.RemoteProtocolError,
        httpx.ProxyError,
        OSError,  # errno and strerror; also TimeoutError, ConnectionError, ssl.SSLError
    )


# ---- the forms of one secret -----------------------------------------------------------------


@dataclass(frozen=True)
class _Forms:
    secret: str
    literal: tuple[str, ...]  # the raw secret and its base64 cores: a plain substring test
    escapes: tuple[str, ...]  # what any escaped or encoded form must contain
    plain: re.Pattern[str]  # the secret, each character in any of its encodings
    b64: re.Pattern[str]  # the base64 cores, likewise

    def suspect(self, text: str) -> bool:
        """False only when `text` certainly holds no form of the secret (fast: every escaped
        or encoded form has a backslash, a percent sign or an ampersand)."""
        if ("\\" in text or "%" in text or "&" in text) and any(
            map(text.__contains__, self.escapes)
        ):
            return True
        return any(map(text.__contains__, self.literal))

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Where the forms of the secret are in `text` (base64 ones widened to their token)."""
        spans = [match.span() for match in self.plain.finditer(text)]
        for match in self.b64.finditer(text):
            lo, hi = match.span()
            while lo > 0 and text[lo - 1] in _B64_CHARS:
                lo -= 1
            while hi < len(text) and text[hi] in _B64_CHARS:
                hi += 1
            while hi < len(text) and text[hi] == "=":
                hi += 1
            spans.append((lo, hi))
        return spans


@functools.lru_cache(maxsize=32)
def _forms(secret: str) -> _Forms:
    problem = key_problem(secret)
    if problem is not None:
        raise ValueError(f"refusing to redact a secret that {problem}")
    cores = _base64_cores(secret)
    punctuation = {char for text in (secret, *cores) for char in text if not char.isalnum()}
    escapes = ("\\u00", "\\U00", "%", "&#", *sorted("\\" + char for char in punctuation))
    return _Forms(
        secret=secret,
        literal=(secret, *cores),
        escapes=escapes,
        plain=re.compile(_pattern(secret)),
        b64=re.compile("|".join(_pattern(core) for core in cores)),
    )


def _base64_cores(secret: str) -> tuple[str, ...]:
    """The base64 characters computed from the secret's bytes alone, whatever comes before or
    after it: one string per byte alignment (0, 1, 2) and alphabet (standard, URL-safe)."""
    data = secret.encode()
    cores: list[str] = []
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + data).decode()
        core = encoded[(8 * offset + 5) // 6 : (8 * (offset + len(data))) // 6]
        for variant in (core, core.replace("+", "-").replace("/", "_")):
            if variant not in cores:
                cores.append(variant)
    return tuple(cores)


def _pattern(text: str) -> str:
    return "".join(_char_pattern(char) for char in text)


def _char_pattern(char: str) -> str:
    """One character of a secret, literal or in any encoding parity recognises."""
    code = ord(char)
    hexa = "".join(f"[{d}{d.upper()}]" if d.isalpha() else d for d in f"{code:02x}")
    literal = re.escape(char)
    alternatives = [
        literal if char.isalnum() else r"\\*" + literal,  # raw, or JSON/repr-escaped: \/ \" \\
        r"\\+[uU]00" + hexa,  # JSON \u00XX, at any depth of escaping
        "%(?:25)*" + hexa,  # URL-encoded, also twice
        f"&#0*{code};",  # HTML decimal reference
        "&#[xX]0*" + hexa + ";",  # HTML hexadecimal reference
    ]
    return "(?:" + "|".join(alternatives) + ")"


# ---- editing ---------------------------------------------------------------------------------


def _replace(text: str, spans: Iterable[tuple[int, int]]) -> str:
    """`text` with each of the (merged) spans replaced by one `REDACTED`."""
    merged: list[list[int]] = []
    for lo, hi in sorted(spans):
        if merged and lo <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    if not merged:
        return text
    parts: list[str] = []
    last = 0
    for lo, hi in merged:
        parts += [text[last:lo], REDACTED]
        last = hi
    parts.append(text[last:])
    return "".join(parts)


def _fragments(text: str, secret: str, minimum: int) -> list[tuple[int, int]]:
    """Spans of `text` that are substrings of `secret` at least `minimum` characters long."""
    minimum = min(minimum, len(secret))
    grams = {secret[i : i + minimum] for i in range(len(secret) - minimum + 1)}
    spans: list[tuple[int, int]] = []
    position = 0
    while position <= len(text) - minimum:
        if text[position : position + minimum] in grams:
            end = position + minimum
            while end < len(text) and text[position : end + 1] in secret:
                end += 1
            spans.append((position, end))
            position = end
        else:
            position += 1
    return spans


def _leaves(value: Any, path: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], str]]:
    """Every string value in a parsed JSON document, with its path (dict keys, list indices)."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, (*path, index))


def _set_leaf(value: Any, path: tuple[Any, ...], new: str) -> Any:
    """`value` with the string at `path` replaced by `new` (containers edited in place)."""
    if not path:
        return new
    container = value
    for step in path[:-1]:
        container = container[step]
    container[path[-1]] = new
    return value
