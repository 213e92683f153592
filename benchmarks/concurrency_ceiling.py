"""One machine's ceiling: `parity bench` holding up to 1,000 concurrent streams.

The scripted SSE server of `benchmarks/_scripted_sse.py` plays a paced model (first token
`--ttft-ms` after the request's first bytes arrive, then one every `--itl-ms`, `--tokens`
tokens) and records when it read each request and wrote each token (`perf_counter_ns`, the
CLOCK_MONOTONIC every process reads). With `--servers K`, K server processes share one port
(SO_REUSEPORT: the kernel spreads the client's connections over them), so the server side is
not one Python process's single core.

At each level (`--levels`, default 100, 250, 500, 1000 streams) a fresh client process runs
`--waves` x level requests at that fixed concurrency, through parity's own path:

- `--path bench` (default): `parity.speed.run.run_bench`, the machinery of `parity bench
  --load cN` (the closed-loop load generator, `ProviderClient.chat(stream=True)`, the store
  writer thread and a real SQLite store, the per-request metrics), inside `open_run` as
  `parity bench` does; TTFT and ITL are parity's own `RequestMetrics`, matched to the
  server's records by the response id.
- `--path client`: `parity.speed.load.run_load` driving `ProviderClient.chat(stream=True)`
  alone (no store, no metrics; the pool filled first with `preconnect`, as `run_bench`
  does), with the raw stamps, so the TTFT error splits into its send
  side (parity's `sent` -> request read by the server) and receive side (token written ->
  stamped by parity).

Per level: the client's process CPU (`getrusage`: every thread, so the store writer too) per
stream and per token chunk; its peak RSS (`ru_maxrss`) and RSS before the load; TTFT error
(parity's TTFT minus the server's, p50/p99 of the absolute value) and ITL error; failures
(not ok, or unmatched), and the TTFT error of the first wave apart from the later ones; the
client's event-loop lag (a 10 ms ticker's overshoot, p99/max); the share of the load's wall
time its main thread spent waiting for a CPU (Linux schedstat: other load on the machine);
the server side (each process's CPU share and wait share, and how late it wrote tokens
against its own schedule, p99: a late server means the load was lighter than asked); and the
load average before and after (the machine may be shared).

`--nice -10` (root) runs servers and clients ahead of other load: it sets their nice and,
under Linux's autogroup scheduling (where nice only ranks processes within one session), the
session's (restored at the end), so a shared machine measures the client, not its neighbours.

    .venv/bin/python benchmarks/concurrency_ceiling.py                  # 100 .. 1,000 streams
    .venv/bin/python benchmarks/concurrency_ceiling.py --repeat 2 --nice -10 --json out.json
    .venv/bin/python benchmarks/concurrency_ceiling.py --levels 20 --waves 1 --tokens 4
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _scripted_sse
import numpy as np
from _scripted_sse import cpu_self, runqueue_wait_s, timing_errors

LEVELS = (100, 250, 500, 1000)
LAG_TICK_S = 0.01


def raise_nofile() -> int:
    """Raise this process's open-file limit to its hard limit; returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _autogroup() -> str | None:
    """This session's scheduling group and its nice (`/autogroup-N nice K`), if any."""
    try:
        return Path("/proc/self/autogroup").read_text().strip()
    except OSError:
        return None


def _rss_mb() -> float:
    """Resident memory now (VmRSS), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------------------------------------
# The client process: one level
# ---------------------------------------------------------------------------------------------


class _LagMonitor:
    """How late a 10 ms ticker wakes up: the event loop's lag behind its timers."""

    def __init__(self) -> None:
        self.lags: list[float] = []
        self.stalls: list[tuple[float, float]] = []  # (s since start, ms) for lags >= 20 ms
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        start = time.perf_counter()
        while True:
            t0 = time.perf_counter()
            await asyncio.sleep(LAG_TICK_S)
            lag = (time.perf_counter() - t0 - LAG_TICK_S) * 1e3
            self.lags.append(lag)
            if lag >= 20:
                self.stalls.append((round(t0 - start, 3), round(lag, 1)))

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._tick())

    def stop(self) -> dict[str, Any]:
        if self._task is not None:
            self._task.cancel()
        if not self.lags:
            return {"p99": None, "max": None, "stalls": []}
        return {
            "p99": float(np.percentile(self.lags, 99)),
            "max": float(max(self.lags)),
            "stalls": self.stalls,
        }


