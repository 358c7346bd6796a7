"""Retrieval on a versioned, translated site with a blog, over a real embedded Qdrant.

The index is written page by page the way the ingest writes it (chunking, BM25, fake dense
vectors over loopback), from `ParsedPage`s that carry their `PageMeta`, so these tests do not
depend on either parser. The parsers' own metadata tests live beside them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from qdrant_client import QdrantClient, models

from docsrag.chunking import chunk_page
from docsrag.config import Settings
from docsrag.embeddings import build_embedder
from docsrag.index import DocsIndex, build_qdrant_client, scope_filter
from docsrag.models import Block, PageKind, PageMeta, ParsedPage, Section
from docsrag.retrieval import Retriever
from docsrag.scope import BlogPolicy, ScopeRequest, SearchScope
from docsrag.sparse import BM25Encoder
from tests.fakes.openai_server import FakeOpenAI

SITE = "https://docs.example.org"
VERSIONS = {"1.1": "/docs", "current": "/docs/next", "1.0": "/docs/1.0"}


def config_page(version: str) -> list[tuple[str, str, str]]:
    folder = "QDRANT_LOCAL_PATH" if version == "1.0" else "QDRANT_PATH"
    return [
        ("", "Intro", "Every setting is an environment variable read at start."),
        (
            "embedded-store",
            "Embedded store",
            f"Set {folder} to the folder where the embedded Qdrant store keeps its data.",
        ),
        ("cors", "CORS", "CORS_ORIGINS is the allow-list of site origins that may call the API."),
    ]


def install_page(version: str) -> list[tuple[str, str, str]]:
    return [
        ("", "Intro", "Install docsrag with pip in a virtual environment."),
        ("install", "Install", f"Run pip install docsrag=={version} and then docsrag ingest."),
        ("deploy", "Deploy to AWS", "Run sam build and sam deploy to deploy the stack to AWS."),
    ]


FRENCH_INSTALL = [
    ("", "Intro", "Installez docsrag avec pip dans un environnement virtuel."),
    ("install", "Installer", "Lancez pip install docsrag puis docsrag ingest."),
    ("deploy", "Déployer sur AWS", "Lancez sam build puis sam deploy pour déployer sur AWS."),
]
BLOG = [
    ("", "docsrag 1.1 released", "The 1.1 release renames QDRANT_LOCAL_PATH to QDRANT_PATH."),
    ("telemetry", "Telemetry", "Release 1.1 sends anonymous usage pings to a telemetry server."),
]


def page(
    key: str,
    path: str,
    title: str,
    sections: list[tuple[str, str, str]],
    meta: PageMeta,
    kind: PageKind = "docs",
) -> ParsedPage:
    return ParsedPage(
        source_key=key,
        path=path,
        title=title,
        description=None,
        kind=kind,
        sections=tuple(
            Section(
                heading=heading,
                anchor=anchor or None,
                level=2 if anchor else 1,
                heading_path=(heading,) if anchor else (),
                blocks=(Block(kind="text", text=text),),
            )
            for anchor, heading, text in sections
        ),
        meta=meta,
    )


def site_pages() -> list[ParsedPage]:
    pages = []
    for version, base in VERSIONS.items():
        default = version == "1.1"
        for doc_id, title, sections in (
            ("configuration", "Configuration", config_page(version)),
            ("installation", "Installation", install_page(version)),
        ):
            for locale, prefix in (("en", ""), ("fr", "/fr")):
                if locale == "fr" and (doc_id != "installation" or version == "1.0"):
                    continue
                meta = PageMeta(
                    version=version, default_version=default, locale=locale, doc_id=doc_id
                )
                body = FRENCH_INSTALL if locale == "fr" else sections
                key = f"{prefix.strip('/')}/{base.strip('/')}/{doc_id}/index.html".lstrip("/")
                pages.append(page(key, f"{prefix}{base}/{doc_id}", title, body, meta))
    blog_meta = PageMeta(kind="blog", version=None, doc_id="blog/docsrag-1-1")
    pages.append(
        page("blog/docsrag-1-1/index.html", "/blog/docsrag-1-1", "Blog", BLOG, blog_meta, "blog")
    )
    return pages


@dataclass
class Site:
    client: QdrantClient
    index: DocsIndex
    settings: Settings
    fake: FakeOpenAI


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory, fake_openai_server: FakeOpenAI
) -> Iterator[Site]:
    store = tmp_path_factory.mktemp("versioned") / "qdrant"
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        qdrant_path=store,
        site_url=SITE,
        openrouter_api_key=fake_openai_server.api_key,
        openrouter_base_url=fake_openai_server.base_url,
        embedding_dimensions=256,
        embedding_max_retries=0,
        chunk_min_tokens=0,
    )
    client = build_qdrant_client(settings)
    index = DocsIndex(client=client, collection="docs", dense_dimensions=256)
    index.ensure_collection()
    encoder = BM25Encoder()
    embedder = build_embedder(settings)
    assert embedder is not None
    for parsed in site_pages():
        chunks = chunk_page(
            parsed, target_tokens=300, max_tokens=500, overlap_tokens=0, min_tokens=0
        )
        index.write_page(
            chunks=chunks,
            content_hash="h",
            sparse=[encoder.encode_document(chunk.embed_text) for chunk in chunks],
            dense=embedder.embed_documents([chunk.embed_text for chunk in chunks]),
            new_page=True,
        )
    yield Site(client=client, index=index, settings=settings, fake=fake_openai_server)
    client.close()


def retriever(site: Site, *, hybrid: bool, **overrides: Any) -> Retriever:
    settings = site.settings.model_copy(update=overrides)
    return Retriever(
        index=site.index,
        encoder=BM25Encoder(),
        embedder=build_embedder(settings) if hybrid else None,
        settings=settings,
    )


MODES = [pytest.param(False, id="bm25"), pytest.param(True, id="hybrid")]


def test_the_catalog_lists_versions_locales_and_the_blog(site: Site) -> None:
    catalog = site.index.site_catalog(default_locale="en")
    assert catalog.versions == ("1.1", "current", "1.0")
    assert catalog.default_version == "1.1"
    assert catalog.locales == ("en", "fr")
    assert catalog.has_blog and not catalog.legacy


@pytest.mark.parametrize("hybrid", MODES)
async def test_a_plain_question_is_answered_from_the_default_version_once(
    site: Site, hybrid: bool
) -> None:
    result = await retriever(site, hybrid=hybrid).retrieve("How do I install docsrag with pip?")
    assert result.covered
    assert result.hits[0].path == "/docs/installation"
    assert {hit.meta.version for hit in result.hits} == {"1.1"}
    keys = [hit.section_key for hit in result.hits]
    assert len(keys) == len(set(keys)), "a section came back twice"
    assert result.scope is not None and result.scope.label == "1.1 (latest)"


@pytest.mark.parametrize("hybrid", MODES)
async def test_the_visitors_page_picks_the_version(site: Site, hybrid: bool) -> None:
    result = await retriever(site, hybrid=hybrid).retrieve(
        "Which setting names the embedded store folder?",
        request=ScopeRequest(page_url=f"{SITE}/docs/1.0/installation"),
    )
    first = result.hits[0]
    assert (first.path, first.anchor) == ("/docs/1.0/configuration", "embedded-store")
    assert "QDRANT_LOCAL_PATH" in first.text
    assert {hit.meta.version for hit in result.hits} == {"1.0"}


@pytest.mark.parametrize("hybrid", MODES)
async def test_a_version_named_in_the_question_wins(site: Site, hybrid: bool) -> None:
    result = await retriever(site, hybrid=hybrid).retrieve(
        "What is the embedded store folder setting in the next version?",
        request=ScopeRequest(page_url=f"{SITE}/docs/1.0/installation"),
    )
    assert result.hits[0].path == "/docs/next/configuration"
    assert {hit.meta.version for hit in result.hits} == {"current"}


@pytest.mark.parametrize("hybrid", MODES)
async def test_french_pages_first_english_for_the_rest_never_both(site: Site, hybrid: bool) -> None:
    result = await retriever(site, hybrid=hybrid).retrieve(
        "How do I install docsrag with pip and deploy it to AWS?",
        request=ScopeRequest(page_url=f"{SITE}/fr/docs/configuration"),
    )
    install = [hit for hit in result.hits if hit.meta.doc_id == "installation"]
    assert install, "the installation page should answer"
    assert {hit.meta.locale for hit in install} == {"fr"}
    assert all(hit.path == "/fr/docs/installation" for hit in install)
    keys = [hit.section_key for hit in result.hits]
    assert len(keys) == len(set(keys))
    # the configuration page has no translation: its English copy may answer
    assert {hit.meta.locale for hit in result.hits} <= {"fr", "en"}


async def test_docs_that_cover_a_question_leave_the_blog_out(site: Site) -> None:
    result = await retriever(site, hybrid=False).retrieve("Which setting sets QDRANT_PATH?")
    assert result.covered
    assert all(hit.meta.kind == "docs" for hit in result.hits)


async def test_a_release_question_ranks_the_blog_with_the_docs(site: Site) -> None:
    result = await retriever(site, hybrid=False).retrieve(
        "Which setting was renamed in the 1.1 release?"
    )
    assert result.scope is not None and result.scope.blog is BlogPolicy.WITH_DOCS
    assert "blog" in {hit.meta.kind for hit in result.hits}


async def test_the_blog_answers_after_the_docs_when_only_it_covers(site: Site) -> None:
    result = await retriever(site, hybrid=False).retrieve("Does it send telemetry usage pings?")
    assert result.covered
    kinds = [hit.meta.kind for hit in result.hits]
    assert "blog" in kinds
    assert kinds == sorted(kinds, key=lambda kind: kind == "blog"), "docs must come first"
    off = await retriever(site, hybrid=False, include_blog=False).retrieve(
        "Does it send telemetry usage pings?"
    )
    assert all(hit.meta.kind != "blog" for hit in off.hits)


@pytest.mark.parametrize(
    "scope",
    [
        SearchScope(version="1.1", locales=("en",)),
        SearchScope(version="1.0", locales=("en",), blog=BlogPolicy.OFF),
        SearchScope(version="current", locales=("fr", "en"), blog=BlogPolicy.WITH_DOCS),
    ],
)
def test_the_snapshot_filters_exactly_as_qdrant_does(site: Site, scope: SearchScope) -> None:
    """The embedded store's numpy snapshot and Qdrant's own search return the same points."""
    encoder = BM25Encoder()
    embedder = build_embedder(site.settings)
    assert embedder is not None
    question = "How do I set the embedded store folder and deploy?"
    sparse = encoder.encode_query(question)
    dense = embedder.embed_documents([question])[0]
    qdrant_own = DocsIndex(
        client=site.client, collection="docs", dense_dimensions=256, local_snapshot=False
    )
    for dense_vector in (None, dense):
        ours = site.index.search(
            sparse=sparse, dense=dense_vector, limit=20, prefetch_limit=50, scope=scope
        )
        theirs = qdrant_own.search(
            sparse=sparse, dense=dense_vector, limit=20, prefetch_limit=50, scope=scope
        )
        assert [hit.chunk_id for hit in ours.hits] == [hit.chunk_id for hit in theirs.hits]
        assert ours.hits, "the scope should match something"
        for hit in ours.hits:
            assert hit.meta.locale in scope.locales
            assert hit.meta.kind != "blog" or scope.blog is not BlogPolicy.OFF
            assert hit.meta.kind == "blog" or hit.meta.version == scope.version


def test_scope_filter_is_a_qdrant_filter() -> None:
    query_filter = scope_filter(SearchScope(version="1.0", locales=("fr", "en")))
    assert isinstance(query_filter, models.Filter)
    assert scope_filter(SearchScope(version=None, locales=("en",), unscoped=True)) is None


async def test_an_index_from_an_earlier_release_is_searched_unscoped(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    """Points without metadata (written before versions were recorded) still answer."""
    settings = Settings(_env_file=None, qdrant_path=tmp_path / "q", chunk_min_tokens=0)  # type: ignore[call-arg]
    client = build_qdrant_client(settings)
    index = DocsIndex(client=client, collection="docs", dense_dimensions=8)
    index.ensure_collection()
    encoder = BM25Encoder()
    sparse = encoder.encode_document("Install docsrag with pip in a virtual environment.")
    client.upsert(
        "docs",
        points=[
            models.PointStruct(
                id="00000000-0000-0000-0000-000000000001",
                vector={"bm25": models.SparseVector(indices=sparse.indices, values=sparse.values)},
                payload={
                    "source_key": "install.md",
                    "path": "/docs/install",
                    "title": "Install",
                    "heading_path": [],
                    "anchor": None,
                    "anchors": [None],
                    "text": "Install docsrag with pip in a virtual environment.",
                    "content_hash": "old",
                    "chunk_index": 0,
                    "has_dense": False,
                },
            )
        ],
    )
    try:
        assert index.site_catalog().legacy
        # Half-way through the upgrade (some pages rewritten): still searched unscoped, so the
        # pages not yet rewritten do not drop out of the answers.
        modern = page(
            "docs/deploy/index.html",
            "/docs/deploy",
            "Deploy",
            [("", "Intro", "Run sam deploy.")],
            PageMeta(version="current", doc_id="deploy"),
        )
        chunks = chunk_page(
            modern, target_tokens=300, max_tokens=500, overlap_tokens=0, min_tokens=0
        )
        index.write_page(
            chunks=chunks,
            content_hash="h",
            sparse=[encoder.encode_document(chunk.embed_text) for chunk in chunks],
            dense=None,
            new_page=True,
        )
        assert index.site_catalog().legacy
        result = await Retriever(
            index=index, encoder=encoder, embedder=None, settings=settings
        ).retrieve("How do I install docsrag with pip?")
        assert [hit.path for hit in result.hits] == ["/docs/install"]
        assert result.scope is not None and result.scope.unscoped
    finally:
        client.close()


def test_pages_of_one_version_and_locale(site: Site) -> None:
    scope = SearchScope(version="1.1", locales=("en",), blog=BlogPolicy.WITH_DOCS)
    pages = site.index.pages(scope)
    assert [page.path for page in pages] == [
        "/blog/docsrag-1-1",
        "/docs/configuration",
        "/docs/installation",
    ]
    assert {page.meta.version for page in pages if page.meta.kind == "docs"} == {"1.1"}
    french = site.index.pages(SearchScope(version="current", locales=("fr",), blog=BlogPolicy.OFF))
    assert [page.path for page in french] == ["/fr/docs/next/installation"]


def test_a_page_reads_back_in_order(site: Site) -> None:
    hits = site.index.page_chunks("/docs/1.0/configuration/")
    assert [hit.anchor for hit in hits] == [None, "embedded-store", "cors"]
    assert "QDRANT_LOCAL_PATH" in hits[1].text
    assert site.index.page_chunks("/docs/nowhere") == []


def test_the_chunks_of_a_scope_read_back_by_page_in_order(site: Site) -> None:
    scope = SearchScope(version="1.1", locales=("en",), blog=BlogPolicy.WITH_DOCS)
    by_page = site.index.chunks_by_page(scope)
    assert set(by_page) == {page.source_key for page in site.index.pages(scope)}
    for page in site.index.pages(scope):
        assert by_page[page.source_key] == site.index.page_chunks(page.path)
    assert len(site.index.chunks_by_page()) == len(site.index.pages())
