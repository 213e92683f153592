"""Quick mode: one endpoint (and optionally a reference) from the command line, no file.

    parity run --base-url http://127.0.0.1:8710/v1 --model smollm2
    OPENAI_BASE_URL=http://127.0.0.1:8710/v1 parity conform

The endpoint becomes a provider named `endpoint` (the reference, when given, `reference`),
exactly as if a providers file had said so. Fallbacks, as the OpenAI SDK and the K2 Vendor
Verifier read them: the URL from `OPENAI_BASE_URL`, the key from `OPENAI_API_KEY` (only its
variable's name is kept: keys never leave the environment), and, with no `--model`, the one
model the server lists at GET /models.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from typing import Any

from parity.core.config import ProvidersFile, parse_providers
from parity.core.errors import ConfigError

__all__ = ["BASE_URL_ENV", "KEY_ENV", "Target", "quick_providers"]

BASE_URL_ENV = "OPENAI_BASE_URL"
KEY_ENV = "OPENAI_API_KEY"
ENDPOINT = "endpoint"
REFERENCE = "reference"


@dataclass(frozen=True)
class Target:
    """What the command line said about the endpoint(s) to audit."""

    base_url: str | None = None
    model: str | None = None
    api_key_env: str | None = None
    reference_url: str | None = None
    reference_model: str | None = None
    reference_key_env: str | None = None

    @property
    def given(self) -> bool:
        """True when any quick-mode option was given."""
        return any(
            (self.base_url, self.model, self.api_key_env, self.reference_url, self.reference_model)
        )


def quick_providers(target: Target, *, env: dict[str, str] | None = None) -> ProvidersFile | None:
    """The providers `target` names (falling back on OPENAI_BASE_URL / OPENAI_API_KEY), or
    None when neither the options nor the environment name an endpoint. Raises a one-line
    `ConfigError` for an incomplete or invalid target."""
    env = dict(os.environ) if env is None else env
    base_url = target.base_url or env.get(BASE_URL_ENV) or None
    if base_url is None:
        if target.given:
            raise ConfigError(f"give --base-url (or set {BASE_URL_ENV}) with --model")
        return None
    key_env = target.api_key_env or (KEY_ENV if env.get(KEY_ENV) else None)
    entries: list[dict[str, Any]] = [_entry(ENDPOINT, base_url, target.model, key_env)]
    if target.reference_url or target.reference_model:
        reference_url = target.reference_url or base_url
        reference_key = target.reference_key_env or key_env
        entries.append(
            _entry(REFERENCE, reference_url, target.reference_model, reference_key)
            | {"reference": True}
        )
    return parse_providers({"provider": entries}, "command line")


def _entry(name: str, base_url: str, model: str | None, key_env: str | None) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, "base_url": base_url.rstrip("/")}
    if key_env:
        entry["api_key_env"] = key_env
    entry["model"] = model or _only_model(entry)
    return entry


def _only_model(entry: dict[str, Any]) -> str:
    """The model a server serves when it lists exactly one (GET /models, one request)."""
    from parity.core.client import ProviderClient

    probe_file = parse_providers({"provider": [{**entry, "model": "?"}]}, "command line")
    provider = probe_file.providers[0]

    async def ask() -> list[str]:
        async with ProviderClient(provider, retries=0) as client:
            result = await client.list_models()
        if not result.reachable:
            raise ConfigError(f"{entry['base_url']}: {result.detail}; give --model")
        return result.models

    models = asyncio.run(ask())
    if len(models) != 1:
        listed = ", ".join(models[:10]) if models else "none"
        raise ConfigError(
            f"{entry['base_url']} lists {len(models)} models ({listed}): choose one with --model"
        )
    return models[0]
