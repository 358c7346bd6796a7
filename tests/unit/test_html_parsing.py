"""Parsing Docusaurus build HTML: only the page's own content, with its structure kept.

The fixtures reproduce the real minified output of Docusaurus 3 (unquoted attributes, omitted
`</li>`/`</td>`/`</tr>`, `<!-- -->` SSR markers, `<br>`-separated code lines, hash links holding
a zero-width space, hidden tab panels) around the chrome that must never reach the index.
"""

# ruff: noqa: E501  (the HTML fixtures are kept minified, one element run per line, like the real build)

from __future__ import annotations

import pytest

from docsrag.errors import UnsupportedDocument
from docsrag.models import Block, ParsedPage
from docsrag.parsing.html import parse_html

SITE = "https://docs.example.org"

HEAD = (
    '<!doctype html><html lang=en dir=ltr class="docs-wrapper plugin-docs docs-doc-page">'
    "<head><meta charset=UTF-8><title data-rh=true>{title} | My Site</title>"
    '<meta data-rh=true name=description content="{description}">'
    "<link data-rh=true rel=canonical href={canonical}>"
    "<script>window.analytics = 'Skip to main content';</script></head>"
)

CHROME_BEFORE = (
    "<body><div id=__docusaurus><div><a class=skipToContent_fXgn href=#__docusaurus_skipToContent_fallback>"
    "Skip to main content</a></div>"
    '<nav aria-label=Main class="theme-layout-navbar navbar navbar--fixed-top"><a class=navbar__brand href=/>'
    "<b class=navbar__title>My Site Navbar</b></a></nav>"
    '<div id=__docusaurus_skipToContent_fallback class="theme-layout-main main-wrapper">'
    "<div class=docsWrapper_hBAB><button class=theme-back-to-top-button>Back to top</button>"
    '<div class=docRoot_UBD9><aside class="theme-doc-sidebar-container docSidebarContainer_YfHR">'
    '<nav aria-label="Docs sidebar" class=menu><ul class="theme-doc-sidebar-menu menu__list">'
    "<li class=menu__list-item><a class=menu__link href=/docs/>Sidebar Intro Link</a>"
    "<li class=menu__list-item><a class=menu__link href=/docs/cli>Sidebar CLI Link</a></ul></nav></aside>"
    '<main class=docMainContainer_TBSr><div class="container padding-top--md"><div class=row>'
    '<div class="col docItemCol_VOVn"><div class=docItemContainer_Djhp><article>'
    '<nav class="theme-doc-breadcrumbs breadcrumbsContainer_Z_bl" aria-label=Breadcrumbs>'
    '<ul class=breadcrumbs><li class=breadcrumbs__item><a aria-label="Home page" class=breadcrumbs__link href=/>'
    '<svg viewBox="0 0 24 24"><path d=M10></path></svg></a>'
    "<li class=breadcrumbs__item><a class=breadcrumbs__link href=/docs/category/guides><span>Crumb Guides</span></a>"
    '<li class="breadcrumbs__item breadcrumbs__item--active"><span class=breadcrumbs__link>Crumb Page</span></ul></nav>'
    '<div class="tocCollapsible_ETCw theme-doc-toc-mobile"><button type=button class=clean-btn>On this page</button></div>'
)

