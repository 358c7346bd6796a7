"""Fixtures shared by every test tier."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.fixtures import fake_openai, fake_openai_server  # noqa: F401

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_CORPUS = REPO_ROOT.parent / "shared" / "corpora" / "docusaurus"
SAMPLE_DOCS = REPO_ROOT / "docs"


@pytest.fixture(scope="session")
def shared_corpus() -> Path:
    """The real Docusaurus 3.10 build in ../shared; skipped with a reason when it is absent."""
    if not (SHARED_CORPUS / "build" / "docs").is_dir():
        pytest.skip(
            f"shared Docusaurus corpus not found at {SHARED_CORPUS} "
            "(only CI and team machines have it)"
        )
    return SHARED_CORPUS


@pytest.fixture(scope="session")
def sample_docs() -> Path:
    """The project's own docs: the bundled sample site that the main job ingests."""
    return SAMPLE_DOCS


@pytest.fixture
def lambda_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """Mangum runs the app on the thread's event loop, as in a Lambda container."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield loop
    asyncio.set_event_loop(None)
    loop.close()
