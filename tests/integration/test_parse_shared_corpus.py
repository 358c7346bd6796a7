"""Parsing a real Docusaurus 3.10 build (106 HTML pages) and its 89 MDX sources.

The build is the ground truth: the URL and heading anchors computed from each Markdown source
must be exactly the ones Docusaurus gave the built page, so citations from either kind of ingest
link to the same place.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
from selectolax.lexbor import LexborHTMLParser

from docsrag.config import Settings, load_settings
from docsrag.errors import UnsupportedDocument
from docsrag.models import ParsedPage
from docsrag.parsing import classify_key, iter_site_files, parse_document

pytestmark = pytest.mark.corpus

SITE_URL = "https://docs.heldout-example.org"
# Sections that plugin-content-docs and plugin-content-blog import from a partial
# (`<TagsFileApiRefSection />`): in the built page, not in the importing file's own text.
PARTIAL_ANCHORS = ("tags-file", "tags-file-types", "tags-file-example")


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings(site_url=SITE_URL)


@pytest.fixture(scope="module")
def build(shared_corpus: Path) -> Path:
    return shared_corpus / "build"


@pytest.fixture(scope="module")
def html_pages(build: Path, settings: Settings) -> dict[str, ParsedPage]:
    pages: dict[str, ParsedPage] = {}
    for key, path in iter_site_files(build):
        if classify_key(key).format == "html":
            try:
                pages[key] = parse_document(key, path.read_bytes(), settings=settings)
            except UnsupportedDocument:
                continue
    return pages


@pytest.fixture(scope="module")
def md_pages(shared_corpus: Path, settings: Settings) -> dict[str, ParsedPage]:
    pages: dict[str, ParsedPage] = {}
    for key, path in iter_site_files(shared_corpus / "docs"):
        if classify_key(key).format == "markdown":
            pages[key] = parse_document(key, path.read_bytes(), settings=settings)
    return pages


@pytest.fixture(scope="module")
def by_path(html_pages: dict[str, ParsedPage]) -> dict[str, ParsedPage]:
    return {page.path: page for page in html_pages.values()}


def page_text(page: ParsedPage) -> str:
    return "\n\n".join(f"{s.heading}\n\n{s.text}" for s in page.sections)


def html_heading_ids(build: Path, key: str) -> list[str]:
    tree = LexborHTMLParser((build / key).read_text(encoding="utf-8"))
    content = tree.css_first("article div.theme-doc-markdown") or tree.css_first(
        "#__blog-post-container"
    )
    assert content is not None
    return [
        node.attributes["id"] or ""
        for node in content.css("h2[id], h3[id], h4[id], h5[id], h6[id]")
    ]


def test_exactly_the_content_pages_of_the_build_parse(
    build: Path, html_pages: dict[str, ParsedPage]
) -> None:
    html_keys = [key for key, _ in iter_site_files(build) if key.endswith(".html")]
    assert len(html_keys) == 106
    skipped_by_key = {key for key in html_keys if classify_key(key).format is None}
    assert skipped_by_key == {
        "404.html",
        "blog/archive/index.html",
        "blog/authors/index.html",
        "blog/authors/all-sebastien-lorber-articles/index.html",
        "blog/authors/yangshun/index.html",
        "blog/tags/index.html",
        "blog/tags/docusaurus/index.html",
        "blog/tags/facebook/index.html",
        "blog/tags/hello/index.html",
        "blog/tags/hola/index.html",
    }
    unsupported = set(html_keys) - skipped_by_key - set(html_pages)
    assert unsupported == {
        "docs/category/getting-started/index.html",  # generated-index: a list of links
        "docs/category/guides/index.html",
        "blog/index.html",  # blog list: excerpts of the posts
        "index.html",  # the JSX homepage: no article
    }
    kinds = Counter(page.kind for page in html_pages.values())
    assert kinds == {"docs": 87, "blog": 4, "page": 1}


def test_every_page_is_in_the_sitemap_under_its_canonical_url(
    build: Path, html_pages: dict[str, ParsedPage]
) -> None:
    sitemap = (build / "sitemap.xml").read_text(encoding="utf-8")
    urls = set(re.findall(r"<loc>([^<]+)</loc>", sitemap))
    for page in html_pages.values():
        assert SITE_URL + page.path in urls, page.path


def test_urls_of_trap_pages(by_path: dict[str, ParsedPage]) -> None:
    # folder-index docs keep their trailing slash, other docs have none
    for path in ("/docs/", "/docs/advanced/", "/docs/api/plugin-methods/"):
        assert path in by_path
    assert "/docs/cli" in by_path and "/docs/cli/" not in by_path
    assert "/docs/api/plugins/@docusaurus/plugin-content-docs" in by_path
    # the page whose canonical points at docusaurus.io is cited on this site
    head_metadata = by_path["/docs/markdown-features/head-metadata"]
    assert head_metadata.source_key == "docs/markdown-features/head-metadata/index.html"
    assert head_metadata.title == "Head metadata"
    assert by_path["/blog/mdx-blog-post"].kind == "blog"
    assert by_path["/markdown-page"].kind == "page"


def test_emoji_and_non_ascii_survive(by_path: dict[str, ParsedPage]) -> None:
    assert by_path["/docs/api/plugins/@docusaurus/plugin-pwa"].title == "📦 plugin-pwa"
    introduction = by_path["/docs/"]
    assert any(
        s.anchor == "fast-track" and s.heading == "Fast Track ⏱️" for s in introduction.sections
    )
    assert re.search(r"[\u3040-\u30ff]", page_text(by_path["/docs/migration/v3"]))


def test_section_anchors_are_the_heading_ids_of_the_page(
    build: Path, html_pages: dict[str, ParsedPage]
) -> None:
    for key, page in html_pages.items():
        if page.kind == "page":
            continue
        assert [s.anchor for s in page.sections if s.anchor] == html_heading_ids(build, key), key
        assert all("\u200b" not in s.heading and s.heading for s in page.sections), key


def test_explicit_and_camel_case_ids_are_citable(by_path: dict[str, ParsedPage]) -> None:
    config_anchors = {s.anchor for s in by_path["/docs/api/docusaurus-config"].sections}
    assert {"onBrokenLinks", "markdown"} <= config_anchors
    themes = {s.anchor for s in by_path["/docs/api/themes/configuration"].sections}
    assert "color-mode---dark-mode" in themes


def test_no_site_chrome_leaks_into_any_page(build: Path, html_pages: dict[str, ParsedPage]) -> None:
    chrome = ("Edit this page", "On this page", "Skip to main content", "Built with Docusaurus")
    for key, page in html_pages.items():
        text = page_text(page)
        tree = LexborHTMLParser((build / key).read_text(encoding="utf-8"))
        content = (
            tree.css_first("article div.theme-doc-markdown")
            or tree.css_first("#__blog-post-container")
            or tree.css_first("main article")
        )
        assert content is not None
        own_text = content.text()
        for phrase in chrome:  # some docs talk about these; the page chrome must add nothing
            assert text.count(phrase) <= own_text.count(phrase), (key, phrase)
        sidebar = tree.css_first("aside.theme-doc-sidebar-container")
        if sidebar is not None:
            labels = " ".join(sidebar.text(separator=" ").split())
            assert labels not in " ".join(text.split()), key
        pagination = tree.css_first("nav.pagination-nav")
        if pagination is not None:
            for label in pagination.css(".pagination-nav__label"):
                assert f"Next {label.text()}" not in text and f"Previous {label.text()}" not in text


def test_code_blocks_keep_their_line_breaks(by_path: dict[str, ParsedPage]) -> None:
    code = [
        b.text for p in by_path.values() for s in p.sections for b in s.blocks if b.kind == "code"
    ]
    assert len(code) > 500
    multi_line = [text for text in code if text.count("\n") > 2]
    assert len(multi_line) > 0.6 * len(code)
    deployment = by_path["/docs/deployment"]
    assert any(
        b.text.startswith('```js title="docusaurus.config.js"\nexport default {\n  url: ')
        for s in deployment.sections
        for b in s.blocks
    )


def test_admonitions_tabs_and_api_tables_are_structured(by_path: dict[str, ParsedPage]) -> None:
    admonitions = by_path["/docs/markdown-features/admonitions"]
    kinds = [
        b.text.split(":", 1)[0]
        for s in admonitions.sections
        for b in s.blocks
        if b.kind == "admonition"
    ]
    assert {"Note", "Tip", "Info", "Warning", "Danger"} <= set(kinds)
    install = by_path["/docs/installation"]
    labels = [
        b.text
        for s in install.sections
        for b in s.blocks
        if b.text in {"npm:", "Yarn:", "pnpm:", "Bun:"}
    ]
    assert {"npm:", "Yarn:", "pnpm:", "Bun:"} <= set(labels)
    docs_plugin = by_path["/docs/api/plugins/@docusaurus/plugin-content-docs"]
    tables = [b.text for s in docs_plugin.sections for b in s.blocks if b.kind == "table"]
    assert any(
        t.startswith("Name | Type | Default | Description\npath | string | 'docs' |")
        for t in tables
    )


def test_markdown_sources_get_the_urls_and_anchors_of_the_build(
    md_pages: dict[str, ParsedPage], by_path: dict[str, ParsedPage]
) -> None:
    # GIVEN the 87 doc sources (2 partials are not pages) and the pages built from them
    assert len(md_pages) == 87
    matched_anchors = total_anchors = 0
    for key, md_page in md_pages.items():
        # WHEN the URL is computed from the file path and front matter
        built = by_path.get(md_page.path)
        # THEN it is exactly the URL Docusaurus gave the page, trailing slash included
        assert built is not None, (key, md_page.path)
        assert md_page.title == built.title, key
        # AND the anchors are the built page's heading ids, in order
        md_anchors = [s.anchor for s in md_page.sections if s.anchor]
        built_anchors = [s.anchor for s in built.sections if s.anchor]
        own_anchors = [a for a in built_anchors if a not in PARTIAL_ANCHORS]
        assert md_anchors == own_anchors, key
        matched_anchors += len(md_anchors)
        total_anchors += len(built_anchors)
    assert (matched_anchors, total_anchors) == (765, 771)


def test_markdown_and_html_read_alike(
    md_pages: dict[str, ParsedPage], by_path: dict[str, ParsedPage]
) -> None:
    def words(page: ParsedPage) -> set[str]:
        return set(re.findall(r"\w+", page_text(page).lower()))

    similarity = []
    for md_page in md_pages.values():
        md_words, html_words = words(md_page), words(by_path[md_page.path])
        similarity.append(len(md_words & html_words) / len(md_words | html_words))
        # nothing in the source text is lost on the way
        assert len(md_words - html_words) <= 3, md_page.source_key
    assert sum(similarity) / len(similarity) > 0.95
