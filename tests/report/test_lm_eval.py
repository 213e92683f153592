"""The lm-eval export: the fields lm-eval's `EvalResults` and `SampleResult` have
(lm_eval/result_schema.py), validated with lm-eval's own TypedDicts when lm-eval is
installed (the dev extra), and rendered by lm-eval's `make_table` as its CLI prints results."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter

from parity.core.store import Store
from parity.report.lm_eval import MODEL_SOURCE, lm_eval_results, write_lm_eval
from tests.report.eval_store import REPEATS, ROWS, make_eval_store

# The keys lm-eval 0.4 writes (EvalResults in lm_eval/result_schema.py) that this export has.
RESULT_KEYS = {
    "results",
    "group_subtasks",
    "configs",
    "versions",
    "n-shot",
    "higher_is_better",
    "n-samples",
    "config",
    "date",
    "model_source",
    "model_name",
    "model_name_sanitized",
    "system_instruction",
    "system_instruction_sha",
    "fewshot_as_multiturn",
    "chat_template",
    "chat_template_sha",
    "total_evaluation_time_seconds",
}
CONFIG_KEYS = {
    "model",
    "model_args",
    "batch_size",
    "batch_sizes",
    "device",
    "use_cache",
    "limit",
    "bootstrap_iters",
    "gen_kwargs",
    "random_seed",
    "numpy_seed",
    "torch_seed",
    "fewshot_seed",
}
SAMPLE_KEYS = {
    "doc_id",
    "doc",
    "target",
    "arguments",
    "resps",
    "filtered_resps",
    "filter",
    "metrics",
    "doc_hash",
    "prompt_hash",
    "target_hash",
}
PROBLEMS = len(ROWS) - 1  # one row is the few-shot example


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    tmp = tmp_path_factory.mktemp("lm_eval")
    db, run_id, _ = make_eval_store(tmp)
    with Store(db) as store:
        paths = write_lm_eval(store, run_id, tmp / "out")
    return tmp / "out", paths


def _load(paths: list[Path], name: str) -> dict[str, Any]:
    path = next(p for p in paths if p.parent.name == name)
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def test_results_have_lm_evals_fields(written: tuple[Path, list[Path]]) -> None:
    _, paths = written
    assert sorted(p.parent.name for p in paths) == ["lossy", "ref", "thinker"]
    assert all(p.name.startswith("results_") and p.suffix == ".json" for p in paths)
    ref, lossy = _load(paths, "ref"), _load(paths, "lossy")
    assert set(ref) == RESULT_KEYS
    assert set(ref["config"]) == CONFIG_KEYS
    task = "gsm8k_style"
    assert ref["results"] == {
        task: {
            "name": task,
            "alias": task,
            "sample_len": PROBLEMS,
            "acc,none": 1.0,
            "acc_stderr,none": 0.0,
        }
    }
    acc = lossy["results"][task]["acc,none"]
    assert acc == pytest.approx((PROBLEMS - 1) / PROBLEMS)
    means = [1.0] * (PROBLEMS - 1) + [0.0]
    mean = sum(means) / PROBLEMS
    sd = (sum((m - mean) ** 2 for m in means) / (PROBLEMS - 1)) ** 0.5
    assert lossy["results"][task]["acc_stderr,none"] == pytest.approx(sd / PROBLEMS**0.5)
    assert ref["n-shot"] == {task: 1} and ref["fewshot_as_multiturn"] is True
    assert ref["n-samples"] == {task: {"original": PROBLEMS, "effective": PROBLEMS}}
    assert ref["higher_is_better"] == {task: {"acc": True}}
    assert ref["versions"] == {task: 1.0} and ref["group_subtasks"] == {task: []}
    config = ref["configs"][task]
    assert config["num_fewshot"] == 1 and config["repeats"] == REPEATS
    assert config["generation_kwargs"] == {"temperature": 0, "max_tokens": 64}
    assert config["metadata"]["parity"]["accuracy"]["value"] == 1.0
    assert lossy["configs"][task]["metadata"]["parity"]["vs_reference"]["verdict"]
    assert ref["config"]["model"] == MODEL_SOURCE == ref["model_source"]
    assert ref["config"]["model_args"] == "model=smol-135m,base_url=http://127.0.0.1:1/ref/v1"
    assert ref["model_name"] == "smol-135m" and ref["system_instruction"] == "Answer with a number."
    assert isinstance(ref["date"], float) and float(ref["total_evaluation_time_seconds"]) >= 0


def test_samples_have_lm_evals_fields(written: tuple[Path, list[Path]]) -> None:
    _, paths = written
    lossy = next(p for p in paths if p.parent.name == "lossy")
    files = list(lossy.parent.glob("samples_gsm8k_style_*.jsonl"))
    assert len(files) == 1
    rows = [json.loads(line) for line in files[0].read_text().splitlines()]
    assert len(rows) == PROBLEMS
    for row in rows:
        assert set(row) == SAMPLE_KEYS | {"acc"}
        assert row["metrics"] == ["acc"] and row["filter"] == "none"
        assert len(row["resps"]) == 1 and len(row["resps"][0]) == REPEATS
        assert json.loads(row["arguments"]["gen_args_0"]["arg_0"])[0]["role"] == "system"
    wrong = next(r for r in rows if r["doc"]["id"] == "3")
    assert wrong["acc"] == 0.0 and wrong["target"] == "42"


def test_lm_eval_reads_them(written: tuple[Path, list[Path]]) -> None:
    schema = pytest.importorskip(
        "lm_eval.result_schema", reason="lm-eval (the dev extra) validates the fields"
    )
    from lm_eval.config.task import TaskConfig
    from lm_eval.utils import make_table

    _, paths = written
    task_fields = {f.name for f in dataclasses.fields(TaskConfig)}
    for path in paths:
        result = json.loads(path.read_text())
        # lm-eval's TypedDict types a task config's values as str | bool | None, while lm-eval
        # itself writes lists and numbers there (metric_list, num_fewshot): its keys are
        # checked against lm-eval's TaskConfig instead.
        for config in result["configs"].values():
            assert set(config) <= task_fields
        TypeAdapter(schema.EvalResults).validate_python({**result, "configs": {}})
        table = make_table(result)
        assert "gsm8k_style" in table and "acc" in table and "±" in table
        for line in next(path.parent.glob("samples_*.jsonl")).read_text().splitlines():
            TypeAdapter(schema.SampleResult).validate_python(json.loads(line))


def test_one_provider_json_path(tmp_path: Path) -> None:
    db, run_id, _ = make_eval_store(tmp_path)
    with Store(db) as store:
        results = lm_eval_results(store, run_id)
        paths = write_lm_eval(store, run_id, tmp_path / "r.json")
    assert set(results) == {"ref", "lossy", "thinker"}
    assert sorted(p.name for p in paths) == ["r-lossy.json", "r-ref.json", "r-thinker.json"]
    assert (tmp_path / "r-ref.samples_gsm8k_style.jsonl").is_file()
