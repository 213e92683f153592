"""Recording the reference and testing providers against it: sending, deciding, storing.

    record_reference(db, providers, Path("ref.parity"))          # the reference, paid once
    test_providers(db, providers, against=Path("ref.parity"))    # each provider: a verdict

How `test_providers` decides (see `parity.equivalence.statistics` for the statistics): the
logprob round first (every provider `logprob_repeats` passes; the test runs once, at its
share of alpha: alpha/2 with the default two methods), then the MMD test (and the rank test
if asked) on the samples at looks of 2, 4, 8, ... samples per prompt up to `samples` (their
shares spread over the looks in proportion to the looks' sizes, Bonferroni), stopping a
provider at the first look whose combined verdict is not "inconclusive". A provider or
reference without logprobs leaves the sample tests alone, with the whole alpha. Against a
recording, the reference side is every recorded sample at every look.

Every exchange goes to the SQLite store (a run of kind `equiv` / `equiv-record`, opened with
`parity.core.lifecycle.open_run`: Ctrl-C marks it interrupted, any other error failed) under
the keys of `parity.equivalence.protocol`; each provider's decision is stored as result
`equivalence/decision`. Nothing here prints: progress lines (rich markup) go to the
`progress` callback.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from parity import __version__
from parity.core.config import Provider, ProvidersFile
from parity.core.dburl import Db
from parity.core.errors import ConfigError
from parity.core.exchange import Exchange
from parity.core.lifecycle import open_run
from parity.core.request import Request
from parity.core.runner import Runner
from parity.core.store import Store
from parity.equivalence.prompts import EquivPrompt, prompt_digest, prompts
from parity.equivalence.protocol import (
    SAMPLE_PROBE,
    first_token_table,
    logprob_requests,
    sample_requests,
)
from parity.equivalence.recording import (
    AskedSettings,
    EquivSettings,
    Recording,
    Side,
    check_compatible,
    resolve_settings,
)
from parity.equivalence.statistics import (
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
    "FAILING",
    "PILLAR",
    "EquivTestResult",
    "Outcome",
    "Progress",
    "RecordResult",
    "decide",
    "find_provider",
    "look_start",
    "record_reference",
    "test_providers",
]

PILLAR = "equivalence"
FAILING = ("different", "unreachable")
"""The verdicts that fail a test (exit code 1)."""
_LOGPROB = (LOGPROB_METHOD, LOGPROB_STRICT_METHOD)

Progress = Callable[[str], None]
"""Receives one progress line (rich markup allowed)."""
Outcome = dict[str, Any]
"""One provider's JSON-ready outcome: `verdict` and `method`; when decided also p-value,
effect, look, samples used, cost and every method's result (see `_outcome`)."""


def _quiet(line: str) -> None:
    pass


# ---- results -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordResult:
    """A recording written: the run that drew it, the provider recorded, the file."""

    run_id: str
    provider: Provider
    recording: Recording
    path: Path

    @property
    def samples(self) -> int:
        """Usable samples recorded (over every prompt)."""
        return sum(len(v) for v in self.recording.side.samples.values())

    @property
    def logprob_tables(self) -> int:
        """First-token logprob tables recorded (over every prompt)."""
        return sum(len(v) for v in self.recording.side.logprobs.values())


@dataclass(frozen=True)
class EquivTestResult:
    """Every tested provider's outcome, and what it was tested against."""

    run_id: str
    settings: EquivSettings
    outcomes: dict[str, Outcome]
    recording: Recording | None = None
    against: Path | None = None
    reference: Provider | None = None
    """The live reference (None against a recording)."""

    @property
    def failed(self) -> bool:
        """Whether a provider is different (or unreachable)."""
        return any(o["verdict"] in FAILING for o in self.outcomes.values())

    def summary(self) -> dict[str, Any]:
        """The JSON document: run, version, settings, reference and every outcome."""
        return {
            "run_id": self.run_id,
            "parity_version": __version__,
            "settings": asdict(self.settings),
            "reference": (
                self.recording.provider
                if self.recording
                else {"name": self.reference.name if self.reference else None}
            ),
            "providers": self.outcomes,
        }

    def to_json(self) -> str:
        """`summary()` as indented JSON (non-finite numbers as null), newline-terminated."""
        return json.dumps(self.summary(), indent=2, default=_json_default) + "\n"


