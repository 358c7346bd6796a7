"""The docs as `llms.txt` and `llms-full.txt` (https://llmstxt.org) for coding assistants.

Both files are built from the index, for ONE edition of the site: the default docs version (the
one questions without a clue are answered from: `DEFAULT_VERSION`, else the version served at
`/docs/`) in the default locale, plus the blog (unless `INCLUDE_BLOG=false`) and the site's other
pages. Older versions, the unreleased docs and translations are left out: an assistant reading
the file should not mix `1.0` and `1.1` instructions.

`llms.txt`, as the spec lays it out:

    # {SITE_TITLE}

    > {SITE_DESCRIPTION}

    One paragraph: which version and locale, where the full text is, the MCP server.

    ## Docs                    top-level docs pages (`/docs/intro`)
    - [Title](https://site/docs/intro): description
    ## Guides                  one section per first path segment under the docs route
    ...
    ## Blog                    blog posts
    ## Optional                the site's other pages (`src/pages/`): skippable, per the spec

`llms-full.txt` has the same header, then every listed page in the same order: `# Title`, a
`Source: URL` line, and the page's indexed text in reading order with its section headings as
`##`..`######` headings. Level-1 headings only ever start a page: a body line that would read as
one (`# x`, or a setext `===` underline) is escaped, and a code fence left open by a chunk is
closed before the next heading, so a page's text cannot fake or swallow a page boundary.

Titles, descriptions and text come from the docs, which are not trusted: every title and
description is squashed onto one line, link text escapes `\\ [ ] ( )` and link URLs
percent-encode parentheses, so no page can break the list structure of `llms.txt`. Everything is
plain text (no HTML is produced or expected).

`llms-full.txt` has no size limit by default (`docsrag export-llms-txt` writes it whole); the API
passes `max_bytes` (`FULL_TEXT_MAX_BYTES`) to stay inside a Lambda response: pages then stop at
the first one that does not fit, and the header says how many were left out.

Pure domain: the index is anything with `site_catalog`, `pages` and `chunks_by_page`
(`DocsIndex`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from docsrag.config import Settings
from docsrag.models import CURRENT_VERSION, DEFAULT_PLUGIN, Hit, PageSummary
from docsrag.scope import NEXT_SEGMENT, BlogPolicy, SearchScope, SiteCatalog, resolve_scope

LLMS_TXT: Final = "llms.txt"
LLMS_FULL_TXT: Final = "llms-full.txt"
# The API's limit for llms-full.txt, in UTF-8 bytes. A Lambda response is at most 6 MB, and its
# JSON envelope may write a 2-byte character as a 6-byte \\uXXXX: at worst 3x the UTF-8.
FULL_TEXT_MAX_BYTES: Final = 1_900_000

TOP_LEVEL_SECTION: Final = "Docs"
BLOG_SECTION: Final = "Blog"
OPTIONAL_SECTION: Final = "Optional"  # the spec's section of URLs a reader may skip
_RESERVED_SECTIONS = {name.lower() for name in (TOP_LEVEL_SECTION, BLOG_SECTION, OPTIONAL_SECTION)}

MAX_TITLE_CHARS: Final = 200
MAX_DESCRIPTION_CHARS: Final = 500

_LINK_TEXT_SPECIALS = re.compile(r"([\\\[\]()])")
_WORD_SEPARATORS = re.compile(r"[-_\s]+")
# Outside code fences, lines that Markdown would read as a level-1 heading: ATX (`# x`) or a
# setext underline (`===`).
_H1_LINE = re.compile(r"^ {0,3}(?:#(?:[ \t]|$)|=+[ \t]*$)")
_FENCE_OPEN = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
_WHITESPACE = re.compile(r"\s+")
# What precedes a sentence or line the chunker repeats: nothing, a line break, or the end of a
# sentence (the chunker's own sentence boundary, `docsrag.chunking._SENTENCE_SEP_RE`).
_SENTENCE_START = re.compile(r"(?:\A|\n[ \t]*|[.!?][\"')\]]?[ \t]+)\Z")
# The chunker's overlap is at most CHUNK_OVERLAP_TOKENS (<= 1000) tokens of whole sentences.
_MAX_OVERLAP_CHARS = 12_000


class PageSource(Protocol):
    """What the files are built from (`docsrag.index.DocsIndex`)."""

    def site_catalog(self, *, default_locale: str = "en") -> SiteCatalog: ...

    def pages(self, scope: SearchScope | None = None) -> list[PageSummary]: ...

    def chunks_by_page(self, scope: SearchScope | None = None) -> dict[str, list[Hit]]: ...


@dataclass(frozen=True, slots=True)
class Edition:
    """The part of the site the files describe, and what their header says about it."""

    scope: SearchScope
    title: str
    description: str | None
    version_label: str | None  # `1.1 (latest)`; None on a site with one docs version
    locale: str
    others_exist: bool  # the site has other docs versions or locales, not listed here
    mcp_url: str | None = None  # absolute URL, or a path on the host serving the file (`/mcp`)


@dataclass(frozen=True, slots=True)
class PageGroup:
    """One H2 section of llms.txt."""

    name: str
    pages: tuple[PageSummary, ...]


@dataclass(frozen=True, slots=True)
class FullText:
    """llms-full.txt and what went into it."""

    text: str
    pages: int  # pages listed in llms.txt
    included: int  # pages whose text is in the file (fewer when `max_bytes` cut it short)

    @property
    def omitted(self) -> int:
        return self.pages - self.included


# --- From the index -------------------------------------------------------------------------------


def edition(index: PageSource, settings: Settings, *, mcp_url: str | None = None) -> Edition:
    """The default docs version in the default locale, with the blog unless INCLUDE_BLOG=false."""
    catalog = index.site_catalog(default_locale=settings.default_locale)
    resolved = resolve_scope(
        catalog=catalog,
        question="",
        site_url=settings.site_url,
        default_version=settings.default_version,
        docs_route_base_path=settings.docs_route_base_path,
    )
    locale = resolved.locale  # the catalog's default locale: DEFAULT_LOCALE when it has pages
    scope = SearchScope(
        version=resolved.version,
        locales=(locale,),
        blog=BlogPolicy.WITH_DOCS if settings.include_blog else BlogPolicy.OFF,
        label=resolved.label,
        source="default",
        unscoped=resolved.unscoped,
    )
    return Edition(
        scope=scope,
        title=settings.site_title,
        description=settings.site_description,
        version_label=resolved.label,
        locale=locale,
        others_exist=catalog.versioned or len(catalog.locales) > 1,
        mcp_url=mcp_url,
    )


def build_llms_txt(index: PageSource, settings: Settings, *, mcp_url: str | None = None) -> str:
    """llms.txt for the site's default edition (a header and no links for an empty index)."""
    current = edition(index, settings, mcp_url=mcp_url)
    groups = group_pages(index.pages(current.scope), settings=settings)
    return render_llms_txt(current, groups, public_url=settings.public_url)


