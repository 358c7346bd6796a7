"""Ranking after fusion: the parts of a section become one source, a chunk of several tiny
sections cites the one the question is about, and pages share the places (`merge_section_parts`,
`cite_best_section`, `diversify_pages`)."""

from __future__ import annotations

from docsrag.models import Hit
from docsrag.retrieval import cite_best_section, diversify_pages, merge_section_parts
from docsrag.sparse import BM25Encoder


def hit(page: str, anchor: str | None, index: int = 0, text: str = "") -> Hit:
    return Hit(
        chunk_id=f"{page}-{index}",
        source_key=f"{page}.md",
        path=f"/docs/{page}",
        page_title=page.title(),
        heading_path=(),
        anchor=anchor,
        text=text or f"{page} {anchor} part {index}",
        score=1.0,
        chunk_index=index,
    )


def test_the_parts_of_a_section_become_one_source_at_the_best_parts_place() -> None:
    # GIVEN the second and first parts of one section found at ranks 1 and 3, with the end of
    # the first part repeated at the start of the second (chunk overlap)
    first = hit(
        "cli",
        "options",
        4,
        "The port option sets the port. It defaults to 3000 unless PORT is set.",
    )
    second = hit(
        "cli",
        "options",
        5,
        "It defaults to 3000 unless PORT is set. Use --host to listen elsewhere.",
    )
    hits = [second, hit("deploy", "netlify"), first, hit("cli", "build", 7)]

    merged = merge_section_parts(hits)

    # THEN the section is cited once, first, with its text in reading order, the repeat once
    assert [(h.path, h.anchor) for h in merged] == [
        ("/docs/cli", "options"),
        ("/docs/deploy", "netlify"),
        ("/docs/cli", "build"),
    ]
    assert merged[0].text == (
        "The port option sets the port. It defaults to 3000 unless PORT is set. "
        "Use --host to listen elsewhere."
    )


def test_parts_that_are_not_adjacent_are_marked_as_a_gap() -> None:
    hits = [hit("cli", "options", 9, "Later."), hit("cli", "options", 4, "Earlier.")]

    (merged,) = merge_section_parts(hits)

    assert merged.text == "Earlier.\n\n[…]\n\nLater."


def test_a_page_that_ranks_clear_keeps_its_fourth_section() -> None:
    # GIVEN four sections of one page ranked first, then other pages
    hits = [hit("ingest", f"s{i}", i) for i in range(4)]
    hits += [hit("faq", "a"), hit("cli", "b")]

    kept = diversify_pages(hits, top_k=6, penalty=1.0)

    # THEN every section is kept (a hard cap of two per page dropped the third and fourth),
    # and the other pages' best matches come before the page's fourth
    assert {h.anchor for h in kept} == {"s0", "s1", "s2", "s3", "a", "b"}
    assert [h.anchor for h in kept] == ["s0", "s1", "s2", "a", "b", "s3"]


def test_without_diversity_the_fused_order_stays() -> None:
    hits = [hit("ingest", f"s{i}", i) for i in range(4)] + [hit("faq", "a")]

    kept = diversify_pages(hits, top_k=3, penalty=0.0)

    assert [h.anchor for h in kept] == ["s0", "s1", "s2"]


def _terms(text: str) -> set[str]:
    return set(BM25Encoder().tokenize(text))


def test_a_chunk_of_tiny_sections_cites_the_one_the_question_is_about() -> None:
    # GIVEN a chunk that joined a one-line lead-in and the subsection after it
    joined = Hit(
        chunk_id="c",
        source_key="pages.md",
        path="/docs/pages",
        page_title="Pages",
        heading_path=("i18n",),
        anchor="i18n",
        anchors=("i18n", "translation-files-location"),
        text="Read the i18n introduction first.\n\n### Translation files location\n\n"
        "- Base path: website/i18n/[locale]/docusaurus-plugin-content-pages",
        score=1.0,
    )
    encoder = BM25Encoder()

    # WHEN the question is about where translation files go
    cited = cite_best_section(joined, _terms("where do translation files go"), encoder.tokenize)

    # THEN the link lands on that subsection, with its heading path
    assert cited.anchor == "translation-files-location"
    assert cited.anchors == ("translation-files-location", "i18n")
    assert cited.heading_path == ("i18n", "Translation files location")
    # and a question about the lead keeps the first anchor
    lead = cite_best_section(joined, _terms("read the introduction"), encoder.tokenize)
    assert lead.anchor == "i18n"


def test_headings_inside_code_blocks_are_not_sections() -> None:
    # GIVEN a chunk covering two sections whose first one shows Markdown with a heading in it
    text = (
        "Write a doc:\n\n```md\n## Greeting\n\nHello\n```\n\n## Front matter\n\n"
        "Set the sidebar label in front matter."
    )
    joined = Hit(
        chunk_id="c",
        source_key="docs.md",
        path="/docs/create-doc",
        page_title="Create a doc",
        heading_path=(),
        anchor=None,
        anchors=(None, "front-matter"),
        text=text,
        score=1.0,
    )

    cited = cite_best_section(joined, _terms("sidebar label front matter"), BM25Encoder().tokenize)

    assert cited.anchor == "front-matter"
    assert cited.heading_path == ("Front matter",)
