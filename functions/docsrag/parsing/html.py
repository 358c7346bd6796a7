"""Docusaurus build HTML -> `ParsedPage`, with selectolax (Lexbor, a real HTML5 parser).

The text is the page's own content only: `div.theme-doc-markdown` (inside the article) for docs,
`#__blog-post-container` for blog posts and `main article` for Markdown pages of the pages
plugin. Navbar, sidebar, breadcrumbs, tables of contents, the doc footer ("Edit this page"),
pagination and the site footer all live outside those elements, so they never reach the text.
Inside the content, heading links (`a.hash-link`, a zero-width space), SVG icons, buttons and
KaTeX's duplicate HTML rendering are dropped.

Blocks (see `docsrag.models.Block`) keep their shape as plain text: code fenced with its
language and file title (` ```js title="docusaurus.config.js" `, lines split on the `<br>` that
Docusaurus puts between `div.token-line`s), tables as `cell | cell` rows, list items as `- `
(ordered lists as `1. `), admonitions led by their kind (`Tip: ...`), `<details>` led by their
summary, block quotes as `> ` lines.

Tabs (`<Tabs>` and the npm/Yarn/pnpm/Bun tabs of `npm2yarn` code blocks): every panel is kept,
the hidden ones included, each led by its tab label (`Apple: This is an apple`, or an `npm:` line
before a code block). The hidden panels are real content a reader reaches with one click ("how
do I install it with pnpm?"), and the repetition they add is small (mostly one-line install
commands). The Markdown parser has only the npm command of an `npm2yarn` block, as written.

Where the page sits (`ParsedPage.meta`, a `PageMeta`) comes from what Docusaurus writes in every
page's head and `<html>` tag:
* kind: which content element was found (docs, blog post, Markdown page);
* plugin: the `plugin-id-<id>` class of `<html>`, else the id in `docusaurus_tag`
  (`docs-<pluginId>-<versionName>`), else `default`;
* locale: `<meta name=docusaurus_locale>`, else `docsearch:language`, else `<html lang>`, else
  the site's default locale;
* version (docs only; None for blog posts and pages): `<meta name=docusaurus_version>`, else
  `docsearch:version`, else the `docs-version-<name>` class, else `docusaurus_tag`, else
  `current`;
* default_version: False when the URL path (key-derived, so relative to the site's baseUrl,
  locale prefix `/<locale>` removed for a non-default locale) has a version segment right after
  the docs route base (`docs_route_base_path`): `/docs/1.0/x`, `/docs/next/x` (= `current`). A
  segment is a version when it is the metadata's version, `next`, or looks like one (`1.0`,
  `v2`, `2.x`, `3.0.0-beta.1`), but not when the doc id starts with it (a docs folder `v2/`
  at `/docs/v2/intro`). When the URL's version disagrees with the metadata, the URL wins (and
  a warning names both). Only that one route base is known: the docs of a second docs plugin
  instance (`/community/...`) always count as their plugin's default version. Blog posts and
  pages are always default;
* doc_id: docs: the `docs-doc-id-<id>` class, else the URL path after the route base and
  version segment; blog posts and pages: the URL path without locale prefix and outer slashes
  (`blog/welcome`, `markdown-page`, empty for the homepage).

Skipped with `UnsupportedDocument` (besides pages without content, see `parse_html`): redirect
stubs (`<meta http-equiv=refresh content="0; url=...">`, as @docusaurus/plugin-client-redirects
writes), noindex pages (`<meta name=robots content="noindex...">`, which Docusaurus writes for
`unlisted` docs and posts) and pages whose `<link rel=canonical>`, on the site's own host, names
another page (a canonical on another host is ignored).

Hidden text is left out: an element with the `hidden` attribute, `aria-hidden="true"` or an
inline style `display: none` / `visibility: hidden` (or `collapse`) is removed with everything in
it, so a page cannot carry text for the model that no reader sees. Two kinds of hidden content
are real content a reader reaches with one click and are kept: inactive tab panels (a
`role=tabpanel` in a tabs container, which Docusaurus renders with `hidden`) and the body of a
collapsed `<details>` (a `display: none` on its direct child, as older Docusaurus versions
render it; content hidden inside either is still removed).

Nesting is bounded: below `MAX_NESTING` levels of blocks, an element's text is kept as one
plain text block (no structure), so a page of thousands of nested elements parses instead of
exhausting Python's recursion limit.

Sections: an `h2`-`h6` with an `id` starts a section whose anchor is that id; the text before the
first one is the lead-in section (`anchor=None`, `heading` = page title). Headings inside an
admonition, `<details>` or list stay in that block as text, and headings without an id
(demo markup, doc cards) are plain text.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import unquote, urlsplit

from selectolax.lexbor import LexborHTMLParser, LexborNode

from docsrag.errors import UnsupportedDocument
from docsrag.models import (
    CURRENT_VERSION,
    DEFAULT_PLUGIN,
    Block,
    BlockKind,
    PageKind,
    PageMeta,
    ParsedPage,
    Section,
)
from docsrag.parsing.keys import key_to_path

logger = logging.getLogger(__name__)

ZERO_WIDTH_SPACE = "\u200b"

_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)

_V2_ADMONITION_PARTS = frozenset({"admonition-heading", "admonition-content", "admonition-icon"})
_HEADING_LEVELS = {"h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
# Removed before reading text. (Nodes are detached, not freed, so nested matches are safe.)
_NOISE_SELECTOR = (
    "a.hash-link, svg, button, script, style, noscript, template, iframe, video, audio, "
    "canvas, object, embed, input, select, textarea, nav"
)
_SKIP_TAGS = frozenset({"-comment", "hr", "br", "img", "link", "meta", "wbr", "source", "track"})
# How deep the walker follows nested blocks before it keeps an element's text flat.
MAX_NESTING = 64
_STYLE_HIDES = re.compile(
    r"(?:^|[;{\s\"',])(?:display\s*:\s*[\"']?none|visibility\s*:\s*[\"']?(?:hidden|collapse))\b",
    re.IGNORECASE,
)
_BLOCK_TAGS = frozenset(
    {
        "p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "dl", "table", "pre",
        "details", "summary", "blockquote", "section", "article", "header", "footer", "figure",
        "figcaption", "main", "aside", "center", "address", "form", "fieldset", "hgroup",
        "picture", "dt", "dd", "li", "tr", "td", "th", "thead", "tbody", "tfoot", "caption",
    }
)  # fmt: skip


_BLOCK_SELECTOR = ", ".join(sorted(_BLOCK_TAGS))


# --- text formats shared with the Markdown parser -------------------------------------------


def _attribute_value(value: str | None) -> str:
    """An HTML or JSX attribute value without quotes and braces: `{true}` -> `true`."""
    return (value or "").strip().strip("{}").strip().strip("\"'").strip().lower()


def hides(attributes: Mapping[str, str | None]) -> bool:
    """Whether an element with these attributes (HTML, or JSX in MDX) is hidden from readers:
    `hidden` (not `hidden={false}`), `aria-hidden="true"`, or an inline style with
    `display: none` / `visibility: hidden|collapse` (`style={{display: 'none'}}` too)."""
    for name, value in attributes.items():
        lowered = name.lower()
        if lowered == "hidden":
            if _attribute_value(value) != "false":
                return True
        elif lowered == "aria-hidden":
            if _attribute_value(value) == "true":
                return True
        elif lowered == "style" and value and _STYLE_HIDES.search(value):
            return True
    return False


def squash(text: str) -> str:
    """Collapse whitespace runs to one space and drop zero-width spaces."""
    if ZERO_WIDTH_SPACE in text:
        text = text.replace(ZERO_WIDTH_SPACE, "")
    return " ".join(text.split())


def code_block_text(code: str, *, language: str | None, title: str | None = None) -> str:
    """A fenced code block; the fence grows when the code itself holds a fence."""
    fence = "```"
    while fence in code:
        fence += "`"
    info = language or ""
    if title:
        info = f'{info} title="{title}"'.strip()
    return f"{fence}{info}\n{code}\n{fence}"


def admonition_text(kind: str, title: str, body: str) -> str:
    """`Tip: body`, or `Warning: Custom title` then the body on the next line."""
    kind = kind.strip().lower() or "note"
    label = kind.capitalize()
    title = squash(title)
    if title and title.lower() != kind:
        return f"{label}: {title}\n{body}" if body else f"{label}: {title}"
    if not body:
        return f"{label}:"
    separator = "\n" if body.startswith(("```", "- ", "> ", "1. ")) else " "
    return f"{label}:{separator}{body}"


def details_text(summary: str, body: str) -> str:
    summary = squash(summary)
    if summary and body:
        return f"{summary}\n{body}"
    return summary or body


def quote_text(body: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in body.split("\n"))


def list_item_lines(lead: str, pieces: list[str], nested: list[str]) -> list[str]:
    """One list item: `lead` (indent and marker) before its first piece, later pieces indented
    under it, then the already-indented lines of nested lists."""
    pieces = [piece for piece in pieces if piece]
    if not pieces and not nested:
        return []
    continuation = " " * len(lead)
    lines: list[str] = []
    for index, piece in enumerate(pieces or [""]):
        for number, line in enumerate(piece.split("\n")):
            if index == 0 and number == 0:
                lines.append(f"{lead}{line}".rstrip())
            else:
                lines.append(continuation + line if line else "")
    lines.extend(nested)
    return lines


def tab_label_text(label: str) -> str:
    return f"{squash(label)}:"


# --- sections -------------------------------------------------------------------------------


class BlockSink(Protocol):
    def add(self, block: Block) -> None: ...

    def heading(self, level: int, text: str, anchor: str | None) -> None: ...


class SectionBuilder:
    """Collects blocks into `Section`s as headings arrive (shared by the HTML and Markdown parsers).

    The lead-in (blocks before the first heading) becomes a section with `anchor=None`, level 1
    and the page title as heading; it is left out when empty. `heading_path` runs from the h2
    down to the current heading. Heading-only sections are kept: their anchor is a citable
    target and their heading shows in `heading_path`.
    """

    def __init__(self, title: str) -> None:
        self._sections: list[Section] = []
        self._trail: list[tuple[int, str]] = []
        self._heading = title
        self._anchor: str | None = None
        self._level = 1
        self._path: tuple[str, ...] = ()
        self._blocks: list[Block] = []
        self._lead_in = True

    def add(self, block: Block) -> None:
        if block.text:
            self._blocks.append(block)

    def heading(self, level: int, text: str, anchor: str | None) -> None:
        self._flush()
        text = text or anchor or ""
        while self._trail and self._trail[-1][0] >= level:
            self._trail.pop()
        self._trail.append((level, text))
        self._heading = text
        self._anchor = anchor
        self._level = level
        self._path = tuple(heading for _, heading in self._trail)
        self._lead_in = False

    def build(self) -> tuple[Section, ...]:
        self._flush()
        return tuple(self._sections)

    def _flush(self) -> None:
        if self._lead_in and not self._blocks:
            return
        self._sections.append(
            Section(
                heading=self._heading,
                anchor=self._anchor,
                level=self._level,
                heading_path=self._path,
                blocks=tuple(self._blocks),
            )
        )
        self._blocks = []


class BlockList:
    """A sink for content nested in a block (admonition, details, list item): headings stay text."""

    def __init__(self) -> None:
        self.blocks: list[Block] = []

    def add(self, block: Block) -> None:
        if block.text:
            self.blocks.append(block)

    def heading(self, level: int, text: str, anchor: str | None) -> None:
        if text:
            self.blocks.append(Block(kind="text", text=text))

    @property
    def text(self) -> str:
        return "\n\n".join(block.text for block in self.blocks)


class LabelledSink:
    """Puts a tab's label before its panel: `Apple: text`, or a `npm:` line before a code block."""

    def __init__(self, sink: BlockSink, label: str) -> None:
        self._sink = sink
        self._label: str | None = tab_label_text(label)

    def add(self, block: Block) -> None:
        if not block.text:
            return
        if self._label is not None:
            label, self._label = self._label, None
            if block.kind == "text":
                block = Block(kind="text", text=f"{label} {block.text}")
            else:
                self._sink.add(Block(kind="text", text=label))
        self._sink.add(block)

    def heading(self, level: int, text: str, anchor: str | None) -> None:
        if self._label is not None:
            self._sink.add(Block(kind="text", text=self._label))
            self._label = None
        self._sink.heading(level, text, anchor)


