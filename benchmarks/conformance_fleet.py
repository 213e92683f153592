"""The conformance figures in the README, reproduced: `parity conform` on the local fleet, and
the fault matrix on both upstreams.

    .venv/bin/python benchmarks/conformance_fleet.py            # fleet run (~5 min, 2 cores)
    .venv/bin/python benchmarks/conformance_fleet.py --matrix   # + the matrix (~17 min more)

The fleet run starts reference, reference-b, wrong-template and short-context on ports 8930+
with one fault proxy (`drop=reasoning_effort`) in front of the reference, runs every check on
all five providers, prints the check x provider table as Markdown (the README's "On the
local fleet" table) and stops the fleet. `--matrix` then runs `parity conform --matrix`
(scripted model + a fresh llama.cpp reference) and prints its Markdown table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from parity.local.fleet import fleet_down, fleet_up

VARIANTS = ["reference", "reference-b", "wrong-template", "short-context"]
FAULTS = ["drop=reasoning_effort"]
FIGURE_CHARS = 44


def parity(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "parity", *args], capture_output=True, text=True, check=False
    )


def fleet_table(report: dict) -> str:
    providers = [p for p in report["providers"] if not p["name"].startswith("faulty-")]
    names = [p["name"] for p in providers]
    rows: dict[str, dict[str, tuple[str, str]]] = {}
    for p in providers:
        for c in p["conformance"]:
            rows.setdefault(c["id"], {})[p["name"]] = (c["status"], c["figure"])
    style = {"fail": "**fail**", "error": "**error**"}
    lines = ["| check | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for check, cells in rows.items():
        out = []
        for name in names:
            status, figure = cells.get(name, ("-", ""))
            figure = figure.replace("|", "/").replace("\n", " ")
            if len(figure) > FIGURE_CHARS:
                figure = figure[: FIGURE_CHARS - 2] + "…"
            out.append(f"{style.get(status, status)} {figure}")
        lines.append(f"| `{check}` | " + " | ".join(out) + " |")
    return "\n".join(lines)


def main() -> int:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--matrix", action="store_true", help="also run the fault matrix")
    args.add_argument("--base-port", type=int, default=8930)
    opts = args.parse_args()
    with tempfile.TemporaryDirectory(prefix="parity-conform-") as tmp:
        state, out = Path(tmp) / "fleet", Path(tmp)
        providers = fleet_up(state, VARIANTS, base_port=opts.base_port, faults=FAULTS)
        try:
            started = time.monotonic()
            done = parity(
                "conform", str(providers), "--db", str(out / "c.db"), "--json", str(out / "c.json")
            )
            took = time.monotonic() - started
        finally:
            fleet_down(state)
        spent = next((line for line in done.stdout.splitlines() if line.startswith("spent")), "")
        print(f"fleet conform: exit {done.returncode}, {took:.0f} s, {spent}")
        print(fleet_table(json.loads((out / "c.json").read_text())))
        if opts.matrix:
            started = time.monotonic()
            done = parity("conform", "--matrix", "--markdown", str(out / "m.md"))
            print(f"\nmatrix: exit {done.returncode}, {time.monotonic() - started:.0f} s")
            print((out / "m.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
