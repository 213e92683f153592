"""parity: does an inference provider really serve the open-weight model it sells?

The Python API (`parity.api`, loaded on first use so `import parity` stays cheap):

    import parity

    result = parity.run("providers.toml", repeats=2)        # speed, accuracy, core checks
    result = parity.conform("providers.toml", checks=["tools"])
    result = parity.evaluate("providers.toml", suite="gsm8k:50")
    result = parity.bench("providers.toml", preset="quick")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["Provider", "ProvidersFile", "Target", "__version__", "bench", "conform", "evaluate",
           "load", "run"]  # fmt: skip

if TYPE_CHECKING:
    from parity.api import bench, conform, evaluate, load, run
    from parity.core.config import Provider, ProvidersFile
    from parity.core.target import Target

_LAZY = {
    "bench": "parity.api",
    "conform": "parity.api",
    "evaluate": "parity.api",
    "load": "parity.api",
    "run": "parity.api",
    "Provider": "parity.core.config",
    "ProvidersFile": "parity.core.config",
    "Target": "parity.core.target",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'parity' has no attribute {name!r}")
