"""Start, watch and stop the local provider fleet: one server per variant.

Each llama.cpp variant runs as `python -m llama_cpp.server`, each vLLM variant as `python -m
vllm.entrypoints.openai.api_server` (`parity.local.vllm_engine`), bound to 127.0.0.1 only,
in its own session (so its whole process group can be stopped), logging to
`<state_dir>/<variant>.log`. The shared variants are plain proxies (`parity.local.proxy`,
no faults) in front of ONE llama.cpp server, recorded as `shared-engine`, that they share.
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
from parity.local.model import INSTALL_HINT, MODEL_ALIAS, shipped_model_path
from parity.local.variants import (
    DEFAULT_VARIANTS,
    VARIANTS,
    Variant,
    fleet_reference,
    weights_file,
)
from parity.local.vllm_engine import (
    VLLM_MAX_CONCURRENCY,
    VLLM_MODULE,
    VLLM_STARTUP_S,
    check_vllm,
    hf_model_dir,
    server_env,
    vllm_command,
    vllm_python,
)

HOST = "127.0.0.1"
SERVER_MODULE = "llama_cpp.server"
PROXY_MODULE = "parity.local.proxy"
FAULTY_PREFIX = "faulty-"
SHARED_ENGINE = "shared-engine"
"""The record name of the one llama.cpp server every shared variant's proxy forwards to."""
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
    faults_upstream: str | None = None,
) -> Path:
    """Start one server per variant and return the path of the providers file it wrote.

    `variants` defaults to `DEFAULT_VARIANTS` (the six llama.cpp ones), in that order; the
    i-th gets port `base_port + i` on 127.0.0.1. Generated weights (perturbed GGUFs, the
    Hugging Face folder vLLM serves) are cached in `cache_dir` (default
    `default_models_dir()`). Returns only when every server has answered `GET /v1/models`
    and a one-token chat completion, after writing `<state_dir>/providers.toml`. vLLM
    servers get at least `VLLM_STARTUP_S` to answer.

    Each spec in `faults` (e.g. "drop=reasoning_effort", see `parity.local.faults`) adds a
    provider `faulty-<spec>`: a fault-injecting proxy in front of the variant
    `faults_upstream` (default: the fleet's reference, see `fleet_reference`), on the ports
    after the variants'. When a shared variant is chosen, the one llama.cpp server the
    shared variants' proxies forward to takes the port after those.

    Raises `FleetError` (and leaves no server running) when an engine is not installed, a
    variant is unknown, a fault spec is given without its upstream variant, a port is
    busy, a fleet from `state_dir` is already running, or a server exits or does not
    answer within `startup_timeout_s` (the message names the variant and its log file).
    """
    chosen = _resolve_variants(variants)
    upstream_name = _check_faults(chosen, faults, faults_upstream)
    if threads < 1:
        raise FleetError(f"threads must be at least 1, got {threads}")
    engines = {variant.engine for variant in chosen}
    shared = "shared" in engines
    count = len(chosen) + len(faults) + shared
    if not 1024 <= base_port <= 65535 - count + 1:
        raise FleetError(f"base port {base_port} leaves no room for {count} servers in 1024-65535")
    if engines & {"llama.cpp", "shared"}:
        _check_engine()
    python = vllm_python() if "vllm" in engines else None
    if python is not None:
        check_vllm(python)
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
        names += [SHARED_ENGINE] if shared else []
        ports = {name: base_port + index for index, name in enumerate(names)}
        for name, port in ports.items():
            if not _port_free(port):
                raise FleetError(
                    f"port {port} on {HOST} is busy (wanted for variant "
                    f"{name}): stop what listens there or choose another base port"
                )
        models_dir = cache_dir if cache_dir is not None else default_models_dir()
        models = {
            variant.name: _model_for(variant, models_dir, python, state_dir) for variant in chosen
        }
        started: list[_Server] = []
        try:
            engine = None
            vllm_count = sum(variant.engine == "vllm" for variant in chosen)
            vllm_started: list[_Server] = []
            if shared:
                template = next(v for v in chosen if v.engine == "shared")
                model = models[template.name]
                command = _shared_engine_command(template, model, ports[SHARED_ENGINE], threads)
                engine = _spawn(SHARED_ENGINE, command, ports[SHARED_ENGINE], state_dir, model)
                started.append(engine)
                _write_record(state_dir, started)
            for variant in chosen:
                if variant.engine == "shared":
                    continue
                port = ports[variant.name]
                if variant.engine == "vllm":
                    assert python is not None
                    env = server_env(index=len(vllm_started), servers=vllm_count)
                    server = _start_vllm(
                        variant, models[variant.name], port, python, state_dir, env
                    )
                    vllm_started.append(server)
                else:
                    server = _start(variant, models[variant.name], port, threads, state_dir)
                started.append(server)
                _write_record(state_dir, started)
            _wait_ready(started, startup_timeout_s)
            proxies = []
            for variant in chosen:
                if variant.engine == "shared":
                    assert engine is not None
                    name = variant.name
                    proxies.append(_start_proxy(name, "", engine, ports[name], state_dir))
                    started.append(proxies[-1])
                    _write_record(state_dir, started)
            faulty = []
            for spec in faults:  # _check_faults made sure their upstream is among them
                upstream = next(server for server in started if server.variant == upstream_name)
                name = faulty_name(spec)
                faulty.append(_start_proxy(name, spec, upstream, ports[name], state_dir))
                started.append(faulty[-1])
                _write_record(state_dir, started)
            _wait_ready(proxies + faulty, startup_timeout_s, with_chat=False)
            return _write_providers(
                state_dir,
                chosen,
                started,
                dict(zip(faults, faulty, strict=True)),
                upstream_name,
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


def _check_faults(
    chosen: Sequence[Variant], faults: Sequence[str], upstream: str | None = None
) -> str | None:
    """The variant the fault proxies go in front of (None when there are no faults)."""
    if not faults:
        if upstream is not None:
            raise FleetError("--faults-upstream says where --faults go: give --faults too")
        return None
    from parity.local.faults import parse_faults

    for spec in faults:
        parse_faults(spec)  # raises ConfigError naming the bad part
    names = [v.name for v in chosen]
    if upstream is None:
        upstream = fleet_reference(names)
        if upstream is None:
            raise FleetError(
                "--faults puts proxies in front of the reference: include it "
                "(or name the variant they go in front of with --faults-upstream)"
            )
    elif upstream not in names:
        raise FleetError(
            f"--faults-upstream {upstream}: not among the variants started ({', '.join(names)})"
        )
    if len(set(faults)) < len(faults):
        raise FleetError("--faults: each spec once")
    return upstream


def _model_for(variant: Variant, models_dir: Path, python: str | None, state_dir: Path) -> Path:
    """What `variant` serves: a GGUF file, or for vLLM the Hugging Face folder."""
    if variant.engine != "vllm":
        return weights_file(variant, models_dir)
    assert python is not None and variant.weights == "shipped"
    log = state_dir / "convert-vllm.log"
    return hf_model_dir(shipped_model_path(), models_dir, python, log)


def _start_vllm(
    variant: Variant, model: Path, port: int, python: str, state_dir: Path, env: dict[str, str]
) -> _Server:
    command = vllm_command(python, model, variant, HOST, port)
    return _spawn(variant.name, command, port, state_dir, model, env=env)


def _shared_engine_command(template: Variant, model: Path, port: int, threads: int) -> list[str]:
    """The one llama.cpp server the shared variants share: the reference's settings.

    No extra cache is configured: llama-cpp-python already reuses the KV cache of the
    longest prompt prefix it shares with the request it served last, which is exactly
    what interleaving changes (see docs/fleet.md, the shared topology).
    """
    return _server_command(template, model, port, threads)


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
        return [VARIANTS[name] for name in DEFAULT_VARIANTS]
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


def _spawn(
    name: str,
    command: list[str],
    port: int,
    state_dir: Path,
    model: Path,
    env: dict[str, str] | None = None,
) -> _Server:
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
                env=env,
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
    start = time.monotonic()
    waiting = list(servers)
    with httpx.Client(timeout=httpx.Timeout(10.0, connect=1.0), trust_env=False) as client:
        while waiting:
            for server in list(waiting):
                _raise_if_exited(server)
                if _answers(client, server, with_chat):
                    waiting.remove(server)
            if not waiting:
                return
            now = time.monotonic()
            for server in waiting:
                limit = _startup_limit(server, timeout_s)
                if now - start > limit:
                    raise FleetError(
                        f"the {server.variant} server on port {server.port} did not answer "
                        f"within {limit:g}s: see {server.log}"
                    )
            time.sleep(0.2)


def _startup_limit(server: _Server, timeout_s: float) -> float:
    """How long `server` may take to answer: vLLM loads torch and profiles memory first."""
    return max(timeout_s, VLLM_STARTUP_S) if VLLM_MODULE in server.command else timeout_s


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
    faults_upstream: str | None = None,
) -> Path:
    by_name = {server.variant: server for server in servers}
    reference_name = fleet_reference(v.name for v in chosen)
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    lines = [
        f"# Written by `parity local up` at {stamp}: the local provider fleet, real llama.cpp",
        "# servers (llama-cpp-python) and, where named, vLLM servers serving",
        "# SmolLM2-135M-Instruct on loopback, one per variant (the shared variants: proxies in",
        "# front of one llama.cpp server they share).",
        "# Prices are ILLUSTRATIVE ($ per 1M tokens), chosen for the demo: no real provider's.",
        "# Stop the fleet with `parity local down`.",
    ]
    for variant in chosen:
        server = by_name[variant.name]
        lines += [
            "",
            "[[provider]]",
            f"# fault: {variant.fault}",
            f"# serves: {_serves(variant, server, by_name.get(SHARED_ENGINE))}",
            f"name = {_toml_str(variant.name)}",
            f"base_url = {_toml_str(server.base_url)}",
            f"model = {_toml_str(MODEL_ALIAS)}",
            f"price_input = {variant.price_input!r}",
            f"price_output = {variant.price_output!r}",
            f"context_window = {variant.advertised_context}",
            f"max_concurrency = {_max_concurrency(variant)}",
            f"reference = {'true' if variant.name == reference_name else 'false'}",
        ]
    upstream = next((v for v in chosen if v.name == faults_upstream), None)
    for spec, proxy in (proxies or {}).items():
        assert upstream is not None
        lines += [
            "",
            "[[provider]]",
            f"# fault: injected by a proxy in front of {upstream.name}: {spec}",
            f"name = {_toml_str(proxy.variant)}",
            f"base_url = {_toml_str(proxy.base_url)}",
            f"model = {_toml_str(MODEL_ALIAS)}",
            f"price_input = {upstream.price_input!r}",
            f"price_output = {upstream.price_output!r}",
            f"context_window = {upstream.advertised_context}",
            f"max_concurrency = {_max_concurrency(upstream)}",
            "reference = false",
        ]
    path = state_dir / PROVIDERS_FILE
    _atomic_write(path, "\n".join(lines) + "\n")
    return path


