"""Request ids: every request parity sends carries a fresh one (a UUID4 per attempt) in the
provider's request id header, and the Exchange keeps it with the ids the provider answered
with (body `id`, id headers), against the scripted loopback server."""

from __future__ import annotations

import asyncio
import io
import sqlite3
import uuid
from typing import Any

import httpx
import orjson
import pytest
from rich.console import Console

from parity.core.client import PROVIDER_ID_HEADERS, ProviderClient
from parity.core.config import REQUEST_ID_HEADER, Provider, ProvidersFile, parse_providers
from parity.core.errors import ConfigError
from parity.core.exchange import Exchange, Timings
from parity.core.session import CHECK_CHAT, check_providers
from parity.core.store import Store
from tests.scripted_server import (
    OK_PIECES,
    Handler,
    Reply,
    Request,
    ScriptedServer,
    chunk,
    completion,
    usage_chunk,
)

KEY = "sk-test-0123456789abcdefXYZ"
BODY = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}
ID_HEADERS = {
    "x-request-id": "srv-req-42",
    "cf-ray": "8a1b2c3d4e5f-AMS",
    "openai-processing-ms": "12",
    "set-cookie": "session=s3cr3t; HttpOnly",
    "x-ratelimit-remaining-requests": "99",
}


async def with_ids(req: Request, reply: Reply) -> None:
    """An OpenAI-like provider: id headers (and others that must not be stored), a body id;
    streamed, the first chunk's id differs from the later ones'."""
    headers = {
        **ID_HEADERS,
        "x-echo": req.headers.get("authorization", ""),
        "x-client-request-id": req.headers.get("x-client-request-id", ""),
    }
    if not req.stream:
        body = {**completion({"content": "".join(OK_PIECES)}), "id": "chatcmpl-body-1"}
        if req.endpoint == "/responses":
            body = {
                "id": "resp_abc",
                "object": "response",
                "status": "completed",
                "output": [
                    {"type": "message", "content": [{"type": "output_text", "text": "Hello"}]}
                ],
            }
        await reply.send(200, body, headers=headers)
        return
    await reply.start(headers=headers)
    await reply.event({**chunk({"role": "assistant", "content": ""}), "id": "chatcmpl-first"})
    for piece in OK_PIECES:
        await reply.event({**chunk({"content": piece}), "id": "chatcmpl-later"})
    await reply.event(chunk({}, "stop"))
    await reply.event(usage_chunk())
    await reply.done()


async def key_in_id(req: Request, reply: Reply) -> None:
    """A provider that puts the Authorization header it got into its x-request-id and body id."""
    auth = req.headers.get("authorization", "")
    body = {**completion({"content": "ok"}), "id": auth}
    await reply.send(200, body, headers={"x-request-id": auth})


async def flaky(req: Request, reply: Reply) -> None:
    """503 (Retry-After: 0) twice, then a good answer."""
    if req.seq <= 2:
        await reply.send(503, {"error": {"message": "busy"}}, headers={"Retry-After": "0"})
    else:
        await reply.send(200, completion({"content": "ok"}), headers={"x-request-id": "srv-3"})


SCENARIOS: dict[str, Handler] = {"ids": with_ids, "key-in-id": key_in_id, "flaky": flaky}


@pytest.fixture(scope="module")
def server() -> Any:
    with ScriptedServer(scenarios=SCENARIOS) as running:
        yield running


def provider(server: ScriptedServer, scenario: str, **kw: Any) -> Provider:
    return Provider(name="p", base_url=server.base(scenario), model="m", **kw)


def is_uuid4(value: str) -> bool:
    return uuid.UUID(value).version == 4 and str(uuid.UUID(value)) == value


async def every_kind(client: ProviderClient) -> list[Exchange]:
    """A plain and a streamed chat completion, a Responses API call and GET /models."""
    plain = await client.chat(dict(BODY), stream=False)
    streamed = await client.chat(dict(BODY), stream=True)
    responses = await client.chat({"input": "hi"}, stream=False, endpoint="responses")
    await client.list_models()
    return [plain, streamed, responses]


