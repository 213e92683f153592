"""False alarms and power MEASURED on real nondeterministic engines (issue 11, item 7).

Two parts, each with the real CLI and the real engines of the local fleet:

1. **Accuracy verdicts, by resampling recorded pools.** `record-pool` runs the real
   `parity run` (the real client, the `easy` suite's 80 problems at its own settings,
   temperature 0.7, max_tokens 16, one seed per sample from parity's key scheme) with
   ``--repeats K --reference-repeats 1 --speed-requests 0 --no-conformance``, so every
   provider answers each problem K times at the seeds of repeat indices 0..K-1 (the seeds a
   default run gives its repeats), all providers at once, so on the shared engine their
   requests interleave as in a real run. It saves each sample's score (and an 8-hex hash of
   its text) to a JSON pool (benchmarks/data/). `accuracy` then simulates R default
   `parity run` verdicts: per simulated run and problem it draws 8 repeat indices (the
   reference's 2 x `--reference-repeats` 4) and gives the reference its pool's samples at
   those indices, the A/A twin and compressed-mild theirs at the first 2 (a default run
   sends every provider the seeds of the reference's first two repeats), and calls
   `parity.accuracy.probe.compare`, the function `parity run`'s analysis calls (the paired
   sign-flip test, Holm across the run's providers, margin 3 points, alpha 0.05). Draws are
   with replacement by default (binomial noise around the pool's rates; `--distinct` draws
   without, which understates the noise: 8 of 20 is a finite-population draw).
   Several honest providers per run: the twin's pool reused, the first provider at the
   reference's seeds, the others at indices drawn on their own (seeds not shared).

2. **Conformance, by real repetition.** `conform` runs the real `parity conform FILE`
   with its defaults (every check, `--tries 1`) R times, one store per repetition, and
   counts per check how often each honest provider fails it; any failed check of an
   honest provider in a repetition is a family-wise false alarm for that provider-run.

    # the shared fleet (one llama.cpp engine behind two proxies) and compressed-mild
    parity local up --variants shared-reference,shared-reference-b,compressed-mild \\
        --state-dir /tmp/ff/fleet --base-port 8960
    python benchmarks/field_false_alarms.py record-pool /tmp/ff/fleet/providers.toml \\
        --repeats 20 --out benchmarks/data/pool-shared.json
    python benchmarks/field_false_alarms.py conform PAIR.toml --repetitions 3 \\
        --out benchmarks/data/conform-shared-full.json --keep /tmp/ff/full
    python benchmarks/field_false_alarms.py conform PAIR.toml --repetitions 20 \\
        --checks usage,params,streaming,tools.streamed \\
        --out benchmarks/data/conform-shared-core.json --keep /tmp/ff/core
    # PAIR: the two shared providers of the fleet's file, with timeout_s = 600 (their
    # tenants queue: the long-context documents pass the default 120 s on two busy cores)
    # vLLM (PARITY_VLLM_PYTHON, docs/fleet.md)
    parity local up --variants reference-vllm,reference-vllm-b --state-dir /tmp/ff/vllm ...
    python benchmarks/field_false_alarms.py record-pool /tmp/ff/vllm/providers.toml \\
        --repeats 12 --out benchmarks/data/pool-vllm.json --engine "vLLM 0.32.0 (CPU), two servers"
    python benchmarks/field_false_alarms.py conform /tmp/ff/vllm/providers.toml \\
        --repetitions 12 --out /tmp/ff/conform-vllm.json --keep /tmp/ff/vllm-stores
    # the kept stores judged again by the checks of the parity that runs this (no request)
    python benchmarks/field_false_alarms.py rejudge /tmp/ff/conform-vllm.json \\
        --keep /tmp/ff/vllm-stores --out benchmarks/data/conform-vllm.json
    # the tables (no engines: from the committed data files; deterministic given --seed)
    python benchmarks/field_false_alarms.py accuracy --runs 1000
    python benchmarks/field_false_alarms.py conform-table benchmarks/data/conform-*.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shlex
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from parity.accuracy import probe as accuracy
from parity.accuracy.suites import get_suite
from parity.core.store import Store
from parity.stats.estimates import wilson_interval

DATA = Path(__file__).parent / "data"
SUITE = "easy"
RUN_REPEATS = 2  # `parity run --repeats` default
REFERENCE_REPEATS = accuracy.DEFAULT_REFERENCE_REPEATS  # 4
MARGIN = 0.03  # `parity run --margin` default
ALARMS = ("degraded", "better")


def parity(*args: str) -> subprocess.CompletedProcess[str]:
    """The real CLI, in a subprocess (same interpreter)."""
    return subprocess.run(
        [sys.executable, "-m", "parity", *args], capture_output=True, text=True, check=False
    )


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())


# --- recording --------------------------------------------------------------------------


def record_pool(
    providers: Path, repeats: int, out: Path, db: Path | None, engine: str, skip_run: bool
) -> None:
    """`parity run` with K repeats everywhere, then every sample's score saved to `out`."""
    db = db or out.with_suffix(".db")
    cmd = [
        "run", str(providers), "--db", str(db), "--suite", SUITE,
        "--repeats", str(repeats), "--reference-repeats", "1",
        "--speed-requests", "0", "--no-conformance",
    ]  # fmt: skip
    if skip_run:  # the run is in `db` already (e.g. started by hand with `cmd`)
        wall = float("nan")
    else:
        started = time.monotonic()
        done = parity(*cmd)
        wall = time.monotonic() - started
        print(f"parity {shlex.join(cmd)}: exit {done.returncode}, {wall:.0f} s", flush=True)
        if done.returncode not in (0, 1):
            sys.exit(done.stderr[-2000:])
    pool = pool_from_store(db, repeats)
    pool.update(
        engine=engine,
        recorded=_now(),
        wall_s=None if skip_run else round(wall),
        command=["parity", *cmd],
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(pool, separators=(",", ":")) + "\n")
    for name, p in pool["providers"].items():
        flat = [s for row in p["scores"].values() for s in row if s is not None]
        print(f"{name}: {len(flat)} samples, accuracy {np.mean(flat):.3f}")
    print(f"pool -> {out}")


