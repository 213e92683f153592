"""vLLM in the fleet without vLLM: the interpreter, the conversion cache key and folder, the
server's command line and environment (no vLLM server is started here; that is
tests/integration/test_vllm.py, marked `vllm`)."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from parity.core.errors import FleetError
from parity.local import vllm_engine
from parity.local.model import MODEL_ALIAS
from parity.local.variants import VARIANTS
from parity.local.vllm_engine import (
    CONVERT_VERSION,
    PYTHON_ENV,
    VLLM_MODULE,
    check_vllm,
    hf_folder_name,
    hf_model_dir,
    server_env,
    vllm_command,
    vllm_python,
)


def fake_python(tmp_path: Path, body: str) -> Path:
    """An executable that stands in for the vLLM interpreter: a shell script."""
    path = tmp_path / "fake-python"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_the_interpreter_is_the_running_one_by_default() -> None:
    assert vllm_python({}) == sys.executable
    assert vllm_python({PYTHON_ENV: "  "}) == sys.executable


def test_the_interpreter_comes_from_the_environment(tmp_path: Path) -> None:
    python = fake_python(tmp_path, "exit 0\n")
    assert vllm_python({PYTHON_ENV: str(python)}) == str(python)
    with pytest.raises(FleetError, match=f"{PYTHON_ENV}=.*not an executable"):
        vllm_python({PYTHON_ENV: str(tmp_path / "nope")})
    plain = tmp_path / "plain"
    plain.write_text("")
    with pytest.raises(FleetError, match="not an executable"):
        vllm_python({PYTHON_ENV: str(plain)})


def test_a_python_without_vllm_is_named_with_the_install_hint() -> None:
    if all(__import__("importlib").util.find_spec(m) for m in vllm_engine.REQUIRED):
        pytest.skip("this interpreter has vLLM")
    with pytest.raises(FleetError, match=r"vllm.*missing.*parity\[vllm\].*PARITY_VLLM_PYTHON"):
        check_vllm(sys.executable)


def test_a_python_that_cannot_run_is_a_fleet_error(tmp_path: Path) -> None:
    broken = fake_python(tmp_path, "echo oops >&2; exit 3\n")
    with pytest.raises(FleetError, match="oops"):
        check_vllm(str(broken))
    with pytest.raises(FleetError, match="cannot run"):
        check_vllm(str(tmp_path / "missing-python"))


def test_the_cache_key_is_the_content_and_the_conversion_version(tmp_path: Path) -> None:
    a = tmp_path / "a" / "Model.Q4_1.gguf"
    b = tmp_path / "b" / "Model.Q4_1.gguf"
    a.parent.mkdir()
    b.parent.mkdir()
    a.write_bytes(b"weights one")
    b.write_bytes(b"weights two")
    name = hf_folder_name(a)
    assert name.startswith(f"Model.Q4_1.hf.v{CONVERT_VERSION}.")
    assert len(name.rsplit(".", 1)[1]) == 12
    assert name != hf_folder_name(b)  # same file name, other content: another folder
    b.write_bytes(b"weights one")
    assert name == hf_folder_name(b)  # same content anywhere: the same folder


CONVERTER = """\
# argv: -c BOOT script source target
echo "$@" >> "{calls}"
target=$5
mkdir -p "$target" && echo '{{}}' > "$target/config.json"
"""


def test_the_folder_is_converted_once_then_reused(tmp_path: Path) -> None:
    source = tmp_path / "Model.gguf"
    source.write_bytes(b"gguf bytes")
    calls = tmp_path / "calls"
    python = fake_python(tmp_path, CONVERTER.format(calls=calls))
    cache = tmp_path / "models"
    log = tmp_path / "convert.log"
    folder = hf_model_dir(source, cache, str(python), log)
    assert folder == cache / hf_folder_name(source)
    assert (folder / "config.json").is_file()
    assert hf_model_dir(source, cache, str(python), log) == folder
    [call] = calls.read_text().splitlines()  # the second call converted nothing
    assert "hf_convert.py" in call and str(source) in call
    assert [p.name for p in cache.iterdir()] == [folder.name]  # no temporary left


def test_a_failed_conversion_names_its_log_and_leaves_nothing(tmp_path: Path) -> None:
    source = tmp_path / "Model.gguf"
    source.write_bytes(b"gguf bytes")
    python = fake_python(tmp_path, 'mkdir -p "$5"; echo "no transformers" ; exit 1\n')
    log = tmp_path / "convert.log"
    with pytest.raises(FleetError, match=r"converting Model\.gguf for vLLM failed.*convert\.log"):
        hf_model_dir(source, tmp_path / "models", str(python), log)
    assert "no transformers" in log.read_text()
    assert list((tmp_path / "models").iterdir()) == []


def test_the_converter_needs_its_two_arguments(tmp_path: Path) -> None:
    from parity.local import hf_convert

    assert hf_convert.main([]) == 2
    assert hf_convert.main([str(tmp_path / "none.gguf"), str(tmp_path / "out")]) == 1
    source = tmp_path / "m.gguf"
    source.write_bytes(b"")
    (tmp_path / "out").mkdir()
    assert hf_convert.main([str(source), str(tmp_path / "out")]) == 1


def test_the_server_command_binds_loopback_and_serves_the_alias(tmp_path: Path) -> None:
    variant = VARIANTS["reference-vllm"]
    command = vllm_command("/py", tmp_path, variant, "127.0.0.1", 8799)
    assert command[:3] == ["/py", "-m", VLLM_MODULE]

    def value(flag: str) -> str:
        return command[command.index(flag) + 1]

    assert value("--host") == "127.0.0.1"
    assert value("--port") == "8799"
    assert value("--model") == str(tmp_path)
    assert value("--served-model-name") == MODEL_ALIAS
    assert value("--max-model-len") == str(variant.n_ctx)
    assert value("--tool-call-parser") == "hermes"
    assert {"--enforce-eager", "--enable-auto-tool-choice"} <= set(command)


def test_the_server_environment() -> None:
    env = server_env({"PATH": "/bin", "VLLM_NO_USAGE_STATS": "0"})
    assert env["PATH"] == "/bin"
    assert env["VLLM_CPU_KVCACHE_SPACE"] == "1"
    assert env["VLLM_CPU_OMP_THREADS_BIND"] == "auto"
    # Nothing leaves the machine: no usage report, no hub.
    assert env["VLLM_NO_USAGE_STATS"] == "1" and env["DO_NOT_TRACK"] == "1"
    assert env["HF_HUB_OFFLINE"] == "1" and env["TRANSFORMERS_OFFLINE"] == "1"
    # The user's own settings win.
    mine = server_env({"VLLM_CPU_KVCACHE_SPACE": "4", "VLLM_CPU_OMP_THREADS_BIND": "0-1"}, 1, 2)
    assert mine["VLLM_CPU_KVCACHE_SPACE"] == "4" and mine["VLLM_CPU_OMP_THREADS_BIND"] == "0-1"


def test_several_servers_compute_on_different_cores() -> None:
    cores = os.cpu_count() or 1
    binds = [server_env({}, i, 2)["VLLM_CPU_OMP_THREADS_BIND"] for i in range(2)]
    assert binds == [str(0 % cores), str(1 % cores)]
