"""Secrets for the Lambda functions, read through Powertools Parameters (cached).

A secret setting is given on Lambda by naming where it lives, never by its value: the variable
`<NAME>_SECRET` holds a Secrets Manager secret ARN (or name), or an SSM Parameter Store name
(`/docsrag/openrouter-key`) or ARN (`arn:aws:ssm:...`), read with decryption. The plain variable
(`OPENROUTER_API_KEY`) still works, for local runs; when both are set the secret wins.
Values are never logged: errors name the variable, the reference and the AWS error code, never a
value.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping

from docsrag.errors import ConfigError

logger = logging.getLogger(__name__)

# Setting (environment variable) -> how long a fetched value is cached, in seconds.
SECRET_SETTINGS: dict[str, int] = {
    "OPENROUTER_API_KEY": 300,
    "QDRANT_API_KEY": 300,
    "VISITOR_TOKEN_KEYS": 300,
    "MCP_BEARER_TOKEN": 300,
}

_SSM_ARN = re.compile(r"^arn:aws[a-z-]*:ssm:")


def is_ssm_reference(reference: str) -> bool:
    """SSM parameter names start with `/`; anything else that is not an SSM ARN is a Secrets
    Manager secret name or ARN."""
    return reference.startswith("/") or bool(_SSM_ARN.match(reference))


def fetch_secret(reference: str, *, max_age: int) -> str:
    """The value behind a Secrets Manager or SSM reference (Powertools caches it)."""
    from aws_lambda_powertools.utilities import parameters

    if is_ssm_reference(reference):
        value = parameters.get_parameter(reference, decrypt=True, max_age=max_age)
    else:
        value = parameters.get_secret(reference, max_age=max_age)
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    if not isinstance(value, str):
        raise TypeError(f"unexpected secret type {type(value).__name__}")
    return value.strip()


def clear_secret_cache() -> None:
    """Forget fetched values, so the next read asks AWS again (after a SnapStart restore)."""
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()  # type: ignore[no-untyped-call]


def _aws_error_code(exc: BaseException) -> str:
    """The AWS error code behind a failed read (`ResourceNotFoundException`, `AccessDenied...`),
    found on the exception or the one it wraps; else the exception's type name."""
    seen: BaseException | None = exc
    while seen is not None:
        response = getattr(seen, "response", None)
        if isinstance(response, dict):
            code = response.get("Error", {}).get("Code")
            if code:
                return str(code)
        seen = seen.__cause__ or seen.__context__
    return type(exc).__name__


def secret_overrides(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Settings values resolved from `<NAME>_SECRET` references, keyed by setting field name."""
    environ = os.environ if environ is None else environ
    resolved: dict[str, str] = {}
    for name, max_age in SECRET_SETTINGS.items():
        reference = environ.get(f"{name}_SECRET", "").strip()
        if not reference:
            continue
        store = "SSM parameter" if is_ssm_reference(reference) else "Secrets Manager secret"
        try:
            value = fetch_secret(reference, max_age=max_age)
        except Exception as exc:
            raise ConfigError(
                f"{name}_SECRET: could not read the {store} {reference!r} "
                f"({_aws_error_code(exc)}); check that it exists and that the function's role "
                "may read it"
            ) from exc
        if not value:
            raise ConfigError(f"{name}_SECRET: the {store} {reference!r} is empty")
        resolved[name.lower()] = value
        logger.info("secret resolved", extra={"setting": name, "reference": reference})
    return resolved
