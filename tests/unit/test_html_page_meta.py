"""Where a built page sits (`ParsedPage.meta`) and which built pages are not content at all.

The fixtures copy the `<html>` tag and the `<head>` meta tags Docusaurus 3.10 writes (see the
real build in ../shared/corpora/docusaurus/build): `plugin-id-*`, `docs-version-*` and
`docs-doc-id-*` classes, `docusaurus_locale`, `docusaurus_version`, `docusaurus_tag`, the
`docsearch:*` twins and the canonical link, with the site's versions (`/docs/1.0/x`,
`/docs/next/x`, the latest release at `/docs/x`) and locales (`/fr/...`) in the URL. The last
tests parse every page of the real build and of the versioned, translated sample site
(`site/build`), each skipped with the reason when absent.
"""

# ruff: noqa: E501  (the HTML fixtures are kept minified, like the real build)

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path

import pytest
from selectolax.lexbor import LexborHTMLParser

from docsrag.errors import UnsupportedDocument
from docsrag.models import PageMeta, ParsedPage
from docsrag.parsing import classify_key, iter_site_files
from docsrag.parsing.html import parse_html

SITE = "https://docs.example.org"


def doc_html(
    url_path: str,
    *,
    version: str = "current",
    doc_id: str = "x",
    locale: str = "en",
    plugin: str = "default",
    html_class: str | None = None,
    extra_head: str = "",
    canonical: str | None = None,
    banner: str = "",
) -> str:
    """A built doc page as Docusaurus writes it (`docs/cli/index.html` of the real build)."""
    if html_class is None:
        html_class = f"docs-wrapper plugin-docs plugin-id-{plugin} docs-version-{version} docs-doc-page docs-doc-id-{doc_id}"
    url = SITE + url_path
    canonical = url if canonical is None else canonical
    tag = f"docs-{plugin}-{version}"
    return (
        f'<!doctype html><html lang={locale} dir=ltr class="{html_class}" data-has-hydrated=false><head>'
        '<meta charset=UTF-8><meta name=generator content="Docusaurus v3.10.2">'
        "<title data-rh=true>Page X | My Site</title>"
        '<meta data-rh=true name=viewport content="width=device-width, initial-scale=1.0"/>'
        f"<meta data-rh=true property=og:url content={url} />"
        f"<meta data-rh=true property=og:locale content={locale} />"
        f"<meta data-rh=true name=docusaurus_locale content={locale} />"
        f"<meta data-rh=true name=docsearch:language content={locale} />"
        f"<meta data-rh=true name=docusaurus_version content={version} />"
        f"<meta data-rh=true name=docusaurus_tag content={tag} />"
        f"<meta data-rh=true name=docsearch:version content={version} />"
        f"<meta data-rh=true name=docsearch:docusaurus_tag content={tag} />"
        '<meta data-rh=true property=og:title content="Page X | My Site"/>'
        f"{extra_head}"
        "<link data-rh=true rel=icon href=/img/favicon.ico />"
        f"<link data-rh=true rel=canonical href={canonical} />"
        f"<link data-rh=true rel=alternate href={url} hreflang={locale} />"
        "</head><body><div id=__docusaurus>"
        '<div id=__docusaurus_skipToContent_fallback class="theme-layout-main main-wrapper"><div class=docsWrapper_hBAB>'
        '<div class=docRoot_UBD9><main class=docMainContainer_TBSr><div class="container padding-top--md"><div class=row>'
        f'<div class="col docItemCol_VOVn">{banner}<div class=docItemContainer_Djhp><article>'
        f'<span class="theme-doc-version-badge badge badge--secondary">Version: {version}</span>'
        '<div class="theme-doc-markdown markdown"><header><h1>Page X</h1></header>'
        "<p>What page X says.</p></div></article></div></div></div></div></main></div></div></div></div></body></html>"
    )  # fmt: skip


