from pathlib import Path

import pytest

from parity.core.config import load_providers
from parity.core.errors import ConfigError

GOOD = """
[[provider]]
name = "ref"
base_url = "http://127.0.0.1:8000/v1/"
model = "m"
reference = true
price_input = 0.15
price_output = 0.60

[[provider]]
name = "other"
base_url = "https://api.example.com/v1"
model = "m"
api_key_env = "OTHER_KEY"
extra_body = { reasoning_effort = "high" }
headers = { "X-Team" = "a" }
max_concurrency = 8
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "providers.toml"
    path.write_text(text)
    return path


def test_good_file_loads(tmp_path: Path) -> None:
    providers = load_providers(write(tmp_path, GOOD))
    assert [p.name for p in providers.providers] == ["ref", "other"]
    ref = providers.reference()
    assert ref is not None and ref.name == "ref"
    assert ref.base_url == "http://127.0.0.1:8000/v1"
    assert ref.blended_price() == pytest.approx((3 * 0.15 + 0.60) / 4)
    other = providers.providers[1]
    assert other.extra_body == {"reasoning_effort": "high"}
    assert other.public_dict()["headers"] == {"X-Team": "<hidden>"}


def test_api_key_comes_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    providers = load_providers(write(tmp_path, GOOD))
    monkeypatch.setenv("OTHER_KEY", "sk-test")
    assert providers.providers[1].api_key() == "sk-test"
    monkeypatch.delenv("OTHER_KEY")
    assert providers.providers[1].api_key() is None


def test_cost_uses_list_prices(tmp_path: Path) -> None:
    ref = load_providers(write(tmp_path, GOOD)).providers[0]
    assert ref.cost_usd(1_000_000, 1_000_000) == pytest.approx(0.75)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "[[provider]]\nname='a'\nmodel='m'\n",
            "[[provider]] #1 (a): base_url: required key is missing",
        ),
        (
            "[[provider]]\nname='a'\nbase_url='ftp://x'\nmodel='m'\n",
            "[[provider]] #1 (a): base_url: must start with http:// or https://",
        ),
        (
            "[[provider]]\nname='a'\nbase_url='http://x'\nmodel='m'\nprice_input=-1\n",
            "[[provider]] #1 (a): price_input:",
        ),
        (
            "[[provider]]\nname='a'\nbase_url='http://x'\nmodel='m'\ncolour='red'\n",
            "[[provider]] #1 (a): colour: unknown key",
        ),
        (
            "[[provider]]\nname='a'\nbase_url='http://x'\nmodel='m'\nmax_concurrency='many'\n",
            "max_concurrency:",
        ),
        ("", "provider: required key is missing"),
        (
            "[[provider]]\nname='a'\nbase_url='http://x'\nmodel='m'\n[[provider]]\nname='a'\n"
            "base_url='http://y'\nmodel='m'\n",
            "provider names must be unique, repeated: a",
        ),
        (
            "[[provider]]\nname='a'\nbase_url='http://x'\nmodel='m'\nreference=true\n[[provider]]\n"
            "name='b'\nbase_url='http://y'\nmodel='m'\nreference=true\n",
            "at most one provider",
        ),
        ("[[provider]\nname='a'", "not valid TOML"),
        (
            "[[provider]]\nname='a'\nbase_url='http://x'\nmodel='m'\n"
            "headers={Authorization='Bearer x'}\n",
            "api_key_env",
        ),
    ],
)
def test_bad_file_gives_one_line_naming_file_and_key(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_providers(path)
    message = str(info.value)
    assert message.startswith(str(path) + ": ")
    assert expected in message
    assert "\n" not in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_providers(tmp_path / "nope.toml")
