"""Chunking: what gets embedded and cited, and what a reader lands on behind a citation link."""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from docsrag.chunking import chunk_page, count_tokens
from docsrag.models import Block, BlockKind, Chunk, ParsedPage, Section

SIZES = {"target_tokens": 350, "max_tokens": 512, "overlap_tokens": 40, "min_tokens": 40}
AUTO = "<from the heading>"


def section(
    heading: str,
    *blocks: tuple[BlockKind, str],
    anchor: str | None = AUTO,
    level: int = 2,
    path: tuple[str, ...] | None = None,
) -> Section:
    return Section(
        heading=heading,
        anchor=heading.lower().replace(" ", "-") if anchor == AUTO else anchor,
        level=level,
        heading_path=path if path is not None else (heading,),
        blocks=tuple(Block(kind, text) for kind, text in blocks),
    )


def page(*sections: Section) -> ParsedPage:
    return ParsedPage(
        source_key="docs/guide/index.html",
        path="/docs/guide",
        title="Guide",
        description=None,
        kind="docs",
        sections=sections,
    )


def prose(words: int, *, start: int = 0) -> str:
    """Sentences of ten numbered words each: `word0 word1 ... word9. word10 ...`."""
    sentences = []
    for first in range(start, start + words, 10):
        last = min(first + 10, start + words)
        sentences.append(" ".join(f"word{i}" for i in range(first, last)) + ".")
    return " ".join(sentences)


def filler(tokens: int) -> str:
    return " ".join(["lorem"] * tokens)


def fenced(lang: str, lines: Sequence[str]) -> str:
    return "\n".join([f"```{lang}", *lines, "```"])


def chunk(p: ParsedPage, **sizes: int) -> list[Chunk]:
    return chunk_page(p, **{**SIZES, **sizes})


# --- count_tokens ----------------------------------------------------------------------------


def test_count_tokens_counts_words_numbers_and_punctuation() -> None:
    assert count_tokens("") == 0
    assert count_tokens("  \n\t ") == 0
    assert count_tokens("Hello, world!") == 4
    # identifiers cost what BPE makes of them, roughly: parts and the dots between them
    assert count_tokens("docusaurus.config.js") == 5
    # long numbers and long words are several tokens, as in BPE
    assert count_tokens("1234567") == 3
    assert count_tokens("a" * 25) == 3
    # scripts without spaces count per character
    assert count_tokens("日本語") == 3


@given(st.text(max_size=80), st.text(max_size=80))
def test_joining_texts_never_costs_more_tokens_than_the_parts(a: str, b: str) -> None:
    assert count_tokens(a + "\n\n" + b) <= count_tokens(a) + count_tokens(b)
    assert count_tokens(a + b) <= count_tokens(a) + count_tokens(b)


# --- sections and metadata -------------------------------------------------------------------


def test_each_section_that_fits_is_one_chunk_with_its_citation_data() -> None:
    # GIVEN a page with a lead-in and two sections of ordinary size
    lead = section("Guide", ("text", prose(60)), anchor=None, level=1, path=())
    install = section(
        "Install", ("text", prose(60, start=100)), ("code", fenced("bash", ["npm i"]))
    )
    usage = section("Usage", ("list", "- one thing\n- another thing " + prose(50, start=200)))
    # WHEN it is chunked
    chunks = chunk(page(lead, install, usage))
    # THEN each section is a chunk, numbered in page order, linking to its own heading
    assert [c.chunk_index for c in chunks] == [0, 1, 2]
    assert [c.anchor for c in chunks] == [None, "install", "usage"]
    assert [c.anchors for c in chunks] == [(None,), ("install",), ("usage",)]
    assert [c.heading_path for c in chunks] == [(), ("Install",), ("Usage",)]
    assert {(c.source_key, c.path, c.page_title) for c in chunks} == {
        ("docs/guide/index.html", "/docs/guide", "Guide")
    }
    assert chunks[1].text == install.text
    assert chunks[1].embed_text.startswith("Guide > Install\n\n")


def test_page_without_text_gives_no_chunks_and_empty_headings_are_dropped() -> None:
    assert chunk(page()) == []
    # a heading with nothing under it and no subsections: its heading is its text
    (only,) = chunk(page(section("Empty", ("text", "  \n"))))
    assert only.text == "Empty"
    # a heading directly followed by a sub-heading: the child carries it in heading_path
    parent = section("Parent")
    child = section("Child", ("text", prose(60)), level=3, path=("Parent", "Child"))
    chunks = chunk(page(parent, child))
    assert [(c.anchor, c.heading_path) for c in chunks] == [("child", ("Parent", "Child"))]


