"""An outage is not non-conformance, through the real CLI: nginx in front of nothing (502 on
every path, GET /models included) and in front of a slow upstream (504), played by the
scripted loopback server. `providers check` says not reachable; `parity conform` and
`parity run` report errors (JUnit `<error>`, JSON "error"), never a failed check, spend a
handful of requests instead of the whole plan, and exit 1 (docs/cli.md's exit codes)."""

from __future__ import annotations

import asyncio
import json
import xml.etree.ElementTree as ET
from pathlib import Path

from tests.cli.test_main import parity, provider_toml
from tests.scripted_server import Reply, Request, ScriptedServer

NGINX_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)
NGINX_504 = NGINX_502.replace("502 Bad Gateway", "504 Gateway Time-out")


async def bad_gateway(req: Request, reply: Reply) -> None:
    await reply.send(502, NGINX_502, content_type="text/html")


async def gateway_timeout(req: Request, reply: Reply) -> None:
    await asyncio.sleep(0.05)  # nginx gave up on its upstream
    await reply.send(504, NGINX_504, content_type="text/html")


GATEWAYS = {"gw502": bad_gateway, "gw504": gateway_timeout}


def gateway_server() -> ScriptedServer:
    return ScriptedServer(scenarios=GATEWAYS, model_scenarios=GATEWAYS)


def providers(path: Path, server: ScriptedServer) -> Path:
    path.write_text(
        provider_toml("nothing-behind", server.base("gw502"))
        + provider_toml("slow-upstream", server.base("gw504"))
    )
    return path


def test_providers_check_says_a_gateway_in_front_of_nothing_is_not_reachable(
    tmp_path: Path,
) -> None:
    with gateway_server() as server:
        path = tmp_path / "providers.toml"
        path.write_text(
            provider_toml("up", server.base("ok"))
            + provider_toml("nothing-behind", server.base("gw502"))
            + provider_toml("slow-upstream", server.base("gw504"))
        )
        result = parity("providers", "check", str(path), env={"COLUMNS": "250"})
        assert server.count("gw502") == 1 and server.count("gw504") == 1  # one chat each
    assert result.returncode == 1, result.stdout + result.stderr
    rows = {
        line.split("│")[1].strip(): line
        for line in result.stdout.splitlines()
        if line.count("│") > 3
    }
    assert "yes" in rows["up"] and "a 1-token chat answered" in rows["up"]
    for name, status in (("nothing-behind", "502"), ("slow-upstream", "504")):
        cells = [c.strip() for c in rows[name].split("│")]
        assert cells[4] == "no", rows[name]
        assert f"HTTP {status}" in rows[name]


def test_conform_on_an_outage_reports_errors_never_failures_and_exits_1(tmp_path: Path) -> None:
    with gateway_server() as server:
        path = providers(tmp_path / "providers.toml", server)
        junit, summary = tmp_path / "c.xml", tmp_path / "c.json"
        result = parity(
            "conform", str(path), "--db", str(tmp_path / "c.db"),
            "--junit", str(junit), "--json", str(summary),
            env={"COLUMNS": "250"},
        )  # fmt: skip
        sent = {s: server.count(s) for s in GATEWAYS}
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    # A handful of attempts each (3 in a row make the provider unavailable), not ~100.
    assert all(n <= 10 for n in sent.values()), sent
    root = ET.parse(junit).getroot()
    assert root.get("failures") == "0" and root.findall(".//failure") == []
    for suite in root.iter("testsuite"):
        assert suite.get("errors") == suite.get("tests") != "0", suite.attrib
        for error in suite.iter("error"):
            assert error.get("message", "").startswith("unavailable: "), error.attrib
    data = json.loads(summary.read_text())
    for entry in data["providers"]:
        assert {c["status"] for c in entry["conformance"]} == {"error"}, entry["name"]
        assert entry["reachable"] is False and "unavailable" in (entry["detail"] or "")
    assert "conformance errors" in result.stdout and "failures (evidence" not in result.stdout


def test_run_on_an_outage_has_no_conformance_failure_and_exits_1(tmp_path: Path) -> None:
    with gateway_server() as server:
        path = providers(tmp_path / "providers.toml", server)
        junit = tmp_path / "r.xml"
        result = parity(
            "run", str(path), "--db", str(tmp_path / "r.db"), "--repeats", "1",
            "--junit", str(junit), env={"COLUMNS": "250"},
        )  # fmt: skip
        sent = {s: server.count(s) for s in GATEWAYS}
    assert result.returncode == 1, result.stdout + result.stderr
    assert all(n <= 10 for n in sent.values()), sent
    root = ET.parse(junit).getroot()
    assert root.findall(".//failure") == []
    cases = root.findall(".//testcase")
    assert cases and all(case.find("error") is not None for case in cases)
    assert "conformance failures" not in result.stdout
