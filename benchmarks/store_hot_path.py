"""The store's hot path: `log_send` + `add_exchange` per request, timed (docs/store.md).

Every request a run sends costs one `log_send` before it and one `add_exchange` after it,
each an autocommit statement. This times N such pairs into a fresh store and prints the
microseconds per pair, wall clock and CPU time (median of 5 rounds):

    python benchmarks/store_hot_path.py                 # SQLite in a temporary folder
    python benchmarks/store_hot_path.py --db postgresql://user@127.0.0.1:5432/db
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from parity.core.exchange import Exchange, Timings
from parity.core.store import Store


def _exchange() -> Exchange:
    return Exchange(
        request={"messages": [{"role": "user", "content": "What is 2 + 2?"}]},
        stream=True,
        timings=Timings(
            sent=1, headers=2, first_chunk=3, first_token_chunk=4, token_chunks=[4, 5], end=6
        ),
        status=200,
        error=None,
        text="4" * 200,
        usage={"prompt_tokens": 12, "completion_tokens": 40, "total_tokens": 52},
        chunks=['{"choices": [{"delta": {"content": "4"}}]}'] * 40,
    )


def time_pairs(db: str, n: int) -> tuple[float, float]:
    """Microseconds per log_send + add_exchange pair over `n` pairs into store `db`: wall
    clock, and this process's CPU time (steadier on a shared machine)."""
    exchange = _exchange()
    with Store(db) as store:
        run_id = store.create_run("run", None, {}, "bench", lease=True)
        start, cpu = time.perf_counter(), time.process_time()
        for i in range(n):
            store.log_send(run_id, "a", f"k{i}")
            store.add_exchange(run_id, "a", "speed", f"k{i}", exchange)
        wall = (time.perf_counter() - start) / n * 1e6
        return wall, (time.process_time() - cpu) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="a store URL (default: SQLite in a temporary folder)")
    parser.add_argument("-n", type=int, default=2000, help="pairs per round")
    args = parser.parse_args()
    rounds = []
    for _ in range(5):
        with tempfile.TemporaryDirectory() as folder:
            rounds.append(time_pairs(args.db or str(Path(folder) / "bench.db"), args.n))
    wall = statistics.median(r[0] for r in rounds)
    cpu = statistics.median(r[1] for r in rounds)
    print(
        f"{wall:.0f} us wall, {cpu:.0f} us CPU per log_send + add_exchange (median of 5 x {args.n})"
    )


if __name__ == "__main__":
    main()
