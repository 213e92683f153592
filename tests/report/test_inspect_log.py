"""The inspect_ai export, read back with inspect_ai itself: `read_eval_log` validates every
field against its `EvalLog` model, `list_eval_logs` finds the files as `inspect view` does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from parity.core.errors import ConfigError
from parity.core.store import Store
from parity.report.inspect_log import LOG_VERSION, inspect_logs, write_inspect_logs
from tests.report.eval_store import REPEATS, ROWS, make_eval_store

inspect_ai_log = pytest.importorskip(
    "inspect_ai.log",
    reason="inspect_ai (the dev extra) reads the logs back; pip install -e '.[dev]'",
)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    db, run_id, _ = make_eval_store(tmp_path_factory.mktemp("inspect"))
    return db, run_id


def test_each_provider_is_a_log_inspect_reads(store: tuple[Path, str], tmp_path: Path) -> None:
    db, run_id = store
    with Store(db) as s:
        paths = write_inspect_logs(s, run_id, tmp_path / "logs")
    assert sorted(p.parent.name for p in paths) == ["lossy", "ref", "thinker"]
    listed = inspect_ai_log.list_eval_logs(str(tmp_path / "logs"))
    assert len(listed) == 3  # what inspect view lists, task and id from the file names
    assert {(i.task, i.task_id) for i in listed} == {("gsm8k-style", run_id.replace("-", ""))}
    logs = {p.parent.name: inspect_ai_log.read_eval_log(str(p)) for p in paths}
    problems = len(ROWS) - 1  # one row is the few-shot example
    for name, log in logs.items():
        assert log.version == LOG_VERSION and log.status == "success"
        assert log.eval.task == "gsm8k_style" and log.eval.model == f"{name}/smol-135m"
        assert log.eval.config.epochs == REPEATS
        assert log.eval.dataset.samples == problems
        assert log.eval.model_generate_config.temperature == 0
        assert log.eval.model_generate_config.max_tokens == 64
        assert log.samples is not None and len(log.samples) == problems * REPEATS
        ids = {str(s.id) for s in log.samples}
        assert len(ids) == problems and ids <= {str(i) for i in range(1, len(ROWS) + 1)}
        assert {(s.id, s.epoch) for s in log.samples} == {(i, e) for i in ids for e in (1, 2)}
    ref = logs["ref"]
    assert ref.results is not None
    score = ref.results.scores[0]
    assert score.name == "numeric" and score.metrics["accuracy"].value == 1.0
    assert score.metrics["stderr"].value == 0.0
    sample = ref.samples[0]  # type: ignore[index]
    # the few-shot example, then the problem, after the system prompt
    roles = [m.role for m in sample.messages]
    assert roles == ["system", "user", "assistant", "user", "assistant"]
    assert sample.messages[0].text == "Answer with a number."
    assert sample.target == next(
        r["a"].split("#### ")[1] for r in ROWS if r["q"] == sample.messages[3].text
    )
    assert sample.output.completion.endswith(f"#### {sample.target.replace(',', '')}")
    assert sample.scores is not None and sample.scores["numeric"].value == 1.0
    assert sample.output.usage is not None and sample.output.usage.input_tokens == 40

    lossy = logs["lossy"]
    assert lossy.results is not None
    assert lossy.results.scores[0].unscored_samples == 1
    failed = [s for s in lossy.samples or [] if s.error is not None]
    assert len(failed) == 1 and "http_5xx" in failed[0].error.message  # type: ignore[union-attr]
    assert failed[0].scores is None
    wrong = [s for s in lossy.samples or [] if s.scores and s.scores["numeric"].value == 0.0]
    assert {s.id for s in wrong} == {"3"}
    accuracy = lossy.results.scores[0].metrics["accuracy"].value
    assert accuracy == pytest.approx((problems - 1) / problems)

    thinker = logs["thinker"].samples[0]  # type: ignore[index]
    assert thinker.output.message.content[0].type == "reasoning"  # type: ignore[union-attr]
    assert thinker.output.completion.startswith("#### ")


def test_a_json_path_for_a_single_provider_and_not_an_eval_run(
    store: tuple[Path, str], tmp_path: Path
) -> None:
    db, run_id = store
    with Store(db) as s:
        paths = write_inspect_logs(s, run_id, tmp_path / "one.json")
        logs = inspect_logs(s, run_id)
    assert sorted(p.name for p in paths) == ["one-lossy.json", "one-ref.json", "one-thinker.json"]
    assert json.loads(paths[0].read_text())["version"] == LOG_VERSION
    assert set(logs) == {"ref", "lossy", "thinker"}
    with Store(tmp_path / "other.db") as s:
        other = s.create_run("bench", None, {}, "test")
        with pytest.raises(ConfigError, match="bench run"):
            inspect_logs(s, other)
