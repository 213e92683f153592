"""`parity eval`: repeated accuracy runs with honest statistics, fixed or adaptive.

Fixed design: every problem `repeats` times at every provider (`reference_repeats` times as
often at the reference); accuracy with a nested bootstrap CI, and against the reference the
paired sign-flip test's p-value and interval, Holm-corrected across the providers
(`parity.stats.estimates.compare_with_reference`).

Adaptive design (the default when a reference exists): pairs (problem, sample index) are
drawn in rounds from `sequential.schedule`, the same sequence for every provider, so the
reference's samples are shared by all of them; each pair takes one provider sample and
`reference_repeats` reference samples. After each round every provider's anytime-valid
confidence sequence for its difference from the reference is updated, at level
``alpha / m`` for m providers (Bonferroni: the family-wise error stays below alpha at all
times), and a provider stops as soon as its verdict is decided, its token or $ budget is
spent, or it has used as many pairs as the fixed design would (the cap).

Results are a pure function of the store: `analyse_eval` replays the same rounds over the
stored exchanges, so a report redrawn later, or a resumed run, reaches the same decisions.
"""

from __future__ import annotations

import zlib
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from itertools import islice
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from parity.accuracy.suites import Problem, Suite, get_suite
from parity.accuracy.suites.datasets import DatasetOptions
from parity.core.config import Provider
from parity.core.exchange import Exchange
from parity.core.request import Request
from parity.core.store import Store
from parity.stats.estimates import accuracy, compare_with_reference, pass_at_k, pass_hat_k
from parity.stats.sequential import METHOD, PairedSequentialTest, schedule

PROBE = "accuracy"


class EvalOptions(BaseModel):
    """Settings of an eval run, stored with it so `--resume` and reports replay it exactly."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    suite: str = "easy"
    limit: int | None = Field(default=None, ge=1)
    repeats: int = Field(default=4, ge=1, le=1000)
    reference_repeats: int = Field(default=1, ge=1, le=100)
    """The reference's samples per provider sample (fixed: repeats x this; adaptive: this
    many per pair); `parity eval` gives 4. 1: what options stored before it mean."""
    adaptive: bool = True
    margin: float = Field(default=0.03, gt=0, lt=1)
    alpha: float = Field(default=0.05, gt=0, lt=1)
    round_pairs: int = Field(default=16, ge=1)
    seed: int = 0
    budget_tokens: int | None = Field(default=None, ge=1)
    budget_usd: float | None = Field(default=None, gt=0)
    sampling: dict[str, Any] = Field(default_factory=dict)
    system_prompt: str | None = None
    retries: int = Field(default=3, ge=0)
    cache: bool = False
    max_time_s: float | None = Field(default=None, gt=0)
    """Stop sending after this many seconds (interrupted, resumable); None: no limit."""
    # A suite file (data set) read by `parity.accuracy.suites.datasets`; None: the file's own.
    fields: dict[str, str] = Field(default_factory=dict)
    """Column of each parity field (id, input, target, choices), e.g. {"input": "question"}."""
    scorer: str | None = None
    few_shot: int | None = Field(default=None, ge=0)
    few_shot_seed: int | None = None
    split: str | None = None
    template: str | None = None


def load_suite(options: EvalOptions) -> Suite:
    """The suite the options name, subset and sampling overrides applied."""
    dataset = DatasetOptions(
        fields=options.fields,
        scorer=options.scorer,
        few_shot=options.few_shot,
        few_shot_seed=options.few_shot_seed,
        split=options.split,
        template=options.template,
    )
    suite = get_suite(
        options.suite, options.limit, options.seed if options.limit else None, dataset=dataset
    )
    suite = suite.with_sampling(**options.sampling)
    if options.system_prompt is not None:
        suite = replace(suite, system_prompt=options.system_prompt)
    return suite


def sample_request(suite: Suite, problem: Problem, index: int) -> Request:
    """Sample `index` of `problem`: its own seed, the same at every provider."""
    key = f"{PROBE}/{suite.name}/{problem.id}/{index}"
    body = {"messages": suite.messages(problem), **suite.sampling, "seed": zlib.crc32(key.encode())}
    return Request(key, PROBE, body)


def fixed_requests(suite: Suite, repeats: int) -> list[Request]:
    """Every problem `repeats` times."""
    return [sample_request(suite, p, r) for p in suite.problems for r in range(repeats)]


def provider_requests(suite: Suite, options: EvalOptions, provider: Provider) -> list[Request]:
    """The fixed design's requests of one provider: every problem `repeats` times, the
    reference's `repeats x reference_repeats` times (its first `repeats` samples have the
    same seeds as every provider's)."""
    factor = options.reference_repeats if provider.reference else 1
    return fixed_requests(suite, options.repeats * factor)