def pool_from_store(db: Path, repeats: int) -> dict[str, Any]:
    """The latest run's accuracy samples per provider, problem and repeat index."""
    suite = get_suite(SUITE)
    problems = {p.id: p for p in suite.problems}
    with Store(db) as store:
        run = store.latest_run()
        assert run is not None, f"no run in {db}"
        configs = {c["name"]: c for c in store.providers(run.id)}
        providers: dict[str, Any] = {
            name: {
                "reference": bool(c.get("reference")),
                "scores": {pid: [None] * repeats for pid in problems},
                "texts": {pid: [None] * repeats for pid in problems},
            }
            for name, c in configs.items()
        }
        for item in store.exchanges(run.id, probe=accuracy.PROBE):
            _, suite_name, pid, r = item.key.split("/")
            if suite_name != SUITE or pid not in problems or int(r) >= repeats:
                continue
            entry = providers[item.provider]
            if item.exchange.ok:
                text = item.exchange.text
                entry["scores"][pid][int(r)] = suite.grade(problems[pid], text)
                entry["texts"][pid][int(r)] = hashlib.sha256(text.encode()).hexdigest()[:8]
    return {"kind": "accuracy-pool", "suite": SUITE, "repeats": repeats, "run": run.id,
            "providers": providers}  # fmt: skip


def _conform_rows(report: Path) -> dict[str, Any]:
    model = json.loads(report.read_text())
    return {
        p["name"]: {
            "reference": bool(p.get("reference")),
            "checks": {
                c["id"]: [c["status"], c["figure"][:160], c["bar"][:160]] for c in p["conformance"]
            },
        }
        for p in model["providers"]
    }


def _print_fails(i: int, rows: dict[str, Any], note: str) -> None:
    fails = {n: [c for c, row in p["checks"].items() if row[0] == "fail"] for n, p in rows.items()}
    print(f"rep {i}: {note}, fails {fails}", flush=True)


def record_conform(
    providers: Path, repetitions: int, out: Path, checks: str | None, label: str, keep: Path
) -> None:
    """`parity conform` R times (defaults, one store each, kept under `keep`); the rows
    saved to `out` after each repetition (rerun to resume)."""
    data: dict[str, Any] = {"kind": "conform-repetitions", "label": label, "reps": []}
    if out.exists():  # resume: keep the repetitions already done
        data = json.loads(out.read_text())
    keep.mkdir(parents=True, exist_ok=True)
    while len(data["reps"]) < repetitions:
        i = len(data["reps"])
        db, report = keep / f"c{i}.db", keep / f"c{i}.json"
        cmd = ["conform", str(providers), "--db", str(db), "--json", str(report)]
        if checks:
            cmd += ["--checks", checks]
        started = time.monotonic()
        done = parity(*cmd)
        wall = time.monotonic() - started
        if not report.exists():
            sys.exit(f"repetition {i}: exit {done.returncode}: {done.stderr[-1500:]}")
        rows = _conform_rows(report)
        data["reps"].append(
            {"exit": done.returncode, "wall_s": round(wall), "at": _now(), "providers": rows}
        )
        data["command"] = ["parity", *cmd[:2], *cmd[6:]]
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(data, indent=1) + "\n")
        _print_fails(i, rows, f"exit {done.returncode}, {wall:.0f} s")


