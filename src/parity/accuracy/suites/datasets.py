"""Suites from data sets as others publish them, read offline as they are.

Formats (by suffix; a folder by what it holds):

- JSONL (`.jsonl`, one object per line, an optional `{"suite": {...}}` header line), JSON
  (`.json`: an array of objects), CSV (`.csv`, `.tsv`; stdlib `csv`, first row the column
  names), Parquet (`.parquet`) and Arrow (`.arrow`, the stream or file format) via pyarrow
  (`pip install 'parity[datasets]'`);
- a folder saved by `datasets.Dataset.save_to_disk` (`state.json` and `data-*.arrow`), or a
  `DatasetDict` one (`dataset_dict.json` and a folder per split), or any folder of data files
  as the Hugging Face caches keep them (`test-00000-of-00001.parquet`, `gsm8k-test.arrow`,
  `main/test-*.parquet`; `cache-*.arrow` files of `.map()` are skipped): the split is
  `split`, else `test`, else the only one;
- a TOML file (`suite.toml`) naming the data file (relative to itself) and any option below.

Rows are read in the sample formats of inspect_ai (`input` a string or a list of chat
messages, `target` a string or a list of strings, `choices`, `id`, `metadata`), of lm-eval
(a `doc` object whose fields are looked up too, `target`) and of GSM8K-style files
(`question`, `answer` ending `#### 42`: the answer is what follows the last `####`, the whole
solution is what a few-shot example shows), and parity's own (`prompt`/`messages`, `answer`,
`scorer`). Which column is which parity field is guessed from these names
(`COLUMN_GUESSES`) unless `fields` says (`{"input": "question", "target": "answer"}`; a
dotted name reads a nested object, `doc.question`; `choices` may name several columns,
`A,B,C,D`).

Options (`DatasetOptions`; given on the command line they win over the file's): `fields`,
`scorer` (the default: the file's, else `multiple_choice` when rows have choices, `numeric`
when targets end `#### N`, else `exact`), `few_shot` (N rows drawn with `few_shot_seed`,
asked before every problem as user/assistant turns and not asked themselves), `split` and
`template` (a `str.format` template over the row's columns plus `{input}` and `{choices}`).

Every problem is one `ConfigError` line naming the file, the line or row, and the field.
"""

from __future__ import annotations

import csv
import json
import random
import re
import tomllib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, NoReturn

from parity.accuracy.suites import Problem, Suite
from parity.accuracy.suites.scorers import SCORERS, check_answer
from parity.core.errors import ConfigError

__all__ = [
    "COLUMN_GUESSES",
    "DatasetOptions",
    "is_foreign_jsonl",
    "load_dataset_suite",
]

PARITY_FIELDS = ("id", "input", "target", "choices", "scorer")
"""The fields a column can be mapped to (`--field FIELD=COLUMN`)."""
_FIELD_ALIASES = {"prompt": "input", "messages": "input", "answer": "target"}
COLUMN_GUESSES: dict[str, tuple[str, ...]] = {
    "id": ("id", "sample_id", "doc_id", "idx", "unique_id"),
    "input": ("input", "prompt", "messages", "question", "problem", "query"),
    "target": ("target", "answer", "label", "solution"),
    "choices": ("choices", "options"),
    "scorer": ("scorer",),
}
"""Columns read as each parity field when `fields` does not name one (first present wins)."""

DATA_SUFFIXES = (".jsonl", ".json", ".csv", ".tsv", ".parquet", ".arrow")
_TOML_KEYS = (
    "data",
    "name",
    "description",
    "scorer",
    "sampling",
    "system_prompt",
    "fields",
    "few_shot",
    "few_shot_seed",
    "split",
    "template",
)
_HEADER_KEYS = tuple(k for k in _TOML_KEYS if k != "data")
_SPLITS = ("test", "validation", "valid", "val", "dev", "train")
_LETTERS = "ABCDEFGHIJ"
MC_TEMPLATE = (
    "Answer the following multiple choice question. The last line of your response should "
    "be of the following format: 'ANSWER: $LETTER' (without quotes) where LETTER is one of "
    "{letters}.\n\n{input}\n\n{choices}"
)
"""How a row with choices is asked when no template is given (inspect_ai's wording)."""


