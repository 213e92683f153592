"""A scripted OpenAI-compatible SSE server for the client benchmarks, run in its own process.

Shared by `benchmarks/client_overhead.py` and `benchmarks/concurrency_ceiling.py`. The request's
`model` chooses how it streams:

- `fast`: as many chunks as `max_tokens` asks, written as fast as the socket takes them.
- anything else (`paced`): the first token `ttft_ms` after the request's first bytes arrived,
  then one every `itl_ms`; the server records the `perf_counter_ns` at which it read the
  request (`recv`) and wrote each token chunk (`writes`), under the request's id (the chunk
  `id` is `chatcmpl-<id>`; the id is the `X-Request-ID` header when the client sends one).

Its records are read back with `GET /timings` (and cleared), or, when several server
processes share one port (`reuse_port`, the kernel spreads connections over them), with
SIGUSR1: each process then writes `{"pid", "cpu_s", "timings"}` to `<dump_dir>/<pid>.json`
(atomically) and clears its records; `cpu_s` is its process CPU time so far, `wait_s` the
time its main thread waited for a CPU so far (`runqueue_wait_s`).

Also the statistics of those records against a client's own: `timing_errors`.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["cpu_self", "percentiles", "runqueue_wait_s", "serve", "timing_errors"]

HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)


def cpu_self() -> float:
    """This process's CPU seconds so far (user + system, every thread)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def runqueue_wait_s() -> float:
    """Seconds this process's main thread has spent runnable but waiting for a CPU (Linux's
    /proc/self/schedstat; 0 where there is none): time lost to other load on the machine."""
    try:
        return int(Path("/proc/self/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def _frame(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _chunk(rid: str, delta: dict[str, Any], finish: str | None = None) -> bytes:
    payload = {
        "id": f"chatcmpl-{rid}",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "scripted",
        "system_fingerprint": "fp_scripted",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    return _frame(b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n")


def _usage(rid: str, n: int) -> bytes:
    payload = {
        "id": f"chatcmpl-{rid}",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "scripted",
        "choices": [],
        "usage": {"prompt_tokens": 20, "completion_tokens": n, "total_tokens": 20 + n},
    }
    return _frame(b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n")


class _TimedReader(asyncio.StreamReader):
    """Notes when a request's first bytes arrived (the buffer went from empty to not)."""

    arrived = 0

    def feed_data(self, data: bytes) -> None:
        if not self._buffer:  # type: ignore[attr-defined]
            self.arrived = time.perf_counter_ns()
        super().feed_data(data)


async def serve(
    port_file: Path,
    *,
    ttft_ms: float = 30,
    itl_ms: float = 10,
    port: int = 0,
    reuse_port: bool = False,
    dump_dir: Path | None = None,
    id_prefix: str = "r",
) -> None:
    """Serve on 127.0.0.1:`port` (0: any free port) until cancelled; the port is written to
    `port_file` once listening. Paced streams follow `ttft_ms`/`itl_ms` (module docstring);
    with `dump_dir`, SIGUSR1 dumps and clears the records; ids are `<id_prefix><n>`."""
    timings: dict[str, dict[str, Any]] = {}
    counter = 0
    ttft_ns = int(ttft_ms * 1_000_000)
    itl_ns = int(itl_ms * 1_000_000)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal counter
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                # The request's first bytes reached the server: the clock the truth starts on.
                recv = getattr(reader, "arrived", 0) or time.perf_counter_ns()
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                if method == "GET":
                    if target.startswith("/timings"):
                        data = json.dumps(timings).encode()
                        timings.clear()
                    else:  # a model list, for clients that probe
                        data = (
                            b'{"object":"list","data":[{"id":"paced","object":"model"},'
                            b'{"id":"fast","object":"model"}]}'
                        )
                    writer.write(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        b"Content-Length: %d\r\n\r\n%s" % (len(data), data)
                    )
                    await writer.drain()
                    continue
                request = json.loads(body)
                counter += 1
                rid = headers.get("x-request-id") or f"{id_prefix}{counter}"
                n = int(request.get("max_tokens") or request.get("max_completion_tokens") or 16)
                writer.write(HEAD)
                writer.write(_chunk(rid, {"role": "assistant", "content": ""}))
                if request.get("model") == "fast":
                    frame = _chunk(rid, {"content": " tok"})
                    for i in range(n):
                        writer.write(frame)
                        if i % 64 == 63:
                            await writer.drain()
                else:
                    frame = _chunk(rid, {"content": " tok"})
                    writes = []
                    for i in range(n):
                        due = recv + ttft_ns + i * itl_ns
                        delay = (due - time.perf_counter_ns()) / 1e9
                        if delay > 0:
                            await asyncio.sleep(delay)
                        writes.append(time.perf_counter_ns())
                        writer.write(frame)
                    timings[rid] = {"recv": recv, "writes": writes}
                writer.write(_chunk(rid, {}, "length"))
                writer.write(_usage(rid, n))
                writer.write(_frame(b"data: [DONE]\n\n"))
                writer.write(b"0\r\n\r\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()

    loop = asyncio.get_running_loop()

    def dump() -> None:
        assert dump_dir is not None
        data = {
            "pid": os.getpid(),
            "cpu_s": cpu_self(),
            "wait_s": runqueue_wait_s(),
            "timings": dict(timings),
        }
        timings.clear()
        path = dump_dir / f"{os.getpid()}.json"
        partial = path.with_suffix(".part")
        partial.write_text(json.dumps(data))
        partial.rename(path)

    if dump_dir is not None:
        loop.add_signal_handler(signal.SIGUSR1, dump)
    server = await loop.create_server(
        lambda: asyncio.StreamReaderProtocol(_TimedReader(limit=1 << 20), handle),
        "127.0.0.1",
        port,
        backlog=4096,
        reuse_port=reuse_port or None,
    )
    port_file.write_text(str(server.sockets[0].getsockname()[1]))
    async with server:
        await server.serve_forever()


def timing_errors(records: list[dict[str, Any]], server: dict[str, Any]) -> dict[str, Any]:
    """A client's timing errors against the server's records, matched by id.

    Each record is `{"id", "sent", "arrivals"}` (the client's own `perf_counter_ns` stamps:
    request sent, each token chunk seen) or `{"id", "ttft_ms", "icl_ms"}` (a tool's own
    figures: TTFT, the gaps between token chunks). Returns p50/p99 of the absolute TTFT error
    (client TTFT - server TTFT) and ITL error (each gap seen - the gap written), and, for
    stamped records, the TTFT error split into `send` (sent -> request read by the server)
    and `lag` (first token written -> seen); `n` matched, `unmatched` (unknown id or a
    different number of tokens), `ttft_mean_signed`.
    """
    ttft_err: list[float] = []
    lag: list[float] = []
    send: list[float] = []
    itl_err: list[float] = []
    unmatched = 0
    for r in records:
        truth = server.get(r["id"])
        if truth is None:
            unmatched += 1
            continue
        writes = truth["writes"]
        server_ttft = (writes[0] - truth["recv"]) / 1e6
        server_gaps = np.diff(writes) / 1e6
        if "arrivals" in r:  # our own timestamps
            arrivals = r["arrivals"]
            if len(arrivals) != len(writes):
                unmatched += 1
                continue
            ttft_err.append((arrivals[0] - r["sent"]) / 1e6 - server_ttft)
            lag.append((arrivals[0] - writes[0]) / 1e6)  # first token written -> seen
            send.append((truth["recv"] - r["sent"]) / 1e6)  # "sent" -> first bytes at server
            itl_err.extend((np.diff(arrivals) / 1e6 - server_gaps).tolist())
        else:  # a tool's own figures
            if r["ttft_ms"] is None:
                unmatched += 1
                continue
            ttft_err.append(r["ttft_ms"] - server_ttft)
            gaps = r["icl_ms"] or []
            if len(gaps) == len(server_gaps):
                itl_err.extend((np.asarray(gaps) - server_gaps).tolist())

    return {
        "ttft": percentiles(ttft_err),
        "itl": percentiles(itl_err),
        "lag": percentiles(lag),
        "send": percentiles(send),
        "n": len(ttft_err),
        "unmatched": unmatched,
        "ttft_mean_signed": float(np.mean(ttft_err)) if ttft_err else None,
    }


def percentiles(values: list[float]) -> dict[str, float | None]:
    """p50 and p99 of the absolute values (None when there are none)."""
    if not values:
        return {"p50": None, "p99": None}
    arr = np.abs(np.asarray(values))
    return {"p50": float(np.percentile(arr, 50)), "p99": float(np.percentile(arr, 99))}
