"""The `.parity` recording: the reference's samples under fixed settings, paid once.

A `.parity` recording is gzip-compressed JSON holding the settings (model, prompt set and
digest, temperature, top_p, max_tokens, kernel length and unit, top_logprobs, protocol), the
parity version, the recorded provider, the prompts, the samples and the logprob tables, and
what recording cost. `parity equiv test --against` takes its settings from the recording; an
option that asks for other settings, or a provider whose model differs from the recorded one,
is refused with a one-line error (`check_compatible`, exit 2): samples drawn under other
settings are other distributions.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from parity import __version__
from parity.core.config import Provider
from parity.core.errors import ConfigError
from parity.core.exchange import Exchange
from parity.equivalence.prompts import (
    PROMPT_SET,
    EquivPrompt,
    prompt_digest,
    prompt_set_name,
    prompts,
)
from parity.equivalence.protocol import PROTOCOL
from parity.equivalence.statistics import DEFAULT_LENGTH

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "AskedSettings",
    "EquivSettings",
    "Recording",
    "Side",
    "check_compatible",
    "resolve_settings",
]

FORMAT = "parity-equiv-recording"
FORMAT_VERSION = 1

_COST_KEYS = ("requests", "errors", "prompt_tokens", "completion_tokens", "usd")


@dataclass(frozen=True)
class EquivSettings:
    """What makes two sets of samples comparable: equal settings, same distributions.

    `length` and `unit` are the kernel's (completions cut to `length` characters);
    `prompts` is how many prompts of `prompt_set` are used, `prompt_digest` their digest.
    """

    model: str
    prompt_set: str = PROMPT_SET
    prompts: int = 40
    prompt_digest: str = ""
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 12
    length: int = DEFAULT_LENGTH
    unit: str = "char"
    top_logprobs: int = 5
    protocol: str = PROTOCOL

    def mismatches(self, other: EquivSettings, *, ignore_model: bool = False) -> list[str]:
        """`key: ours vs theirs` for every setting that differs (model left out on request)."""
        out = []
        for key, ours in asdict(self).items():
            if key == "model" and ignore_model:
                continue
            theirs = getattr(other, key)
            if ours != theirs:
                out.append(f"{key} {ours!r} vs {theirs!r}")
        return out


@dataclass(frozen=True)
class AskedSettings:
    """The settings asked for (the command line's options); None takes the recorded value,
    or the default without a recording."""

    prompts: int | None = None
    prompt_set: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    length: int | None = None
    top_logprobs: int | None = None


def resolve_settings(
    model: str, asked: AskedSettings, base: EquivSettings | None = None
) -> EquivSettings:
    """Settings for `model` from `asked`; unset values take `base`'s (or the defaults).

    Raises a one-line `ConfigError` when the prompt set has fewer prompts than asked.
    """
    start = base or EquivSettings(model=model)
    count = asked.prompts if asked.prompts is not None else start.prompts
    try:
        set_name = prompt_set_name(asked.prompt_set or start.prompt_set)
    except ValueError as exc:
        raise ConfigError(f"--prompt-set: {exc}") from None
    try:
        items = prompts(count, set_name)
    except ValueError as exc:
        raise ConfigError(f"--prompts: {exc}") from None
    return EquivSettings(
        model=model,
        prompt_set=set_name,
        prompts=count,
        prompt_digest=prompt_digest(items),
        temperature=start.temperature if asked.temperature is None else asked.temperature,
        top_p=start.top_p,
        max_tokens=start.max_tokens if asked.max_tokens is None else asked.max_tokens,
        length=start.length if asked.length is None else asked.length,
        unit=start.unit,
        top_logprobs=start.top_logprobs if asked.top_logprobs is None else asked.top_logprobs,
        protocol=PROTOCOL,
    )


def check_compatible(
    recorded: EquivSettings, wanted: EquivSettings, source: str, *, ignore_model: bool = False
) -> None:
    """Raise a one-line `ConfigError` when `wanted` differs from the recording's settings."""
    diff = recorded.mismatches(wanted, ignore_model=ignore_model)
    if diff:
        hint = (
            " (use --any-model-name if the provider serves the same model under another name)"
            if any(d.startswith("model ") for d in diff)
            else ""
        )
        raise ConfigError(
            f"{source} was recorded with other settings: {'; '.join(diff)} "
            f"(recorded vs asked): record the reference again with these settings{hint}"
        )


@dataclass
class Side:
    """The samples of one provider: texts and logprob tables per prompt id, and their cost."""

    samples: dict[str, list[str]] = field(default_factory=dict)
    logprobs: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    requests: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    usd: float | None = None

    def add_cost(self, exchange: Exchange, provider: Provider | None) -> None:
        """Count one exchange's request, tokens and $ (at the provider's list prices)."""
        self.requests += 1
        if not exchange.ok:
            self.errors += 1
        prompt = exchange.prompt_tokens() or 0
        completion = exchange.completion_tokens() or 0
        self.prompt_tokens += prompt
        self.completion_tokens += completion
        cost = provider.cost_usd(prompt, completion) if provider else None
        if cost is not None:
            self.usd = (self.usd or 0.0) + cost

    def cost_dict(self) -> dict[str, Any]:
        """Requests, errors, tokens and $ (None without prices) as a dict."""
        return {
            "requests": self.requests,
            "errors": self.errors,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "usd": self.usd,
        }


@dataclass
class Recording:
    """A `.parity` file: the reference's samples under fixed settings."""

    settings: EquivSettings
    provider: dict[str, Any]
    prompts: list[EquivPrompt]
    side: Side
    parity_version: str = __version__
    created_at: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The JSON document written to disk."""
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "parity_version": self.parity_version,
            "created_at": self.created_at,
            "settings": asdict(self.settings),
            "provider": self.provider,
            "prompts": [{"id": p.id, "text": p.text} for p in self.prompts],
            "samples": self.side.samples,
            "logprobs": self.side.logprobs,
            "cost": self.side.cost_dict(),
        }

    def save(self, path: Path) -> None:
        """Write gzip-compressed JSON (atomically: a temporary file, then rename)."""
        data = json.dumps(self.to_dict(), ensure_ascii=False).encode()
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with gzip.open(tmp, "wb") as handle:
                handle.write(data)
            tmp.replace(path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise ConfigError(f"{path}: cannot write ({exc.strerror or exc})") from None

    @classmethod
    def load(cls, path: Path) -> Recording:
        """Read a recording (gzip or plain JSON), or raise one-line `ConfigError`."""
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such file") from None
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
        try:
            if raw[:2] == b"\x1f\x8b":
                raw = gzip.decompress(raw)
            data = json.loads(raw)
        except (OSError, EOFError, ValueError):
            raise ConfigError(f"{path}: not a parity recording (not JSON)") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ConfigError(f"{path}: not a parity equivalence recording")
        if data.get("format_version") != FORMAT_VERSION:
            raise ConfigError(
                f"{path}: recording format {data.get('format_version')!r}, this parity reads "
                f"{FORMAT_VERSION}: record the reference again"
            )
        try:
            settings = EquivSettings(**data["settings"])
            side = Side(
                samples={k: [str(t) for t in v] for k, v in data["samples"].items()},
                logprobs={
                    k: [{str(t): float(lp) for t, lp in table.items()} for table in v]
                    for k, v in data["logprobs"].items()
                },
                **{k: v for k, v in data["cost"].items() if k in _COST_KEYS},
            )
            items = [EquivPrompt(id=str(p["id"]), text=str(p["text"])) for p in data["prompts"]]
            return cls(
                settings=settings,
                provider=dict(data["provider"]),
                prompts=items,
                side=side,
                parity_version=str(data.get("parity_version", "")),
                created_at=str(data.get("created_at", "")),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"{path}: damaged recording ({exc!r})") from None
