"""The CLI conventions users expect: --version, shell completion, `--json -` (stdout carries
the JSON alone; tables and progress go to stderr) on every command that reports, --quiet.
Real `parity` processes; runs against the scripted server on loopback."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from parity import __version__
from tests.cli.test_main import PARITY, parity, provider_toml
from tests.scripted_server import ScriptedServer


def test_version_option_and_command() -> None:
    assert parity("--version").stdout.strip() == __version__
    assert json.loads(parity("version", "--json", "-").stdout)["parity"] == __version__


@pytest.mark.parametrize("spelling", ["bash_source", "source_bash"])
def test_shell_completion_is_on_in_both_spellings(spelling: str) -> None:
    script = parity(env={"_PARITY_COMPLETE": spelling})
    assert "_parity_completion" in script.stdout


def test_completion_completes_commands() -> None:
    env = {**os.environ, "_PARITY_COMPLETE": "complete_bash", "COMP_WORDS": "parity ru",
           "COMP_CWORD": "1"}  # fmt: skip
    result = subprocess.run(PARITY, capture_output=True, text=True, env=env, timeout=60)
    assert result.stdout.split() == ["run", "runs"]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[str]]:
    """Two small runs of a reference and one provider against the scripted server."""
    tmp = tmp_path_factory.mktemp("conventions")
    db = tmp / "p.db"
    with ScriptedServer() as server:
        path = tmp / "providers.toml"
        path.write_text(
            provider_toml("ref", server.base("ok"), reference=True)
            + provider_toml("b", server.base("ok"))
        )
        args = ["--db", str(db), "--repeats", "1", "--speed-requests", "2", "--no-conformance"]
        for _ in range(2):
            result = parity("run", str(path), *args, "--json", "-")
            assert result.returncode in (0, 1), result.stderr
            report = json.loads(result.stdout)  # stdout is the JSON alone
            assert [p["name"] for p in report["providers"]] == ["ref", "b"]
            assert "accuracy" in result.stderr  # the leaderboard went to stderr
    ids = [row[0] for row in sqlite3.connect(db).execute("SELECT id FROM runs ORDER BY id")]
    return db, path, ids


@pytest.mark.parametrize(
    "command",
    [
        ["report"],
        ["runs"],
        ["history"],
        ["diff", "RUN0", "RUN1"],
    ],
)
def test_json_dash_puts_json_alone_on_stdout(
    store: tuple[Path, Path, list[str]], command: list[str]
) -> None:
    db, _, ids = store
    argv = [ids[0] if a == "RUN0" else ids[1] if a == "RUN1" else a for a in command]
    result = parity(*argv, "--db", str(db), "--json", "-")
    assert result.returncode in (0, 1), result.stderr
    assert isinstance(json.loads(result.stdout), dict)
    assert result.stderr.strip()  # the table is still shown, on stderr


def test_providers_check_json(tmp_path: Path) -> None:
    with ScriptedServer() as server:
        path = tmp_path / "providers.toml"
        path.write_text(provider_toml("a", server.base("ok")))
        result = parity("providers", "check", str(path), "--json", "-")
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(result.stdout)["providers"]
    assert row["name"] == "a" and row["reachable"] is True


def test_quiet_drops_progress_and_announcements(tmp_path: Path) -> None:
    with ScriptedServer() as server:
        path = tmp_path / "providers.toml"
        path.write_text(provider_toml("a", server.base("ok")))
        args = ["--db", str(tmp_path / "p.db"), "--repeats", "1", "--no-conformance"]
        loud = parity("run", str(path), *args)
        quiet = parity("--quiet", "run", str(path), *args)
    assert " -> " in loud.stderr
    assert quiet.stderr.strip() == "", quiet.stderr
    assert "accuracy" in quiet.stdout
