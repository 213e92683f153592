"""The incremental SSE parser: framing, line endings, splitting, problems."""

from __future__ import annotations

import time

import pytest

from parity.core.sse import SSEParser

STREAM = (
    b": ping\n\n"
    b'data: {"a": 1}\n\n'
    b"event: message\nid: 7\nretry: 100\n"
    b'data: {"b": \n'
    b"data: 2}\n\n"
    b'data: {"c": "\xc3\xa9\xe2\x82\xac"}\n\n'
    b"data:nospace\n\n"
    b"data: [DONE]\n\n"
)
EXPECTED = ['{"a": 1}', '{"b": \n2}', '{"c": "é€"}', "nospace", "[DONE]"]


def parse_all(pieces: list[bytes]) -> tuple[list[str], list[str]]:
    parser = SSEParser()
    out: list[str] = []
    for piece in pieces:
        out += parser.feed(piece)
    out += parser.close()
    return out, parser.problems


def test_whole_stream() -> None:
    assert parse_all([STREAM]) == (EXPECTED, [])


@pytest.mark.parametrize("ending", [b"\r\n", b"\r"])
def test_other_line_endings(ending: bytes) -> None:
    assert parse_all([STREAM.replace(b"\n", ending)]) == (EXPECTED, [])


@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b"\r"])
def test_split_at_every_byte_boundary(ending: bytes) -> None:
    stream = STREAM.replace(b"\n", ending)
    for cut in range(len(stream) + 1):
        assert parse_all([stream[:cut], stream[cut:]]) == (EXPECTED, []), cut


@pytest.mark.parametrize("ending", [b"\n", b"\r\n"])
def test_split_at_every_pair_of_boundaries(ending: bytes) -> None:
    stream = STREAM.replace(b"\n", ending)[:90]
    parser_expected = parse_all([stream])
    for first in range(len(stream)):
        for second in range(first, len(stream) + 1):
            pieces = [stream[:first], stream[first:second], stream[second:]]
            assert parse_all(pieces) == parser_expected, (first, second)


def test_one_byte_at_a_time() -> None:
    stream = STREAM.replace(b"\n", b"\r\n")
    assert parse_all([stream[i : i + 1] for i in range(len(stream))]) == (EXPECTED, [])


def test_payloads_returned_as_soon_as_complete() -> None:
    parser = SSEParser()
    assert parser.feed(b'data: {"a"') == []
    assert parser.feed(b": 1}\n") == []
    assert parser.feed(b"\ndata: x\n\ndata: y\n\nda") == ['{"a": 1}', "x", "y"]
    assert parser.feed(b"ta: z\n\n") == ["z"]
    assert parser.events == 4
    assert parser.close() == []


def test_bom_and_extra_blank_lines() -> None:
    assert parse_all([b"\xef\xbb\xbfdata: a\n\n\n\n\ndata: b\n\n"]) == (["a", "b"], [])


def test_events_without_data_produce_nothing() -> None:
    assert parse_all([b": comment\n\nevent: ping\n\nid: 3\n\n"]) == ([], [])


def test_empty_data_line() -> None:
    assert parse_all([b"data\n\ndata:\n\n"]) == (["", ""], [])


def test_trailing_partial_event_is_returned_and_reported() -> None:
    payloads, problems = parse_all([b"data: a\n\ndata: [DONE]\n"])
    assert payloads == ["a", "[DONE]"]
    assert len(problems) == 1 and "ended inside an event" in problems[0]


def test_trailing_blank_line_only_is_fine() -> None:
    assert parse_all([b"data: a\n\n\n"]) == (["a"], [])


def test_non_sse_line_is_reported() -> None:
    payloads, problems = parse_all([b"data: a\n\n<html>oops</html>\n\ndata: b\n\n"])
    assert payloads == ["a", "b"]
    assert problems == ["not an SSE line: '<html>oops</html>'"]


def test_invalid_utf8_is_reported() -> None:
    payloads, problems = parse_all([b"data: \xff\xfe\n\n"])
    assert payloads == ["\ufffd\ufffd"]
    assert problems == ["event data is not valid UTF-8"]


def test_problems_are_bounded() -> None:
    payloads, problems = parse_all([b"junk\n\n" * 1000])
    assert payloads == []
    assert len(problems) == 20


def test_large_event_in_small_pieces_is_linear() -> None:
    big = b"data: " + b"x" * 2_000_000 + b"\n\n"
    parser = SSEParser()
    start = time.perf_counter()
    out: list[str] = []
    for i in range(0, len(big), 100):
        out += parser.feed(big[i : i + 100])
    assert time.perf_counter() - start < 5
    assert out == ["x" * 2_000_000]


def test_throughput_smoke() -> None:
    """Far below the real target (>=100k chunks/s): only catches gross regressions."""
    event = b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"tok"}}]}\n\n'
    parser = SSEParser()
    n = 20_000
    start = time.perf_counter()
    for _ in range(n):
        parser.feed(event)
    assert n / (time.perf_counter() - start) > 20_000
