"""`parity conform` as a user meets it: the scripted reasoning model (a real HTTP server on
loopback) as the reference, the same model behind the fault-injecting proxy as the provider
under test. The CLI runs in a subprocess, as a user would run it."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from parity.local.faults import parse_faults
from parity.local.proxy import create_proxy_app
from parity.local.scripted_model import MODEL_ID, create_app
from parity.local.serve import BackgroundServer
from tests.cli.test_main import parity

pytest.importorskip("uvicorn")


@pytest.fixture(scope="module")
def model_url() -> Iterator[str]:
    with BackgroundServer(create_app()) as server:
        yield server.url + "/v1"


def providers_file(path: Path, entries: list[tuple[str, str, bool]]) -> Path:
    lines = []
    for name, url, reference in entries:
        lines += [
            "[[provider]]",
            f'name = "{name}"',
            f'base_url = "{url}"',
            f'model = "{MODEL_ID}"',
            "context_window = 4096",
            f"reference = {'true' if reference else 'false'}",
            "",
        ]
    path.write_text("\n".join(lines))
    return path


def test_a_faithful_provider_passes_everything(tmp_path: Path, model_url: str) -> None:
    with BackgroundServer(create_proxy_app(model_url, [])) as proxy:
        file = providers_file(
            tmp_path / "p.toml", [("ref", model_url, True), ("twin", proxy.url + "/v1", False)]
        )
        done = parity(
            "conform", str(file), "--db", str(tmp_path / "c.db"),
            "--json", str(tmp_path / "c.json"), "--junit", str(tmp_path / "c.xml"),
        )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "requests per check" in done.stderr and "distinct requests in all" in done.stderr
    assert "spent:" in done.stdout and "reasoning.effort" in done.stdout
    data = json.loads((tmp_path / "c.json").read_text())
    assert data["run"]["kind"] == "conform"
    twin = next(p for p in data["providers"] if p["name"] == "twin")
    assert {c["status"] for c in twin["conformance"]} == {"pass"}
    assert len(twin["conformance"]) == 27
    suites = ET.parse(tmp_path / "c.xml").getroot()
    assert suites.get("failures") == "0"
    assert int(suites.get("tests") or 0) == 2 * 27  # one test per check, no accuracy test


def test_an_engine_ignoring_reasoning_effort_fails_with_evidence(
    tmp_path: Path, model_url: str
) -> None:
    with BackgroundServer(create_proxy_app(model_url, parse_faults("drop=reasoning_effort"))) as p:
        file = providers_file(
            tmp_path / "p.toml", [("ref", model_url, True), ("old-engine", p.url + "/v1", False)]
        )
        done = parity(
            "conform", str(file), "--checks", "reasoning", "--db", str(tmp_path / "c.db"),
            "--json", str(tmp_path / "c.json"), "--junit", str(tmp_path / "c.xml"),
        )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert any(
        "old-engine" in line and "reasoning.effort:" in line for line in done.stdout.splitlines()
    )
    data = json.loads((tmp_path / "c.json").read_text())
    engine = next(p for p in data["providers"] if p["name"] == "old-engine")
    (effort,) = [c for c in engine["conformance"] if c["id"] == "reasoning.effort"]
    assert effort["status"] == "fail" and "p=" in effort["figure"]
    assert effort["evidence"] and "reasoning_effort" in effort["evidence"][0]["request"]
    root = ET.parse(tmp_path / "c.xml").getroot()
    case = root.find(".//testcase[@classname='old-engine.conformance'][@name='reasoning.effort']")
    assert case is not None
    failure = case.find("failure")
    assert failure is not None and "p=" in (failure.get("message") or "")
    assert "evidence:" in (failure.text or "")  # the request and the response excerpt


def test_without_a_reference_reference_bound_checks_are_na(tmp_path: Path, model_url: str) -> None:
    file = providers_file(tmp_path / "p.toml", [("solo", model_url, False)])
    done = parity(
        "conform", str(file), "--checks", "tools.trigger,usage", "--db", str(tmp_path / "c.db"),
        "--json", str(tmp_path / "c.json"),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    said = " ".join(done.stderr.split())  # rich wraps long lines
    assert "no reference provider: tools.trigger, usage.prompt_tokens will be n/a" in said
    data = json.loads((tmp_path / "c.json").read_text())
    rows = {c["id"]: c for c in data["providers"][0]["conformance"]}
    assert rows["tools.trigger"]["status"] == "n/a"
    assert "needs a reference" in rows["tools.trigger"]["figure"]
    assert rows["usage.reported"]["status"] == "pass"


def test_an_unknown_check_is_one_line_and_exit_2(tmp_path: Path, model_url: str) -> None:
    file = providers_file(tmp_path / "p.toml", [("solo", model_url, True)])
    done = parity("conform", str(file), "--checks", "tools,nope", "--db", str(tmp_path / "c.db"))
    assert done.returncode == 2
    assert "unknown check or family 'nope'" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_matrix_takes_no_providers_file(tmp_path: Path) -> None:
    done = parity("conform", str(tmp_path / "p.toml"), "--matrix")
    assert done.returncode == 2 and "--matrix starts its own servers" in done.stderr


def test_matrix_on_the_scripted_model_holds(tmp_path: Path) -> None:
    done = parity(
        "conform", "--matrix", "--upstream", "scripted", "--markdown", str(tmp_path / "m.md"),
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "the matrix holds" in done.stdout
    assert "caught by no check: delay-first-token=200" in done.stdout
    assert (tmp_path / "m.md").read_text().count("\n") == 29


def test_local_up_refuses_a_bad_fault_before_starting_anything(tmp_path: Path) -> None:
    done = parity("local", "up", "--state-dir", str(tmp_path), "--faults", "drop=seed,nope")
    assert done.returncode == 2 and "bad fault 'nope': unknown fault" in done.stderr
    done = parity(
        "local", "up", "--state-dir", str(tmp_path), "--variants", "short-context",
        "--faults", "drop=seed",
    )  # fmt: skip
    assert done.returncode == 2 and "include it" in done.stderr
    assert not (tmp_path / "fleet.json").exists()