def test_every_request_carries_a_fresh_uuid4(server: ScriptedServer) -> None:
    async def go() -> list[Exchange]:
        async with ProviderClient(provider(server, "ids")) as client:
            return await every_kind(client) + await every_kind(client)

    exchanges = asyncio.run(go())
    got = server.received("ids")
    assert len(got) == 8
    sent = [r.headers.get("x-request-id") for r in got]
    assert all(value is not None and is_uuid4(value) for value in sent)
    assert len(set(sent)) == len(sent)  # unique, also on a reused keep-alive connection
    posts = [r.headers["x-request-id"] for r in got if r.method == "POST"]
    assert [x.request_id for x in exchanges] == posts
    assert all(x.attempt_ids == [x.request_id] for x in exchanges)
    assert REQUEST_ID_HEADER == "X-Request-ID"


def test_models_probe_and_the_providers_check_chat_carry_one(server: ScriptedServer) -> None:
    async def go() -> Any:
        async with ProviderClient(provider(server, "ok")) as client:
            return await client.list_models()

    before = len(server.received("ok"))
    probe = asyncio.run(go())
    (got,) = server.received("ok")[before:]
    assert got.method == "GET" and probe.request_id == got.headers["x-request-id"]

    providers = ProvidersFile(provider=[provider(server, "ok")])
    out = io.StringIO()
    assert asyncio.run(check_providers(providers, Console(file=out, width=200)))
    checked = server.received("ok")[before + 1 :]
    assert [r.method for r in checked] == ["GET", "POST"]
    assert orjson.loads(checked[1].body)["messages"] == CHECK_CHAT["messages"]
    ids = [r.headers.get("x-request-id") for r in checked]
    assert all(i and is_uuid4(i) for i in ids) and len(set(ids)) == 2


def test_each_retry_is_a_new_attempt_with_a_new_id(server: ScriptedServer) -> None:
    async def go() -> Exchange:
        async with ProviderClient(provider(server, "flaky"), retries=3, backoff_s=0) as client:
            return await client.chat(dict(BODY), stream=False)

    exchange = asyncio.run(go())
    sent = [r.headers["x-request-id"] for r in server.received("flaky")]
    assert exchange.ok and exchange.attempts == 3 and len(set(sent)) == 3
    assert exchange.attempt_ids == sent and exchange.request_id == sent[-1]
    assert exchange.provider_ids == {"x-request-id": "srv-3"}  # the last attempt's answer
    assert exchange.log_ids()["attempt_ids"] == sent


def test_a_custom_header_name(server: ScriptedServer) -> None:
    async def go() -> Exchange:
        named = provider(server, "ids", request_id_header="X-Client-Request-Id")
        async with ProviderClient(named) as client:
            return await client.chat(dict(BODY), stream=False)

    before = len(server.received("ids"))
    exchange = asyncio.run(go())
    (got,) = server.received("ids")[before:]
    assert "x-request-id" not in got.headers
    assert got.headers["x-client-request-id"] == exchange.request_id
    # The server echoes it: stored as one of the provider's ids, as it came back.
    assert exchange.provider_ids["x-client-request-id"] == exchange.request_id


def test_empty_header_name_sends_none(server: ScriptedServer) -> None:
    async def go() -> list[Exchange]:
        async with ProviderClient(provider(server, "ids", request_id_header="")) as client:
            return await every_kind(client)

    before = len(server.received("ids"))
    exchanges = asyncio.run(go())
    got = server.received("ids")[before:]
    assert len(got) == 4
    for r in got:
        assert not {"x-request-id", "x-client-request-id"} & set(r.headers)
    assert all(x.request_id is None and x.attempt_ids == [] for x in exchanges)
    assert exchanges[0].provider_ids["x-request-id"] == "srv-req-42"  # still stored