@dataclass(frozen=True)
class DatasetOptions:
    """How to read a data set as a suite; None (or empty) leaves the file's own setting."""

    fields: Mapping[str, str] = field(default_factory=dict)
    scorer: str | None = None
    few_shot: int | None = None
    few_shot_seed: int | None = None
    split: str | None = None
    template: str | None = None

    def given(self) -> bool:
        """Whether any option is set."""
        return bool(self.fields) or any(
            getattr(self, f.name) is not None for f in fields(self) if f.name != "fields"
        )

    def over(self, base: DatasetOptions) -> DatasetOptions:
        """These options where set, else `base`'s (fields merged, these winning)."""
        merged = {
            f.name: getattr(self, f.name)
            if getattr(self, f.name) is not None
            else getattr(base, f.name)
            for f in fields(self)
            if f.name != "fields"
        }
        return DatasetOptions(fields={**base.fields, **self.fields}, **merged)


def _fail(where: str, problem: str) -> NoReturn:
    raise ConfigError(f"{where}: {' '.join(problem.split())}")


# --- entry points --------------------------------------------------------------------------


def is_foreign_jsonl(path: Path) -> bool:
    """Whether a JSONL file is a data set rather than parity's own schema: its header has keys
    only data sets use, or its first problem has no `prompt`/`messages` but an input column
    (`input`, `question`, ..., or a `doc` object). Unreadable files are parity's (whose
    loader reports them)."""
    try:
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if not line.strip():
                    continue
                obj = json.loads(line)
                if not isinstance(obj, dict):
                    return False
                if "suite" in obj:
                    header = obj["suite"]
                    if isinstance(header, dict) and set(header) - {
                        "name",
                        "description",
                        "scorer",
                        "sampling",
                        "system_prompt",
                    }:
                        return set(header) <= set(_HEADER_KEYS)
                    continue
                if "prompt" in obj or "messages" in obj:
                    return False
                return isinstance(obj.get("doc"), dict) or any(
                    k in obj for k in COLUMN_GUESSES["input"]
                )
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return False


def load_dataset_suite(
    path: Path, options: DatasetOptions | None = None, default_scorer: str | None = None
) -> Suite:
    """The suite in the data file, folder or suite TOML at `path`, read with `options` (which
    win over a TOML's or a JSONL header's own). `default_scorer` is used when neither names
    one and none is inferred. Raises `ConfigError`, one line naming file, line/row, field."""
    options = options or DatasetOptions()
    settings: dict[str, Any] = {}
    if path.suffix == ".toml":
        settings, data = _read_toml(path)
        path = data
    rows, header = _read_rows(path, options.over(_file_options(settings)).split)
    if header:
        settings = {**header, **{k: v for k, v in settings.items() if k != "data"}}
    merged = options.over(_file_options(settings))
    return _build(path, rows, merged, settings, default_scorer)


# --- suite TOML and headers ----------------------------------------------------------------


def _key_line(text: str, key: str) -> int:
    for number, line in enumerate(text.splitlines(), start=1):
        if re.match(rf"\s*\[?\s*{re.escape(key)}\s*[=\]]", line):
            return number
    return 0


def _read_toml(path: Path) -> tuple[dict[str, Any], Path]:
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        _fail(str(path), f"cannot read suite file ({getattr(exc, 'strerror', None) or exc})")
    try:
        settings = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        _fail(str(path), f"invalid TOML ({exc})")
    for key in settings:
        if key not in _TOML_KEYS:
            _fail(
                f"{path}:{_key_line(text, key)}",
                f"unknown key {key!r} (expected: {', '.join(_TOML_KEYS)})",
            )
    data = settings.get("data")
    if not isinstance(data, str) or not data.strip():
        _fail(f"{path}:{_key_line(text, 'data')}", "'data' must name the data file or folder")
    _check_settings(f"{path}", settings, text)
    return settings, (path.parent / data)


def _check_settings(where: str, settings: Mapping[str, Any], text: str | None = None) -> None:
    def at(key: str) -> str:
        return f"{where}:{_key_line(text, key)}" if text is not None else where

    for key, value in settings.items():
        if key in ("sampling", "fields"):
            if not isinstance(value, dict):
                _fail(at(key), f"{key!r} must be a table of settings")
            if key == "fields" and not all(isinstance(v, str) for v in value.values()):
                _fail(at(key), "every 'fields' entry must name a column (a string)")
        elif key in ("few_shot", "few_shot_seed"):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                _fail(at(key), f"{key!r} must be a non-negative integer")
        elif not isinstance(value, str) or not value.strip():
            _fail(at(key), f"{key!r} must be a non-empty string")
    name = settings.get("name")
    if isinstance(name, str) and ("/" in name or ":" in name):
        _fail(at("name"), f"suite name {name!r} must not contain '/' or ':'")
    scorer = settings.get("scorer")
    if scorer is not None and scorer not in SCORERS:
        _fail(at("scorer"), f"unknown scorer {scorer!r}; known: {', '.join(sorted(SCORERS))}")


