"""Retriever over real indexes: a small Markdown site (hybrid through the fake embeddings server,
and BM25 only) and the real Docusaurus documentation (BM25 only, the floors' tuning data)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from qdrant_client import QdrantClient

from docsrag.config import Settings
from docsrag.embeddings import build_embedder
from docsrag.index import DocsIndex, build_qdrant_client
from docsrag.ingest import Ingestor
from docsrag.retrieval import Retriever
from docsrag.sparse import BM25Encoder
from tests.fakes.openai_server import FakeOpenAI

PAGES = {
    "installation.md": """---
title: Installation
---

Docusaurus is a static site generator for documentation websites.

## Requirements

Node.js version 18.0 or above is required. Check the installed version with `node -v`.

## Install with npm

Run `npm install @docusaurus/core @docusaurus/preset-classic` in the project folder.

## Install with yarn

Run `yarn add @docusaurus/core @docusaurus/preset-classic`; yarn creates a yarn.lock file.
""",
    "deployment.md": """---
title: Deployment
---

Run `npm run build` to produce static files in the build directory, then host them anywhere.

## Deploying to Netlify

Connect the repository in the Netlify dashboard. Set the build command to `npm run build` and
the publish directory to `build`. Netlify deploys every push to the main branch.

## Deploying to GitHub Pages

Set `organizationName`, `projectName` and `deploymentBranch`, then run `npm run deploy`.
GitHub Pages serves the gh-pages branch.
""",
    "search.md": """---
title: Search
---

Add full-text search to the site with Algolia DocSearch or a local search plugin.

## Using Algolia DocSearch

Apply to the DocSearch program, then put `appId`, `apiKey` and `indexName` under
`themeConfig.algolia` in docusaurus.config.js. The search bar appears in the navbar.

## Local search

Install a community plugin that builds a search index at build time, offline, without Algolia.
""",
    "theme.md": """---
title: Theme configuration
---

The classic theme reads `themeConfig` from docusaurus.config.js.

## Navbar

The navbar shows the site title, the logo and links. Navbar items are configured under
`themeConfig.navbar.items` in docusaurus.config.js.

## Footer

The footer shows link columns and a copyright line, configured under `themeConfig.footer`.

## Color mode

Enable dark mode or light mode as the default under `themeConfig.colorMode`; respect the user's
system preference with `respectPrefersColorScheme`.

## Announcement bar

An announcement bar above the navbar is configured under `themeConfig.announcementBar`.

## Table of contents

The table of contents heading levels are configured under `themeConfig.tableOfContents`.
""",
}

# A name dropped in passing: the docs mention Hugo, but say nothing about using it.
PAGES["about.md"] = """---
title: About
---

