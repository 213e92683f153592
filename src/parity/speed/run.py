"""Running a bench: every step at every provider, one provider at a time, all stored.

Providers are measured one after another, so servers sharing a machine (the local fleet) do
not slow each other down. For each step: the warmup requests (sent one at a time, stored,
not counted), then, at a fixed concurrency N, N connections opened (`preconnect`, before the
clock starts), then the load run; every exchange goes to the store as soon as it completes
(from a writer thread, so a store write never stalls the streams still in flight), under
`bench/<workload>/<load>/<i>` (warmups: `.../warmup-<i>`; sweep levels: `<load>` is
`sweep<cap>-c<n>`). Aggregates and per-request metrics are stored as results (pillar
"speed"), prices and costs as pillar "price", so reports can be drawn from the store alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from parity.core.client import ProviderClient
from parity.core.config import Provider
from parity.core.exchange import Exchange
from parity.core.lifecycle import DeadlineReached
from parity.core.store import Store
from parity.speed.load import LoadResult, LoadSpec, run_load, sweep_levels
from parity.speed.metrics import SLO, RequestMetrics, aggregate, request_metrics
from parity.speed.plan import Step
from parity.speed.price import accuracy_cost, list_prices, measured_cost
from parity.speed.tokenizer import LocalTokenizer, TokenizerChoice
from parity.speed.workloads import make_body

__all__ = ["BenchSettings", "StepResult", "run_bench"]

PROBE = "bench"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class BenchSettings:
    """Everything about a bench but the providers."""

    steps: Sequence[Step]
    slos: Sequence[SLO] = ()
    temperature: float | None = None
    retries: int = 0
    seed: int = 0
    extra_body: dict[str, Any] | None = None
    max_time_s: float | None = None
    """Stop the whole bench after this many seconds (`DeadlineReached`); None: no limit."""


@dataclass
class StepResult:
    """One provider x step x load level: its requests, aggregates and load figures."""

    provider: str
    step: Step
    load_name: str
    level: int | None  # the concurrency of a sweep level
    requests: list[RequestMetrics]
    aggregates: dict[str, Any]
    load: dict[str, Any]

    @property
    def result_name(self) -> str:
        """The name its aggregates are stored under: `bench/<workload>/<load>`."""
        return f"bench/{self.step.workload.name}/{self.load_name}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: step, load figures, aggregates and every request."""
        return {
            "provider": self.provider,
            "workload": self.step.to_dict(),
            "load": self.load_name,
            "level": self.level,
            "load_figures": self.load,
            "aggregates": self.aggregates,
            "requests": [m.to_dict() for m in self.requests],
        }


class _Writer:
    """Stores exchanges from a worker thread, one at a time, in arrival order."""

    def __init__(self, store: Store, run_id: str) -> None:
        self.store = store
        self.run_id = run_id
        self._queue: asyncio.Queue[tuple[str, str, Exchange] | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._drain())

    def put(self, provider: str, key: str, exchange: Exchange) -> None:
        self._queue.put_nowait((provider, key, exchange))

    async def _drain(self) -> None:
        while (item := await self._queue.get()) is not None:
            provider, key, exchange = item
            await asyncio.to_thread(
                self.store.add_exchange, self.run_id, provider, PROBE, key, exchange
            )

    async def close(self) -> None:
        self._queue.put_nowait(None)
        if self._task is not None:
            await self._task


def _counters(
    tokenizer: LocalTokenizer | None,
) -> tuple[Callable[[str], int] | None, Callable[[list[dict[str, Any]]], int | None] | None]:
    if tokenizer is None:
        return None, None
    return tokenizer.count_text, tokenizer.count_prompt