def _file_options(settings: Mapping[str, Any]) -> DatasetOptions:
    return DatasetOptions(
        fields=dict(settings.get("fields") or {}),
        scorer=settings.get("scorer"),
        few_shot=settings.get("few_shot"),
        few_shot_seed=settings.get("few_shot_seed"),
        split=settings.get("split"),
        template=settings.get("template"),
    )


# --- reading rows --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Row:
    where: str  # "FILE:LINE" or "FILE: row N"
    data: dict[str, Any]


def _read_rows(path: Path, split: str | None) -> tuple[list[_Row], dict[str, Any]]:
    """The rows of a data file or folder, and a JSONL header's settings (else empty)."""
    if path.is_dir():
        return _read_folder(path, split), {}
    if not path.exists():
        _fail(str(path), "no such data file or folder")
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".arrow"):
        return _read_columnar(path), {}
    if suffix in (".csv", ".tsv"):
        return _read_csv(path), {}
    if suffix == ".json":
        rows = _read_json_array(path)
        if rows is not None:
            return rows, {}
    return _read_jsonl(path)


def _text(path: Path) -> str:
    try:
        return path.read_text("utf-8")
    except UnicodeDecodeError as exc:
        _fail(str(path), f"not UTF-8 text ({exc.reason} at byte {exc.start})")
    except OSError as exc:
        _fail(str(path), f"cannot read data file ({exc.strerror or exc})")


def _read_jsonl(path: Path) -> tuple[list[_Row], dict[str, Any]]:
    rows: list[_Row] = []
    header: dict[str, Any] = {}
    for number, line in enumerate(_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            _fail(where, f"invalid JSON ({exc.msg} at column {exc.colno})")
        if not isinstance(obj, dict):
            _fail(where, "expected a JSON object")
        if "suite" in obj and set(obj) == {"suite"}:
            if rows or header:
                _fail(where, "the {'suite': ...} header must be the first line")
            header = obj["suite"]
            if not isinstance(header, dict):
                _fail(where, "'suite' must be an object")
            for key in header:
                if key not in _HEADER_KEYS:
                    _fail(
                        where, f"unknown header field {key!r} (expected: {', '.join(_HEADER_KEYS)})"
                    )
            _check_settings(where, header)
            continue
        rows.append(_Row(where, obj))
    return rows, header


def _read_json_array(path: Path) -> list[_Row] | None:
    """The rows of a JSON array of objects; None when the file is not one JSON value."""
    text = _text(path)
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None  # JSON Lines under a .json name
    if not isinstance(value, list):
        _fail(str(path), "expected a JSON array of objects (or one object per line)")
    rows = []
    for i, obj in enumerate(value, start=1):
        if not isinstance(obj, dict):
            _fail(f"{path}: row {i}", "expected a JSON object")
        rows.append(_Row(f"{path}: row {i}", obj))
    return rows


def _read_csv(path: Path) -> list[_Row]:
    text = _text(path)
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    reader = csv.reader(text.splitlines(keepends=True), delimiter=delimiter)
    try:
        columns = next(reader, None)
        if columns is None:
            return []
        columns = [c.strip().lstrip("\ufeff") for c in columns]
        rows = []
        for values in reader:
            where = f"{path}:{reader.line_num}"
            if not any(v.strip() for v in values):
                continue
            if len(values) != len(columns):
                _fail(where, f"{len(values)} values for {len(columns)} columns")
            rows.append(_Row(where, dict(zip(columns, values, strict=True))))
    except csv.Error as exc:
        _fail(f"{path}:{reader.line_num}", f"invalid CSV ({exc})")
    return rows


def _pyarrow(path: Path) -> Any:
    try:
        import pyarrow
        import pyarrow.ipc
        import pyarrow.parquet
    except ImportError:
        raise ConfigError(
            f"{path}: reading Parquet and Arrow needs pyarrow: pip install 'parity[datasets]'"
        ) from None
    return pyarrow


def _read_columnar(path: Path, start: int = 1) -> list[_Row]:
    pa = _pyarrow(path)
    try:
        if path.suffix.lower() == ".parquet":
            table = pa.parquet.read_table(path)
        else:
            try:
                with pa.memory_map(str(path)) as source:
                    table = pa.ipc.open_stream(source).read_all()
            except pa.ArrowInvalid:
                with pa.memory_map(str(path)) as source:
                    table = pa.ipc.open_file(source).read_all()
    except (OSError, pa.ArrowException) as exc:
        _fail(str(path), f"cannot read {path.suffix[1:]} data ({exc})")
    return [_Row(f"{path}: row {i}", row) for i, row in enumerate(table.to_pylist(), start=start)]


def _data_files(folder: Path) -> list[Path]:
    found = []
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts) or not p.is_file():
            continue
        if p.suffix.lower() in DATA_SUFFIXES and not p.name.startswith("cache-"):
            if p.name in ("dataset_info.json", "state.json", "dataset_dict.json"):
                continue
            found.append(p)
    return found


