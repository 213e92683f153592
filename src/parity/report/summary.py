"""The JSON summary of a run: every provider's results, machine-readable."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from parity import __version__
from parity.core.analysis import ProviderResult
from parity.core.store import RunInfo


def summary(run: RunInfo, results: list[ProviderResult]) -> dict[str, Any]:
    """The run's metadata and each provider's results (no secrets: headers are hidden)."""
    return {
        "parity_version": __version__,
        "run": {
            "id": run.id,
            "status": run.status,
            "created_at": run.created_at,
            "finished_at": run.finished_at,
            "options": run.options,
            "exchanges": run.exchanges,
        },
        "providers": [r.to_dict() for r in results],
    }


def write_summary(path: Path, run: RunInfo, results: list[ProviderResult]) -> None:
    """Write the JSON summary to `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(summary(run, results), indent=2, default=str) + "\n", encoding="utf-8"
    )