def _provider(url: str, level: int) -> Any:
    from parity.core.config import Provider

    return Provider(
        name="ceiling", base_url=f"{url}/v1", model="paced", max_concurrency=level, timeout_s=120
    )


async def _bench_path(url: str, level: int, requests: int, tokens: int, db: Path) -> Any:
    """`parity bench --load c<level>` as the CLI runs it, minus the console."""
    from parity.core.lifecycle import open_run
    from parity.speed.load import LoadSpec
    from parity.speed.plan import Step
    from parity.speed.run import BenchSettings, run_bench
    from parity.speed.tokenizer import choose_tokenizer
    from parity.speed.workloads import parse_workload

    step = Step(parse_workload(f"20/{tokens}"), LoadSpec(concurrency=level), requests, None, 1)
    settings = BenchSettings(steps=[step])
    choice = choose_tokenizer("none")
    with open_run(db, "bench", {"steps": [step.to_dict()]}, resumable=False) as opened:
        rss0 = _rss_mb()
        monitor = _LagMonitor()
        monitor.start()
        cpu0, wait0, t0 = cpu_self(), runqueue_wait_s(), time.perf_counter()
        report = await run_bench(
            opened.store, opened.run_id, [_provider(url, level)], settings, choice
        )
        cpu, wall = cpu_self() - cpu0, time.perf_counter() - t0
        wait = runqueue_wait_s() - wait0
        lag = monitor.stop()
    entry = report["providers"][0]
    records = []
    errors: dict[str, int] = {}
    for step_report in entry["steps"]:
        for m in step_report["requests"]:
            if not m["ok"]:
                errors[m["error"] or "?"] = errors.get(m["error"] or "?", 0) + 1
            records.append(
                {
                    "id": (m["response_id"] or "").removeprefix("chatcmpl-"),
                    "ttft_ms": m["ttft_ms"],
                    "icl_ms": m["itl_ms"],
                    "ok": m["ok"],
                    "chunks": m["token_chunks"],
                    "index": m["index"],
                }
            )
    return {
        "cpu_s": cpu,
        "wait_s": wait,
        "wall_s": wall,
        "rss_before_mb": rss0,
        "rss_peak_mb": _peak_rss_mb(),
        "lag_ms": lag,
        "records": records,
        "errors": errors,
        "reachable": entry["reachable"],
        "detail": entry["detail"],
    }


