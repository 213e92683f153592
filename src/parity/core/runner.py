"""Scheduling: send every planned request once, store each exchange as soon as it completes.

Providers are measured concurrently and independently: one task per provider that pings it
(GET /models; `preflight` does this for all at once where a caller needs every answer
first), then sends its sequential requests (speed) one at a time, with nothing else of that
provider in flight, and then the rest, at most `max_concurrency` in flight. One provider's
slow or hung requests never hold another's: each request is bounded by its provider's
`timeout_s` (no data event) and `deadline_s` (whole request), and a provider that fails
`UNAVAILABLE_AFTER` attempts in a row at the transport (connect error, timeout, stall,
deadline, HTTP 502/503/504; a success or any other answer resets the count) is unavailable:
its remaining requests are not sent, nothing is stored for them (so `--resume` sends them
later), and it is recorded as not reachable, with the reason.

`max_time_s` bounds the whole run: when it is up, sending stops (requests in flight are
dropped, unstored), what is stored stays, and `DeadlineReached` is raised, which ends the
run as interrupted, with the resume hint. Requests whose key is already stored are never
sent again, which is what makes `--resume` safe.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TypeVar

import orjson

from parity.core.client import ProviderClient
from parity.core.config import Provider, ProvidersFile
from parity.core.lifecycle import DeadlineReached
from parity.core.plan import RunOptions, RunPlan
from parity.core.request import Request
from parity.core.store import Store

ProgressHook = Callable[[str, int, int], None]
"""hook(provider, done, total) after each stored exchange (and once at start)."""

T = TypeVar("T")


@dataclass
class RunStats:
    """What one execution sent: per provider, requests sent now and skipped as stored."""

    sent: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    cached: dict[str, int] = field(default_factory=dict)
    unreachable: dict[str, str] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    """Providers that became unavailable mid-run: why, and how many requests were not sent."""
    not_sent: dict[str, int] = field(default_factory=dict)
    """Requests not sent because their provider was unavailable (resume sends them)."""


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
        max_time_s: float | None = None,
    ) -> None:
        """`max_time_s` bounds the whole run, counted from entering the context (preflight
        included); see the module docstring."""
        self.store = store
        self.cache = cache
        self.max_time_s = max_time_s
        self._deadline: float | None = None
        self.run_id = run_id
        self.providers = list(providers)
        self.progress = progress
        self.stats = RunStats()
        self._clients = {p.name: ProviderClient(p, retries=retries) for p in self.providers}
        for provider in self.providers:
            store.add_provider(run_id, provider.name, provider.public_dict())

    async def __aenter__(self) -> Runner:
        if self.max_time_s is not None:
            self._deadline = asyncio.get_running_loop().time() + self.max_time_s
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

    async def _within_max_time(self, work: Awaitable[T]) -> T:
        """`work`, cut off (and `DeadlineReached` raised) when the run's max time is up."""
        try:
            async with asyncio.timeout_at(self._deadline) as limit:
                return await work
        except TimeoutError:
            if limit.expired():
                raise DeadlineReached from None
            raise

    async def _probe(self, provider: Provider) -> bool:
        """Ping one provider (GET /models) and record whether it answered."""
        probe = await self._clients[provider.name].list_models()
        self.store.set_reachability(self.run_id, provider.name, probe.reachable, probe.detail)
        if not probe.reachable:
            self.stats.unreachable[provider.name] = probe.detail
        return probe.reachable

    async def preflight(self) -> list[Provider]:
        """Ping every provider (GET /models), record reachability, return the reachable ones."""
        answered = await self._within_max_time(
            asyncio.gather(*(self._probe(p) for p in self.providers))
        )
        return [p for p, ok in zip(self.providers, answered, strict=True) if ok]

    async def send(self, planned: Mapping[str, Sequence[Request]]) -> None:
        """Send, per provider name, the planned requests whose key is not stored yet."""
        by_name = {p.name: p for p in self.providers}
        await self._within_max_time(
            _all(self._measure(by_name[name], requests) for name, requests in planned.items())
        )

    async def probe_and_send(
        self, planned: Callable[[Provider], Sequence[Request]]
    ) -> list[Provider]:
        """Each provider on its own: its preflight, then, if it answered, the requests
        `planned(provider)` not stored yet; a provider whose preflight hangs holds up no
        other's requests. Returns the providers that answered, in order."""
        answered: set[str] = set()

        async def pipeline(provider: Provider) -> None:
            if await self._probe(provider):
                answered.add(provider.name)
                await self._measure(provider, planned(provider))

        await self._within_max_time(_all(pipeline(p) for p in self.providers))
        return [p for p in self.providers if p.name in answered]

    async def _measure(self, provider: Provider, requests: Sequence[Request]) -> None:
        """One provider's requests not stored yet: the sequential ones one by one, then the
        rest, at most `max_concurrency` in flight; none once it is unavailable."""
        name = provider.name
        client = self._clients[name]
        stored = self.store.stored_keys(self.run_id, name)
        pending = [r for r in requests if r.key not in stored]
        total = len(requests)
        done = total - len(pending)
        self.stats.skipped[name] = self.stats.skipped.get(name, 0) + done
        self.stats.sent.setdefault(name, 0)
        if self.progress:
            self.progress(name, done, total)

        async def one(req: Request) -> None:
            nonlocal done
            cache_key = cache_key_for(provider, req) if self.cache else None
            exchange = self.store.cached(cache_key) if cache_key else None
            if exchange is not None:
                self.stats.cached[name] = self.stats.cached.get(name, 0) + 1
            elif client.availability.unavailable:
                self.stats.not_sent[name] = self.stats.not_sent.get(name, 0) + 1
                return
            else:
                self.store.log_send(self.run_id, name, req.key)
                exchange = await client.chat(req.body, stream=req.stream, endpoint=req.endpoint)
                self.stats.sent[name] += 1
                if cache_key and exchange.ok:
                    self.store.put_cached(cache_key, exchange)
            self.store.add_exchange(self.run_id, name, req.probe, req.key, exchange)
            done += 1
            if self.progress:
                self.progress(name, done, total)

        for req in pending:
            if req.sequential:
                await one(req)
        limit = asyncio.Semaphore(provider.max_concurrency)

        async def limited(req: Request) -> None:
            async with limit:
                await one(req)

        await _all(limited(r) for r in pending if not r.sequential)
        self._note_unavailable(name)

    def _note_unavailable(self, name: str) -> None:
        """Record a provider whose requests were held back as not reachable, with why."""
        held = self.stats.not_sent.get(name, 0)
        if not held:
            return
        availability = self._clients[name].availability
        detail = (
            f"unavailable: {availability.describe()}; {held} request(s) not sent "
            "(resume the run to send them)"
        )
        self.stats.unavailable[name] = detail
        self.store.set_reachability(self.run_id, name, False, detail)


async def _all(work: Iterable[Awaitable[None]]) -> None:
    """Run `work` concurrently; when one raises (a store that fails), cancel the rest, wait
    for them and raise that exception itself, so nothing more is sent after a failure."""
    tasks = [asyncio.ensure_future(w) for w in work]
    if not tasks:
        return
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in tasks:
        if not task.cancelled() and (error := task.exception()) is not None:
            raise error


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
    options = plan.options
    async with Runner(
        store,
        run_id,
        providers.providers,
        options.retries,
        progress,
        max_time_s=options.max_time_s,
    ) as runner:
        await runner.probe_and_send(lambda provider: plan.requests(run_id, provider))
    return runner.stats
