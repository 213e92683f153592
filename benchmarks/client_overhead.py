"""Does the client distort what it measures? parity's client vs a plain openai-SDK loop vs aiperf.

A scripted SSE server (`benchmarks/_scripted_sse.py`) runs in its own process (so its CPU is
never billed to a client) and plays an OpenAI-compatible streaming endpoint in two ways, chosen
by the request's `model`:

- `fast`: as many chunks as `max_tokens` asks, written as fast as the socket takes them;
  the client's CPU time per chunk (process CPU, `resource.getrusage`, so other load on the
  machine hardly matters) gives "chunks parsed per second per core".
- `paced`: the first token 30 ms after the request was read, then one every 10 ms; the
  server records the `perf_counter_ns` at which it wrote each token chunk (the same
  CLOCK_MONOTONIC every process on the machine reads). A client's TTFT error is its TTFT
  minus the server's (first token written - request read); its ITL error, each gap it saw
  minus the gap the server wrote. Requests are matched by id (chunk `id`, or aiperf's
  X-Request-ID header). At 1, 10 and 100 concurrent streams.

Each client runs in its own process: parity (`ProviderClient.chat(stream=True)`), bare
aiohttp and httpx streaming loops (each block of bytes stamped as the library hands it over,
split by parity's `SSEParser`, one `orjson.loads` per event; aiohttp's `sent` taken at its
headers-sent trace hook, as parity takes it once a connection is had: the transport's own
cost, docs/transport.md), a plain openai-SDK streaming loop
(`AsyncOpenAI().chat.completions.create(stream=True)`, timestamps taken as each chunk is
yielded), and aiperf (its own per-request export). aiperf's CPU is
that of all its processes (RUSAGE_CHILDREN), measured as the difference between two runs of
different sizes, so its start-up does not count.

    .venv/bin/python benchmarks/client_overhead.py                 # every client
    .venv/bin/python benchmarks/client_overhead.py --clients parity,aiohttp,httpx
    .venv/bin/python benchmarks/client_overhead.py --aiperf none   # without aiperf

aiperf is not a dependency of parity (it pins other versions of rich and orjson): install it
in a venv of its own, e.g. `python -m venv ~/.cache/parity/aiperf-venv &&
~/.cache/parity/aiperf-venv/bin/pip install aiperf==0.13.0 gguf`; the script finds it there
or on PATH (`--aiperf PATH` to choose). It needs a local tokenizer directory: the script
builds one from the local model's GGUF (tokenizers + gguf, inside aiperf's venv), so nothing
is downloaded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _scripted_sse
from _scripted_sse import cpu_self, timing_errors

PACED_TTFT_MS = 30
PACED_ITL_MS = 10
PACED_TOKENS = 30
FAST_TOKENS = 2000
LEVELS = (1, 10, 100)
PACED_REQUESTS = {1: 15, 10: 50, 100: 300}
AIPERF_SMALL = 8
AIPERF_BIG = 200


# ---------------------------------------------------------------------------------------------
# Clients (each in its own process)
# ---------------------------------------------------------------------------------------------


async def _parity(url: str, model: str, concurrency: int, requests: int, tokens: int) -> Any:
    import orjson

    from parity.core.client import ProviderClient
    from parity.core.config import Provider

    provider = Provider(
        name="bench",
        base_url=f"{url}/v1",
        model=model,
        max_concurrency=concurrency,
        timeout_s=120,
    )
    records = []
    async with ProviderClient(provider, retries=0) as client:
        body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": tokens}
        await client.chat({**body, "max_tokens": 2}, stream=True)  # connect, warm up
        queue = list(range(requests))
        cpu0 = cpu_self()
        t0 = time.perf_counter()

        async def worker() -> None:
            while queue:
                queue.pop()
                x = await client.chat(body, stream=True)
                rid = orjson.loads(x.chunks[0])["id"].removeprefix("chatcmpl-") if x.chunks else ""
                records.append(
                    {
                        "id": rid,
                        "sent": x.timings.sent,
                        "arrivals": x.timings.token_chunks,
                        "ok": x.ok,
                        "error": x.error_detail,
                    }
                )

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        cpu = cpu_self() - cpu0
        wall = time.perf_counter() - t0
    return {"cpu_s": cpu, "wall_s": wall, "records": records}


async def _openai(url: str, model: str, concurrency: int, requests: int, tokens: int) -> Any:
    import httpx
    from openai import AsyncOpenAI

    client = AsyncOpenAI(
        base_url=f"{url}/v1",
        api_key="none",
        max_retries=0,
        http_client=httpx.AsyncClient(limits=httpx.Limits(max_connections=concurrency)),
    )
    messages = [{"role": "user", "content": "hi"}]
    records = []

    async def one(max_tokens: int) -> dict[str, Any]:
        sent = time.perf_counter_ns()
        stream = await client.chat.completions.create(
            model=model,
            messages=messages,
            max_tokens=max_tokens,
            stream=True,  # type: ignore
        )
        arrivals = []
        rid = ""
        async for chunk in stream:
            now = time.perf_counter_ns()
            rid = chunk.id
            if chunk.choices and chunk.choices[0].delta.content:
                arrivals.append(now)
        return {
            "id": rid.removeprefix("chatcmpl-"),
            "sent": sent,
            "arrivals": arrivals,
            "ok": True,
            "error": None,
        }

    await one(2)
    queue = list(range(requests))
    cpu0 = cpu_self()
    t0 = time.perf_counter()

    async def worker() -> None:
        while queue:
            queue.pop()
            records.append(await one(tokens))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    cpu = cpu_self() - cpu0
    wall = time.perf_counter() - t0
    await client.close()
    return {"cpu_s": cpu, "wall_s": wall, "records": records}


async def _library_loop(
    client: str, url: str, model: str, concurrency: int, requests: int, tokens: int
) -> Any:
    """A bare streaming loop over `client` (aiohttp or httpx): each block of bytes stamped as
    the library hands it over, split by parity's `SSEParser`, every event `orjson.loads`ed:
    the transport's own cost, without parity's client around it."""
    import orjson

    from parity.core.sse import SSEParser

    headers = {
        "Content-Type": "application/json",
        "Accept": "text/event-stream",
        "Accept-Encoding": "identity",
    }
    messages = [{"role": "user", "content": "hi"}]
    records: list[dict[str, Any]] = []

    def fold(parser: SSEParser, data: bytes, now: int, seen: dict[str, Any]) -> None:
        for payload in parser.feed(data):
            if payload == "[DONE]":
                continue
            chunk = orjson.loads(payload)
            seen["id"] = chunk["id"]
            choices = chunk.get("choices")
            if choices and choices[0]["delta"].get("content"):
                seen["arrivals"].append(now)

    if client == "aiohttp":
        import aiohttp

        async def headers_sent(
            _session: Any, context: Any, _params: aiohttp.TraceRequestHeadersSentParams
        ) -> None:
            # `sent` as parity takes it: once a connection is had, as the request goes out.
            context.trace_request_ctx["sent"] = time.perf_counter_ns()

        trace = aiohttp.TraceConfig()
        trace.on_request_headers_sent.append(headers_sent)
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=concurrency),
            timeout=aiohttp.ClientTimeout(total=None, sock_read=120),
            auto_decompress=False,
            trace_configs=[trace],
        )

        async def one(max_tokens: int) -> dict[str, Any]:
            payload = orjson.dumps(
                {"model": model, "messages": messages, "stream": True, "max_tokens": max_tokens}
            )
            parser = SSEParser()
            seen: dict[str, Any] = {"id": "", "arrivals": []}
            context: dict[str, int] = {}
            async with session.post(
                f"{url}/v1/chat/completions",
                data=payload,
                headers=headers,
                trace_request_ctx=context,
            ) as response:
                async for data in response.content.iter_any():
                    fold(parser, data, time.perf_counter_ns(), seen)
            return {
                "id": seen["id"].removeprefix("chatcmpl-"),
                "sent": context["sent"],
                "arrivals": seen["arrivals"],
                "ok": True,
                "error": None,
            }

        close = session.close
    else:
        import httpx

        http = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=concurrency), timeout=120, headers=headers
        )

        async def one(max_tokens: int) -> dict[str, Any]:
            payload = orjson.dumps(
                {"model": model, "messages": messages, "stream": True, "max_tokens": max_tokens}
            )
            parser = SSEParser()
            seen: dict[str, Any] = {"id": "", "arrivals": []}
            sent = time.perf_counter_ns()
            async with http.stream(
                "POST", f"{url}/v1/chat/completions", content=payload
            ) as response:
                async for data in response.aiter_raw():
                    fold(parser, data, time.perf_counter_ns(), seen)
            return {
                "id": seen["id"].removeprefix("chatcmpl-"),
                "sent": sent,
                "arrivals": seen["arrivals"],
                "ok": True,
                "error": None,
            }

        close = http.aclose

    await one(2)  # connect, warm up
    queue = list(range(requests))
    cpu0 = cpu_self()
    t0 = time.perf_counter()

    async def worker() -> None:
        while queue:
            queue.pop()
            records.append(await one(tokens))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    cpu = cpu_self() - cpu0
    wall = time.perf_counter() - t0
    await close()
    return {"cpu_s": cpu, "wall_s": wall, "records": records}


def _worker_main(args: argparse.Namespace) -> None:
    if args.client in ("aiohttp", "httpx"):
        result = asyncio.run(
            _library_loop(
                args.client, args.url, args.model, args.concurrency, args.requests, args.tokens
            )
        )
        sys.stdout.write(json.dumps(result))
        return
    fn = _parity if args.client == "parity" else _openai
    result = asyncio.run(fn(args.url, args.model, args.concurrency, args.requests, args.tokens))
    sys.stdout.write(json.dumps(result))


def _run_worker(
    client: str, url: str, model: str, concurrency: int, requests: int, tokens: int
) -> dict[str, Any]:
    cmd = [
        sys.executable,
        __file__,
        "worker",
        "--client",
        client,
        "--url",
        url,
        "--model",
        model,
        "--concurrency",
        str(concurrency),
        "--requests",
        str(requests),
        "--tokens",
        str(tokens),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{client} worker failed: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


# ---------------------------------------------------------------------------------------------
# aiperf (a subprocess; its own venv)
# ---------------------------------------------------------------------------------------------


def _find_aiperf(choice: str | None) -> Path | None:
    if choice == "none":
        return None
    if choice:
        return Path(choice)
    home = Path(os.environ.get("PARITY_HOME", Path.home() / ".cache" / "parity"))
    for candidate in (
        Path(sys.executable).parent / "aiperf",
        home / "aiperf-venv" / "bin" / "aiperf",
    ):
        if candidate.exists():
            return candidate
    found = shutil.which("aiperf")
    return Path(found) if found else None


_TOKENIZER_SCRIPT = r"""
import json, sys
from pathlib import Path
import gguf
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, AddedToken
path, out = sys.argv[1], Path(sys.argv[2])
reader = gguf.GGUFReader(path)
def strings(name):
    f = reader.fields[name]
    return [bytes(f.parts[i]).decode() for i in f.data]
