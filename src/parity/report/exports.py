"""Files a run's report can be written as, all drawn from the one report model.

`to_csv`, `to_junit` and `to_markdown` live in their own modules (`csv_export`, `junit`,
`markdown`); this module gathers them with `to_json` and writes the ones asked for.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from parity.report.csv_export import to_csv
from parity.report.junit import to_junit
from parity.report.markdown import to_markdown
from parity.report.model import Report, ReportModel

__all__ = [
    "FORMATS",
    "eval_json",
    "to_csv",
    "to_json",
    "to_junit",
    "to_markdown",
    "write_exports",
]


def to_json(data: ReportModel | Mapping[str, Any]) -> str:
    """The report model (or `eval_json` of it) as indented JSON."""
    plain = data.to_dict() if isinstance(data, ReportModel) else data
    return json.dumps(plain, indent=2, default=str) + "\n"


FORMATS: dict[str, Callable[[Report], str]] = {
    "json": to_json,
    "csv": to_csv,
    "junit": to_junit,
    "markdown": to_markdown,
}


def write_exports(data: Report | Mapping[str, Any], paths: Mapping[str, Path | None]) -> list[Path]:
    """Write `data` in each format of `FORMATS` that `paths` gives a path for (None: skip);
    parent folders are created. Returns the paths written."""
    data = Report.of(data)
    written = []
    for fmt, path in paths.items():
        if path is None:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(FORMATS[fmt](data), encoding="utf-8")
        written.append(path)
    return written


def eval_json(data: Report | Mapping[str, Any]) -> dict[str, Any]:
    """What `parity eval --json` writes: the report model's JSON form with its older keys
    kept, "run" the run id and "options" the eval's options (the run's record is under
    "run_info")."""
    plain = data.to_dict() if isinstance(data, Report) else dict(data)
    run = plain["run"]
    return {**plain, "run": run["id"], "options": run.get("options"), "run_info": run}
