"""Is an API key anywhere in this text or these bytes, in any form? A detector written
independently of `parity.core.secrets`, for tests that check that a key never leaks.

It looks for the key (and any `FRAGMENT` characters of it) in the data and in decoded views
of it: JSON escapes undone (`\\/`, `\\u00XX`, at any depth), URL-decoded (once and twice),
HTML references undone; and for the key's base64 forms at each byte alignment.
"""

from __future__ import annotations

import base64
import html
import re
import urllib.parse

FRAGMENT = 10
"""Any run of this many consecutive characters of a key counts as a leak."""

_UNICODE_ESCAPE = re.compile(r"\\+u([0-9a-fA-F]{4})")
_BACKSLASHED = re.compile(r"\\+([^\\u])")


def base64_forms(key: str) -> dict[str, bytes]:
    """The base64 characters computed from `key` alone, at each byte alignment, in the standard
    and the URL-safe alphabet."""
    forms: dict[str, bytes] = {}
    for offset in range(3):
        # Inside "x"*offset + key + "yy", characters 4 .. len-8 are computed from the key alone.
        padded = b"x" * offset + key.encode() + b"yy"
        forms[f"base64 +{offset}"] = base64.b64encode(padded)[4:-8]
        forms[f"base64url +{offset}"] = base64.urlsafe_b64encode(padded)[4:-8]
    return forms


def views(text: str) -> dict[str, str]:
    """`text` as is and decoded every way a key might have been encoded in it."""
    unescaped = text
    for _ in range(3):
        unescaped = _UNICODE_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), unescaped)
        unescaped = _BACKSLASHED.sub(lambda m: m.group(1), unescaped)
    out = {"as is": text, "JSON-unescaped": unescaped, "HTML-unescaped": html.unescape(text)}
    for name, base in list(out.items()):
        once = urllib.parse.unquote(base)
        out[f"{name}, URL-decoded"] = once
        out[f"{name}, URL-decoded (plus)"] = urllib.parse.unquote_plus(base)
        out[f"{name}, URL-decoded twice"] = urllib.parse.unquote(once)
    return out


def leaks(data: str | bytes, key: str) -> list[str]:
    """Where `key` is found in `data`: 'view: form' for each view in which the key, a
    `FRAGMENT`-character piece of it or one of its base64 forms appears."""
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    fragments = [key[i : i + FRAGMENT] for i in range(len(key) - FRAGMENT + 1)]
    encoded = base64_forms(key)
    found: list[str] = []
    for view_name, view in views(text).items():
        if key in view:
            found.append(f"{view_name}: the key")
        elif any(fragment in view for fragment in fragments):
            found.append(f"{view_name}: a fragment")
        blob = view.encode("utf-8", errors="replace")
        found += [f"{view_name}: {name}" for name, form in encoded.items() if form in blob]
    return found