def test_the_providers_ids_are_stored_and_no_other_header(
    server: ScriptedServer, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("P_KEY", KEY)

    async def go() -> list[Exchange]:
        async with ProviderClient(provider(server, "ids", api_key_env="P_KEY")) as client:
            return await every_kind(client)

    plain, streamed, responses = asyncio.run(go())
    expected = {"x-request-id": "srv-req-42", "cf-ray": "8a1b2c3d4e5f-AMS"}
    for x in (plain, streamed, responses):
        assert x.ok and x.provider_ids == expected
    assert plain.response_id == "chatcmpl-body-1"
    assert streamed.response_id == "chatcmpl-first"  # the first chunk's
    assert responses.response_id == "resp_abc"
    assert set(expected) <= set(PROVIDER_ID_HEADERS)

    db = tmp_path / "p.db"
    with Store(db) as store:
        run = store.create_run("run", None, {}, "0.1.0")
        store.add_exchange(run, "p", "probe", "k/plain", plain)
        store.add_exchange(run, "p", "probe", "k/stream", streamed)
        back = {s.key: s.exchange for s in store.exchanges(run)}
    raw = b"".join(row[0] for row in sqlite3.connect(db).execute("SELECT data FROM exchanges"))
    assert back["k/plain"].request_id == plain.request_id
    assert back["k/plain"].attempt_ids == [plain.request_id]
    assert back["k/plain"].response_id == "chatcmpl-body-1"
    assert back["k/stream"].provider_ids == expected
    for never in (KEY.encode(), b"Bearer", b"s3cr3t", b"set-cookie", b"x-ratelimit", b"x-echo"):
        assert never not in raw


def test_a_key_echoed_in_an_id_is_redacted(
    server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("P_KEY", KEY)

    async def go() -> Exchange:
        async with ProviderClient(provider(server, "key-in-id", api_key_env="P_KEY")) as client:
            return await client.chat(dict(BODY), stream=False)

    exchange = asyncio.run(go())
    assert exchange.provider_ids == {"x-request-id": "Bearer ***"}
    assert exchange.response_id == "Bearer ***"
    assert KEY not in orjson.dumps(exchange.to_dict()).decode()


def test_an_injected_transport_gets_the_header_too() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = {**completion({"content": "ok"}), "id": "chatcmpl-mock"}
        return httpx.Response(200, json=body, headers={"request-id": "req_mock"})

    async def go() -> Exchange:
        named = Provider(name="p", base_url="http://mock/v1", model="m")
        async with ProviderClient(named, transport=httpx.MockTransport(handler)) as client:
            return await client.chat(dict(BODY), stream=False)

    exchange = asyncio.run(go())
    assert seen[0].headers["x-request-id"] == exchange.request_id
    assert exchange.provider_ids == {"request-id": "req_mock"}
    assert exchange.response_id == "chatcmpl-mock"


def test_old_exchanges_load_with_defaults(tmp_path: Any) -> None:
    new = Exchange(request={"model": "m"}, stream=False, timings=Timings(sent=1, end=2))
    new.request_id, new.attempt_ids = "id-1", ["id-1"]
    old = new.to_dict()
    for name in ("request_id", "attempt_ids", "response_id", "provider_ids"):
        del old[name]
    loaded = Exchange.from_dict(old)
    assert loaded.request_id is None and loaded.attempt_ids == []
    assert loaded.response_id is None and loaded.provider_ids == {}
    assert loaded.log_ids() == {}

    db = tmp_path / "old.db"
    with Store(db) as store:
        run = store.create_run("run", None, {}, "0.1.0")
        store.add_exchange(run, "p", "probe", "k", new)
    with sqlite3.connect(db) as conn:  # a row as an older parity wrote it
        conn.execute("UPDATE exchanges SET data = ?", (orjson.dumps(old),))
    with Store(db) as store:
        (stored,) = list(store.exchanges(run))
    assert stored.exchange == loaded


# ---- the providers file ----------------------------------------------------------------------


def load(**entry: Any) -> ProvidersFile:
    return parse_providers(
        {"provider": [{"name": "p", "base_url": "http://h/v1", "model": "m", **entry}]}, "f.toml"
    )


def test_the_header_setting_is_validated() -> None:
    assert load().providers[0].request_id_header == "X-Request-ID"
    assert load(request_id_header="").providers[0].request_id_header == ""
    assert (
        load(request_id_header="X-Client-Request-Id")
        .providers[0]
        .public_dict()["request_id_header"]
        == "X-Client-Request-Id"
    )
    for bad, words in (
        ("Authorization", "credential"),
        ("content-length", "parity sets itself"),
        ("X Request", "not a valid HTTP header name"),
        ("X-Id\r\nEvil: 1", "not a valid HTTP header name"),
    ):
        with pytest.raises(ConfigError, match=words) as caught:
            load(request_id_header=bad)
        assert "request_id_header" in str(caught.value)
    with pytest.raises(ConfigError, match="request id header") as caught:
        load(headers={"x-request-id": "fixed-value-maybe-secret"})
    assert "fixed-value-maybe-secret" not in str(caught.value)
    fixed = load(headers={"X-Request-ID": "fixed"}, request_id_header="").providers[0]
    assert fixed.public_dict()["headers"] == {"X-Request-ID": "<hidden>"}
