"""The reference sampled more than the others (`--reference-repeats`): its extra repeats are
planned (fixed: repeats x K; adaptive: K samples per pair, the first with the provider's
seed), counted in every difference, and resumable: a run interrupted before they were all
stored sends exactly the missing ones, and reports what an uninterrupted run reports."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from parity.accuracy.evaluate import (
    AdaptiveEval,
    EvalOptions,
    load_suite,
    planned_fixed,
    provider_requests,
)
from parity.accuracy.probe import DEFAULT_REFERENCE_REPEATS
from parity.core.config import Provider
from parity.core.plan import RunOptions, RunPlan
from tests.accuracy.test_evaluate import SCENARIOS
from tests.cli.test_main import parity, provider_toml
from tests.scripted_server import ScriptedServer

REF = Provider(name="ref", base_url="http://127.0.0.1:1/v1", model="m", reference=True)
OTHER = Provider(name="other", base_url="http://127.0.0.1:2/v1", model="m")


def accuracy_keys(requests: list[Any]) -> list[str]:
    return [r.key for r in requests if r.key.startswith("accuracy/")]


def test_the_default_is_four_and_stored_options_without_it_mean_one() -> None:
    assert DEFAULT_REFERENCE_REPEATS == 4
    stored = RunOptions(repeats=2).model_dump()
    del stored["reference_repeats"]
    assert RunOptions(**stored).reference_repeats == 1
    stored_eval = EvalOptions().model_dump()
    del stored_eval["reference_repeats"]
    assert EvalOptions(**stored_eval).reference_repeats == 1


def test_run_plans_the_references_extra_repeats() -> None:
    plan = RunPlan.resolve(
        RunOptions(repeats=2, reference_repeats=4, speed_requests=0, conformance=False)
    )
    ref, other = plan.requests("r", REF), plan.requests("r", OTHER)
    ref_keys, other_keys = accuracy_keys(ref), accuracy_keys(other)
    problems = len(plan.suite.problems)
    assert len(ref_keys) == problems * 8 == len(set(ref_keys))
    assert len(other_keys) == problems * 2
    # The first repeats are the same requests, same seeds: common random numbers.
    bodies = {r.key: r.body for r in ref}
    assert all(bodies[r.key] == r.body for r in other)
    assert {k.rsplit("/", 1)[1] for k in ref_keys} == {str(i) for i in range(8)}
    assert plan.requests("r", REF) == ref  # resume plans the same requests
    # One repeat each when the option is 1 (what options stored before it mean).
    old = RunPlan.resolve(RunOptions(repeats=2, speed_requests=0, conformance=False))
    assert accuracy_keys(old.requests("r", REF)) == other_keys


def test_eval_plans_the_references_extra_samples() -> None:
    options = EvalOptions(suite="easy", repeats=3, reference_repeats=4, adaptive=False)
    suite = load_suite(options)
    assert len(provider_requests(suite, options, REF)) == 80 * 12
    assert len(provider_requests(suite, options, OTHER)) == 80 * 3
    planned = planned_fixed([REF, OTHER], suite, 3, 4)
    assert [r.key for r in planned["ref"]] == [
        r.key for r in provider_requests(suite, options, REF)
    ]

    adaptive = AdaptiveEval(suite, [REF, OTHER], REF, options.model_copy(update={"adaptive": True}))
    first = adaptive.round()
    assert len(first["ref"]) == 4 * len(first["other"]) == 4 * 16
    for i, req in enumerate(first["other"]):
        group = first["ref"][4 * i : 4 * i + 4]
        index = int(req.key.rsplit("/", 1)[1])
        assert index % 4 == 0  # the provider's j-th pair on a problem is its sample 4j
        assert group[0] == req  # the reference's first sample of the pair is the same one
        assert [int(r.key.rsplit("/", 1)[1]) for r in group] == [index + e for e in range(4)]
    assert len({r.key for r in first["ref"]}) == 64
    # Bonferroni: each provider's confidence sequence at alpha / providers compared.
    test = adaptive.evals["other"].test
    assert test is not None and test.alpha == options.alpha / 1 and adaptive.family == 1


def providers_file(server: ScriptedServer, path: Path) -> Path:
    path.write_text(
        provider_toml("ref", server.base("good"), reference=True, concurrency=8)
        + provider_toml("twin", server.base("good2"), concurrency=8)
        + provider_toml("lossy", server.base("bad"), concurrency=8)
    )
    return path


def forget_reference_repeats(db: Path, first_extra: int) -> int:
    """Delete the reference's accuracy exchanges from sample index `first_extra` on, as if
    the run had stopped before sending them, and mark the run interrupted."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT id, key FROM exchanges WHERE provider = 'ref' AND probe = 'accuracy'"
        ).fetchall()
        gone = [i for i, key in rows if int(key.rsplit("/", 1)[1]) >= first_extra]
        conn.executemany("DELETE FROM exchanges WHERE id = ?", [(i,) for i in gone])
        conn.execute("UPDATE runs SET status = 'interrupted', finished_at = NULL")
    return len(gone)