def rejudge_conform(source: Path, keep: Path, out: Path, label: str | None) -> None:
    """The repetitions of `source` judged again from their kept stores with the checks of
    the parity that runs this (`parity report`: no request sent), saved to `out`: the same
    answers under other bars, e.g. before and after a check changed."""
    data = json.loads(source.read_text())
    for i, rep in enumerate(data["reps"]):
        report = keep / f"r{i}.json"
        done = parity("report", "--db", str(keep / f"c{i}.db"), "--json", str(report))
        if not report.exists():
            sys.exit(f"repetition {i}: exit {done.returncode}: {done.stderr[-1500:]}")
        rep["providers"] = _conform_rows(report)
        report.unlink()
        _print_fails(i, rep["providers"], "judged again")
    data["rejudged"] = _now()
    if label:
        data["label"] = label
    out.write_text(json.dumps(data, indent=1) + "\n")


# --- the accuracy resampling ---------------------------------------------------------------


@dataclass
class Pool:
    """One provider's recorded samples: scores[problem, repeat index] (nan: failed)."""

    name: str
    scores: np.ndarray
    texts: list[list[str | None]]

    @classmethod
    def load(cls, data: dict[str, Any], name: str, problems: Sequence[str]) -> Pool:
        entry = data["providers"][name]
        rows = [[np.nan if s is None else s for s in entry["scores"][p]] for p in problems]
        return cls(name, np.asarray(rows, dtype=np.float64), [entry["texts"][p] for p in problems])

    @property
    def accuracy(self) -> float:
        return float(np.nanmean(np.nanmean(self.scores, axis=1)))


@dataclass
class Tally:
    """Verdicts over simulated runs."""

    runs: int = 0
    family_alarm_runs: int = 0
    twin: Counter[str] = field(default_factory=Counter)
    honest: Counter[str] = field(default_factory=Counter)
    mild: Counter[str] = field(default_factory=Counter)
    twin_diffs: list[float] = field(default_factory=list)


def _take(pool: Pool, idx: np.ndarray) -> dict[str, list[float]]:
    """Scores of `pool` at repeat indices idx[problem, j], failed samples left out."""
    picked = np.take_along_axis(pool.scores, idx, axis=1)
    return {str(i): [float(s) for s in row if not np.isnan(s)] for i, row in enumerate(picked)}


def simulate(
    reference: Pool,
    twin: Pool,
    mild: Pool | None,
    honest: int,
    runs: int,
    seed: int,
    distinct: bool,
    independent: bool = False,
) -> Tally:
    """R default `parity run` verdicts resampled from the pools (module docstring)."""
    rng = np.random.default_rng(seed)
    n, k = reference.scores.shape
    ref_n = RUN_REPEATS * REFERENCE_REPEATS
    tally = Tally()
    for _ in range(runs):
        if distinct:
            idx = np.argsort(rng.random((n, k)), axis=1)[:, :ref_n]
        else:
            idx = rng.integers(0, k, size=(n, ref_n))
        ref_scores = _take(reference, idx)
        shared = idx[:, :RUN_REPEATS]  # the seeds of the reference's first two repeats
        if independent:  # seeds not shared: each provider's own indices
            shared = rng.integers(0, k, size=(n, RUN_REPEATS))
        providers = {"twin": _take(twin, shared)}
        for j in range(1, honest):
            providers[f"honest-{j}"] = _take(twin, rng.integers(0, k, size=(n, RUN_REPEATS)))
        if mild is not None:
            if independent:
                shared = rng.integers(0, k, size=(n, RUN_REPEATS))
            providers["mild"] = _take(mild, shared)
        found = accuracy.compare(providers, ref_scores, MARGIN)
        verdicts = {name: str(c["verdict"]) for name, c in found.items()}
        tally.runs += 1
        tally.twin[verdicts["twin"]] += 1
        tally.twin_diffs.append(float(found["twin"]["diff"]))
        for name, v in verdicts.items():
            if name != "mild":
                tally.honest[v] += 1
        tally.family_alarm_runs += any(
            v in ALARMS for name, v in verdicts.items() if name != "mild"
        )
        if mild is not None:
            tally.mild[verdicts["mild"]] += 1
    return tally


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _ci(hits: int, n: int) -> str:
    low, high = wilson_interval(hits, n)
    return f"{_pct(hits / n)} [{_pct(low)}, {_pct(high)}]"