def build_llms_full_txt(
    index: PageSource,
    settings: Settings,
    *,
    mcp_url: str | None = None,
    max_bytes: int | None = None,
) -> FullText:
    """llms-full.txt for the site's default edition: the pages llms.txt lists, in its order,
    with their chunks (one read of the edition's chunks)."""
    current = edition(index, settings, mcp_url=mcp_url)
    groups = group_pages(index.pages(current.scope), settings=settings)
    pages = [page for group in groups for page in group.pages]
    chunks = index.chunks_by_page(current.scope) if pages else {}
    return render_llms_full_txt(
        current,
        ((page, chunks.get(page.source_key, [])) for page in pages),
        count=len(pages),
        public_url=settings.public_url,
        max_bytes=max_bytes,
    )


# --- Grouping -------------------------------------------------------------------------------------


def group_pages(pages: Iterable[PageSummary], *, settings: Settings) -> list[PageGroup]:
    """Docs pages by their first path segment under the docs route (top-level ones in `Docs`,
    first), other docs plugins by their route, then `Blog`, then the site's other pages in
    `Optional`. Pages keep path order inside a group; a page at a group's own path (its category
    index) leads it and names it. One entry per path."""
    route = [segment for segment in settings.docs_route_base_path.split("/") if segment]
    top: list[PageSummary] = []
    groups: dict[tuple[int, str], list[PageSummary]] = {}
    index_pages: dict[tuple[int, str], PageSummary] = {}
    singles: list[tuple[tuple[int, str], PageSummary]] = []
    blog: list[PageSummary] = []
    other: list[PageSummary] = []
    seen: set[str] = set()
    for page in sorted(pages, key=lambda p: (p.path, p.source_key)):
        path = page.path.rstrip("/") or "/"
        if path in seen:
            continue
        seen.add(path)
        if page.meta.kind == "blog":
            blog.append(page)
        elif page.meta.kind != "docs":
            other.append(page)
        elif page.meta.plugin != DEFAULT_PLUGIN:
            segments = _segments(path)
            key = (1, segments[0] if segments else "")
            if len(segments) == 1:
                index_pages.setdefault(key, page)
            else:
                groups.setdefault(key, []).append(page)
        else:
            rest = _under_docs_route(page, route)
            if len(rest) >= 2:
                groups.setdefault((0, rest[0]), []).append(page)
            elif len(rest) == 1:
                singles.append(((0, rest[0]), page))
            else:
                top.append(page)
    for key, page in singles:  # `/docs/guides` leads `/docs/guides/*`; alone, it is top-level
        if key in groups:
            index_pages.setdefault(key, page)
        else:
            top.append(page)
    for key in index_pages:
        groups.setdefault(key, [])
    top.sort(key=lambda p: p.path)

    result: list[PageGroup] = []
    if top:
        result.append(PageGroup(TOP_LEVEL_SECTION, tuple(top)))
    used = {TOP_LEVEL_SECTION.lower()} if top else set()
    for key in sorted(groups):
        lead = index_pages.get(key)
        members = ([lead] if lead is not None else []) + groups[key]
        name = _group_name(key[1], lead)
        if name.lower() in used:  # two folders titled alike: the folder tells them apart
            name = f"{name} ({one_line(key[1], MAX_TITLE_CHARS)})"
        used.add(name.lower())
        result.append(PageGroup(name, tuple(members)))
    if blog:
        result.append(PageGroup(BLOG_SECTION, tuple(blog)))
    if other:
        result.append(PageGroup(OPTIONAL_SECTION, tuple(other)))
    return result


