"""Start, watch and stop the local provider fleet: one llama.cpp server per variant.

Each variant runs as `python -m llama_cpp.server` bound to 127.0.0.1 only, in its own
session (so its whole process group can be stopped), logging to `<state_dir>/<variant>.log`.
What `fleet_up` started is recorded in `<state_dir>/fleet.json`; `fleet_down` and
`fleet_status` act on exactly those processes and nothing else, and check that a recorded
pid still belongs to the llama.cpp server on the recorded port before signalling it (pids
get reused). Once every server answers, `fleet_up` writes `<state_dir>/providers.toml`.

`fleet_up` never reuses a running fleet: if servers recorded in the state directory are
still alive it refuses, and says to run `parity local down` first. A record whose servers
are all gone (a reboot, a crash) is cleared silently.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import httpx

from parity.core.errors import FleetError
from parity.local.model import INSTALL_HINT, MODEL_ALIAS
from parity.local.variants import VARIANTS, Variant, weights_file

HOST = "127.0.0.1"
SERVER_MODULE = "llama_cpp.server"
PROXY_MODULE = "parity.local.proxy"
FAULTY_PREFIX = "faulty-"
PID_FILE = "fleet.json"
PROVIDERS_FILE = "providers.toml"
LOCK_FILE = ".lock"
MAX_CONCURRENCY = 1
"""llama-cpp-python's server runs one request at a time (later ones wait on a lock)."""
TERM_GRACE_S = 10.0
"""How long `fleet_down` waits after SIGTERM before it sends SIGKILL."""

_SERVER_PACKAGES = (
    "llama_cpp",
    "uvicorn",
    "fastapi",
    "sse_starlette",
    "starlette_context",
    "pydantic_settings",
)
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}
"""Servers started by this very process, so that stopping them also reaps them."""


@dataclass
class ServerStatus:
    """One recorded server of the fleet and whether it is still running."""

    variant: str
    port: int
    pid: int
    alive: bool
    base_url: str
    log: Path


