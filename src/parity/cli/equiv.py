"""`parity equiv`: is a provider's output distribution the reference's?

    parity equiv record providers.toml --provider REF --out ref.parity
    parity equiv test providers.toml --against ref.parity   # reference paid once
    parity equiv test providers.toml              # live reference (reference = true)

What is sent (the protocol, `PROTOCOL`): for every prompt of the built-in set
(`parity.equivalence.prompts`), one user message, no system message;

* sample requests: `temperature` (default 1), `top_p` 1, `max_tokens` (default 12), and a
  fresh random `seed` per request. Seeds are drawn from the operating system's random source,
  so the two sides never share one: llama.cpp and other engines honour seeds, and two
  identical servers given the same seed return the same text, which would make an A/A test
  trivially pass without measuring any distribution. Each seed is kept in the store with its
  request, so an exchange can be replayed.
* logprob requests: the same message, `max_tokens` 1, `logprobs: true`,
  `top_logprobs` (default 5): the first token's top-k table. Each repeat is one pass over the
  prompts in a fresh random order (engines reuse the previous prompt's cache, which can
  change the numerics slightly -- a llama.cpp server's logprobs on its first requests after
  start-up differed by a few hundredths from later ones; a random order gives both sides the
  same mix of cache states).

How `test` decides (see `parity.equivalence.statistics` for the statistics): the logprob round first
(every provider `--logprob-repeats` passes; the test runs once, at its share of alpha:
alpha/2 with the default two methods), then the MMD test (and the rank test if asked) on the
samples at looks of 2, 4, 8, ... samples per prompt up to `--samples` (their shares spread
over the looks in proportion to the looks' sizes, Bonferroni), stopping a provider at the
first look whose combined verdict is not "inconclusive". A provider or reference without
logprobs leaves the sample tests alone, with the whole alpha. Against a recording, the
reference side is every recorded sample at every look.

A `.parity` recording is gzip-compressed JSON holding the settings (model, prompt set and
digest, temperature, top_p, max_tokens, kernel length and unit, top_logprobs, protocol), the
parity version, the recorded provider, the prompts, the samples and the logprob tables, and
what recording cost. `test --against` takes its settings from the recording; an option that
asks for other settings, or a provider whose model differs from the recorded one, is refused
with a one-line error (exit 2): samples drawn under other settings are other distributions.

Every exchange goes to the SQLite store (`--db`, a run of kind `equiv` / `equiv-record`)
under keys `equiv/<prompt>/<i>` (samples) and `equiv-lp/<prompt>/<r>` (logprobs); each
provider's decision is stored as result `equivalence/decision` and written with `--json`.
Exit code 1 when a provider is "different" (or unreachable).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import math
import random
import secrets
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table as RichTable

from parity import __version__
from parity.core.config import Provider, ProvidersFile, load_providers
from parity.core.errors import ConfigError
from parity.core.exchange import Exchange
from parity.core.request import Request
from parity.core.runner import Runner
from parity.core.store import Store
from parity.equivalence.prompts import PROMPT_SET, EquivPrompt, prompt_digest, prompts
from parity.equivalence.statistics import (
    DEFAULT_LENGTH,
    DEFAULT_PERMUTATIONS,
    LOGPROB_METHOD,
    LOGPROB_STRICT_METHOD,
    MMD_METHOD,
    RANK_METHOD,
    Decision,
    MethodResult,
    SequentialDesign,
    combine,
    logprob_test,
    mmd_test,
    rank_test,
)

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "PROTOCOL",
    "EquivSettings",
    "Recording",
    "Side",
    "check_compatible",
    "equiv_app",
]

FORMAT = "parity-equiv-recording"
FORMAT_VERSION = 1
PROTOCOL = "equiv-v1"
"""How requests are built (see the module docstring); bumped when that changes."""

_SHORT = {"mmd": MMD_METHOD, "logprob": LOGPROB_METHOD, "rank": RANK_METHOD}
_LOGPROB = (LOGPROB_METHOD, LOGPROB_STRICT_METHOD)
SAMPLE_PROBE = "equiv"
LOGPROB_PROBE = "equiv-lp"
PILLAR = "equivalence"

equiv_app = typer.Typer(
    help="Equivalence: a direct statistical test that a provider's output distribution is the "
    "reference's (MMD with a Hamming kernel on sampled completions; next-token logprobs). "
    "Record the reference once, then test providers against the recording.",
    no_args_is_help=True,
)


def _console(stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, width=None if stream.isatty() else 160)


# ---- settings and recordings -------------------------------------------------------------


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


_COST_KEYS = ("requests", "errors", "prompt_tokens", "completion_tokens", "usd")


# ---- sampling ----------------------------------------------------------------------------


def _messages(prompt: EquivPrompt) -> list[dict[str, str]]:
    return [{"role": "user", "content": prompt.text}]


def _seed() -> int:
    return secrets.randbelow(2**31 - 1)


def sample_requests(
    items: Sequence[EquivPrompt], settings: EquivSettings, start: int, stop: int
) -> list[Request]:
    """Sample requests `start <= i < stop` for every prompt, in a random order, fresh seeds."""
    planned = [
        Request(
            key=f"{SAMPLE_PROBE}/{p.id}/{i}",
            probe=SAMPLE_PROBE,
            body={
                "messages": _messages(p),
                "temperature": settings.temperature,
                "top_p": settings.top_p,
                "max_tokens": settings.max_tokens,
                "seed": _seed(),
            },
        )
        for i in range(start, stop)
        for p in items
    ]
    random.SystemRandom().shuffle(planned)
    return planned


def logprob_requests(
    items: Sequence[EquivPrompt], settings: EquivSettings, repeats: int
) -> list[Request]:
    """`repeats` passes over the prompts, each in a fresh random order: first-token tables."""
    planned: list[Request] = []
    shuffle = random.SystemRandom().shuffle
    for r in range(repeats):
        one_pass = [
            Request(
                key=f"{LOGPROB_PROBE}/{p.id}/{r}",
                probe=LOGPROB_PROBE,
                body={
                    "messages": _messages(p),
                    "temperature": settings.temperature,
                    "top_p": 1.0,
                    "max_tokens": 1,
                    "logprobs": True,
                    "top_logprobs": settings.top_logprobs,
                    "seed": _seed(),
                },
            )
            for p in items
        ]
        shuffle(one_pass)
        planned += one_pass
    return planned


def first_token_table(exchange: Exchange, k: int) -> dict[str, float] | None:
    """The first generated token's top-`k` table (token -> logprob) from a raw response.

    None when the exchange failed or carries no logprobs (some engines leave them out when
    the first token is end-of-sequence). Entries beyond the `k` most likely are dropped
    (llama.cpp adds the sampled token when it is not in the top k).
    """
    if not exchange.ok or not exchange.raw:
        return None
    try:
        data = json.loads(exchange.raw)
        content = data["choices"][0]["logprobs"]["content"]
        entries = content[0]["top_logprobs"]
        table = {str(e["token"]): float(e["logprob"]) for e in entries}
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    if not table:
        return None
    best = sorted(table.items(), key=lambda item: -item[1])[:k]
    return dict(best)


async def _send(
    runner: Runner, store: Store, run_id: str, planned: dict[str, list[Request]]
) -> dict[str, dict[str, Exchange]]:
    await runner.send(planned)
    return {
        name: store.get_exchanges(run_id, name, [r.key for r in reqs])
        for name, reqs in planned.items()
    }


def _absorb(
    side: Side,
    provider: Provider | None,
    requests: Sequence[Request],
    got: dict[str, Exchange],
    top_k: int,
) -> None:
    for req in sorted(requests, key=lambda r: r.key):
        exchange = got.get(req.key)
        if exchange is None:
            continue
        side.add_cost(exchange, provider)
        _, prompt_id, _ = req.key.split("/")
        if req.probe == SAMPLE_PROBE:
            if exchange.ok:
                side.samples.setdefault(prompt_id, []).append(exchange.text)
        else:
            table = first_token_table(exchange, top_k)
            if table is not None:
                side.logprobs.setdefault(prompt_id, []).append(table)


# ---- deciding ------------------------------------------------------------------------------


def _has_logprobs(side: Side, items: Sequence[EquivPrompt]) -> bool:
    return sum(1 for p in items if side.logprobs.get(p.id)) >= max(2, len(items) // 2)


def decide(
    provider: Side,
    reference: Side,
    items: Sequence[EquivPrompt],
    methods: Sequence[str],
    alphas: dict[str, float],
    settings: EquivSettings,
    *,
    permutations: int,
    seed: int | None,
    cached: dict[str, MethodResult] | None = None,
) -> Decision:
    """Run `methods` at their alphas on the two sides' samples and combine the verdicts.

    `cached` holds results to reuse as they are (the logprob test, run once).
    """
    results: list[MethodResult] = []
    pairs = {p.id: (provider.samples.get(p.id, []), reference.samples.get(p.id, [])) for p in items}
    for method in methods:
        if cached and method in cached:
            results.append(cached[method])
        elif method == MMD_METHOD:
            results.append(
                mmd_test(
                    pairs,
                    length=settings.length,
                    alpha=alphas[method],
                    permutations=permutations,
                    seed=seed,
                )
            )
        elif method == RANK_METHOD:
            results.append(
                rank_test(
                    pairs,
                    length=settings.length,
                    alpha=alphas[method],
                    permutations=permutations,
                    seed=seed,
                )
            )
        elif method in _LOGPROB:
            tables = {
                p.id: (provider.logprobs.get(p.id, []), reference.logprobs.get(p.id, []))
                for p in items
            }
            results.append(
                logprob_test(
                    tables,
                    alpha=alphas[method],
                    permutations=permutations,
                    seed=seed,
                    strict=method == LOGPROB_STRICT_METHOD,
                )
            )
    return combine(results)


# ---- commands ------------------------------------------------------------------------------


def _parse_methods(text: str, strict: bool) -> list[str]:
    names = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in names if m not in _SHORT]
    if unknown or not names:
        raise ConfigError(
            f"--methods: unknown {', '.join(unknown) or '(none)'}: use mmd, logprob, rank"
        )
    chosen = [_SHORT[m] for m in names]
    if strict:
        chosen = [LOGPROB_STRICT_METHOD if m == LOGPROB_METHOD else m for m in chosen]
    return list(dict.fromkeys(chosen))


def _find(providers: ProvidersFile, name: str) -> Provider:
    for provider in providers.providers:
        if provider.name == name:
            return provider
    names = ", ".join(p.name for p in providers.providers)
    raise ConfigError(f"no provider named {name!r} in the providers file (it has: {names})")


def _settings_from_options(
    model: str,
    n_prompts: int | None,
    temperature: float | None,
    max_tokens: int | None,
    length: int | None,
    top_logprobs: int | None,
    base: EquivSettings | None = None,
) -> EquivSettings:
    """Settings from options; unset options take `base`'s values (or the defaults)."""
    start = base or EquivSettings(model=model)
    count = n_prompts if n_prompts is not None else start.prompts
    try:
        items = prompts(count)
    except ValueError as exc:
        raise ConfigError(f"--prompts: {exc}") from None
    return EquivSettings(
        model=model,
        prompt_set=PROMPT_SET,
        prompts=count,
        prompt_digest=prompt_digest(items),
        temperature=start.temperature if temperature is None else temperature,
        top_p=start.top_p,
        max_tokens=start.max_tokens if max_tokens is None else max_tokens,
        length=start.length if length is None else length,
        unit=start.unit,
        top_logprobs=start.top_logprobs if top_logprobs is None else top_logprobs,
        protocol=PROTOCOL,
    )