def _segments(path: str) -> list[str]:
    return [segment for segment in path.split("/") if segment]


def _under_docs_route(page: PageSummary, route: list[str]) -> list[str]:
    """A default-plugin docs page's path below the docs route and its version segment."""
    segments = _segments(page.path)
    if segments[: len(route)] == route:
        segments = segments[len(route) :]
    version = page.meta.version
    if segments and not page.meta.default_version and version is not None:
        names = {version.lower(), NEXT_SEGMENT} if version == CURRENT_VERSION else {version.lower()}
        if segments[0].lower() in names:
            segments = segments[1:]
    return segments


def _group_name(segment: str, lead: PageSummary | None) -> str:
    """The category index page's title, else the segment (`getting-started`: Getting started).
    Never one of the sections with a meaning of their own (`Optional`, `Blog`, `Docs`)."""
    name = one_line(lead.title, MAX_TITLE_CHARS) if lead is not None else ""
    if not name:
        words = one_line(_WORD_SEPARATORS.sub(" ", segment), MAX_TITLE_CHARS)
        name = words[:1].upper() + words[1:] if words else TOP_LEVEL_SECTION
    if name.lower() in _RESERVED_SECTIONS:
        name = f"{name} ({segment or 'docs'})"
    return name


# --- Rendering ------------------------------------------------------------------------------------


