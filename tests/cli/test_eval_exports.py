"""`parity eval` on a GSM8K-style data set with a column mapping, against the scripted server
(a real HTTP server on loopback), then its inspect_ai and lm-eval exports read back with those
libraries; `--resume` rebuilds the same suite from the stored options and sends nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.test_main import parity, provider_toml
from tests.scripted_server import Reply, Request, ScriptedServer, completion

ROWS = [
    {
        "problem_text": "Natalia sold 48 clips in April and half as many in May. Total?",
        "sol": "#### 72",
    },
    {
        "problem_text": "Weng earns $12 an hour. How much for 50 minutes?",
        "sol": "12/60*50\n#### 10",
    },
    {"problem_text": "What is 6 x 7?", "sol": "#### 42"},
    {"problem_text": "What is 1,000 + 1?", "sol": "#### 1,001"},
    {"problem_text": "How many legs do three spiders have?", "sol": "#### 24"},
    {"problem_text": "What is 9 + 10?", "sol": "#### 19"},
]
ANSWERS = {r["problem_text"]: r["sol"].split("#### ")[1].replace(",", "") for r in ROWS}


def answering(wrong: set[str]):  # type: ignore[no-untyped-def]
    async def handler(req: Request, reply: Reply) -> None:
        question = req.json()["messages"][-1]["content"]
        answer = "0" if any(w in question for w in wrong) else ANSWERS[question]
        usage = {"prompt_tokens": 50, "completion_tokens": 8, "total_tokens": 58}
        text = f"Let me work it out.\n#### {answer}"
        await reply.send(200, {**completion({"content": text}), "usage": usage})

    return handler


def test_eval_of_a_mapped_gsm8k_file_exports_inspect_and_lm_eval(tmp_path: Path) -> None:
    inspect_log = pytest.importorskip("inspect_ai.log", reason="inspect_ai is in the dev extra")
    data = tmp_path / "gsm8k_style.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    scenarios = {"good": answering(set()), "bad": answering({"spiders", "6 x 7"})}
    with ScriptedServer(scenarios=scenarios) as server:
        providers = tmp_path / "providers.toml"
        providers.write_text(
            provider_toml("ref", server.base("good"), reference=True)
            + provider_toml("lossy", server.base("bad"))
        )
        db = tmp_path / "p.db"
        args = ["--db", str(db), "--suite", str(data), "--fixed", "--repeats", "2"]
        result = parity(
            "eval",
            str(providers),
            *args,
            "--field",
            "input=problem_text",
            "--field",
            "target=sol",
            "--scorer",
            "numeric",
            "--few-shot",
            "1",
            "--system-prompt",
            "End with #### and the number.",
            "--inspect-log",
            str(tmp_path / "logs"),
            "--lm-eval",
            str(tmp_path / "lm"),
        )
        assert result.returncode in (0, 1), result.stdout + result.stderr
        sent = server.count("good") + server.count("bad")
        # 6 rows, one the few-shot example, 2 repeats (the reference maybe several times)
        assert server.count("bad") == 5 * 2 and server.count("good") % 10 == 0
        reference_samples = server.count("good")
        ref_results = next((tmp_path / "lm" / "ref").glob("results_*.json"))
        resumed = parity("eval", "--resume", _run(db), "--db", str(db))
        assert resumed.returncode in (0, 1), resumed.stderr
        assert server.count("good") + server.count("bad") == sent
    logs = {
        p.parent.name: inspect_log.read_eval_log(str(p))
        for p in (tmp_path / "logs").rglob("*.json")
    }
    assert set(logs) == {"ref", "lossy"}
    ref, lossy = logs["ref"], logs["lossy"]
    assert ref.results is not None and lossy.results is not None
    assert ref.results.scores[0].metrics["accuracy"].value == 1.0
    assert lossy.results.scores[0].metrics["accuracy"].value <= 0.8
    assert ref.samples is not None and len(ref.samples) == reference_samples
    assert lossy.samples is not None and len(lossy.samples) == 10
    first = ref.samples[0]
    assert [m.role for m in first.messages] == ["system", "user", "assistant", "user", "assistant"]
    assert first.messages[0].text == "End with #### and the number."
    assert first.target == ANSWERS[first.messages[3].text].replace("1001", "1,001")
    results = json.loads(ref_results.read_text())
    task = results["results"]["gsm8k_style"]
    assert task["acc,none"] == 1.0 and task["acc_stderr,none"] == 0.0
    assert results["n-shot"] == {"gsm8k_style": 1}
    lm = json.loads(next((tmp_path / "lm" / "lossy").glob("results_*.json")).read_text())
    assert lm["results"]["gsm8k_style"]["acc,none"] == pytest.approx(
        lossy.results.scores[0].metrics["accuracy"].value
    )
    # parity report redraws the same logs from the store
    again = parity("report", _run(db), "--db", str(db), "--inspect-log", str(tmp_path / "again"))
    assert again.returncode == 0, again.stderr
    redrawn = inspect_log.read_eval_log(str(next((tmp_path / "again" / "lossy").glob("*.json"))))
    assert redrawn.samples is not None and lossy.samples is not None
    assert [s.scores for s in redrawn.samples] == [s.scores for s in lossy.samples]


def _run(db: Path) -> str:
    from parity.core.store import Store

    with Store(db) as store:
        return store.runs()[0].id


def test_a_bad_mapping_is_one_line_and_sends_nothing(tmp_path: Path) -> None:
    data = tmp_path / "gsm8k_style.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    providers = tmp_path / "providers.toml"
    providers.write_text(provider_toml("ref", "http://127.0.0.1:1/v1", reference=True))
    result = parity(
        "eval",
        str(providers),
        "--db",
        str(tmp_path / "p.db"),
        "--suite",
        str(data),
        "--field",
        "input=question",
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"{data}:1: field 'input': no column 'question'" in lines[0]
    bad = parity("eval", str(providers), "--suite", str(data), "--field", "input")
    assert bad.returncode == 2 and "write FIELD=COLUMN" in bad.stderr
