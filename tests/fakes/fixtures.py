"""Pytest fixtures for the fake OpenAI-compatible server.

Import both into `tests/conftest.py`:

    from tests.fakes.fixtures import fake_openai, fake_openai_server  # noqa: F401

One server runs per session (`fake_openai_server`); `fake_openai` hands it to a test with a clean
request log and no pending failures, slowness or custom reply.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.openai_server import FakeOpenAI


@pytest.fixture(scope="session")
def fake_openai_server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def fake_openai(fake_openai_server: FakeOpenAI) -> Iterator[FakeOpenAI]:
    fake_openai_server.reset()
    yield fake_openai_server
    fake_openai_server.reset()
