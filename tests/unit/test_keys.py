"""Which files are pages, which URL each one is cited under, and the `parse_document` gate."""

from __future__ import annotations

from pathlib import Path

import pytest

from docsrag.config import Settings, load_settings
from docsrag.errors import DocumentError, UnsupportedDocument
from docsrag.parsing import iter_site_files, parse_document
from docsrag.parsing.keys import (
    blog_file_slug,
    blog_key_to_path,
    classify_key,
    key_to_path,
    markdown_doc_id,
    markdown_key_to_path,
    page_key_to_path,
)


@pytest.mark.parametrize(
    "key",
    [
        "index.html",
        "docs/index.html",
        "docs/cli/index.html",
        "docs/api/plugins/@docusaurus/plugin-content-docs/index.html",
        "docs/blog/index.html",  # a doc page that happens to be called "blog"
        "docs/search/index.html",  # a doc page about search, not the search page
        "blog/welcome/index.html",
        "blog/index.html",  # the blog list: the parser, not the key, tells it has no content
        "markdown-page/index.html",
        "docs/page.html",  # trailingSlash: false builds
    ],
)
def test_pages_of_a_build_are_html(key: str) -> None:
    info = classify_key(key)
    assert info.format == "html"
    assert info.reason is None


@pytest.mark.parametrize("key", ["intro.md", "guides/setup.mdx", "api/plugin-methods/README.mdx"])
def test_doc_sources_are_markdown(key: str) -> None:
    assert classify_key(key).format == "markdown"


@pytest.mark.parametrize(
    ("key", "reason_part"),
    [
        ("assets/js/main.183a05fa.js", "asset"),
        ("assets/css/styles.d14e6d2f.css", "asset"),
        ("assets/images/banner-abc123.png", "asset"),
        ("assets/files/example-123.docx", "asset"),
        ("img/logo.svg", "image"),
        ("img/undraw_docusaurus.html", "image"),
        ("favicon.ico", "asset"),
        ("fonts/inter.woff2", "asset"),
        ("404.html", "not-found"),
        ("sitemap.xml", "sitemap"),
        ("blog/rss.xml", "feed"),
        ("blog/atom.xml", "feed"),
        ("blog/atom.xsl", "feed"),
        ("search-index.json", "search index"),
        ("search-index-docs-default-current.json", "search index"),
        ("lunr-index-1700000000.json", "search index"),
        ("manifest.json", "site file"),
        (".nojekyll", "site file"),
        ("search/index.html", "search page"),
        ("blog/tags/index.html", "listing"),
        ("blog/tags/docusaurus/index.html", "listing"),
        ("blog/authors/yangshun/index.html", "listing"),
        ("blog/archive/index.html", "listing"),
        ("blog/page/2/index.html", "listing"),
        ("docs/tags/getting-started/index.html", "listing"),
        ("api/plugins/_partial-tags-file-api-ref-section.mdx", "partial"),
        ("_shared/snippet.md", "partial"),
        ("guides/_category_.yml", "not a page"),
        ("docs/", "not a file"),
        ("README", "not a page"),
        ("node_modules/some-lib/README.md", "dependency folder"),
        (".docusaurus/docusaurus-plugin-content-docs/default/site-docs-intro-md.json", "hidden"),
        (".git/description", "hidden"),
    ],
)
def test_non_pages_are_skipped_with_a_reason(key: str, reason_part: str) -> None:
    info = classify_key(key)
    assert info.format is None
    assert info.reason is not None
    assert reason_part in info.reason


@pytest.mark.parametrize(
    ("key", "path"),
    [
        ("index.html", "/"),
        ("docs/index.html", "/docs"),
        ("docs/cli/index.html", "/docs/cli"),
        ("/docs/cli/index.html", "/docs/cli"),
        (
            "docs/api/plugins/@docusaurus/plugin-pwa/index.html",
            "/docs/api/plugins/@docusaurus/plugin-pwa",
        ),
        ("docs/page.html", "/docs/page"),
        ("markdown-page/index.html", "/markdown-page"),
    ],
)
def test_build_file_to_url_path(key: str, path: str) -> None:
    assert key_to_path(key) == path