# --- the walker -------------------------------------------------------------------------------


def _classes(node: LexborNode) -> str:
    return node.attrs.get("class") or ""


def _children(node: LexborNode) -> Iterator[str | LexborNode]:
    """`node`'s children in document order: each run of inline content as one squashed text
    (possibly empty), each block-level child as itself; skipped tags are left out."""
    inline: list[str] = []
    for child in node.iter(include_text=True):
        tag = child.tag
        if tag == "-text":
            inline.append(child.text_content or "")
        elif tag in _SKIP_TAGS:
            continue
        elif tag not in _BLOCK_TAGS and child.css_first(_BLOCK_SELECTOR) is None:
            inline.append(child.text(deep=True))
        else:  # a block, or an inline element holding blocks (`<a><h3>..</h3><p>..</p></a>`)
            if inline:
                yield squash("".join(inline))
                inline = []
            yield child
    if inline:
        yield squash("".join(inline))


class _Walker:
    def __init__(self, *, skip: LexborNode | None) -> None:
        self._skip_id = skip.mem_id if skip is not None else None
        self._depth = 0  # blocks (and lists) being walked, see `MAX_NESTING`

    def walk(self, node: LexborNode, sink: BlockSink) -> None:
        """Emit the blocks and headings of `node`'s children, in document order."""
        for child in _children(node):
            if isinstance(child, str):
                _add(sink, "text", child)
            else:
                self._block(child, sink)

    def render(self, node: LexborNode) -> str:
        """The children of `node` as block texts joined by blank lines (headings become text)."""
        sink = BlockList()
        self.walk(node, sink)
        return sink.text

    def _block(self, node: LexborNode, sink: BlockSink) -> None:
        if self._depth >= MAX_NESTING:
            _add(sink, "text", squash(node.text(deep=True)))
            return
        self._depth += 1
        try:
            self._one_block(node, sink)
        finally:
            self._depth -= 1

    def _one_block(self, node: LexborNode, sink: BlockSink) -> None:
        tag = node.tag
        if tag == "p":
            _add(sink, "text", squash(node.text(deep=True)))
        elif tag in _HEADING_LEVELS:
            text = squash(node.text(deep=True))
            anchor = node.attrs.get("id")
            if anchor:
                sink.heading(_HEADING_LEVELS[tag], text, anchor)
            else:
                _add(sink, "text", text)
        elif tag == "h1":
            if node.mem_id != self._skip_id:
                _add(sink, "text", squash(node.text(deep=True)))
        elif tag in ("ul", "ol"):
            _add(sink, "list", "\n".join(self._list_lines(node, 0)))
        elif tag == "dl":
            _add(sink, "list", "\n".join(self._definition_lines(node)))
        elif tag == "table":
            _add(sink, "table", _table_text(node))
        elif tag == "pre":
            self._code(node, sink)
        elif tag == "details":
            self._details(node, sink)
        elif tag == "blockquote":
            body = self.render(node)
            _add(sink, "quote", quote_text(body) if body else "")
        elif tag == "div":
            classes = _classes(node)
            if "theme-code-block" in classes:
                self._code(node, sink)
            elif "theme-admonition" in classes or "admonition" in classes.split():
                self._admonition(node, classes, sink)
            elif "tabs-container" in classes:
                self._tabs(node, sink)
            else:
                self.walk(node, sink)
        elif tag == "section" and node.css_first('article[class*="docCardListItem"]') is not None:
            _add(sink, "list", _card_list_text(node))
        else:
            self.walk(node, sink)

    def _code(self, node: LexborNode, sink: BlockSink) -> None:
        language = _language(_classes(node))
        title: str | None = None
        for child in node.iter():
            if "codeBlockTitle" in _classes(child):
                title = squash(child.text(deep=True)) or None
                break
        code_node = node if node.tag == "code" else node.css_first("code")
        if code_node is None:
            code_node = node
        if language is None and code_node is not node:
            language = _language(_classes(code_node))
        code = code_node.text(deep=True).strip("\n")
        if code.strip():
            sink.add(Block(kind="code", text=code_block_text(code, language=language, title=title)))

    def _admonition(self, node: LexborNode, classes: str, sink: BlockSink) -> None:
        kind = "note"
        for name in classes.split():
            if name.startswith("theme-admonition-"):  # Docusaurus 3
                kind = name[len("theme-admonition-") :]
                break
            if name.startswith("admonition-") and name not in _V2_ADMONITION_PARTS:  # v2
                kind = name[len("admonition-") :]
        title = ""
        body: str | None = None
        for child in node.iter():
            child_classes = _classes(child)
            if "eading" in child_classes:  # admonitionHeading_* (v3) / admonition-heading (v2)
                title = child.text(deep=True)
            elif "ontent" in child_classes:  # admonitionContent_* / admonition-content
                body = self.render(child)
        if body is None:
            body = self.render(node)
            title = ""
        _add(sink, "admonition", admonition_text(kind, title, body))

    def _details(self, node: LexborNode, sink: BlockSink) -> None:
        summary = ""
        for child in node.iter():
            if child.tag == "summary":
                summary = child.text(deep=True)
                child.remove()
                break
        _add(sink, "details", details_text(summary, self.render(node)))

    def _tabs(self, node: LexborNode, sink: BlockSink) -> None:
        labels: list[str] = []
        panels: list[LexborNode] = []
        for child in node.iter():
            if child.attrs.get("role") == "tabpanel":
                panels.append(child)
            elif child.tag == "ul":
                labels = [li.text(deep=True) for li in child.iter() if li.tag == "li"]
            else:
                panels.extend(p for p in child.iter() if p.attrs.get("role") == "tabpanel")
        for index, panel in enumerate(panels):
            label = squash(labels[index]) if index < len(labels) else ""
            self.walk(panel, LabelledSink(sink, label) if label else sink)

    def _list_lines(self, node: LexborNode, depth: int) -> list[str]:
        if self._depth >= MAX_NESTING:
            text = squash(node.text(deep=True))
            return [f"{'  ' * depth}- {text}"] if text else []
        self._depth += 1
        try:
            return self._list_item_lines(node, depth)
        finally:
            self._depth -= 1

    def _list_item_lines(self, node: LexborNode, depth: int) -> list[str]:
        ordered = node.tag == "ol"
        start = node.attrs.get("start") if ordered else None
        number = int(start) if start and start.isdigit() else 1
        indent = "  " * depth
        lines: list[str] = []
        for item in node.iter():
            if item.tag != "li":
                continue
            marker = f"{number}. " if ordered else "- "
            number += 1
            pieces: list[str] = []  # item text, then nested blocks (already indented)
            nested: list[str] = []
            for child in _children(item):
                if isinstance(child, str):
                    pieces.append(child)
                elif child.tag in ("ul", "ol"):
                    nested.extend(self._list_lines(child, depth + 1))
                else:
                    sink = BlockList()
                    self._block(child, sink)
                    pieces.extend(block.text for block in sink.blocks)
            lines.extend(list_item_lines(indent + marker, pieces, nested))
        return lines

    def _definition_lines(self, node: LexborNode) -> list[str]:
        lines: list[str] = []
        for child in node.iter():
            text = squash(child.text(deep=True))
            if not text:
                continue
            if child.tag == "dt":
                lines.append(f"- {text}")
            elif child.tag == "dd":
                if lines:
                    lines[-1] = f"{lines[-1]}: {text}"
                else:
                    lines.append(f"- {text}")
        return lines


