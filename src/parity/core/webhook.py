"""POST a JSON alert to a webhook URL, and say what happened in one line, never raising.

Webhook URLs often carry their secret (`https://user:token@host/...`, a token in the path as
Slack's and Discord's do, or `?token=`), so a URL is only ever shown as `shown_url` gives it:
scheme, host and port, the rest elided. Error texts are scrubbed of every part of the URL.
"""

from __future__ import annotations

import base64
import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from parity import __version__
from parity.core.errors import ConfigError

__all__ = ["TIMEOUT_S", "check_url", "post_alert", "shown_url"]

TIMEOUT_S = 10.0
"""Seconds to connect and get the answer; a webhook slower than that has failed."""


def check_url(url: str) -> str:
    """`url` when it is an http(s) URL with a host; a one-line `ConfigError` (showing no
    credentials) otherwise."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"--webhook: {shown_url(url)} is not an http:// or https:// URL")
    try:
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise ConfigError(f"--webhook: {shown_url(url)} has a bad port") from None
    return url


def shown_url(url: str) -> str:
    """The URL as it may be printed: `scheme://host[:port]/...` (no user, password, path,
    query or fragment, where secrets live)."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or "?"
        port = parts.port
    except ValueError:
        return "<a webhook URL>"
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port else host
    rest = "/..." if (parts.path.strip("/") or parts.query or parts.fragment) else ""
    return f"{parts.scheme or '?'}://{netloc}{rest}"


def _secrets(url: str) -> list[str]:
    parts = urllib.parse.urlsplit(url)
    pieces = [url, parts.netloc, parts.path, parts.query, parts.fragment]
    pieces += [parts.username or "", parts.password or ""]
    pieces += [urllib.parse.unquote(p) for p in pieces]
    return sorted({p for p in pieces if len(p) > 1}, key=len, reverse=True)


def _scrub(text: str, url: str) -> str:
    for secret in _secrets(url):
        text = text.replace(secret, "...")
    return " ".join(text.split())


def post_alert(url: str, payload: Any, timeout_s: float = TIMEOUT_S) -> str | None:
    """POST `payload` as JSON to `url`. Returns None when the receiver answered 2xx, else
    one line saying why not (HTTP status, refused, timed out), naming the URL only as
    `shown_url` does. Never raises for a network or HTTP failure."""
    body = json.dumps(payload).encode("utf-8")
    parts = urllib.parse.urlsplit(url)
    headers = {"Content-Type": "application/json", "User-Agent": f"parity/{__version__}"}
    target = url
    if parts.username is not None or parts.password is not None:
        # urllib does not send userinfo itself: as HTTP Basic auth, and off the URL.
        user = urllib.parse.unquote(parts.username or "")
        password = urllib.parse.unquote(parts.password or "")
        token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        headers["Authorization"] = f"Basic {token}"
        netloc = parts.hostname or ""
        netloc = f"[{netloc}]" if ":" in netloc else netloc
        if parts.port:
            netloc += f":{parts.port}"
        target = urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    request = urllib.request.Request(target, data=body, headers=headers, method="POST")
    where = f"webhook {shown_url(url)}"
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as answer:
            status = answer.status
    except urllib.error.HTTPError as exc:
        return f"{where}: HTTP {exc.code} {_scrub(str(exc.reason), url)}; the alert was not taken"
    except urllib.error.URLError as exc:
        reason = exc.reason
        text = reason.strerror if isinstance(reason, OSError) and reason.strerror else reason
        return f"{where}: {_scrub(str(text), url)}; the alert was not sent"
    except (OSError, ValueError, http.client.HTTPException) as exc:  # timeouts, resets, ...
        text = "timed out" if isinstance(exc, TimeoutError) else str(exc) or type(exc).__name__
        return f"{where}: {_scrub(text, url)}; the alert was not sent"
    if not 200 <= status < 300:
        return f"{where}: HTTP {status}; the alert was not taken"
    return None
