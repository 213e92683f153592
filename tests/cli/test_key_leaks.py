"""API keys never leak, end to end through the real `parity` CLI: providers on the scripted
server echo the Authorization header back raw, JSON-escaped, URL-encoded, base64-encoded
(Basic) or split across two SSE deltas, and no form of any key may be in any byte of the
store (db, -wal, -shm), the terminal, or the JSON/HTML/JUnit/Markdown/CSV reports.

A key read from a file with Windows line endings (ends in \\r) is refused before anything is
sent, in one line that holds no part of it."""

from __future__ import annotations

import base64
import json
import random
import string
import subprocess
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cli.test_main import parity, provider_toml
from tests.leaks import leaks
from tests.scripted_server import (
    Handler,
    Reply,
    Request,
    ScriptedServer,
    completion,
    error_body,
    stream_completion,
)

FORMS = ("raw", "json", "url", "base64", "split")


def make_key(seed: int) -> str:
    """A 32-character key with the characters escaping and encoding change: / + =."""
    rng = random.Random(seed)
    tail = "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(26))
    return f"sk-{tail[:5]}/{tail[5:11]}+{tail[11:17]}={tail[17:]}"


KEYS = {form: make_key(index) for index, form in enumerate(FORMS)}
ENV = {f"PARITY_LEAK_KEY_{form.upper()}": key for form, key in KEYS.items()}


def echoed(form: str, auth: str) -> str:
    """An error body that quotes the Authorization header `auth` in `form`."""
    key = auth.removeprefix("Bearer ")
    if form == "raw":
        return json.dumps(error_body(f"Incorrect API key provided: {auth}"))
    if form == "json":  # as PHP writes JSON (\/), with \u00XX for + and =
        text = json.dumps(error_body(f"Incorrect API key provided: {auth}"))
        return text.replace("/", "\\/").replace("+", "\\u002B").replace("=", "\\u003d")
    if form == "url":
        url = (
            f"https://auth.example/cb?key={urllib.parse.quote(key, safe='')}"
            f"&header={urllib.parse.quote_plus(auth)}&path=/{urllib.parse.quote(key)}"
        )
        return json.dumps(error_body(f"sign in again at {url}"))
    if form == "base64":
        basic = base64.b64encode(f"user:{key}".encode()).decode()
        bearer = base64.b64encode(auth.encode()).decode()
        return json.dumps(error_body(f"expected Authorization: Basic {basic} (got {bearer})"))
    raise AssertionError(form)


def echo(form: str) -> Handler:
    async def handler(req: Request, reply: Reply) -> None:
        auth = req.headers.get("authorization", "")
        if form != "split":
            await reply.send(401, echoed(form, auth), content_type="application/json")
        elif req.stream:  # the key split across two deltas, in the middle
            await stream_completion(
                reply,
                [{"content": f"Your header: {auth[:20]}"}, {"content": f"{auth[20:]}. Done."}],
            )
        else:
            await reply.send(200, completion({"content": f"Your header: {auth}. Done."}))

    return handler


def echo_models(form: str) -> Handler:
    async def handler(req: Request, reply: Reply) -> None:
        auth = req.headers.get("authorization", "")
        await reply.send(401, echoed(form, auth), content_type="application/json")

    return handler


def providers_file(path: Path, server: ScriptedServer) -> Path:
    text = ""
    for form in FORMS:
        block = provider_toml(form, server.base(f"echo-{form}"), reference=form == "split")
        text += block.rstrip("\n") + f'\napi_key_env = "PARITY_LEAK_KEY_{form.upper()}"\n\n'
    path.write_text(text)
    return path


@dataclass
class Outcome:
    commands: dict[str, subprocess.CompletedProcess[str]]
    files: dict[str, bytes]
    received: dict[str, list[Request]]
    bodies: dict[str, str]


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outcome]:
    """One `parity run` over the five echoing providers, a `parity report` of it in every
    format, and a `parity providers check`; everything they printed and wrote."""
    tmp = tmp_path_factory.mktemp("leaks")
    scenarios = {f"echo-{form}": echo(form) for form in FORMS}
    model_scenarios = {f"echo-{form}": echo_models(form) for form in FORMS if form != "split"}
    with ScriptedServer(scenarios=scenarios, model_scenarios=model_scenarios) as server:
        path = providers_file(tmp / "providers.toml", server)
        db = tmp / "p.db"
        env = {**ENV, "COLUMNS": "200"}
        run_args = ["run", str(path), "--db", str(db), "--repeats", "1", "--speed-requests", "2"]
        report_args = ["report", "--db", str(db)]
        formats = (("json", "json"), ("html", "html"), ("xml", "junit"), ("md", "markdown"))
        for suffix, fmt in formats:
            run_args += [f"--{fmt}", str(tmp / f"run.{suffix}")]
            report_args += [f"--{fmt}", str(tmp / f"r.{suffix}")]
        report_args += ["--csv", str(tmp / "r.csv")]
        commands = {
            "run": parity(*run_args, env=env),
            "report": parity(*report_args, env=env),
            "check": parity("providers", "check", str(path), env=env),
        }
        received = {form: server.received(f"echo-{form}") for form in FORMS}
    bodies = {form: echoed(form, f"Bearer {KEYS[form]}") for form in FORMS if form != "split"}
    files = {
        str(file.relative_to(tmp)): file.read_bytes()
        for file in sorted(tmp.rglob("*"))
        if file.is_file()
    }
    yield Outcome(commands, files, received, bodies)