async def _client_path(
    url: str, level: int, requests: int, tokens: int, preconnect: bool = True
) -> Any:
    """`run_load` driving `ProviderClient.chat(stream=True)`, raw stamps kept."""
    import orjson

    from parity.core.client import ProviderClient
    from parity.core.exchange import Exchange
    from parity.speed.load import LoadSpec, run_load

    body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": tokens}
    async with ProviderClient(_provider(url, level), retries=0) as client:
        await client.chat({**body, "max_tokens": 2}, stream=True)  # connect, warm up
        if preconnect:  # as run_bench does before a fixed-concurrency level
            await client.preconnect(level)
        rss0 = _rss_mb()
        monitor = _LagMonitor()
        monitor.start()
        cpu0, wait0, t0 = cpu_self(), runqueue_wait_s(), time.perf_counter()

        async def send(_index: int) -> Exchange:
            return await client.chat(body, stream=True)

        loaded = await run_load(send, LoadSpec(concurrency=level), requests=requests)
        cpu, wall = cpu_self() - cpu0, time.perf_counter() - t0
        wait = runqueue_wait_s() - wait0
        lag = monitor.stop()
    records = []
    errors: dict[str, int] = {}
    for sent in loaded.sent:
        x = sent.value
        if not x.ok:
            kind = str(x.error.value if x.error else "?")
            errors[kind] = errors.get(kind, 0) + 1
        rid = orjson.loads(x.chunks[0])["id"].removeprefix("chatcmpl-") if x.chunks else ""
        arrivals = x.timings.token_chunks
        records.append(
            {
                "id": rid,
                "sent": x.timings.sent,
                "arrivals": arrivals,
                "ok": x.ok,
                "chunks": len(arrivals),
                "index": sent.index,
            }
        )
    return {
        "cpu_s": cpu,
        "wait_s": wait,
        "wall_s": wall,
        "rss_before_mb": rss0,
        "rss_peak_mb": _peak_rss_mb(),
        "lag_ms": lag,
        "records": records,
        "errors": errors,
        "reachable": True,
        "detail": None,
    }


def _worker_main(args: argparse.Namespace) -> None:
    raise_nofile()
    if args.path == "bench":
        with tempfile.TemporaryDirectory(prefix="parity-ceiling-") as tmp:
            result = asyncio.run(
                _bench_path(args.url, args.level, args.requests, args.tokens, Path(tmp) / "c.db")
            )
    else:
        result = asyncio.run(
            _client_path(args.url, args.level, args.requests, args.tokens, not args.no_preconnect)
        )
    sys.stdout.write(json.dumps(result))


# ---------------------------------------------------------------------------------------------
# The servers
# ---------------------------------------------------------------------------------------------


