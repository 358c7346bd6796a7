"""Ingestor.sync_folder over a Markdown folder: embedded Qdrant in tmp_path + the fake OpenAI
embeddings server on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from qdrant_client import QdrantClient

from docsrag.config import Settings
from docsrag.embeddings import build_embedder
from docsrag.index import DocsIndex, build_qdrant_client
from docsrag.ingest import Ingestor
from docsrag.sparse import BM25Encoder
from tests.fakes.openai_server import FakeOpenAI

INSTALL = """---
title: Installation
---

Docusaurus is a static site generator. Install it with npm before anything else.

## Requirements

Node.js version 18.0 or above is required. Check it with `node -v`.

## Scaffold a project

Run `npx create-docusaurus@latest my-website classic` to create a new site.
"""

DEPLOY = """---
title: Deployment
---

Build the site with `npm run build`; the static files go to the build folder.

## GitHub Pages

Set `organizationName` and `projectName` in docusaurus.config.js, then run
`npm run deploy` to publish the site to GitHub Pages.

## Netlify

Point Netlify at the repository; the build command is `npm run build`.
"""

I18N = """# Internationalization

Docusaurus translates a site into several locales.

## Configure locales

Add `i18n.locales` to docusaurus.config.js, for example `['en', 'fr']`.
"""


def make_settings(tmp_path: Path, fake: FakeOpenAI | None, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "qdrant_path": tmp_path / "qdrant",
        "embedding_dimensions": 64,
        "embedding_max_retries": 0,
        "embedding_timeout_seconds": 5,
        "max_document_bytes": 20_000,
        "openrouter_api_key": fake.api_key if fake else None,
        "openrouter_base_url": fake.base_url if fake else "https://openrouter.ai/api/v1",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def qdrant(tmp_path: Path) -> Iterator[QdrantClient]:
    client = build_qdrant_client(make_settings(tmp_path, None))
    yield client
    client.close()


def make_ingestor(qdrant: QdrantClient, settings: Settings) -> tuple[Ingestor, DocsIndex]:
    index = DocsIndex(
        client=qdrant, collection="docs", dense_dimensions=settings.embedding_dimensions
    )
    index.ensure_collection()
    ingestor = Ingestor(
        index=index, encoder=BM25Encoder(), embedder=build_embedder(settings), settings=settings
    )
    return ingestor, index


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    (root / "guides").mkdir(parents=True)
    (root / "installation.md").write_text(INSTALL)
    (root / "guides" / "deployment.md").write_text(DEPLOY)
    (root / "i18n.mdx").write_text(I18N)
    return root


def payloads(qdrant: QdrantClient) -> dict[str, dict[str, Any]]:
    records, _ = qdrant.scroll("docs", limit=1000, with_payload=True, with_vectors=True)
    return {str(r.id): {"payload": r.payload, "vector": r.vector} for r in records}


def test_first_sync_indexes_every_page(
    tmp_path: Path, site: Path, qdrant: QdrantClient, fake_openai: FakeOpenAI
) -> None:
    ingestor, index = make_ingestor(qdrant, make_settings(tmp_path, fake_openai))
    seen: list[str] = []

    summary = ingestor.sync_folder(site, progress=seen.append)

    assert (summary.added, summary.updated, summary.unchanged, summary.deleted) == (3, 0, 0, 0)
    assert (summary.skipped, summary.failed) == (0, 0)
    assert summary.chunks_written == index.count_chunks() >= 3
    assert summary.embedding_calls == fake_openai.embedding_calls >= 3
    assert sorted(seen) == ["guides/deployment.md", "i18n.mdx", "installation.md"]
    states = index.page_states()
    assert set(states) == {"guides/deployment.md", "i18n.mdx", "installation.md"}
    assert all(state.has_dense for state in states.values())


def test_a_second_sync_of_unchanged_pages_costs_nothing(
    tmp_path: Path, site: Path, qdrant: QdrantClient, fake_openai: FakeOpenAI
) -> None:
    ingestor, index = make_ingestor(qdrant, make_settings(tmp_path, fake_openai))
    ingestor.sync_folder(site)
    before = payloads(qdrant)
    written = index.points_written
    fake_openai.reset()

    summary = ingestor.sync_folder(site)

    assert (summary.added, summary.updated, summary.unchanged) == (0, 0, 3)
    assert summary.embedding_calls == 0 == fake_openai.embedding_calls
    assert summary.chunks_written == 0
    assert index.points_written == written  # no upsert at all
    assert payloads(qdrant) == before


def test_editing_one_page_rewrites_only_that_page(
    tmp_path: Path, site: Path, qdrant: QdrantClient, fake_openai: FakeOpenAI
) -> None:
    ingestor, _ = make_ingestor(qdrant, make_settings(tmp_path, fake_openai))
    ingestor.sync_folder(site)
    fake_openai.reset()

    (site / "i18n.mdx").write_text(I18N + "\n## Translate\n\nRun `npm run write-translations`.\n")
    summary = ingestor.sync_folder(site)

    assert (summary.added, summary.updated, summary.unchanged) == (0, 1, 2)
    embedded = [text for r in fake_openai.embedding_requests for text in r.json["input"]]
    assert embedded and all("Internationalization" in text for text in embedded)


def test_a_removed_file_leaves_the_index(
    tmp_path: Path, site: Path, qdrant: QdrantClient, fake_openai: FakeOpenAI
) -> None:
    ingestor, index = make_ingestor(qdrant, make_settings(tmp_path, fake_openai))
    ingestor.sync_folder(site)

    (site / "guides" / "deployment.md").unlink()
    summary = ingestor.sync_folder(site)

    assert summary.deleted == 1 and summary.unchanged == 2
    assert "guides/deployment.md" not in index.page_states()


def test_bad_files_are_skipped_with_a_reason_and_good_ones_indexed(
    tmp_path: Path, site: Path, qdrant: QdrantClient, fake_openai: FakeOpenAI
) -> None:
    ingestor, index = make_ingestor(qdrant, make_settings(tmp_path, fake_openai))
    (site / "binary.md").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00 not text")
    (site / "empty.md").write_bytes(b"")
    (site / "huge.md").write_text("# Huge\n\n" + "word " * 10_000)
    (site / "latin1.md").write_bytes("# Caf\xe9\n\nCr\xe8me br\xfbl\xe9e.".encode("latin-1"))
    (site / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n")

    summary = ingestor.sync_folder(site)

    assert summary.added == 3 and summary.failed == 0
    bad = {"binary.md", "empty.md", "huge.md", "latin1.md", "logo.png"}
    assert bad <= set(summary.skipped_reasons)
    assert summary.skipped == len(bad)
    assert "MAX_DOCUMENT_BYTES" in summary.skipped_reasons["huge.md"]
    assert all(summary.skipped_reasons[key] for key in bad)
    assert set(index.page_states()) == {"guides/deployment.md", "i18n.mdx", "installation.md"}


def test_a_broken_new_version_keeps_the_indexed_page(
    tmp_path: Path, site: Path, qdrant: QdrantClient, fake_openai: FakeOpenAI
) -> None:
    ingestor, index = make_ingestor(qdrant, make_settings(tmp_path, fake_openai))
    ingestor.sync_folder(site)
    before = index.page_state("installation.md")

    (site / "installation.md").write_bytes(b"\x00\x01\x02 garbage upload")
    summary = ingestor.sync_folder(site)

    assert summary.skipped == 1 and summary.deleted == 0
    assert "kept" in summary.skipped_reasons["installation.md"]
    assert index.page_state("installation.md") == before


def test_bm25_only_pages_get_dense_vectors_once_a_key_exists(
    tmp_path: Path, site: Path, qdrant: QdrantClient, fake_openai: FakeOpenAI
) -> None:
    # GIVEN a site indexed without an embeddings key
    keyless, index = make_ingestor(qdrant, make_settings(tmp_path, None))
    first = keyless.sync_folder(site)
    assert first.added == 3 and first.embedding_calls == 0
    assert not any(state.has_dense for state in index.page_states().values())
    # a keyless re-run changes nothing
    assert keyless.sync_folder(site).unchanged == 3

    # WHEN the same site is ingested with a key
    with_key, _ = make_ingestor(qdrant, make_settings(tmp_path, fake_openai))
    summary = with_key.sync_folder(site)

    # THEN every page gets its dense vectors, and the next run is free again
    assert summary.updated == 3 and summary.embedding_calls > 0
    assert all(state.has_dense for state in index.page_states().values())
    fake_openai.reset()
    assert with_key.sync_folder(site).unchanged == 3
    assert fake_openai.embedding_calls == 0


def test_embedding_outage_fails_pages_without_losing_indexed_ones(
    tmp_path: Path, site: Path, qdrant: QdrantClient, fake_openai: FakeOpenAI
) -> None:
    ingestor, index = make_ingestor(qdrant, make_settings(tmp_path, fake_openai))
    ingestor.sync_folder(site)
    before = index.page_states()
    for name in ("installation.md", "i18n.mdx"):
        path = site / name
        path.write_text(path.read_text() + "\nOne more paragraph about plugins.\n")
    fake_openai.reset()
    fake_openai.fail_next(500, count=10, endpoint="embeddings")

    summary = ingestor.sync_folder(site)

    # one page tried and failed; the other was not even tried; both keep their old chunks
    assert summary.failed == 2 and summary.unchanged == 1
    assert fake_openai.embedding_calls == 1
    assert all("kept" in reason for reason in summary.failures.values())
    assert index.page_states() == before


def test_an_empty_folder_does_not_wipe_the_index(
    tmp_path: Path, site: Path, qdrant: QdrantClient, fake_openai: FakeOpenAI
) -> None:
    ingestor, index = make_ingestor(qdrant, make_settings(tmp_path, fake_openai))
    ingestor.sync_folder(site)
    empty = tmp_path / "empty"
    empty.mkdir()

    summary = ingestor.sync_folder(empty)

    assert summary.deleted == 0
    assert len(index.page_states()) == 3


def test_a_draft_page_leaves_the_index(
    tmp_path: Path, site: Path, qdrant: QdrantClient, fake_openai: FakeOpenAI
) -> None:
    ingestor, index = make_ingestor(qdrant, make_settings(tmp_path, fake_openai))
    ingestor.sync_folder(site)

    (site / "i18n.mdx").write_text("---\ndraft: true\n---\n" + I18N)
    summary = ingestor.sync_folder(site)

    assert summary.deleted == 1
    assert "i18n.mdx" not in index.page_states()


def test_ingest_document_stores_the_version_and_skips_unchanged_content(
    tmp_path: Path, qdrant: QdrantClient, fake_openai: FakeOpenAI
) -> None:
    ingestor, index = make_ingestor(qdrant, make_settings(tmp_path, fake_openai))

    first = ingestor.ingest_document("installation.md", INSTALL.encode(), version="0001")
    again = ingestor.ingest_document("installation.md", INSTALL.encode(), version="0002")

    assert first.status == "added" and first.embedding_calls >= 1
    assert again.status == "unchanged" and again.embedding_calls == 0
    state = index.page_state("installation.md")
    assert state is not None and state.version == "0002"
    assert ingestor.indexed_versions() == {"installation.md": "0002"}


def test_merged_sections_are_stored_and_a_new_heading_id_rewrites_the_page(
    tmp_path: Path, qdrant: QdrantClient, fake_openai: FakeOpenAI
) -> None:
    # GIVEN a page whose intro and first two sections are each too small to stand alone
    ingestor, _ = make_ingestor(qdrant, make_settings(tmp_path, fake_openai))
    ingestor.ingest_document("installation.md", INSTALL.encode())

    # THEN one chunk holds them all, cites the top of the page and lists every section
    (point,) = [entry["payload"] for entry in payloads(qdrant).values()]
    assert point["anchor"] is None
    assert point["anchors"] == [None, "requirements", "scaffold-a-project"]

    # WHEN only the id of a merged heading changes (the text stays the same)
    renamed = INSTALL.replace("## Requirements", "## Requirements {#prerequisites}")
    outcome = ingestor.ingest_document("installation.md", renamed.encode())

    # THEN the page is written again, so search knows the section by its new id
    assert outcome.status == "updated"
    (point,) = [entry["payload"] for entry in payloads(qdrant).values()]
    assert point["anchors"] == [None, "prerequisites", "scaffold-a-project"]