def _verdicts(c: Counter[str]) -> str:
    order = ("equivalent", "no difference found", "degraded", "better")
    return ", ".join(f"{v} {c[v]}" for v in order if c[v])


def pool_facts(reference: Pool, twin: Pool) -> str:
    """Accuracy of both pools and how often the twin's text equals the reference's at the
    same seed (the engine's nondeterminism, seen directly)."""
    same = total = 0
    for a_row, b_row in zip(reference.texts, twin.texts, strict=True):
        for a, b in zip(a_row, b_row, strict=False):
            if a is not None and b is not None:
                total += 1
                same += a == b
    return (
        f"{reference.name} {_pct(reference.accuracy)}, {twin.name} {_pct(twin.accuracy)}; "
        f"same-seed texts identical {same}/{total} ({_pct(same / max(total, 1))})"
    )


def accuracy_table(args: argparse.Namespace) -> None:
    problems = [p.id for p in get_suite(SUITE).problems]
    print(
        f"{args.runs} simulated default `parity run`s per row (80 problems x 2, the "
        f"reference x{REFERENCE_REPEATS}, Holm, margin {MARGIN:.0%}, alpha {accuracy.ALPHA}); "
        f"draws {'without' if args.distinct else 'with'} replacement; seeds "
        f"{'independent' if args.independent else 'shared as parity run sends them'}; "
        f"seed {args.seed}"
    )
    header = (
        "| engine (pools) | providers per run | twin false alarms [95% CI] | family-wise "
        "false-alarm runs [95% CI] | compressed-mild called degraded [95% CI] | twin's verdicts "
        "| mild's verdicts |"
    )
    print(header)
    print("|---" * 7 + "|")
    row = 0
    for spec in args.pools:
        path, _, names = spec.partition(":")
        data = json.loads(Path(path).read_text())
        ref_name, twin_name, *rest = names.split(",")
        reference = Pool.load(data, ref_name, problems)
        twin = Pool.load(data, twin_name, problems)
        mild = Pool.load(data, rest[0], problems) if rest else None
        facts = pool_facts(reference, twin)
        if mild is not None:
            facts += f"; {mild.name} {_pct(mild.accuracy)}"
        print(f"<!-- {path}: K={data['repeats']}, {facts} -->", flush=True)
        for honest in args.honest:
            tally = simulate(
                reference,
                twin,
                mild,
                honest,
                args.runs,
                args.seed + row,
                args.distinct,
                args.independent,
            )
            row += 1
            twin_alarms = sum(tally.twin[v] for v in ALARMS)
            power = _ci(tally.mild["degraded"], tally.runs) if mild else "-"
            m = honest + (mild is not None)
            print(
                f"| {data.get('engine', path)} (K={data['repeats']}) | {honest} honest"
                f"{' + compressed-mild' if mild else ''} (m={m}) "
                f"| {_ci(twin_alarms, tally.runs)} | {_ci(tally.family_alarm_runs, tally.runs)} "
                f"| {power} | {_verdicts(tally.twin)} | {_verdicts(tally.mild) or '-'} |",
                flush=True,
            )
            diffs = np.asarray(tally.twin_diffs)
            print(
                f"<!-- twin's difference: mean {100 * diffs.mean():+.2f} points, sd "
                f"{100 * diffs.std():.2f}; honest verdicts {_verdicts(tally.honest)} -->",
                flush=True,
            )
    print("rerun:", shlex.join([sys.executable, *sys.argv]))


# --- the conformance table ------------------------------------------------------------------


