"""The scheduling recipes of docs/monitoring.md, checked as far as this machine allows: the
systemd units by `systemd-analyze verify` (with the real `parity` executable), the
Kubernetes CronJob as YAML, the cron line's schedule; every command line they hold resolved
against the real CLI, and each one a `parity watch --once`."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.docs.markdown_blocks import DOCS, Block, blocks, commands
from tests.docs.test_examples import _resolve

PAGE = DOCS / "monitoring.md"
VENV_PARITY = "/opt/parity/.venv/bin/parity"
_CRON_FIELD = re.compile(r"^(\*|\d+(-\d+)?)(/\d+)?(,(\*|\d+(-\d+)?)(/\d+)?)*$")


def _blocks(lang: str) -> list[Block]:
    return [b for b in blocks(PAGE) if b.lang == lang]


def _units() -> dict[str, str]:
    """The systemd units on the page: file name (from the first line's comment) -> text."""
    found = {}
    for block in _blocks("ini"):
        first, _, rest = block.text.partition("\n")
        assert first.startswith("# /etc/systemd/system/"), block.where
        found[first.rsplit("/", 1)[1]] = rest
    return found


def _parity_argv(tokens: list[str]) -> list[str]:
    """The arguments after the `parity` executable, up to a shell redirection."""
    assert Path(tokens[0]).name == "parity", tokens
    args = []
    for token in tokens[1:]:
        if set(token) & set("<>"):
            break
        args.append(token)
    return args


def _is_watch_once(argv: list[str]) -> None:
    """`argv` resolves against the real CLI and is a `parity watch --once`; leading root
    flags (`--quiet`) must be the root command's (the docs resolver takes subcommands)."""
    import typer.main

    from parity.cli.main import app

    root = typer.main.get_command(app)
    flags = {opt for param in root.params for opt in param.opts}
    argv = list(argv)
    while argv and argv[0].startswith("-"):
        assert argv[0] in flags, f"{argv[0]} is no option of parity itself"
        argv.pop(0)
    _resolve(argv)
    words = [a for a in argv if not a.startswith("-")]
    assert words[0] == "watch" and "--once" in argv, argv


def test_the_page_has_every_recipe() -> None:
    assert len(_blocks("crontab")) == 1
    assert set(_units()) == {"parity-watch.service", "parity-watch.timer"}
    assert len(_blocks("yaml")) == 1


def test_cron_line_schedule_and_command() -> None:
    [block] = _blocks("crontab")
    jobs = [
        line
        for line in block.text.splitlines()
        if line.strip() and not line.startswith("#") and not re.match(r"^[A-Z_]+=", line)
    ]
    assert len(jobs) == 1
    fields = jobs[0].split(None, 5)
    assert all(_CRON_FIELD.match(f) for f in fields[:5]), fields[:5]
    watches = [c for c in commands(fields[5]) if Path(c[0]).name == "parity"]
    assert len(watches) == 1
    _is_watch_once(_parity_argv(watches[0]))


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_units_verify(tmp_path: Path) -> None:
    parity = Path(sys.executable).with_name("parity")
    assert parity.exists(), parity
    for name, text in _units().items():
        (tmp_path / name).write_text(text.replace(VENV_PARITY, str(parity)), encoding="utf-8")
    result = subprocess.run(
        ["systemd-analyze", "verify", *(str(tmp_path / n) for n in sorted(_units()))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # verify only warns about some mistakes (a bad Type=, an unknown key): none allowed.
    assert not re.search(r"Failed to parse|Unknown (key|section)|[Ii]gnoring", output), output


def test_systemd_units_keys_and_command() -> None:
    import configparser

    units = {}
    for name, text in _units().items():
        parser = configparser.ConfigParser(strict=True, interpolation=None)
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        parser.read_string(text)
        units[name] = parser
    service, timer = units["parity-watch.service"], units["parity-watch.timer"]
    assert service["Service"]["Type"] == "oneshot"
    assert "SuccessExitStatus" not in service["Service"]  # a regression must fail the unit
    tokens = shlex.split(service["Service"]["ExecStart"])
    assert tokens[0] == VENV_PARITY
    _is_watch_once(_parity_argv(tokens))
    assert timer["Timer"]["OnCalendar"] and timer["Timer"]["Persistent"] == "true"
    assert timer["Install"]["WantedBy"] == "timers.target"


def test_kubernetes_cronjob_parses_and_runs_watch_once() -> None:
    yaml = pytest.importorskip("yaml")
    [block] = _blocks("yaml")
    [doc] = list(yaml.safe_load_all(block.text))
    assert (doc["apiVersion"], doc["kind"]) == ("batch/v1", "CronJob")
    spec: dict[str, Any] = doc["spec"]
    assert all(_CRON_FIELD.match(f) for f in spec["schedule"].split()), spec["schedule"]
    assert len(spec["schedule"].split()) == 5
    assert spec["concurrencyPolicy"] == "Forbid"
    job = spec["jobTemplate"]["spec"]
    assert job["backoffLimit"] == 0  # a regression (exit 1) is not retried as a fresh run
    pod = job["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    [container] = pod["containers"]
    argv = [*container["command"], *container["args"]]
    assert all(isinstance(a, str) for a in argv)
    _is_watch_once(_parity_argv(argv))
    webhook = next(e for e in container["env"] if e["name"] == "PARITY_WEBHOOK")
    assert "secretKeyRef" in webhook["valueFrom"] and "value" not in webhook
    volumes = {v["name"] for v in pod["volumes"]}
    assert {m["name"] for m in container["volumeMounts"]} <= volumes
    store = next(m["mountPath"] for m in container["volumeMounts"] if m["name"] == "store")
    db = container["args"][container["args"].index("--db") + 1]
    assert db.startswith(store + "/"), "the store must be on the persistent volume"
