"""`parity init` writes a providers file that parity itself loads, and never overwrites one
silently."""

from __future__ import annotations

from pathlib import Path

from parity.cli.init import template
from parity.core.config import load_providers
from tests.cli.test_main import parity


def test_init_writes_a_file_parity_loads(tmp_path: Path) -> None:
    path = tmp_path / "providers.toml"
    result = parity("init", str(path))
    assert result.returncode == 0, result.stderr
    assert path.read_text() == template()
    providers = load_providers(path)
    assert [p.name for p in providers.providers] == ["reference", "provider-a"]
    assert providers.reference() is not None


def test_init_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    path = tmp_path / "providers.toml"
    path.write_text("mine\n")
    refused = parity("init", str(path))
    assert refused.returncode == 2
    message = f"{path} exists: give another path, or --force to overwrite it"
    assert refused.stderr.strip() == f"parity: error: {message}"
    assert path.read_text() == "mine\n"
    assert parity("init", str(path), "--force").returncode == 0
    assert path.read_text() == template()