def _add(sink: BlockSink, kind: BlockKind, text: str) -> None:
    if text:
        sink.add(Block(kind=kind, text=text))


def _language(classes: str) -> str | None:
    for name in classes.split():
        if name.startswith("language-") and len(name) > len("language-"):
            return name[len("language-") :]
    return None


def _table_text(node: LexborNode) -> str:
    rows: list[str] = []
    for row in node.css("tr"):
        cells = [squash(cell.text(deep=True)) for cell in row.iter() if cell.tag in ("td", "th")]
        if any(cells):
            rows.append(" | ".join(cells).rstrip())
    return "\n".join(rows)


def _card_list_text(node: LexborNode) -> str:
    """`DocCardList` cards (links to child docs): `- Title: description`."""
    lines: list[str] = []
    for card in node.css('article[class*="docCardListItem"]'):
        heading = card.css_first("h2")
        if heading is None:
            continue
        title = heading.attrs.get("title") or squash(heading.text(deep=True))
        paragraph = card.css_first("p")
        description = ""
        if paragraph is not None:
            description = paragraph.attrs.get("title") or squash(paragraph.text(deep=True))
        lines.append(f"- {title}: {description}" if description else f"- {title}")
    return "\n".join(lines)


# --- page-level --------------------------------------------------------------------------------


