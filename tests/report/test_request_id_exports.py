"""Request ids where a user looks for them: the bench CSV's columns, a conformance failure's
evidence in the JSON report, the inspect_ai samples' metadata and lm-eval's results; each one
the id the scripted server received (and the id it answered with), so a row can be matched
with the provider's logs."""

from __future__ import annotations

import asyncio
import csv
import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from parity.core.config import Provider
from parity.core.store import Store
from parity.report.guidellm import bench_report
from parity.report.inspect_log import inspect_logs
from parity.report.lm_eval import lm_eval_results
from parity.speed.load import parse_load
from parity.speed.plan import Step
from parity.speed.report import write_csv
from parity.speed.run import BenchSettings, run_bench
from parity.speed.tokenizer import TokenizerChoice
from parity.speed.workloads import parse_workload
from tests.cli.test_main import parity
from tests.report.eval_store import make_eval_store
from tests.scripted_server import (
    Handler,
    Reply,
    Request,
    ScriptedServer,
    chunk,
    completion,
    error_body,
    usage_chunk,
)

FAILING_FIRST = 1
"""The lenient provider answers its first POST 429, so one request is retried (`parity
conform` retries once: a second refusal would end a request as a clean refusal)."""


class Ids:
    """What the scripted provider saw: request id received -> the id it answered with."""

    def __init__(self) -> None:
        self.answered: dict[str, str] = {}
        self.refused: list[str] = []
        self.lock = threading.Lock()

    def answer(self, req: Request) -> dict[str, str]:
        with self.lock:
            mine = f"srv-{len(self.answered) + len(self.refused) + 1}"
            self.answered[req.headers["x-request-id"]] = mine
        return {"x-request-id": mine, "cf-ray": "ray-1", "set-cookie": "s=1"}


def scenarios(ids: Ids) -> dict[str, Handler]:
    async def streams(req: Request, reply: Reply) -> None:
        await reply.start(headers=ids.answer(req))
        await reply.event({**chunk({"role": "assistant", "content": ""}), "id": "chatcmpl-b1"})
        for word in ("a", "b", "c", "d"):
            await reply.event({**chunk({"content": f" {word}"}), "id": "chatcmpl-b2"})
        await reply.event(chunk({}, "length"))
        await reply.event(usage_chunk(completion_tokens=4))
        await reply.done()

    async def lenient(req: Request, reply: Reply) -> None:
        """Accepts anything (so errors.invalid_values fails), after refusing its first POST."""
        with ids.lock:
            refuse = len(ids.refused) < FAILING_FIRST
            if refuse:
                ids.refused.append(req.headers["x-request-id"])
        if refuse:
            await reply.send(429, error_body("slow down"), headers={"Retry-After": "0"})
            return
        await reply.send(200, completion({"content": "hello"}), headers=ids.answer(req))

    return {"streams": streams, "lenient": lenient}


@pytest.fixture
def server_ids() -> Iterator[tuple[ScriptedServer, Ids]]:
    ids = Ids()
    with ScriptedServer(scenarios=scenarios(ids)) as running:
        yield running, ids


