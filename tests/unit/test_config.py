"""Settings: invalid values stop the program with a message naming the variable."""

from __future__ import annotations

import pytest

from docsrag.config import load_settings
from docsrag.errors import ConfigError


def test_defaults_run_without_any_key_or_server() -> None:
    settings = load_settings(_env_file=None)
    assert settings.openrouter_api_key is None
    assert settings.llm_enabled is False
    assert settings.qdrant_url is None
    assert str(settings.qdrant_path).endswith("qdrant")


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("QDRANT_URL", "localhost:6333", "QDRANT_URL"),
        ("SITE_URL", "docs.example.org", "SITE_URL"),
        ("EMBEDDING_DIMENSIONS", "0", "EMBEDDING_DIMENSIONS"),
        ("EMBEDDING_DIMENSIONS", "many", "EMBEDDING_DIMENSIONS"),
        ("CORS_ORIGINS", "*", "CORS_ORIGINS"),
        ("CORS_ORIGINS", "https://ok.example,not-a-url", "CORS_ORIGINS"),
        ("LOG_LEVEL", "LOUD", "LOG_LEVEL"),
        ("COLLECTION_NAME", "bad name!", "COLLECTION_NAME"),
        ("VISITOR_TOKEN_KEYS", "too-short", "VISITOR_TOKEN_KEYS"),
    ],
)
def test_invalid_values_name_their_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, named: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_settings(_env_file=None)
    assert named in str(caught.value)


def test_inconsistent_chunk_sizes_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHUNK_TARGET_TOKENS", "900")
    monkeypatch.setenv("CHUNK_MAX_TOKENS", "600")
    with pytest.raises(ConfigError, match="CHUNK_TARGET_TOKENS"):
        load_settings(_env_file=None)


def test_lists_accept_commas_or_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FALLBACK_MODELS", "a/b:free, c/d:free")
    monkeypatch.setenv("CORS_ORIGINS", '["https://docs.example.org/", "http://localhost:3000"]')
    settings = load_settings(_env_file=None)
    assert settings.fallback_models == ["a/b:free", "c/d:free"]
    assert settings.cors_origins == ["https://docs.example.org", "http://localhost:3000"]


def test_blank_secrets_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENROUTER_API_KEY", "  ")
    assert load_settings(_env_file=None).llm_enabled is False


def test_secret_values_are_not_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-or-very-secret")
    settings = load_settings(_env_file=None)
    assert "sk-or-very-secret" not in repr(settings)
    assert "sk-or-very-secret" not in str(settings.model_dump())


def test_citation_links_are_valid_urls_for_odd_paths() -> None:
    settings = load_settings(_env_file=None, site_url="https://docs.example.org/base/")
    assert settings.site_url == "https://docs.example.org/base"
    assert (
        settings.public_url("/docs/api/plugins/@docusaurus/plugin-content-docs", "onBrokenLinks")
        == "https://docs.example.org/base/docs/api/plugins/@docusaurus/plugin-content-docs"
        "#onBrokenLinks"
    )
    assert settings.public_url("/docs/my page/ü", None) == (
        "https://docs.example.org/base/docs/my%20page/%C3%BC"
    )
    # A literal "%2B" in a file name must survive the browser's decoding.
    assert settings.public_url("/docs/a%2Bb", "x") == "https://docs.example.org/base/docs/a%252Bb#x"


def test_the_time_budget_defaults_fit_api_gateway_and_the_function(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FUNCTION_TIMEOUT_SECONDS", "30")
    settings = load_settings(_env_file=None)
    assert settings.request_time_budget_seconds == 25  # API Gateway gives up at 30 s
    assert settings.function_timeout_seconds == 30


def test_a_budget_that_cannot_fit_the_function_timeout_is_refused_naming_both(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REQUEST_TIME_BUDGET_SECONDS", "29")
    monkeypatch.setenv("FUNCTION_TIMEOUT_SECONDS", "30")
    with pytest.raises(ConfigError) as caught:
        load_settings(_env_file=None)
    message = str(caught.value)
    assert "REQUEST_TIME_BUDGET_SECONDS (29)" in message
    assert "FUNCTION_TIMEOUT_SECONDS (30)" in message