def _split_of(folder: Path, file: Path) -> str:
    tokens = [t.lower() for t in re.split(r"[-_.]", file.stem)]
    tokens += [part.lower() for part in file.relative_to(folder).parts[:-1]]
    return next((s for s in _SPLITS if s in tokens), "data")


def _read_folder(folder: Path, split: str | None) -> list[_Row]:
    if (folder / "dataset_dict.json").is_file():
        try:
            splits = json.loads((folder / "dataset_dict.json").read_text("utf-8"))["splits"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            _fail(str(folder / "dataset_dict.json"), f"not a DatasetDict description ({exc})")
        chosen = _choose_split(folder, [str(s) for s in splits], split)
        return _read_folder(folder / chosen, None)
    if (folder / "state.json").is_file():  # one Dataset.save_to_disk split
        try:
            state = json.loads((folder / "state.json").read_text("utf-8"))
            names = [f["filename"] for f in state["_data_files"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            _fail(str(folder / "state.json"), f"not a saved Dataset's state ({exc})")
        return _read_files([folder / n for n in names])
    files = _data_files(folder)
    if not files:
        _fail(str(folder), f"no data files ({', '.join(DATA_SUFFIXES)}) in this folder")
    groups: dict[str, list[Path]] = {}
    for file in files:
        groups.setdefault(_split_of(folder, file), []).append(file)
    if split is not None and split not in groups:  # a split name parity does not know
        named = [
            f
            for f in files
            if split.lower() in re.split(r"[-_./]", str(f.relative_to(folder)).lower())
        ]
        if named:
            groups[split] = named
    chosen = _choose_split(folder, list(groups), split)
    return _read_files(groups[chosen])


def _choose_split(folder: Path, splits: list[str], split: str | None) -> str:
    if split is not None:
        if split not in splits:
            _fail(str(folder), f"no split {split!r} (splits: {', '.join(splits)})")
        return split
    if len(splits) == 1:
        return splits[0]
    if "test" in splits:
        return "test"
    _fail(
        str(folder),
        f"several splits ({', '.join(splits)}): choose one with --split or split = ... "
        "in the suite TOML",
    )


def _read_files(files: list[Path]) -> list[_Row]:
    rows: list[_Row] = []
    for file in files:
        if file.suffix.lower() in (".parquet", ".arrow"):
            rows += _read_columnar(file)
        else:
            rows += _read_rows(file, None)[0]
    return rows


# --- rows to problems ----------------------------------------------------------------------


@dataclass
class _Item:
    where: str
    id: str
    text: str  # the user turn asked (or the last user message's text)
    messages: tuple[dict[str, str], ...] | None  # the row's own chat, when it is one
    targets: list[str]  # final answers, one or more
    shown: str  # what a few-shot example answers
    choices: list[str] | None
    scorer: str | None
    final_marker: bool  # the target ended "#### N"


_MISSING = object()


def _lookup(row: Mapping[str, Any], column: str) -> Any:
    """`row[column]`; a dotted name reads nested objects; `_MISSING` when absent."""
    if column in row:
        return row[column]
    value: Any = row
    for part in column.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _columns(row: Mapping[str, Any]) -> str:
    names = list(row)
    doc = row.get("doc")
    if isinstance(doc, Mapping):
        names += [f"doc.{k}" for k in doc]
    return ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")


def _resolve_fields(path: Path, mapping: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, column in mapping.items():
        name = _FIELD_ALIASES.get(key, key)
        if name not in PARITY_FIELDS:
            _fail(
                str(path),
                f"--field {key}={column}: unknown field {key!r} (expected: "
                f"{', '.join(PARITY_FIELDS)})",
            )
        if not column.strip():
            _fail(str(path), f"--field {key}=: give the column name")
        out[name] = column.strip()
    return out


def _get(row: _Row, name: str, mapping: Mapping[str, str]) -> tuple[Any, str | None]:
    """(value, column) of parity field `name`: the mapped column, else the first guess present
    at the top level, else inside a `doc` object; (_MISSING, None) when there is none."""
    data = row.data
    if name in mapping:
        column = mapping[name]
        if name == "choices" and "," in column:
            parts = [c.strip() for c in column.split(",")]
            values = []
            for part in parts:
                value = _lookup(data, part)
                if value is _MISSING:
                    _fail(
                        row.where,
                        f"field 'choices': no column {part!r} (columns: {_columns(data)})",
                    )
                values.append(value)
            return values, column
        value = _lookup(data, column)
        if value is _MISSING:
            _fail(row.where, f"field {name!r}: no column {column!r} (columns: {_columns(data)})")
        return value, column
    for scope, prefix in ((data, ""), (data.get("doc"), "doc.")):
        if not isinstance(scope, Mapping):
            continue
        for guess in COLUMN_GUESSES[name]:
            if guess in scope:
                return scope[guess], prefix + guess
    return _MISSING, None


def _message_text(where: str, content: Any, index: int) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, Mapping) and part.get("type") == "text":
                parts.append(str(part.get("text", "")))
            elif isinstance(part, str):
                parts.append(part)
            else:
                kind = part.get("type") if isinstance(part, Mapping) else type(part).__name__
                _fail(where, f"field 'input': messages[{index}] has {kind} content (text only)")
        return "".join(parts)
    _fail(where, f"field 'input': messages[{index}] content must be text")


def _input(row: _Row, value: Any, column: str) -> tuple[str, tuple[dict[str, str], ...] | None]:
    label = f"field 'input' (column {column!r})"
    if isinstance(value, str):
        if not value.strip():
            _fail(row.where, f"{label} is empty")
        return value, None
    if isinstance(value, list) and value:
        messages = []
        for i, m in enumerate(value):
            if not isinstance(m, Mapping) or not isinstance(m.get("role"), str):
                _fail(row.where, f"{label}: messages[{i}] must be an object with a 'role'")
            role = m["role"]
            if role not in ("system", "user", "assistant"):
                _fail(row.where, f"{label}: messages[{i}] role {role!r} (system, user, assistant)")
            messages.append(
                {"role": role, "content": _message_text(row.where, m.get("content"), i)}
            )
        users = [m["content"] for m in messages if m["role"] == "user"]
        return (users[-1] if users else messages[-1]["content"]), tuple(messages)
    _fail(row.where, f"{label} must be a non-empty string or a list of chat messages")


def _scalar(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str | int | float):
        return str(value)
    return None


def _choices(row: _Row, value: Any, column: str | None) -> list[str] | None:
    if value is _MISSING or value is None:
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            _fail(row.where, f"field 'choices' (column {column!r}) must be a list of choices")
    if not isinstance(value, list) or not value:
        _fail(row.where, f"field 'choices' (column {column!r}) must be a non-empty list")
    out = []
    for v in value:
        text = _scalar(v)
        if text is None:
            _fail(row.where, f"field 'choices' (column {column!r}): {v!r} is not text")
        out.append(text)
    if len(out) > len(_LETTERS):
        _fail(row.where, f"field 'choices': {len(out)} choices (at most {len(_LETTERS)})")
    return out


_FINAL = re.compile(r"####\s*(.+?)\s*$", re.S)


def _target(
    row: _Row, value: Any, column: str, choices: list[str] | None
) -> tuple[list[str], str, bool]:
    """(final answers, what an example shows, whether it ended '#### N')."""
    label = f"field 'target' (column {column!r})"
    values = value if isinstance(value, list) else [value]
    if not values:
        _fail(row.where, f"{label} is an empty list")
    targets, shown, marker = [], "", False
    for v in values:
        text = _scalar(v)
        if text is None:
            _fail(row.where, f"{label} must be text or a number, got {type(v).__name__}")
        if choices is not None:
            text = _letter(row, label, v, text, choices)
            shown = shown or f"ANSWER: {text}"
        else:
            shown = shown or text
            final = _FINAL.search(text) if "####" in text else None
            if final is not None:
                text, marker = final[1].strip(), True
        if not text.strip():
            _fail(row.where, f"{label} is empty")
        targets.append(text)
    return targets, shown, marker


def _letter(row: _Row, label: str, raw: Any, text: str, choices: list[str]) -> str:
    if isinstance(raw, int) and not isinstance(raw, bool):
        if not 0 <= raw < len(choices):
            _fail(row.where, f"{label}: choice index {raw} out of range (0-{len(choices) - 1})")
        return _LETTERS[raw]
    stripped = text.strip().strip("()").rstrip(".").strip()
    if len(stripped) == 1 and stripped.upper() in _LETTERS[: len(choices)]:
        return stripped.upper()
    if text in choices:
        return _LETTERS[choices.index(text)]
    if stripped.isdigit() and int(stripped) < len(choices):
        return _LETTERS[int(stripped)]
    _fail(row.where, f"{label}: {text!r} is neither a choice letter nor one of the choices")


class _Columns(dict[str, Any]):
    def __missing__(self, key: str) -> Any:
        raise KeyError(key)


def _prompt(row: _Row, text: str, choices: list[str] | None, template: str | None) -> str:
    block = "\n".join(f"{_LETTERS[i]}) {c}" for i, c in enumerate(choices or []))
    if template is None:
        if choices is None:
            return text
        letters = _LETTERS[: len(choices)]
        return MC_TEMPLATE.format(letters=letters, input=text, choices=block)
    values = _Columns({k: v for k, v in row.data.items() if isinstance(k, str)})
    doc = row.data.get("doc")
    if isinstance(doc, Mapping):
        values.update({k: v for k, v in doc.items() if k not in values})
    values.update(input=text, choices=block)
    try:
        return template.format_map(values)
    except KeyError as exc:
        _fail(row.where, f"template: no column {exc.args[0]!r} (columns: {_columns(row.data)})")
    except (ValueError, IndexError, AttributeError) as exc:
        _fail(row.where, f"template: {exc}")


def _item(row: _Row, number: int, mapping: Mapping[str, str], template: str | None) -> _Item:
    raw_input, input_column = _get(row, "input", mapping)
    if raw_input is _MISSING or input_column is None:
        _fail(
            row.where, f"no input column: give --field input=COLUMN (columns: {_columns(row.data)})"
        )
    raw_target, target_column = _get(row, "target", mapping)
    if raw_target is _MISSING or target_column is None:
        _fail(
            row.where,
            f"no target column: give --field target=COLUMN (columns: {_columns(row.data)})",
        )
    choices = _choices(row, *_get(row, "choices", mapping))
    text, messages = _input(row, raw_input, input_column)
    if messages is None:
        text = _prompt(row, text, choices, template)
    elif template is not None or choices is not None:
        last = max(
            i for i, m in enumerate(messages) if m["role"] == "user" or i == len(messages) - 1
        )
        text = _prompt(row, messages[last]["content"], choices, template)
        messages = (*messages[:last], {**messages[last], "content": text}, *messages[last + 1 :])
    targets, shown, marker = _target(row, raw_target, target_column, choices)
    raw_id, id_column = _get(row, "id", mapping)
    if raw_id is _MISSING or raw_id is None:
        problem_id = str(number)
    else:
        given = _scalar(raw_id)
        if given is None or not given.strip():
            _fail(row.where, f"field 'id' (column {id_column!r}) must be a string or an integer")
        problem_id = given.strip().replace("/", "_")
    raw_scorer, scorer_column = _get(row, "scorer", mapping)
    scorer = None
    if raw_scorer is not _MISSING and raw_scorer not in (None, ""):
        if not isinstance(raw_scorer, str) or raw_scorer not in SCORERS:
            _fail(
                row.where,
                f"field 'scorer' (column {scorer_column!r}): unknown scorer {raw_scorer!r}; "
                f"known: {', '.join(sorted(SCORERS))}",
            )
        scorer = raw_scorer
    return _Item(row.where, problem_id, text, messages, targets, shown, choices, scorer, marker)


_ANY_OF = {
    "exact": r"(?i)\A\s*(?:{})\s*\Z",
    "contains_phrase": r"(?i)(?<![A-Za-z])(?:{})(?![A-Za-z])",
    "regex": "{}",
}


def _answer(item: _Item, scorer: str) -> tuple[str, str]:
    """(answer, scorer) of an item: several targets become one `regex` alternation."""
    if len(item.targets) == 1:
        return item.targets[0], scorer
    if scorer not in _ANY_OF:
        _fail(
            item.where,
            f"field 'target' is a list of {len(item.targets)} answers; scorer {scorer!r} takes "
            f"one (use exact, contains_phrase or regex)",
        )
    if scorer == "regex":
        return "|".join(f"(?:{t})" for t in item.targets), "regex"
    alternatives = "|".join(
        re.escape(t.strip().lower() if scorer != "exact" else t.strip()) for t in item.targets
    )
    return _ANY_OF[scorer].format(alternatives), "regex"


def _suite_name(path: Path, settings: Mapping[str, Any]) -> str:
    name = settings.get("name")
    if isinstance(name, str):
        return name
    stem = path.stem if path.is_file() else path.name
    if stem.lower() in _SPLITS and path.parent.name:
        stem = f"{path.parent.name}-{stem}"
    return stem.replace(":", "-").replace("/", "-") or "suite"


def _build(
    path: Path,
    rows: list[_Row],
    options: DatasetOptions,
    settings: Mapping[str, Any],
    default_scorer: str | None,
) -> Suite:
    if options.scorer is not None and options.scorer not in SCORERS:
        raise ConfigError(f"unknown scorer {options.scorer!r}; known: {', '.join(sorted(SCORERS))}")
    if not rows:
        _fail(str(path), "no rows (expected one problem per row)")
    mapping = _resolve_fields(path, options.fields)
    items = [_item(row, n, mapping, options.template) for n, row in enumerate(rows, start=1)]

    def inferred(item: _Item) -> str:
        if options.scorer is not None:
            return options.scorer
        if item.choices:
            return "multiple_choice"
        return "numeric" if gsm8k_style else default_scorer or "exact"

    gsm8k_style = any(i.final_marker for i in items)  # targets end "#### N": all numeric

    kinds = Counter(inferred(i) for i in items)
    suite_scorer = options.scorer or max(kinds, key=lambda k: kinds[k])  # ties: first seen
    shots = options.few_shot or 0
    examples: list[_Item] = []
    if shots:
        if shots >= len(items):
            _fail(str(path), f"few_shot {shots} leaves no problem to ask ({len(items)} rows)")
        chosen = set(random.Random(options.few_shot_seed or 0).sample(range(len(items)), shots))
        examples = [items[i] for i in sorted(chosen)]
        items = [item for i, item in enumerate(items) if i not in chosen]
    turns: list[dict[str, str]] = []
    for ex in examples:
        asked = [m for m in ex.messages or () if m["role"] != "system"] or [
            {"role": "user", "content": ex.text}
        ]
        turns += [*asked, {"role": "assistant", "content": ex.shown}]
    problems: list[Problem] = []
    first: dict[str, str] = {}
    for item in items:
        if item.id in first:
            _fail(item.where, f"field 'id': duplicate id {item.id!r} (first at {first[item.id]})")
        first[item.id] = item.where
        answer, scorer = _answer(item, item.scorer or inferred(item))
        why = check_answer(scorer, answer)
        if why is not None:
            _fail(item.where, f"field 'target': {why}")
        messages = item.messages
        if turns:
            own = list(messages or [{"role": "user", "content": item.text}])
            system = [m for m in own if m["role"] == "system"]
            messages = (*system, *turns, *[m for m in own if m["role"] != "system"])
        problems.append(
            Problem(
                id=item.id,
                prompt=item.text,
                answer=answer,
                scorer=None if scorer == suite_scorer else scorer,
                messages=messages,
            )
        )
    shot_text = f", {shots}-shot" if shots else ""
    try:
        return Suite(
            name=_suite_name(path, settings),
            description=str(settings.get("description") or f"data set {path.name}{shot_text}"),
            problems=problems,
            score=SCORERS[suite_scorer],
            sampling=dict(settings.get("sampling") or {}),
            system_prompt=settings.get("system_prompt"),
        )
    except ValueError as exc:
        _fail(str(path), str(exc))
