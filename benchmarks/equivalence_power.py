"""Power study of `parity equiv` on the local fleet: rejection rates per method, variant, budget.

    .venv/bin/python benchmarks/equivalence_power.py                 # pools cached after 1st run
    .venv/bin/python benchmarks/equivalence_power.py --tests 400     # more simulated tests

What it does:

1. Pools. Starts the fleet (reference, reference-b, compressed-mild, compressed-severe,
   wrong-template) on ports 8900+ and, for the "same weights, different kernels" case, one
   more llama.cpp server on an F16 copy of the shipped Q4_1 weights (every quantized tensor
   dequantized to F16: the same numbers up to F16 rounding, ~5e-4 relative, served by other
   kernels: F16 matmuls instead of Q4_1 x Q8_1 dot products). From each server it draws ONE
   pool with exactly the requests `parity equiv` sends (`protocol.sample_requests`,
   `protocol.logprob_requests`: temperature 1, a fresh random seed per request, so no two
   requests share a seed) and max_tokens 12: `--samples` samples per prompt and `--repeats`
   logprob passes, each server its own number (`--samples`: the reference 32 per
   prompt, reference-b and compressed-mild 24, the F16 copy 16, the rest 8: the variants
   whose power is decided at large budgets get the larger pools). Pools are cached in
   `--cache` (default `~/.cache/parity/equivalence_power`, keyed by the sampling settings;
   a larger `--samples` later only tops a pool up), so a rerun costs no request. Then the
   servers are stopped.

2. Simulated tests. Each test uses the "recorded reference" design of `parity equiv test
   --against`: a recording of `--record` samples per prompt (and 2 logprob passes) drawn at
   random from the reference's pool, and a provider budget of P prompts x m samples per
   prompt (MMD and rank) or P prompts x r logprob passes (logprob), drawn at random from the
   provider's pool, on a random subset of P prompts. "reference (same server)" draws the
   provider's samples from the reference's pool, disjoint from that test's recording; every
   other row draws from its own server's pool. Every test is at alpha = 0.05 with
   `--permutations` permutations; the rejection rate over `--tests` tests is reported.

   Reusing finite pools: each test's data is a random subset of i.i.d. samples, so each
   test is distributed exactly like a fresh test and the rejection rates are unbiased; but
   tests share samples, so their spread is wider than binomial (the +- shown is the
   binomial standard error, a lower bound), and a pool's own luck carries into every test
   drawn from it (a small pool that happens to sit far from the reference inflates its
   whole row: with 8 samples per prompt for reference-b, the A/A rate at a 48-character
   kernel read 0.09-0.16; with 24 it reads 0.01-0.07). A budget that takes more than half of
   a pool per prompt is marked "+": read it as a few tests, not a rate.

3. Report: a markdown table method x variant x budget -> rejection rate, with requests and
   tokens per budget (provider side; the recording is paid once), the smallest budget per
   method and variant with power >= 95% while both A/A rates are <= 5% within sampling error
   (<= 5% + 2 SE: the tests are exact permutation tests, so the true rate is <= 5% by
   construction; the A/A columns check the fleet and the protocol), the effect sizes on the
   full pools, and an SVG plot of power vs requests (`--plot`, default
   docs/equivalence_power.svg).

Measured (2 CPU cores shared with other jobs): drawing every pool from scratch, 3,584 sample
and 448 logprob requests, takes about 9 minutes on a quiet machine (7-8 requests/s over the
six single-thread servers; 534 s for the first half under heavy load), the simulation about
3 minutes; a rerun from the cache only the simulation.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import hashlib
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from parity.core.client import ProviderClient
from parity.core.config import Provider, load_providers
from parity.equivalence.prompts import prompt_digest, prompts
from parity.equivalence.protocol import first_token_table, logprob_requests, sample_requests
from parity.equivalence.recording import EquivSettings
from parity.equivalence.statistics import (
    LOGPROB_METHOD,
    LOGPROB_STRICT_METHOD,
    MMD_METHOD,
    RANK_METHOD,
    encode_completions,
    hamming_gram,
    logprob_test,
    mmd_test_grams,
    rank_test_grams,
)
from parity.local.fleet import default_models_dir, fleet_down, fleet_up, parity_home
from parity.local.model import MODEL_ALIAS, shipped_model_path

FLEET = ["reference", "reference-b", "compressed-mild", "compressed-severe", "wrong-template"]
F16 = "same-weights-f16"
ROWS = [
    ("reference", "A/A same server"),
    ("reference-b", "A/A second server"),
    ("compressed-mild", "compressed-mild"),
    ("compressed-severe", "compressed-severe"),
    ("wrong-template", "wrong-template"),
    (F16, "same weights, F16 kernels"),
]
ALPHA = 0.05


# ---- the F16 copy ----------------------------------------------------------------------------


def f16_copy(source: Path, target: Path) -> Path:
    """Write (once) a GGUF whose quantized tensors are dequantized to F16; metadata copied."""
    if target.is_file():
        return target
    import gguf

    reader = gguf.GGUFReader(source)
    arch = reader.get_field(gguf.Keys.General.ARCHITECTURE)
    assert arch is not None
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    writer = gguf.GGUFWriter(tmp, arch=str(arch.contents()))
    for field in reader.fields.values():
        if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
            continue
        value_type = field.types[0]
        sub_type = field.types[-1] if value_type == gguf.GGUFValueType.ARRAY else None
        value = field.contents()
        if field.name == gguf.Keys.General.FILE_TYPE:
            value = int(gguf.LlamaFileType.MOSTLY_F16)
        writer.add_key_value(field.name, value, value_type, sub_type=sub_type)
    float_types = (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16)
    for tensor in reader.tensors:
        data: Any = tensor.data
        if tensor.tensor_type not in float_types:
            values = np.array(gguf.quants.dequantize(data, tensor.tensor_type), dtype=np.float32)
            writer.add_tensor(tensor.name, values.astype(np.float16))
        else:
            writer.add_tensor(tensor.name, data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(tmp, target)
    return target


def start_server(model: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    """One llama.cpp server like the fleet's (1 thread, n_ctx 4096), ready when it returns."""
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(model),
        "--model_alias",
        MODEL_ALIAS,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "4096",
        "--n_threads",
        "1",
        "--n_threads_batch",
        "1",
    ]
    with log.open("wb") as handle:
        process = subprocess.Popen(
            command, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + 180
    with httpx.Client(timeout=5, trust_env=False) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the F16 server exited: see {log}")
            try:
                if client.get(f"http://127.0.0.1:{port}/v1/models").status_code == 200:
                    return process
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
    stop_server(process)
    raise RuntimeError(f"the F16 server did not answer in 180 s: see {log}")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    """Stop the server this script started (its own process group), and reap it."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


# ---- pools -----------------------------------------------------------------------------------


def pool_size(pool: dict[str, Any] | None) -> tuple[int, int]:
    """Samples per prompt and logprob passes a pool was drawn with (0, 0 for none)."""
    if pool is None:
        return 0, 0
    return int(pool.get("n_samples", 0)), int(pool.get("n_repeats", 0))


async def draw_pool(
    provider: Provider,
    settings: EquivSettings,
    samples: int,
    repeats: int,
    pool: dict[str, Any] | None,
) -> dict[str, Any]:
    """Top `pool` up (or draw it) to `samples` per prompt and `repeats` logprob passes, sending
    one request at a time; keeps texts, tables and token counts."""
    items = prompts(settings.prompts)
    have_samples, have_repeats = pool_size(pool)
    if pool is None:
        pool = {"samples": {}, "logprobs": {}, "sample_tokens": [], "lp_tokens": []}
    async with ProviderClient(provider) as client:
        for req in sample_requests(items, settings, have_samples, samples):
            exchange = await client.chat(req.body, stream=False)
            if not exchange.ok:
                continue
            prompt_id = req.key.split("/")[1]
            pool["samples"].setdefault(prompt_id, []).append(exchange.text)
            pool["sample_tokens"].append(
                [exchange.prompt_tokens() or 0, exchange.completion_tokens() or 0]
            )
        for req in logprob_requests(items, settings, max(0, repeats - have_repeats)):
            exchange = await client.chat(req.body, stream=False)
            prompt_id = req.key.split("/")[1]
            table = first_token_table(exchange, settings.top_logprobs)
            # None marks a pass with no table (first token end-of-sequence): kept as a gap
            pool["logprobs"].setdefault(prompt_id, []).append(table)
            pool["lp_tokens"].append(
                [exchange.prompt_tokens() or 0, exchange.completion_tokens() or 0]
            )
    pool["n_samples"] = max(samples, have_samples)
    pool["n_repeats"] = max(repeats, have_repeats)
    return pool


def parse_sizes(text: str) -> dict[str, int]:
    """`name=N,...` with `*=N` as the default for every unnamed variant."""
    pairs = dict(item.split("=") for item in text.split(",") if item)
    default = int(pairs.pop("*", 0))
    unknown = set(pairs) - {*FLEET, F16}
    if unknown:
        raise SystemExit(f"unknown variant(s): {', '.join(sorted(unknown))}")
    return {name: int(pairs.get(name, default)) for name in [*FLEET, F16]}


def collect(args: argparse.Namespace, settings: EquivSettings) -> dict[str, dict[str, Any]]:
    """Load every variant's pool from the cache, drawing (and caching) the missing ones."""
    sampling = {k: v for k, v in asdict(settings).items() if k not in ("length", "unit")}
    key = hashlib.sha256(json.dumps(sampling).encode()).hexdigest()[:12]
    cache: Path = args.cache
    cache.mkdir(parents=True, exist_ok=True)
    samples, repeats = parse_sizes(args.samples), parse_sizes(args.repeats)
    paths = {name: cache / f"pool-{name}-{key}.json.gz" for name in [*FLEET, F16]}
    pools = {n: json.loads(gzip.decompress(p.read_bytes())) for n, p in paths.items() if p.exists()}
    missing = [
        n
        for n in paths
        if (n != F16 or args.f16)
        and (pool_size(pools.get(n))[0] < samples[n] or pool_size(pools.get(n))[1] < repeats[n])
    ]
    if not missing:
        return {n: p for n, p in pools.items() if n != F16 or args.f16}
    state = cache / "fleet"
    fleet_variants = [n for n in FLEET if n in missing]
    f16_process: subprocess.Popen[bytes] | None = None
    started = time.perf_counter()
    try:
        providers: dict[str, Provider] = {}
        if fleet_variants:
            path = fleet_up(state, fleet_variants, base_port=args.base_port)
            providers = {p.name: p for p in load_providers(path).providers}
        if F16 in missing:
            model = f16_copy(
                shipped_model_path(), default_models_dir() / "SmolLM2-135M-Instruct.F16.gguf"
            )
            port = args.base_port + len(FLEET)
            f16_process = start_server(model, port, cache / "f16.log")
            providers[F16] = Provider(
                name=F16, base_url=f"http://127.0.0.1:{port}/v1", model=MODEL_ALIAS
            )
        print(f"drawing pools for {', '.join(missing)} ...", file=sys.stderr)

        async def all_pools() -> list[dict[str, Any]]:
            return await asyncio.gather(
                *(
                    draw_pool(providers[n], settings, samples[n], repeats[n], pools.get(n))
                    for n in missing
                )
            )

        for name, pool in zip(missing, asyncio.run(all_pools()), strict=True):
            pools[name] = pool
            paths[name].write_bytes(gzip.compress(json.dumps(pool).encode()))
    finally:
        if f16_process is not None:
            stop_server(f16_process)
        fleet_down(state)
    print(f"pools drawn in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return {n: p for n, p in pools.items() if n != F16 or args.f16}


# ---- simulated tests ---------------------------------------------------------------------------


class Grams:
    """Per-prompt Hamming Gram matrices over every pool's samples (one per kernel length)."""

    def __init__(self, pools: dict[str, dict[str, Any]], ids: list[str], length: int) -> None:
        self.index: dict[str, dict[str, np.ndarray]] = {}
        self.grams: dict[str, np.ndarray] = {}
        for pid in ids:
            texts: list[str] = []
            self.index[pid] = {}
            for name, pool in pools.items():
                got = pool["samples"].get(pid, [])
                self.index[pid][name] = np.arange(len(texts), len(texts) + len(got))
                texts += got
            self.grams[pid] = hamming_gram(encode_completions(texts, length))


def simulate(
    method: str,
    variant: str,
    n_prompts: int,
    m: int,
    *,
    pools: dict[str, dict[str, Any]],
    grams: Grams | None,
    ids: list[str],
    record: int,
    tests: int,
    permutations: int,
    rng: np.random.Generator,
) -> float | None:
    """Rejection rate of `tests` simulated tests of `variant` vs a recording of the reference."""
    rejected = 0
    done = 0
    for _ in range(tests):
        chosen = rng.choice(len(ids), size=n_prompts, replace=False)
        if method in (LOGPROB_METHOD, LOGPROB_STRICT_METHOD):
            tables = {}
            for i in chosen:
                pid = ids[i]
                ref = [t for t in pools["reference"]["logprobs"].get(pid, [])]
                order = rng.permutation(len(ref))
                rec = [ref[j] for j in order[:2]]
                if variant == "reference":
                    prov = [ref[j] for j in order[2 : 2 + m]]
                else:
                    own = pools[variant]["logprobs"].get(pid, [])
                    prov = [own[j] for j in rng.permutation(len(own))[:m]]
                if len(prov) < m:
                    return None
                tables[pid] = ([t for t in prov if t], [t for t in rec if t])
            result = logprob_test(
                tables,
                alpha=ALPHA,
                permutations=permutations,
                seed=rng,
                strict=method == LOGPROB_STRICT_METHOD,
            )
        else:
            assert grams is not None
            subs, sizes = [], []
            for i in chosen:
                pid = ids[i]
                ref_idx = rng.permutation(grams.index[pid]["reference"])
                rec = ref_idx[:record]
                if variant == "reference":
                    prov = ref_idx[record : record + m]
                else:
                    prov = rng.permutation(grams.index[pid][variant])[:m]
                if len(prov) < m:
                    return None
                idx = np.concatenate([prov, rec])
                subs.append(grams.grams[pid][np.ix_(idx, idx)])
                sizes.append(len(prov))
            run = mmd_test_grams if method == MMD_METHOD else rank_test_grams
            result = run(subs, sizes, alpha=ALPHA, permutations=permutations, seed=rng)
        done += 1
        rejected += result.verdict == "different"
    return rejected / done if done else None


# ---- report -------------------------------------------------------------------------------------


def mean_tokens(pool: dict[str, Any], key: str) -> float:
    rows = pool[key]
    return float(np.mean([a + b for a, b in rows])) if rows else math.nan


def full_effects(
    pools: dict[str, dict[str, Any]], ids: list[str], grams: Grams, record: int
) -> dict[str, dict[str, float]]:
    """Effect sizes of each variant on its whole pool vs the whole reference pool."""
    out: dict[str, dict[str, float]] = {}
    for variant, _ in ROWS:
        if variant not in pools:
            continue
        subs, sizes, tables = [], [], {}
        for pid in ids:
            ref = grams.index[pid]["reference"]
            if variant == "reference":
                half = len(ref) // 2
                prov, rec = ref[:half], ref[half:]
                lp = pools["reference"]["logprobs"].get(pid, [])
                lp_prov, lp_rec = lp[: len(lp) // 2], lp[len(lp) // 2 :]
            else:
                prov, rec = grams.index[pid][variant], ref
                lp_prov = pools[variant]["logprobs"].get(pid, [])
                lp_rec = pools["reference"]["logprobs"].get(pid, [])
            idx = np.concatenate([prov, rec])
            subs.append(grams.grams[pid][np.ix_(idx, idx)])
            sizes.append(len(prov))
            tables[pid] = ([t for t in lp_prov if t], [t for t in lp_rec if t])
        mmd = mmd_test_grams(subs, sizes, permutations=999, seed=0)
        lp_result = logprob_test(tables, permutations=999, seed=0)
        out[variant] = {
            "mmd2": mmd.effect,
            "mmd_p": mmd.p_value,
            "mmd_z": mmd.z,
            "tv": lp_result.effect,
            "tv_null": lp_result.null_mean,
            "kl": lp_result.extra["kl"],
            "lp_p": lp_result.p_value,
            "lp_prompts": float(lp_result.prompts),
        }
    return out


def svg_plot(
    rates: dict[tuple[str, str, int, int], float | None],
    budgets: dict[str, list[tuple[int, int]]],
    cost: dict[str, float],
    path: Path,
) -> None:
    """Power vs provider requests: one panel per variant, one line per method and m."""
    variants = [v for v, _ in ROWS if any(k[1] == v for k in rates)]
    colors = {
        MMD_METHOD: "#1f77b4",
        RANK_METHOD: "#2ca02c",
        LOGPROB_METHOD: "#d62728",
        LOGPROB_STRICT_METHOD: "#ff7f0e",
    }
    dashes = {1: "1,3", 2: "", 4: "6,3", 8: "10,3,2,3"}
    width, height = 300, 220
    margin_left, margin_top = 45, 30
    plot_w, plot_h = width - 65, height - 75
    columns = 3
    rows_n = math.ceil(len(variants) / columns)
    total_w, total_h = columns * width, rows_n * height + 75
    all_requests = [p * m for b in budgets.values() for p, m in b]
    lo, hi = math.log10(min(all_requests)), math.log10(max(all_requests))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total_w}" height="{total_h}" '
        f'font-family="sans-serif" font-size="11">',
        f'<rect width="{total_w}" height="{total_h}" fill="white"/>',
    ]
    labels = dict(ROWS)
    for n, variant in enumerate(variants):
        ox = (n % columns) * width + margin_left
        oy = (n // columns) * height + margin_top

        def x(requests: float, ox: float = ox) -> float:
            return ox + (math.log10(requests) - lo) / (hi - lo or 1) * plot_w

        def y(rate: float, oy: float = oy) -> float:
            return oy + (1 - rate) * plot_h

        parts.append(
            f'<text x="{ox + plot_w / 2}" y="{oy - 10}" text-anchor="middle" '
            f'font-weight="bold">{labels[variant]}</text>'
        )
        parts.append(
            f'<rect x="{ox}" y="{oy}" width="{plot_w}" height="{plot_h}" fill="none" '
            'stroke="#999"/>'
        )
        for level in (0.05, 0.95):
            parts.append(
                f'<line x1="{ox}" x2="{ox + plot_w}" y1="{y(level)}" y2="{y(level)}" '
                f'stroke="#bbb" stroke-dasharray="3,3"/>'
            )
        for tick in (0, 0.5, 1):
            parts.append(f'<text x="{ox - 5}" y="{y(tick) + 4}" text-anchor="end">{tick:g}</text>')
        for req in sorted(set(all_requests)):
            if req & (req - 1) == 0:  # powers of two
                parts.append(
                    f'<text x="{x(req)}" y="{oy + plot_h + 14}" text-anchor="middle">{req}</text>'
                )
        for method, method_budgets in budgets.items():
            for m in sorted({mm for _, mm in method_budgets}):
                points = sorted(
                    (p * mm, rates.get((method, variant, p, mm)))
                    for p, mm in method_budgets
                    if mm == m
                )
                pts = [(r, v) for r, v in points if v is not None]
                if not pts:
                    continue
                coords = " ".join(f"{x(r):.1f},{y(v):.1f}" for r, v in pts)
                dash = dashes.get(m, "")
                parts.append(
                    f'<polyline points="{coords}" fill="none" stroke="{colors[method]}" '
                    f'stroke-width="1.6"' + (f' stroke-dasharray="{dash}"' if dash else "") + "/>"
                )
                for r, v in pts:
                    parts.append(
                        f'<circle cx="{x(r):.1f}" cy="{y(v):.1f}" r="2" fill="{colors[method]}"/>'
                    )
        parts.append(
            f'<text x="{ox + plot_w / 2}" y="{oy + plot_h + 28}" text-anchor="middle">'
            f"provider requests (log)</text>"
        )
    ly = rows_n * height + 20
    legend = [
        (MMD_METHOD, "MMD (Hamming)"),
        (RANK_METHOD, "rank (typicality)"),
        (LOGPROB_METHOD, "logprob (TV, tolerance)"),
        (LOGPROB_STRICT_METHOD, "logprob strict"),
    ]
    for i, (method, text) in enumerate(legend):
        parts.append(
            f'<line x1="{20 + i * 200}" x2="{45 + i * 200}" y1="{ly}" y2="{ly}" '
            f'stroke="{colors[method]}" stroke-width="2"/>'
            f'<text x="{50 + i * 200}" y="{ly + 4}">{text}</text>'
        )
    parts.append(
        f'<text x="20" y="{ly + 22}">Line style: samples or logprob passes per prompt, dotted '
        f"1, solid 2, dashed 4, dash-dot 8. x: provider requests (log scale). y: rejection rate "
        f"at alpha 0.05.</text>"
    )
    parts.append(
        f'<text x="20" y="{ly + 38}">Grey lines at 0.05 and 0.95. Mean tokens per request: '
        f"sample {cost.get('sample', math.nan):.0f}, logprob {cost.get('logprob', math.nan):.0f}."
        f" Recorded reference; local fleet, SmolLM2-135M on llama.cpp.</text>"
    )
    parts.append("</svg>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", type=Path, default=parity_home() / "equivalence_power")
    parser.add_argument("--base-port", type=int, default=8900)
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=12)
    parser.add_argument("--length", type=int, default=48, help="kernel length (characters)")
    parser.add_argument(
        "--samples",
        default="reference=32,reference-b=24,compressed-mild=24,same-weights-f16=16,*=8",
        help="pool size: samples per prompt, per variant (name=N, *=N for the rest)",
    )
    parser.add_argument("--repeats", default="reference=4,*=2", help="logprob passes, per variant")
    parser.add_argument("--record", type=int, default=16, help="recorded samples per prompt")
    parser.add_argument("--tests", type=int, default=200)
    parser.add_argument("--permutations", type=int, default=200)
    parser.add_argument("--budget-prompts", default="4,8,16,32")
    parser.add_argument("--budget-samples", default="2,4,8", help="MMD m values (rank adds 1)")
    parser.add_argument("--f16", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--plot", type=Path, default=Path("docs/equivalence_power.svg"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--reuse-rates",
        action="store_true",
        help="reuse the rejection rates of the last run with the same settings (report only)",
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    items = prompts(args.prompts)
    settings = EquivSettings(
        model=MODEL_ALIAS,
        prompts=args.prompts,
        prompt_digest=prompt_digest(items),
        max_tokens=args.max_tokens,
        length=args.length,
    )
    pools = collect(args, settings)
    drawn = time.perf_counter()
    ids = [p.id for p in items]
    grams = Grams(pools, ids, args.length)
    rng = np.random.default_rng(args.seed)
    p_list = [int(v) for v in args.budget_prompts.split(",")]
    m_list = [int(v) for v in args.budget_samples.split(",")]
    budgets = {
        MMD_METHOD: [(p, m) for m in m_list for p in p_list],
        RANK_METHOD: [(p, m) for m in [1, *m_list] for p in p_list],
        LOGPROB_METHOD: [(p, r) for r in (1, 2) for p in p_list],
        LOGPROB_STRICT_METHOD: [(p, r) for r in (1, 2) for p in p_list],
    }
    rates: dict[tuple[str, str, int, int], float | None] = {}
    saved = args.cache / "rates.json"
    run_key = json.dumps([vars(args)[k] for k in SIMULATION_ARGS] + [sorted(pools)], default=str)
    if args.reuse_rates and saved.exists():
        data = json.loads(saved.read_text())
        if data["key"] == run_key:
            rates = {tuple(k): v for k, v in data["rates"]}  # type: ignore[misc]
    for method, method_budgets in budgets.items():
        for variant, _ in ROWS:
            if variant not in pools:
                continue
            for p, m in method_budgets:
                if (method, variant, p, m) in rates:
                    continue
                rates[(method, variant, p, m)] = simulate(
                    method,
                    variant,
                    p,
                    m,
                    pools=pools,
                    grams=None if method in (LOGPROB_METHOD, LOGPROB_STRICT_METHOD) else grams,
                    ids=ids,
                    record=args.record,
                    tests=args.tests,
                    permutations=args.permutations,
                    rng=rng,
                )
    simulated = time.perf_counter()
    saved.write_text(
        json.dumps({"key": run_key, "rates": [[list(k), v] for k, v in rates.items()]})
    )
    cost = {
        "sample": float(np.nanmean([mean_tokens(p, "sample_tokens") for p in pools.values()])),
        "logprob": float(np.nanmean([mean_tokens(p, "lp_tokens") for p in pools.values()])),
    }
    print_report(args, rates, budgets, pools, cost, full_effects(pools, ids, grams, args.record))
    svg_plot(rates, budgets, cost, args.plot)
    print(
        f"\nplot: {args.plot}; pools {drawn - started:.0f} s (0 when cached), simulation "
        f"{simulated - drawn:.0f} s, total {time.perf_counter() - started:.0f} s"
    )
    return 0


SIMULATION_ARGS = (
    "prompts",
    "max_tokens",
    "length",
    "samples",
    "repeats",
    "record",
    "tests",
    "permutations",
    "budget_prompts",
    "budget_samples",
    "seed",
)

NAMES = {
    MMD_METHOD: "MMD",
    RANK_METHOD: "rank",
    LOGPROB_METHOD: "logprob",
    LOGPROB_STRICT_METHOD: "logprob strict",
}


def print_report(
    args: argparse.Namespace,
    rates: dict[tuple[str, str, int, int], float | None],
    budgets: dict[str, list[tuple[int, int]]],
    pools: dict[str, dict[str, Any]],
    cost: dict[str, float],
    effects: dict[str, dict[str, float]],
) -> None:
    """The markdown report: rates per budget, smallest budgets, effect sizes."""
    se_limit = ALPHA + 2 * math.sqrt(ALPHA * (1 - ALPHA) / args.tests)
    variants = [(v, label) for v, label in ROWS if v in pools]
    sizes = {v: pool_size(pools[v]) for v, _ in variants}
    lp_methods = (LOGPROB_METHOD, LOGPROB_STRICT_METHOD)

    def available(method: str, variant: str) -> int:
        n_samples, n_repeats = sizes[variant]
        if method in lp_methods:
            return n_repeats - 2 if variant == "reference" else n_repeats
        return n_samples - args.record if variant == "reference" else n_samples

    pool_text = ", ".join(f"{label} {sizes[v][0]}/{sizes[v][1]}" for v, label in variants)
    print(
        f"## Equivalence power on the local fleet\n\n{args.prompts} prompts, "
        f"{args.max_tokens} tokens per sample, temperature 1, MMD/rank kernel on the first "
        f"{args.length} characters. Recording: {args.record} samples per prompt and 2 logprob "
        f"passes, drawn from the reference's pool. Pools (samples per prompt / logprob "
        f"passes): {pool_text}. {args.tests} simulated tests per cell, {args.permutations} "
        f"permutations, alpha 0.05. Cells: rejection rate (binomial SE <= "
        f"{math.sqrt(0.25 / args.tests):.3f}); + marks a budget taking more than half of the "
        f"provider's pool per prompt (tests overlap a lot: read it as a few tests, not a "
        f"rate). Budget = provider requests per test (P prompts x m samples or passes); tokens "
        f"= requests x mean tokens per request (sample {cost['sample']:.1f}, logprob "
        f"{cost['logprob']:.1f}).\n"
    )
    labels = " | ".join(label for _, label in variants)
    print(f"| method | P x m | requests | tokens | {labels} |")
    print("|" + "---|" * (4 + len(variants)))
    for method, method_budgets in budgets.items():
        per = cost["logprob"] if method in lp_methods else cost["sample"]
        for p, m in sorted(method_budgets, key=lambda b: (b[0] * b[1], b[1])):
            cells = []
            for v, _ in variants:
                rate = rates.get((method, v, p, m))
                mark = "+" if 2 * m > available(method, v) else ""
                cells.append("-" if rate is None else f"{rate:.2f}{mark}")
            print(
                f"| {NAMES[method]} | {p} x {m} | {p * m} | {p * m * per:.0f} | "
                + " | ".join(cells)
                + " |"
            )
    print(
        f"\n### Smallest budget with power >= 0.95 while both A/A rates are <= 0.05 "
        f"(within 2 SE: <= {se_limit:.3f})\n"
    )
    faulty = [(v, label) for v, label in variants if not v.startswith("reference")]
    print("| method | " + " | ".join(label for _, label in faulty) + " |")
    print("|" + "---|" * (1 + len(faulty)))
    for method, method_budgets in budgets.items():
        per = cost["logprob"] if method in lp_methods else cost["sample"]
        cells = []
        for v, _ in faulty:
            ok = [
                (p * m, p, m)
                for p, m in method_budgets
                if (rates.get((method, v, p, m)) or 0) >= 0.95
                and all(
                    (rates.get((method, aa, p, m)) or 0) <= se_limit
                    for aa in ("reference", "reference-b")
                    if aa in pools
                )
            ]
            if ok:
                req, p, m = min(ok)
                cells.append(f"{req} req ({p} x {m}), {req * per:.0f} tok")
            else:
                cells.append("not reached")
        print(f"| {NAMES[method]} | " + " | ".join(cells) + " |")
    print("\n### Effect sizes on the whole pools (vs the whole reference pool)\n")
    print(
        "| variant | MMD^2 | MMD z | MMD p | logprob TV | KL | strict logprob p | prompts with "
        "a shared top-5 |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for v, label in variants:
        e = effects.get(v)
        if not e:
            continue
        print(
            f"| {label} | {e['mmd2']:.4f} | {e['mmd_z']:.1f} | {e['mmd_p']:.3g} | {e['tv']:.4f} | "
            f"{e['kl']:.4f} | {e['lp_p']:.3g} | {e['lp_prompts']:.0f} |"
        )


if __name__ == "__main__":
    sys.exit(main())
