"""The providers file: which endpoints to measure, what they charge, which is the reference.

A providers file is TOML with one `[[provider]]` table per endpoint. Loading validates it
with pydantic and turns any problem into a single-line `ConfigError` naming the file, the
key and the problem. The API keys the file names (`api_key_env`) are checked as it loads
(`core.secrets.key_problem`); an error says which variable is wrong and how, never any part
of its value.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from parity.core.errors import ConfigError
from parity.core.secrets import key_problem

_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

REQUEST_ID_HEADER = "X-Request-ID"
"""The header that carries each attempt's request id unless a provider names another."""

# Headers parity writes itself, or that carry credentials: never a request id's name.
_NOT_REQUEST_ID = frozenset(
    (
        "authorization",
        "proxy-authorization",
        "cookie",
        "host",
        "accept",
        "accept-encoding",
        "connection",
        "content-type",
        "content-length",
        "transfer-encoding",
        "user-agent",
    )
)


class Provider(BaseModel):
    """One OpenAI-compatible endpoint serving the model under test."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    base_url: str
    model: str = Field(min_length=1)
    api_key_env: str | None = None
    price_input: float | None = Field(default=None, ge=0, description="$ per 1M input tokens")
    price_output: float | None = Field(default=None, ge=0, description="$ per 1M output tokens")
    extra_body: dict[str, Any] = Field(default_factory=dict)
    headers: dict[str, str] = Field(default_factory=dict)
    request_id_header: str = Field(
        default=REQUEST_ID_HEADER,
        description="the header each attempt's fresh request id (a UUID4) is sent in; '': none",
    )
    max_concurrency: int = Field(default=4, ge=1, le=1024)
    timeout_s: float = Field(default=120.0, gt=0)
    deadline_s: float | None = Field(
        default=None,
        gt=0,
        description="whole-request limit in s; default timeout_s + max_tokens / 5 (4096 if unset)",
    )
    context_window: int | None = Field(default=None, ge=16, description="advertised, in tokens")
    reference: bool = False

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("headers")
    @classmethod
    def _no_auth_header(cls, value: dict[str, str]) -> dict[str, str]:
        if any(key.lower() == "authorization" for key in value):
            raise ValueError("put the key in an environment variable and name it in api_key_env")
        for name, text in value.items():
            # Names them, never the values: a value refused here may be a secret.
            if not _HEADER_NAME.match(name):
                raise ValueError(f"{name!r} is not a valid HTTP header name")
            if any(char != "\t" and (char < " " or char == "\x7f") for char in text):
                raise ValueError(f"the value of {name!r} holds a line break or control character")
            if any(char > "\xff" for char in text):
                raise ValueError(
                    f"the value of {name!r} holds a character HTTP/1.1 headers cannot carry"
                    " (not Latin-1)"
                )
        return value

    @field_validator("request_id_header")
    @classmethod
    def _request_id_header(cls, value: str) -> str:
        if value == "":
            return value
        if not _HEADER_NAME.match(value):
            raise ValueError(f"{value!r} is not a valid HTTP header name ('' sends none)")
        if value.lower() in _NOT_REQUEST_ID:
            raise ValueError(f"{value!r} is a header parity sets itself or a credential's")
        return value

    @model_validator(mode="after")
    def _request_id_not_in_headers(self) -> Provider:
        # A fixed value under the same name would be sent twice, and the value stored as the
        # request id could be one of `headers`, which may hold a secret.
        name = self.request_id_header.lower()
        if name and any(key.lower() == name for key in self.headers):
            raise ValueError(
                f"headers has {self.request_id_header!r}, the request id header: remove it, or "
                'set request_id_header = "" to send your fixed value instead'
            )
        return self

    def api_key(self) -> str | None:
        """The API key from the environment variable named by `api_key_env`, if set (an empty
        value counts as unset). Raises a one-line `ConfigError` naming the provider and the
        variable when the value cannot be a key (see `core.secrets.key_problem`)."""
        if not self.api_key_env:
            return None
        key = os.environ.get(self.api_key_env) or None
        problem = self.key_problem()
        if problem is not None:
            raise ConfigError(f"provider {self.name}: {problem}")
        return key

    def key_problem(self) -> str | None:
        """What is wrong with the key in `api_key_env`'s variable, as `api_key_env: ...` words
        that hold no part of it; None when it is fine or unset."""
        if not self.api_key_env:
            return None
        key = os.environ.get(self.api_key_env) or None
        problem = key_problem(key) if key else None
        if problem is None:
            return None
        return f"api_key_env: the key in ${self.api_key_env} {problem}"

    def blended_price(self) -> float | None:
        """(3 x input price + 1 x output price) / 4, in $ per 1M tokens."""
        if self.price_input is None or self.price_output is None:
            return None
        return (3 * self.price_input + self.price_output) / 4

    def cost_usd(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        """What the given token counts cost at this provider's list prices."""
        if self.price_input is None or self.price_output is None:
            return None
        return (prompt_tokens * self.price_input + completion_tokens * self.price_output) / 1e6

    def public_dict(self) -> dict[str, Any]:
        """The provider's settings with header values hidden: safe for the store and reports."""
        data = self.model_dump()
        data["headers"] = {key: "<hidden>" for key in self.headers}
        return data


class ProvidersFile(BaseModel):
    """A validated providers file."""

    model_config = ConfigDict(extra="forbid")

    provider: list[Provider] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names_one_reference(self) -> ProvidersFile:
        names = [p.name for p in self.provider]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"provider names must be unique, repeated: {', '.join(duplicates)}")
        if sum(p.reference for p in self.provider) > 1:
            raise ValueError("at most one provider may have reference = true")
        return self

    @property
    def providers(self) -> list[Provider]:
        """The providers in file order."""
        return self.provider

    def reference(self) -> Provider | None:
        """The provider marked `reference = true`, if any."""
        return next((p for p in self.provider if p.reference), None)


def parse_providers(data: dict[str, Any], source: str) -> ProvidersFile:
    """Validate already-parsed providers data and the API keys it names (in the environment
    now); errors name `source`, the key and the problem."""
    try:
        providers = ProvidersFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_describe(exc, data)}") from None
    for index, provider in enumerate(providers.provider):
        problem = provider.key_problem()
        if problem is not None:
            raise ConfigError(f"{source}: [[provider]] #{index + 1} ({provider.name}): {problem}")
    return providers


def load_providers(path: Path) -> ProvidersFile:
    """Read and validate a providers file, or raise one-line `ConfigError`."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    return parse_providers(data, str(path))


def _describe(exc: ValidationError, data: dict[str, Any]) -> str:
    """First validation problem as `key: problem`, with the provider's name where known."""
    error = exc.errors()[0]
    loc = list(error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    where = ""
    if len(loc) >= 2 and loc[0] == "provider" and isinstance(loc[1], int):
        index = loc[1]
        providers = data.get("provider")
        name = None
        if isinstance(providers, list) and index < len(providers):
            entry = providers[index]
            if isinstance(entry, dict):
                name = entry.get("name")
        where = f"[[provider]] #{index + 1}" + (f" ({name})" if name else "")
        loc = loc[2:]
    key = ".".join(str(part) for part in loc)
    if error["type"] == "extra_forbidden":
        message = "unknown key"
    if error["type"] == "missing":
        message = "required key is missing"
    parts = [part for part in (where, key) if part]
    more = len(exc.errors()) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return f"{': '.join(parts) + ': ' if parts else ''}{message}{suffix}"