def blog_html(url_path: str, *, locale: str = "en") -> str:
    """A built blog post (`blog/mdx-blog-post/index.html` of the real build)."""
    url = SITE + url_path
    return (
        f'<!doctype html><html lang={locale} dir=ltr class="blog-wrapper blog-post-page plugin-blog plugin-id-default" data-has-hydrated=false><head>'
        '<meta charset=UTF-8><meta name=generator content="Docusaurus v3.10.2">'
        "<title data-rh=true>Welcome | My Site</title>"
        f"<meta data-rh=true property=og:url content={url} />"
        f"<meta data-rh=true property=og:locale content={locale} />"
        f"<meta data-rh=true name=docusaurus_locale content={locale} />"
        "<meta data-rh=true name=docusaurus_tag content=default />"
        f"<meta data-rh=true name=docsearch:language content={locale} />"
        "<meta data-rh=true name=docsearch:docusaurus_tag content=default />"
        "<meta data-rh=true property=og:type content=article />"
        f"<link data-rh=true rel=canonical href={url} />"
        "</head><body><div id=__docusaurus><main class=\"col col--7\"><article>"
        "<header><h1 class=title_f1Hy>Welcome</h1><time datetime=2021-08-26T00:00:00.000Z>August 26, 2021</time></header>"
        "<div id=__blog-post-container class=markdown><p>Hello from the blog.</p></div>"
        "</article></main></div></body></html>"
    )  # fmt: skip


def markdown_page_html(url_path: str, *, title: str = "Markdown page example") -> str:
    """A page of the pages plugin (`markdown-page/index.html` of the real build)."""
    url = SITE + url_path
    return (
        '<!doctype html><html lang=en dir=ltr class="mdx-wrapper mdx-page plugin-pages plugin-id-default" data-has-hydrated=false><head>'
        f"<meta charset=UTF-8><title data-rh=true>{title} | My Site</title>"
        f"<meta data-rh=true property=og:url content={url} />"
        "<meta data-rh=true name=docusaurus_locale content=en />"
        "<meta data-rh=true name=docusaurus_tag content=default />"
        "<meta data-rh=true name=docsearch:language content=en />"
        "<meta data-rh=true name=docsearch:docusaurus_tag content=default />"
        f"<link data-rh=true rel=canonical href={url} />"
        "</head><body><div id=__docusaurus><main class=\"container container--fluid\">"
        "<div class=\"row mdxPageWrapper_j9I6\"><div class=\"col col--8\">"
        f"<article><header><h1>{title}</h1></header>\n<p>You don't need React.</p></article>"
        "</div></div></main></div></body></html>"
    )  # fmt: skip


def parse(key: str, html: str, **kwargs: str) -> ParsedPage:
    return parse_html(key, html, site_url=SITE, **kwargs)


def text(page: ParsedPage) -> str:
    return "\n".join(section.text for section in page.sections)


# --- versions, locales, kinds -----------------------------------------------------------------


def test_current_only_site() -> None:
    page = parse("docs/cli/index.html", doc_html("/docs/cli", doc_id="cli"))
    assert page.meta == PageMeta(
        kind="docs",
        plugin="default",
        version="current",
        default_version=True,
        locale="en",
        doc_id="cli",
    )


@pytest.mark.parametrize(
    ("key", "url_path", "version", "default_version"),
    [
        # an older release, under its version segment
        ("docs/1.0/guides/intro/index.html", "/docs/1.0/guides/intro", "1.0", False),
        ("docs/v2.0.0-beta.1/guides/intro/index.html", "/docs/v2.0.0-beta.1/guides/intro", "v2.0.0-beta.1", False),
        # the unreleased docs (`docs/`) once versions exist
        ("docs/next/guides/intro/index.html", "/docs/next/guides/intro", "current", False),
        # the latest release, served without a version segment
        ("docs/guides/intro/index.html", "/docs/guides/intro", "1.1", True),
    ],
)  # fmt: skip
def test_versioned_site(key: str, url_path: str, version: str, default_version: bool) -> None:
    page = parse(key, doc_html(url_path, version=version, doc_id="guides/intro"))
    assert page.meta.version == version
    assert page.meta.default_version is default_version
    # the same doc in every version: one section identity
    assert page.meta.doc_id == "guides/intro"
    assert page.meta.section_key("setup") == "docs/default/guides/intro#setup"
    assert page.path == url_path
    assert "Version:" not in text(page)  # the version badge is page chrome


def test_version_index_page_with_trailing_slash() -> None:
    html = doc_html("/docs/1.0/", version="1.0", doc_id="intro")
    page = parse("docs/1.0/index.html", html)
    assert (page.path, page.meta.version, page.meta.default_version) == ("/docs/1.0/", "1.0", False)
    assert page.meta.doc_id == "intro"


