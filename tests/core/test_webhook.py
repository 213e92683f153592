"""The webhook alert against a real HTTP receiver on loopback: delivered as JSON, every
failure one line (refused, HTTP error, timeout), the URL's secrets never in that line."""

from __future__ import annotations

import http.server
import json
import socket
import threading
from typing import Any

import pytest

from parity.core.errors import ConfigError
from parity.core.webhook import check_url, post_alert, shown_url
from tests.scripted_server import unused_port

SECRET = "s3cr3t-T0KEN-value"


class Receiver:
    """A webhook receiver on 127.0.0.1: records each POST's path, headers and JSON body and
    answers `status`."""

    def __init__(self, status: int = 204) -> None:
        self.posts: list[dict[str, Any]] = []
        posts = self.posts

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                posts.append(
                    {
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": json.loads(self.rfile.read(length)),
                    }
                )
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> Receiver:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_the_alert_arrives_as_json() -> None:
    with Receiver() as receiver:
        assert post_alert(f"{receiver.url}/hook?x=1", {"alerts": [{"metric": "accuracy"}]}) is None
    [post] = receiver.posts
    assert post["path"] == "/hook?x=1"
    assert post["headers"]["Content-Type"] == "application/json"
    assert post["body"] == {"alerts": [{"metric": "accuracy"}]}


def test_credentials_in_the_url_go_as_basic_auth_not_in_the_request_line() -> None:
    with Receiver() as receiver:
        url = receiver.url.replace("//", f"//hookuser:{SECRET}@")
        assert post_alert(f"{url}/hook", {}) is None
    [post] = receiver.posts
    assert post["headers"]["Authorization"].startswith("Basic ")
    assert SECRET not in post["path"]


@pytest.mark.parametrize("status", [500, 404])
def test_an_http_error_is_one_line_without_the_secret(status: int) -> None:
    with Receiver(status) as receiver:
        url = receiver.url.replace("//", f"//u:{SECRET}@") + f"/hooks/{SECRET}?token={SECRET}"
        line = post_alert(url, {})
    assert line is not None and "\n" not in line
    assert line.startswith(f"webhook {receiver.url}/...: HTTP {status}")
    assert SECRET not in line and "u:" not in line


def test_a_refused_connection_is_one_line() -> None:
    port = unused_port()
    line = post_alert(f"http://127.0.0.1:{port}/hooks/{SECRET}", {})
    assert (
        line == f"webhook http://127.0.0.1:{port}/...: Connection refused; the alert was not sent"
    )


def test_a_receiver_that_never_answers_times_out() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        line = post_alert(f"http://127.0.0.1:{port}/{SECRET}", {}, timeout_s=0.5)
    assert line == f"webhook http://127.0.0.1:{port}/...: timed out; the alert was not sent"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://hooks.slack.com/services/T0/B0/XYZ", "https://hooks.slack.com/..."),
        (f"https://u:{SECRET}@example.com:8443/?k={SECRET}", "https://example.com:8443/..."),
        ("http://[::1]:9000", "http://[::1]:9000"),
        ("http://example.com/", "http://example.com"),
    ],
)
def test_a_url_is_shown_without_what_may_be_secret(url: str, shown: str) -> None:
    assert shown_url(url) == shown


@pytest.mark.parametrize(
    "url", ["ftp://example.com/x", "example.com/hook", f"http://u:{SECRET}@:99999/"]
)
def test_a_bad_url_is_refused_in_one_line_without_the_secret(url: str) -> None:
    with pytest.raises(ConfigError) as refused:
        check_url(url)
    assert SECRET not in str(refused.value)
    assert str(refused.value).startswith("--webhook: ")
