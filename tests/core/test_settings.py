"""Settings: environment, URL safety, the key's secrecy."""

from __future__ import annotations

import pytest

from cerebras_paygo._settings import Settings, key_fingerprint, normalize_base_url
from cerebras_paygo.errors import ConfigurationError, MissingAPIKeyError


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://api.cerebras.ai", "https://api.cerebras.ai/v1"),
        ("https://api.cerebras.ai/v1/", "https://api.cerebras.ai/v1"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080/v1"),
        ("http://localhost:8080/v1", "http://localhost:8080/v1"),
        ("http://[::1]:9000", "http://[::1]:9000/v1"),
    ],
)
def test_base_url_normalized(url: str, expected: str) -> None:
    assert normalize_base_url(url) == expected


@pytest.mark.parametrize("url", ["http://api.cerebras.ai", "http://10.0.0.5:8080", "ftp://x", "not a url"])
def test_unsafe_or_invalid_urls_refused(url: str) -> None:
    with pytest.raises(ConfigurationError):
        Settings(base_url=url)


def test_env_and_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CEREBRAS_API_KEY", "csk-from-env")
    monkeypatch.setenv("CEREBRAS_BASE_URL", "http://127.0.0.1:1234")
    monkeypatch.setenv("CEREBRAS_TIER", "free")
    settings = Settings.from_env()
    assert settings.require_key().get_secret_value() == "csk-from-env"
    assert settings.base_url == "http://127.0.0.1:1234/v1"
    assert settings.tier == "free"
    assert Settings.from_env(api_key="csk-arg", tier="paygo").tier == "paygo"


def test_openai_key_is_never_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CEREBRAS_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai")
    with pytest.raises(MissingAPIKeyError, match="CEREBRAS_API_KEY"):
        Settings.from_env().require_key()


def test_key_hidden_everywhere() -> None:
    key = "csk-secret-value-1234567890"
    settings = Settings(api_key=key)
    for text in (repr(settings), str(settings), settings.model_dump_json(), str(settings.model_dump())):
        assert key not in text
    assert key_fingerprint(key) == settings.fingerprint
    assert len(settings.fingerprint) == 16


def test_bad_tier_and_timeout() -> None:
    with pytest.raises(ConfigurationError):
        Settings(tier="gold")
    with pytest.raises(ConfigurationError):
        Settings(timeout=-1)
    assert Settings(timeout=10).timeout.read == 10
