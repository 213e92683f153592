"""Suites from data sets as others publish them: JSONL, CSV, Parquet, Arrow, Hugging Face
folders and suite TOMLs; inspect_ai, lm-eval and GSM8K sample formats; column mapping,
scorers, few-shot; every bad input one line naming file, line or row, and field."""

import builtins
import json
from pathlib import Path
from typing import Any

import pytest

from parity.accuracy.evaluate import EvalOptions, load_suite
from parity.accuracy.suites import get_suite
from parity.accuracy.suites.datasets import DatasetOptions, load_dataset_suite
from parity.accuracy.suites.scorers import exact, multiple_choice, numeric
from parity.accuracy.suites.user import load_user_suite
from parity.core.errors import ConfigError

pa = pytest.importorskip("pyarrow", reason="pyarrow is in the dev extra (parity[datasets])")
import pyarrow.parquet as pq  # noqa: E402

GSM8K = [
    {
        "question": "Natalia sold 48 clips in April and half as many in May. How many in all?",
        "answer": "In May she sold 48/2 = 24 clips.\nIn all 48+24 = 72.\n#### 72",
    },
    {
        "question": "Weng earns $12 an hour. She worked 50 minutes. How much did she earn?",
        "answer": "12/60 = $0.2 per minute.\n0.2 x 50 = $10.\n#### 10",
    },
    {"question": "What is 1,000 + 1?", "answer": "1000 + 1 = 1001\n#### 1,001"},
    {"question": "What is 6 x 7?", "answer": "6 x 7 = 42\n#### 42"},
]


def _jsonl(path: Path, *rows: Any) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


def _one_line(info: pytest.ExceptionInfo[ConfigError]) -> str:
    text = str(info.value)
    assert "\n" not in text
    return text


# --- GSM8K-style JSONL -----------------------------------------------------------------------


def test_gsm8k_jsonl_reads_as_it_is(tmp_path: Path) -> None:
    suite = get_suite(str(_jsonl(tmp_path / "gsm8k.jsonl", *GSM8K)))
    assert suite.name == "gsm8k" and suite.score is numeric
    assert [p.id for p in suite.problems] == ["1", "2", "3", "4"]
    assert [p.answer for p in suite.problems] == ["72", "10", "1,001", "42"]
    assert suite.problems[0].prompt == GSM8K[0]["question"]
    assert suite.grade(suite.problems[2], "so 1001.\n#### 1001") == 1.0
    assert suite.grade(suite.problems[0], "#### 71") == 0.0


def test_field_mapping_names_the_columns(tmp_path: Path) -> None:
    rows = [{"q": r["question"], "a": r["answer"], "key": f"g{i}"} for i, r in enumerate(GSM8K)]
    path = _jsonl(tmp_path / "renamed.jsonl", *rows)
    with pytest.raises(ConfigError) as info:
        get_suite(str(path))  # no column it knows
    assert "unknown field" in _one_line(info) or "no input column" in str(info.value)
    options = DatasetOptions(fields={"input": "q", "target": "a", "id": "key"}, scorer="numeric")
    suite = get_suite(str(path), dataset=options)
    assert [p.id for p in suite.problems] == ["g0", "g1", "g2", "g3"]
    assert suite.problems[3].answer == "42" and suite.score is numeric
    # parity's own names are accepted for the fields too
    same = get_suite(str(path), dataset=DatasetOptions(fields={"prompt": "q", "answer": "a"}))
    assert [p.answer for p in same.problems] == [p.answer for p in suite.problems]


def test_eval_options_carry_the_mapping_so_a_resume_rebuilds_the_same_suite(
    tmp_path: Path,
) -> None:
    rows = [{"q": r["question"], "a": r["answer"]} for r in GSM8K]
    path = _jsonl(tmp_path / "renamed.jsonl", *rows)
    options = EvalOptions(
        suite=str(path),
        fields={"input": "q", "target": "a"},
        scorer="numeric",
        few_shot=1,
        system_prompt="Be brief.",
    )
    stored = json.loads(json.dumps(options.model_dump()))
    again = load_suite(EvalOptions(**stored))
    first = load_suite(options)
    assert again.problems == first.problems and len(first.problems) == 3
    assert first.messages(first.problems[0])[0] == {"role": "system", "content": "Be brief."}


# --- Parquet, CSV, Arrow -----------------------------------------