def summary(path: Path) -> dict[str, Any]:
    found = json.loads(path.read_text())
    return {
        p["name"]: (p["verdict"], (p.get("accuracy") or {}).get("vs_reference"))
        for p in found["providers"]
    }


@pytest.mark.parametrize("command", ["run", "eval"])
def test_an_interrupted_run_resumes_the_reference_repeats(tmp_path: Path, command: str) -> None:
    with ScriptedServer(scenarios=SCENARIOS) as server:
        path = providers_file(server, tmp_path / "providers.toml")
        db = tmp_path / "p.db"
        if command == "run":
            args = ["run", str(path), "--repeats", "1", "--speed-requests", "0"]
            args += ["--no-conformance", "--reference-repeats", "3"]
        else:
            args = ["eval", str(path), "--suite", "easy:20", "--fixed", "--repeats", "2"]
            args += ["--reference-repeats", "3"]
        first = parity(*args, "--db", str(db), "--json", str(tmp_path / "a.json"))
        assert first.returncode == 1, first.stdout + first.stderr  # lossy is degraded
        problems = 80 if command == "run" else 20
        repeats = 1 if command == "run" else 2
        sent = {s: server.count(s) for s in SCENARIOS}
        assert sent["good"] == problems * repeats * 3 and sent["bad"] == problems * repeats
        gone = forget_reference_repeats(db, first_extra=repeats)
        assert gone == problems * repeats * 2
        run = json.loads((tmp_path / "a.json").read_text())["run"]
        run_id = run["id"] if isinstance(run, dict) else run  # eval's --json: the id
        resumed = parity(
            command, "--resume", run_id, "--db", str(db), "--json", str(tmp_path / "b.json")
        )
        assert resumed.returncode == 1, resumed.stdout + resumed.stderr
        again = {s: server.count(s) for s in SCENARIOS}
    # Exactly the missing reference samples were sent, nothing else, and the verdicts are
    # those of the uninterrupted run.
    assert again["good"] - sent["good"] == gone
    assert again["good2"] == sent["good2"] and again["bad"] == sent["bad"]
    assert summary(tmp_path / "a.json") == summary(tmp_path / "b.json")


def test_an_adaptive_eval_stored_before_the_option_still_reports(tmp_path: Path) -> None:
    """A run stored by an earlier version: no reference_repeats in its options (one reference
    sample per pair) and old labels in its stored results. It reports: the options read as
    one reference sample per pair, the verdicts are recomputed from the exchanges."""
    with ScriptedServer(scenarios=SCENARIOS) as server:
        path = providers_file(server, tmp_path / "providers.toml")
        db = tmp_path / "p.db"
        first = parity(
            "eval", str(path), "--suite", "easy:20", "--reference-repeats", "1",
            "--db", str(db), "--json", str(tmp_path / "a.json"),
        )  # fmt: skip
        assert first.returncode == 1, first.stdout + first.stderr
    run_id = json.loads((tmp_path / "a.json").read_text())["run"]
    with sqlite3.connect(db) as conn:
        (options,) = conn.execute("SELECT options FROM runs WHERE id = ?", (run_id,)).fetchone()
        old = {k: v for k, v in json.loads(options).items() if k != "reference_repeats"}
        conn.execute("UPDATE runs SET options = ? WHERE id = ?", (json.dumps(old), run_id))
        conn.execute(
            "UPDATE results SET value = replace(value, '\"no difference found\"', "
            "'\"inconclusive\"')"
        )
    again = parity("report", run_id, "--db", str(db), "--json", str(tmp_path / "b.json"))
    assert again.returncode == 0, again.stdout + again.stderr
    found = {p["name"]: p for p in json.loads((tmp_path / "b.json").read_text())["providers"]}
    assert found["lossy"]["verdict"] == "degraded"
    assert found["twin"]["verdict"] in ("equivalent", "no difference found")
    assert found["ref"]["samples"] == max(found["twin"]["samples"], found["lossy"]["samples"])
