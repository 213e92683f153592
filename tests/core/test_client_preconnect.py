"""`ProviderClient.preconnect`: the pool is filled before a load run, and then used.

A real loopback server that counts the TCP connections it accepted and answers every POST
with a short keep-alive SSE stream."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator

import httpx
import pytest

from parity.core.client import PRECONNECT_BATCH, ProviderClient
from parity.core.config import Provider

BODY = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}


class CountingServer:
    def __init__(self) -> None:
        self.connections = 0
        self.requests = 0
        self.url = ""
        self._server: asyncio.Server | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.decode("latin-1").split("\r\n"):
                    if line.lower().startswith("content-length:"):
                        length = int(line.split(":", 1)[1])
                await reader.readexactly(length)
                self.requests += 1
                events = [
                    {"id": "c", "choices": [{"index": 0, "delta": {"content": "a"}}]},
                    {"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
                ]
                data = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
                raw = data.encode()
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(raw), raw)
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def __aenter__(self) -> CountingServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/v1"
        return self

    async def __aexit__(self, *_exc: object) -> None:
        assert self._server is not None
        self._server.close()


@pytest.fixture
async def server() -> AsyncIterator[CountingServer]:
    async with CountingServer() as s:
        yield s


def _provider(url: str, max_concurrency: int) -> Provider:
    return Provider(name="p", base_url=url, model="m", max_concurrency=max_concurrency, timeout_s=5)


async def _settle(server: CountingServer, connections: int) -> None:
    for _ in range(200):
        if server.connections >= connections:
            return
        await asyncio.sleep(0.01)


async def test_preconnect_opens_the_pool_and_the_requests_reuse_it(server: CountingServer) -> None:
    async with ProviderClient(_provider(server.url, 8), retries=0) as client:
        assert await client.preconnect(8) == 8
        await _settle(server, 8)
        assert server.connections == 8 and server.requests == 0  # nothing is sent
        assert await client.preconnect(8) == 8  # already full: none opened
        xs = await asyncio.gather(*(client.chat(BODY, stream=True) for _ in range(8)))
        assert all(x.ok for x in xs), [x.error_detail for x in xs]
        assert server.requests == 8
        assert server.connections == 8  # every request found a connection open


async def test_preconnect_is_capped_by_max_concurrency_and_batched(server: CountingServer) -> None:
    count = PRECONNECT_BATCH + 5  # more than one batch
    async with ProviderClient(_provider(server.url, count), retries=0) as client:
        assert await client.preconnect(count + 50) == count
        await _settle(server, count)
        assert server.connections == count
    async with ProviderClient(_provider(server.url, 3), retries=0) as client:
        assert await client.preconnect(10) == 3


async def test_preconnect_to_nothing_listening_returns_what_it_has() -> None:
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with ProviderClient(_provider(f"http://127.0.0.1:{port}/v1", 4), retries=0) as client:
        assert await client.preconnect(4) == 0
        x = await client.chat(BODY, stream=True)
        assert not x.ok and x.error is not None and x.error.value == "connect"


async def test_preconnect_with_an_injected_transport_opens_nothing() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(500))
    async with ProviderClient(_provider("http://p.invalid/v1", 4), transport=transport) as client:
        assert await client.preconnect(4) == 0
