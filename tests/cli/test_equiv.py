"""`parity equiv` end to end against scripted providers that sample from known distributions.

Each scenario draws its answer from a fixed distribution with a generator seeded by the
request's `seed` (and the prompt), and answers logprob requests with a fixed top-k table, so
"same" and "other" are two known, different distributions. Request seeds are made
deterministic (a counter instead of the OS random source) so that every run of this file
sees the same samples.
"""

from __future__ import annotations

import gzip
import itertools
import json
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import parity.equivalence.protocol as equiv_protocol
from parity.cli.equiv import equiv_app
from parity.core.errors import ConfigError
from parity.core.store import Store
from parity.equivalence.recording import FORMAT, Recording
from tests.scripted_server import Handler, Reply, Request, ScriptedServer, completion

ANSWERS = ["Paris is the capital.", "The capital is Paris.", "Paris!", "It is Paris, of course."]
SAME = [0.4, 0.3, 0.2, 0.1]
OTHER = [0.05, 0.05, 0.3, 0.6]
TABLE_SAME = {"Paris": -0.4, "The": -1.5, "It": -2.5, "Hello": -3.5, "I": -4.0}
TABLE_OTHER = {"Paris": -1.2, "The": -0.7, "It": -2.0, "Hello": -3.0, "I": -3.3}


def sampler(weights: list[float], table: dict[str, float] | None) -> Handler:
    """A provider drawing answers from `weights` (seeded by the request) with `table` logprobs."""

    async def handler(req: Request, reply: Reply) -> None:
        body = req.json()
        prompt = body["messages"][0]["content"]
        if body.get("logprobs"):
            first = max(table or {"Paris": 0.0}, key=lambda t: (table or {"Paris": 0.0})[t])
            data = completion({"content": first}, finish_reason="length", completion_tokens=1)
            if table is not None:
                top = [{"token": t, "logprob": lp, "bytes": None} for t, lp in table.items()]
                data["choices"][0]["logprobs"] = {
                    "content": [{"token": first, "logprob": table[first], "top_logprobs": top}]
                }
        else:
            rng = random.Random(f"{body.get('seed')}|{prompt}")
            text = rng.choices(ANSWERS, weights)[0]
            data = completion({"content": text}, completion_tokens=5)
        await reply.send(200, data)

    return handler


SCENARIOS: dict[str, Handler] = {
    "eq-ref": sampler(SAME, TABLE_SAME),
    "eq-same": sampler(SAME, TABLE_SAME),
    "eq-other": sampler(OTHER, TABLE_OTHER),
    "eq-nolp": sampler(SAME, None),
}


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer(scenarios=SCENARIOS) as running:
        yield running


@pytest.fixture(autouse=True)
def counted_seeds(monkeypatch: pytest.MonkeyPatch) -> None:
    counter = itertools.count(1000)
    monkeypatch.setattr(equiv_protocol, "request_seed", lambda: next(counter))


def providers_file(
    tmp_path: Path, server: ScriptedServer, names: dict[str, str], reference: str = "ref"
) -> Path:
    """A providers file: name -> scenario, `reference` marked; model `scripted-model`."""
    blocks = []
    for name, scenario in names.items():
        model = "another-model" if name == "renamed" else "scripted-model"
        blocks.append(
            "[[provider]]\n"
            f'name = "{name}"\nbase_url = "{server.base(scenario)}"\nmodel = "{model}"\n'
            "price_input = 0.10\nprice_output = 0.40\n"
            + ("reference = true\n" if name == reference else "")
        )
    path = tmp_path / "providers.toml"
    path.write_text("\n".join(blocks))
    return path


def invoke(*args: str) -> Any:
    return CliRunner().invoke(equiv_app, list(args))


def record(tmp_path: Path, providers: Path, *extra: str) -> Path:
    out = tmp_path / "ref.parity"
    result = invoke(
        "record",
        str(providers),
        "--out",
        str(out),
        "--prompts",
        "8",
        "--samples",
        "8",
        "--logprob-repeats",
        "2",
        "--db",
        str(tmp_path / "p.db"),
        *extra,
    )
    assert result.exit_code == 0, result.output + repr(result.exception)
    return out


def seeds(server: ScriptedServer, scenario: str) -> set[int]:
    return {int(r.json()["seed"]) for r in server.received(scenario) if r.method == "POST"}