@dataclass
class _Server:
    variant: str
    port: int
    pid: int
    log: Path
    model: Path
    command: list[str]

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}/v1"

    def to_json(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "port": self.port,
            "pid": self.pid,
            "log": str(self.log),
            "model": str(self.model),
            "command": self.command,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> _Server:
        return cls(
            variant=str(data["variant"]),
            port=int(data["port"]),
            pid=int(data["pid"]),
            log=Path(data["log"]),
            model=Path(data["model"]),
            command=[str(part) for part in data["command"]],
        )


def parity_home() -> Path:
    """Where parity keeps its local files: `$PARITY_HOME`, else `$XDG_CACHE_HOME/parity`,
    else `~/.cache/parity`."""
    if home := os.environ.get("PARITY_HOME"):
        return Path(home).expanduser()
    if cache := os.environ.get("XDG_CACHE_HOME"):
        return Path(cache).expanduser() / "parity"
    return Path.home() / ".cache" / "parity"


def default_state_dir() -> Path:
    """The fleet's default state directory (pid file, logs, providers file):
    `<parity_home()>/fleet`."""
    return parity_home() / "fleet"


def default_models_dir() -> Path:
    """Where generated (perturbed) weight files are cached: `<parity_home()>/models`."""
    return parity_home() / "models"


def fleet_up(
    state_dir: Path,
    variants: Sequence[str] | None = None,
    base_port: int = 8710,
    threads: int = 1,
    startup_timeout_s: float = 120,
    *,
    cache_dir: Path | None = None,
    faults: Sequence[str] = (),
) -> Path:
    """Start one server per variant and return the path of the providers file it wrote.

    `variants` defaults to all of `VARIANTS`, in that order; the i-th gets port
    `base_port + i` on 127.0.0.1. Generated weights are cached in `cache_dir` (default
    `default_models_dir()`). Returns only when every server has answered `GET /v1/models`
    and a one-token chat completion, after writing `<state_dir>/providers.toml`.

    Each spec in `faults` (e.g. "drop=reasoning_effort", see `parity.local.faults`) adds a
    provider `faulty-<spec>`: a fault-injecting proxy in front of the reference server, on
    the ports after the variants'.

    Raises `FleetError` (and leaves no server running) when the engine is not installed, a
    variant is unknown, a fault spec is given without the reference variant, a port is
    busy, a fleet from `state_dir` is already running, or a server exits or does not
    answer within `startup_timeout_s` (the message names the variant and its log file).
    """
    chosen = _resolve_variants(variants)
    _check_faults(chosen, faults)
    if threads < 1:
        raise FleetError(f"threads must be at least 1, got {threads}")
    count = len(chosen) + len(faults)
    if not 1024 <= base_port <= 65535 - count + 1:
        raise FleetError(f"base port {base_port} leaves no room for {count} servers in 1024-65535")
    _check_engine()
    state_dir = _make_state_dir(state_dir)
    with _locked(state_dir):
        running = [status.variant for status in _statuses(state_dir) if status.alive]
        if running:
            raise FleetError(
                f"a fleet is already running from {state_dir} ({', '.join(running)}): "
                f"run `parity local down` first"
            )
        (state_dir / PID_FILE).unlink(missing_ok=True)
        names = [v.name for v in chosen] + [faulty_name(spec) for spec in faults]
        ports = {name: base_port + index for index, name in enumerate(names)}
        for name, port in ports.items():
            if not _port_free(port):
                raise FleetError(
                    f"port {port} on {HOST} is busy (wanted for variant "
                    f"{name}): stop what listens there or choose another base port"
                )
        models_dir = cache_dir if cache_dir is not None else default_models_dir()
        models = {variant.name: weights_file(variant, models_dir) for variant in chosen}
        started: list[_Server] = []
        try:
            for variant in chosen:
                started.append(
                    _start(variant, models[variant.name], ports[variant.name], threads, state_dir)
                )
                _write_record(state_dir, started)
            _wait_ready(started, startup_timeout_s)
            proxies = []
            for spec in faults:  # _check_faults made sure the reference is among them
                reference = next(server for server in started if server.variant == "reference")
                name = faulty_name(spec)
                proxies.append(_start_proxy(name, spec, reference, ports[name], state_dir))
                started.append(proxies[-1])
                _write_record(state_dir, started)
            _wait_ready(proxies, startup_timeout_s, with_chat=False)
            return _write_providers(
                state_dir, chosen, started, dict(zip(faults, proxies, strict=True))
            )
        except BaseException:
            _stop(started)
            (state_dir / PID_FILE).unlink(missing_ok=True)
            raise


def fleet_down(state_dir: Path) -> list[str]:
    """Stop exactly the servers `fleet_up` recorded in `state_dir`; return their variant names.

    Each recorded process group gets SIGTERM, then SIGKILL if still alive after
    `TERM_GRACE_S` seconds. A recorded pid is signalled only while it still belongs to a
    `llama_cpp.server` process on the recorded port. The pid file is removed; logs and the
    providers file stay. Returns the variants that were running and were stopped (empty,
    and harmless, when nothing is running or nothing was ever started).
    """
    if not state_dir.is_dir():
        return []
    with _locked(state_dir):
        servers = _read_record(state_dir)
        stopped = _stop(servers)
        (state_dir / PID_FILE).unlink(missing_ok=True)
        return stopped


def fleet_status(state_dir: Path) -> list[ServerStatus]:
    """The servers recorded in `state_dir`, in start order, each with an `alive` flag.

    `alive` means the recorded pid is a running (not zombie) `llama_cpp.server` process on
    the recorded port. Empty when no fleet was started from `state_dir`. Read-only.
    """
    return _statuses(state_dir)


def _statuses(state_dir: Path) -> list[ServerStatus]:
    if not state_dir.is_dir():
        return []
    return [
        ServerStatus(
            variant=server.variant,
            port=server.port,
            pid=server.pid,
            alive=_is_our_server(server),
            base_url=server.base_url,
            log=server.log,
        )
        for server in _read_record(state_dir)
    ]


def faulty_name(spec: str) -> str:
    """The provider name of the proxy injecting `spec` ("drop=seed" -> "faulty-drop-seed")."""
    return FAULTY_PREFIX + "".join(c if c.isalnum() or c in "._-" else "-" for c in spec)


def _check_faults(chosen: Sequence[Variant], faults: Sequence[str]) -> None:
    if not faults:
        return
    from parity.local.faults import parse_faults

    for spec in faults:
        parse_faults(spec)  # raises ConfigError naming the bad part
    if not any(v.name == "reference" for v in chosen):
        raise FleetError("--faults puts proxies in front of the reference: include it")
    if len(set(faults)) < len(faults):
        raise FleetError("--faults: each spec once")


def _start_proxy(name: str, spec: str, upstream: _Server, port: int, state_dir: Path) -> _Server:
    command = [
        sys.executable,
        "-m",
        PROXY_MODULE,
        "--upstream",
        upstream.base_url,
        "--port",
        str(port),
        "--faults",
        spec,
    ]
    return _spawn(name, command, port, state_dir, upstream.model)


def _resolve_variants(names: Sequence[str] | None) -> list[Variant]:
    if names is None:
        return list(VARIANTS.values())
    unknown = [name for name in names if name not in VARIANTS]
    if unknown:
        raise FleetError(f"unknown variant {', '.join(unknown)}: choose from {', '.join(VARIANTS)}")
    if len(set(names)) != len(names):
        raise FleetError(f"a variant is named twice in {', '.join(names)}")
    if not names:
        raise FleetError("no variant to start")
    return [VARIANTS[name] for name in names]


def _check_engine() -> None:
    missing = [name for name in _SERVER_PACKAGES if find_spec(name) is None]
    if missing:
        raise FleetError(
            f"the local fleet needs llama-cpp-python's server ({', '.join(missing)} missing): "
            f"run `{INSTALL_HINT}`"
        )


def _make_state_dir(state_dir: Path) -> Path:
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FleetError(f"cannot create the fleet directory {state_dir}: {exc.strerror}") from None
    return state_dir.resolve()


@contextlib.contextmanager
def _locked(state_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on the state directory: one `up` or `down` at a time."""
    with (state_dir / LOCK_FILE).open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FleetError(
                f"another `parity local` command is using {state_dir}: wait for it to finish"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _port_free(port: int) -> bool:
    """Whether a server could listen on HOST:port now (uvicorn sets SO_REUSEADDR too)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def _server_command(variant: Variant, model: Path, port: int, threads: int) -> list[str]:
    command = [
        sys.executable,
        "-m",
        SERVER_MODULE,
        "--model",
        str(model),
        "--model_alias",
        MODEL_ALIAS,
        "--host",
        HOST,
        "--port",
        str(port),
        "--n_ctx",
        str(variant.n_ctx),
        "--n_threads",
        str(threads),
        "--n_threads_batch",
        str(threads),
        # By default llama-cpp-python's server cuts an in-flight stream whenever another
        # request arrives (parity sees it as malformed_stream under concurrent load); a
        # faithful provider queues instead, so the fleet does.
        "--interrupt_requests",
        "False",
    ]
    if variant.chat_format is not None:
        command += ["--chat_format", variant.chat_format]
    return command


def _start(variant: Variant, model: Path, port: int, threads: int, state_dir: Path) -> _Server:
    command = _server_command(variant, model, port, threads)
    return _spawn(variant.name, command, port, state_dir, model)


def _spawn(name: str, command: list[str], port: int, state_dir: Path, model: Path) -> _Server:
    log = state_dir / f"{name}.log"
    try:
        with log.open("wb") as handle:
            stamp = datetime.now(UTC).isoformat(timespec="seconds")
            handle.write(f"# {stamp} parity local up: {' '.join(command)}\n".encode())
            handle.flush()
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
    except OSError as exc:
        raise FleetError(
            f"cannot start the {name} server ({exc.strerror or exc}): see {log}"
        ) from None
    _CHILDREN[process.pid] = process
    return _Server(name, port, process.pid, log, model, command)


def _wait_ready(servers: Sequence[_Server], timeout_s: float, with_chat: bool = True) -> None:
    """Return when every server answers /v1/models and (`with_chat`) a 1-token chat
    completion."""
    deadline = time.monotonic() + timeout_s
    waiting = list(servers)
    with httpx.Client(timeout=httpx.Timeout(10.0, connect=1.0), trust_env=False) as client:
        while waiting:
            for server in list(waiting):
                _raise_if_exited(server)
                if _answers(client, server, with_chat):
                    waiting.remove(server)
            if not waiting:
                return
            if time.monotonic() > deadline:
                server = waiting[0]
                raise FleetError(
                    f"the {server.variant} server on port {server.port} did not answer within "
                    f"{timeout_s:g}s: see {server.log}"
                )
            time.sleep(0.2)


def _answers(client: httpx.Client, server: _Server, with_chat: bool = True) -> bool:
    try:
        models = client.get(f"{server.base_url}/models")
        if models.status_code != 200 or not with_chat:
            return models.status_code == 200
        chat = client.post(
            f"{server.base_url}/chat/completions",
            json={
                "model": MODEL_ALIAS,
                "messages": [{"role": "user", "content": "Hi"}],
                "max_tokens": 1,
                "temperature": 0,
            },
        )
    except httpx.HTTPError:
        return False
    return chat.status_code == 200


def _raise_if_exited(server: _Server) -> None:
    process = _CHILDREN.get(server.pid)
    code = process.poll() if process is not None else None
    if code is None:
        return
    tail = _log_tail(server.log)
    if "address already in use" in tail.lower():
        raise FleetError(
            f"port {server.port} on {HOST} is busy (wanted for variant {server.variant}): "
            f"stop what listens there or choose another base port"
        )
    how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
    raise FleetError(
        f"the {server.variant} server on port {server.port} stopped during startup ({how}): "
        f"see {server.log}"
    )


def _log_tail(log: Path, size: int = 4096) -> str:
    try:
        with log.open("rb") as handle:
            handle.seek(max(0, log.stat().st_size - size))
            return handle.read().decode(errors="replace")
    except OSError:
        return ""


def _write_providers(
    state_dir: Path,
    chosen: Sequence[Variant],
    servers: Sequence[_Server],
    proxies: dict[str, _Server] | None = None,
) -> Path:
    by_name = {server.variant: server for server in servers}
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    lines = [
        f"# Written by `parity local up` at {stamp}: the local provider fleet, real llama.cpp",
        "# servers (llama-cpp-python) serving SmolLM2-135M-Instruct on loopback, one per variant.",
        "# Prices are ILLUSTRATIVE ($ per 1M tokens), chosen for the demo: no real provider's.",
        "# Stop the fleet with `parity local down`.",
    ]
    for variant in chosen:
        server = by_name[variant.name]
        lines += [
            "",
            "[[provider]]",
            f"# fault: {variant.fault}",
            f"# serves: {server.model.name}, n_ctx {variant.n_ctx}, chat format "
            f"{variant.chat_format or 'the model template (GGUF)'}",
            f"name = {_toml_str(variant.name)}",
            f"base_url = {_toml_str(server.base_url)}",
            f"model = {_toml_str(MODEL_ALIAS)}",
            f"price_input = {variant.price_input!r}",
            f"price_output = {variant.price_output!r}",
            f"context_window = {variant.advertised_context}",
            f"max_concurrency = {MAX_CONCURRENCY}",
            f"reference = {'true' if variant.reference else 'false'}",
        ]
    reference = next((v for v in chosen if v.name == "reference"), None)
    for spec, proxy in (proxies or {}).items():
        assert reference is not None
        lines += [
            "",
            "[[provider]]",
            f"# fault: injected by a proxy in front of the reference: {spec}",
            f"name = {_toml_str(proxy.variant)}",
            f"base_url = {_toml_str(proxy.base_url)}",
            f"model = {_toml_str(MODEL_ALIAS)}",
            f"price_input = {reference.price_input!r}",
            f"price_output = {reference.price_output!r}",
            f"context_window = {reference.advertised_context}",
            f"max_concurrency = {MAX_CONCURRENCY}",
            "reference = false",
        ]
    path = state_dir / PROVIDERS_FILE
    _atomic_write(path, "\n".join(lines) + "\n")
    return path


def _toml_str(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid TOML basic string


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise FleetError(f"cannot write {path}: {exc.strerror}") from None


def _write_record(state_dir: Path, servers: Sequence[_Server]) -> None:
    record = {"version": 1, "servers": [server.to_json() for server in servers]}
    _atomic_write(state_dir / PID_FILE, json.dumps(record, indent=2) + "\n")


def _read_record(state_dir: Path) -> list[_Server]:
    path = state_dir / PID_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return [_Server.from_json(entry) for entry in data["servers"]]
    except FileNotFoundError:
        return []
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise FleetError(
            f"the fleet record {path} is unreadable ({exc}): stop its servers by hand, "
            f"then delete it"
        ) from None


def _cmdline(pid: int) -> list[str] | None:
    """The argv of process `pid`, or None if there is no such live (non-zombie) process."""
    _reap(pid)
    proc = Path(f"/proc/{pid}")
    if Path("/proc/self").exists():
        try:
            stat = (proc / "stat").read_text()
            if stat[stat.rindex(")") + 2 :].startswith(("Z", "X")):
                return None
            raw = (proc / "cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        return [part.decode(errors="replace") for part in raw.split(b"\0") if part]
    try:  # no /proc (macOS): ask ps
        out = subprocess.run(
            ["ps", "-o", "stat=,command=", "-p", str(pid)],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.split()
    except OSError:
        return None
    if not out or out[0].startswith("Z"):
        return None
    return out[1:]


def _is_our_server(server: _Server) -> bool:
    """Whether `server.pid` is still the llama.cpp server `fleet_up` started on its port.

    A child this process started and has not reaped yet is ours whatever its command line
    (its pid cannot be reused before it is reaped); any other pid must be a live
    `llama_cpp.server` process listening on the recorded port.
    """
    process = _CHILDREN.get(server.pid)
    if process is not None:
        if process.poll() is None:
            return True
        del _CHILDREN[server.pid]
        return False
    argv = _cmdline(server.pid)
    if not argv or (SERVER_MODULE not in argv and PROXY_MODULE not in argv):
        return False
    try:
        return argv[argv.index("--port") + 1] == str(server.port)
    except (ValueError, IndexError):
        return False


def _reap(pid: int) -> None:
    """Collect the exit status of a server this process started, so it leaves no zombie."""
    process = _CHILDREN.get(pid)
    if process is not None and process.poll() is not None:
        del _CHILDREN[pid]


def _signal(server: _Server, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if os.getpgid(server.pid) == server.pid:
            os.killpg(server.pid, sig)  # its own session: the server and anything it spawned
        else:
            os.kill(server.pid, sig)


def _stop(servers: Sequence[_Server]) -> list[str]:
    """Stop those of `servers` still running (TERM, then KILL); return their variant names."""
    running = [server for server in servers if _is_our_server(server)]
    for server in running:
        _signal(server, signal.SIGTERM)
    if not _wait_gone(running, TERM_GRACE_S):
        for server in running:
            if _is_our_server(server):
                _signal(server, signal.SIGKILL)
        if not _wait_gone(running, 5.0):
            alive = [f"{s.variant} (pid {s.pid})" for s in running if _is_our_server(s)]
            raise FleetError(f"could not stop {', '.join(alive)}: stop it by hand")
    for server in servers:  # servers that died on their own: collect them too
        _reap(server.pid)
    return [server.variant for server in running]


def _wait_gone(servers: Sequence[_Server], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while any(_is_our_server(server) for server in servers):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