CHROME_AFTER = (
    '<footer class="theme-doc-footer docusaurus-mt-lg"><div class="row theme-doc-footer-edit-meta-row">'
    "<div class=col><a href=https://github.com/org/repo/edit/main/docs/page.mdx class=theme-edit-this-page>"
    "<svg><path d=M1></path></svg>Edit this page</a></div></div></footer></article>"
    '<nav class="docusaurus-mt-lg pagination-nav" aria-label="Docs pages">'
    '<a class="pagination-nav__link pagination-nav__link--prev" href=/docs/prev>'
    "<div class=pagination-nav__sublabel>Previous</div><div class=pagination-nav__label>Prev Page Title</div></a>"
    '<a class="pagination-nav__link pagination-nav__link--next" href=/docs/next>'
    "<div class=pagination-nav__sublabel>Next</div><div class=pagination-nav__label>Next Page Title</div></a></nav>"
    '</div></div><div class="col col--3"><div class="tableOfContents_bqdL theme-doc-toc-desktop">'
    '<ul class="table-of-contents table-of-contents__left-border"><li><a href=#install '
    "class=table-of-contents__link>TOC Install Entry</a></ul></div></div></div></div></main></div></div></div>"
    '<footer class="theme-layout-footer footer footer--dark"><div class="container container-fluid">'
    '<div class="row footer__links"><div class="col footer__col"><div class=footer__title>Learn</div>'
    '<ul class="footer__items clean-list"><li class=footer__item><a class=footer__link-item href=/docs>Footer Intro Link</a>'
    "</ul></div></div><div class=footer__copyright>Copyright © 2026 My Org. Built with Docusaurus.</div></div>"
    "</footer></div></body></html>"
)


def hash_link(anchor: str) -> str:
    return (
        f'<a href=#{anchor} class=hash-link aria-label="Direct link to {anchor}" '
        f'title="Direct link to {anchor}" translate=no>\u200b</a>'
    )


def code_block(lines: list[str], *, language: str, title: str | None = None) -> str:
    title_html = f"<div class=codeBlockTitle_OeMC>{title}</div>" if title else ""
    rendered = "".join(
        "<div class=token-line style=color:#393A34>"
        + (
            f'<span class="token plain">{line}</span>'
            if line
            else '<span class="token plain" style=display:inline-block></span>'
        )
        + "<br/></div>"
        for line in lines
    )
    return (
        f"<div class=\"language-{language} codeBlockContainer_Ckt0 theme-code-block\" style=--prism-color:#393A34>"
        f"{title_html}<div class=codeBlockContent_QJqH><pre tabindex=0 class=\"prism-code language-{language} codeBlock_bY9V\">"
        f"<code class=codeBlockLines_e6Vv>{rendered}</code></pre>"
        "<div class=buttonGroup__atx><button type=button aria-label=\"Copy code to clipboard\" class=clean-btn>Copy</button></div>"
        "</div></div>"
    )  # fmt: skip