def render_llms_txt(
    current: Edition, groups: Sequence[PageGroup], *, public_url: Callable[[str], str]
) -> str:
    """The llms.txt text: header, then one H2 section per group, one link per page."""
    count = sum(len(group.pages) for group in groups)
    lines = _header(current, full=False, pages=count)
    for group in groups:
        lines += ["", f"## {one_line(group.name, MAX_TITLE_CHARS)}", ""]
        lines += [link_item(page, public_url(page.path)) for page in group.pages]
    return "\n".join(lines) + "\n"


def render_llms_full_txt(
    current: Edition,
    pages: Iterable[tuple[PageSummary, Sequence[Hit]]],
    *,
    count: int,
    public_url: Callable[[str], str],
    max_bytes: int | None = None,
) -> FullText:
    """The llms-full.txt text: header, then each of the `count` pages (with its chunks in
    reading order) as `# Title`, `Source: URL` and its text. With `max_bytes`, pages stop at
    the first one that does not fit (later ones are not taken from `pages`) and the header says
    how many were left out."""
    budget = None
    if max_bytes is not None:
        widest = "\n".join(_header(current, full=True, pages=count, omitted=count))
        budget = max_bytes - len(widest.encode()) - 2
    blocks: list[str] = []
    used = 0
    for page, hits in pages:
        block = page_text(page, hits, public_url(page.path))
        size = len(block.encode()) + 2
        if budget is not None and used + size > budget:
            break
        blocks.append(block)
        used += size
    omitted = count - len(blocks)
    header = "\n".join(_header(current, full=True, pages=count, omitted=omitted))
    text = "\n\n".join([header, *blocks]) + "\n"
    return FullText(text=text, pages=count, included=len(blocks))


def page_text(page: PageSummary, hits: Sequence[Hit], url: str) -> str:
    """One page of llms-full.txt: `# Title`, `Source: URL`, then its chunks in reading order,
    each section under its heading (`##` for h2, deeper for nested ones). The parts of a long
    section follow each other without their repeated overlap."""
    title = one_line(page.title, MAX_TITLE_CHARS) or page.path
    lines = [f"# {title}", "", f"Source: {url}"]
    previous: Hit | None = None
    for hit in hits:
        if hit.source_key != page.source_key:
            continue  # another file served at the same path
        text = hit.text
        continues = (
            previous is not None
            and hit.anchor == previous.anchor
            and hit.heading_path == previous.heading_path
        )
        if continues and previous is not None:
            text = strip_overlap(previous.text, text)
        elif hit.heading_path:
            level = min(len(hit.heading_path) + 1, 6)
            heading = one_line(hit.heading_path[-1], MAX_TITLE_CHARS)
            if heading:
                lines += ["", f"{'#' * level} {heading}"]
        body = safe_markdown(text)
        if body:
            lines += ["", body]
        previous = hit
    return "\n".join(lines)


def strip_overlap(previous: str, current: str) -> str:
    """`current` without the lead it repeats from the end of `previous` (the chunker starts a
    long section's next part with the last whole sentences or lines of the part before)."""
    limit = min(len(previous), len(current), _MAX_OVERLAP_CHARS)
    ends = [match.start() for match in _WHITESPACE.finditer(current, 0, limit + 1)]
    for end in reversed(ends):
        lead = current[:end]
        if not lead.strip() or not previous.endswith(lead):
            continue
        if _SENTENCE_START.search(previous[: len(previous) - len(lead)]):
            return current[end:].lstrip()
    return current