def test_record_then_test_round_trip(tmp_path: Path, server: ScriptedServer) -> None:
    providers = providers_file(
        tmp_path, server, {"ref": "eq-ref", "same": "eq-same", "other": "eq-other"}
    )
    out = record(tmp_path, providers)
    data = json.loads(gzip.decompress(out.read_bytes()))
    assert data["format"] == FORMAT and data["parity_version"]
    assert data["settings"]["model"] == "scripted-model"
    assert data["settings"]["max_tokens"] == 12 and data["settings"]["temperature"] == 1.0
    assert len(data["prompts"]) == 8 and all(len(v) == 8 for v in data["samples"].values())
    assert all(len(v) == 2 for v in data["logprobs"].values())
    assert server.count("eq-ref") == 8 * 8 + 2 * 8
    recorded_requests = server.count("eq-ref")

    report = tmp_path / "equiv.json"
    result = invoke(
        "test",
        str(providers),
        "--against",
        str(out),
        "--samples",
        "4",
        "--permutations",
        "999",
        "--seed",
        "0",
        "--db",
        str(tmp_path / "p.db"),
        "--json",
        str(report),
    )
    assert result.exit_code == 1, result.output + repr(result.exception)  # "other" differs
    assert server.count("eq-ref") == recorded_requests  # the reference is not paid again
    summary = json.loads(report.read_text())
    other, same = summary["providers"]["other"], summary["providers"]["same"]
    assert other["verdict"] == "different"
    assert other["method"] in ("mmd-hamming", "logprob-tv")
    assert other["p_value"] <= 0.05 and other["look"] == 1  # decided at the first look
    assert other["cost"]["requests"] == 2 * 8 + 2 * 8  # 2 samples x 8 prompts + 2 lp passes
    assert other["cost"]["usd"] > 0
    assert same["verdict"] != "different"
    assert same["samples_used"] == 4 * 8  # inconclusive at look 1: went on to the last look
    assert {r["method"] for r in same["results"]} == {"mmd-hamming", "logprob-tv"}
    lp = next(r for r in same["results"] if r["method"] == "logprob-tv")
    assert lp["effect"] == 0.0 and lp["p_value"] == 1.0  # identical tables
    for word in ("different", "other", "mmd-hamming", "logprob"):
        assert word in result.output
    # the two sides never share a seed
    assert not seeds(server, "eq-ref") & seeds(server, "eq-same")
    with Store(tmp_path / "p.db") as store:
        run = store.latest_run()
        assert run is not None and run.kind == "equiv"
        keys = store.stored_keys(run.id, "same")
        assert "equiv/p00/0" in keys and "equiv-lp/p00/1" in keys
        assert any(r[1] == "equivalence" for r in store.results(run.id))
        from parity.report.data import report_data
        from parity.report.exports import to_csv, to_junit, to_markdown
        from parity.report.html import render_html

        data = report_data(store, run.id)
    lines = {line["name"]: line["status"] for line in data["summary"]}
    assert lines["other"] == "degraded" and lines["same"] != "degraded"
    for render in (render_html, to_csv, to_junit, to_markdown):
        assert render(data)


def test_other_settings_are_refused_with_one_line(tmp_path: Path, server: ScriptedServer) -> None:
    providers = providers_file(tmp_path, server, {"ref": "eq-ref", "same": "eq-same"})
    out = record(tmp_path, providers)
    before = server.count("eq-same")
    for option, value, needle in (
        ("--max-tokens", "32", "max_tokens 12 vs 32"),
        ("--temperature", "0.5", "temperature 1.0 vs 0.5"),
        ("--prompts", "6", "prompts 8 vs 6"),
        ("--length", "64", "length"),
    ):
        result = invoke("test", str(providers), "--against", str(out), option, value)
        assert isinstance(result.exception, ConfigError), result.output
        assert result.exception.exit_code == 2
        message = str(result.exception)
        assert needle in message and "\n" not in message
    assert server.count("eq-same") == before  # refused before sending anything


def test_model_mismatch_is_refused_unless_allowed(tmp_path: Path, server: ScriptedServer) -> None:
    providers = providers_file(tmp_path, server, {"ref": "eq-ref", "renamed": "eq-same"})
    out = record(tmp_path, providers)
    args = ["test", str(providers), "--against", str(out), "--db", str(tmp_path / "p.db")]
    result = invoke(*args)
    assert isinstance(result.exception, ConfigError)
    assert "model 'scripted-model' vs 'another-model'" in str(result.exception)
    result = invoke(*args, "--any-model-name", "--samples", "2", "--permutations", "199")
    assert result.exit_code in (0, 1), repr(result.exception)


def test_live_reference_and_a_provider_without_logprobs(
    tmp_path: Path, server: ScriptedServer
) -> None:
    providers = providers_file(tmp_path, server, {"ref": "eq-ref", "nolp": "eq-nolp"})
    report = tmp_path / "live.json"
    result = invoke(
        "test",
        str(providers),
        "--prompts",
        "6",
        "--samples",
        "3",
        "--fixed",
        "--permutations",
        "199",
        "--seed",
        "0",
        "--db",
        str(tmp_path / "p.db"),
        "--json",
        str(report),
    )
    assert result.exit_code == 0, result.output + repr(result.exception)
    nolp = json.loads(report.read_text())["providers"]["nolp"]
    assert [r["method"] for r in nolp["results"]] == ["mmd-hamming"]  # logprob test dropped
    assert nolp["results"][0]["alpha"] == pytest.approx(0.05)  # ... and its alpha given back
    assert nolp["samples_used"] == 6 * 3 and nolp["looks"] == 1
    assert nolp["reference_cost"]["requests"] == 6 * 3 + 2 * 6  # live reference, paid now
    assert not seeds(server, "eq-ref") & seeds(server, "eq-nolp")


def test_unusable_input_is_a_config_error(tmp_path: Path, server: ScriptedServer) -> None:
    providers = providers_file(tmp_path, server, {"ref": "eq-ref", "same": "eq-same"})
    bad = tmp_path / "bad.parity"
    bad.write_text("not json at all")
    checks: list[tuple[list[str], Callable[[str], bool]]] = [
        (["test", str(providers), "--against", str(bad)], lambda m: "not a parity" in m),
        (["test", str(providers), "--methods", "mmd,nope"], lambda m: "nope" in m),
        (["test", str(providers), "--provider", "ghost"], lambda m: "ghost" in m),
        (
            ["record", str(providers), "--out", str(tmp_path / "x"), "--prompts", "99"],
            lambda m: "prompt" in m,
        ),
    ]
    for args, ok in checks:
        result = invoke(*args)
        assert isinstance(result.exception, ConfigError), (args, result.output)
        assert ok(str(result.exception)), str(result.exception)
    assert Recording is not None