def test_parquet_file(tmp_path: Path) -> None:
    path = tmp_path / "test.parquet"
    pq.write_table(pa.Table.from_pylist(GSM8K), path)
    suite = get_suite(f"{path}:2:0")
    assert len(suite.problems) == 2 and suite.score is numeric
    full = load_dataset_suite(path)
    assert [p.answer for p in full.problems] == ["72", "10", "1,001", "42"]


def test_csv_with_choice_columns_and_an_index_answer(tmp_path: Path) -> None:
    path = tmp_path / "mmlu.csv"
    path.write_text(
        "question,A,B,C,D,answer\n"
        "Capital of France?,Berlin,Paris,Rome,Madrid,1\n"
        '"Largest planet, by mass?",Earth,Mars,Jupiter,Venus,2\n'
    )
    suite = get_suite(str(path), dataset=DatasetOptions(fields={"choices": "A,B,C,D"}))
    assert suite.score is multiple_choice
    assert [p.answer for p in suite.problems] == ["B", "C"]
    prompt = suite.problems[1].prompt
    assert "Largest planet, by mass?" in prompt and "C) Jupiter" in prompt and "ANSWER" in prompt
    assert suite.grade(suite.problems[1], "Jupiter is largest.\nANSWER: C") == 1.0


def test_csv_plain_columns(tmp_path: Path) -> None:
    path = tmp_path / "plain.csv"
    path.write_text("id,prompt,answer\nq1,Say yes,yes\nq2,Say no,no\n")
    suite = get_suite(str(path))
    assert suite.score is exact and [p.id for p in suite.problems] == ["q1", "q2"]


def test_arrow_stream_file(tmp_path: Path) -> None:
    path = tmp_path / "gsm8k-test.arrow"
    table = pa.Table.from_pylist(GSM8K)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    assert len(get_suite(str(path)).problems) == 4


# --- Hugging Face folders -----------------------------------------


def test_folder_of_parquet_files_as_the_hub_cache_keeps_them(tmp_path: Path) -> None:
    snapshot = tmp_path / "datasets--openai--gsm8k" / "snapshots" / "e53f048" / "main"
    snapshot.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(GSM8K[:2]), snapshot / "test-00000-of-00002.parquet")
    pq.write_table(pa.Table.from_pylist(GSM8K[2:]), snapshot / "test-00001-of-00002.parquet")
    pq.write_table(pa.Table.from_pylist(GSM8K[:1]), snapshot / "train-00000-of-00001.parquet")
    (snapshot / "cache-1234.arrow").write_bytes(b"not read")
    suite = get_suite(str(snapshot))  # test by default
    assert [p.answer for p in suite.problems] == ["72", "10", "1,001", "42"]
    train = get_suite(str(snapshot), dataset=DatasetOptions(split="train"))
    assert len(train.problems) == 1
    with pytest.raises(ConfigError) as info:
        get_suite(str(snapshot), dataset=DatasetOptions(split="dev"))
    assert "no split 'dev' (splits: test, train)" in _one_line(info)
    (snapshot / "test-00000-of-00002.parquet").unlink()
    (snapshot / "test-00001-of-00002.parquet").unlink()
    (snapshot / "validation-00000-of-00001.parquet").write_bytes(
        (snapshot / "train-00000-of-00001.parquet").read_bytes()
    )
    with pytest.raises(ConfigError) as info:
        get_suite(str(snapshot))
    assert "several splits (train, validation)" in _one_line(info)


def test_save_to_disk_folders(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets", reason="datasets is in the dev extra")
    rows = [{"input": r["question"], "target": r["answer"].split("#### ")[1]} for r in GSM8K]
    single = tmp_path / "single"
    datasets.Dataset.from_list(rows).save_to_disk(str(single))
    suite = get_suite(str(single), dataset=DatasetOptions(scorer="numeric"))
    assert [p.answer for p in suite.problems] == ["72", "10", "1,001", "42"]
    both = tmp_path / "gsm8k"
    datasets.DatasetDict(
        {"train": datasets.Dataset.from_list(rows[:1]), "test": datasets.Dataset.from_list(rows)}
    ).save_to_disk(str(both))
    assert len(get_suite(str(both)).problems) == 4
    assert len(get_suite(str(both), dataset=DatasetOptions(split="train")).problems) == 1
    assert get_suite(str(both / "test")).name == "gsm8k-test"


# --- inspect_ai and lm-eval samples --------------------------------------------------------------


def test_inspect_samples(tmp_path: Path) -> None:
    path = _jsonl(
        tmp_path / "inspect.jsonl",
        {"id": "s1", "input": "Capital of France?", "target": "Paris", "metadata": {"x": 1}},
        {
            "id": 2,
            "input": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "Say hello"}]},
            ],
            "target": ["hello", "hi"],
        },
        {"id": "s3", "input": "Pick the red fruit", "choices": ["banana", "cherry"], "target": "B"},
    )
    suite = get_suite(str(path), dataset=DatasetOptions(scorer="contains_phrase"))
    s1, s2, s3 = suite.problems
    assert (s1.id, s2.id, s3.id) == ("s1", "2", "s3")
    assert suite.messages(s2) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Say hello"},
    ]
    assert suite.grade(s2, "Hi there") == 1.0 and suite.grade(s2, "Howdy") == 0.0
    assert suite.grade(s1, "It is Paris.") == 1.0
    assert s3.answer == "B" and "B) cherry" in s3.prompt
    plain = get_suite(str(path))  # a row with choices is graded multiple_choice
    assert plain.problems[2].scorer == "multiple_choice" and plain.problems[0].scorer is None
    assert plain.grade(plain.problems[2], "ANSWER: B") == 1.0
    assert plain.grade(plain.problems[1], " HELLO ") == 1.0  # exact, either target