DOC_CONTENT = (
    "<div class=\"theme-doc-markdown markdown\"><header><h1>Install the CLI</h1></header>\n<!-- -->\n"
    "<p>Docusaurus ships a <code>docusaurus</code> command<!-- --> for <strong>every</strong> site.</p>\n"
    "<p>A second<br>line in the same paragraph.</p>\n"
    f"<h2 class=\"anchor anchorTargetStickyNavbar_Vzrq\" id=install>Installation{hash_link('install')}</h2>\n"
    "<div class=\"theme-tabs-container tabs-container tabList__CuJ\"><ul role=tablist aria-orientation=horizontal class=tabs>"
    "<li role=tab tabindex=0 aria-selected=true class=\"tabs__item tabs__item--active\">npm"
    "<li role=tab tabindex=-1 aria-selected=false class=tabs__item>Yarn</ul>"
    "<div class=margin-top--md><div role=tabpanel class=tabItem_Ymn6>"
    + code_block(["npm install --save @docusaurus/core"], language="bash")
    + "</div><div role=tabpanel class=tabItem_Ymn6 hidden>"
    + code_block(["yarn add @docusaurus/core"], language="bash")
    + "</div></div></div>\n"
    "<div class=\"theme-admonition theme-admonition-tip admonition_xJq3 alert alert--success\">"
    "<div class=admonitionHeading_Gvgb><span class=admonitionIcon_Rf37><svg viewBox=\"0 0 12 16\"><path d=M6></path></svg></span>tip</div>"
    "<div class=admonitionContent_BuS1><p>Use the <strong>preset</strong> to skip this step.</div></div>\n"
    "<div class=\"theme-admonition theme-admonition-warning admonition_xJq3 alert alert--warning\">"
    "<div class=admonitionHeading_Gvgb><span class=admonitionIcon_Rf37><svg><path d=M6></path></svg></span>Production only</div>"
    "<div class=admonitionContent_BuS1><p>Analytics only run in production builds.</div></div>\n"
    f"<h3 class=anchor id=configFile>Config file{hash_link('configFile')}</h3>\n"
    + code_block(
        ["export default {", "  title: 'My Site',", "", "  url: 'https://example.org',", "};"],
        language="js",
        title="docusaurus.config.js",
    )
    + "\n<div class=api-table><table><thead><tr><th>Name<th>Type<th>Default</thead><tbody>"
    "<tr id=path><td><code>path</code><td><code>string</code><td><code>'docs'</code>"
    "<tr id=editUrl><td><code>editUrl</code><td><code>string | EditUrlFunction</code><td><code>undefined</code>"
    "</table></div>\n"
    "<details class=\"details_lb9f alert alert--info\" data-collapsed=true><summary>Why is it called swizzling?</summary>"
    "<div><div class=collapsibleContent_i85q><p>The name comes from Objective-C.</p></div></div></details>\n"
    f"<h2 class=anchor id=usage>Usage{hash_link('usage')}</h2>\n"
    "<ul><li>Run <code>docusaurus start</code><li>Then build:<ul><li>with <code>build</code><li>and serve</ul>"
    "<li><p>A loose item</p>"
    + code_block(["docusaurus serve"], language="bash")
    + "</ul>\n"
    "<ol start=3><li>third<li>fourth</ol>\n"
    "<blockquote>\n<p>Quoted words.</p>\n</blockquote>\n"
    "<p>Inline math <span class=katex><span class=katex-mathml><math><semantics><mrow><mi>x</mi></mrow>"
    "<annotation encoding=application/x-tex>x^2</annotation></semantics></math></span>"
    "<span class=katex-html aria-hidden=true><span class=base>x2</span></span></span> here.</p>\n"
    "<p><img src=/img/missing-screenshot.png alt=\"Crowdin dashboard screenshot\"></p>\n"
    "<div class=browser-window><div class=browser-window-header>http://localhost:3000</div>"
    "<div class=browser-window-body><h3>Demo heading</h3><p>Demo body</div></div>\n"
    f"<h4 class=anchor id=usage-1>Usage{hash_link('usage-1')}</h4>\n<p>Duplicate heading text.</p>\n"
    "</div>"
)  # fmt: skip


def doc_page(
    content: str = DOC_CONTENT,
    *,
    title: str = "Install the CLI",
    description: str = "How to install the CLI",
    canonical: str = f"{SITE}/docs/cli",
) -> str:
    head = HEAD.format(title=title, description=description, canonical=canonical)
    return head + CHROME_BEFORE + content + CHROME_AFTER


def all_text(page: ParsedPage) -> str:
    return "\n\n".join("\n\n".join([section.heading, section.text]) for section in page.sections)


def blocks(page: ParsedPage, kind: str) -> list[Block]:
    return [block for section in page.sections for block in section.blocks if block.kind == kind]


@pytest.fixture(scope="module")
def page() -> ParsedPage:
    return parse_html("docs/cli/index.html", doc_page(), site_url=SITE)


def test_page_metadata(page: ParsedPage) -> None:
    assert page.source_key == "docs/cli/index.html"
    assert page.path == "/docs/cli"
    assert page.title == "Install the CLI"
    assert page.description == "How to install the CLI"
    assert page.kind == "docs"


@pytest.mark.parametrize(
    "chrome",
    [
        "Skip to main content",
        "My Site Navbar",
        "Sidebar Intro Link",
        "Sidebar CLI Link",
        "Crumb Guides",
        "Crumb Page",
        "On this page",
        "Edit this page",
        "Previous",
        "Prev Page Title",
        "Next Page Title",
        "TOC Install Entry",
        "Footer Intro Link",
        "Copyright",
        "Back to top",
        "Copy",
        "My Site",  # the <title> suffix
    ],
)
def test_site_chrome_never_reaches_the_text(page: ParsedPage, chrome: str) -> None:
    text = all_text(page)
    assert chrome not in text.replace("title: 'My Site'", "")