class Servers:
    """K scripted server processes on one port (SO_REUSEPORT), their records read by SIGUSR1."""

    def __init__(self, count: int, ttft_ms: float, itl_ms: float, work: Path) -> None:
        self.dump_dir = work / "dumps"
        self.dump_dir.mkdir()
        self.procs: list[subprocess.Popen[bytes]] = []
        self.cpu: dict[int, float] = {}
        self.wait: dict[int, float] = {}
        port = 0
        for i in range(count):
            port_file = work / f"port{i}"
            cmd = [
                sys.executable,
                __file__,
                "serve",
                "--port-file",
                str(port_file),
                "--port",
                str(port),
                "--dump-dir",
                str(self.dump_dir),
                "--ttft-ms",
                str(ttft_ms),
                "--itl-ms",
                str(itl_ms),
                "--id-prefix",
                f"s{i}-",
            ]
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
            self.procs.append(proc)
            for _ in range(200):
                if port_file.exists() and port_file.read_text():
                    break
                if proc.poll() is not None:
                    raise RuntimeError(f"server {i} exited with {proc.returncode}")
                time.sleep(0.05)
            else:
                raise RuntimeError(f"server {i} did not start")
            port = int(port_file.read_text())
        self.url = f"http://127.0.0.1:{port}"
        self.collect()  # the CPU of start-up is nobody's level

    def collect(self) -> tuple[dict[str, Any], dict[int, tuple[float, float]]]:
        """Every process's records since the last collect, and its (CPU seconds, seconds
        waiting for a CPU) since then."""
        for proc in self.procs:
            proc.send_signal(signal.SIGUSR1)
        timings: dict[str, Any] = {}
        cpu: dict[int, tuple[float, float]] = {}
        for proc in self.procs:
            path = self.dump_dir / f"{proc.pid}.json"
            for _ in range(600):
                if path.exists():
                    break
                time.sleep(0.05)
            else:
                raise RuntimeError(f"server {proc.pid} wrote no records")
            data = json.loads(path.read_text())
            path.unlink()
            timings.update(data["timings"])
            cpu[proc.pid] = (
                data["cpu_s"] - self.cpu.get(proc.pid, 0.0),
                data["wait_s"] - self.wait.get(proc.pid, 0.0),
            )
            self.cpu[proc.pid] = data["cpu_s"]
            self.wait[proc.pid] = data["wait_s"]
        return timings, cpu

    def close(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _lateness(timings: dict[str, Any], ttft_ms: float, itl_ms: float) -> dict[str, float | None]:
    """How late the server wrote tokens against its own schedule, ms: p99 and max."""
    late: list[float] = []
    for truth in timings.values():
        recv = truth["recv"]
        for i, at in enumerate(truth["writes"]):
            late.append((at - recv) / 1e6 - (ttft_ms + i * itl_ms))
    if not late:
        return {"p99": None, "max": None}
    return {"p99": float(np.percentile(late, 99)), "max": float(max(late))}


# ---------------------------------------------------------------------------------------------
# One level, and the whole run
# ---------------------------------------------------------------------------------------------


def measure_level(servers: Servers, level: int, args: argparse.Namespace) -> dict[str, Any]:
    """One level in a fresh client process: client CPU/RSS/lag, errors, server side, load."""
    requests = args.waves * level
    load_before = os.getloadavg()
    servers.collect()  # drop what came before (the previous level's stragglers: none)
    cmd = [
        sys.executable,
        __file__,
        "worker",
        "--path",
        args.path,
        "--url",
        servers.url,
        "--level",
        str(level),
        "--requests",
        str(requests),
        "--tokens",
        str(args.tokens),
        *(["--no-preconnect"] if args.no_preconnect else []),
    ]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"client at {level} streams failed: {done.stderr[-3000:]}")
    run = json.loads(done.stdout)
    timings, server_cpu = servers.collect()
    load_after = os.getloadavg()
    records = run.pop("records")
    errs = timing_errors(records, timings)
    # The first wave opens every connection at once; the later ones reuse them.
    first = timing_errors([r for r in records if r["index"] < level], timings)
    later = timing_errors([r for r in records if r["index"] >= level], timings)
    ok = sum(1 for r in records if r["ok"])
    chunks = sum(r["chunks"] for r in records)
    out = {
        "level": level,
        "requests": requests,
        "records": len(records),
        "ok": ok,
        "failed": requests - ok,
        "unmatched": errs["unmatched"],
        "chunks": chunks,
        "cpu_s": run["cpu_s"],
        "wall_s": run["wall_s"],
        "cpu_ms_per_stream": run["cpu_s"] / max(len(records), 1) * 1e3,
        "cpu_us_per_chunk": run["cpu_s"] / max(chunks, 1) * 1e6,
        "cpu_share": run["cpu_s"] / run["wall_s"] if run["wall_s"] else None,
        "rss_before_mb": run["rss_before_mb"],
        "rss_peak_mb": run["rss_peak_mb"],
        "lag_ms": run["lag_ms"],
        "ttft_err_ms": errs["ttft"],
        "itl_err_ms": errs["itl"],
        "send_ms": errs["send"],
        "receive_ms": errs["lag"],
        "ttft_mean_signed_ms": errs["ttft_mean_signed"],
        "ttft_err_first_wave_ms": first["ttft"],
        "ttft_err_later_waves_ms": later["ttft"],
        "errors": run["errors"],
        "reachable": run["reachable"],
        "detail": run["detail"],
        # Shares of wall time, CPU used and time spent waiting for a CPU: the client's of its
        # load, each server's of the whole level (client start-up included, when it idles).
        "client_wait_share": run["wait_s"] / run["wall_s"] if run["wall_s"] else None,
        "server_cpu_share": [cpu / wall for cpu, _ in server_cpu.values()],
        "server_wait_share": [wait / wall for _, wait in server_cpu.values()],
        "server_late_ms": _lateness(timings, args.ttft_ms, args.itl_ms),
        "process_wall_s": wall,
        "load_before": load_before,
        "load_after": load_after,
    }
    out["limited_by"] = limited_by(out, args.itl_ms)
    return out


