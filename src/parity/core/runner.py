"""Scheduling: send every planned request once, store each exchange as soon as it completes.

Order: a preflight (GET /models) per provider; then the sequential requests (speed) one at a
time across the whole run, so timings are not disturbed by other traffic; then everything
else concurrently, at most `max_concurrency` in flight per provider. Requests whose key is
already stored are never sent again, which is what makes `--resume` safe.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType

import orjson

from parity.core.client import ProviderClient
from parity.core.config import Provider, ProvidersFile
from parity.core.plan import RunOptions, RunPlan
from parity.core.request import Request
from parity.core.store import Store

ProgressHook = Callable[[str, int, int], None]
"""hook(provider, done, total) after each stored exchange (and once at start)."""


@dataclass
class RunStats:
    """What one execution sent: per provider, requests sent now and skipped as stored."""

    sent: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    cached: dict[str, int] = field(default_factory=dict)
    unreachable: dict[str, str] = field(default_factory=dict)


class Runner:
    """Sends planned requests to a run's providers and stores every exchange at once.

    Use as an async context manager: it opens one client per provider and closes them all.
    """

    def __init__(
        self,
        store: Store,
        run_id: str,
        providers: Sequence[Provider],
        retries: int = 3,
        progress: ProgressHook | None = None,
        cache: bool = False,
    ) -> None:
        self.store = store
        self.cache = cache
        self.run_id = run_id
        self.providers = list(providers)
        self.progress = progress
        self.stats = RunStats()
        self._clients = {p.name: ProviderClient(p, retries=retries) for p in self.providers}
        for provider in self.providers:
            store.add_provider(run_id, provider.name, provider.public_dict())

    async def __aenter__(self) -> Runner:
        for client in self._clients.values():
            await client.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for client in self._clients.values():
            await client.__aexit__(exc_type, exc, tb)

    async def preflight(self) -> list[Provider]:
        """Ping every provider (GET /models), record reachability, return the reachable ones."""
        probes = await asyncio.gather(
            *(self._clients[p.name].list_models() for p in self.providers)
        )
        reachable = []
        for provider, probe in zip(self.providers, probes, strict=True):
            self.store.set_reachability(self.run_id, provider.name, probe.reachable, probe.detail)
            if probe.reachable:
                reachable.append(provider)
            else:
                self.stats.unreachable[provider.name] = probe.detail
        return reachable

    async def send(self, planned: Mapping[str, Sequence[Request]]) -> None:
        """Send, per provider name, the planned requests whose key is not stored yet."""
        by_name = {p.name: p for p in self.providers}
        pending: dict[str, list[Request]] = {}
        done: dict[str, int] = {}
        totals: dict[str, int] = {}
        for name, requests in planned.items():
            stored = self.store.stored_keys(self.run_id, name)
            pending[name] = [r for r in requests if r.key not in stored]
            done[name] = len(requests) - len(pending[name])
            totals[name] = len(requests)
            self.stats.skipped[name] = self.stats.skipped.get(name, 0) + done[name]
            self.stats.sent.setdefault(name, 0)
            if self.progress:
                self.progress(name, done[name], totals[name])

        async def one(provider: Provider, req: Request) -> None:
            cache_key = cache_key_for(provider, req) if self.cache else None
            exchange = self.store.cached(cache_key) if cache_key else None
            if exchange is not None:
                self.stats.cached[provider.name] = self.stats.cached.get(provider.name, 0) + 1
            else:
                self.store.log_send(self.run_id, provider.name, req.key)
                exchange = await self._clients[provider.name].chat(
                    req.body, stream=req.stream, endpoint=req.endpoint
                )
                self.stats.sent[provider.name] += 1
                if cache_key and exchange.ok:
                    self.store.put_cached(cache_key, exchange)
            self.store.add_exchange(self.run_id, provider.name, req.probe, req.key, exchange)
            done[provider.name] += 1
            if self.progress:
                self.progress(provider.name, done[provider.name], totals[provider.name])

        for name, requests in pending.items():
            for req in requests:
                if req.sequential:
                    await one(by_name[name], req)

        async def drain(provider: Provider) -> None:
            limit = asyncio.Semaphore(provider.max_concurrency)

            async def limited(req: Request) -> None:
                async with limit:
                    await one(provider, req)

            await asyncio.gather(*(limited(r) for r in pending[provider.name] if not r.sequential))

        await asyncio.gather(*(drain(by_name[name]) for name in pending))


def cache_key_for(provider: Provider, req: Request) -> str:
    """Response-cache key: what the provider is (URL, model, extra body), the request body and
    the sample index (the key's last part), so repeats of one prompt stay distinct samples."""
    identity = {
        "base_url": provider.base_url,
        "model": provider.model,
        "extra_body": provider.extra_body,
        "body": req.body,
        "stream": req.stream,
        "sample": req.key.rsplit("/", 1)[-1],
    }
    if req.endpoint != "chat/completions":
        identity["endpoint"] = req.endpoint
    return hashlib.sha256(orjson.dumps(identity, option=orjson.OPT_SORT_KEYS)).hexdigest()


async def execute(
    store: Store,
    run_id: str,
    providers: ProvidersFile,
    plan: RunPlan | RunOptions,
    progress: ProgressHook | None = None,
) -> RunStats:
    """Send what `plan` asks and is not yet stored for `run_id`; returns what was sent and
    skipped."""
    plan = RunPlan.of(plan)
    retries = plan.options.retries
    async with Runner(store, run_id, providers.providers, retries, progress) as runner:
        reachable = await runner.preflight()
        await runner.send({p.name: plan.requests(run_id, p) for p in reachable})
    return runner.stats