DbOption = Annotated[Path, typer.Option("--db", help="SQLite store (created if missing).")]
PromptsOption = Annotated[
    int | None, typer.Option("--prompts", min=1, help="Use the first N prompts of the set (40).")
]
TemperatureOption = Annotated[float | None, typer.Option(help="Sampling temperature (1).")]
MaxTokensOption = Annotated[int | None, typer.Option(min=1, help="Tokens per sample (12).")]
LengthOption = Annotated[
    int | None,
    typer.Option(min=1, help=f"Kernel: compare the first N characters ({DEFAULT_LENGTH})."),
]
TopLogprobsOption = Annotated[
    int | None, typer.Option(min=1, max=20, help="top_logprobs of the logprob requests (5).")
]


@equiv_app.command("record")
def record(
    providers_file: Annotated[Path, typer.Argument(help="Providers TOML file.")],
    out: Annotated[Path, typer.Option("--out", help="Recording to write (.parity).")],
    provider: Annotated[
        str | None, typer.Option(help="Provider to record (default: the reference).")
    ] = None,
    samples: Annotated[int, typer.Option(min=2, help="Samples per prompt.")] = 16,
    logprob_repeats: Annotated[
        int, typer.Option(min=0, help="Logprob passes over the prompts (0: none).")
    ] = 4,
    n_prompts: PromptsOption = None,
    temperature: TemperatureOption = None,
    max_tokens: MaxTokensOption = None,
    length: LengthOption = None,
    top_logprobs: TopLogprobsOption = None,
    db: DbOption = Path("parity.db"),
) -> None:
    """Sample the reference once and write a recording to test providers against later.

    Cost with the defaults: 40 prompts x 16 samples (12 output tokens each) plus 4 x 40
    one-token logprob requests: 800 requests, about 38k tokens with a 38-token prompt.
    """
    providers = load_providers(providers_file)
    if provider is None:
        ref = providers.reference()
        if ref is None:
            raise ConfigError("no provider has reference = true: name one with --provider")
    else:
        ref = _find(providers, provider)
    settings = _settings_from_options(
        ref.model, n_prompts, temperature, max_tokens, length, top_logprobs
    )
    items = prompts(settings.prompts)
    err = _console(stderr=True)
    with Store(db) as store:
        run_id = store.create_run(
            "equiv-record", str(providers_file), {"settings": asdict(settings)}, __version__
        )
        err.print(f"equiv-record [bold]{run_id}[/] -> {db}", highlight=False)
        side = Side()
        planned = sample_requests(items, settings, 0, samples)
        planned += logprob_requests(items, settings, logprob_repeats)

        async def go() -> dict[str, dict[str, Exchange]]:
            async with Runner(store, run_id, [ref]) as runner:
                return await _send(runner, store, run_id, {ref.name: planned})

        got = asyncio.run(go())[ref.name]
        _absorb(side, ref, planned, got, settings.top_logprobs)
        store.finish_run(run_id)
    usable = sum(len(v) for v in side.samples.values())
    if usable < 2 * len(items):
        raise ConfigError(
            f"{ref.name}: only {usable} usable samples of {samples * len(items)} "
            f"({side.errors} errors): nothing worth recording"
        )
    Recording(
        settings=settings,
        provider={"name": ref.name, "base_url": ref.base_url, "model": ref.model},
        prompts=items,
        side=side,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    ).save(out)
    lp = sum(len(v) for v in side.logprobs.values())
    _console().print(
        f"recorded {ref.name}: {usable} samples, {lp} logprob tables over {len(items)} prompts, "
        f"{side.requests} requests ({side.errors} failed), "
        f"{side.prompt_tokens + side.completion_tokens} tokens{_usd(side.usd)} -> {out}",
        highlight=False,
    )