def limited_by(row: dict[str, Any], itl_ms: float) -> str:
    """What held a level back, by the rules of thumb the docs use: `server` (it wrote tokens
    later than half a token gap, p99), `machine` (the client waited >= 20% of the load for a
    CPU), `client` (its CPU >= 70% of a core), several joined by `+`, or `-`."""
    causes = []
    late = row["server_late_ms"]["p99"]
    if late is not None and late > itl_ms / 2:
        causes.append("server")
    if (row["client_wait_share"] or 0) >= 0.2:
        causes.append("machine")
    if (row["cpu_share"] or 0) >= 0.7:
        causes.append("client")
    return "+".join(causes) or "-"


def run_all(args: argparse.Namespace) -> dict[str, Any]:
    """Every level, `--repeat` times, against one set of servers; JSON-ready."""
    raise_nofile()
    group = _autogroup()
    if args.nice:
        # Servers and clients inherit it: a negative value (root) lets them go ahead of other
        # load on a shared machine, so what is measured is the client, not the neighbours.
        os.setpriority(os.PRIO_PROCESS, 0, args.nice)
        # With autogroup scheduling (Linux's default), nice only ranks processes within one
        # session; the session's own nice ranks it against the others (restored after).
        with contextlib.suppress(OSError):
            Path("/proc/self/autogroup").write_text(str(args.nice))
    try:
        return _levels(args)
    finally:
        if args.nice and group is not None:
            with contextlib.suppress(OSError, ValueError, IndexError):
                Path("/proc/self/autogroup").write_text(group.split()[-1])


