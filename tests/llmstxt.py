"""Strict readers of llms.txt and llms-full.txt as https://llmstxt.org lays them out, for tests.

llms.txt: an H1 first line (the only required part), then optionally a `>` blockquote summary,
then paragraphs without headings, then H2 sections holding nothing but Markdown link list items
`- [name](url)` or `- [name](url): notes`. Anything else fails the test with the offending line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Link text may hold backslash escapes (`\]`); the URL no space and no bare parenthesis.
LINK_ITEM = re.compile(
    r"^- \[(?P<title>(?:[^\[\]\\\n]|\\.)+)\]\((?P<url>[^()\s<>]+)\)(?:: (?P<notes>\S.*))?$"
)
_ESCAPE = re.compile(r"\\(.)")


@dataclass
class Link:
    title: str  # unescaped
    url: str
    notes: str | None


@dataclass
class LlmsTxt:
    title: str
    summary: str | None
    details: list[str]
    sections: dict[str, list[Link]] = field(default_factory=dict)

    @property
    def links(self) -> list[Link]:
        return [link for links in self.sections.values() for link in links]


def parse_llms_txt(text: str) -> LlmsTxt:
    assert text.endswith("\n"), "the file ends with a newline"
    lines = text.split("\n")[:-1]
    assert lines and re.fullmatch(r"# \S.*", lines[0]), f"first line is not an H1: {lines[:1]}"
    parsed = LlmsTxt(title=lines[0][2:], summary=None, details=[])
    position = 1
    while position < len(lines) and not lines[position].strip():
        position += 1
    if position < len(lines) and lines[position].startswith("> "):
        parsed.summary = lines[position][2:]
        position += 1
    section: list[Link] | None = None
    for line in lines[position:]:
        if not line.strip():
            continue
        if line.startswith("## "):
            name = line[3:]
            assert name.strip() and name not in parsed.sections, f"bad or repeated H2: {line!r}"
            section = parsed.sections[name] = []
            continue
        assert not line.startswith("#"), f"only H1 and H2 headings belong in llms.txt: {line!r}"
        if section is None:
            assert not line.startswith(("- ", "> ")), f"list or quote before any H2: {line!r}"
            parsed.details.append(line)
            continue
        match = LINK_ITEM.match(line)
        assert match is not None, f"not a link list item: {line!r}"
        title = _ESCAPE.sub(r"\1", match.group("title"))
        section.append(Link(title=title, url=match.group("url"), notes=match.group("notes")))
    return parsed


@dataclass
class FullPage:
    title: str
    source: str
    body: str


def parse_llms_full_txt(text: str) -> tuple[list[str], list[FullPage]]:
    """(header lines, pages): every H1 outside a code fence after the first starts a page,
    whose next non-blank line is `Source: URL`."""
    header: list[str] = []
    pages: list[FullPage] = []
    fence: str | None = None
    lines = text.split("\n")
    assert lines[0].startswith("# ")
    for line in lines[1:]:
        opening = re.match(r"^ {0,3}(`{3,}|~{3,})", line)
        stripped = line.strip()
        if fence is not None:
            if len(stripped) >= len(fence) and stripped == fence[0] * len(stripped):
                fence = None
        elif opening:
            fence = opening.group(1)
        elif line.startswith("# "):
            pages.append(FullPage(title=line[2:], source="", body=""))
            continue
        if not pages:
            header.append(line)
            continue
        page = pages[-1]
        if not page.source:
            if not line.strip():
                continue
            assert line.startswith("Source: "), f"page {page.title!r} has no Source line"
            page.source = line.removeprefix("Source: ")
            continue
        page.body += line + "\n"
    assert fence is None, "a code fence is left open at the end"
    return header, pages