def test_rejects_inconsistent_sizes() -> None:
    with pytest.raises(ValueError, match="target_tokens"):
        chunk(page(section("A", ("text", "x"))), target_tokens=600, max_tokens=512)


# --- splitting long sections -----------------------------------------------------------------


def test_long_prose_is_split_near_the_target_with_sentence_overlap() -> None:
    # GIVEN one section of prose in one paragraph, several times the target size
    text = prose(600)
    total = count_tokens(text)
    assert 1200 < total < 1300
    chunks = chunk(page(section("Long", ("text", text))))
    # THEN it becomes balanced parts (not 350 + 350 + 350 + a scrap) under the limit,
    # all citing the same heading
    sizes = [count_tokens(c.text) for c in chunks]
    assert len(chunks) == 4
    assert max(sizes) <= 512
    assert min(sizes) >= 0.8 * total / 4
    assert {c.anchors for c in chunks} == {("long",)}
    # AND each part starts with the last whole sentence(s) of the part before it
    for before, after in itertools.pairwise(chunks):
        first_sentence = after.text.split(". ")[0] + "."
        assert before.text.endswith(first_sentence)
        assert 0 < count_tokens(first_sentence) <= 40
        assert first_sentence.startswith("word")  # whole sentences, not cut mid-way


def test_split_happens_at_block_boundaries_and_keeps_code_blocks_whole() -> None:
    # GIVEN prose, a 200-token code block and more prose: too big for one chunk
    code = fenced("ts", [f"const value{i} = load({i});" for i in range(25)])
    assert 150 < count_tokens(code) < 350
    long = section(
        "Config",
        ("text", prose(200)),
        ("code", code),
        ("text", prose(200, start=1000)),
        ("text", prose(150, start=2000)),
    )
    chunks = chunk(page(long))
    assert len(chunks) > 1
    # THEN the code block is in one chunk, intact, and no chunk has a broken fence
    assert sum(code in c.text for c in chunks) == 1
    for c in chunks:
        assert c.text.count("```") % 2 == 0
    # AND code is never repeated as overlap
    assert sum(c.text.count("const value0 ") for c in chunks) == 1


def test_oversized_code_block_is_split_at_lines_and_each_part_is_fenced_again() -> None:
    lines = [f"  server.route('/path{i}', handler{i});" for i in range(120)]
    code = fenced('js title="server.js"', lines)
    assert count_tokens(code) > 512
    chunks = chunk(page(section("Server", ("code", code))))
    assert len(chunks) >= 3
    for c in chunks:
        assert count_tokens(c.text) <= 512
        assert c.text.startswith('```js title="server.js"\n')
        assert c.text.endswith("\n```")
    # every line is there exactly once, in order, none cut in two
    body = [line for c in chunks for line in c.text.split("\n")[1:-1]]
    assert body == lines


def test_code_inside_an_admonition_stays_whole_when_the_admonition_is_split() -> None:
    code = fenced("bash", ["npm run build", "npm run serve"])
    text = f"Tip: {prose(400)}\n{code}\n\n{prose(400, start=1000)}"
    chunks = chunk(page(section("Build", ("admonition", text))))
    assert len(chunks) >= 2
    assert sum(code in c.text for c in chunks) == 1
    for c in chunks:
        assert c.text.count("```") % 2 == 0


def test_oversized_table_is_split_at_rows_with_the_header_repeated() -> None:
    header = "Option | Type | Default | Description"
    rows = [f"option{i} | string | none | Sets option number {i} of the plugin" for i in range(80)]
    chunks = chunk(page(section("Options", ("table", "\n".join([header, *rows])))))
    assert len(chunks) >= 2
    for c in chunks:
        assert c.text.split("\n")[0] == header
        assert count_tokens(c.text) <= 512
    assert [row for c in chunks for row in c.text.split("\n")[1:]] == rows


def test_a_single_run_without_spaces_is_cut_to_fit() -> None:
    blob = "x" * 12 * 900  # 900 estimated tokens without a single space
    chunks = chunk(page(section("Blob", ("text", blob))))
    assert "".join(c.text for c in chunks) == blob
    assert all(count_tokens(c.text) <= 512 for c in chunks)