def _json_default(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


# ---- the two library entry points ------------------------------------------------------------


def find_provider(providers: ProvidersFile, name: str) -> Provider:
    """The provider named `name`, or a one-line `ConfigError` listing the names there are."""
    for provider in providers.providers:
        if provider.name == name:
            return provider
    names = ", ".join(p.name for p in providers.providers)
    raise ConfigError(f"no provider named {name!r} in the providers file (it has: {names})")


def record_reference(
    db: Db,
    providers: ProvidersFile,
    out: Path,
    *,
    source: str | None = None,
    provider: str | None = None,
    samples: int = 16,
    logprob_repeats: int = 4,
    asked: AskedSettings | None = None,
    progress: Progress | None = None,
) -> RecordResult:
    """Sample `provider` (default: the reference) once and write the recording to `out`.

    `samples` samples per prompt and `logprob_repeats` logprob passes over the prompts, in
    run kind `equiv-record` of the store `db` (`source`: the providers file, kept with the
    run). Raises a one-line `ConfigError` when fewer than 2 samples per prompt came back.
    """
    say = progress or _quiet
    if provider is None:
        ref = providers.reference()
        if ref is None:
            raise ConfigError("no provider has reference = true: name one with --provider")
    else:
        ref = find_provider(providers, provider)
    settings = resolve_settings(ref.model, asked or AskedSettings())
    items = prompts(settings.prompts, settings.prompt_set)
    options = {"settings": asdict(settings)}
    with open_run(db, "equiv-record", options, source=source, announce=say) as run:
        side = Side()
        planned = sample_requests(items, settings, 0, samples)
        planned += logprob_requests(items, settings, logprob_repeats)

        async def go() -> dict[str, dict[str, Exchange]]:
            async with Runner(run.store, run.run_id, [ref]) as runner:
                return await _send(runner, run.store, run.run_id, {ref.name: planned})

        got = asyncio.run(go())[ref.name]
        _absorb(side, ref, planned, got, settings.top_logprobs)
    usable = sum(len(v) for v in side.samples.values())
    if usable < 2 * len(items):
        raise ConfigError(
            f"{ref.name}: only {usable} usable samples of {samples * len(items)} "
            f"({side.errors} errors): nothing worth recording"
        )
    recording = Recording(
        settings=settings,
        provider={"name": ref.name, "base_url": ref.base_url, "model": ref.model},
        prompts=items,
        side=side,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    recording.save(out)
    return RecordResult(run.run_id, ref, recording, out)


def test_providers(
    db: Db,
    providers: ProvidersFile,
    *,
    source: str | None = None,
    against: Path | None = None,
    names: Sequence[str] | None = None,
    methods: Sequence[str] = (MMD_METHOD, LOGPROB_METHOD),
    samples: int = 8,
    adaptive: bool = True,
    logprob_repeats: int = 2,
    alpha: float = 0.05,
    permutations: int = DEFAULT_PERMUTATIONS,
    asked: AskedSettings | None = None,
    any_model_name: bool = False,
    seed: int | None = None,
    progress: Progress | None = None,
) -> EquivTestResult:
    """Test each provider against the reference: verdict same / different / inconclusive.

    Against the recording `against`, or the live reference (`reference = true`) without one;
    `names` are the providers to test (default: every non-reference one). `methods` are full
    method names (`statistics.MMD_METHOD`, ...), alpha split evenly between them. Adaptive:
    looks at 2, 4, ... `samples` per prompt, a provider stopped once decided; else one test
    at `samples`. A recording's settings are refused (one-line `ConfigError`, before sending
    anything) when `asked` or a provider's model differs (unless `any_model_name`).
    Each decision is stored in the run (kind `equiv`) as result `equivalence/decision`.
    """
    say = progress or _quiet
    wanted = asked or AskedSettings()
    recording = Recording.load(against) if against is not None else None
    live_ref: Provider | None = None
    if recording is None:
        live_ref = providers.reference()
        if live_ref is None:
            raise ConfigError("no reference: give --against FILE or mark one reference = true")
    if names:
        targets = [find_provider(providers, name) for name in names]
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
            check_compatible(
                base,
                resolve_settings(target.model, wanted, base),
                str(against),
                ignore_model=any_model_name,
            )
        settings = base
        items = recording.prompts
        if prompt_digest(items) != settings.prompt_digest:
            raise ConfigError(f"{against}: its prompts do not match their recorded digest")
    else:
        assert live_ref is not None
        settings = resolve_settings(live_ref.model, wanted)
        items = prompts(settings.prompts, settings.prompt_set)
    design = (
        SequentialDesign.doubling(2, samples, alpha)
        if adaptive
        else SequentialDesign((samples,), alpha)
    )
    options = {
        "settings": asdict(settings),
        "against": str(against) if against else None,
        "methods": list(methods),
        "looks": list(design.sizes),
        "alpha": alpha,
        "logprob_repeats": logprob_repeats,
    }
    with open_run(db, "equiv", options, source=source, announce=say) as run:
        outcomes = asyncio.run(
            _run_tests(
                run.store,
                run.run_id,
                targets,
                live_ref,
                recording,
                settings,
                items,
                methods,
                design,
                logprob_repeats,
                permutations,
                seed,
                say,
            )
        )
        for name, outcome in outcomes.items():
            run.store.put_result(run.run_id, name, PILLAR, "decision", outcome)
    return EquivTestResult(run.run_id, settings, outcomes, recording, against, live_ref)


test_providers.__test__ = False  # type: ignore[attr-defined]  # not a test for pytest


# ---- sending -------------------------------------------------------------------------------


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
    progress: Progress,
) -> dict[str, Outcome]:
    """Sample and decide every target, look by look; returns a JSON-ready outcome per name."""
    everyone = [*targets, *([live_ref] if live_ref else [])]
    sides = {p.name: Side() for p in everyone}
    reference = (
        recording.side if recording is not None else sides[live_ref.name if live_ref else ""]
    )
    ref_name = live_ref.name if live_ref else None
    outcomes: dict[str, Outcome] = {}
    active = [p for p in targets]
    cached: dict[str, dict[str, MethodResult]] = {p.name: {} for p in targets}
    alphas: dict[str, dict[str, float]] = {}
    async with Runner(store, run_id, everyone) as runner:
        reachable = {p.name for p in await runner.preflight()}
        for name, detail in runner.stats.unreachable.items():
            progress(f"[red]{name} unreachable:[/] {detail}")
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
            progress("logprob requests ...")
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
            progress(
                f"look {look + 1}/{len(design.sizes)}: {size} samples per prompt, "
                f"{len(active)} provider(s) ..."
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
) -> Outcome:
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
