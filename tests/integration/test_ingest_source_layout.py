"""Ingesting a whole Docusaurus site source tree (docs, a release, a translation, a blog, a page)
with the real Ingestor into an embedded Qdrant: every page under its Docusaurus URL, version and
locale; the build/ folder beside the sources and everything else that is not a page left out."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from qdrant_client import QdrantClient

from docsrag.config import Settings
from docsrag.index import DocsIndex, build_qdrant_client
from docsrag.ingest import Ingestor
from docsrag.models import PageMeta
from docsrag.parsing import SourceLayout, classify_key, iter_site_files, parse_document
from docsrag.sparse import BM25Encoder
from tests.integration.test_ingest import make_settings

BUILT_PAGE = (
    '<html><head><link rel="canonical" href="https://docs.example.org/docs/intro"></head>'
    '<body><article><div class="theme-doc-markdown markdown"><header><h1>Built intro</h1>'
    "</header><p>This page comes from the build and must not be indexed.</p></div></article>"
    "</body></html>"
)

SITE: dict[str, str] = {
    "docusaurus.config.js": "export default {title: 'Test'};",
    "package.json": "{}",
    "sidebars.js": "export default {};",
    "versions.json": '["2.0"]',
    # current (unreleased): /docs/next/...
    "docs/intro.md": "# Introduction\n\nWhat comes next: streaming answers.\n\n## Setup\n\nRun it.",
    "docs/01-guides/index.md": "# Guides\n\nHow-to guides for the next release.",
    "docs/01-guides/02-install.md": "# Install\n\nInstall the next release with pip.",
    "docs/01-guides/_category_.json": '{"label": "Guides"}',
    "docs/_shared.mdx": "A partial, imported by pages.",
    # the latest release, the default version: /docs/...
    "versioned_docs/version-2.0/intro.md": "# Introduction\n\nRelease 2.0.\n\n## Setup\n\nRun it.",
    "versioned_docs/version-2.0/01-guides/02-install.md": "# Install\n\nInstall 2.0 with pip.",
    "versioned_sidebars/version-2.0-sidebars.json": "{}",
    # French
    "i18n/fr/code.json": "{}",
    "i18n/fr/docusaurus-plugin-content-docs/current.json": "{}",
    "i18n/fr/docusaurus-plugin-content-docs/current/intro.md": (
        "# Présentation\n\nLa suite : réponses en continu.\n\n## Installation rapide\n\nLancez-le."
    ),
    "i18n/fr/docusaurus-plugin-content-docs/version-2.0/intro.md": (
        "# Présentation\n\nVersion 2.0.\n\n## Installation rapide\n\nLancez-le."
    ),
    "i18n/fr/docusaurus-plugin-content-docs/current/removed.md": "# Supprimée\n\nVieille page.",
    "i18n/fr/docusaurus-plugin-content-blog/2024-01-15-welcome.md": "# Bienvenue\n\nBonjour.",
    # blog
    "blog/2024-01-15-welcome.md": "---\ntitle: Welcome\n---\n\nWelcome to the blog.",
    "blog/2024-03-01-release-2/index.md": "# Release 2.0\n\nWhat is new in 2.0.",
    "blog/2024-02-01-wip.md": "---\ndraft: true\n---\n\nNot ready.",
    "blog/authors.yml": "jane:\n  name: Jane\n",
    # pages
    "src/pages/about.md": "# About\n\nWho we are.",
    "src/pages/index.js": "export default function Home() { return null; }",
    # not pages, not even walked
    "static/img/logo.png": "png",
    "build/index.html": BUILT_PAGE,
    "build/docs/intro/index.html": BUILT_PAGE,
    "node_modules/some-package/README.md": "# A dependency\n\nNot a page.",
}

EXPECTED: dict[str, tuple[str, PageMeta]] = {
    "docs/intro.md": (
        "/docs/next/intro",
        PageMeta(kind="docs", version="current", default_version=False, doc_id="intro"),
    ),
    "docs/01-guides/index.md": (
        "/docs/next/guides/",
        PageMeta(kind="docs", version="current", default_version=False, doc_id="guides/index"),
    ),
    "docs/01-guides/02-install.md": (
        "/docs/next/guides/install",
        PageMeta(kind="docs", version="current", default_version=False, doc_id="guides/install"),
    ),
    "versioned_docs/version-2.0/intro.md": (
        "/docs/intro",
        PageMeta(kind="docs", version="2.0", default_version=True, doc_id="intro"),
    ),
    "versioned_docs/version-2.0/01-guides/02-install.md": (
        "/docs/guides/install",
        PageMeta(kind="docs", version="2.0", default_version=True, doc_id="guides/install"),
    ),
    "i18n/fr/docusaurus-plugin-content-docs/current/intro.md": (
        "/fr/docs/next/intro",
        PageMeta(
            kind="docs", version="current", default_version=False, locale="fr", doc_id="intro"
        ),
    ),
    "i18n/fr/docusaurus-plugin-content-docs/version-2.0/intro.md": (
        "/fr/docs/intro",
        PageMeta(kind="docs", version="2.0", default_version=True, locale="fr", doc_id="intro"),
    ),
    "i18n/fr/docusaurus-plugin-content-blog/2024-01-15-welcome.md": (
        "/fr/blog/2024/01/15/welcome",
        PageMeta(kind="blog", version=None, locale="fr", doc_id="blog/2024/01/15/welcome"),
    ),
    "blog/2024-01-15-welcome.md": (
        "/blog/2024/01/15/welcome",
        PageMeta(kind="blog", version=None, doc_id="blog/2024/01/15/welcome"),
    ),
    "blog/2024-03-01-release-2/index.md": (
        "/blog/2024/03/01/release-2",
        PageMeta(kind="blog", version=None, doc_id="blog/2024/03/01/release-2"),
    ),
    "src/pages/about.md": ("/about", PageMeta(kind="page", version=None, doc_id="about")),
}


def write(root: Path, files: dict[str, str]) -> Path:
    for key, text in files.items():
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


@pytest.fixture
def site(tmp_path: Path) -> Path:
    return write(tmp_path / "site", SITE)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, None)


@pytest.fixture
def qdrant(settings: Settings) -> Iterator[QdrantClient]:
    client = build_qdrant_client(settings)
    yield client
    client.close()


@pytest.fixture
def index(qdrant: QdrantClient, settings: Settings) -> DocsIndex:
    index = DocsIndex(
        client=qdrant, collection="docs", dense_dimensions=settings.embedding_dimensions
    )
    index.ensure_collection()
    return index


@pytest.fixture
def ingestor(index: DocsIndex, settings: Settings) -> Ingestor:
    return Ingestor(index=index, encoder=BM25Encoder(), embedder=None, settings=settings)


def indexed(qdrant: QdrantClient) -> dict[str, list[dict[str, Any]]]:
    """Every point's payload, by source key."""
    records, _ = qdrant.scroll("docs", limit=10_000, with_payload=True)
    pages: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        payload = dict(record.payload or {})
        pages.setdefault(str(payload["source_key"]), []).append(payload)
    return pages


