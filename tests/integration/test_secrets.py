"""Secrets on Lambda: `<NAME>_SECRET` references resolved from Secrets Manager and SSM Parameter
Store (moto), through Powertools Parameters, into `Settings`; failures name the variable and
never carry a value, and no value reaches the logs."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from docsrag.aws.runtime import lambda_settings
from docsrag.aws.secrets import SECRET_SETTINGS, clear_secret_cache, secret_overrides
from docsrag.config import Settings
from docsrag.errors import ConfigError

REGION = "eu-central-1"
OPENROUTER_KEY = "sk-or-v1-0123456789abcdef-openrouter-value"
QDRANT_KEY = "qdrant-api-key-value-5f1e"
TOKEN_KEYS = "a" * 32 + "-first-signing-key," + "b" * 32 + "-older-verifying-key"


@pytest.fixture
def aws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """Secrets Manager and SSM on moto holding the three secrets; a clean environment."""
    monkeypatch.chdir(tmp_path)  # no stray .env file
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    for name in SECRET_SETTINGS:
        monkeypatch.delenv(f"{name}_SECRET", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    clear_secret_cache()
    with mock_aws():
        secrets = boto3.client("secretsmanager", region_name=REGION)
        ssm = boto3.client("ssm", region_name=REGION)
        openrouter_arn = secrets.create_secret(
            Name="docsrag/openrouter-api-key", SecretString=OPENROUTER_KEY + "\n"
        )["ARN"]
        secrets.create_secret(Name="docsrag/visitor-token-keys", SecretString=TOKEN_KEYS)
        secrets.create_secret(Name="docsrag/empty", SecretString="  ")
        ssm.put_parameter(Name="/docsrag/qdrant-api-key", Value=QDRANT_KEY, Type="SecureString")
        try:
            yield {"secrets": secrets, "ssm": ssm, "openrouter_arn": openrouter_arn}
        finally:
            clear_secret_cache()


def test_references_resolve_from_secrets_manager_and_ssm_into_settings(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENROUTER_API_KEY_SECRET", aws["openrouter_arn"])  # by ARN
    monkeypatch.setenv("QDRANT_API_KEY_SECRET", "/docsrag/qdrant-api-key")  # SSM name
    monkeypatch.setenv("VISITOR_TOKEN_KEYS_SECRET", "docsrag/visitor-token-keys")  # by name

    settings = lambda_settings()

    assert settings.openrouter_api_key is not None
    assert settings.openrouter_api_key.get_secret_value() == OPENROUTER_KEY  # trimmed
    assert settings.qdrant_api_key is not None
    assert settings.qdrant_api_key.get_secret_value() == QDRANT_KEY
    assert [key.get_secret_value() for key in settings.visitor_token_keys] == TOKEN_KEYS.split(",")
    assert settings.llm_enabled
    assert OPENROUTER_KEY not in repr(settings)


def test_ssm_parameters_are_found_by_arn_too(aws: dict[str, Any]) -> None:
    arn = f"arn:aws:ssm:{REGION}:123456789012:parameter/docsrag/qdrant-api-key"
    assert secret_overrides({"QDRANT_API_KEY_SECRET": arn}) == {"qdrant_api_key": QDRANT_KEY}


def test_the_secret_wins_over_a_plain_variable(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-stale-plain-value")
    monkeypatch.setenv("OPENROUTER_API_KEY_SECRET", "docsrag/openrouter-api-key")

    settings = lambda_settings()

    assert settings.openrouter_api_key is not None
    assert settings.openrouter_api_key.get_secret_value() == OPENROUTER_KEY


def test_no_reference_leaves_the_plain_variable_alone(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-local-development-key")

    settings = lambda_settings()

    assert settings.openrouter_api_key is not None
    assert settings.openrouter_api_key.get_secret_value() == "sk-local-development-key"
    assert settings.qdrant_api_key is None


def test_a_missing_secret_names_the_variable_and_leaks_no_value(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENROUTER_API_KEY_SECRET", aws["openrouter_arn"])
    monkeypatch.setenv("QDRANT_API_KEY_SECRET", "/docsrag/qdrant-api-key")
    monkeypatch.setenv("VISITOR_TOKEN_KEYS_SECRET", "docsrag/no-such-secret")

    with pytest.raises(ConfigError) as caught:
        lambda_settings()

    message = str(caught.value)
    assert message.startswith("VISITOR_TOKEN_KEYS_SECRET:")
    assert "docsrag/no-such-secret" in message
    assert "ResourceNotFoundException" in message
    for value in (OPENROUTER_KEY, QDRANT_KEY, *TOKEN_KEYS.split(",")):
        assert value not in message


def test_a_missing_ssm_parameter_names_the_store(aws: dict[str, Any]) -> None:
    with pytest.raises(
        ConfigError, match=r"^QDRANT_API_KEY_SECRET: .*SSM parameter .*ParameterNotFound"
    ):
        secret_overrides({"QDRANT_API_KEY_SECRET": "/docsrag/missing"})


def test_an_empty_secret_is_refused(aws: dict[str, Any]) -> None:
    with pytest.raises(
        ConfigError, match=r"^OPENROUTER_API_KEY_SECRET: .*'docsrag/empty' is empty"
    ):
        secret_overrides({"OPENROUTER_API_KEY_SECRET": "docsrag/empty"})


def test_an_invalid_secret_value_fails_settings_without_showing_it(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    aws["secrets"].create_secret(Name="docsrag/short-key", SecretString="too-short-to-sign")
    monkeypatch.setenv("VISITOR_TOKEN_KEYS_SECRET", "docsrag/short-key")

    with pytest.raises(ConfigError, match="VISITOR_TOKEN_KEYS") as caught:
        lambda_settings()

    assert "too-short-to-sign" not in str(caught.value)


def test_values_are_cached_and_read_again_after_the_cache_is_cleared(
    aws: dict[str, Any],
) -> None:
    environ = {"OPENROUTER_API_KEY_SECRET": "docsrag/openrouter-api-key"}
    assert secret_overrides(environ) == {"openrouter_api_key": OPENROUTER_KEY}
    aws["secrets"].put_secret_value(
        SecretId="docsrag/openrouter-api-key", SecretString="sk-or-v1-rotated"
    )
    # Within the cache's max age the old value is served (no call per invocation) ...
    assert secret_overrides(environ) == {"openrouter_api_key": OPENROUTER_KEY}
    # ... and after a SnapStart restore (which clears the cache) the new one is read.
    clear_secret_cache()
    assert secret_overrides(environ) == {"openrouter_api_key": "sk-or-v1-rotated"}


def test_no_secret_value_is_ever_logged(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="docsrag")
    caplog.set_level(logging.DEBUG, logger="aws_lambda_powertools")
    monkeypatch.setenv("OPENROUTER_API_KEY_SECRET", aws["openrouter_arn"])
    monkeypatch.setenv("QDRANT_API_KEY_SECRET", "/docsrag/qdrant-api-key")
    monkeypatch.setenv("VISITOR_TOKEN_KEYS_SECRET", "docsrag/visitor-token-keys")

    lambda_settings()
    monkeypatch.setenv("VISITOR_TOKEN_KEYS_SECRET", "docsrag/no-such-secret")
    with pytest.raises(ConfigError):
        lambda_settings()

    resolved = [r for r in caplog.records if r.getMessage() == "secret resolved"]
    assert {r.setting for r in resolved} >= {"OPENROUTER_API_KEY", "QDRANT_API_KEY"}  # type: ignore[attr-defined]
    logged = caplog.text + " ".join(str(vars(record)) for record in caplog.records)
    for value in (OPENROUTER_KEY, QDRANT_KEY, *TOKEN_KEYS.split(",")):
        assert value not in logged


def test_the_mcp_bearer_token_comes_from_its_secret(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="docsrag")
    caplog.set_level(logging.DEBUG, logger="aws_lambda_powertools")
    token = "mcp-bearer-token-from-secrets-manager-0123"
    arn = aws["secrets"].create_secret(Name="docsrag/mcp-token", SecretString=token)["ARN"]
    monkeypatch.setenv("MCP_BEARER_TOKEN_SECRET", arn)

    settings = lambda_settings()

    assert settings.mcp_bearer_token is not None
    assert settings.mcp_bearer_token.get_secret_value() == token
    assert token not in repr(settings)
    assert token not in caplog.text