def test_the_bench_csv_has_the_ids(server_ids: tuple[ScriptedServer, Ids], tmp_path: Path) -> None:
    server, ids = server_ids
    provider = Provider(name="p", base_url=server.base("streams"), model="m")
    step = Step(parse_workload("100/4"), parse_load("c2"), requests=4, warmup=1)
    with Store(tmp_path / "p.db") as store:
        run_id = store.create_run("bench", None, {}, "test")
        asyncio.run(
            run_bench(
                store,
                run_id,
                [provider],
                BenchSettings(steps=[step], slos=[]),
                TokenizerChoice(None, None, "no local tokenizer"),
            )
        )
        report = bench_report(store, run_id)  # the CSV as redrawn from the store
    write_csv(report, tmp_path / "bench.csv")
    with (tmp_path / "bench.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4  # the warmup is not a row
    posts = [r.headers["x-request-id"] for r in server.received("streams") if r.method == "POST"]
    assert len(posts) == 5 and {row["request_id"] for row in rows} <= set(posts)
    assert len({row["request_id"] for row in rows}) == 4  # each its own
    for row in rows:
        assert row["attempt_ids"] == row["request_id"]  # one attempt each
        assert row["response_id"] == "chatcmpl-b1"  # the first chunk's id
        mine = ids.answered[row["request_id"]]
        assert row["provider_ids"] == f"x-request-id={mine}; cf-ray=ray-1"

    # A bench run stored before the ids were kept: the columns are there, empty.
    old = json.loads(json.dumps(report))
    for step_ in old["providers"][0]["steps"]:
        for m in step_["requests"]:
            for name in ("request_id", "attempt_ids", "response_id", "provider_ids"):
                del m[name]
    write_csv(old, tmp_path / "old.csv")
    with (tmp_path / "old.csv").open(encoding="utf-8") as handle:
        old_rows = list(csv.DictReader(handle))
    assert [r["request_id"] for r in old_rows] == [""] * 4 and old_rows[0]["provider_ids"] == ""


def test_a_conformance_failures_evidence_has_the_ids_in_the_json_report(
    server_ids: tuple[ScriptedServer, Ids], tmp_path: Path
) -> None:
    server, ids = server_ids
    file = tmp_path / "p.toml"
    file.write_text(
        f'[[provider]]\nname = "lenient"\nbase_url = "{server.base("lenient")}"\nmodel = "m"\n'
    )
    done = parity(
        "conform", str(file), "--checks", "errors.invalid_values,errors.availability",
        "--db", str(tmp_path / "c.db"), "--json", str(tmp_path / "c.json"),
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    data = json.loads((tmp_path / "c.json").read_text())
    (entry,) = data["providers"]
    rows = {c["id"]: c for c in entry["conformance"]}
    invalid = rows["errors.invalid_values"]
    assert invalid["status"] == "fail" and len(invalid["evidence"]) == 5
    received = {r.headers["x-request-id"] for r in server.received("lenient")}
    seen_attempts: list[str] = []
    for item in invalid["evidence"] + rows["errors.availability"]["evidence"]:
        found = item["request_ids"]
        assert list(item)[:2] == ["key", "request_ids"]  # first: a clipped record keeps them
        assert found["request_id"] in received
        assert found["response_id"] == "chatcmpl-scripted"
        assert found["provider_ids"] == {
            "x-request-id": ids.answered[found["request_id"]],
            "cf-ray": "ray-1",
        }
        attempts = found.get("attempt_ids", [found["request_id"]])
        assert attempts[-1] == found["request_id"] and len(set(attempts)) == len(attempts)
        seen_attempts += attempts
    # Every refused attempt is findable: its id is in the evidence of the request it was.
    assert set(ids.refused) <= set(seen_attempts) and len(ids.refused) == FAILING_FIRST


def test_the_eval_exports_carry_the_ids(tmp_path: Path) -> None:
    db, run_id, _ = make_eval_store(tmp_path)
    with sqlite3.connect(db) as conn:  # thinker's exchanges with ids; the others as before
        rows = conn.execute("SELECT rowid, key, data FROM exchanges WHERE provider = 'thinker'")
        for rowid, key, data in rows.fetchall():
            x: dict[str, Any] = orjson.loads(data)
            x.update(
                request_id=f"id-{key}-2",
                attempt_ids=[f"id-{key}-1", f"id-{key}-2"],
                response_id=f"chatcmpl-{key}",
                provider_ids={"x-request-id": f"srv-{key}"},
            )
            conn.execute("UPDATE exchanges SET data = ? WHERE rowid = ?", (orjson.dumps(x), rowid))
    with Store(db) as store:
        logs = inspect_logs(store, run_id)
        results = lm_eval_results(store, run_id)
    for sample in logs["thinker"]["samples"]:
        meta = sample["metadata"]
        key = meta["parity_key"]
        assert meta["request_id"] == f"id-{key}-2"
        assert meta["attempt_ids"] == [f"id-{key}-1", f"id-{key}-2"]
        assert meta["response_id"] == f"chatcmpl-{key}"
        assert meta["provider_ids"] == {"x-request-id": f"srv-{key}"}
    assert all("request_id" not in s["metadata"] for s in logs["ref"]["samples"])

    (task,) = results["thinker"]["configs"]
    by_doc = results["thinker"]["configs"][task]["metadata"]["parity"]["request_ids"]
    assert sorted(r["repeat"] for r in by_doc["1"]) == [0, 1]
    assert all(r["request_id"].endswith("-2") and r["provider_ids"] for r in by_doc["1"])
    assert "request_ids" not in results["ref"]["configs"][task]["metadata"]["parity"]
