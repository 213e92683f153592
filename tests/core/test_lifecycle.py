"""The run lifecycle every command shares: finished, interrupted (with the resume hint) or
failed, on a real SQLite store."""

from __future__ import annotations

from pathlib import Path

import pytest

from parity.core.errors import RunInterrupted
from parity.core.lifecycle import Terminated, open_run, resume_command
from parity.core.store import Store


def status(db: Path, run_id: str) -> str:
    with Store(db) as store:
        info = store.run(run_id)
    assert info is not None
    return info.status


def test_a_block_that_completes_finishes_the_run(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    lines: list[str] = []
    with open_run(db, "run", {"repeats": 2}, source="p.toml", announce=lines.append) as run:
        assert status(db, run.run_id) == "running"
    assert status(db, run.run_id) == "finished"
    assert lines == [f"run [bold]{run.run_id}[/] -> {db}"]


def test_ctrl_c_marks_the_run_interrupted_and_names_the_resume_command(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    with pytest.raises(RunInterrupted) as caught, open_run(db, "eval", {}) as run:
        raise KeyboardInterrupt
    assert status(db, run.run_id) == "interrupted"
    assert caught.value.exit_code == 130
    assert f"continue with: parity eval --db {db} --resume {run.run_id}" in str(caught.value)
    assert "0 exchanges stored" in str(caught.value)


def test_sigterm_interrupts_like_ctrl_c_with_exit_code_143(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    with pytest.raises(RunInterrupted) as caught, open_run(db, "run", {}) as run:
        raise Terminated
    assert status(db, run.run_id) == "interrupted"
    assert caught.value.exit_code == 143


@pytest.mark.parametrize("kind", ["bench", "equiv", "equiv-record"])
def test_kinds_without_resume_say_so(tmp_path: Path, kind: str) -> None:
    db = tmp_path / "p.db"
    with pytest.raises(RunInterrupted) as caught, open_run(db, kind, {}) as run:
        raise KeyboardInterrupt
    assert status(db, run.run_id) == "interrupted"
    assert "does not resume" in str(caught.value)
    assert resume_command(kind, db, run.run_id) is None


def test_not_resumable_drops_the_hint_even_for_a_resumable_kind(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    with pytest.raises(RunInterrupted) as caught, open_run(db, "conform", {}, resumable=False):
        raise KeyboardInterrupt
    assert "--resume" not in str(caught.value)


def test_any_other_error_marks_the_run_failed_and_goes_on(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    with pytest.raises(ValueError, match="boom"), open_run(db, "run", {}) as run:
        raise ValueError("boom")
    assert status(db, run.run_id) == "failed"


def test_resume_reopens_the_same_run(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    with pytest.raises(RunInterrupted), open_run(db, "run", {}) as first:
        raise KeyboardInterrupt
    with open_run(db, "run", {}, resume=first.run_id) as again:
        assert again.run_id == first.run_id
        assert status(db, first.run_id) == "running"
    assert status(db, first.run_id) == "finished"
    with Store(db) as store:
        assert len(store.runs()) == 1