tokens = strings("tokenizer.ggml.tokens")
merges = [tuple(m.split(" ", 1)) for m in strings("tokenizer.ggml.merges")]
types = reader.fields["tokenizer.ggml.token_type"].contents()
tok = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges))
tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
tok.decoder = decoders.ByteLevel()
tok.add_special_tokens([AddedToken(t, special=True) for t, k in zip(tokens, types) if k == 3])
out.mkdir(parents=True, exist_ok=True)
tok.save(str(out / "tokenizer.json"))
eos = tokens[reader.fields["tokenizer.ggml.eos_token_id"].contents()]
bos = tokens[reader.fields["tokenizer.ggml.bos_token_id"].contents()]
(out / "tokenizer_config.json").write_text(json.dumps({
    "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": bos, "eos_token": eos,
    "model_max_length": 8192}))
"""


def _tokenizer_dir(aiperf: Path, work: Path) -> Path:
    """A tokenizer directory for aiperf, built from the local model's GGUF, offline."""
    from parity.local.model import shipped_model_path

    out = work / "tokenizer"
    python = aiperf.parent / "python"
    subprocess.run(
        [str(python), "-c", _TOKENIZER_SCRIPT, str(shipped_model_path()), str(out)],
        check=True,
        capture_output=True,
        text=True,
    )
    return out


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run_aiperf(
    aiperf: Path,
    tokenizer: Path,
    url: str,
    model: str,
    concurrency: int,
    requests: int,
    tokens: int,
    work: Path,
) -> dict[str, Any]:
    out = work / f"aiperf-{model}-c{concurrency}-n{requests}"
    cmd = [
        str(aiperf),
        "profile",
        "--model",
        model,
        "--url",
        url,
        "--endpoint-type",
        "chat",
        "--streaming",
        "--concurrency",
        str(concurrency),
        "--request-count",
        str(requests),
        "--tokenizer",
        str(tokenizer),
        "--synthetic-input-tokens-mean",
        "20",
        "--synthetic-input-tokens-stddev",
        "0",
        "--output-tokens-mean",
        str(tokens),
        "--output-tokens-stddev",
        "0",
        "--warmup-request-count",
        "1",
        "--ui",
        "none",
        "--artifact-dir",
        str(out),
        "--workers-max",
        "1",
        "--no-server-metrics",
        "--no-gpu-telemetry",
    ]
    # Not HF_HUB_OFFLINE: aiperf then looks the directory up in the hub cache and fails.
    env = dict(os.environ)
    cpu0 = _children_cpu()
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - t0
    cpu = _children_cpu() - cpu0
    if done.returncode != 0:
        raise RuntimeError(
            f"aiperf failed ({shlex.join(cmd)}): {done.stdout[-1500:]}{done.stderr[-1500:]}"
        )
    records = []
    for path in out.rglob("profile_export.jsonl"):
        for line in path.read_text().splitlines():
            data = json.loads(line)
            meta = data.get("metadata", {})
            metrics = data.get("metrics", {})
            ttft = metrics.get("time_to_first_token", {}).get("value")
            icl = metrics.get("inter_chunk_latency", {}).get("value")
            records.append({"id": meta.get("x_request_id"), "ttft_ms": ttft, "icl_ms": icl})
    return {"cpu_s": cpu, "wall_s": wall, "records": records, "command": shlex.join(cmd)}