def _usd(value: float | None) -> str:
    return "" if value is None else f", ${value:.4f}"


@equiv_app.command("test")
def test(
    providers_file: Annotated[Path, typer.Argument(help="Providers TOML file.")],
    against: Annotated[
        Path | None,
        typer.Option(help="A recording (parity equiv record); default: the live reference."),
    ] = None,
    provider: Annotated[
        list[str] | None,
        typer.Option(help="Provider(s) to test (repeatable; default: every non-reference one)."),
    ] = None,
    samples: Annotated[
        int, typer.Option(min=2, help="Samples per prompt: the most the test may use.")
    ] = 8,
    adaptive: Annotated[
        bool,
        typer.Option(
            "--adaptive/--fixed",
            help="Adaptive: looks at 2, 4, ... samples per prompt, stop once decided "
            "(alpha spent over the looks). Fixed: one test at --samples.",
        ),
    ] = True,
    methods: Annotated[
        str, typer.Option(help="Comma-separated: mmd, logprob, rank (alpha split evenly).")
    ] = "mmd,logprob",
    logprob_repeats: Annotated[
        int, typer.Option(min=1, help="Logprob passes over the prompts, per side.")
    ] = 2,
    alpha: Annotated[float, typer.Option(min=1e-6, max=0.5, help="Error rate.")] = 0.05,
    permutations: Annotated[
        int, typer.Option(min=99, help="Permutations per test.")
    ] = DEFAULT_PERMUTATIONS,
    n_prompts: PromptsOption = None,
    temperature: TemperatureOption = None,
    max_tokens: MaxTokensOption = None,
    length: LengthOption = None,
    top_logprobs: TopLogprobsOption = None,
    any_model_name: Annotated[
        bool,
        typer.Option(help="Accept a provider whose model id differs from the recorded one."),
    ] = False,
    strict: Annotated[
        bool,
        typer.Option(
            help="Logprob test: any numeric difference beyond the reference's repeat noise "
            "is 'different' (other kernels or hardware too), not only a material one."
        ),
    ] = False,
    seed: Annotated[int | None, typer.Option(help="Seed of the permutations.")] = None,
    db: DbOption = Path("parity.db"),
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the results here.")] = None,
) -> None:
    """Test each provider against the reference: verdict same / different / inconclusive.

    Prints per provider the verdict, the deciding method, p-value, effect size, samples used
    and cost. Cost per provider with the defaults: at most 40 prompts x 8 samples (12 tokens
    each; adaptive usually stops earlier) plus 2 x 40 one-token logprob requests. Exit code 1
    when a provider is different (or unreachable).
    """
    providers = load_providers(providers_file)
    chosen = _parse_methods(methods, strict)
    recording = Recording.load(against) if against is not None else None
    live_ref: Provider | None = None
    if recording is None:
        live_ref = providers.reference()
        if live_ref is None:
            raise ConfigError("no reference: give --against FILE or mark one reference = true")
    if provider:
        targets = [_find(providers, name) for name in provider]
    else:
        targets = [p for p in providers.providers if not p.reference]
    if not targets:
        raise ConfigError("no provider to test: name one with --provider")
    if live_ref is not None and live_ref in targets:
        raise ConfigError(
            f"{live_ref.name} is the live reference: to test it against itself, record it "
            f"(parity equiv record) and use --against"
        )
    if recording is not None:
        base = recording.settings
        for target in targets:
            wanted = _settings_from_options(
                target.model, n_prompts, temperature, max_tokens, length, top_logprobs, base
            )
            check_compatible(base, wanted, str(against), ignore_model=any_model_name)
        settings = base
        items = recording.prompts
        if prompt_digest(items) != settings.prompt_digest:
            raise ConfigError(f"{against}: its prompts do not match their recorded digest")
    else:
        assert live_ref is not None
        settings = _settings_from_options(
            live_ref.model, n_prompts, temperature, max_tokens, length, top_logprobs
        )
        items = prompts(settings.prompts)
    design = (
        SequentialDesign.doubling(2, samples, alpha)
        if adaptive
        else SequentialDesign((samples,), alpha)
    )
    err = _console(stderr=True)
    with Store(db) as store:
        options = {
            "settings": asdict(settings),
            "against": str(against) if against else None,
            "methods": chosen,
            "looks": list(design.sizes),
            "alpha": alpha,
            "logprob_repeats": logprob_repeats,
        }
        run_id = store.create_run("equiv", str(providers_file), options, __version__)
        err.print(f"equiv [bold]{run_id}[/] -> {db}", highlight=False)
        try:
            outcomes = asyncio.run(
                _run_tests(
                    store,
                    run_id,
                    targets,
                    live_ref,
                    recording,
                    settings,
                    items,
                    chosen,
                    design,
                    logprob_repeats,
                    permutations,
                    seed,
                    err,
                )
            )
        except BaseException:
            store.finish_run(run_id, "failed")
            raise
        for name, outcome in outcomes.items():
            store.put_result(run_id, name, PILLAR, "decision", outcome)
        store.finish_run(run_id)
    _print(outcomes, settings, recording, against)
    if json_out is not None:
        summary = {
            "run_id": run_id,
            "parity_version": __version__,
            "settings": asdict(settings),
            "reference": (
                recording.provider if recording else {"name": live_ref.name if live_ref else None}
            ),
            "providers": outcomes,
        }
        try:
            json_out.write_text(json.dumps(summary, indent=2, default=_json_default) + "\n")
        except OSError as exc:
            raise ConfigError(f"{json_out}: cannot write ({exc.strerror})") from None
    bad = ("different", "unreachable")
    raise typer.Exit(1 if any(o["verdict"] in bad for o in outcomes.values()) else 0)