def _find_content(tree: LexborHTMLParser, source_key: str) -> tuple[LexborNode, PageKind]:
    content = tree.css_first("div.theme-doc-markdown")
    if content is not None:
        return content, "docs"
    content = tree.css_first("#__blog-post-container")
    if content is not None:
        return content, "blog"
    html_classes = _classes(tree.root) if tree.root is not None else ""
    if "mdx-page" in html_classes.split() or tree.css_first('[class*="mdxPageWrapper"]'):
        content = tree.css_first("main article")
        if content is not None:
            return content, "page"
    if tree.css_first('main[class*="docMainContainer"]') is not None:
        reason = "generated index page (a list of links, no content of its own)"
    elif "blog-wrapper" in html_classes:
        reason = "blog listing page"
    else:
        reason = "no article content (not a doc, blog post or Markdown page)"
    raise UnsupportedDocument(f"{source_key}: {reason}")


def _head_title(tree: LexborHTMLParser) -> str:
    node = tree.css_first("head title")
    if node is None:
        return ""
    title = squash(node.text(deep=True))
    # "<doc title> | <site title>": keep the doc's own part.
    return title.rsplit(" | ", 1)[0] if " | " in title else title


def _meta_description(tree: LexborHTMLParser) -> str | None:
    node = tree.css_first('meta[name="description"]')
    if node is None:
        return None
    return squash(node.attrs.get("content") or "") or None