def test_a_site_ingests_every_page_under_its_url_version_and_locale(
    site: Path, ingestor: Ingestor, index: DocsIndex, qdrant: QdrantClient, settings: Settings
) -> None:
    seen: list[str] = []
    summary = ingestor.sync_folder(site, progress=seen.append)

    assert summary.failed == 0, summary.failures
    assert summary.added == len(EXPECTED)
    assert set(index.page_states()) == set(EXPECTED)
    # Nothing from build/, node_modules/ or static/ was even looked at.
    assert not [key for key in seen if key.startswith(("build/", "node_modules/", "static/"))]
    reasons = summary.skipped_reasons
    assert "draft post" in reasons["blog/2024-02-01-wip.md"]
    assert (
        "docs/removed.md, which does not exist"
        in reasons["i18n/fr/docusaurus-plugin-content-docs/current/removed.md"]
    )
    assert "partial" in reasons["docs/_shared.mdx"]
    assert {"blog/authors.yml", "src/pages/index.js", "i18n/fr/code.json"} & set(reasons) == {
        "blog/authors.yml",
        "src/pages/index.js",
    }
    assert summary.skipped == len(reasons)

    points = indexed(qdrant)
    layout = SourceLayout.detect(site, settings=settings)
    for key, (path, meta) in EXPECTED.items():
        # The page as parsed, and the chunks as indexed, carry the same URL and metadata.
        page = parse_document(key, (site / key).read_bytes(), settings=settings, layout=layout)
        assert (page.path, page.meta) == (path, meta), key
        assert {p["path"] for p in points[key]} == {path}, key
        for payload in points[key]:
            assert payload["kind"] == meta.kind, key
            assert payload["plugin"] == meta.plugin, key
            assert payload["docs_version"] == meta.version, key
            assert payload["default_version"] == meta.default_version, key
            assert payload["locale"] == meta.locale, key
            assert payload["doc_id"] == meta.doc_id, key

    # One section in two versions: the same doc id and anchor, each under its own URL; the
    # French translation's anchors follow its own headings.
    setup = {
        (p["docs_version"], p["locale"], p["path"])
        for key in EXPECTED
        for p in points[key]
        if p["doc_id"] == "intro" and "setup" in (p["anchors"] or [])
    }
    assert setup == {("current", "en", "/docs/next/intro"), ("2.0", "en", "/docs/intro")}
    french = points["i18n/fr/docusaurus-plugin-content-docs/current/intro.md"]
    assert "installation-rapide" in {a for p in french for a in p["anchors"] or []}