def adaptive_pairs(suite: Suite, options: EvalOptions) -> list[Request]:
    """The adaptive design's pair sequence (the provider's sample of each pair), capped at
    the fixed design's size. The j-th pair on a problem is its sample ``k * j``, k the
    `reference_repeats` (j itself when k is 1), so the reference's k samples of that pair
    are ``k * j .. k * j + k - 1`` (`reference_pairs`) and the first has the same seed."""
    k = options.reference_repeats
    cap = len(suite.problems) * options.repeats
    seen: dict[int, int] = {}
    out = []
    for i in islice(schedule(len(suite.problems), options.seed), cap):
        out.append(sample_request(suite, suite.problems[i], k * seen.get(i, 0)))
        seen[i] = seen.get(i, 0) + 1
    return out


def reference_pairs(suite: Suite, options: EvalOptions) -> list[list[Request]]:
    """The reference's samples of each adaptive pair: `reference_repeats` of them, the
    first the provider's own (same key, same seed)."""
    k = options.reference_repeats
    problems = {p.id: p for p in suite.problems}
    out = []
    for req in adaptive_pairs(suite, options):
        _, _, problem_id, index = req.key.split("/")
        first = int(index)
        out.append(
            [req] + [sample_request(suite, problems[problem_id], first + e) for e in range(1, k)]
        )
    return out


@dataclass
class Spend:
    """What a provider's eval requests cost."""

    samples: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    usd: float | None = None

    @property
    def tokens(self) -> int:
        """Prompt plus completion tokens, from the provider's usage."""
        return self.prompt_tokens + self.completion_tokens

    def add(self, provider: Provider, exchange: Exchange) -> None:
        """Count one exchange."""
        self.samples += 1
        self.errors += not exchange.ok
        prompt, completion = exchange.prompt_tokens() or 0, exchange.completion_tokens() or 0
        self.prompt_tokens += prompt
        self.completion_tokens += completion
        cost = provider.cost_usd(prompt, completion)
        if cost is not None:
            self.usd = (self.usd or 0.0) + cost


@dataclass
class ProviderEval:
    """One provider's eval: its samples' scores, what they cost, and its sequential test."""

    provider: Provider
    scores: dict[str, list[float]] = field(default_factory=dict)
    spend: Spend = field(default_factory=Spend)
    test: PairedSequentialTest | None = None
    stop_reason: str | None = None
    records: list[dict[str, Any]] = field(default_factory=list)

    def score(self, suite: Suite, problem: Problem, key: str, exchange: Exchange) -> float | None:
        """Count the exchange's cost; grade it (None when it failed) and keep a record."""
        self.spend.add(self.provider, exchange)
        score = suite.grade(problem, exchange.text) if exchange.ok else None
        if score is not None:
            self.scores.setdefault(problem.id, []).append(score)
        self.records.append(
            {
                "key": key,
                "problem": problem.id,
                "answer": problem.answer,
                "reply": exchange.text[-300:],
                "error": exchange.error.value if exchange.error else None,
                "score": score,
            }
        )
        return score

    def over_budget(self, options: EvalOptions) -> str | None:
        """'budget_tokens' or 'budget_usd' once that budget is spent, else None."""
        if options.budget_tokens is not None and self.spend.tokens >= options.budget_tokens:
            return "budget_tokens"
        if (
            options.budget_usd is not None
            and self.spend.usd is not None
            and self.spend.usd >= options.budget_usd
        ):
            return "budget_usd"
        return None