def test_the_run_happened_and_every_key_was_sent_and_echoed(outcome: Outcome) -> None:
    for name, result in outcome.commands.items():
        assert "Traceback" not in result.stderr, (name, result.stderr[-2000:])
    assert outcome.commands["run"].returncode in (0, 1), outcome.commands["run"].stderr[-2000:]
    assert outcome.commands["report"].returncode == 0, outcome.commands["report"].stderr[-2000:]
    for name in ("p.db", "run.json", "run.html", "run.xml", "run.md", "r.csv", "r.md"):
        assert outcome.files.get(name), name
    for form in FORMS:
        requests = outcome.received[form]
        assert any(r.method == "POST" and r.stream for r in requests), form
        assert any(r.method == "POST" and not r.stream for r in requests), form
        assert all(r.headers.get("authorization") == f"Bearer {KEYS[form]}" for r in requests)
    for form, body in outcome.bodies.items():
        # What the provider sent back really holds the key, in its form (not raw, but for raw).
        assert leaks(body, KEYS[form]), form
        assert (KEYS[form] in body) is (form == "raw"), form


@pytest.mark.parametrize("form", FORMS)
def test_key_is_in_no_byte_of_store_terminal_or_reports(outcome: Outcome, form: str) -> None:
    key = KEYS[form]
    found = {name: leaks(data, key) for name, data in outcome.files.items()}
    for command, result in outcome.commands.items():
        found[f"{command} stdout"] = leaks(result.stdout, key)
        found[f"{command} stderr"] = leaks(result.stderr, key)
    assert {name: forms for name, forms in found.items() if forms} == {}


def test_store_shows_where_the_key_was(outcome: Outcome) -> None:
    # The redaction is visible (the echo was not silently dropped).
    store = b"".join(data for name, data in outcome.files.items() if name.startswith("p.db"))
    assert b"Bearer ***" in store


def crlf_providers(path: Path, base_url: str) -> Path:
    path.write_text(provider_toml("crlf", base_url, key=True))
    return path


@pytest.mark.parametrize("command", ["run", "providers check"])
def test_key_from_a_crlf_file_is_refused_in_one_line_without_it(
    tmp_path: Path, command: str
) -> None:
    key = make_key(99)
    dotenv = tmp_path / "key.txt"
    dotenv.write_bytes(f"{key}\r\n".encode())
    value = dotenv.read_bytes().decode().removesuffix("\n")  # what $(cat key.txt) gives
    assert value == key + "\r"
    with ScriptedServer() as server:
        path = crlf_providers(tmp_path / "providers.toml", server.base("ok"))
        args = ["--db", str(tmp_path / "p.db")] if command == "run" else []
        result = parity(*command.split(), str(path), *args, env={"PARITY_TEST_KEY": value})
        assert server.received() == []  # refused before anything was sent
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "(crlf)" in lines[0] and "$PARITY_TEST_KEY" in lines[0]
    assert "carriage return" in lines[0]
    assert leaks(result.stdout + result.stderr, key) == []
    assert not any(key[i : i + 5] in result.stderr for i in range(len(key) - 4))
    for file in tmp_path.iterdir():
        assert leaks(file.read_bytes(), key) == [] or file == dotenv, file


def test_header_value_with_a_line_break_is_refused_without_it(tmp_path: Path) -> None:
    secret = make_key(98)
    path = tmp_path / "providers.toml"
    path.write_text(
        provider_toml("hdr", "http://127.0.0.1:9/v1")
        + f'headers = {{ "X-Token" = "{secret}\\r" }}\n'
    )
    result = parity("providers", "check", str(path))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "X-Token" in result.stderr and "(hdr)" in result.stderr
    assert leaks(result.stdout + result.stderr, secret) == []