def test_a_second_sync_costs_nothing_and_removed_files_leave_the_index(
    site: Path, ingestor: Ingestor, index: DocsIndex
) -> None:
    ingestor.sync_folder(site)

    again = ingestor.sync_folder(site)
    assert (again.added, again.updated, again.deleted) == (0, 0, 0)
    assert again.unchanged == len(EXPECTED)

    # A removed release page leaves; so does the translation of a removed source file.
    (site / "versioned_docs/version-2.0/01-guides/02-install.md").unlink()
    (site / "docs/intro.md").unlink()
    summary = ingestor.sync_folder(site)

    assert summary.deleted == 3
    gone = {
        "versioned_docs/version-2.0/01-guides/02-install.md",
        "docs/intro.md",
        "i18n/fr/docusaurus-plugin-content-docs/current/intro.md",
    }
    assert set(index.page_states()) == set(EXPECTED) - gone
    assert summary.unchanged == len(EXPECTED) - len(gone)


def test_a_default_locale_translation_replaces_its_source(
    site: Path, ingestor: Ingestor, index: DocsIndex
) -> None:
    ingestor.sync_folder(site)
    write(site, {"i18n/en/docusaurus-plugin-content-docs/current/intro.md": "# Intro\n\nEdited."})

    summary = ingestor.sync_folder(site)

    assert summary.added == 1 and summary.deleted == 1
    states = index.page_states()
    assert "docs/intro.md" not in states
    assert "i18n/en/docusaurus-plugin-content-docs/current/intro.md" in states


def test_a_site_with_its_docs_elsewhere(
    tmp_path: Path, ingestor: Ingestor, index: DocsIndex
) -> None:
    # Like our own sample site: site/docusaurus.config.js with `path: '../docs'`.
    site = write(tmp_path / "site", {"docusaurus.config.js": "", "blog/2024-01-01-hi.md": "Hi."})
    write(tmp_path / "docs", {"index.md": "# Home\n\nStart here.", "a/b.md": "# B\n\nText."})
    (site / "docs").mkdir()  # a stray docs/ in the site root is not the docs folder then

    summary = ingestor.sync_folder(site, docs_dir=tmp_path / "docs")

    assert summary.added == 3
    assert set(index.page_states()) == {"docs/index.md", "docs/a/b.md", "blog/2024-01-01-hi.md"}


def test_a_built_site_and_a_docs_folder_keep_their_keys(
    tmp_path: Path, ingestor: Ingestor, index: DocsIndex
) -> None:
    build = write(
        tmp_path / "build", {"index.html": "<html></html>", "docs/intro/index.html": BUILT_PAGE}
    )
    summary = ingestor.sync_folder(build)
    assert summary.added == 1 and set(index.page_states()) == {"docs/intro/index.html"}


@pytest.mark.corpus
def test_doc_ids_match_the_build_of_the_shared_corpus(shared_corpus: Path) -> None:
    """The id of every source doc is the one Docusaurus wrote as `docs-doc-id-<id>` in its page,
    and its URL is that page's."""
    settings = Settings(_env_file=None)
    checked = 0
    for key, path in iter_site_files(shared_corpus / "docs"):
        if classify_key(key).format != "markdown":
            continue
        page = parse_document(key, path.read_bytes(), settings=settings)
        built = shared_corpus / "build" / page.path.strip("/") / "index.html"
        assert built.is_file(), (key, page.path)
        ids = re.findall(r"docs-doc-id-([^\s\"]+)", built.read_text(encoding="utf-8"))
        if not ids:  # the head-metadata page replaces <html>'s classes with its own
            continue
        assert ids == [page.meta.doc_id], key
        checked += 1
    assert checked >= 80


def test_the_cli_ingests_a_site_with_docs_dir(tmp_path: Path) -> None:
    write(tmp_path / "site", {"docusaurus.config.js": "", "versions.json": '["1.0"]'})
    write(tmp_path / "site/versioned_docs/version-1.0", {"intro.md": "# Intro\n\nOld."})
    write(tmp_path / "docs", {"intro.md": "# Intro\n\nNew."})
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENROUTER_", "QDRANT_"))}
    env["QDRANT_PATH"] = str(tmp_path / "qdrant")

    result = subprocess.run(
        [sys.executable, "-m", "docsrag", "ingest", "--json", "site", "--docs-dir", "docs"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["added"] == 2
    missing = subprocess.run(
        [sys.executable, "-m", "docsrag", "ingest", "site", "--docs-dir", "nowhere"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert missing.returncode == 1
    assert "no such docs folder" in missing.stderr
