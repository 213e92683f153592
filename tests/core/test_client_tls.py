"""Streaming over HTTPS: the client's own HTTP/1.1 stream reader must do TLS (SNI, certificate
verification) like httpx does, against a real TLS server on loopback with a throwaway
certificate that the client is told to trust through SSL_CERT_FILE."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path

import pytest

from parity.core.config import Provider
from parity.core.exchange import ErrorClass
from tests.scripted_server import ScriptedServer

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


async def test_streams_over_https_with_a_trusted_certificate(
    certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from parity.core.client import ProviderClient

    cert, key = certificate
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    with ScriptedServer(tls=server_context(cert, key)) as server:
        provider = Provider(name="tls", base_url=server.base("ok"), model="m")
        async with ProviderClient(provider, retries=0) as client:
            streamed = await client.chat(
                {"messages": [{"role": "user", "content": "hi"}]}, stream=True
            )
            plain = await client.chat(
                {"messages": [{"role": "user", "content": "hi"}]}, stream=False
            )
    assert streamed.ok, streamed.error_detail
    assert streamed.text == plain.text == "Hello, world!"
    assert streamed.timings.first_token_chunk is not None and streamed.usage


async def test_an_untrusted_certificate_is_a_connect_error_not_a_crash(
    certificate: tuple[Path, Path],
) -> None:
    from parity.core.client import ProviderClient

    cert, key = certificate
    with ScriptedServer(tls=server_context(cert, key)) as server:
        provider = Provider(name="tls", base_url=server.base("ok"), model="m")
        async with ProviderClient(provider, retries=0) as client:
            streamed = await client.chat(
                {"messages": [{"role": "user", "content": "hi"}]}, stream=True
            )
    assert streamed.error is ErrorClass.CONNECT
    assert "certificate" in (streamed.error_detail or "").lower()