def page_path(source_key: str, canonical: str | None, *, site_url: str) -> str:
    """URL path from the file path; the canonical URL only decides a folder page's trailing `/`.

    The canonical link is used only when it is on the site's own host (a page can point its
    canonical at another site) and names the same page.
    """
    path = key_to_path(source_key)
    canonical_path = _canonical_site_path(canonical, site_url=site_url)
    if (
        canonical_path is not None
        and canonical_path.endswith("/")
        and canonical_path.rstrip("/") == path.rstrip("/")
    ):
        return canonical_path
    return path


def _canonical_site_path(canonical: str | None, *, site_url: str) -> str | None:
    """The canonical URL's path relative to the site (its base path removed), URL-decoded.

    None when there is no canonical, or it is on another host or outside the site's base path:
    such a canonical says nothing about this site's pages.
    """
    if not canonical or not canonical.strip():
        return None
    canon = urlsplit(canonical.strip())
    site = urlsplit(site_url)
    if canon.netloc.lower() != site.netloc.lower():
        return None
    canonical_path = unquote(canon.path) or "/"
    base = site.path.rstrip("/")
    if base:
        if canonical_path in (base, base + "/"):
            return "/"
        if not canonical_path.startswith(base + "/"):
            return None
        canonical_path = canonical_path[len(base) :]
    return canonical_path