def _get(url: str) -> Any:
    import httpx

    return httpx.get(url, timeout=30).json()


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd")
    serve = sub.add_parser("serve")
    serve.add_argument("--port-file", required=True)
    worker = sub.add_parser("worker")
    worker.add_argument("--client", choices=["parity", "aiohttp", "httpx", "openai"], required=True)
    worker.add_argument("--url", required=True)
    worker.add_argument("--model", required=True)
    worker.add_argument("--concurrency", type=int, default=1)
    worker.add_argument("--requests", type=int, default=1)
    worker.add_argument("--tokens", type=int, default=16)
    parser.add_argument("--aiperf", default=None, help="aiperf executable, or none")
    parser.add_argument("--fast-requests", type=int, default=20)
    parser.add_argument("--clients", default="parity,aiohttp,httpx,openai,aiperf")
    args = parser.parse_args()
    if args.cmd == "serve":
        asyncio.run(_scripted_sse.serve(Path(args.port_file)))
        return
    if args.cmd == "worker":
        _worker_main(args)
        return
    _bench(args)


def _bench(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    clients = args.clients.split(",")
    aiperf = _find_aiperf(args.aiperf) if "aiperf" in clients else None
    if aiperf is None:
        clients = [c for c in clients if c != "aiperf"]
    with tempfile.TemporaryDirectory(prefix="parity-overhead-") as tmp:
        work = Path(tmp)
        port_file = work / "port"
        server = subprocess.Popen(
            [sys.executable, __file__, "serve", "--port-file", str(port_file)],
            stdin=subprocess.DEVNULL,
        )
        try:
            for _ in range(100):
                if port_file.exists() and port_file.read_text():
                    break
                time.sleep(0.05)
            url = f"http://127.0.0.1:{port_file.read_text()}"
            tokenizer = _tokenizer_dir(aiperf, work) if aiperf else None
            results: dict[str, dict[str, Any]] = {c: {} for c in clients}
            for client in clients:
                results[client] = _measure(client, url, args.fast_requests, aiperf, tokenizer, work)
        finally:
            server.terminate()
            server.wait(10)
    elapsed = time.perf_counter() - started
    _print_table(results, elapsed, load_before, os.getloadavg()[0])


def _measure(
    client: str, url: str, n: int, aiperf: Path | None, tokenizer: Path | None, work: Path
) -> dict[str, Any]:
    """Timing errors at 1, 10 and 100 streams, then CPU per chunk, for one client."""
    out: dict[str, Any] = {}
    for level in LEVELS:
        print(f"{client}: paced x{level}...", file=sys.stderr, flush=True)
        count = PACED_REQUESTS[level]
        if client == "aiperf":
            assert aiperf is not None and tokenizer is not None
            run = _run_aiperf(aiperf, tokenizer, url, "paced", level, count, PACED_TOKENS, work)
            out["command"] = run["command"]
        else:
            run = _run_worker(client, url, "paced", level, count, PACED_TOKENS)
        out[f"paced{level}"] = timing_errors(run["records"], _get(f"{url}/timings"))
    print(f"{client}: fast...", file=sys.stderr, flush=True)
    if client == "aiperf":
        assert aiperf is not None and tokenizer is not None
        # Two runs of different sizes: the difference is the streaming work, start-up cancels.
        # Many more chunks than for the in-process clients: the difference must dwarf the
        # noise of aiperf's start-up CPU (several processes, seconds of it).
        small = _run_aiperf(aiperf, tokenizer, url, "fast", 10, AIPERF_SMALL, FAST_TOKENS, work)
        run = _run_aiperf(aiperf, tokenizer, url, "fast", 10, AIPERF_BIG, FAST_TOKENS, work)
        cpu = run["cpu_s"] - small["cpu_s"]
        chunks = (AIPERF_BIG - AIPERF_SMALL) * FAST_TOKENS
    else:
        run = _run_worker(client, url, "fast", 10, n, FAST_TOKENS)
        cpu, chunks = run["cpu_s"], n * FAST_TOKENS
    _get(f"{url}/timings")
    out["fast"] = {"cpu_s": cpu, "chunks": chunks, "wall_s": run["wall_s"]}
    return out


def _ratio(other: float, mine: float, better: str) -> str:
    """`3.1x smaller` when parity's figure is the smaller one, else `2.0x larger`."""
    if mine <= other:
        return f"{other / mine:.1f}x {better}"
    return f"{mine / other:.1f}x {'more' if better == 'less' else 'larger'}"


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _print_table(
    results: dict[str, dict[str, Any]], elapsed: float, load_before: float, load_after: float
) -> None:
    print(
        "| client | chunks/s per core | CPU µs/chunk | TTFT err ms p50/p99 @1 | @10 | @100 "
        "| ITL err ms p50/p99 @1 | @10 | @100 |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    per_chunk = {}
    for client, res in results.items():
        fast = res["fast"]
        us = fast["cpu_s"] / fast["chunks"] * 1e6
        per_chunk[client] = us
        cells = [client, f"{fast['chunks'] / fast['cpu_s']:,.0f}", f"{us:.2f}"]
        for kind in ("ttft", "itl"):
            for level in LEVELS:
                e = res[f"paced{level}"][kind]
                cells.append(f"{_fmt(e['p50'])} / {_fmt(e['p99'])}")
        print("| " + " | ".join(cells) + " |")
    print()
    if "parity" in results:
        mine = results["parity"]
        for other, res in results.items():
            if other == "parity":
                continue
            parts = [f"CPU per chunk {_ratio(per_chunk[other], per_chunk['parity'], 'less')}"]
            for kind, label in (("ttft", "TTFT"), ("itl", "ITL")):
                for level in LEVELS:
                    a = mine[f"paced{level}"][kind]["p99"]
                    b = res[f"paced{level}"][kind]["p99"]
                    if a and b:
                        parts.append(f"{label} err p99 @{level} {_ratio(b, a, 'smaller')}")
            print(f"parity vs {other}: " + ", ".join(parts))
    for client, res in results.items():
        lags = ", ".join(
            f"@{lv} {_fmt(res[f'paced{lv}']['lag']['p50'])}/{_fmt(res[f'paced{lv}']['lag']['p99'])}"
            for lv in LEVELS
        )
        if res["paced1"]["lag"]["p50"] is not None:
            sends = ", ".join(
                f"@{lv} {_fmt(res[f'paced{lv}']['send']['p50'])}"
                f"/{_fmt(res[f'paced{lv}']['send']['p99'])}"
                for lv in LEVELS
            )
            print(
                f"{client}: TTFT error = send side + receive side; send (sent -> request's "
                f"first bytes at the server) ms p50/p99: {sends}; receive (first token "
                f"written -> stamped): {lags}"
            )
        counts = ", ".join(
            f"@{lv}: {res[f'paced{lv}']['n']} matched, {res[f'paced{lv}']['unmatched']} unmatched"
            for lv in LEVELS
        )
        print(f"{client}: {counts}")
        if "command" in res:
            print(f"{client} command: {res['command']}")
    print(
        f"\nruntime {elapsed:.0f} s; load average {load_before:.2f} before, {load_after:.2f} after "
        f"({os.cpu_count()} cores); command: {shlex.join([sys.executable, *sys.argv])}"
    )


if __name__ == "__main__":
    main()
