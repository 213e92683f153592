"""Quick mode: one endpoint from the command line (or OPENAI_BASE_URL / OPENAI_API_KEY), no
providers file; real `parity` processes against the scripted server on loopback."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from parity.core.errors import ConfigError
from parity.core.target import Target, quick_providers
from tests.cli.test_main import FAKE_KEY, parity
from tests.scripted_server import MODEL_ID, ScriptedServer

NO_OPENAI = {"OPENAI_BASE_URL": "", "OPENAI_API_KEY": ""}


def providers_of(db: Path) -> list[tuple[str, str]]:
    rows = sqlite3.connect(db).execute("SELECT name, config FROM providers ORDER BY rowid")
    return [(name, config) for name, config in rows]


def test_run_with_base_url_and_model_needs_no_file(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    with ScriptedServer() as server:
        result = parity(
            "run", "--base-url", server.base("ok"), "--model", MODEL_ID, "--db", str(db),
            "--repeats", "1", "--speed-requests", "1", "--no-conformance",
            env=NO_OPENAI,
        )  # fmt: skip
        assert server.count("ok") > 0
    assert result.returncode in (0, 1), result.stderr
    assert "Traceback" not in result.stderr
    assert [name for name, _ in providers_of(db)] == ["endpoint"]


def test_openai_environment_is_the_fallback_and_the_model_is_discovered(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    with ScriptedServer() as server:
        env = {"OPENAI_BASE_URL": server.base("ok"), "OPENAI_API_KEY": FAKE_KEY}
        result = parity("conform", "--checks", "usage.reported", "--db", str(db), env=env)
        sent = server.received("ok")
    assert result.returncode == 0, result.stdout + result.stderr
    chats = [r for r in sent if r.endpoint == "/chat/completions"]
    assert chats and all(r.headers.get("authorization") == f"Bearer {FAKE_KEY}" for r in chats)
    assert all(r.json()["model"] == MODEL_ID for r in chats)
    (_, config), = providers_of(db)  # fmt: skip
    assert '"api_key_env": "OPENAI_API_KEY"' in config and FAKE_KEY not in config


def test_a_reference_can_be_named_on_the_command_line(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    with ScriptedServer() as server:
        result = parity(
            "run", "--base-url", server.base("ok"), "--model", MODEL_ID,
            "--reference-url", server.base("ok"), "--reference-model", MODEL_ID,
            "--db", str(db), "--repeats", "1", "--speed-requests", "0", "--no-conformance",
            env=NO_OPENAI,
        )  # fmt: skip
    assert result.returncode in (0, 1), result.stderr
    names = [name for name, _ in providers_of(db)]
    assert names == ["endpoint", "reference"]


def test_a_quick_run_resumes_without_a_file(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    with ScriptedServer() as server:
        args = ["--repeats", "1", "--speed-requests", "0", "--no-conformance", "--db", str(db)]
        first = parity("run", "--base-url", server.base("ok"), "--model", MODEL_ID, *args)
        assert first.returncode in (0, 1), first.stderr
        (run_id,) = sqlite3.connect(db).execute("SELECT id FROM runs").fetchone()
        sent = server.count("ok")
        again = parity("run", "--resume", run_id, *args, env=NO_OPENAI)
        assert again.returncode in (0, 1), again.stderr
        assert server.count("ok") == sent  # everything was stored: nothing sent again


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give a providers file, --base-url URL --model M, or set OPENAI_BASE_URL"),
        (["--model", "m"], "give --base-url (or set OPENAI_BASE_URL) with --model"),
        (["FILE", "--base-url", "http://127.0.0.1:9/v1"], "not both"),
    ],
)
def test_missing_or_doubled_targets_are_one_line(
    tmp_path: Path, args: list[str], message: str
) -> None:
    path = tmp_path / "providers.toml"
    path.write_text('[[provider]]\nname = "a"\nbase_url = "http://127.0.0.1:9/v1"\nmodel = "m"\n')
    argv = [str(path) if a == "FILE" else a for a in args]
    result = parity("conform", *argv, "--db", str(tmp_path / "p.db"), env=NO_OPENAI)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("parity: error: ") and message in line


def test_the_one_listed_model_is_taken_and_an_unreachable_server_asks_for_model() -> None:
    with ScriptedServer() as server:
        target = Target(base_url=server.base("ok"))
        providers = quick_providers(target, env={})
        assert providers is not None and providers.providers[0].model == MODEL_ID
        with pytest.raises(ConfigError, match="give --model"):
            quick_providers(Target(base_url="http://127.0.0.1:9/v1"), env={})
