"""The client's lean HTTP/1.1 stream reader (what made parity's client fast enough to
measure): framing edge cases the scripted scenarios of test_client.py do not cover."""

from __future__ import annotations

import gzip
import json

from parity.core.client import ProviderClient
from parity.core.config import Provider
from parity.core.exchange import ErrorClass
from tests.scripted_server import Reply, Request, ScriptedServer, chunk, usage_chunk

BODY = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}


def _events(pieces: list[str]) -> bytes:
    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": p}) for p in pieces]
    events += [chunk({}, "stop"), usage_chunk(completion_tokens=len(pieces))]
    text = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
    return text.encode()


async def gzipped(req: Request, reply: Reply) -> None:
    """A stream compressed although the client asked for identity."""
    await reply.start(headers={"Content-Encoding": "gzip"})
    data = gzip.compress(_events(["a", "b", "c"]))
    for start in range(0, len(data), 5):
        await reply.write(data[start : start + 5])
    await reply.end()


async def trailers(req: Request, reply: Reply) -> None:
    """Chunked with a chunk extension, one-byte writes of the framing and a trailer."""
    await reply.start()
    data = _events(["x", "y"])
    reply._writer.write(b"%x;ext=1\r\n%s\r\n" % (len(data), data))
    reply._writer.write(b"0\r\nX-Trailer: 1\r\n\r\n")
    await reply._writer.drain()
    reply.finished = True


async def close_after(req: Request, reply: Reply) -> None:
    """A complete keep-alive answer, then the server drops the idle connection."""
    await reply.start()
    await reply.write(_events(["ok"]))
    await reply.end()
    await reply.cut()


async def bad_chunk(req: Request, reply: Reply) -> None:
    """Broken chunked framing after a first good event."""
    await reply.start()
    await reply.write(_events([])[:120])
    reply._writer.write(b"zz\r\nnot hex\r\n")
    await reply._writer.drain()
    await reply.cut()


SCENARIOS = {"gz": gzipped, "trailers": trailers, "close-after": close_after, "bad": bad_chunk}


def _provider(base: str) -> Provider:
    return Provider(name="p", base_url=base, model="m", timeout_s=2)


async def test_gzip_and_trailers_and_keep_alive() -> None:
    with ScriptedServer(scenarios=SCENARIOS) as server:
        async with ProviderClient(_provider(server.base("gz")), retries=0) as client:
            first = await client.chat(BODY, stream=True)
            second = await client.chat(BODY, stream=True)
        assert first.ok and first.text == "abc" and second.ok, first.error_detail
        assert len(first.timings.token_chunks) == 3
        async with ProviderClient(_provider(server.base("trailers")), retries=0) as client:
            ex = await client.chat(BODY, stream=True)
        assert ex.ok and ex.text == "xy", ex.error_detail


async def test_a_dropped_idle_connection_is_replaced() -> None:
    with ScriptedServer(scenarios=SCENARIOS) as server:
        async with ProviderClient(_provider(server.base("close-after")), retries=0) as client:
            results = [await client.chat(BODY, stream=True) for _ in range(3)]
        assert all(x.ok and x.text == "ok" and x.attempts == 1 for x in results)
        assert server.count("close-after") == 3


async def test_broken_framing_is_a_malformed_stream() -> None:
    with ScriptedServer(scenarios=SCENARIOS) as server:
        async with ProviderClient(_provider(server.base("bad")), retries=0) as client:
            ex = await client.chat(BODY, stream=True)
    assert ex.error is ErrorClass.MALFORMED_STREAM and ex.status == 200
    assert ex.error_detail is not None and "response broken off" in ex.error_detail
    assert ex.timings.end is not None