def test_sections_follow_headings_with_their_ids(page: ParsedPage) -> None:
    outline = [(s.level, s.anchor, s.heading, s.heading_path) for s in page.sections]
    assert outline == [
        (1, None, "Install the CLI", ()),
        (2, "install", "Installation", ("Installation",)),
        (3, "configFile", "Config file", ("Installation", "Config file")),
        (2, "usage", "Usage", ("Usage",)),
        (4, "usage-1", "Usage", ("Usage", "Usage")),
    ]
    assert all("\u200b" not in s.heading for s in page.sections)
    assert "\u200b" not in all_text(page)


def test_lead_in_paragraphs_are_clean_text(page: ParsedPage) -> None:
    lead_in = page.sections[0]
    assert [b.text for b in lead_in.blocks] == [
        "Docusaurus ships a docusaurus command for every site.",
        "A second line in the same paragraph.",
    ]


def test_code_blocks_keep_their_lines_language_and_title(page: ParsedPage) -> None:
    config = page.sections[2].blocks[0]
    assert config.kind == "code"
    assert config.text == (
        '```js title="docusaurus.config.js"\n'
        "export default {\n"
        "  title: 'My Site',\n"
        "\n"
        "  url: 'https://example.org',\n"
        "};\n"
        "```"
    )


def test_hidden_tab_panels_are_kept_and_labelled(page: ParsedPage) -> None:
    install = [b.text for b in page.sections[1].blocks]
    assert install[:4] == [
        "npm:",
        "```bash\nnpm install --save @docusaurus/core\n```",
        "Yarn:",
        "```bash\nyarn add @docusaurus/core\n```",
    ]


def test_admonitions_lead_with_their_kind(page: ParsedPage) -> None:
    assert [b.text for b in blocks(page, "admonition")] == [
        "Tip: Use the preset to skip this step.",
        "Warning: Production only\nAnalytics only run in production builds.",
    ]


def test_tables_with_omitted_closing_tags_become_rows(page: ParsedPage) -> None:
    [table] = blocks(page, "table")
    assert table.text == (
        "Name | Type | Default\n"
        "path | string | 'docs'\n"
        "editUrl | string | EditUrlFunction | undefined"
    )


def test_details_keep_summary_and_body(page: ParsedPage) -> None:
    [details] = blocks(page, "details")
    assert details.text == "Why is it called swizzling?\nThe name comes from Objective-C."


def test_lists_nest_and_keep_numbering(page: ParsedPage) -> None:
    bullet, ordered = blocks(page, "list")
    assert bullet.text == (
        "- Run docusaurus start\n"
        "- Then build:\n"
        "  - with build\n"
        "  - and serve\n"
        "- A loose item\n"
        "  ```bash\n"
        "  docusaurus serve\n"
        "  ```"
    )
    assert ordered.text == "3. third\n4. fourth"


def test_quotes_math_and_image_alt_text(page: ParsedPage) -> None:
    usage = page.sections[3]
    texts = [b.text for b in usage.blocks]
    assert "> Quoted words." in texts
    assert "Inline math $x^2$ here." in texts
    assert "Crowdin dashboard screenshot" in texts
    assert "x2" not in all_text(page)  # KaTeX's HTML twin is dropped


def test_headings_without_id_are_text_not_sections(page: ParsedPage) -> None:
    usage = page.sections[3]
    assert "Demo heading" in [b.text for b in usage.blocks]
    assert all(s.heading != "Demo heading" for s in page.sections)


def test_folder_index_keeps_trailing_slash_from_canonical() -> None:
    html = doc_page(canonical=f"{SITE}/docs/advanced/")
    page = parse_html("docs/advanced/index.html", html, site_url=SITE)
    assert page.path == "/docs/advanced/"
    docs_root = parse_html("docs/index.html", doc_page(canonical=f"{SITE}/docs/"), site_url=SITE)
    assert docs_root.path == "/docs/"


