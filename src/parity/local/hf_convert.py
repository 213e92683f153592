"""Convert a GGUF model file to a Hugging Face folder that vLLM can serve.

    python hf_convert.py SOURCE.gguf TARGET_DIR

Runs in the interpreter that holds vLLM (`PARITY_VLLM_PYTHON`, see
`parity.local.vllm_engine`), which need not have parity installed: this file imports
nothing from parity, only the standard library and, at run time, `transformers` (with
`torch`, `gguf` and `accelerate`). transformers reads the GGUF (weights dequantized to
float32, the tokenizer and the chat template from its metadata); the GGUF quantization
config it attaches is dropped, since the dequantized weights are plain tensors, and the
model and tokenizer are saved with `save_pretrained`. `TARGET_DIR` must not exist yet.
Exit code 0 on success, 1 (one line on stderr) on failure.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def convert(source: Path, target: Path) -> None:
    """Write the Hugging Face folder of the GGUF `source` to `target` (created)."""
    transformers: Any = importlib.import_module("transformers")
    folder, name = str(source.parent), source.name
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)
    # The weights are dequantized already; a GGUF quantizer left attached refuses to save.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    target.mkdir(parents=True)
    model.save_pretrained(str(target))
    tokenizer.save_pretrained(str(target))


def main(argv: Sequence[str] | None = None) -> int:
    """Convert `argv[0]` (a .gguf file) into the folder `argv[1]`."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        print("usage: hf_convert.py SOURCE.gguf TARGET_DIR", file=sys.stderr)
        return 2
    source, target = Path(args[0]), Path(args[1])
    if not source.is_file():
        print(f"error: no such model file: {source}", file=sys.stderr)
        return 1
    if target.exists():
        print(f"error: {target} exists already", file=sys.stderr)
        return 1
    try:
        convert(source, target)
    except ImportError as exc:
        needs = "the conversion needs transformers, torch, gguf and accelerate"
        print(f"error: {exc} ({needs})", file=sys.stderr)
        return 1
    print(f"converted {source} -> {target}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