class AdaptiveEval:
    """The adaptive design's state: which providers are still sampling, and their tests.

    `round()` says which requests the next round needs (per provider); `absorb()` takes the
    round's exchanges and updates tests, spend and stops. The live run and the replay over
    the store drive the same two methods, which is why they decide alike.
    """

    def __init__(
        self, suite: Suite, providers: Sequence[Provider], reference: Provider, options: EvalOptions
    ) -> None:
        self.suite = suite
        self.options = options
        self.reference = reference
        self.pairs = adaptive_pairs(suite, options)
        self.reference_pairs = reference_pairs(suite, options)
        self.position = 0
        self.evals = {p.name: ProviderEval(p) for p in providers}
        # Bonferroni over the providers compared: each confidence sequence at alpha / m.
        self.family = max(1, sum(name != reference.name for name in self.evals))
        for name, ev in self.evals.items():
            if name != reference.name:
                ev.test = PairedSequentialTest(
                    options.margin, options.alpha / self.family, len(self.pairs)
                )
        self._problems = {p.id: p for p in suite.problems}

    def active(self) -> list[str]:
        """Providers (not the reference) still sampling."""
        return [n for n, ev in self.evals.items() if ev.test is not None and ev.stop_reason is None]

    def round(self) -> dict[str, list[Request]]:
        """The next round's requests per provider (the reference included); empty when done."""
        active = self.active()
        end = self.position + self.options.round_pairs
        batch = self.pairs[self.position : end]
        if not active or not batch:
            return {}
        planned = {name: list(batch) for name in active}
        reference = [r for pair in self.reference_pairs[self.position : end] for r in pair]
        return {self.reference.name: reference, **planned}

    def absorb(
        self,
        planned: Mapping[str, list[Request]],
        stored: Mapping[str, Mapping[str, Exchange]],
        incomplete: Sequence[str] = (),
    ) -> None:
        """Update every provider of the round from its stored exchanges, then advance.

        Each pair's difference is the provider's score minus the mean of the reference's
        scores on that pair (failed samples left out; a pair with none on either side is
        skipped). Providers in `incomplete` (a replay that found their round unsent) stop.
        """
        reference_scores: dict[str, float | None] = {}
        for req in planned.get(self.reference.name, []):
            x = stored[self.reference.name].get(req.key)
            reference_scores[req.key] = self._record(self.reference.name, req.key, x)
        end = self.position + self.options.round_pairs
        pair_means: dict[str, float | None] = {}
        for pair in self.reference_pairs[self.position : end]:
            found = [v for r in pair if (v := reference_scores.get(r.key)) is not None]
            pair_means[pair[0].key] = sum(found) / len(found) if found else None
        for name, requests in planned.items():
            if name == self.reference.name:
                continue
            ev = self.evals[name]
            if name in incomplete:
                ev.stop_reason = "incomplete"
                continue
            diffs = []
            for req in requests:
                score = self._record(name, req.key, stored[name].get(req.key))
                ref = pair_means.get(req.key)
                if score is not None and ref is not None:
                    diffs.append(score - ref)
            assert ev.test is not None
            if diffs:
                ev.test.update(diffs)
            if ev.test.done():
                ev.stop_reason = "decided" if ev.test.n < len(self.pairs) else "cap"
            elif (budget := ev.over_budget(self.options)) is not None:
                ev.stop_reason = budget
        self.position += self.options.round_pairs
        if self.position >= len(self.pairs):
            for name in self.active():
                self.evals[name].stop_reason = "cap"

    def _record(self, name: str, key: str, exchange: Exchange | None) -> float | None:
        if exchange is None:
            return None
        problem = self._problems[key.split("/")[2]]
        return self.evals[name].score(self.suite, problem, key, exchange)


SendRound = Callable[[Mapping[str, list[Request]]], Awaitable[None]]
FetchRound = Callable[[Mapping[str, list[Request]]], Mapping[str, Mapping[str, Exchange]]]