def test_canonical_on_another_host_is_ignored() -> None:
    # GIVEN a page that overrides its head: own title, canonical pointing at another site
    html = doc_page(
        title="Head Metadata customized title!",
        canonical="https://docusaurus.io/docs/markdown-features/head-metadata/",
    ).replace(" | My Site</title>", "</title>")
    # WHEN it is parsed from its build file
    page = parse_html("docs/markdown-features/head-metadata/index.html", html, site_url=SITE)
    # THEN the path comes from the file and the title from the h1
    assert page.path == "/docs/markdown-features/head-metadata"
    assert page.title == "Install the CLI"


def test_canonical_naming_another_page_of_the_site_is_skipped() -> None:
    # a duplicate of another page (the canonical one is indexed under its own key)
    html = doc_page(canonical=f"{SITE}/docs/other/")
    with pytest.raises(UnsupportedDocument, match=r"canonical URL is another page \(https://"):
        parse_html("docs/cli/index.html", html, site_url=SITE)


def test_site_with_a_base_path() -> None:
    html = doc_page(canonical="https://example.org/handbook/docs/advanced/")
    page = parse_html("docs/advanced/index.html", html, site_url="https://example.org/handbook")
    assert page.path == "/docs/advanced/"


def test_title_falls_back_to_head_title_without_site_suffix() -> None:
    content = '<div class="theme-doc-markdown markdown"><p>No heading here.</p></div>'
    html = doc_page(content, title="Plain Title", canonical=f"{SITE}/docs/x")
    page = parse_html("docs/x/index.html", html, site_url=SITE)
    assert page.title == "Plain Title"
    assert page.sections[0].heading == "Plain Title"


def test_emoji_titles_are_kept() -> None:
    content = '<div class="theme-doc-markdown markdown"><header><h1>📦 plugin-pwa</h1></header><p>Body.</div>'
    html = doc_page(content, canonical=f"{SITE}/docs/api/plugins/@docusaurus/plugin-pwa")
    page = parse_html("docs/api/plugins/@docusaurus/plugin-pwa/index.html", html, site_url=SITE)
    assert page.title == "📦 plugin-pwa"
    assert page.path == "/docs/api/plugins/@docusaurus/plugin-pwa"


def test_doc_cards_become_a_list() -> None:
    content = (
        "<div class=\"theme-doc-markdown markdown\"><header><h1>Upgrading</h1></header>"
        "<section class=row><article class=\"docCardListItem_W1sv col col--6\">"
        "<a class=\"card padding--lg theme-doc-card-container\" href=/docs/migration/v3>"
        "<h2 class=\"theme-doc-card-heading cardTitle_mcqP\" title=\"To Docusaurus v3\">"
        "<span class=theme-doc-card-icon>📄️</span><span class=theme-doc-card-title>To Docusaurus v3</span></h2>"
        "<p class=\"theme-doc-card-description\" title=\"Upgrade from v2 to v3.\">Upgrade from v2 to v3.</p></a></article></section></div>"
    )  # fmt: skip
    html = doc_page(content, canonical=f"{SITE}/docs/migration")
    page = parse_html("docs/migration/index.html", html, site_url=SITE)
    assert [b.text for b in page.sections[0].blocks] == [
        "- To Docusaurus v3: Upgrade from v2 to v3."
    ]


