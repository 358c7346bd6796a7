"""Ingestor hardening: chunks per page are capped (MAX_CHUNKS_PER_PAGE) and the summary says
which pages were cut; a page of only headings stays indexed. Embedded Qdrant + fake OpenAI."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from qdrant_client import QdrantClient

from docsrag.config import Settings
from docsrag.index import build_qdrant_client
from tests.fakes.openai_server import FakeOpenAI
from tests.integration.test_ingest import make_ingestor, make_settings


def capped(tmp_path: Path, fake: FakeOpenAI | None, cap: int) -> Settings:
    return make_settings(tmp_path, fake, max_document_bytes=2_000_000, max_chunks_per_page=cap)


@pytest.fixture
def qdrant(tmp_path: Path) -> Iterator[QdrantClient]:
    client = build_qdrant_client(make_settings(tmp_path, None))
    yield client
    client.close()


def long_page(sections: int) -> str:
    parts = ["# Huge page\n"]
    for number in range(sections):
        parts.append(f"## Part {number}\n\n" + f"Paragraph {number} about okapis. " * 120 + "\n")
    return "\n".join(parts)


def test_a_page_over_the_chunk_cap_is_cut_and_reported(
    tmp_path: Path, qdrant: QdrantClient, fake_openai: FakeOpenAI
) -> None:
    # GIVEN a folder with one huge page and one normal page, and a cap of 5 chunks per page
    root = tmp_path / "docs"
    root.mkdir()
    (root / "huge.md").write_text(long_page(40))
    (root / "small.md").write_text("# Small\n\nA short page about quokkas.\n")
    settings = capped(tmp_path, fake_openai, 5)
    ingestor, index = make_ingestor(qdrant, settings)

    # WHEN the folder is synced
    summary = ingestor.sync_folder(root)

    # THEN the huge page holds only the first 5 chunks and the summary names it
    assert summary.added == 2
    assert list(summary.truncated) == ["huge.md"]
    assert "MAX_CHUNKS_PER_PAGE (5)" in summary.truncated["huge.md"]
    states = index.page_states()
    assert states["huge.md"].chunk_count == 5
    assert summary.chunks_written == 5 + states["small.md"].chunk_count

    # WHEN it is synced again, unchanged: still reported, nothing written
    again = ingestor.sync_folder(root)
    assert again.unchanged == 2 and again.chunks_written == 0
    assert list(again.truncated) == ["huge.md"]


def test_the_cap_defaults_to_500_chunks(tmp_path: Path, qdrant: QdrantClient) -> None:
    # GIVEN settings without MAX_CHUNKS_PER_PAGE and a page of more than 500 chunks
    root = tmp_path / "docs"
    root.mkdir()
    (root / "huge.md").write_text(long_page(520))
    ingestor, index = make_ingestor(
        qdrant, make_settings(tmp_path, None, max_document_bytes=5_000_000)
    )

    summary = ingestor.sync_folder(root)

    default_cap = Settings(_env_file=None).max_chunks_per_page  # type: ignore[call-arg]
    assert index.page_states()["huge.md"].chunk_count == default_cap == 500
    assert "huge.md" in summary.truncated


def test_a_page_of_only_headings_is_indexed_not_deleted(
    tmp_path: Path, qdrant: QdrantClient
) -> None:
    # GIVEN an indexed page
    root = tmp_path / "docs"
    root.mkdir()
    page = root / "outline.md"
    page.write_text("# Outline\n\nSome text.\n\n## Alpha\n\nMore text.\n")
    ingestor, index = make_ingestor(qdrant, make_settings(tmp_path, None))
    ingestor.sync_folder(root)

    # WHEN its new version holds only headings
    page.write_text("# Outline\n\n## Alpha okapiwren\n\n## Beta\n")
    summary = ingestor.sync_folder(root)

    # THEN it is updated, not deleted
    assert (summary.updated, summary.deleted) == (1, 0)
    assert index.page_states()["outline.md"].chunk_count >= 1