# --- tiny sections ---------------------------------------------------------------------------


def test_tiny_section_joins_the_next_one_and_the_link_lands_on_its_own_heading() -> None:
    # GIVEN a one-line section followed by a normal one
    intro = section("Before you start", ("text", "You need Node.js 18."))
    setup = section("Setup", ("text", prose(120)))
    chunks = chunk(page(intro, setup))
    # THEN they are one chunk that starts with the tiny section's text and links to it,
    # with the next section's heading kept as a line
    assert len(chunks) == 1
    only = chunks[0]
    assert only.anchor == "before-you-start"
    assert only.heading_path == ("Before you start",)
    assert only.text == f"You need Node.js 18.\n\n## Setup\n\n{prose(120)}"
    # and it is known to hold both sections, so a search for "Setup" finds it
    assert only.anchors == ("before-you-start", "setup")


def test_a_tiny_page_intro_joins_the_first_section_and_the_link_goes_to_the_page_top() -> None:
    # GIVEN a one-sentence intro before the first heading, then a normal section
    intro = section("Math", ("text", "Equations are rendered with KaTeX."), anchor=None, path=())
    usage = section("Usage", ("text", prose(120)))
    chunks = chunk(page(intro, usage))
    # THEN the citation lands on the top of the page, where the cited text starts (title,
    # intro, then the "Usage" heading a line below), and the chunk covers both
    assert len(chunks) == 1
    assert chunks[0].anchor is None
    assert chunks[0].anchors == (None, "usage")
    assert chunks[0].text.startswith("Equations are rendered with KaTeX.\n\n## Usage\n\n")


def test_tiny_last_child_joins_its_previous_sibling_rather_than_the_next_chapter() -> None:
    deploy = section("Deploy", ("text", prose(120)))
    note = section("Note", ("text", "Restart after."), level=3, path=("Deploy", "Note"))
    next_chapter = section("Upgrade", ("text", prose(120, start=500)))
    chunks = chunk(page(deploy, note, next_chapter))
    assert [c.anchor for c in chunks] == ["deploy", "upgrade"]
    assert [c.anchors for c in chunks] == [("deploy", "note"), ("upgrade",)]
    assert chunks[0].text.endswith("\n\n### Note\n\nRestart after.")


def test_tiny_sections_in_a_row_gather_until_they_are_big_enough() -> None:
    tiny = [section(f"Flag {i}", ("text", f"Sets flag number {i}.")) for i in range(12)]
    chunks = chunk(page(*tiny))
    assert len(chunks) < 12
    assert chunks[0].anchor == "flag-0"
    assert all(count_tokens(c.text) >= 40 for c in chunks[:-1])
    assert "## Flag 1\n\nSets flag number 1." in chunks[0].text
    # every flag is covered by exactly one chunk, in page order
    assert [a for c in chunks for a in c.anchors] == [f"flag-{i}" for i in range(12)]


def test_tiny_section_that_fits_nowhere_stays_on_its_own() -> None:
    # sections of 509 tokens: "Short." plus its heading line ("## Tiny") would take 5 more
    big = section("Big", ("text", filler(509)))
    tiny = section("Tiny", ("text", "Short."))
    also_big = section("Also big", ("text", filler(509)))
    chunks = chunk(page(big, tiny, also_big))
    assert [c.anchor for c in chunks] == ["big", "tiny", "also-big"]
    assert [c.anchors for c in chunks] == [("big",), ("tiny",), ("also-big",)]
    assert chunks[1].text == "Short."


def test_a_chunk_made_without_anchors_covers_its_own_anchor() -> None:
    made = Chunk("k.md", "/docs/k", "K", ("Part",), "part", "text", 0)
    assert made.anchors == ("part",)
    with pytest.raises(ValueError, match="anchors must start with the anchor"):
        Chunk("k.md", "/docs/k", "K", ("Part",), "part", "text", 0, anchors=("other", "part"))


# --- invariants on generated pages -----------------------------------------------------------

WORD_RE = re.compile(r"\bk[a-z]+\b")


def _word(n: int) -> str:
    letters = ""
    while True:
        n, rest = divmod(n, 26)
        letters += chr(ord("a") + rest)
        if n == 0:
            return "k" + letters