def test_translated_unreleased_doc() -> None:
    html = doc_html("/fr/docs/next/guides/intro", locale="fr", doc_id="guides/intro")
    page = parse("fr/docs/next/guides/intro/index.html", html)
    assert page.path == "/fr/docs/next/guides/intro"
    assert page.meta == PageMeta(
        kind="docs",
        plugin="default",
        version="current",
        default_version=False,
        locale="fr",
        doc_id="guides/intro",
    )


def test_translated_latest_release_doc() -> None:
    html = doc_html("/fr/docs/guides/intro", locale="fr", version="1.1", doc_id="guides/intro")
    page = parse("fr/docs/guides/intro/index.html", html)
    assert (page.meta.locale, page.meta.version, page.meta.default_version) == ("fr", "1.1", True)


def test_site_whose_default_locale_is_not_english() -> None:
    # `fr` is the default locale (no prefix); `en` pages live under /en/
    html = doc_html("/en/docs/1.0/intro", locale="en", version="1.0", doc_id="intro")
    page = parse("en/docs/1.0/intro/index.html", html, default_locale="fr")
    assert (page.meta.locale, page.meta.version, page.meta.default_version) == ("en", "1.0", False)
    french = parse(
        "docs/intro/index.html",
        doc_html("/docs/intro", locale="fr", doc_id="intro"),
        default_locale="fr",
    )
    assert (french.meta.locale, french.meta.default_version) == ("fr", True)


def test_blog_post() -> None:
    page = parse("blog/welcome/index.html", blog_html("/blog/welcome"))
    assert page.meta == PageMeta(
        kind="blog",
        plugin="default",
        version=None,
        default_version=True,
        locale="en",
        doc_id="blog/welcome",
    )


def test_translated_blog_post_has_the_id_of_the_original() -> None:
    page = parse("fr/blog/welcome/index.html", blog_html("/fr/blog/welcome", locale="fr"))
    assert page.path == "/fr/blog/welcome"
    assert (page.meta.kind, page.meta.locale, page.meta.version) == ("blog", "fr", None)
    assert page.meta.doc_id == "blog/welcome"


def test_markdown_page() -> None:
    page = parse("markdown-page/index.html", markdown_page_html("/markdown-page"))
    assert page.meta == PageMeta(
        kind="page",
        plugin="default",
        version=None,
        default_version=True,
        locale="en",
        doc_id="markdown-page",
    )


def test_markdown_homepage() -> None:
    page = parse("index.html", markdown_page_html("/", title="Welcome"))
    assert page.path == "/"
    assert (page.meta.kind, page.meta.doc_id, page.meta.version) == ("page", "", None)


def test_second_docs_plugin_instance() -> None:
    html = doc_html("/community/support", plugin="community", doc_id="support")
    page = parse("community/support/index.html", html)
    assert (page.meta.plugin, page.meta.version, page.meta.doc_id) == (
        "community",
        "current",
        "support",
    )
    assert page.meta.section_key(None) == "docs/community/support#"