def _levels(args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    levels = [int(x) for x in args.levels.split(",")]
    rounds: list[list[dict[str, Any]]] = []
    with tempfile.TemporaryDirectory(prefix="parity-ceiling-") as tmp:
        servers = Servers(args.servers, args.ttft_ms, args.itl_ms, Path(tmp))
        try:
            for r in range(args.repeat):
                rows = []
                for level in levels:
                    print(f"round {r + 1}: {level} streams...", file=sys.stderr, flush=True)
                    rows.append(measure_level(servers, level, args))
                rounds.append(rows)
        finally:
            servers.close()
    return {
        "settings": {
            "path": args.path,
            "levels": levels,
            "waves": args.waves,
            "tokens": args.tokens,
            "ttft_ms": args.ttft_ms,
            "itl_ms": args.itl_ms,
            "servers": args.servers,
            "repeat": args.repeat,
            "preconnect": not args.no_preconnect,
            "nice": os.getpriority(os.PRIO_PROCESS, 0),
            "autogroup": _autogroup(),
            "cores": os.cpu_count(),
            "nofile": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
        },
        "rounds": rounds,
        "runtime_s": time.perf_counter() - started,
        "command": shlex.join([sys.executable, *sys.argv]),
    }


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _pair(d: dict[str, float | None], a: str = "p50", b: str = "p99", digits: int = 2) -> str:
    return f"{_fmt(d[a], digits)} / {_fmt(d[b], digits)}"


def print_table(result: dict[str, Any]) -> None:
    """The markdown table (one row per round and level) and the settings line."""
    s = result["settings"]
    print(
        "| streams | round | ok / failed | client CPU s (CPU, wait share) | CPU ms/stream "
        "| CPU µs/chunk | RSS MB before / peak | TTFT err ms p50 / p99 | ITL err ms p50 / p99 "
        "| loop lag ms p99 / max | server CPU (wait) share per process | server late ms p99 "
        "| load avg before → after | limited by |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r, rows in enumerate(result["rounds"], 1):
        for row in rows:
            shares = ", ".join(
                f"{c:.2f} ({w:.2f})"
                for c, w in zip(row["server_cpu_share"], row["server_wait_share"], strict=True)
            )
            cells = [
                f"{row['level']:,}",
                str(r),
                f"{row['ok']:,} / {row['failed'] + row['unmatched']:,}",
                f"{row['cpu_s']:.2f} ({row['cpu_share']:.2f}, {row['client_wait_share']:.2f})",
                f"{row['cpu_ms_per_stream']:.2f}",
                f"{row['cpu_us_per_chunk']:.1f}",
                f"{row['rss_before_mb']:.0f} / {row['rss_peak_mb']:.0f}",
                _pair(row["ttft_err_ms"]),
                _pair(row["itl_err_ms"]),
                _pair(row["lag_ms"], "p99", "max", 1),
                shares,
                _fmt(row["server_late_ms"]["p99"]),
                f"{row['load_before'][0]:.2f} → {row['load_after'][0]:.2f}",
                row["limited_by"],
            ]
            print("| " + " | ".join(cells) + " |")
    print()
    for r, rows in enumerate(result["rounds"], 1):
        for row in rows:
            extra = [
                f"TTFT err ms p50 / p99 first wave {_pair(row['ttft_err_first_wave_ms'])}, "
                f"later waves {_pair(row['ttft_err_later_waves_ms'])}"
            ]
            if row["send_ms"]["p50"] is not None:
                extra.append(f"send {_pair(row['send_ms'])}, receive {_pair(row['receive_ms'])}")
            if row["errors"]:
                extra.append(f"errors {row['errors']}")
            if row["unmatched"]:
                extra.append(f"{row['unmatched']} unmatched")
            print(f"round {r}, {row['level']} streams: " + "; ".join(extra))
    print(
        f"\npath {s['path']}; {s['waves']} waves per level, {s['tokens']} tokens per stream, "
        f"first token after {s['ttft_ms']:g} ms then one every {s['itl_ms']:g} ms; "
        f"{s['servers']} server process(es); nice {s['nice']} ({s['autogroup']}); "
        f"{s['cores']} cores; "
        f"RLIMIT_NOFILE {s['nofile']}; "
        f"runtime {result['runtime_s']:.0f} s\ncommand: {result['command']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd")
    serve = sub.add_parser("serve")
    serve.add_argument("--port-file", required=True)
    serve.add_argument("--port", type=int, default=0)
    serve.add_argument("--dump-dir", required=True)
    serve.add_argument("--ttft-ms", type=float, required=True)
    serve.add_argument("--itl-ms", type=float, required=True)
    serve.add_argument("--id-prefix", default="r")
    worker = sub.add_parser("worker")
    worker.add_argument("--path", choices=["bench", "client"], required=True)
    worker.add_argument("--url", required=True)
    worker.add_argument("--level", type=int, required=True)
    worker.add_argument("--requests", type=int, required=True)
    worker.add_argument("--tokens", type=int, required=True)
    worker.add_argument("--no-preconnect", action="store_true")
    parser.add_argument("--levels", default=",".join(str(x) for x in LEVELS))
    parser.add_argument("--waves", type=int, default=2, help="requests per level / level")
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--ttft-ms", type=float, default=100)
    parser.add_argument("--itl-ms", type=float, default=50)
    parser.add_argument("--servers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--path", choices=["bench", "client"], default="bench")
    parser.add_argument(
        "--nice", type=int, default=0, help="scheduling priority of servers and clients"
    )
    parser.add_argument(
        "--no-preconnect",
        action="store_true",
        help="client path: let the first wave open its connections (what run_bench did before)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    if args.cmd == "serve":
        raise_nofile()
        asyncio.run(
            _scripted_sse.serve(
                Path(args.port_file),
                ttft_ms=args.ttft_ms,
                itl_ms=args.itl_ms,
                port=args.port,
                reuse_port=True,
                dump_dir=Path(args.dump_dir),
                id_prefix=args.id_prefix,
            )
        )
        return
    if args.cmd == "worker":
        _worker_main(args)
        return
    result = run_all(args)
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=1))
    print_table(result)


if __name__ == "__main__":
    main()