def test_lm_eval_samples_with_a_doc(tmp_path: Path) -> None:
    rows = [
        {
            "doc_id": i,
            "doc": {"question": r["question"], "answer": r["answer"]},
            "target": r["answer"],
            "arguments": {"gen_args_0": {"arg_0": "..."}},
            "resps": [["..."]],
        }
        for i, r in enumerate(GSM8K)
    ]
    path = _jsonl(tmp_path / "samples_gsm8k_2026.jsonl", *rows)
    suite = get_suite(str(path))
    assert [p.id for p in suite.problems] == ["0", "1", "2", "3"]
    assert suite.problems[0].prompt == GSM8K[0]["question"] and suite.score is numeric
    mapped = get_suite(
        str(path), dataset=DatasetOptions(fields={"input": "doc.question", "target": "doc.answer"})
    )
    assert [p.answer for p in mapped.problems] == ["72", "10", "1,001", "42"]


def test_template_over_columns(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "t.jsonl", *GSM8K)
    suite = get_suite(
        str(path), dataset=DatasetOptions(template='{question}\nEnd with "#### <number>".')
    )
    assert suite.problems[0].prompt.endswith('End with "#### <number>".')
    with pytest.raises(ConfigError) as info:
        get_suite(str(path), dataset=DatasetOptions(template="{questoin}"))
    assert _one_line(info).startswith(f"{path}:1: template: no column 'questoin'")


# --- few-shot ------------------------------------------------------------------------------------


def test_few_shot_examples_are_seeded_and_not_asked(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "gsm8k.jsonl", *GSM8K)
    suite = get_suite(str(path), dataset=DatasetOptions(few_shot=2))
    again = get_suite(str(path), dataset=DatasetOptions(few_shot=2))
    other = get_suite(str(path), dataset=DatasetOptions(few_shot=2, few_shot_seed=3))
    assert suite.problems == again.problems and len(suite.problems) == 2
    asked = {p.id for p in suite.problems}
    messages = suite.messages(suite.problems[0])
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant", "user"]
    shots = [messages[0]["content"], messages[2]["content"]]
    assert not asked & {str(GSM8K.index(r) + 1) for r in GSM8K if r["question"] in shots}
    assert messages[1]["content"].endswith("#### " + messages[1]["content"].split("#### ")[1])
    assert "####" in messages[1]["content"]  # the whole solution is the example's answer
    assert messages[-1]["content"] == suite.problems[0].prompt
    assert {p.id for p in other.problems} != asked or other.problems == suite.problems
    with pytest.raises(ConfigError) as info:
        get_suite(str(path), dataset=DatasetOptions(few_shot=4))
    assert "leaves no problem" in _one_line(info)


# --- suite TOML -----------------------------------------


def test_suite_toml_names_data_fields_scorer_few_shot_and_system_prompt(tmp_path: Path) -> None:
    rows = [{"q": r["question"], "a": r["answer"]} for r in GSM8K]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "data.parquet")
    toml = tmp_path / "suite.toml"
    toml.write_text(
        'data = "data.parquet"\nname = "mine"\nscorer = "numeric"\nfew_shot = 1\n'
        'system_prompt = "Think, then answer."\n'
        '[fields]\ninput = "q"\ntarget = "a"\n[sampling]\ntemperature = 0\nmax_tokens = 64\n'
    )
    suite = get_suite(str(toml))
    assert suite.name == "mine" and suite.score is numeric and len(suite.problems) == 3
    assert suite.sampling == {"temperature": 0, "max_tokens": 64}
    assert suite.messages(suite.problems[0])[0]["content"] == "Think, then answer."
    override = get_suite(str(toml), dataset=DatasetOptions(few_shot=0))  # the CLI wins
    assert len(override.problems) == 4
    toml.write_text('data = "data.parquet"\nfew_shots = 2\n')
    with pytest.raises(ConfigError) as info:
        get_suite(str(toml))
    assert _one_line(info).startswith(f"{toml}:2: unknown key 'few_shots'")


