"""llms.txt and llms-full.txt formatting (`docsrag.llms_txt`) on hand-made pages and chunks."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from docsrag.chunking import chunk_page
from docsrag.config import Settings
from docsrag.llms_txt import (
    Edition,
    PageGroup,
    build_llms_full_txt,
    build_llms_txt,
    edition,
    group_pages,
    link_item,
    one_line,
    page_text,
    render_llms_full_txt,
    render_llms_txt,
    safe_markdown,
    strip_overlap,
)
from docsrag.models import Block, Hit, PageMeta, PageSummary, ParsedPage, Section
from docsrag.scope import BlogPolicy, SearchScope, SiteCatalog
from tests.llmstxt import parse_llms_full_txt, parse_llms_txt

SITE = "https://docs.example.org/base"


def settings(**overrides: object) -> Settings:
    return Settings(_env_file=None, site_url=SITE, **overrides)  # type: ignore[arg-type]


def summary(
    path: str,
    title: str = "",
    description: str | None = None,
    *,
    kind: str = "docs",
    version: str | None = "1.1",
    default: bool = True,
    plugin: str = "default",
    key: str | None = None,
) -> PageSummary:
    meta = PageMeta(
        kind=kind,  # type: ignore[arg-type]
        plugin=plugin,
        version=version if kind == "docs" else None,
        default_version=default,
        doc_id=path.strip("/"),
    )
    return PageSummary(
        source_key=key or path.strip("/") + "/index.html",
        path=path,
        title=title or path.rsplit("/", 1)[-1].title(),
        description=description,
        meta=meta,
    )


def hit(
    page: PageSummary, text: str, heading_path: tuple[str, ...] = (), anchor: str | None = None
) -> Hit:
    return Hit(
        chunk_id=f"{page.path}#{anchor}#{len(text)}",
        source_key=page.source_key,
        path=page.path,
        page_title=page.title,
        heading_path=heading_path,
        anchor=anchor,
        text=text,
        score=0.0,
        meta=page.meta,
    )


def current(**overrides: object) -> Edition:
    values: dict[str, object] = {
        "scope": SearchScope(version="1.1", locales=("en",), blog=BlogPolicy.WITH_DOCS),
        "title": "Example Docs",
        "description": "What the example does.",
        "version_label": "1.1 (latest)",
        "locale": "en",
        "others_exist": True,
    }
    return Edition(**(values | overrides))  # type: ignore[arg-type]


def url(path: str) -> str:
    return settings().public_url(path)


# --- one line, link items ---------------------------------------------------------------------


def test_one_line_squashes_every_kind_of_line_break_and_drops_control_characters() -> None:
    text = "A\nB\r\nC\u2028D\u2029E\x85F\x0bG\x0cH\tI\x00J\x1b[31mK\u202eL  "
    assert one_line(text, 200) == "A B C D E F G H IJ[31mKL"
    assert one_line("x" * 50, 10) == "x" * 9 + "…"


def test_a_link_item_stays_one_list_item_whatever_the_title_and_description_hold() -> None:
    page = summary(
        "/docs/a(b)",
        title="Evil] (title)\n\n## Injected\n- [x](https://evil.example)\\",
        description="Line one.\n\n## Not a heading\n- not an item",
    )
    item = link_item(page, url(page.path))

    assert "\n" not in item
    parsed = parse_llms_txt(f"# T\n\n## S\n\n{item}\n")
    (link,) = parsed.sections["S"]
    assert link.title == "Evil] (title) ## Injected - [x](https://evil.example)\\"
    assert link.url == f"{SITE}/docs/a%28b%29"
    assert link.notes == "Line one. ## Not a heading - not an item"


def test_a_page_without_title_or_description_is_its_path_and_no_notes() -> None:
    page = PageSummary(
        source_key="k", path="/docs/x", title=" \n ", description="  ", meta=PageMeta()
    )
    assert link_item(page, url(page.path)) == f"- [/docs/x]({SITE}/docs/x)"


def test_long_descriptions_are_cut_with_an_ellipsis() -> None:
    item = link_item(summary("/docs/x", description="word " * 300), url("/docs/x"))
    assert item.endswith("…") and len(item) < 600


# --- grouping ---------------------------------------------------------------------------------


def names(groups: list[PageGroup]) -> dict[str, list[str]]:
    return {group.name: [page.path for page in group.pages] for group in groups}


def test_docs_are_grouped_by_their_first_segment_then_blog_then_optional_pages() -> None:
    pages = [
        summary("/blog/2025/01/02/launch", kind="blog"),
        summary("/", kind="page"),
        summary("/docs/guides/install"),
        summary("/docs/intro"),
        summary("/docs/deployment/aws-sam"),
        summary("/docs"),
        summary("/docs/guides/deploy/aws"),
        summary("/about", kind="page"),
        summary("/docs/getting-started_now/x"),
    ]
    assert names(group_pages(pages, settings=settings())) == {
        "Docs": ["/docs", "/docs/intro"],
        "Deployment": ["/docs/deployment/aws-sam"],
        "Getting started now": ["/docs/getting-started_now/x"],
        "Guides": ["/docs/guides/deploy/aws", "/docs/guides/install"],
        "Blog": ["/blog/2025/01/02/launch"],
        "Optional": ["/", "/about"],
    }
    assert [group.name for group in group_pages(pages, settings=settings())] == [
        "Docs",
        "Deployment",
        "Getting started now",
        "Guides",
        "Blog",
        "Optional",
    ]


def test_a_category_index_page_leads_and_names_its_group() -> None:
    pages = [
        summary("/docs/guides/install"),
        summary("/docs/guides", title="How-to guides"),
        summary("/docs/faq", title="FAQ"),
    ]
    assert names(group_pages(pages, settings=settings())) == {
        "Docs": ["/docs/faq"],
        "How-to guides": ["/docs/guides", "/docs/guides/install"],
    }


def test_the_version_segment_and_the_route_base_path_are_not_groups() -> None:
    pages = [
        summary("/docs/next/guides/install", version="current", default=False),
        summary("/docs/next/intro", version="current", default=False),
        summary("/docs/2.0/reference/cli", version="2.0", default=False),
    ]
    assert names(group_pages(pages, settings=settings())) == {
        "Docs": ["/docs/next/intro"],
        "Guides": ["/docs/next/guides/install"],
        "Reference": ["/docs/2.0/reference/cli"],
    }
    at_root = [summary("/guides/install"), summary("/intro")]
    assert names(group_pages(at_root, settings=settings(docs_route_base_path="/"))) == {
        "Docs": ["/intro"],
        "Guides": ["/guides/install"],
    }


def test_other_docs_plugins_are_grouped_by_their_route_after_the_docs() -> None:
    pages = [
        summary("/community/support", plugin="community"),
        summary("/community", title="Community hub", plugin="community"),
        summary("/docs/zeta/x"),
    ]
    groups = group_pages(pages, settings=settings())
    assert names(groups) == {
        "Zeta": ["/docs/zeta/x"],
        "Community hub": ["/community", "/community/support"],
    }


def test_folders_named_like_the_special_sections_do_not_become_them() -> None:
    pages = [summary("/docs/optional/x"), summary("/docs/blog/y"), summary("/docs/docs/z")]
    assert list(names(group_pages(pages, settings=settings()))) == [
        "Blog (blog)",
        "Docs (docs)",
        "Optional (optional)",
    ]


def test_two_folders_titled_alike_get_two_sections() -> None:
    pages = [
        summary("/docs/guides", title="Guides"),
        summary("/docs/guides/a"),
        summary("/docs/how-to", title="Guides"),
        summary("/docs/how-to/b"),
        summary("/community/c", plugin="community"),
        summary("/docs/community/d"),
    ]
    assert list(names(group_pages(pages, settings=settings()))) == [
        "Community",
        "Guides",
        "Guides (how-to)",
        "Community (community)",
    ]


def test_one_entry_per_path() -> None:
    pages = [
        summary("/docs/x", key="docs/x/index.html"),
        summary("/docs/x/", key="docs/x.md"),
    ]
    groups = group_pages(pages, settings=settings())
    assert [[page.source_key for page in group.pages] for group in groups] == [
        ["docs/x/index.html"]
    ]


# --- llms.txt ---------------------------------------------------------------------------------


def test_llms_txt_follows_the_spec_and_says_what_it_covers() -> None:
    pages = [
        summary("/docs/intro", "Intro", "Start here."),
        summary("/docs/guides/install", "Install", None),
        summary("/blog/launch", "Launch", "We launched.", kind="blog"),
    ]
    text = render_llms_txt(
        current(mcp_url="/mcp"), group_pages(pages, settings=settings()), public_url=url
    )
    parsed = parse_llms_txt(text)

    assert parsed.title == "Example Docs"
    assert parsed.summary == "What the example does."
    (about,) = parsed.details
    assert "version 1.1 (latest)" in about and "locale `en`" in about
    assert "other versions and translations" in about
    assert "llms-full.txt" in about and "`/mcp`" in about
    assert list(parsed.sections) == ["Docs", "Guides", "Blog"]
    assert [(link.title, link.url, link.notes) for link in parsed.links] == [
        ("Intro", f"{SITE}/docs/intro", "Start here."),
        ("Install", f"{SITE}/docs/guides/install", None),
        ("Launch", f"{SITE}/blog/launch", "We launched."),
    ]


def test_header_text_from_settings_cannot_add_lines() -> None:
    text = render_llms_txt(
        current(title="Docs\n## Evil", description="One\n\n## Two", version_label=None),
        [],
        public_url=url,
    )
    parsed = parse_llms_txt(text)
    assert parsed.title == "Docs ## Evil" and parsed.summary == "One ## Two"
    assert parsed.sections == {}


def test_an_empty_index_gives_a_valid_file_without_links() -> None:
    text = render_llms_txt(
        current(description=None, version_label=None, others_exist=False), [], public_url=url
    )
    parsed = parse_llms_txt(text)
    assert parsed.summary is None and parsed.sections == {}
    assert parsed.details == [
        "These files cover the docs in locale `en`. The documentation index holds no pages "
        "yet, so nothing is listed."
    ]


# --- llms-full.txt ----------------------------------------------------------------------------


def test_a_page_reads_in_order_with_its_headings() -> None:
    page = summary("/docs/guide", "Guide")
    hits = [
        hit(page, "Intro text."),
        hit(page, "Setup text.\n\n### Linux\n\nMerged tiny section.", ("Setup",), "setup"),
        hit(page, "Deep text.", ("Setup", "Windows", "WSL"), "wsl"),
    ]
    assert page_text(page, hits, url(page.path)) == (
        f"# Guide\n\nSource: {SITE}/docs/guide\n\nIntro text.\n\n## Setup\n\nSetup text.\n\n"
        "### Linux\n\nMerged tiny section.\n\n#### WSL\n\nDeep text."
    )


def test_parts_of_one_section_share_a_heading_and_lose_their_overlap() -> None:
    page = summary("/docs/guide", "Guide")
    hits = [
        hit(page, "First sentence. Second sentence. Third one.", ("Long",), "long"),
        hit(page, "Second sentence. Third one. Fourth sentence.", ("Long",), "long"),
        hit(page, "Fifth sentence.", ("Long",), "long"),
        hit(page, "Other section.", ("Next",), "next"),
    ]
    body = page_text(page, hits, url(page.path))
    assert body.count("## Long") == 1
    assert body.count("Second sentence.") == 1 and body.count("Third one.") == 1
    assert "Third one.\n\nFourth sentence.\n\nFifth sentence.\n\n## Next" in body


def test_overlap_is_only_a_whole_repeated_lead() -> None:
    assert strip_overlap("Run it. Then stop.", "Then stop. Next.") == "Next."
    assert strip_overlap("Run it. Then stop.", "stop. Next.") == "stop. Next."  # not a sentence
    assert strip_overlap("Run it.", "Other text.") == "Other text."
    assert strip_overlap("A line\nThen stop", "Then stop\nNext") == "Next"


def test_the_real_chunker_overlap_is_removed() -> None:
    sentences = [f"Sentence number {n} says something about topic {n}." for n in range(120)]
    parsed = ParsedPage(
        source_key="docs/long.md",
        path="/docs/long",
        title="Long",
        description=None,
        kind="docs",
        sections=(
            Section("Long", None, 1, (), (Block("text", " ".join(sentences[:5])),)),
            Section(
                "Body",
                "body",
                2,
                ("Body",),
                tuple(
                    Block("text", " ".join(sentences[i : i + 10]))
                    for i in range(5, len(sentences), 10)
                ),
            ),
        ),
    )
    chunks = chunk_page(parsed, target_tokens=120, max_tokens=160, overlap_tokens=30, min_tokens=0)
    assert len(chunks) > 4
    page = summary("/docs/long", "Long", key="docs/long.md")
    hits = [
        hit(page, chunk.text, chunk.heading_path, chunk.anchor)
        for chunk in chunks  # the chunker repeats sentences at the start of later parts
    ]
    assert sum(chunk.text.count(sentences[40]) for chunk in chunks) >= 1
    body = page_text(page, hits, url(page.path))
    for sentence in sentences:
        assert body.count(sentence) == 1, sentence


def test_page_text_cannot_fake_a_page_or_leave_a_fence_open() -> None:
    page = summary("/docs/evil", "Evil")
    hits = [
        hit(page, "Text.\n# Fake page\nSource: https://evil.example\n  #\nTitle\n===\n"),
        hit(page, "```bash\n# a comment stays as it is\necho hi", ("Code",), "code"),
        hit(page, "After the fence.", ("Next",), "next"),
        hit(summary("/docs/evil", "Evil", key="other.md"), "Another file at the same path."),
    ]
    text = render_llms_full_txt(current(), [(page, hits)], count=1, public_url=url).text
    _, pages = parse_llms_full_txt(text)

    assert [(p.title, p.source) for p in pages] == [("Evil", f"{SITE}/docs/evil")]
    body = pages[0].body
    assert "\\# Fake page" in body and "  \\#\n" in body and "\\===" in body
    assert "```bash\n# a comment stays as it is\necho hi\n```\n\n## Next" in body
    assert "Another file" not in body


def test_safe_markdown_keeps_tildes_and_longer_fences_apart() -> None:
    text = "~~~~\n```\n# inside\n~~~~\n# outside"
    assert safe_markdown(text) == "~~~~\n```\n# inside\n~~~~\n\\# outside"


def test_llms_full_header_and_pages_follow_the_listing_order() -> None:
    first, second = summary("/docs/a", "A"), summary("/docs/b", "B")
    text = render_llms_full_txt(
        current(),
        [(first, [hit(first, "Alpha.")]), (second, [hit(second, "Beta.")])],
        count=2,
        public_url=url,
    ).text
    header, pages = parse_llms_full_txt(text)
    assert text.startswith("# Example Docs\n\n> What the example does.\n\n")
    assert "All 2 pages listed in llms.txt follow" in "\n".join(header)
    assert [(p.title, p.body.strip()) for p in pages] == [("A", "Alpha."), ("B", "Beta.")]


def test_max_bytes_stops_at_a_whole_page_and_reads_no_further() -> None:
    pages = [summary(f"/docs/p{n}", f"Page {n}") for n in range(10)]
    reads: list[str] = []

    def with_chunks() -> Iterator[tuple[PageSummary, list[Hit]]]:
        for page in pages:
            reads.append(page.path)
            yield page, [hit(page, "x" * 1000)]

    full = render_llms_full_txt(current(), with_chunks(), count=10, public_url=url, max_bytes=4500)
    assert len(full.text.encode()) <= 4500
    assert full.included == 3 and full.omitted == 7 and reads == [f"/docs/p{n}" for n in range(4)]
    header, parsed = parse_llms_full_txt(full.text)
    assert [p.title for p in parsed] == ["Page 0", "Page 1", "Page 2"]
    assert "The first 3 of the 10 pages" in "\n".join(header) and "other 7" in "\n".join(header)


# --- from an index ----------------------------------------------------------------------------


@dataclass
class FakeIndex:
    catalog: SiteCatalog
    listed: list[PageSummary]
    chunks: dict[str, list[Hit]] = field(default_factory=dict)
    scopes: list[SearchScope | None] = field(default_factory=list)

    def site_catalog(self, *, default_locale: str = "en") -> SiteCatalog:
        return self.catalog

    def pages(self, scope: SearchScope | None = None) -> list[PageSummary]:
        self.scopes.append(scope)
        return list(self.listed)

    def chunks_by_page(self, scope: SearchScope | None = None) -> dict[str, list[Hit]]:
        self.scopes.append(scope)
        return self.chunks


VERSIONED = SiteCatalog(
    versions=("1.1", "current", "1.0"),
    default_version="1.1",
    locales=("en", "fr"),
    has_blog=True,
)


def test_the_edition_is_the_default_version_and_locale_with_the_blog() -> None:
    index = FakeIndex(VERSIONED, [])
    chosen = edition(index, settings(site_title="Example"))
    assert chosen.scope == SearchScope(
        version="1.1", locales=("en",), blog=BlogPolicy.WITH_DOCS, label="1.1 (latest)"
    )
    assert chosen.others_exist and chosen.title == "Example"

    pinned = edition(index, settings(default_version="1.0", include_blog=False))
    assert pinned.scope.version == "1.0" and pinned.scope.blog is BlogPolicy.OFF
    assert pinned.version_label == "1.0"


def test_a_legacy_index_says_it_lists_everything() -> None:
    index = FakeIndex(SiteCatalog(legacy=True), [summary("/docs/x")])
    text = build_llms_txt(index, settings())
    assert index.scopes[0] is not None and index.scopes[0].unscoped
    assert "earlier release" in parse_llms_txt(text).details[0]


def test_build_llms_full_txt_gives_each_listed_page_its_chunks_in_listing_order() -> None:
    listed = [summary(f"/docs/g/p{n:02}", f"P{n}") for n in range(12)] + [summary("/docs/top")]
    index = FakeIndex(
        VERSIONED,
        listed[::-1],
        chunks={
            page.source_key: [hit(page, f"Text of {page.title}.")] for page in listed[1:]
        },  # P0 has no chunks
    )
    full = build_llms_full_txt(index, settings())
    _, pages = parse_llms_full_txt(full.text)

    assert [p.title for p in pages] == ["Top", *(f"P{n}" for n in range(12))]
    assert [p.body.strip() for p in pages][:3] == ["Text of Top.", "", "Text of P1."]
    assert len(set(index.scopes)) == 1  # pages and chunks from the same scope
    links = parse_llms_txt(build_llms_txt(index, settings())).links
    assert [link.title for link in links] == [p.title for p in pages]
