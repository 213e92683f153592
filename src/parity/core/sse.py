"""Incremental Server-Sent-Events parsing for OpenAI-style streams.

`SSEParser` takes raw bytes as they come off the socket and returns the `data:` payload of
every event completed so far. It works on bytes, cuts on blank lines (`\\n\\n`, with `\\r\\n`
and lone `\\r` line endings normalised first) and has a fast path for the usual one-line
`data: {...}` event, so parsing costs a few microseconds per chunk.

Framing problems (a line that is no SSE field, bytes that are not UTF-8, a stream that ends
inside an event) do not raise: they are collected in `SSEParser.problems`, so a client can
classify the stream as malformed while keeping whatever it did receive.
"""

from __future__ import annotations

__all__ = ["SSEParser"]

_DATA = b"data: "
_BOM = b"\xef\xbb\xbf"
# Field names the SSE spec defines; anything else is reported as a framing problem.
_KNOWN_FIELDS = frozenset((b"data", b"event", b"id", b"retry"))
_MAX_PROBLEMS = 20


class SSEParser:
    """Turns a byte stream into SSE `data` payloads, one `feed` call per network read.

    Multi-line data is joined with `\\n` as the spec says; comment lines (`: ping`) and
    `event:`/`id:`/`retry:` lines are accepted and skipped, and events that carry no data
    produce no payload. Payloads are returned verbatim (decoded as UTF-8), including the
    final `[DONE]` sentinel: what a payload means is up to the caller.
    """

    __slots__ = ("_buf", "_cr", "_lead", "_scan", "_started", "events", "problems")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._scan = 0  # offset in _buf from which a b"\n\n" could still start
        self._cr = False  # the previous read ended with b"\r": it may be half of b"\r\n"
        self._started = False
        self._lead = b""  # the first bytes, while they may still be a split byte order mark
        self.events = 0
        """How many data-carrying events were dispatched so far."""
        self.problems: list[str] = []
        """Framing problems seen so far, as short human-readable descriptions."""

    def feed(self, data: bytes) -> list[str]:
        """Add `data` and return the payloads of every event it completes, in order.

        Events may be split anywhere, including inside a line ending; bytes of an
        unfinished event are kept until a later `feed` or `close`.
        """
        if not self._started:
            data = self._lead + data
            if len(data) < len(_BOM) and _BOM.startswith(data):
                self._lead = data  # maybe the start of a BOM split across reads: wait
                return []
            self._lead = b""
            self._started = True
            if data.startswith(_BOM):
                data = data[3:]
        if self._cr:
            data = b"\r" + data
            self._cr = False
        if b"\r" in data:
            if data.endswith(b"\r"):
                data = data[:-1]
                self._cr = True
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        buf = self._buf
        if buf:
            buf += data
            if buf.find(b"\n\n", self._scan) < 0:
                self._scan = len(buf) - 1
                return []
            data = bytes(buf)
            buf.clear()
        elif b"\n\n" not in data:
            buf += data
            self._scan = max(len(data) - 1, 0)
            return []
        parts = data.split(b"\n\n")
        rest = parts.pop()
        if rest:
            buf += rest
            self._scan = len(rest) - 1
        else:
            self._scan = 0
        out: list[str] = []
        for event in parts:
            if event.startswith(_DATA) and event.find(b"\n", 6) < 0:
                try:
                    out.append(event[6:].decode())
                except UnicodeDecodeError:
                    self._problem("event data is not valid UTF-8")
                    out.append(event[6:].decode(errors="replace"))
                self.events += 1
            elif event:
                payload = self._slow_event(event)
                if payload is not None:
                    out.append(payload)
                    self.events += 1
        return out

    def close(self) -> list[str]:
        """Signal end of stream; return the payload of an unterminated final event, if any.

        An event not followed by a blank line is incomplete by the spec; it is still returned
        (so nothing received is lost) but also recorded as a problem.
        """
        out: list[str] = []
        if self._lead:  # the stream was only the start of a BOM: bytes like any others
            lead, self._lead = self._lead, b""
            self._started = True
            out = self.feed(lead)
        if self._cr:
            self._cr = False
            out += self.feed(b"\n")  # the pending b"\r" was a line ending after all
        rest = bytes(self._buf).strip(b"\n")
        self._buf.clear()
        self._scan = 0
        if not rest:
            return out
        self._problem(f"stream ended inside an event: {_snippet(rest)}")
        payload = self._slow_event(rest)
        if payload is not None:
            self.events += 1
            out.append(payload)
        return out

    def _slow_event(self, event: bytes) -> str | None:
        """Parse one event line by line; return its data, or None when it carries none."""
        data: list[bytes] | None = None
        for line in event.split(b"\n"):
            if not line or line[0] == 0x3A:  # blank, or a ":" comment
                continue
            name, _, value = line.partition(b":")
            if value.startswith(b" "):
                value = value[1:]
            if name == b"data":
                if data is None:
                    data = [value]
                else:
                    data.append(value)
            elif name not in _KNOWN_FIELDS:
                self._problem(f"not an SSE line: {_snippet(line)}")
        if data is None:
            return None
        joined = b"\n".join(data)
        try:
            return joined.decode()
        except UnicodeDecodeError:
            self._problem("event data is not valid UTF-8")
            return joined.decode(errors="replace")

    def _problem(self, text: str) -> None:
        if len(self.problems) < _MAX_PROBLEMS:
            self.problems.append(text)


def _snippet(raw: bytes, limit: int = 80) -> str:
    text = raw.decode(errors="replace")
    return repr(text if len(text) <= limit else text[:limit] + "...")