async def run_bench(
    store: Store,
    run_id: str,
    providers: Sequence[Provider],
    settings: BenchSettings,
    tokenizers: TokenizerChoice,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Bench every provider; store exchanges and results; return the JSON-ready report:
    `{"run", "tokenizer", "providers": [{name, reachable, detail, steps, sweeps, price}]}`."""
    say = progress or (lambda _text: None)
    writer = _Writer(store, run_id)
    writer.start()
    report: dict[str, Any] = {"run": run_id, "tokenizer": tokenizers.note, "providers": []}
    loop = asyncio.get_running_loop()
    deadline = None if settings.max_time_s is None else loop.time() + settings.max_time_s
    try:
        async with asyncio.timeout_at(deadline) as limit:
            for provider in providers:
                store.add_provider(run_id, provider.name, provider.public_dict())
                entry = await _bench_provider(
                    store,
                    run_id,
                    provider,
                    settings,
                    tokenizers.for_model(provider.model),
                    writer,
                    say,
                )
                report["providers"].append(entry)
    except TimeoutError:
        if not limit.expired():
            raise
        raise DeadlineReached from None
    finally:
        await writer.close()  # what completed is stored, also when the max time is up
    return report


async def _bench_provider(
    store: Store,
    run_id: str,
    provider: Provider,
    settings: BenchSettings,
    tokenizer: LocalTokenizer | None,
    writer: _Writer,
    say: Progress,
) -> dict[str, Any]:
    peak = max(_max_concurrency(s.load) for s in settings.steps)
    # The pool must not queue requests the load generator means to have in flight.
    client_provider = provider.model_copy(
        update={"max_concurrency": max(provider.max_concurrency, peak)}
    )
    entry: dict[str, Any] = {
        "name": provider.name,
        "model": provider.model,
        "base_url": provider.base_url,
        "tokenizer": tokenizer.name if tokenizer else None,
        "steps": [],
        "sweeps": [],
    }
    all_metrics: list[RequestMetrics] = []
    async with ProviderClient(client_provider, retries=settings.retries) as client:
        probe = await client.list_models()
        store.set_reachability(run_id, provider.name, probe.reachable, probe.detail)
        entry["reachable"] = probe.reachable
        entry["detail"] = probe.detail
        if not probe.reachable:
            say(f"{provider.name}: unreachable ({probe.detail})")
            entry["price"] = _price(store, run_id, provider, [])
            return entry
        for step in settings.steps:
            if client.availability.unavailable:
                break
            levels = (
                [(f"{step.load.name}-c{n}", LoadSpec(concurrency=n), n) for n in sweep_levels(cap)]
                if (cap := step.load.sweep_cap) is not None
                else [(step.load.name, step.load, None)]
            )
            # Warmup once per step, before its first level.
            all_metrics += await _warmup(
                client, run_id, provider, step, levels[0][0], settings, tokenizer, writer
            )
            rows = []
            for load_name, spec, level in levels:
                if client.availability.unavailable:
                    break
                result = await _one_level(
                    client,
                    run_id,
                    provider,
                    step,
                    load_name,
                    spec,
                    level,
                    settings,
                    tokenizer,
                    writer,
                )
                all_metrics += result.requests
                entry["steps"].append(result.to_dict())
                store.put_result(
                    run_id,
                    provider.name,
                    "speed",
                    result.result_name,
                    {
                        "workload": step.to_dict(),
                        "load": load_name,
                        "level": level,
                        "load_figures": result.load,
                        **result.aggregates,
                    },
                )
                store.put_result(
                    run_id,
                    provider.name,
                    "speed",
                    result.result_name + "/requests",
                    [m.to_dict() for m in result.requests],
                )
                agg = result.aggregates
                say(
                    f"{provider.name}: {step.workload.name} {load_name}: "
                    f"{agg['ok']}/{agg['requests']} ok"
                    + (f", errors {agg['errors']}" if agg["errors"] else "")
                )
                if level is not None:
                    rows.append(_sweep_row(level, agg))
            if rows:
                sweep = {"workload": step.workload.name, "load": step.load.name, "rows": rows}
                entry["sweeps"].append(sweep)
                store.put_result(
                    run_id,
                    provider.name,
                    "speed",
                    f"bench/{step.workload.name}/{step.load.name}",
                    sweep,
                )
        if client.availability.unavailable:
            detail = f"unavailable: {client.availability.describe()}; its bench was cut short"
            store.set_reachability(run_id, provider.name, False, detail)
            entry["reachable"] = False
            entry["detail"] = detail
            say(f"{provider.name}: {detail}")
    entry["price"] = _price(store, run_id, provider, all_metrics)
    return entry


def _max_concurrency(load: LoadSpec) -> int:
    if load.sweep_cap is not None:
        return load.sweep_cap
    if load.mode == "rate":
        return 1024  # open loop: whatever piles up; no client-side pool may hold it back
    return load.concurrency


def _tag(run_id: str, step: Step, load_name: str, index: str) -> str:
    return f"{run_id}/{step.workload.name}/{load_name}/{index}"


async def _warmup(
    client: ProviderClient,
    run_id: str,
    provider: Provider,
    step: Step,
    load_name: str,
    settings: BenchSettings,
    tokenizer: LocalTokenizer | None,
    writer: _Writer,
) -> list[RequestMetrics]:
    count_text, count_prompt = _counters(tokenizer)
    out = []
    for i in range(step.warmup):
        if client.availability.unavailable:
            break
        key = f"bench/{step.workload.name}/{load_name}/warmup-{i}"
        body = make_body(
            step.workload,
            _tag(run_id, step, load_name, f"warmup-{i}"),
            _prompt_counter(tokenizer),
            temperature=settings.temperature,
            extra=settings.extra_body,
        )
        exchange = await _send(client, run_id, provider, key, body, writer)
        out.append(
            request_metrics(exchange, i, key, count_text=count_text, count_prompt=count_prompt)
        )
    return out


def _prompt_counter(tokenizer: LocalTokenizer | None) -> Callable[[str], int] | None:
    if tokenizer is None:
        return None

    def count(text: str) -> int:
        n = tokenizer.count_prompt([{"role": "user", "content": text}])
        return n if n is not None else tokenizer.count_text(text)

    return count


async def _send(
    client: ProviderClient,
    run_id: str,
    provider: Provider,
    key: str,
    body: dict[str, Any],
    writer: _Writer,
) -> Exchange:
    writer.store.log_send(run_id, provider.name, key)
    exchange = await client.chat(body, stream=True)
    writer.put(provider.name, key, exchange)
    return exchange


async def _one_level(
    client: ProviderClient,
    run_id: str,
    provider: Provider,
    step: Step,
    load_name: str,
    spec: LoadSpec,
    level: int | None,
    settings: BenchSettings,
    tokenizer: LocalTokenizer | None,
    writer: _Writer,
) -> StepResult:
    count_text, count_prompt = _counters(tokenizer)
    counter = _prompt_counter(tokenizer)
    requests = step.requests
    if level is not None and requests is not None:
        requests = max(requests, 2 * level)  # at least two full waves per level
    # Bodies are built before the clock starts: prompt building must not load the client.
    cache: dict[int, dict[str, Any]] = {}
    prebuilt = requests if requests is not None else 0

    def body(i: int) -> dict[str, Any]:
        if i not in cache:
            cache[i] = make_body(
                step.workload,
                _tag(run_id, step, load_name, str(i)),
                counter,
                temperature=settings.temperature,
                extra=settings.extra_body,
            )
        return cache[i]

    for i in range(min(prebuilt, 4096)):
        body(i)

    async def send(i: int) -> Exchange:
        key = f"bench/{step.workload.name}/{load_name}/{i}"
        return await _send(client, run_id, provider, key, body(i), writer)

    if spec.mode == "concurrency" and spec.concurrency > 1:
        # The connections the level keeps busy are opened before its clock starts: opened
        # all at once by its first requests, they hold the event loop while those stream.
        await client.preconnect(spec.concurrency)
    loaded: LoadResult[Exchange] = await run_load(
        send,
        spec,
        requests=requests,
        duration_s=step.duration_s,
        seed=settings.seed,
        stop=lambda: client.availability.unavailable,
    )
    metrics = []
    for sent in loaded.sent:
        key = f"bench/{step.workload.name}/{load_name}/{sent.index}"
        m = request_metrics(
            sent.value, sent.index, key, count_text=count_text, count_prompt=count_prompt
        )
        m.scheduled_s, m.started_s, m.finished_s = sent.scheduled_s, sent.started_s, sent.finished_s
        m.in_flight = sent.in_flight
        metrics.append(m)
    figures = {
        "mode": spec.mode,
        "concurrency": spec.concurrency if spec.mode == "concurrency" else None,
        "max_in_flight": loaded.max_in_flight,
        "asked_rate": loaded.asked_rate,
        "schedule_rate": loaded.schedule_rate,
        "achieved_rate": loaded.achieved_rate,
        "duration_s": loaded.duration_s,
        "span_s": loaded.span_s,
        "stopped_by": loaded.stopped_by,
    }
    aggregates = aggregate(metrics, span_s=loaded.span_s or None, slos=settings.slos)
    return StepResult(provider.name, step, load_name, level, metrics, aggregates, figures)


def _sweep_row(level: int, agg: dict[str, Any]) -> dict[str, Any]:
    return {
        "concurrency": level,
        "requests": agg["requests"],
        "ok": agg["ok"],
        "requests_per_s": agg["throughput"]["requests_per_s"],
        "output_tokens_per_s": agg["throughput"]["output_tokens_per_s"],
        "ttft_p50_ms": agg["ttft_ms"]["p50"],
        "ttft_p99_ms": agg["ttft_ms"]["p99"],
        "e2e_p50_ms": agg["e2e_ms"]["p50"],
        "speed_p50": agg["output_tokens_per_s"]["p50"],
        "error_rate": agg["error_rate_total"],
    }


def _price(
    store: Store, run_id: str, provider: Provider, metrics: Sequence[RequestMetrics]
) -> dict[str, Any]:
    counts = [
        (
            m.prompt_tokens,
            m.output_tokens if m.output_tokens_from == "usage" else None,
            m.local_prompt_tokens,
            m.local_output_tokens if m.local_output_tokens is not None else m.output_tokens,
        )
        for m in metrics
        if m.ok or m.prompt_tokens is not None  # refused requests are not billed
    ]
    cost = measured_cost(provider, counts)
    acc = accuracy_cost(store, provider, exclude_run=run_id)
    price = {
        "list": list_prices(provider),
        "measured": cost.to_dict(),
        "accuracy": acc,
    }
    store.put_result(run_id, provider.name, "price", "bench", price)
    return price