@pytest.mark.parametrize(
    ("key", "front_matter", "path"),
    [
        # file path without extension
        ("cli.mdx", {}, "/docs/cli"),
        ("advanced/ssg.mdx", {}, "/docs/advanced/ssg"),
        ("api/docusaurus.config.js.mdx", {}, "/docs/api/docusaurus.config.js"),
        # number prefixes stripped from files and folders, dates and versions kept
        ("01-getting-started/02-install.md", {}, "/docs/getting-started/install"),
        ("1.intro.md", {}, "/docs/intro"),
        ("3 - setup.md", {}, "/docs/setup"),
        ("2021-01-31-release.md", {}, "/docs/2021-01-31-release"),
        ("8.0-notes.md", {}, "/docs/8.0-notes"),
        # index docs fold into their folder, with a trailing slash
        ("index.mdx", {}, "/docs/"),
        ("advanced/index.mdx", {}, "/docs/advanced/"),
        ("api/plugin-methods/README.mdx", {}, "/docs/api/plugin-methods/"),
        ("guides/guides.md", {}, "/docs/guides/"),
        ("02-guides/Readme.md", {}, "/docs/guides/"),
        ("advanced/index.mdx", {"id": "overview"}, "/docs/advanced/"),
        # id replaces the file name
        ("guides/docs/docs-create-doc.mdx", {"id": "create-doc"}, "/docs/guides/docs/create-doc"),
        # slug: absolute within the docs route, or relative to the folder
        ("introduction.mdx", {"slug": "/"}, "/docs/"),
        ("guides/docs/docs-create-doc.mdx", {"slug": "/create-doc"}, "/docs/create-doc"),
        ("api/plugins/pwa.mdx", {"slug": "/api/plugins/@docusaurus/plugin-pwa"},
         "/docs/api/plugins/@docusaurus/plugin-pwa"),
        ("guides/setup.md", {"slug": "install"}, "/docs/guides/install"),
        ("guides/deep/setup.md", {"slug": "../install"}, "/docs/guides/install"),
        ("guides/setup.md", {"slug": "/guides/setup/"}, "/docs/guides/setup/"),
        ("guides/index.md", {"slug": "start"}, "/docs/guides/start"),
    ],
)  # fmt: skip
def test_docusaurus_doc_urls(key: str, front_matter: dict[str, str], path: str) -> None:
    assert (
        markdown_key_to_path(key, doc_id=front_matter.get("id"), slug=front_matter.get("slug"))
        == path
    )


def test_route_base_path_is_configurable() -> None:
    assert markdown_key_to_path("intro.md", route_base_path="") == "/intro"
    assert markdown_key_to_path("index.md", route_base_path="/") == "/"
    assert markdown_key_to_path("intro.md", route_base_path="/handbook/") == "/handbook/intro"


def test_number_prefixes_can_be_kept() -> None:
    assert (
        markdown_key_to_path("01-guides/02-setup.md", parse_number_prefixes=False)
        == "/docs/01-guides/02-setup"
    )
    assert markdown_key_to_path("intro.md", route_base_path="fr/docs/1.0") == "/fr/docs/1.0/intro"


@pytest.mark.parametrize(
    ("key", "front_matter", "doc_id"),
    [
        ("intro.md", {}, "intro"),
        ("01-guides/02-setup.md", {}, "guides/setup"),
        ("1.intro.md", {}, "intro"),
        ("2021-01-31-release.md", {}, "2021-01-31-release"),
        # an index doc keeps its file name in its id (the URL folds, the id does not)
        ("advanced/index.mdx", {}, "advanced/index"),
        ("02-guides/README.md", {}, "guides/README"),
        # `id` front matter replaces the file name, not the folder
        ("guides/docs/docs-create-doc.mdx", {"id": "create-doc"}, "guides/docs/create-doc"),
        ("api/plugins/pwa.mdx", {"slug": "/elsewhere"}, "api/plugins/pwa"),
    ],
)
def test_docusaurus_doc_ids(key: str, front_matter: dict[str, str], doc_id: str) -> None:
    assert markdown_doc_id(key, doc_id=front_matter.get("id")) == doc_id
    assert markdown_doc_id("01-a/02-b.md", parse_number_prefixes=False) == "01-a/02-b"


@pytest.mark.parametrize(
    ("key", "slug", "text"),
    [
        # Checked against @docusaurus/plugin-content-blog 3.10 `parseBlogFileName`.
        ("2024-01-15-welcome.md", "/2024/01/15/welcome", "welcome"),
        ("2024-01-15-welcome/index.md", "/2024/01/15/welcome", "welcome"),
        ("2024/01/15/welcome.mdx", "/2024/01/15/welcome", "welcome"),
        ("2024-1-5-x.md", "/2024/1/5/x", "x"),
        ("posts/2024-01-15-x.md", "/2024/01/15/posts/x", "x"),
        ("2024-01-15.md", "/2024/01/15/", ""),
        ("welcome.md", "/welcome", "welcome"),
        ("welcome/index.md", "/welcome", "welcome"),
        ("news/launch.mdx", "/news/launch", "news/launch"),
    ],
)
def test_blog_file_slugs(key: str, slug: str, text: str) -> None:
    assert blog_file_slug(key) == (slug, text)
    assert blog_key_to_path(key) == "/blog" + slug
    assert blog_key_to_path(key, route_base_path="fr/blog") == "/fr/blog" + slug


