"""The `.parity` recording: settings that must match, and the file's round trip."""

from __future__ import annotations

from pathlib import Path

import pytest

from parity.core.errors import ConfigError
from parity.equivalence.prompts import PROMPTS, prompt_digest, prompts
from parity.equivalence.recording import EquivSettings, Recording, Side, check_compatible

# ---- recordings refuse other settings ----------------------------------------------------------


def settings(**changes: object) -> EquivSettings:
    items = prompts(4)
    base = EquivSettings(model="m", prompts=4, prompt_digest=prompt_digest(items))
    return EquivSettings(**{**base.__dict__, **changes})  # type: ignore[arg-type]


def test_mismatched_settings_are_refused(tmp_path: Path) -> None:
    check_compatible(settings(), settings(), "ref.parity")
    with pytest.raises(ConfigError, match="max_tokens 12 vs 32") as info:
        check_compatible(settings(), settings(max_tokens=32), "ref.parity")
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match=r"model 'm' vs 'other'.*--any-model-name"):
        check_compatible(settings(), settings(model="other"), "ref.parity")
    check_compatible(settings(), settings(model="other"), "ref.parity", ignore_model=True)
    with pytest.raises(ConfigError, match="temperature"):
        check_compatible(settings(), settings(temperature=0.7), "ref.parity")


def test_recording_round_trip_and_refusals(tmp_path: Path) -> None:
    side = Side(samples={"p00": ["a", "b"]}, logprobs={"p00": [{"a": -0.1}]}, requests=3)
    rec = Recording(settings=settings(), provider={"name": "ref"}, prompts=prompts(4), side=side)
    path = tmp_path / "ref.parity"
    rec.save(path)
    back = Recording.load(path)
    assert back.settings == rec.settings
    assert back.side.samples == side.samples and back.side.logprobs == side.logprobs
    assert back.prompts == list(PROMPTS[:4])
    (tmp_path / "bad.parity").write_text('{"format": "something else"}')
    with pytest.raises(ConfigError, match="not a parity equivalence recording"):
        Recording.load(tmp_path / "bad.parity")
    with pytest.raises(ConfigError, match="no such file"):
        Recording.load(tmp_path / "missing.parity")