Other generators include Hugo, Jekyll and Gatsby.
"""

IN_DOMAIN = [
    ("how do I deploy to netlify", "/docs/deployment", "deploying-to-netlify"),
    ("which node version is required", "/docs/installation", "requirements"),
    ("where do the algolia appId and apiKey go", "/docs/search", "using-algolia-docsearch"),
    ("how to enable dark mode", "/docs/theme", "color-mode"),
]
OFF_TOPIC = ["what is the capital of France?", "how do I bake bread"]


@dataclass
class Site:
    client: QdrantClient
    index: DocsIndex
    settings: Settings


def site_settings(store: Path, fake: FakeOpenAI, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "qdrant_path": store,
        "openrouter_api_key": fake.api_key,
        "openrouter_base_url": fake.base_url,
        "embedding_dimensions": 256,
        "embedding_max_retries": 0,
        "embedding_timeout_seconds": 5,
        "chunk_min_tokens": 0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory, fake_openai_server: FakeOpenAI
) -> Iterator[Site]:
    """The small site, indexed once with dense vectors (fake embeddings) for the module."""
    root = tmp_path_factory.mktemp("site")
    for name, text in PAGES.items():
        (root / name).write_text(text)
    settings = site_settings(root.parent / "qdrant", fake_openai_server)
    client = build_qdrant_client(settings)
    index = DocsIndex(client=client, collection="docs", dense_dimensions=256)
    index.ensure_collection()
    ingestor = Ingestor(
        index=index, encoder=BM25Encoder(), embedder=build_embedder(settings), settings=settings
    )
    summary = ingestor.sync_folder(root)
    assert summary.added == len(PAGES)
    yield Site(client=client, index=index, settings=settings)
    client.close()


def retriever(site: Site, *, hybrid: bool, **overrides: Any) -> Retriever:
    settings = site.settings.model_copy(update=overrides)
    return Retriever(
        index=site.index,
        encoder=BM25Encoder(),
        embedder=build_embedder(settings) if hybrid else None,
        settings=settings,
    )


@dataclass
class Turn:
    role: str
    content: str


@pytest.mark.parametrize("hybrid", [True, False], ids=["hybrid", "bm25"])
@pytest.mark.parametrize(("question", "path", "anchor"), IN_DOMAIN)
async def test_in_domain_questions_find_the_right_section(
    site: Site, fake_openai: FakeOpenAI, hybrid: bool, question: str, path: str, anchor: str
) -> None:
    result = await retriever(site, hybrid=hybrid).retrieve(question, [])

    assert result.covered
    assert result.dense_used is hybrid
    assert (result.hits[0].path, result.hits[0].anchor) == (path, anchor)


@pytest.mark.parametrize("question", OFF_TOPIC)
async def test_off_topic_questions_are_not_covered_with_bm25(site: Site, question: str) -> None:
    result = await retriever(site, hybrid=False).retrieve(question, [])

    assert not result.covered


@pytest.mark.parametrize("question", OFF_TOPIC)
async def test_off_topic_questions_are_not_covered_in_hybrid_mode(
    site: Site, fake_openai: FakeOpenAI, question: str
) -> None:
    # The fake's vectors follow shared words, stop-words included, so its cosine for an unrelated
    # question runs higher than a real model's; its floor sits where word overlap means topic.
    hybrid = retriever(site, hybrid=True, dense_relevance_floor=0.5)

    result = await hybrid.retrieve(question, [])

    assert result.dense_used
    assert not result.covered


@pytest.mark.parametrize("hybrid", [True, False], ids=["hybrid", "bm25"])
@pytest.mark.parametrize(
    "question",
    [
        # every other word is on the deployment page: only the name gives it away
        "How do I deploy the build to Heroku with npm run build?",
        "Where do I call getServerSideProps in the navbar?",
    ],
)
async def test_a_question_about_something_the_docs_never_name_is_not_covered(
    site: Site, fake_openai: FakeOpenAI, hybrid: bool, question: str
) -> None:
    result = await retriever(site, hybrid=hybrid).retrieve(question, [])

    assert result.hits  # the sections match its other words...
    assert not result.covered  # ...but none of them mentions what it asks about


@pytest.mark.parametrize("hybrid", [True, False], ids=["hybrid", "bm25"])
async def test_a_name_the_docs_only_drop_in_passing_does_not_make_a_question_covered(
    site: Site, fake_openai: FakeOpenAI, hybrid: bool
) -> None:
    # "Hugo" occurs only in a list of alternatives; every other word is on the deployment page.
    question = "How do I deploy a Hugo site with npm run build?"
    # (the fake's word-overlap cosine runs high, see the off-topic test above)
    hybrid_retriever = retriever(site, hybrid=hybrid, dense_relevance_floor=0.5)

    result = await hybrid_retriever.retrieve(question, [])

    assert "/docs/about" in [hit.path for hit in result.hits]
    assert not result.covered
    assert result.missing_names == ("Hugo",)


@pytest.mark.parametrize("hybrid", [True, False], ids=["hybrid", "bm25"])
@pytest.mark.parametrize(
    ("question", "path", "anchor"),
    [
        (
            "How do I deploy to Netlify from the main branch?",
            "/docs/deployment",
            "deploying-to-netlify",
        ),
        ("Do I need Node.js 18 for Docusaurus?", "/docs/installation", "requirements"),
        # the user's own error text is not a name the docs must use
        (
            "Netlify build command and publish directory for `MySite`",
            "/docs/deployment",
            "deploying-to-netlify",
        ),
    ],
)
async def test_names_the_docs_use_keep_a_question_covered(
    site: Site, fake_openai: FakeOpenAI, hybrid: bool, question: str, path: str, anchor: str
) -> None:
    result = await retriever(site, hybrid=hybrid).retrieve(question, [])

    assert result.covered
    assert (path, anchor) in [(hit.path, hit.anchor) for hit in result.hits]


async def test_a_page_that_matches_best_gives_as_many_sections_as_rank_clear(site: Site) -> None:
    # GIVEN a question that every section of the theme page matches, far above other pages
    question = "themeConfig navbar footer color mode announcement bar table of contents"

    result = await retriever(site, hybrid=False).retrieve(question, [])

    # THEN the theme page gives more than the two sections a hard per-page cap allowed,
    # each section once
    theme_hits = [hit for hit in result.hits if hit.path == "/docs/theme"]
    assert result.hits[0].path == "/docs/theme"
    assert len(theme_hits) > 3
    anchors = [(hit.path, hit.anchor) for hit in result.hits]
    assert len(anchors) == len(set(anchors))
    assert len(result.hits) <= site.settings.retrieval_top_k


async def test_other_pages_share_the_places_with_a_page_that_matches_often(site: Site) -> None:
    # GIVEN a question whose best match is on the deployment page, while many theme sections
    # match its other words
    question = "where is the navbar footer and the netlify deploy"

    diverse = await retriever(site, hybrid=False).retrieve(question, [])
    fused_order = await retriever(site, hybrid=False, retrieval_page_diversity=0).retrieve(
        question, []
    )

    # THEN the best match leads, and with page diversity the theme page takes fewer places
    # than in the plain fused order
    assert diverse.hits[0].anchor == "deploying-to-netlify"
    theme = [hit.path for hit in diverse.hits].count("/docs/theme")
    assert theme < [hit.path for hit in fused_order.hits].count("/docs/theme")
    assert len({hit.path for hit in diverse.hits}) > len({hit.path for hit in fused_order.hits})


@pytest.mark.parametrize("hybrid", [True, False], ids=["hybrid", "bm25"])
async def test_a_follow_up_is_resolved_with_the_previous_question(
    site: Site, fake_openai: FakeOpenAI, hybrid: bool
) -> None:
    history = [
        Turn("user", "how do I add algolia docsearch to my site?"),
        Turn("assistant", "Apply to DocSearch, then set appId, apiKey and indexName [1]."),
    ]
    follow_up = "and where do I configure it?"

    with_history = await retriever(site, hybrid=hybrid).retrieve(follow_up, history)

    assert with_history.covered
    assert with_history.hits[0].path == "/docs/search"
    alone = await retriever(site, hybrid=hybrid).retrieve(follow_up, [])
    assert not alone.hits or alone.hits[0].path != "/docs/search"


async def test_and_for_yarn_follows_the_install_question(site: Site) -> None:
    history = [Turn("user", "how do I install docusaurus with npm?")]

    result = await retriever(site, hybrid=False).retrieve("and with yarn?", history)

    top = result.hits[0]
    assert (top.path, top.anchor) == ("/docs/installation", "install-with-yarn")


async def test_a_new_question_is_not_pulled_towards_the_old_topic(site: Site) -> None:
    history = [Turn("user", "how do I add algolia docsearch to my site?")]

    result = await retriever(site, hybrid=False).retrieve(
        "how do I deploy the build to GitHub Pages", history
    )

    assert result.hits[0].anchor == "deploying-to-github-pages"


async def test_embeddings_down_still_answers_from_bm25(site: Site, fake_openai: FakeOpenAI) -> None:
    fake_openai.fail_next(500, count=5, endpoint="embeddings")

    result = await retriever(site, hybrid=True).retrieve("how do I deploy to netlify", [])

    assert fake_openai.embedding_calls == 1  # tried once (no retries in these settings)
    assert not result.dense_used
    assert result.covered
    assert result.hits[0].anchor == "deploying-to-netlify"


# --- the real Docusaurus documentation, BM25 only -------------------------------------------


@pytest.fixture(scope="module")
def docusaurus(tmp_path_factory: pytest.TempPathFactory, shared_corpus: Path) -> Iterator[Site]:
    store = tmp_path_factory.mktemp("docusaurus") / "qdrant"
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        qdrant_path=store,
        openrouter_api_key=None,
        site_url="https://docs.heldout-example.org",
    )
    client = build_qdrant_client(settings)
    index = DocsIndex(client=client, collection="docs", dense_dimensions=8)
    index.ensure_collection()
    Ingestor(index=index, encoder=BM25Encoder(), embedder=None, settings=settings).sync_folder(
        shared_corpus / "build"
    )
    yield Site(client=client, index=index, settings=settings)
    client.close()


@pytest.mark.corpus
@pytest.mark.parametrize(
    ("question", "path", "anchor"),
    [
        ("how do I deploy to GitHub Pages", "/docs/deployment", "deploying-to-github-pages"),
        ("how to deploy on netlify", "/docs/deployment", "deploying-to-netlify"),
        ("how do I set up Algolia DocSearch", "/docs/search", "using-algolia-docsearch"),
        ("can I use LaTeX math equations", "/docs/markdown-features/math-equations", None),
        ("what browsers are supported", "/docs/browser-support", None),
    ],
)
async def test_real_docs_in_domain(
    docusaurus: Site, question: str, path: str, anchor: str | None
) -> None:
    result = await retriever(docusaurus, hybrid=False).retrieve(question, [])

    assert result.covered
    assert (result.hits[0].path, result.hits[0].anchor) == (path, anchor)


@pytest.mark.corpus
@pytest.mark.parametrize(
    "question",
    [
        "what is the capital of France?",
        "how do I bake bread",
        "recommend a good pizza recipe",
        "how to create a kubernetes deployment",
        "what is the price of bitcoin",
        "translate hello into Spanish",
    ],
)
async def test_real_docs_off_topic(docusaurus: Site, question: str) -> None:
    result = await retriever(docusaurus, hybrid=False).retrieve(question, [])

    assert not result.covered