def _json_default(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


async def _run_tests(
    store: Store,
    run_id: str,
    targets: Sequence[Provider],
    live_ref: Provider | None,
    recording: Recording | None,
    settings: EquivSettings,
    items: Sequence[EquivPrompt],
    methods: Sequence[str],
    design: SequentialDesign,
    logprob_repeats: int,
    permutations: int,
    seed: int | None,
    console: Console,
) -> dict[str, dict[str, Any]]:
    """Sample and decide every target, look by look; returns a JSON-ready outcome per name."""
    everyone = [*targets, *([live_ref] if live_ref else [])]
    sides = {p.name: Side() for p in everyone}
    reference = (
        recording.side if recording is not None else sides[live_ref.name if live_ref else ""]
    )
    ref_name = live_ref.name if live_ref else None
    outcomes: dict[str, dict[str, Any]] = {}
    active = [p for p in targets]
    cached: dict[str, dict[str, MethodResult]] = {p.name: {} for p in targets}
    alphas: dict[str, dict[str, float]] = {}
    async with Runner(store, run_id, everyone) as runner:
        reachable = {p.name for p in await runner.preflight()}
        for name, detail in runner.stats.unreachable.items():
            console.print(f"[red]{name} unreachable:[/] {detail}", highlight=False)
        if ref_name is not None and ref_name not in reachable:
            raise ConfigError(f"the reference {ref_name} is unreachable")
        for p in list(active):
            if p.name not in reachable:
                active.remove(p)
                outcomes[p.name] = {"verdict": "unreachable", "method": None}
        # Logprob round first: cheap, and whether it is available decides the alpha split.
        logprob_method = next((m for m in methods if m in _LOGPROB), None)
        if recording is not None and not _has_logprobs(recording.side, items):
            logprob_method = None  # nothing to compare with: do not pay for the requests
        if logprob_method is not None and active:
            planned = {p.name: logprob_requests(items, settings, logprob_repeats) for p in active}
            if live_ref is not None:
                planned[live_ref.name] = logprob_requests(items, settings, logprob_repeats)
            console.print("logprob requests ...", highlight=False)
            got = await _send(runner, store, run_id, planned)
            for p in [*active, *([live_ref] if live_ref else [])]:
                _absorb(sides[p.name], p, planned[p.name], got[p.name], settings.top_logprobs)
        for p in active:
            use = [
                m
                for m in methods
                if m not in _LOGPROB
                or (_has_logprobs(sides[p.name], items) and _has_logprobs(reference, items))
            ]
            if not use:
                use = [MMD_METHOD]
            alphas[p.name] = {m: 1.0 / len(use) for m in use}  # shares of alpha, see below
        done_ref = 0
        look_of: dict[str, int] = {}
        decisions: dict[str, Decision] = {}
        for look, size in enumerate(design.sizes):
            if not active:
                break
            planned = {
                p.name: sample_requests(items, settings, look_start(design, look), size)
                for p in active
            }
            if live_ref is not None and size > done_ref:
                planned[live_ref.name] = sample_requests(items, settings, done_ref, size)
                done_ref = size
            console.print(
                f"look {look + 1}/{len(design.sizes)}: {size} samples per prompt, "
                f"{len(active)} provider(s) ...",
                highlight=False,
            )
            got = await _send(runner, store, run_id, planned)
            by_name = {p.name: p for p in everyone}
            for name, reqs in planned.items():
                _absorb(sides[name], by_name[name], reqs, got[name], settings.top_logprobs)
            look_alpha = design.alpha_at(look)
            for p in list(active):
                shares = alphas[p.name]
                method_alpha = {m: share * look_alpha for m, share in shares.items()}
                # The logprob test runs once, at the first look, with its whole share.
                if logprob_method in shares:
                    method_alpha[logprob_method] = shares[logprob_method] * design.alpha
                decision = decide(
                    sides[p.name],
                    reference,
                    items,
                    list(shares),
                    method_alpha,
                    settings,
                    permutations=permutations,
                    seed=seed,
                    cached=cached[p.name],
                )
                for r in decision.results:
                    if r.method in _LOGPROB:
                        cached[p.name][r.method] = r
                decisions[p.name] = decision
                look_of[p.name] = look
                if decision.verdict != "inconclusive":
                    active.remove(p)
    for p in targets:
        if p.name in decisions:
            outcomes[p.name] = _outcome(
                decisions[p.name],
                sides[p.name],
                design,
                look_of[p.name],
                live_ref=sides[ref_name] if ref_name else None,
            )
    return outcomes


def look_start(design: SequentialDesign, look: int) -> int:
    """Samples per prompt already drawn before look `look`."""
    return 0 if look == 0 else design.sizes[look - 1]


def _outcome(
    decision: Decision,
    side: Side,
    design: SequentialDesign,
    look: int,
    live_ref: Side | None,
) -> dict[str, Any]:
    deciding = _deciding(decision)
    return {
        "verdict": decision.verdict,
        "method": decision.method,
        "p_value": deciding.p_value if deciding else None,
        "effect": deciding.effect if deciding else None,
        "effect_method": deciding.method if deciding else None,
        "look": look + 1,
        "looks": len(design.sizes),
        "samples_per_prompt": design.sizes[look],
        "samples_used": sum(len(v) for v in side.samples.values()),
        "logprob_tables": sum(len(v) for v in side.logprobs.values()),
        "cost": side.cost_dict(),
        "reference_cost": live_ref.cost_dict() if live_ref else None,
        "results": [r.to_dict() for r in decision.results],
    }


def _deciding(decision: Decision) -> MethodResult | None:
    """The result to headline: the deciding method's, else the MMD's, else the first."""
    if not decision.results:
        return None
    for result in decision.results:
        if decision.method and result.method == decision.method.split("+")[0]:
            return result
    for result in decision.results:
        if result.method == MMD_METHOD:
            return result
    return decision.results[0]


def _print(
    outcomes: dict[str, dict[str, Any]],
    settings: EquivSettings,
    recording: Recording | None,
    against: Path | None,
) -> None:
    console = _console()
    if recording is not None:
        recorded = sum(len(v) for v in recording.side.samples.values())
        source = f"recording {against} ({recorded} samples)"
    else:
        source = "the live reference"
    table = RichTable(
        title=f"equivalence vs {source}: {settings.model}, {settings.prompts} prompts, "
        f"temperature {settings.temperature:g}, {settings.max_tokens} tokens, kernel on "
        f"{settings.length} characters"
    )
    for column in ("provider", "verdict", "decided by", "samples used", "cost"):
        table.add_column(column, overflow="fold")
    for column in ("method", "p-value", "alpha", "effect", "upper bound", "tolerance"):
        table.add_column(column, justify="right" if column != "method" else "left")
    colors = {"same": "green", "different": "red", "inconclusive": "yellow"}
    for name, o in outcomes.items():
        verdict = o["verdict"]
        shown = f"[{colors.get(verdict, 'red')}]{verdict}[/]"
        if "results" not in o:
            table.add_row(name, shown, *[""] * 9)
            continue
        cost = o["cost"]
        tokens = cost["prompt_tokens"] + cost["completion_tokens"]
        head = [
            name,
            shown,
            o["method"] or "-",
            f"{o['samples_used']} ({o['samples_per_prompt']}/prompt, look {o['look']}/"
            f"{o['looks']}) + {o['logprob_tables']} logprob",
            f"{cost['requests']} req, {tokens} tok{_usd(cost['usd'])}",
        ]
        for index, r in enumerate(o["results"]):
            cells = head if index == 0 else [""] * 5
            effect = _num(r["effect"]) + (" *" if r["note"] else "")
            table.add_row(
                *cells,
                r["method"],
                _num(r["p_value"]),
                _num(r["alpha"]),
                effect,
                _num(r["effect_upper"]),
                _num(r["tolerance"]),
            )
    console.print(table)
    for name, o in outcomes.items():
        for r in o.get("results", []):
            if r["note"]:
                console.print(f"* {name}, {r['method']}: {r['note']}", highlight=False)


def _num(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "inf"
        return f"{value:.3g}"
    return str(value)
