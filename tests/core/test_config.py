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
    monkeypatch.setenv("OTHER_KEY", "sk-test-0123456789")
    assert providers.providers[1].api_key() == "sk-test-0123456789"
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


# ---- API keys are checked as the file loads --------------------------------------------------

KEY = "sk-live-3f9a27c1b84e4d0a9c55e1f2"


def read_dotenv(path: Path) -> dict[str, str]:
    """A naive .env reader, as many are: split lines on \\n, keep everything after `=`."""
    pairs = (line.partition("=") for line in path.read_bytes().decode().split("\n") if line)
    return {name: value for name, _, value in pairs}


def assert_one_line_without_the_key(message: str, key: str = KEY) -> None:
    assert "\n" not in message and "\r" not in message, repr(message)
    assert not any(key[i : i + 5] in message for i in range(len(key) - 4)), message


def test_key_from_a_crlf_env_file_is_refused_in_one_line_without_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_bytes(f"OTHER_KEY={KEY}\r\nUNRELATED=1\r\n".encode())
    value = read_dotenv(dotenv)["OTHER_KEY"]
    assert value == KEY + "\r"
    monkeypatch.setenv("OTHER_KEY", value)
    path = write(tmp_path, GOOD)
    with pytest.raises(ConfigError) as info:
        load_providers(path)
    message = str(info.value)
    assert message.startswith(f"{path}: [[provider]] #2 (other): api_key_env: ")
    assert "$OTHER_KEY" in message and "carriage return" in message
    assert_one_line_without_the_key(message)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (KEY + "\n", "whitespace"),
        ("  " + KEY, "whitespace"),
        (KEY[:8] + " " + KEY[8:], "whitespace"),
        (KEY[:8] + "\x1b" + KEY[8:], "control character"),
        (KEY[:8] + "é" + KEY[8:], "not printable ASCII"),
        ("e", "shorter than 8 characters"),
        ("null", "shorter than 8 characters"),
        ("none", "shorter than 8 characters"),
        ("password", "lacks a letter or a digit"),
    ],
)
def test_unusable_keys_are_refused_naming_provider_and_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str, words: str
) -> None:
    monkeypatch.setenv("OTHER_KEY", value)
    path = write(tmp_path, GOOD)
    with pytest.raises(ConfigError) as info:
        load_providers(path)
    message = str(info.value)
    assert message.startswith(
        f"{path}: [[provider]] #2 (other): api_key_env: the key in $OTHER_KEY"
    )
    assert words in message
    assert_one_line_without_the_key(message)


def test_good_key_loads_and_unset_or_empty_means_no_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, GOOD)
    monkeypatch.setenv("OTHER_KEY", KEY)
    assert load_providers(path).providers[1].api_key() == KEY
    monkeypatch.setenv("OTHER_KEY", "")
    assert load_providers(path).providers[1].api_key() is None
    monkeypatch.delenv("OTHER_KEY")
    assert load_providers(path).providers[1].api_key() is None


def test_key_changed_after_loading_is_checked_when_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    providers = load_providers(write(tmp_path, GOOD))
    monkeypatch.setenv("OTHER_KEY", KEY + "\r")
    with pytest.raises(ConfigError) as info:
        providers.providers[1].api_key()
    message = str(info.value)
    assert message.startswith("provider other: api_key_env: the key in $OTHER_KEY ends with")
    assert_one_line_without_the_key(message)


@pytest.mark.parametrize(
    ("headers", "words"),
    [
        ('{ "X-Token" = "abc-secret-value\\r" }', "line break or control character"),
        ('{ "X-Token" = "abc\\r\\nX-Evil: 1" }', "line break or control character"),
        ('{ "X-Token" = "abc-secret\\u0000" }', "line break or control character"),
        ('{ "X-Token" = "abc\\u2019-secret" }', "not Latin-1"),
        ('{ "X Token" = "abc" }', "not a valid HTTP header name"),
    ],
)
def test_header_values_that_cannot_be_sent_are_refused_without_the_value(
    tmp_path: Path, headers: str, words: str
) -> None:
    path = write(
        tmp_path, f"[[provider]]\nname='a'\nbase_url='http://x'\nmodel='m'\nheaders={headers}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_providers(path)
    message = str(info.value)
    assert message.startswith(f"{path}: [[provider]] #1 (a): headers: ")
    assert words in message
    assert "\n" not in message and "secret" not in message and "abc" not in message


def test_ordinary_header_values_load(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "[[provider]]\nname='a'\nbase_url='http://x'\nmodel='m'\n"
        "headers={ 'X-Team' = 'a b', 'X-Name' = 'Zoë',"
        " 'Referer' = 'https://x.test/?q=1&r=\"2\"' }\n",
    )
    assert load_providers(path).providers[0].headers["X-Team"] == "a b"