GENERATED_INDEX = (
    "<html><head><title>Guides | My Site</title></head><body><main class=docMainContainer_TBSr>"
    "<div class=generatedIndexPage_vN6x><header><h1 class=title_kItE>Guides</h1></header>"
    "<article><section class=row><article class=docCardListItem_W1sv><a class=card href=/docs/x>"
    "<h2 class=theme-doc-card-heading title=X>X</h2></a></article></section></article></div></main></body></html>"
)
NOT_FOUND = (
    '<html class="plugin-native plugin-id-default"><head><title>Page Not Found | My Site</title></head>'
    '<body><main class="container margin-vert--xl"><h1 class=hero__title>Page Not Found</h1>'
    "<p>We could not find what you were looking for.</main></body></html>"
)
BLOG_LIST = (
    '<html class="blog-wrapper blog-list-page plugin-blog"><head><title>Blog | My Site</title></head>'
    '<body><main class="col col--7"><article><header><h2><a href=/blog/welcome>Welcome</a></h2></header>'
    "<div class=markdown><p>Excerpt.</div></article></main></body></html>"
)


@pytest.mark.parametrize(
    ("key", "html", "reason"),
    [
        ("docs/category/guides/index.html", GENERATED_INDEX, "generated index"),
        ("404.html", NOT_FOUND, "no article content"),
        ("blog/index.html", BLOG_LIST, "blog listing"),
    ],
)
def test_pages_without_content_of_their_own_are_unsupported(
    key: str, html: str, reason: str
) -> None:
    with pytest.raises(UnsupportedDocument, match=reason):
        parse_html(key, html, site_url=SITE)


def test_blog_post_is_parsed_without_author_block() -> None:
    html = (
        "<html class=\"blog-wrapper blog-post-page plugin-blog\"><head><title>MDX Blog Post | My Site</title>"
        f"<link rel=canonical href={SITE}/blog/mdx-blog-post></head><body>"
        "<main class=\"col col--7\"><article><header><h1 class=title_f1Hy>MDX Blog Post</h1>"
        "<div class=container_mt6G><time datetime=2021-08-01T00:00:00.000Z>August 1, 2021</time> · <!-- -->One min read</div>"
        "<div class=avatar__name><span class=authorName_yefp>Sébastien Lorber</span></div></header>"
        "<div id=__blog-post-container class=markdown><p>Blog posts support MDX.</p>"
        f"<h2 class=anchor id=more>More{hash_link('more')}</h2><p>Details.</div>"
        "<footer class=\"docusaurus-mt-lg row\"><a href=/blog/tags/docusaurus>docusaurus</a></footer></article></main></body></html>"
    )  # fmt: skip
    page = parse_html("blog/mdx-blog-post/index.html", html, site_url=SITE)
    assert page.kind == "blog"
    assert page.title == "MDX Blog Post"
    assert page.path == "/blog/mdx-blog-post"
    text = all_text(page)
    assert "Blog posts support MDX." in text
    assert "Sébastien" not in text and "One min read" not in text
    assert [s.anchor for s in page.sections] == [None, "more"]


def test_markdown_page_of_the_pages_plugin() -> None:
    html = (
        "<html class=\"mdx-wrapper mdx-page plugin-pages\"><head><title>Markdown page example | My Site</title></head>"
        "<body><main class=\"container container--fluid\"><div class=\"row mdxPageWrapper_j9I6\"><div class=\"col col--8\">"
        "<article><header><h1>Markdown page example</h1></header>\n<p>You don't need React.</p></article></div></div></main></body></html>"
    )  # fmt: skip
    page = parse_html("markdown-page/index.html", html, site_url=SITE)
    assert page.kind == "page"
    assert page.title == "Markdown page example"
    assert [b.text for s in page.sections for b in s.blocks] == ["You don't need React."]


def test_docusaurus_2_admonitions() -> None:
    content = (
        '<div class="theme-doc-markdown markdown"><header><h1>Old site</h1></header>'
        '<div class="admonition admonition-caution alert alert--warning"><div class=admonition-heading>'
        "<h5><span class=admonition-icon><svg><path d=M1></path></svg></span>caution</h5></div>"
        "<div class=admonition-content><p>Back up first.</p></div></div></div>"
    )
    page = parse_html(
        "docs/old/index.html", doc_page(content, canonical=f"{SITE}/docs/old"), site_url=SITE
    )
    assert [b.text for b in blocks(page, "admonition")] == ["Caution: Back up first."]