def _clean(content: LexborNode, raw_html: str) -> None:
    """Drop what is not text: KaTeX's HTML twin (keep the TeX), icons, buttons, heading links."""
    if "katex" in raw_html:
        for math in content.css("span.katex"):
            annotation = math.css_first("annotation")
            tex = annotation.text(deep=True) if annotation is not None else math.text(deep=True)
            parent = math.parent
            display = parent is not None and "katex-display" in _classes(parent)
            math.replace_with(f"$${tex.strip()}$$" if display else f"${tex.strip()}$")
    if "<img" in raw_html:
        for image in content.css("img"):
            alt = squash(image.attrs.get("alt") or "")
            if alt:
                image.replace_with(alt)
    for node in content.css(_NOISE_SELECTOR):
        node.remove()
    hidden = 0
    for node in content.css("[hidden], [aria-hidden], [style]"):
        if hides(node.attributes) and not _revealable(node):
            node.remove()
            hidden += 1
    if hidden:
        logger.info("left out %d hidden elements", hidden)


def _revealable(node: LexborNode) -> bool:
    """Hidden content a reader reveals with one click: an inactive tab panel of a tabs
    container, or the collapsed body (a direct child) of a `<details>`."""
    parent = node.parent
    if parent is None:
        return False
    if node.attrs.get("role") == "tabpanel":
        grandparent = parent.parent
        return "tabs-container" in _classes(parent) or (
            grandparent is not None and "tabs-container" in _classes(grandparent)
        )
    if parent.tag == "details" and node.tag != "summary":
        # Only a style hides it (Docusaurus's collapsed state), not `hidden`/`aria-hidden`.
        others = {k: v for k, v in node.attributes.items() if k.lower() != "style"}
        return not hides(others)
    return False


# --- what the page is: skip checks and `PageMeta` -----------------------------------------------

# A URL segment that names a docs version: `1.0`, `v2`, `2.x`, `3.0.0-beta.1`.
_VERSION_LIKE = re.compile(r"^v?\d+(\.\d+)*([-.][\w.]+)?$")
_REFRESH_URL = re.compile(r"url\s*=\s*['\"]?([^'\"]+)", re.IGNORECASE)
_NEXT_SEGMENT = "next"  # the URL segment of the `current` (unreleased) docs once versions exist