def test_blog_slug_front_matter_is_within_the_blog_route() -> None:
    assert blog_key_to_path("2024-01-15-a.md", slug="hello") == "/blog/hello"
    assert blog_key_to_path("2024-01-15-a.md", slug="/hello/") == "/blog/hello/"
    assert blog_key_to_path("a.md", route_base_path="") == "/a"


@pytest.mark.parametrize(
    ("key", "path"),
    [
        ("about.md", "/about"),
        ("index.md", "/"),
        ("index.mdx", "/"),
        ("team/index.md", "/team/"),
        ("team/Index.MDX", "/team/"),
        ("legal/terms.mdx", "/legal/terms"),
    ],
)
def test_markdown_page_urls(key: str, path: str) -> None:
    assert page_key_to_path(key) == path
    assert page_key_to_path(key, route_base_path="fr") == "/fr" + path
    assert page_key_to_path(key, slug="/x") == "/x"


# --- parse_document: the entry point the ingest calls -------------------------------------------


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings(site_url="https://docs.example.org", max_document_bytes=4096)


def test_parse_document_dispatches_by_key(settings: Settings) -> None:
    html = (
        b"<html><head><link rel=canonical href=https://docs.example.org/docs/></head><body><article>"
        b'<div class="theme-doc-markdown markdown"><header><h1>Intro</h1></header><p>Hi.</div>'
        b"</article></body></html>"
    )
    page = parse_document("docs/index.html", html, settings=settings)
    assert (page.path, page.title) == ("/docs/", "Intro")
    page = parse_document("intro.md", b"# Intro\n\nHi.", settings=settings)
    assert (page.path, page.title) == ("/docs/intro", "Intro")


def test_parse_document_skips_non_pages_before_reading_them(settings: Settings) -> None:
    # A large binary asset is skipped, not failed.
    with pytest.raises(UnsupportedDocument, match="asset"):
        parse_document("assets/js/main.js", b"\x00" * 10_000, settings=settings)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"x" * 5000, "limit"),
        (b"  \n ", "empty"),
        (b"# Title\x00\x01", "binary"),
        ("# Caf\u00e9".encode("latin-1"), "UTF-8"),
    ],
)
def test_parse_document_rejects_unreadable_pages(
    settings: Settings, data: bytes, message: str
) -> None:
    with pytest.raises(DocumentError, match=message) as raised:
        parse_document("intro.md", data, settings=settings)
    assert not isinstance(raised.value, UnsupportedDocument)


def test_parse_document_accepts_a_utf8_bom(settings: Settings) -> None:
    page = parse_document("intro.md", "\ufeff# Café\n\nText.".encode(), settings=settings)
    assert page.title == "Café"


def test_iter_site_files_lists_every_file_with_posix_keys(tmp_path: Path) -> None:
    (tmp_path / "docs" / "cli").mkdir(parents=True)
    (tmp_path / "docs" / "cli" / "index.html").write_text("<html></html>")
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "main.js").write_text("")
    (tmp_path / ".nojekyll").write_text("")
    keys = [key for key, _ in iter_site_files(tmp_path)]
    assert keys == [".nojekyll", "assets/main.js", "docs/cli/index.html"]
    assert (
        dict(iter_site_files(tmp_path))["docs/cli/index.html"] == tmp_path / "docs/cli/index.html"
    )
    with pytest.raises(DocumentError, match="no such folder"):
        list(iter_site_files(tmp_path / "missing"))


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("fr/404.html", "not-found page"),
        ("pt-br/search/index.html", "search page"),
        ("fr/blog/tags/release/index.html", "listing page"),
        ("fr/blog/archive/index.html", "listing page"),
        ("fr/docs/tags/x/index.html", "listing page"),
    ],
)
def test_translated_copies_of_non_pages_are_skipped_for_the_same_reason(
    key: str, reason: str
) -> None:
    info = classify_key(key)
    assert (info.format, info.reason) == (None, reason)


def test_translated_pages_are_pages() -> None:
    assert classify_key("fr/docs/intro/index.html").format == "html"
    assert classify_key("fr/blog/2025/01/01/post/index.html").format == "html"