def analyse_eval(
    store: Store, run_id: str, providers: Sequence[Provider], options: EvalOptions
) -> list[dict[str, Any]]:
    """Every reachable provider's eval results, recomputed from the stored exchanges alone;
    unreachable providers get a row saying so."""
    suite = load_suite(options)
    reachable_flags = {p["name"]: p.get("reachable") for p in store.providers(run_id)}
    unreachable = [p for p in providers if reachable_flags.get(p.name) is False]
    providers = [p for p in providers if p not in unreachable]
    reference = next((p for p in providers if p.reference), None)
    comparisons: dict[str, dict[str, Any]] = {}
    if options.adaptive and reference is not None:
        state = AdaptiveEval(suite, providers, reference, options)
        while planned := state.round():
            stored = {
                n: store.get_exchanges(run_id, n, [r.key for r in reqs])
                for n, reqs in planned.items()
            }
            missing = [n for n, reqs in planned.items() if len(stored[n]) < len(reqs)]
            if reference.name in missing:
                break  # an interrupted run: the rest was never sent
            # A provider whose round was never sent (unavailable, or decided under an
            # earlier rule) stops there; the others go on.
            state.absorb(planned, stored, incomplete=missing)
        evals = state.evals
        for name, ev in evals.items():
            if ev.test is not None:
                comparisons[name] = _sequential(ev.test, state.family, options)
    else:
        evals = _fixed_evals(store, run_id, providers, suite, options)
        if reference is not None:
            comparisons = _fixed_comparisons(evals, reference.name, options)
    results = [_result(evals[p.name], comparisons.get(p.name), suite, options) for p in providers]
    results += [
        {"name": p.name, "reference": p.reference, "unreachable": True} for p in unreachable
    ]
    return results


async def drive_adaptive(
    state: AdaptiveEval, send: SendRound, fetch: FetchRound, after: Callable[[AdaptiveEval], None]
) -> None:
    """Run rounds until every provider has stopped: send, fetch what was stored, absorb."""
    while planned := state.round():
        await send(planned)
        state.absorb(planned, fetch(planned))
        after(state)


def _fixed_evals(
    store: Store, run_id: str, providers: Sequence[Provider], suite: Suite, options: EvalOptions
) -> dict[str, ProviderEval]:
    problems = {p.id: p for p in suite.problems}
    evals = {}
    for provider in providers:
        ev = ProviderEval(provider, stop_reason="fixed")
        keys = [r.key for r in provider_requests(suite, options, provider)]
        stored = store.get_exchanges(run_id, provider.name, keys)
        for key in keys:  # in plan order: problem by problem, repeat by repeat
            x = stored.get(key)
            if x is not None:
                ev.score(suite, problems[key.split("/")[2]], key, x)
        evals[provider.name] = ev
    return evals


def sample_records(
    store: Store, run_id: str, providers: Sequence[Provider], options: EvalOptions
) -> dict[str, list[dict[str, Any]]]:
    """Per provider, one record per sample: key, problem, answer, reply (tail), score."""
    suite = load_suite(options)
    problems = {p.id: p for p in suite.problems}
    out: dict[str, list[dict[str, Any]]] = {}
    for provider in providers:
        ev = ProviderEval(provider)
        for item in store.exchanges(run_id, provider.name, PROBE):
            problem = problems.get(item.key.split("/")[2])
            if problem is not None:
                ev.score(suite, problem, item.key, item.exchange)
        out[provider.name] = ev.records
    return out


def _sequential(test: PairedSequentialTest, family: int, options: EvalOptions) -> dict[str, Any]:
    """An adaptive provider's comparison: its confidence sequence (at alpha / family) and
    the anytime-valid p-value of the same test, Bonferroni-adjusted."""
    low, high = test.interval()
    return {
        "diff": test.mean,
        "low": low,
        "high": high,
        "p_value": test.p_value(family),
        "n_pairs": test.n,
        "verdict": str(test.verdict()),
        "margin": options.margin,
        "confidence": 1 - test.alpha,
        "method": f"anytime-valid confidence sequence ({METHOD}), Bonferroni over {family}",
        "p_unadjusted": test.p_value(),
        "correction": "bonferroni",
        "family": family,
        "alpha": options.alpha,
    }


