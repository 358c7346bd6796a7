"""The sample docs built by a real Docusaurus (site/, npm) and ingested from the build HTML: the
pages, URLs and heading anchors must be exactly those of the Markdown sources they came from.

`make site` (CI runs it before the tests) builds `site/build`; without it these tests skip with
that hint (building the site takes minutes and the npm registry, so the tests never do it).

The site is versioned and translated: docs/ is its unreleased "current" version, built to
/docs/next/...; /docs/... is the 1.1 release, /docs/1.0/... the 1.0 release and /fr/... the
French locale. The comparison with docs/ is therefore made on /docs/next/....
"""

from __future__ import annotations

from pathlib import Path

import pytest

from docsrag.config import Settings
from docsrag.errors import UnsupportedDocument
from docsrag.index import DocsIndex, build_qdrant_client
from docsrag.ingest import Ingestor
from docsrag.models import ParsedPage
from docsrag.parsing import classify_key, iter_site_files, parse_document
from docsrag.sparse import BM25Encoder
from tests.conftest import REPO_ROOT, SAMPLE_DOCS

SITE = REPO_ROOT / "site"
BUILD = SITE / "build"
CURRENT = "/docs/next"  # where the current version (docs/) is served


@pytest.fixture(scope="module")
def sample_build() -> Path:
    if not (BUILD / "docs" / "next" / "index.html").is_file():
        pytest.skip("site/build (the versioned sample site) is absent: run `make site`")
    return BUILD


def _parse_all(root: Path, settings: Settings) -> dict[str, ParsedPage]:
    pages = {}
    for key, path in iter_site_files(root):
        if classify_key(key).format is None:
            continue
        try:
            page = parse_document(key, path.read_bytes(), settings=settings)
        except UnsupportedDocument:  # the JSX home page, generated category indexes
            continue
        pages[page.path.rstrip("/") or "/"] = page
    return pages


def _anchors(page: ParsedPage) -> list[str]:
    return [section.anchor for section in page.sections if section.anchor]


def test_build_pages_match_their_markdown_sources(sample_build: Path) -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    from_markdown = _parse_all(SAMPLE_DOCS, settings)
    from_html = {  # /docs/next/x -> /docs/x, the path of the Markdown source
        "/docs" + path.removeprefix(CURRENT): page
        for path, page in _parse_all(sample_build, settings).items()
        if path == CURRENT or path.startswith(CURRENT + "/")
    }

    assert set(from_html) == set(from_markdown)
    for path, source in from_markdown.items():
        built = from_html[path]
        assert built.title == source.title, path
        assert _anchors(built) == _anchors(source), path


def test_ingesting_the_build_indexes_every_doc_with_citable_anchors(
    sample_build: Path, tmp_path: Path
) -> None:
    settings = Settings(_env_file=None, qdrant_path=tmp_path / "q")  # type: ignore[call-arg]
    index = DocsIndex(
        client=build_qdrant_client(settings),
        collection="docs",
        dense_dimensions=settings.embedding_dimensions,
    )
    index.ensure_collection()
    ingestor = Ingestor(index=index, encoder=BM25Encoder(), embedder=None, settings=settings)

    summary = ingestor.sync_folder(sample_build)

    markdown_pages = sum(1 for p in SAMPLE_DOCS.rglob("*.md"))
    assert summary.failed == 0
    assert summary.added >= markdown_pages  # every doc, plus the generated category page if kept
    states = index.page_states()
    assert all(not key.startswith("assets/") for key in states)
    assert "404.html" not in states

    hits = index.search(
        sparse=BM25Encoder().encode_query("visibility timeout dead-letter queue"),
        dense=None,
        limit=5,
        prefetch_limit=20,
    ).hits
    assert hits
    assert all(hit.path.startswith(("/docs/", "/fr/docs/")) for hit in hits)
    assert all("Edit this page" not in hit.text and "On this page" not in hit.text for hit in hits)