def test_docs_folder_named_like_a_version_is_not_a_version(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # a current-only site with API docs in `docs/v2/` and Next.js docs in `docs/next/`
    caplog.set_level(logging.WARNING, logger="docsrag.parsing.html")
    api = parse("docs/v2/intro/index.html", doc_html("/docs/v2/intro", doc_id="v2/intro"))
    nextjs = parse("docs/next/setup/index.html", doc_html("/docs/next/setup", doc_id="next/setup"))
    for page in (api, nextjs):
        assert (page.meta.version, page.meta.default_version) == ("current", True)
    assert not caplog.records
    # once versions exist, the unreleased Next.js docs are at /docs/next/next/setup
    unreleased = parse(
        "docs/next/next/setup/index.html", doc_html("/docs/next/next/setup", doc_id="next/setup")
    )
    assert (unreleased.meta.version, unreleased.meta.default_version) == ("current", False)


def test_metadata_fallbacks_when_the_html_tag_lost_its_classes() -> None:
    # `<html className>` in a page's `<Head>` replaces Docusaurus's classes (the real
    # head-metadata page); the meta tags still say where the page sits
    html = doc_html(
        "/docs/2.0-beta/guides/head",
        version="2.0-beta",
        plugin="my-plugin",
        html_class="some-extra-html-class",
    )
    page = parse("docs/2.0-beta/guides/head/index.html", html)
    assert page.meta.plugin == "my-plugin"  # from docusaurus_tag `docs-my-plugin-2.0-beta`
    assert (page.meta.version, page.meta.default_version) == ("2.0-beta", False)
    assert page.meta.doc_id == "guides/head"  # the path after the version segment


def test_version_from_the_class_and_locale_from_html_lang() -> None:
    html = (
        '<!doctype html><html lang=pt-BR dir=ltr class="docs-wrapper plugin-docs plugin-id-default docs-version-3.x docs-doc-page docs-doc-id-intro">'
        '<head><title>Intro | Site</title></head><body><article><div class="theme-doc-markdown markdown"><h1>Intro</h1><p>Olá.</div></article></body></html>'
    )  # fmt: skip
    page = parse("pt-BR/docs/3.x/intro/index.html", html)
    assert page.meta == PageMeta(
        kind="docs",
        plugin="default",
        version="3.x",
        default_version=False,
        locale="pt-BR",
        doc_id="intro",
    )


def test_without_any_metadata_the_defaults_apply() -> None:
    html = '<html><head><title>Intro | Site</title></head><body><article><div class="theme-doc-markdown markdown"><h1>Intro</h1><p>Hi.</div></article></body></html>'
    page = parse("docs/guides/intro/index.html", html, default_locale="de")
    assert page.meta == PageMeta(
        kind="docs",
        plugin="default",
        version="current",
        default_version=True,
        locale="de",
        doc_id="guides/intro",
    )


@pytest.mark.parametrize(
    ("route", "key", "url_path", "version"),
    [
        ("guides", "guides/1.0/intro/index.html", "/guides/1.0/intro", "1.0"),
        ("", "1.0/intro/index.html", "/1.0/intro", "1.0"),  # docs-only mode (routeBasePath `/`)
        ("", "next/intro/index.html", "/next/intro", "current"),
    ],
)
def test_other_docs_route_base_paths(route: str, key: str, url_path: str, version: str) -> None:
    page = parse(
        key, doc_html(url_path, version=version, doc_id="intro"), docs_route_base_path=route
    )
    assert (page.meta.version, page.meta.default_version, page.meta.doc_id) == (
        version,
        False,
        "intro",
    )


@pytest.mark.parametrize(
    ("key", "url_path", "meta_version", "url_version"),
    [
        ("docs/1.0/x/index.html", "/docs/1.0/x", "current", "1.0"),
        ("docs/next/x/index.html", "/docs/next/x", "2.0", "current"),
    ],
)
def test_contradictory_metadata_the_url_wins(
    key: str,
    url_path: str,
    meta_version: str,
    url_version: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="docsrag.parsing.html")
    page = parse(key, doc_html(url_path, version=meta_version))
    assert (page.meta.version, page.meta.default_version) == (url_version, False)
    assert page.meta.doc_id == "x"
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert key in message and repr(url_version) in message and repr(meta_version) in message


# --- what is not content ----------------------------------------------------------------------

# What @docusaurus/plugin-client-redirects writes for `fromExtensions: ['html']`
# (`docs/cli.html/index.html`): no article, only a redirect.
REDIRECT_STUB = """<!DOCTYPE html>
<html>
  <head>
    <meta charset="UTF-8">
    <meta http-equiv="refresh" content="0; url=/docs/cli">
    <link rel="canonical" href="/docs/cli" />
  </head>
  <script>
    window.location.href = '/docs/cli' + window.location.search + window.location.hash;
  </script>
</html>"""


def test_redirect_stub_is_skipped() -> None:
    with pytest.raises(
        UnsupportedDocument, match=r"^docs/cli\.html/index\.html: redirect stub \(to /docs/cli\)$"
    ):
        parse("docs/cli.html/index.html", REDIRECT_STUB)


def test_redirect_is_checked_before_content() -> None:
    # a page with content that sends the reader on at once is a redirect, not a page
    html = doc_html(
        "/docs/old",
        doc_id="old",
        extra_head="<meta http-equiv=Refresh content=\"0;URL='https://docs.example.org/docs/new'\">",
    )
    with pytest.raises(
        UnsupportedDocument, match=r"redirect stub \(to https://docs.example.org/docs/new\)"
    ):
        parse("docs/old/index.html", html)


def test_a_plain_refresh_is_not_a_redirect() -> None:
    html = doc_html(
        "/docs/status", doc_id="status", extra_head="<meta http-equiv=refresh content=300>"
    )
    assert parse("docs/status/index.html", html).title == "Page X"


def test_a_refresh_meta_in_the_body_is_not_a_redirect() -> None:
    # a live JSX demo in the content; Docusaurus puts the page's own `<Head>` tags in the head
    demo = '<div class=demo><meta http-equiv=refresh content="0; url=/elsewhere"></div>'
    html = doc_html("/docs/demo", doc_id="demo", banner=demo)
    assert parse("docs/demo/index.html", html).meta.doc_id == "demo"


def test_noindex_page_is_skipped() -> None:
    html = doc_html("/docs/drafts/x", extra_head="<meta name=robots content=noindex>")
    with pytest.raises(UnsupportedDocument, match=r"^docs/drafts/x/index\.html: noindex page$"):
        parse("docs/drafts/x/index.html", html)


def test_unlisted_doc_is_skipped() -> None:
    # `unlisted: true` front matter: a banner, and a robots meta tag
    banner = (
        '<div class="theme-admonition theme-admonition-caution theme-unlisted-banner admonition_xJq3 alert alert--warning">'
        "<div class=admonitionHeading_Gvgb>Unlisted page</div><div class=admonitionContent_BuS1>"
        "This page is unlisted. Search engines will not index it, and only users having a direct link can access it.</div></div>"
    )  # fmt: skip
    html = doc_html(
        "/docs/secret",
        doc_id="secret",
        banner=banner,
        extra_head='<meta data-rh=true name=robots content="noindex, nofollow"/>',
    )
    with pytest.raises(UnsupportedDocument, match="noindex page"):
        parse("docs/secret/index.html", html)


def test_index_follow_is_content() -> None:
    html = doc_html("/docs/x", extra_head='<meta name=robots content="index, follow">')
    assert parse("docs/x/index.html", html).meta.doc_id == "x"


def test_canonical_naming_another_page_is_skipped() -> None:
    html = doc_html("/docs/old-name", doc_id="new-name", canonical=f"{SITE}/docs/new-name")
    with pytest.raises(
        UnsupportedDocument,
        match=r"^docs/old-name/index\.html: canonical URL is another page \(https://docs\.example\.org/docs/new-name\)$",
    ):
        parse("docs/old-name/index.html", html)


@pytest.mark.parametrize(
    ("key", "canonical", "path"),
    [
        ("docs/advanced/index.html", f"{SITE}/docs/advanced/", "/docs/advanced/"),
        ("docs/cli/index.html", f"{SITE}/docs/cli/", "/docs/cli/"),
        ("docs/cli.html", f"{SITE}/docs/cli", "/docs/cli"),
        ("index.html", f"{SITE}/", "/"),
        ("index.html", SITE, "/"),
        ("docs/cli.html", f"{SITE}/docs/cli.html", "/docs/cli"),
        ("docs/x/index.html", f"{SITE}/docs/x/index.html", "/docs/x"),
    ],
)
def test_canonical_differing_by_a_trailing_slash_or_file_name_is_this_page(
    key: str, canonical: str, path: str
) -> None:
    page = parse(key, doc_html(path, canonical=canonical))
    assert page.path == path


def test_canonical_on_another_host_is_not_a_reason_to_skip() -> None:
    # the real build's head-metadata page points its canonical at docusaurus.io
    html = doc_html(
        "/docs/markdown-features/head-metadata",
        canonical="https://docusaurus.io/docs/markdown-features/head-metadata",
    )
    page = parse("docs/markdown-features/head-metadata/index.html", html)
    assert page.path == "/docs/markdown-features/head-metadata"


def test_canonical_with_the_site_base_path() -> None:
    site = "https://example.org/handbook"
    same = doc_html("/docs/x", canonical="https://example.org/handbook/docs/x/")
    assert parse_html("docs/x/index.html", same, site_url=site).path == "/docs/x/"
    other = doc_html("/docs/x", canonical="https://example.org/handbook/docs/y")
    with pytest.raises(UnsupportedDocument, match="canonical URL is another page"):
        parse_html("docs/x/index.html", other, site_url=site)
    # outside the base path: not a page of this site, ignored like another host
    outside = doc_html("/docs/x", canonical="https://example.org/elsewhere/docs/y")
    assert parse_html("docs/x/index.html", outside, site_url=site).path == "/docs/x"


def test_a_site_url_without_the_builds_base_path_keeps_the_page(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A configuration slip (SITE_URL lacks the build's baseUrl) must not empty the index."""
    html = doc_html("/docs/x", canonical="https://example.org/handbook/docs/x")
    with caplog.at_level(logging.WARNING):
        page = parse_html("docs/x/index.html", html, site_url="https://example.org")
    assert page.path == "/docs/x"
    assert "check SITE_URL" in caplog.text


# --- the real build ---------------------------------------------------------------------------


@pytest.mark.corpus
def test_every_page_of_the_real_build(shared_corpus: Path) -> None:
    # GIVEN the real Docusaurus 3.10 build (one docs version, one locale)
    build = shared_corpus / "build"
    pages: dict[str, ParsedPage] = {}
    skipped: dict[str, str] = {}
    for key, path in iter_site_files(build):
        if classify_key(key).format != "html":
            continue
        html = path.read_text(encoding="utf-8")
        # WHEN every page is parsed
        try:
            pages[key] = parse_html(key, html, site_url="https://docs.heldout-example.org")
        except UnsupportedDocument as exc:
            skipped[key] = str(exc)
            continue
        # THEN each docs page is in the current, default version, the default plugin and
        # locale, with the id of its `docs-doc-id-*` class
        page = pages[key]
        if page.kind == "docs":
            root = LexborHTMLParser(html).root
            assert root is not None
            ids = [
                c for c in (root.attrs.get("class") or "").split() if c.startswith("docs-doc-id-")
            ]
            # the head-metadata page replaced the classes: its id comes from the URL
            expected = (
                ids[0].removeprefix("docs-doc-id-")
                if ids
                else page.path.strip("/").removeprefix("docs/")
            )
            assert page.meta == PageMeta(
                kind="docs",
                plugin="default",
                version="current",
                default_version=True,
                locale="en",
                doc_id=expected,
            ), key
        else:
            assert page.meta == PageMeta(
                kind=page.kind,
                plugin="default",
                version=None,
                default_version=True,
                locale="en",
                doc_id=page.path.strip("/"),
            ), key
    # AND the pages kept and skipped are the ones the corpus tests expect: no redirect stubs,
    # noindex pages or canonical duplicates in this build
    assert Counter(page.kind for page in pages.values()) == {"docs": 87, "blog": 4, "page": 1}
    assert set(skipped) == {
        "docs/category/getting-started/index.html",
        "docs/category/guides/index.html",
        "blog/index.html",
        "index.html",
    }
    assert pages["docs/index.html"].meta.doc_id == "introduction"
    head_metadata = pages["docs/markdown-features/head-metadata/index.html"]
    assert head_metadata.meta.doc_id == "markdown-features/head-metadata"


@pytest.mark.docusaurus_build
def test_every_page_of_the_versioned_sample_build() -> None:
    # GIVEN the sample site built by `make site`: docs/ as `current` at /docs/next/, releases
    # 1.1 (the latest, at /docs/) and 1.0 (at /docs/1.0/), and a French locale at /fr/
    site = Path(__file__).resolve().parents[2] / "site"
    build = site / "build"
    if not (build / "docs" / "next" / "index.html").is_file():
        pytest.skip(f"{build} is absent or not versioned: run `make site`")
    latest = json.loads((site / "versions.json").read_text(encoding="utf-8"))[0]
    seen: Counter[tuple[str, str | None, bool, str]] = Counter()
    for key, path in iter_site_files(build):
        if classify_key(key).format != "html":
            continue
        # WHEN every page is parsed
        try:
            page = parse_html(
                key, path.read_text(encoding="utf-8"), site_url="http://localhost:3000"
            )
        except UnsupportedDocument:
            continue
        meta = page.meta
        # THEN version and locale are the ones the URL says
        local = page.path.removeprefix("/fr")
        assert meta.locale == ("fr" if page.path.startswith("/fr/") else "en"), key
        if meta.kind == "docs":
            if local.startswith("/docs/next/"):
                expected: tuple[str | None, bool] = ("current", False)
            elif local.startswith("/docs/1.0/"):
                expected = ("1.0", False)
            else:
                expected = (latest, True)
            assert (meta.version, meta.default_version) == expected, key
        else:
            assert (meta.version, meta.default_version) == (None, True), key
        seen[(meta.kind, meta.version, meta.default_version, meta.locale)] += 1
    # AND every version exists in both locales
    for locale in ("en", "fr"):
        for version, default in (("current", False), ("1.0", False), (latest, True)):
            assert seen[("docs", version, default, locale)] > 0, (version, locale)
