"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws


@pytest.fixture(scope="module")
def moto_dynamodb() -> Iterator[Any]:
    """One moto DynamoDB for the module (a client is slow to build), reached with dummy
    credentials and no profile; tests create, and delete, their own tables."""
    with pytest.MonkeyPatch.context() as env:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": "eu-west-1",
        }.items():
            env.setenv(name, value)
        env.delenv("AWS_PROFILE", raising=False)
        with mock_aws():
            yield boto3.client("dynamodb", region_name="eu-west-1")