def conform_table(paths: Sequence[Path]) -> None:
    """Per check: how often the reference and the twin fail it, and how often the twin
    fails it while the reference passes it in the same run (what makes a provider
    "suspicious": the false alarm). A check the reference fails in every repetition is
    the engine's own deviation (docs/findings.md), not an alarm; one it fails in some
    repetitions and passes in others is flaky: some of those runs are wrong."""
    for path in paths:
        data = json.loads(path.read_text())
        reps = data["reps"]
        ref = next(n for n, p in reps[0]["providers"].items() if p["reference"])
        twin = next(n for n, p in reps[0]["providers"].items() if not p["reference"])
        checks = list(dict.fromkeys(c for r in reps for p in r["providers"].values()
                                    for c in p["checks"]))  # fmt: skip
        walls = [r["wall_s"] for r in reps]
        n = len(reps)
        print(f"\n{data['label']}: {n} repetitions of `{shlex.join(data['command'])}`"
              f" ({min(walls)}-{max(walls)} s each)")  # fmt: skip
        print(f"| check | {ref} fails | {twin} fails | {twin} fails, {ref} passes | other |")
        print("|---" * 5 + "|")
        deviations, flaky, alarm_runs = [], [], set()
        for check in checks:
            r_s = [r["providers"][ref]["checks"].get(check, ["-"])[0] for r in reps]
            t_s = [r["providers"][twin]["checks"].get(check, ["-"])[0] for r in reps]
            alarms = [i for i in range(n) if t_s[i] == "fail" and r_s[i] == "pass"]
            alarm_runs.update(alarms)
            if r_s.count("fail") == n:
                deviations.append(check)
            elif "fail" in r_s and "pass" in r_s:
                flaky.append(check)
            other: Counter[str] = Counter()
            for who, statuses in ((ref, r_s), (twin, t_s)):
                other.update(f"{who}: {s}" for s in statuses if s not in ("pass", "fail"))
            extra = ", ".join(f"{k} x{v}" for k, v in sorted(other.items()))
            mark = "**" if alarms else ""
            print(f"| `{check}` | {r_s.count('fail')}/{n} | {t_s.count('fail')}/{n} "
                  f"| {mark}{len(alarms)}/{n}{mark} | {extra} |")  # fmt: skip
        print(f"\n- {twin}: runs with a check failed that {ref} passed (false alarms): "
              f"{_ci(len(alarm_runs), n)}")  # fmt: skip
        print(f"- {ref}: checks it fails in some repetitions and passes in others (flaky): "
              f"{', '.join(flaky) or 'none'}")  # fmt: skip
        print(f"- the engine's deviations (fail on {ref} in every repetition): "
              f"{', '.join(deviations) or 'none'}")  # fmt: skip
        for who in (ref, twin):
            for i, r in enumerate(reps):
                for check, row in r["providers"][who]["checks"].items():
                    if row[0] == "fail" and check not in deviations:
                        print(f"<!-- rep {i} {who} {check}: {row[1]} (bar: {row[2]}) -->")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record-pool", help="record accuracy pools with the real parity run")
    rec.add_argument("providers", type=Path)
    rec.add_argument("--repeats", type=int, default=20)
    rec.add_argument("--out", type=Path, required=True)
    rec.add_argument("--db", type=Path)
    rec.add_argument("--engine", default="llama.cpp, shared engine")
    rec.add_argument("--skip-run", action="store_true", help="only read the run in --db")
    con = sub.add_parser("conform", help="repeat the real parity conform")
    con.add_argument("providers", type=Path)
    con.add_argument("--repetitions", type=int, default=12)
    con.add_argument("--out", type=Path, required=True)
    con.add_argument("--checks")
    con.add_argument("--label", default="shared llama.cpp engine")
    con.add_argument("--keep", type=Path, required=True, help="folder for the stores")
    rej = sub.add_parser("rejudge", help="judge kept conform stores again (no request)")
    rej.add_argument("source", type=Path, help="a `conform` output file")
    rej.add_argument("--keep", type=Path, required=True, help="its stores")
    rej.add_argument("--out", type=Path, required=True)
    rej.add_argument("--label")
    acc = sub.add_parser("accuracy", help="resample the pools into parity run verdicts")
    acc.add_argument(
        "--pools",
        nargs="+",
        default=[
            f"{DATA / 'pool-shared.json'}:shared-reference,shared-reference-b,compressed-mild",
            f"{DATA / 'pool-vllm.json'}:reference-vllm,reference-vllm-b",
        ],
        help="FILE:REFERENCE,TWIN[,MILD] per pool file",
    )
    acc.add_argument("--runs", type=int, default=1000)
    acc.add_argument("--honest", type=int, nargs="+", default=[1, 16])
    acc.add_argument("--seed", type=int, default=20261201)
    acc.add_argument("--distinct", action="store_true", help="draw without replacement")
    acc.add_argument(
        "--independent",
        action="store_true",
        help="the twin and compressed-mild at indices of their own (seeds not shared)",
    )
    tab = sub.add_parser("conform-table", help="the per-check table of conform repetitions")
    tab.add_argument("paths", type=Path, nargs="+")
    args = parser.parse_args()
    if args.command == "record-pool":
        record_pool(args.providers, args.repeats, args.out, args.db, args.engine, args.skip_run)
    elif args.command == "conform":
        record_conform(
            args.providers, args.repetitions, args.out, args.checks, args.label, args.keep
        )
    elif args.command == "rejudge":
        rejudge_conform(args.source, args.keep, args.out, args.label)
    elif args.command == "accuracy":
        args.pools = [p for p in args.pools if Path(p.partition(":")[0]).exists()]
        accuracy_table(args)
    else:
        conform_table(args.paths)


if __name__ == "__main__":
    main()