@dataclass(frozen=True, slots=True)
class _Head:
    """What a page says about itself: `<meta name>`s (first of each, names lower-cased),
    `<meta http-equiv=refresh>`, the canonical link and the `<html>` tag's classes and `lang`."""

    metas: dict[str, str]
    refresh: str | None
    canonical: str | None
    html_classes: tuple[str, ...]
    html_lang: str | None

    def meta(self, *names: str) -> str | None:
        """Content of the first of `names` that is present and not blank."""
        for name in names:
            value = self.metas.get(name, "").strip()
            if value:
                return value
        return None

    def class_value(self, prefix: str) -> str | None:
        """`x` of the first `<html>` class `<prefix>x`."""
        for name in self.html_classes:
            if name.startswith(prefix) and len(name) > len(prefix):
                return name[len(prefix) :]
        return None


def _read_head(tree: LexborHTMLParser) -> _Head:
    metas: dict[str, str] = {}
    refresh: str | None = None
    for node in tree.css("head meta"):  # a `<meta>` in the body (a live demo) says nothing
        attrs = node.attrs
        content = attrs.get("content") or ""
        name = (attrs.get("name") or "").strip().lower()
        if name and name not in metas:
            metas[name] = content
        elif refresh is None and (attrs.get("http-equiv") or "").strip().lower() == "refresh":
            refresh = content
    link = tree.css_first('link[rel="canonical"]')
    canonical = (link.attrs.get("href") or None) if link is not None else None
    root = tree.root
    classes: tuple[str, ...] = ()
    lang: str | None = None
    if root is not None:
        classes = tuple(_classes(root).split())
        lang = (root.attrs.get("lang") or "").strip() or None
    return _Head(metas, refresh, canonical, classes, lang)


def _refuse_non_content(head: _Head, source_key: str, *, site_url: str) -> None:
    """Raise `UnsupportedDocument` for a redirect stub, a noindex page or a page whose canonical
    URL (on this site) is another page: none of them is content to answer from."""
    if head.refresh is not None:
        match = _REFRESH_URL.search(head.refresh)
        if match is not None and match.group(1).strip():
            raise UnsupportedDocument(f"{source_key}: redirect stub (to {match.group(1).strip()})")
    robots = {token.strip().lower() for token in re.split(r"[,\s]+", head.meta("robots") or "")}
    if robots & {"noindex", "none"}:
        raise UnsupportedDocument(f"{source_key}: noindex page")
    # Same page when the paths match up to a trailing `/` or a file name (`/docs/advanced/` for
    # `docs/advanced/index.html`, `/fr/404.html`); a canonical on another host or outside the
    # site's base path is ignored.
    canonical_path = _canonical_site_path(head.canonical, site_url=site_url)
    own = key_to_path(source_key)
    if canonical_path is not None and key_to_path(canonical_path) != own:
        if own != "/" and key_to_path(canonical_path).endswith(own):
            # The same page under a longer base path: SITE_URL lacks the build's `baseUrl`.
            # Keep the page (skipping would empty the index on a configuration slip).
            logger.warning(
                "%s: the canonical URL %s has a base path SITE_URL (%s) lacks; check SITE_URL",
                source_key,
                head.canonical,
                site_url,
            )
            return
        raise UnsupportedDocument(f"{source_key}: canonical URL is another page ({head.canonical})")


def _without_locale(path: str, locale: str, default_locale: str) -> str:
    """`/fr/docs/x` -> `/docs/x` for a `fr` page when `fr` is not the default locale."""
    if locale.lower() == default_locale.lower():
        return path
    prefix = f"/{locale}".lower()
    lowered = path.lower()
    if lowered == prefix or lowered.startswith(prefix + "/"):
        return path[len(prefix) :] or "/"
    return path


def _is_version_segment(
    segment: str, rest: list[str], *, meta_version: str | None, doc_id: str | None
) -> bool:
    """Whether `segment`, the first one after the docs route base, names a version.

    A docs folder named like a version is not one: when the doc id (from the `<html>` class)
    starts with the segment (`v2/intro` at `/docs/v2/intro`), the segment is the doc's folder,
    unless it is repeated (`/docs/next/next/setup`: version `next`, then folder `next`).
    """
    if doc_id is not None and doc_id.split("/", 1)[0] == segment and rest[1:2] != [segment]:
        return False
    return segment in (meta_version, _NEXT_SEGMENT) or _VERSION_LIKE.match(segment) is not None