def _fixed_comparisons(
    evals: Mapping[str, ProviderEval], reference: str, options: EvalOptions
) -> dict[str, dict[str, Any]]:
    """Every provider against the reference on the problems both scored, Holm-corrected."""
    ref_scored = {k: v for k, v in evals[reference].scores.items() if v}
    if not ref_scored:
        return {}
    scored = {
        name: {k: v for k, v in ev.scores.items() if v}
        for name, ev in evals.items()
        if name != reference and any(ev.scores.values())
    }
    found = compare_with_reference(scored, ref_scored, margin=options.margin, alpha=options.alpha)
    return {
        name: {
            **asdict(c),
            "verdict": str(c.verdict),
            "n_pairs": None,
            "method": f"paired sign-flip test and its inversion, Holm over {c.family}",
        }
        for name, c in found.items()
    }


def _result(
    ev: ProviderEval, vs_reference: dict[str, Any] | None, suite: Suite, options: EvalOptions
) -> dict[str, Any]:
    repeats = options.repeats * (options.reference_repeats if ev.provider.reference else 1)
    fixed_samples = len(suite.problems) * repeats
    per_sample = ev.spend.tokens / ev.spend.samples if ev.spend.samples else None
    out: dict[str, Any] = {
        "name": ev.provider.name,
        "reference": ev.provider.reference,
        "suite": suite.name,
        "problems": len(suite.problems),
        "design": "adaptive" if ev.stop_reason != "fixed" else "fixed",
        "samples": ev.spend.samples,
        "errors": ev.spend.errors,
        "prompt_tokens": ev.spend.prompt_tokens,
        "completion_tokens": ev.spend.completion_tokens,
        "tokens": ev.spend.tokens,
        "cost_usd": ev.spend.usd,
        "fixed_design_samples": fixed_samples,
        "fixed_design_tokens": round(per_sample * fixed_samples) if per_sample else None,
        "stop_reason": ev.stop_reason,
        "accuracy": None,
        "vs_reference": None,
    }
    scored = {k: v for k, v in ev.scores.items() if v}
    if scored:
        out["accuracy"] = asdict(accuracy(scored))
        out["problems_sampled"] = len(scored)
    if ev.stop_reason == "fixed" and scored:
        out["suite_scores_by_repeat"] = _suite_scores(scored, repeats)
        # pass@k at the providers' k (the reference's estimate uses all its samples).
        out["pass_at_k"], out["pass_hat_k"] = _pass_k(scored, options.repeats)
    if vs_reference is not None and not ev.provider.reference:
        out["vs_reference"] = vs_reference
    return out


def _suite_scores(scores: Mapping[str, list[float]], repeats: int) -> list[float]:
    """Whole-suite score of each repeat r: the mean over problems of their r-th sample."""
    out = []
    for r in range(repeats):
        column = [v[r] for v in scores.values() if len(v) > r]
        if column:
            out.append(sum(column) / len(column))
    return out


def _pass_k(
    scores: Mapping[str, list[float]], repeats: int
) -> tuple[dict[str, float], dict[str, float]]:
    ks = sorted({1, repeats} | ({2} if repeats >= 2 else set()))
    at, hat = {}, {}
    for k in ks:
        usable = [v for v in scores.values() if len(v) >= k]
        if usable:
            at[str(k)] = sum(
                pass_at_k(len(v), int(sum(s >= 1.0 for s in v)), k) for v in usable
            ) / len(usable)
            hat[str(k)] = sum(
                pass_hat_k(len(v), int(sum(s >= 1.0 for s in v)), k) for v in usable
            ) / len(usable)
    return at, hat


def planned_fixed(
    providers: Iterable[Provider], suite: Suite, repeats: int, reference_repeats: int = 1
) -> dict[str, list[Request]]:
    """The fixed design's requests per provider (the reference's `reference_repeats` times
    as many)."""
    requests = fixed_requests(suite, repeats)
    extra = fixed_requests(suite, repeats * reference_repeats)
    return {p.name: extra if p.reference else requests for p in providers}
