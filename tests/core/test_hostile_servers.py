"""Hostile servers, against the real client over loopback: every way a provider (or what
stands in front of it) misbehaves ends as a classified Exchange, bounded in time, and one
provider's misbehaviour never holds another's requests.

Timings are wall clock and loose on purpose (a stall must end within 3x `timeout_s`, never
"within 10 ms"): the machine is shared.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import sqlite3
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from parity import __version__
from parity.core.client import (
    TRANSPORT,
    Availability,
    ProviderClient,
    request_deadline,
)
from parity.core.config import Provider
from parity.core.errors import ConfigError
from parity.core.exchange import ErrorClass, Exchange, Timings
from parity.core.lifecycle import DeadlineReached
from parity.core.request import Request as Planned
from parity.core.runner import Runner
from parity.core.store import Store
from tests.scripted_server import (
    OK_PIECES,
    ForwardProxy,
    Reply,
    Request,
    ScriptedServer,
    chunk,
    error_body,
    unused_port,
    usage_chunk,
)

T = 1.0  # timeout_s of the hostile cases
BODY: dict[str, Any] = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}
DIRECT = {"client": f"{TRANSPORT} {__version__}", "http": "HTTP/1.1", "proxy": None}
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture(autouse=True)
def no_proxy_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer(scenarios=EXTRA) as running:
        yield running


def provider(base_url: str, **overrides: Any) -> Provider:
    settings: dict[str, Any] = {"name": "p", "base_url": base_url, "model": "m", "timeout_s": T}
    settings.update(overrides)
    return Provider(**settings)


async def chat(
    base_url: str, *, stream: bool = True, retries: int = 0, **overrides: Any
) -> Exchange:
    client = ProviderClient(
        provider(base_url, **overrides), retries=retries, backoff_s=0.01, max_backoff_s=0.02
    )
    async with client:
        exchange = await client.chat(BODY, stream=stream)
    Exchange.from_dict(json.loads(json.dumps(exchange.to_dict())))  # storable as is
    return exchange


async def timed(base_url: str, **kw: Any) -> tuple[Exchange, float]:
    start = time.monotonic()
    exchange = await chat(base_url, **kw)
    return exchange, time.monotonic() - start


# ---- scenarios of this file ------------------------------------------------------------------


def _events_text(pieces: list[str]) -> str:
    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": p}) for p in pieces]
    events += [chunk({}, "stop"), usage_chunk(completion_tokens=len(pieces))]
    return "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"


async def cut_in_head(req: Request, reply: Reply) -> None:
    reply._writer.write(b"HTTP/1.1 200 OK\r\nContent-Ty")
    await reply.cut()


async def close_at_once(req: Request, reply: Reply) -> None:
    await reply.cut()


async def short_body(req: Request, reply: Reply) -> None:
    """Content-Length promises more than comes."""
    reply._writer.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n"
        b'{"choices": [{"message": {"content": "Hel'
    )
    await reply.cut()


async def cut_mid_chunk(req: Request, reply: Reply) -> None:
    await reply.start()
    data = _events_text(["a", "b"]).encode()
    reply._writer.write(b"%x\r\n%s" % (len(data) + 100, data))
    await reply.cut()


async def cr_only(req: Request, reply: Reply) -> None:
    """Lone CR line endings (allowed by the SSE spec) and comments between events."""
    await reply.start()
    text = (
        _events_text(OK_PIECES).replace("\n", "\r").replace("data: [DONE]", ": x\r\rdata: [DONE]")
    )
    await reply.write(text)
    await reply.end()


async def bad_utf8_stream(req: Request, reply: Reply) -> None:
    await reply.start()
    good = json.dumps(chunk({"content": "ok"})).encode()
    broken = good.replace(b'"ok"', b'"o\xff\xfek"')
    await reply.write(b"data: " + broken + b"\n\n")
    await reply.write(b"data: " + json.dumps(chunk({}, "stop")).encode() + b"\n\ndata: [DONE]\n\n")
    await reply.end()


async def bad_utf8_body(req: Request, reply: Reply) -> None:
    await reply.send(
        200, b'{"choices": [{"message": {"content": "\xff\xfe"}}]}', content_type="application/json"
    )


async def odd_header_bytes(req: Request, reply: Reply) -> None:
    """A header value that is not UTF-8 (latin-1 bytes), then a good stream."""
    reply._writer.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nX-Odd: caf\xe9\xff\r\n"
        b"Connection: close\r\n\r\n" + _events_text(["hi"]).encode()
    )
    await reply.cut()


def _redirect(status: int) -> Any:
    async def handler(req: Request, reply: Reply) -> None:
        await reply.send(status, "", headers={"Location": "/ok/v1/chat/completions"})

    return handler


NGINX_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


async def html_502(req: Request, reply: Reply) -> None:
    await reply.send(502, NGINX_502, content_type="text/html")


STATUSES = (400, 401, 403, 404, 405, 408, 409, 413, 415, 422, 429)
STATUSES += (500, 501, 502, 503, 504, 520, 529)
SHAPES = ("openai", "text", "html", "empty", "close", "chunked")


def _status_handler(status: int, shape: str) -> Any:
    async def handler(req: Request, reply: Reply) -> None:
        message = f"scripted {status} {shape}"
        if shape == "openai":
            await reply.send(status, error_body(message))
        elif shape == "text":
            await reply.send(status, message)
        elif shape == "html":
            await reply.send(
                status, f"<html><body><h1>{message}</h1></body></html>", content_type="text/html"
            )
        elif shape == "empty":
            await reply.send(status, b"")
        elif shape == "close":  # no length: the body ends when the connection does
            await reply.start(status, content_type="text/plain", chunked=False)
            await reply.write(message)
            await reply.end()
        else:
            await reply.start(status, content_type="application/json")
            await reply.write(json.dumps(error_body(message))[:10])
            await reply.write(json.dumps(error_body(message))[10:])
            await reply.end()

    return handler


EXTRA: dict[str, Any] = {
    "cut-in-head": cut_in_head,
    "close-at-once": close_at_once,
    "short-body": short_body,
    "cut-mid-chunk": cut_mid_chunk,
    "cr-only": cr_only,
    "bad-utf8-stream": bad_utf8_stream,
    "bad-utf8-body": bad_utf8_body,
    "odd-header-bytes": odd_header_bytes,
    "html-502": html_502,
    **{f"redirect-{s}": _redirect(s) for s in (301, 302, 303, 307, 308)},
    **{f"s{s}-{shape}": _status_handler(s, shape) for s in STATUSES for shape in SHAPES},
}


# ---- deadlines: stalls and the whole-request limit -------------------------------------------


async def test_keep_alive_comments_forever_are_a_stall(server: ScriptedServer) -> None:
    ex, elapsed = await timed(server.base("ping-forever"))
    assert ex.error is ErrorClass.TIMEOUT and ex.status == 200, ex.error_detail
    assert ex.error_detail is not None and ex.error_detail.startswith("stalled: no data event")
    assert "comments or keep-alive" in ex.error_detail
    assert len(ex.chunks) == 1  # the role chunk that came is kept
    assert elapsed < 3 * T


async def test_one_byte_at_a_time_is_a_stall(server: ScriptedServer) -> None:
    ex, elapsed = await timed(server.base("byte-drip"))
    assert ex.error is ErrorClass.TIMEOUT and ex.error_detail is not None
    assert ex.error_detail.startswith("stalled")
    assert elapsed < 3 * T


async def test_a_live_stream_without_end_meets_its_deadline(server: ScriptedServer) -> None:
    ex, elapsed = await timed(server.base("events-forever"), deadline_s=1.5)
    assert ex.error is ErrorClass.TIMEOUT and ex.error_detail is not None, ex.error_detail
    assert ex.error_detail.startswith("deadline: no complete answer within 1.5 s")
    assert len(ex.chunks) > 3 and ex.text.startswith("tok tok")  # what arrived is kept
    assert ex.timings.end is not None
    assert elapsed < 3 * 1.5


async def test_a_never_answering_server_times_out(server: ScriptedServer) -> None:
    for stream in (True, False):
        ex, elapsed = await timed(server.base("hang"), stream=stream)
        assert ex.error is ErrorClass.TIMEOUT and ex.status is None
        assert ex.error_detail is not None and "no response head within 1 s" in ex.error_detail
        assert elapsed < 3 * T
    async with ProviderClient(provider(server.base("hang"))) as client:
        start = time.monotonic()
        probe = await client.list_models()
    assert not probe.reachable and probe.detail.startswith("timed out")
    assert time.monotonic() - start < 3 * T


async def test_a_server_that_never_accepts_times_out() -> None:
    with socket.socket() as sock:  # listening, never accept()ed: the handshake completes
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        ex, elapsed = await timed(f"http://127.0.0.1:{sock.getsockname()[1]}/v1")
    assert ex.error is ErrorClass.TIMEOUT and elapsed < 3 * T


def test_the_default_deadline() -> None:
    p = provider("http://h/v1", timeout_s=10)
    assert request_deadline(p, {"max_tokens": 50}) == 20
    assert request_deadline(p, {"max_completion_tokens": 100, "max_tokens": 5}) == 30
    assert request_deadline(p, {"max_output_tokens": 5}) == 11
    assert request_deadline(p, {}) == 10 + 4096 / 5
    assert request_deadline(p, {"max_tokens": True}) == 10 + 4096 / 5
    assert request_deadline(provider("http://h/v1", deadline_s=7), {"max_tokens": 50}) == 7


# ---- unavailability --------------------------------------------------------------------------


def _outcome(error: ErrorClass | None, status: int | None = None) -> Exchange:
    ex = Exchange(request={}, stream=False, timings=Timings(sent=0), status=status)
    ex.error, ex.error_detail = error, "x" if error else None
    return ex


def test_availability_counts_transport_failures_in_a_row() -> None:
    a = Availability()
    for ex in (_outcome(ErrorClass.CONNECT), _outcome(ErrorClass.TIMEOUT)):
        a.record(ex)
    assert not a.unavailable
    a.record(_outcome(ErrorClass.HTTP_4XX, 400))  # it answered: the count starts again
    for status in (502, 503, 504):
        a.record(_outcome(ErrorClass.HTTP_5XX, status))
    assert a.unavailable and "3 consecutive transport failures" in a.describe()
    a.record(_outcome(None, 200))
    assert not a.unavailable
    for ex in (_outcome(ErrorClass.HTTP_5XX, 500), _outcome(ErrorClass.RATE_LIMITED, 429)) * 3:
        a.record(ex)  # a model that crashes, a rate limit: the provider is there
    assert not a.unavailable


async def test_retries_stop_once_the_provider_is_unavailable() -> None:
    ex = await chat(f"http://127.0.0.1:{unused_port()}/v1", retries=10)
    assert ex.error is ErrorClass.CONNECT and ex.attempts == 3


def _planned(tag: str, sequential: int, concurrent: int) -> list[Planned]:
    def one(kind: str, i: int) -> Planned:
        body = {"messages": [{"role": "user", "content": f"{tag}/{kind}/{i}"}], "max_tokens": 8}
        return Planned(f"{kind}/{i}", kind, body, stream=True, sequential=kind == "speed")

    return [one("speed", i) for i in range(sequential)] + [
        one("other", i) for i in range(concurrent)
    ]


async def test_a_hung_provider_does_not_hold_another_and_resume_sends_the_rest(
    server: ScriptedServer, tmp_path: Path
) -> None:
    hung = provider(server.base("hang-chat"), name="hung", max_concurrency=2, timeout_s=0.5)
    good = provider(server.base("ok"), name="good", max_concurrency=2, timeout_s=5)
    finished: dict[str, float] = {}
    start = time.monotonic()

    def progress(name: str, done: int, total: int) -> None:
        if done == total:
            finished[name] = time.monotonic() - start

    plan = {"hung": _planned("hung", 3, 10), "good": _planned("good", 3, 10)}
    with Store(tmp_path / "p.db") as store:
        run_id = store.create_run("run", None, {}, __version__)
        async with Runner(store, run_id, [hung, good], retries=3, progress=progress) as runner:
            assert {p.name for p in await runner.preflight()} == {"hung", "good"}
            await runner.send(plan)
        total = time.monotonic() - start
        # The good provider was measured at once, in its own order: speed first, one by one.
        assert finished["good"] < 1.5 < total
        posts = [r for r in server.received("ok") if r.method == "POST"]
        contents = [r.json()["messages"][0]["content"] for r in posts]
        assert contents[:3] == ["good/speed/0", "good/speed/1", "good/speed/2"]
        # The hung one: 3 attempts of its first request, then nothing more was sent.
        assert server.count("hang-chat") == 3
        assert runner.stats.not_sent == {"hung": 12}
        assert runner.stats.unavailable["hung"].startswith(
            "unavailable: 3 consecutive transport failures"
        )
        assert (
            len(store.stored_keys(run_id, "hung")) == 1
            and len(store.stored_keys(run_id, "good")) == 13
        )
        (hung_row,) = [p for p in store.providers(run_id) if p["name"] == "hung"]
        assert hung_row["reachable"] is False and "12 request(s) not sent" in hung_row["detail"]

        # Resumed once it answers again: only what was held back is sent.
        back = hung.model_copy(update={"base_url": server.base("ok")})
        async with Runner(store, run_id, [back, good]) as runner:
            await runner.preflight()
            await runner.send(plan)
        assert runner.stats.sent == {"hung": 12, "good": 0}
        assert len(store.stored_keys(run_id, "hung")) == 13


async def test_a_hung_preflight_does_not_hold_another_provider(
    server: ScriptedServer, tmp_path: Path
) -> None:
    hung = provider(server.base("hang"), name="hung", timeout_s=2)
    good = provider(server.base("ok"), name="good", timeout_s=5)
    finished: dict[str, float] = {}
    start = time.monotonic()

    def progress(name: str, done: int, total: int) -> None:
        if done == total:
            finished[name] = time.monotonic() - start

    with Store(tmp_path / "p.db") as store:
        run_id = store.create_run("run", None, {}, __version__)
        async with Runner(store, run_id, [hung, good], progress=progress) as runner:
            answered = await runner.probe_and_send(lambda p: _planned(p.name, 2, 6))
        assert [p.name for p in answered] == ["good"]
        assert finished["good"] < 2 <= time.monotonic() - start  # before hung's probe ended
        assert runner.stats.unreachable["hung"].startswith("timed out")
        assert len(store.stored_keys(run_id, "good")) == 8
        assert server.count("hang") == 0  # no completion was sent to it


async def test_max_time_stops_sending_and_keeps_what_is_stored(
    server: ScriptedServer, tmp_path: Path
) -> None:
    slow = provider(server.base("events-forever"), name="slow", timeout_s=5, deadline_s=60)
    good = provider(server.base("ok"), name="good", timeout_s=5)
    plan = {"slow": _planned("slow", 1, 4), "good": _planned("good", 1, 4)}
    with Store(tmp_path / "p.db") as store:
        run_id = store.create_run("run", None, {}, __version__)
        start = time.monotonic()
        with pytest.raises(DeadlineReached):
            async with Runner(store, run_id, [slow, good], max_time_s=1.0) as runner:
                await runner.preflight()
                await runner.send(plan)
        assert 1.0 <= time.monotonic() - start < 3.0
        assert len(store.stored_keys(run_id, "good")) == 5
        assert store.stored_keys(run_id, "slow") == set()  # in flight, dropped: resume sends it


def _toml(name: str, base_url: str, **extra: Any) -> str:
    lines = ["[[provider]]", f'name = "{name}"', f'base_url = "{base_url}"', 'model = "m"']
    lines += [f"{k} = {json.dumps(v)}" for k, v in extra.items()]
    return "\n".join(lines) + "\n\n"


def _parity(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k.upper() not in PROXY_VARIABLES}
    return subprocess.run(
        [sys.executable, "-m", "parity", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**clean, "COLUMNS": "200", **(env or {})},
    )


def test_max_time_ends_the_run_interrupted_with_the_resume_hint(
    server: ScriptedServer, tmp_path: Path
) -> None:
    path = tmp_path / "providers.toml"
    path.write_text(
        _toml("good", server.base("ok"), reference=True)
        + _toml("slow", server.base("events-forever"))
    )
    db = tmp_path / "p.db"
    start = time.monotonic()
    result = _parity("run", str(path), "--db", str(db), "--repeats", "1", "--max-time", "2")
    assert time.monotonic() - start < 30
    assert result.returncode == 130, result.stderr
    assert "Traceback" not in result.stderr
    (run_id, status) = sqlite3.connect(db).execute("SELECT id, status FROM runs").fetchone()
    assert status == "interrupted"
    assert f"continue with: parity run --db {db} --resume {run_id}" in result.stderr


# ---- what comes back: pages, cuts, framing, encodings ----------------------------------------


@pytest.mark.parametrize("stream", [True, False])
async def test_an_html_error_page(server: ScriptedServer, stream: bool) -> None:
    ex = await chat(server.base("html-502"), stream=stream)
    assert ex.error is ErrorClass.HTTP_5XX and ex.status == 502
    assert ex.error_detail is not None and ex.error_detail.startswith("HTTP 502: <html>")
    assert "502 Bad Gateway" in ex.error_detail and ex.raw == NGINX_502


async def test_html_instead_of_a_stream(server: ScriptedServer) -> None:
    ex = await chat(server.base("html"))
    assert ex.error is ErrorClass.MALFORMED_STREAM and "text/html" in (ex.error_detail or "")


@pytest.mark.parametrize(
    ("scenario", "stream", "kind", "words"),
    [
        ("cut", True, ErrorClass.MALFORMED_STREAM, "response broken off"),
        ("cut-mid-chunk", True, ErrorClass.MALFORMED_STREAM, "response broken off"),
        ("cut-in-head", True, ErrorClass.CONNECT, "Server disconnected"),
        ("close-at-once", False, ErrorClass.CONNECT, "Server disconnected"),
        ("short-body", False, ErrorClass.INVALID_JSON, "response broken off"),
    ],
)
async def test_cut_connections(
    server: ScriptedServer, scenario: str, stream: bool, kind: ErrorClass, words: str
) -> None:
    ex, elapsed = await timed(server.base(scenario), stream=stream)
    assert ex.error is kind and words in (ex.error_detail or ""), ex.error_detail
    assert ex.timings.end is not None and elapsed < 3 * T


@pytest.mark.parametrize("scenario", ["crlf", "cr-only"])
async def test_line_endings_and_comments(server: ScriptedServer, scenario: str) -> None:
    ex = await chat(server.base(scenario))
    assert ex.ok, ex.error_detail
    assert ex.text in ("Hello there", "Hello, world!")


async def test_a_10_mb_event(server: ScriptedServer) -> None:
    ex = await chat(server.base("big-event"), timeout_s=10)
    assert ex.ok, ex.error_detail
    assert len(ex.text) == 10 * 1024 * 1024 and len(ex.timings.token_chunks) == 1


async def test_invalid_utf8(server: ScriptedServer) -> None:
    ex = await chat(server.base("bad-utf8-stream"))
    assert ex.error is ErrorClass.MALFORMED_STREAM
    assert "not valid UTF-8" in (ex.error_detail or "") and ex.text.startswith("o")
    ex = await chat(server.base("bad-utf8-body"), stream=False)
    assert ex.error is ErrorClass.INVALID_JSON and ex.raw is not None
    ex = await chat(server.base("odd-header-bytes"))
    assert ex.ok and ex.text == "hi", ex.error_detail


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("stream", [True, False])
async def test_redirects_are_not_followed(
    server: ScriptedServer, status: int, stream: bool
) -> None:
    ex = await chat(server.base(f"redirect-{status}"), stream=stream)
    assert ex.error is ErrorClass.HTTP_4XX and ex.status == status
    assert ex.error_detail == f"HTTP {status} redirect to /ok/v1/chat/completions"
    assert server.count("ok") == 0


@pytest.fixture(scope="module")
def status_server() -> Iterator[ScriptedServer]:
    with ScriptedServer(scenarios=EXTRA) as running:
        yield running


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("status", STATUSES)
async def test_every_error_status_and_shape(
    status_server: ScriptedServer, status: int, shape: str
) -> None:
    for stream in (True, False):
        ex = await chat(status_server.base(f"s{status}-{shape}"), stream=stream)
        expected = (
            ErrorClass.RATE_LIMITED
            if status == 429
            else ErrorClass.HTTP_5XX
            if status >= 500
            else ErrorClass.HTTP_4XX
        )
        assert ex.error is expected and ex.status == status and ex.attempts == 1
        assert ex.error_detail is not None and ex.error_detail.startswith(f"HTTP {status}")
        if shape != "empty":
            assert f"scripted {status} {shape}" in (ex.raw or "")


async def test_a_gzipped_stream_is_decoded_and_not_buffered(server: ScriptedServer) -> None:
    ex = await chat(server.base("gzip-stream"))
    assert ex.ok and ex.text == "Hello, world!", ex.error_detail
    (received,) = server.received("gzip-stream")
    assert received.headers["accept-encoding"] == "identity"
    chunks = ex.timings.token_chunks
    assert len(chunks) == 4 and (chunks[-1] - chunks[0]) / 1e6 > 40  # as they were flushed


# ---- proxies ---------------------------------------------------------------------------------


async def test_a_proxy_for_other_hosts_changes_nothing(
    server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    baseline = await chat(server.base("ok"))
    dead = f"http://127.0.0.1:{unused_port()}"
    for name in ("HTTP_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, dead)
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    for stream in (True, False):
        ex = await chat(server.base("ok"), stream=stream)
        assert ex.ok and ex.transport == baseline.transport
        assert ex.transport == {**DIRECT, "accept_encoding": "identity"}
    assert {r.headers["accept-encoding"] for r in server.received("ok")} == {"identity"}
    async with ProviderClient(provider(server.base("ok"))) as client:
        assert (await client.list_models()).reachable


async def test_an_https_proxy_variable_does_not_touch_http_targets(
    server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{unused_port()}")
    ex = await chat(server.base("ok"))
    assert ex.ok and ex.transport is not None and ex.transport["proxy"] is None


async def test_an_http_proxy_that_applies_is_used_and_recorded(
    server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ForwardProxy() as proxy:
        host_port = proxy.url.removeprefix("http://")
        monkeypatch.setenv("http_proxy", f"http://user:secret@{host_port}")
        streamed = await chat(server.base("ok"))
        plain = await chat(server.base("ok"), stream=False)
    for ex in (streamed, plain):
        assert ex.ok and ex.text == "Hello, world!", ex.error_detail
        assert ex.transport == {**DIRECT, "proxy": proxy.url, "accept_encoding": "identity"}
    assert proxy.lines == [f"POST {server.url}/ok/v1/chat/completions HTTP/1.1"] * 2
    assert "secret" not in json.dumps(streamed.to_dict())


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl CLI")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost"),
            *("-addext", "subjectAltName=DNS:localhost"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


async def test_https_through_a_connect_tunnel(
    certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = certificate
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    with ScriptedServer(tls=context) as server, ForwardProxy() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        ex = await chat(server.base("ok"))
        plain = await chat(server.base("ok"), stream=False)
    assert ex.ok and plain.ok and ex.text == "Hello, world!", ex.error_detail
    assert ex.transport is not None and ex.transport["proxy"] == proxy.url
    port = server.url.rsplit(":", 1)[1]
    assert proxy.lines == [f"CONNECT localhost:{port} HTTP/1.1"] * 2


async def test_a_proxy_that_refuses_the_tunnel_is_a_connect_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    proxy = await asyncio.start_server(refuse, "127.0.0.1", 0)
    async with proxy:
        monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.sockets[0].getsockname()[1]}")
        ex = await chat("https://provider.invalid/v1")
    assert ex.error is ErrorClass.CONNECT and "HTTP 407" in (ex.error_detail or "")


def test_a_socks_proxy_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALL_PROXY", "socks5://user:pw@127.0.0.1:1080")
    with pytest.raises(ConfigError) as caught:
        ProviderClient(provider("http://api.example.com/v1"))
    message = str(caught.value)
    assert "\n" not in message and "SOCKS" in message and "NO_PROXY=api.example.com" in message
    assert "pw" not in message
    monkeypatch.setenv("NO_PROXY", ".example.com")
    ProviderClient(provider("http://api.example.com/v1"))  # exempt: no proxy, no error


def test_a_socks_proxy_on_the_command_line(server: ScriptedServer, tmp_path: Path) -> None:
    path = tmp_path / "providers.toml"
    path.write_text(_toml("a", server.base("ok"), reference=True))
    db = tmp_path / "p.db"
    result = _parity("run", str(path), "--db", str(db), env={"ALL_PROXY": "socks5://127.0.0.1:1"})
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if "SOCKS" in line]
    assert len(lines) == 1 and lines[0].startswith("parity: error: provider a: ALL_PROXY")
    statuses = {row[0] for row in sqlite3.connect(db).execute("SELECT status FROM runs")}
    assert "running" not in statuses
    assert server.count("ok") == 0