def _page_meta(
    head: _Head,
    *,
    kind: PageKind,
    path: str,
    source_key: str,
    default_locale: str,
    docs_route_base_path: str,
) -> PageMeta:
    locale = (
        head.meta("docusaurus_locale", "docsearch:language") or head.html_lang or default_locale
    )
    local_path = _without_locale(path, locale, default_locale)
    plugin = head.class_value("plugin-id-")
    if kind != "docs":
        return PageMeta(
            kind=kind,
            plugin=plugin or DEFAULT_PLUGIN,
            version=None,
            default_version=True,
            locale=locale,
            doc_id=local_path.strip("/"),
        )

    meta_version = head.meta("docusaurus_version", "docsearch:version") or head.class_value(
        "docs-version-"
    )
    tag = head.meta("docusaurus_tag", "docsearch:docusaurus_tag") or ""
    if tag.startswith("docs-") and (plugin is None or meta_version is None):
        # `docs-<pluginId>-<versionName>`; both parts may hold `-`, so split on what is known.
        body = tag[len("docs-") :]
        if plugin is not None and body.startswith(plugin + "-"):
            meta_version = body[len(plugin) + 1 :] or None
        elif meta_version is not None and body.endswith("-" + meta_version):
            plugin = body[: -len(meta_version) - 1] or None
        else:
            tag_plugin, _, tag_version = body.rpartition("-")
            plugin = plugin or tag_plugin or None
            meta_version = meta_version or tag_version or None
    doc_id = head.class_value("docs-doc-id-")

    parts = [part for part in local_path.split("/") if part]
    route = [part for part in docs_route_base_path.split("/") if part]
    version = meta_version or CURRENT_VERSION
    default_version = True
    rest: list[str] | None = None
    if parts[: len(route)] == route:
        rest = parts[len(route) :]
        if rest and _is_version_segment(rest[0], rest, meta_version=meta_version, doc_id=doc_id):
            segment, rest = rest[0], rest[1:]
            default_version = False
            if segment != meta_version:
                url_version = CURRENT_VERSION if segment == _NEXT_SEGMENT else segment
                if meta_version is not None and url_version != meta_version:
                    logger.warning(
                        "%s: the URL names docs version %r but the page's metadata says %r; "
                        "using the URL's",
                        source_key,
                        url_version,
                        meta_version,
                    )
                version = url_version
    if doc_id is None:
        doc_id = "/".join(rest if rest is not None else parts)
    return PageMeta(
        kind="docs",
        plugin=plugin or DEFAULT_PLUGIN,
        version=version,
        default_version=default_version,
        locale=locale,
        doc_id=doc_id,
    )


def parse_html(
    source_key: str,
    html: str,
    *,
    site_url: str,
    default_locale: str = "en",
    docs_route_base_path: str = "docs",
) -> ParsedPage:
    """Parse one page of a Docusaurus build.

    `site_url` is the site's public URL with its `baseUrl`; keys are relative to that base.
    `default_locale` is the locale served without a `/<locale>` prefix and
    `docs_route_base_path` the docs plugin's `routeBasePath`, for `ParsedPage.meta`.

    Raises `UnsupportedDocument` for what is not content: redirect stubs, noindex (and
    unlisted) pages, pages whose canonical URL is another page of the site, and pages without
    content of their own (generated-index category pages, blog listings, the 404 page, JSX
    pages without an article).
    """
    html = _BR.sub("\n", html)
    tree = LexborHTMLParser(html)
    head = _read_head(tree)
    _refuse_non_content(head, source_key, site_url=site_url)
    content, kind = _find_content(tree, source_key)

    if kind == "blog":
        title_node = tree.css_first("main article header h1") or tree.css_first("article h1")
    else:
        title_node = content.css_first("h1")
    title = squash(title_node.text(deep=True)) if title_node is not None else ""
    path = page_path(source_key, head.canonical, site_url=site_url)
    title = title or _head_title(tree) or path
    meta = _page_meta(
        head,
        kind=kind,
        path=path,
        source_key=source_key,
        default_locale=default_locale,
        docs_route_base_path=docs_route_base_path,
    )

    _clean(content, html)
    builder = SectionBuilder(title)
    _Walker(skip=title_node).walk(content, builder)
    sections = builder.build()
    logger.debug("parsed %s: %d sections", source_key, len(sections))
    return ParsedPage(
        source_key=source_key,
        path=path,
        title=title,
        description=_meta_description(tree),
        kind=kind,
        sections=sections,
        meta=meta,
    )