def safe_markdown(text: str) -> str:
    """A chunk's text as Markdown that stays inside its page: line breaks normalised, control
    characters dropped, level-1 heading lines escaped outside code fences, and a fence left
    open closed at the end."""
    out: list[str] = []
    fence: str | None = None
    for raw in text.splitlines():
        line = "".join(ch for ch in raw if ch == "\t" or unicodedata.category(ch) != "Cc")
        if fence is not None:
            stripped = line.strip()
            if len(stripped) >= len(fence) and stripped == fence[0] * len(stripped):
                fence = None
        elif (opening := _FENCE_OPEN.match(line)) is not None:
            fence = opening.group(1)
        elif _H1_LINE.match(line):
            indent = len(line) - len(line.lstrip(" "))
            line = f"{line[:indent]}\\{line[indent:]}"
        out.append(line)
    if fence is not None:
        out.append(fence)
    while out and not out[-1].strip():
        out.pop()
    while out and not out[0].strip():
        out.pop(0)
    return "\n".join(line.rstrip() for line in out)


def link_item(page: PageSummary, url: str) -> str:
    """`- [Title](url): description`, on one line whatever the title and description hold."""
    title = one_line(page.title, MAX_TITLE_CHARS) or page.path
    text = _LINK_TEXT_SPECIALS.sub(r"\\\1", title)
    item = f"- [{text}]({link_url(url)})"
    description = one_line(page.description or "", MAX_DESCRIPTION_CHARS)
    return f"{item}: {description}" if description else item


def link_url(url: str) -> str:
    """A URL that cannot end a Markdown link destination early (or start a title in it)."""
    return (
        url.replace("(", "%28").replace(")", "%29").replace(" ", "%20").replace("<", "%3C")
    ).replace(">", "%3E")


def one_line(text: str, limit: int) -> str:
    """`text` on one line: every run of whitespace (line breaks of any kind included) becomes one
    space, control characters go, and text over `limit` characters ends with an ellipsis."""
    cleaned = "".join(ch for ch in text if not _is_control(ch) or ch.isspace())
    squashed = " ".join(cleaned.split())
    if len(squashed) > limit:
        squashed = squashed[: limit - 1].rstrip() + "…"
    return squashed


def _is_control(ch: str) -> bool:
    """Control characters, and the bidi controls that could make a line display as another."""
    return unicodedata.category(ch) == "Cc" or ch in _BIDI_CONTROLS


def _header(current: Edition, *, full: bool, pages: int, omitted: int = 0) -> list[str]:
    lines = [f"# {one_line(current.title, MAX_TITLE_CHARS) or 'Documentation'}"]
    description = one_line(current.description or "", 1000)
    if description:
        lines += ["", f"> {description}"]
    about: list[str] = []
    if current.scope.unscoped:
        about.append(
            "The index was built by an earlier release without version metadata, so pages of "
            "every docs version and language are included; ingest the site again to scope it."
        )
    else:
        version = f" of version {current.version_label}" if current.version_label else ""
        edition_text = f"docs{version} in locale `{one_line(current.locale, 40)}`"
        others = (
            "; other versions and translations of the site are not included"
            if current.others_exist
            else ""
        )
        about.append(f"These files cover the {edition_text}{others}.")
    if pages == 0:
        about.append("The documentation index holds no pages yet, so nothing is listed.")
    elif full and omitted:
        about.append(
            f"The first {pages - omitted} of the {pages} pages listed in llms.txt follow in the "
            "same order, each with its title as a level-1 heading, a Source line with its URL, "
            f"then its text; the other {omitted} are left out to keep this file small enough "
            "to serve, and llms.txt links to them."
        )
    elif full:
        about.append(
            f"All {pages} pages listed in llms.txt follow in the same order, each with its title "
            "as a level-1 heading, a Source line with its URL, then its text."
        )
    else:
        about.append(f"The full text of these {pages} pages is in llms-full.txt beside this file.")
    mcp_url = one_line(current.mcp_url or "", 2000)
    if mcp_url:
        where = f"`{mcp_url}` on the host that serves this file" if mcp_url[0] == "/" else mcp_url
        about.append(
            f"Coding assistants can also search these docs through the MCP server at {where}."
        )
    lines += ["", " ".join(about)]
    return lines