# --- bad input: one line naming file, line/row and field ---------------------------------


@pytest.mark.parametrize(
    ("rows", "options", "where", "message"),
    [
        (
            [{"q": "x", "a": "1"}],
            {"fields": {"input": "question"}},
            ":1",
            "field 'input': no column 'question'",
        ),
        ([GSM8K[0], {"question": "?", "answer": "#### x"}], {}, ":2", "field 'target': numeric"),
        ([{"question": "?", "answer": True}], {}, ":1", "field 'target' (column 'answer')"),
        ([{"question": "", "answer": "1"}], {}, ":1", "field 'input' (column 'question') is empty"),
        ([{"question": "?"}], {}, ":1", "no target column"),
        ([{"id": "a", "question": "?", "answer": "1"}] * 2, {}, ":2", "duplicate id 'a'"),
        ([{"input": "?", "choices": ["x"], "target": "Z"}], {}, ":1", "neither a choice letter"),
        ([{"input": "?", "target": ["a", "b"]}], {"scorer": "numeric"}, ":1", "list of 2 answers"),
        ([{"input": [{"role": "robot", "content": "?"}], "target": "1"}], {}, ":1", "role 'robot'"),
        (
            [{"question": "?", "answer": "1"}],
            {"fields": {"colour": "x"}},
            "",
            "unknown field 'colour'",
        ),
    ],
)
def test_bad_rows_are_one_line(
    tmp_path: Path, rows: list[Any], options: dict[str, Any], where: str, message: str
) -> None:
    path = _jsonl(tmp_path / "bad.jsonl", *rows)
    with pytest.raises(ConfigError) as info:
        get_suite(str(path), dataset=DatasetOptions(**options))
    text = _one_line(info)
    assert text.startswith(f"{path}{where}: "), text
    assert message in text


def test_bad_parquet_and_csv_rows_name_the_row(tmp_path: Path) -> None:
    path = tmp_path / "bad.parquet"
    pq.write_table(pa.Table.from_pylist([GSM8K[0], {"question": "?", "answer": "none"}]), path)
    with pytest.raises(ConfigError) as info:
        get_suite(str(path))
    assert _one_line(info).startswith(f"{path}: row 2: field 'target'")
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 not really")
    with pytest.raises(ConfigError) as info:
        get_suite(str(broken))
    assert _one_line(info).startswith(f"{broken}: cannot read parquet data")
    csv_path = tmp_path / "bad.csv"
    csv_path.write_text("question,answer\nWhat?,1\nToo,many,values\n")
    with pytest.raises(ConfigError) as info:
        get_suite(str(csv_path))
    assert _one_line(info) == f"{csv_path}:3: 3 values for 2 columns"


def test_missing_pyarrow_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "t.parquet"
    pq.write_table(pa.Table.from_pylist(GSM8K), path)
    real_import = builtins.__import__

    def no_pyarrow(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("pyarrow"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pyarrow)
    with pytest.raises(ConfigError) as info:
        get_suite(str(path))
    assert _one_line(info) == (
        f"{path}: reading Parquet and Arrow needs pyarrow: pip install 'parity[datasets]'"
    )


def test_builtin_suites_take_no_dataset_options_and_old_formats_still_load(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigError, match="built in"):
        get_suite("easy", dataset=DatasetOptions(few_shot=2))
    assert get_suite("easy", dataset=DatasetOptions()).name == "easy"
    own = _jsonl(tmp_path / "own.jsonl", {"id": "a", "prompt": "?", "answer": "1", "scorrer": "x"})
    with pytest.raises(ConfigError, match="unknown field 'scorrer'"):
        load_user_suite(own)  # parity's own schema stays strict
    python = tmp_path / "s.py"
    python.write_text("SUITE = None\n")
    with pytest.raises(ConfigError, match="apply to data files"):
        load_user_suite(python, dataset=DatasetOptions(few_shot=1))
