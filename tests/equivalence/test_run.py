"""The equivalence runs' lifecycle: Ctrl-C marks the run interrupted, an error failed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import parity.equivalence.run as equiv_run
from parity.core.config import ProvidersFile, parse_providers
from parity.core.errors import RunInterrupted
from parity.core.store import Store
from parity.equivalence.recording import AskedSettings
from parity.equivalence.run import record_reference, test_providers


def fleet() -> ProvidersFile:
    return parse_providers(
        {
            "provider": [
                {"name": "ref", "base_url": "http://127.0.0.1:9", "model": "m", "reference": True},
                {"name": "other", "base_url": "http://127.0.0.1:9", "model": "m"},
            ]
        },
        "test",
    )


def failing_runner(error: BaseException) -> type:
    class Failing:
        def __init__(self, *args: Any) -> None:
            pass

        async def __aenter__(self) -> Any:
            raise error

        async def __aexit__(self, *args: Any) -> None:
            pass

    return Failing


def status(db: Path) -> tuple[str, str]:
    with Store(db) as store:
        run = store.latest_run()
        assert run is not None
        return run.kind, run.status


def test_ctrl_c_marks_the_run_interrupted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(equiv_run, "Runner", failing_runner(KeyboardInterrupt()))
    db = tmp_path / "p.db"
    asked = AskedSettings(prompts=2)
    with pytest.raises(RunInterrupted, match="does not resume"):
        record_reference(db, fleet(), tmp_path / "ref.parity", samples=2, asked=asked)
    assert status(db) == ("equiv-record", "interrupted")
    assert not (tmp_path / "ref.parity").exists()
    with pytest.raises(RunInterrupted):
        test_providers(db, fleet(), samples=2, asked=asked)
    assert status(db) == ("equiv", "interrupted")


def test_an_error_marks_the_run_failed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(equiv_run, "Runner", failing_runner(RuntimeError("boom")))
    db = tmp_path / "p.db"
    with pytest.raises(RuntimeError, match="boom"):
        test_providers(db, fleet(), samples=2, asked=AskedSettings(prompts=2))
    assert status(db) == ("equiv", "failed")
