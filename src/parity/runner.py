"""Scheduling: send every planned request once, store each exchange as soon as it completes.

Order: a preflight (GET /models) per provider; then the sequential requests (speed) one at a
time across the whole run, so timings are not disturbed by other traffic; then everything
else concurrently, at most `max_concurrency` in flight per provider. Requests whose key is
already stored are never sent again, which is what makes `--resume` safe.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from parity.client import ProviderClient
from parity.config import Provider, ProvidersFile
from parity.plan import RunOptions, plan_requests
from parity.probes.base import Request
from parity.store import Store

ProgressHook = Callable[[str, int, int], None]
"""hook(provider, done, total) after each stored exchange (and once at start)."""


@dataclass
class RunStats:
    """What one execution sent: per provider, requests sent now and skipped as stored."""

    sent: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    unreachable: dict[str, str] = field(default_factory=dict)


async def execute(
    store: Store,
    run_id: str,
    providers: ProvidersFile,
    options: RunOptions,
    progress: ProgressHook | None = None,
) -> RunStats:
    """Send what is not yet stored for `run_id`; returns what was sent and skipped."""
    stats = RunStats()
    for provider in providers.providers:
        store.add_provider(run_id, provider.name, provider.public_dict())
    clients = {p.name: ProviderClient(p, retries=options.retries) for p in providers.providers}
    try:
        for client in clients.values():
            await client.__aenter__()
        reachable = await _preflight(store, run_id, providers.providers, clients, stats)
        pending: dict[str, list[Request]] = {}
        for provider in reachable:
            planned = plan_requests(run_id, provider, options)
            stored = store.stored_keys(run_id, provider.name)
            todo = [r for r in planned if r.key not in stored]
            pending[provider.name] = todo
            stats.skipped[provider.name] = len(planned) - len(todo)
            stats.sent[provider.name] = 0
            if progress:
                progress(provider.name, len(planned) - len(todo), len(planned))
        done = {name: stats.skipped[name] for name in pending}
        totals = {name: done[name] + len(todo) for name, todo in pending.items()}

        async def send(provider: Provider, req: Request) -> None:
            store.log_send(run_id, provider.name, req.key)
            exchange = await clients[provider.name].chat(req.body, stream=req.stream)
            store.add_exchange(run_id, provider.name, req.probe, req.key, exchange)
            stats.sent[provider.name] += 1
            done[provider.name] += 1
            if progress:
                progress(provider.name, done[provider.name], totals[provider.name])

        for provider in reachable:
            for req in pending[provider.name]:
                if req.sequential:
                    await send(provider, req)

        async def drain(provider: Provider) -> None:
            limit = asyncio.Semaphore(provider.max_concurrency)

            async def one(req: Request) -> None:
                async with limit:
                    await send(provider, req)

            await asyncio.gather(*(one(r) for r in pending[provider.name] if not r.sequential))

        await asyncio.gather(*(drain(p) for p in reachable))
    finally:
        for client in clients.values():
            await client.__aexit__(None, None, None)
    return stats


async def _preflight(
    store: Store,
    run_id: str,
    providers: list[Provider],
    clients: dict[str, ProviderClient],
    stats: RunStats,
) -> list[Provider]:
    probes = await asyncio.gather(*(clients[p.name].list_models() for p in providers))
    reachable = []
    for provider, probe in zip(providers, probes, strict=True):
        store.set_reachability(run_id, provider.name, probe.reachable, probe.detail)
        if probe.reachable:
            reachable.append(provider)
        else:
            stats.unreachable[provider.name] = probe.detail
    return reachable