@st.composite
def pages(draw: st.DrawFn) -> ParsedPage:
    """Pages of sections with prose, lists, tables, code and admonitions holding code.

    Every word is unique (`ka`, `kb`, ...), so "no text lost" can be checked word by word.
    """
    counter = iter(range(10**6))

    def words(count: int) -> str:
        return " ".join(_word(next(counter)) for _ in range(count))

    def sentences() -> str:
        lengths = draw(st.lists(st.integers(1, 30), min_size=1, max_size=12))
        return " ".join(words(n) + "." for n in lengths)

    def block() -> Block:
        kind = draw(st.sampled_from(["text", "list", "table", "code", "admonition"]))
        if kind == "text":
            paragraphs = draw(st.integers(1, 3))
            return Block("text", "\n\n".join(sentences() for _ in range(paragraphs)))
        if kind == "list":
            items = draw(st.lists(st.integers(1, 40), min_size=1, max_size=15))
            return Block("list", "\n".join(f"- {words(n)}" for n in items))
        if kind == "table":
            rows = draw(st.lists(st.integers(1, 6), min_size=2, max_size=25))
            return Block("table", "\n".join(" | ".join(words(n).split()) for n in rows))
        lines = [words(n) for n in draw(st.lists(st.integers(1, 12), min_size=1, max_size=60))]
        if kind == "code":
            return Block("code", fenced(draw(st.sampled_from(["py", "bash", ""])), lines))
        return Block("admonition", f"Note: {sentences()}\n\n{fenced('js', lines)}\n{sentences()}")

    sections = []
    for i in range(draw(st.integers(1, 6))):
        blocks = tuple(block() for _ in range(draw(st.integers(0, 4))))
        level = draw(st.integers(2, 4))
        sections.append(Section(f"Heading {i}", f"h{i}", level, (f"Heading {i}",), blocks))
    return ParsedPage("p.md", "/docs/p", "P", None, "docs", tuple(sections))


@st.composite
def sizes(draw: st.DrawFn) -> dict[str, int]:
    max_tokens = draw(st.integers(24, 400))
    target = draw(st.integers(12, max_tokens))
    return {
        "max_tokens": max_tokens,
        "target_tokens": target,
        "min_tokens": draw(st.integers(0, target)),
        "overlap_tokens": draw(st.integers(0, target - 1)),
    }


def _is_subsequence(needle: list[str], haystack: list[str]) -> bool:
    it = iter(haystack)
    return all(word in it for word in needle)


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(pages(), sizes())
def test_chunking_invariants(p: ParsedPage, chunk_sizes: dict[str, int]) -> None:
    chunks = chunk_page(p, **chunk_sizes)
    limit = chunk_sizes["max_tokens"]

    # chunk_index is 0..n-1, and chunking again gives the same chunks
    assert [c.chunk_index for c in chunks] == list(range(len(chunks)))
    assert chunk_page(p, **chunk_sizes) == chunks

    # no chunk is over the limit
    assert all(count_tokens(c.text) <= limit for c in chunks)

    # no text lost, nothing reordered: the page's words appear, in order, across the chunks
    page_words = [w for s in p.sections for b in s.blocks for w in WORD_RE.findall(b.text)]
    chunk_words = [w for c in chunks for w in WORD_RE.findall(c.text)]
    assert _is_subsequence(page_words, chunk_words)

    # every block that fits is in some chunk verbatim (code blocks intact when they fit)
    for s in p.sections:
        for b in s.blocks:
            if b.text.strip() and count_tokens(b.text) <= limit:
                assert any(b.text.strip() in c.text for c in chunks), b

    # every chunk's code fences are balanced (a cut code block is re-fenced)
    for c in chunks:
        fences = [line for line in c.text.split("\n") if line.startswith("```")]
        assert len(fences) % 2 == 0, c.text

    # each chunk cites a section of the page, the first of those it covers
    anchors = {s.anchor for s in p.sections}
    assert all(c.anchor in anchors and c.anchors[0] == c.anchor for c in chunks)

    # every section with text is covered, and so is a heading with nothing under it and no
    # subsections (its heading is its text); the covered anchors follow the page order
    sections = p.sections
    with_text = [
        s.anchor
        for n, s in enumerate(sections)
        if any(b.text.strip() for b in s.blocks)
        or (s.heading.strip() and (n + 1 == len(sections) or sections[n + 1].level <= s.level))
    ]
    covered = [a for c in chunks for a in c.anchors]
    assert set(covered) == set(with_text)
    order = {anchor: position for position, anchor in enumerate(with_text)}
    positions = [order[a] for a in covered]
    assert positions == sorted(positions)