def _serves(variant: Variant, server: _Server, engine: _Server | None) -> str:
    """The providers file's `# serves:` comment for `variant`."""
    if variant.engine == "vllm":
        return f"{server.model.name} (Hugging Face folder) on vLLM, max-model-len {variant.n_ctx}"
    if variant.engine == "shared" and engine is not None:
        return (
            f"a proxy in front of the shared llama.cpp server on port {engine.port} "
            f"({engine.model.name}, n_ctx {variant.n_ctx})"
        )
    return (
        f"{server.model.name}, n_ctx {variant.n_ctx}, chat format "
        f"{variant.chat_format or 'the model template (GGUF)'}"
    )


def _max_concurrency(variant: Variant) -> int:
    """What the providers file lets parity send to `variant` at once."""
    return VLLM_MAX_CONCURRENCY if variant.engine == "vllm" else MAX_CONCURRENCY


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
    if not argv or not {SERVER_MODULE, PROXY_MODULE, VLLM_MODULE} & set(argv):
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
    _stop_leftovers(running)
    return [server.variant for server in running]


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stop_leftovers(stopped: Sequence[_Server]) -> None:
    """Stop what is left of the process groups of servers that were ours and are gone.

    vLLM's API server runs its engine and worker as child processes; they got the group's
    SIGTERM with it, and are given the same grace to exit before the group gets SIGKILL.
    (A pid is never reused while a process group of that id still has members, so the
    group of a server that was ours is still ours.)
    """
    left = [server for server in stopped if _group_alive(server.pid)]
    deadline = time.monotonic() + TERM_GRACE_S
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = [server for server in left if _group_alive(server.pid)]
    for server in left:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(server.pid, signal.SIGKILL)


def _wait_gone(servers: Sequence[_Server], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while any(_is_our_server(server) for server in servers):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
