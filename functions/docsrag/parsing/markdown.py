"""Docusaurus Markdown/MDX source -> `ParsedPage`, with the URL, anchors and metadata it gets.

A source is a doc, a blog post or a Markdown page; `parsing.layout` says which, and its version
and locale, and each kind gets its URL by its own plugin's rules (`parsing.keys`).

Front matter comes from python-frontmatter; structure from markdown-it-py (CommonMark, tables,
strikethrough, raw HTML; indented code off, as in MDX). Before parsing, a line pass outside code
fences turns MDX into plain Markdown:

* top-level `import`/`export` statements (ESM, up to the next blank line) are removed;
* `mdx-code-block` fences are unwrapped (their content is MDX, not code);
* lines holding only JSX/HTML tags (`<Tabs>`, `</TabItem>`, `<APITable>`, `<DocCardList />`)
  are removed, so the Markdown between them is parsed normally; `<TabItem label=...>` leaves its
  label, `<details>`/`<summary>` and `:::tip Title` admonitions become `details` and
  `admonition` blocks, and MDX/HTML comments are dropped;
* Docusaurus's code-highlighting magic comments (`// highlight-next-line`) are removed from code;
* GFM tables are cut out and rendered directly (markdown-it's table rule is the slowest part of
  parsing in pure Python); inline Markdown is turned into text by a few regular expressions when
  it is simple (code spans, plain links, emphasis) and by markdown-it's inline parser otherwise.
  Both shortcuts give exactly the text the full parser gives on the test corpora.

Hidden HTML is left out, as in `parsing.html`: an element with `hidden`, `aria-hidden="true"` or
an inline style `display: none` / `visibility: hidden` (HTML or JSX: `style={{display: 'none'}}`)
is dropped with its content, whether it is a block of lines (from its opening tag to its closing
tag), inline in a paragraph, or inside a raw HTML block. Code blocks and code spans are text, not
HTML: an example `<div hidden>` in them stays.

Partials imported from other files (`import Part from './_part.mdx'` then `<Part />`) are not
inlined: their text and headings belong to the partial's own file, which is not a page.

Blocks use the same text formats as `parsing.html`, so a page reads the same whether it came from
the build or from the sources. Heading anchors follow Docusaurus: an explicit `{#custom-id}`
wins (kept as written, camelCase too), otherwise github-slugger over the heading's text, with
every heading of the page (its title `# h1` included) counting towards the `-1`, `-2` suffixes.
"""

from __future__ import annotations

import html as html_lib
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import frontmatter
from markdown_it import MarkdownIt
from markdown_it.token import Token

from docsrag.errors import DocumentError, UnsupportedDocument
from docsrag.models import Block, ParsedPage
from docsrag.parsing.html import (
    BlockList,
    BlockSink,
    SectionBuilder,
    admonition_text,
    code_block_text,
    details_text,
    hides,
    list_item_lines,
    quote_text,
    squash,
    tab_label_text,
)
from docsrag.parsing.keys import (
    blog_file_slug,
    blog_key_to_path,
    markdown_doc_id,
    markdown_key_to_path,
    page_key_to_path,
)
from docsrag.parsing.layout import SourceLocation
from docsrag.parsing.slugger import GithubSlugger

logger = logging.getLogger(__name__)

_MD = (
    MarkdownIt("commonmark", {"html": True})
    .enable(["table", "strikethrough"])
    .disable("code")  # MDX has no indented code blocks; indentation inside JSX is just layout
    .disable("inline")  # inline content is parsed on demand, see `_Tokens.text`
)
# Only text is kept, so links need no URL normalisation or validation.
_MD.normalizeLink = lambda url: url  # type: ignore[method-assign]
_MD.validateLink = lambda url: True  # type: ignore[method-assign]

# Sentinel paragraphs the line pass leaves for the tree walk (private-use characters).
_MARK = "\ue000"
_SEP = "\ue001"
_OPEN_ADMONITION = f"{_MARK}A"
_CLOSE_ADMONITION = f"{_MARK}/A"
_OPEN_DETAILS = f"{_MARK}D"
_CLOSE_DETAILS = f"{_MARK}/D"
_SUMMARY = f"{_MARK}S"
_TAB = f"{_MARK}T"
_TABLE = f"{_MARK}TB"

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_ESM = re.compile(
    r"^(?:import\s*(?:[\w*{'\"]|type\b)|export\s+(?:default\b|const\b|let\b|var\b|function\b|"
    r"async\b|class\b|type\b|interface\b|\{|\*))"
)
_DIRECTIVE = re.compile(r"^(?P<indent>[ \t]*):{3,}\s*(?P<rest>.*?)\s*$")
_DIRECTIVE_NAME = re.compile(r"^(?P<kind>[A-Za-z][\w-]*)\s*(?P<title>.*)$")
_TAG = re.compile(r"<(?P<close>/?)(?P<name>[A-Za-z][\w.-]*)?(?P<attrs>(?:\s[^<>]*?)?)\s*/?>")
_TAG_LINE = re.compile(r"^\s*(?:</?(?:[A-Za-z][\w.-]*)?(?:\s[^<>]*?)?\s*/?>\s*)+$")
_TAG_START = re.compile(r"^\s*<[A-Za-z][\w.-]*(?:\s|$)")
# GFM tables are cut out in the line pass (markdown-it's table rule is slow in Python).
_TABLE_DELIMITER = re.compile(r"^\s*\|?\s*:?-+:?\s*(?:\|\s*:?-+:?\s*)*\|?\s*$")
_CELL_SPLIT = re.compile(r"(?<!\\)\|")
_TABLE_END = ("#", ">", "```", "~~~", "<", ":::", "- ", "* ", "+ ")
_ELEMENT_LINE = re.compile(
    r"^(?P<indent>\s*)<(?P<name>[A-Za-z][\w.-]*)(?P<attrs>\s[^<>]*)?>(?P<text>.*)</(?P=name)>\s*$"
)
_SUMMARY_LINE = re.compile(r"^\s*<summary[^>]*>(?P<text>.*)</summary>\s*$")
_ATTR = re.compile(
    r"""(?P<name>[\w-]+)\s*=\s*(?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)'|\{["'](?P<ex>[^"']*)["']\})"""
)
_MDX_COMMENT = re.compile(r"\{/\*.*?\*/\}")
_CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.DOTALL)
_HTML_TAG = re.compile(r"<[^<>]+>")
_HEADING_ID = re.compile(r"\s*\{#((?:.(?!\{#|\}))*.)\}$")
_CODE_TITLE = re.compile(r"""title=(?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)'|(?P<bare>\S+))""")
_MAGIC_COMMENT = re.compile(
    r"^\s*(?://|#|--|%|<!--|/\*|\{/\*)\s*highlight-(?:next-line|start|end)\s*"
    r"(?:\*/\}|\*/|-->)?\s*$"
)
_SKIPPED_JSX = {"tabs", "tabitem"}
# Attributes of an HTML/JSX tag: `name`, `name="v"`, `name='v'`, `name={v}`, `name={{...}}`.
_ATTR_PAIR = re.compile(
    r"""(?P<name>[^\s=/>"'{}]+)(?:\s*=\s*(?P<value>"[^"]*"|'[^']*'|\{\{.*?\}\}|\{[^{}]*\}|[^\s>"']+))?""",
    re.DOTALL,
)
_HIDDEN_HINT = re.compile(r"hidden|display|visibility", re.IGNORECASE)
# Inline tags that separate words (`y<br/>okapiwren` reads as two words, not `yokapiwren`).
_BREAKING_TAGS = frozenset(
    {"br", "p", "div", "li", "tr", "td", "th", "h1", "h2", "h3", "h4", "h5", "h6", "hr",
     "blockquote", "pre", "table", "ul", "ol", "dt", "dd", "section", "details", "summary"}
)  # fmt: skip


# --- MDX -> Markdown line pass ----------------------------------------------------------------


def _attrs(text: str) -> dict[str, str]:
    return {
        m.group("name"): m.group("dq") or m.group("sq") or m.group("ex") or ""
        for m in _ATTR.finditer(text)
    }


def _sentinel(indent: str, *parts: str) -> list[str]:
    return ["", indent + _SEP.join(parts), ""]


def _tag_line(line: str) -> list[str]:
    """Lines that replace a line of only JSX/HTML tags."""
    indent = line[: len(line) - len(line.lstrip())]
    out: list[str] = [""]
    for match in _TAG.finditer(line):
        name = (match.group("name") or "").lower()
        closing = bool(match.group("close"))
        if name == "details":
            out += _sentinel(indent, _CLOSE_DETAILS if closing else _OPEN_DETAILS)
        elif name == "admonition":
            if closing:
                out += _sentinel(indent, _CLOSE_ADMONITION)
            else:
                attrs = _attrs(match.group("attrs"))
                kind = attrs.get("type", "note")
                out += _sentinel(indent, _OPEN_ADMONITION, kind, attrs.get("title", ""))
        elif name == "img" and not closing:
            alt = _attrs(match.group("attrs")).get("alt", "").strip()
            if alt:
                out += ["", indent + alt, ""]
        elif name == "tabitem" and not closing:
            attrs = _attrs(match.group("attrs"))
            label = attrs.get("label") or attrs.get("value") or ""
            if label:
                out += _sentinel(indent, _TAB, label)
    return out


def _tag_hides(attrs: str | None) -> bool:
    """Whether a tag with these attributes (the text after its name) hides its content."""
    if not attrs or not _HIDDEN_HINT.search(attrs):
        return False
    return hides({m.group("name"): m.group("value") for m in _ATTR_PAIR.finditer(attrs)})


def _drop_hidden(text: str, open_: tuple[str, int] | None) -> tuple[str, tuple[str, int] | None]:
    """`text` without its hidden elements (see the module docstring).

    `open_` is a hidden element still open from earlier text (its tag name and how many of its
    tags with that name are open): text is dropped until it closes. Returns the kept text and
    the hidden element still open at the end (None: none).
    """
    kept: list[str] = []
    position = 0
    for match in _TAG.finditer(text):
        name = (match.group("name") or "").lower()
        self_closing = match.group(0).endswith("/>")
        if open_ is None:
            opening = name and not match.group("close") and not self_closing
            if opening and _tag_hides(match.group("attrs")):
                kept.append(text[position : match.start()])
                open_ = (name, 1)
            continue
        if name != open_[0] or self_closing:
            continue
        depth = open_[1] - 1 if match.group("close") else open_[1] + 1
        open_ = (name, depth) if depth > 0 else None
        if open_ is None:
            position = match.end()
    if open_ is None:
        kept.append(text[position:])
    return "".join(kept), open_


def _strip_mdx_comments(line: str) -> str:
    """Remove `{/* ... */}` comments, but not from code spans."""
    if "`" not in line:
        return _MDX_COMMENT.sub("", line)
    parts = []
    last = 0
    for span in _CODE_SPAN.finditer(line):
        parts.append(_MDX_COMMENT.sub("", line[last : span.start()]))
        parts.append(span.group(0))
        last = span.end()
    parts.append(_MDX_COMMENT.sub("", line[last:]))
    return "".join(parts)


def _table_cells(line: str) -> list[str]:
    line = line.strip()
    if line.startswith("|"):
        line = line[1:]
    if line.endswith("|") and not line.endswith("\\|"):
        line = line[:-1]
    return [cell.strip().replace("\\|", "|") for cell in _CELL_SPLIT.split(line)]


def _take_table(lines: list[str], start: int) -> tuple[list[list[str]], int] | None:
    """A GFM table starting at `lines[start]`: its rows of raw cells and the index after it."""
    header, delimiter = lines[start], lines[start + 1]
    if "|" not in header or not _TABLE_DELIMITER.match(delimiter):
        return None
    if "|" not in delimiter and "|" not in header.strip().strip("|"):
        return None
    columns = len(_table_cells(delimiter))
    head = _table_cells(header)
    if len(head) != columns:
        return None
    rows = [head]
    end = start + 2
    while end < len(lines):
        row = lines[end].strip()
        if not row or row.startswith(_TABLE_END) or (row[0].isdigit() and ". " in row[:6]):
            break
        cells = _table_cells(row)[:columns]
        rows.append(cells + [""] * (columns - len(cells)))
        end += 1
    return rows, end


def _mdx_to_markdown(content: str, tables: list[list[list[str]]] | None = None) -> str:
    """MDX to Markdown (see the module docstring); GFM tables go to `tables`, leaving a marker."""
    out: list[str] = []
    lines = content.replace("\r\n", "\n").split("\n")
    fence: tuple[str, int] | None = None  # an open code fence: (character, length)
    unwrapped: list[tuple[str, int]] = []  # open `mdx-code-block` fences, unwrapped
    in_esm = False
    in_comment: str | None = None  # the end marker of an open multi-line comment
    pending_tag: list[str] | None = None  # a JSX tag spread over several lines
    hidden: tuple[str, int] | None = None  # an open hidden element (see `_drop_hidden`)
    previous_blank = True
    position = -1
    skip_to = 0
    for line in lines:
        position += 1
        if position < skip_to:
            continue
        stripped = line.strip()
        if fence is not None:
            match = _FENCE.match(line) if stripped.startswith(fence[0] * 3) else None
            if (
                match
                and match.group("fence")[0] == fence[0]
                and len(match.group("fence")) >= fence[1]
                and not match.group("info").strip()
            ):
                fence = None
            elif "highlight-" in line and _MAGIC_COMMENT.match(line):
                continue
            out.append(line)
            continue
        if in_comment is not None:
            if in_comment in line:
                in_comment = None
            continue
        if in_esm:
            # ESM runs to the next blank line, or to the end of the `mdx-code-block` holding it.
            closes_unwrapped = (
                bool(unwrapped)
                and len(stripped) >= unwrapped[-1][1]
                and stripped == unwrapped[-1][0] * len(stripped)
            )
            if not stripped or closes_unwrapped:
                in_esm = False
                previous_blank = True
            if not closes_unwrapped:
                continue
        if pending_tag is not None:
            pending_tag.append(line)
            if stripped.endswith(">"):
                tag, hidden = _drop_hidden(" ".join(pending_tag), None)
                out += _tag_line(tag)
                pending_tag = None
                previous_blank = True
            continue
        if hidden is not None or (stripped.startswith("<") and _HIDDEN_HINT.search(line)):
            # A block of raw HTML/JSX: hidden elements go, with every line up to their end.
            kept, still_open = _drop_hidden(line, hidden)
            if hidden is not None or kept != line:
                hidden = still_open
                line, stripped = kept, kept.strip()
                if not stripped or _TAG_LINE.match(line):
                    out += _tag_line(line) if stripped else [""]
                    previous_blank = True
                    continue

        match = _FENCE.match(line) if stripped.startswith(("```", "~~~")) else None
        if match:
            marker = match.group("fence")
            info = match.group("info").strip()
            if (
                unwrapped
                and not info
                and marker[0] == unwrapped[-1][0]
                and len(marker) >= unwrapped[-1][1]
            ):
                unwrapped.pop()
                out.append("")
                previous_blank = True
                continue
            if info.startswith("mdx-code-block"):
                unwrapped.append((marker[0], len(marker)))
                out.append("")
                previous_blank = True
                continue
            if not (marker[0] == "`" and "`" in info):
                fence = (marker[0], len(marker))
            out.append(line)
            previous_blank = False
            continue

        if previous_blank and line[:1] in ("i", "e") and _ESM.match(line):
            in_esm = True
            continue
        if "{/*" in line:
            if stripped.startswith("{/*") and "*/}" not in stripped:
                in_comment = "*/}"
                continue
            line = _strip_mdx_comments(line)
            stripped = line.strip()
            if not stripped:
                continue
        if stripped.startswith("<!--"):
            if "-->" not in stripped:
                in_comment = "-->"
                continue
            if stripped.endswith("-->") and stripped.count("<!--") == 1:
                continue
        if stripped.startswith(":::"):
            directive = _DIRECTIVE.match(line)
            if directive:
                indent, rest = directive.group("indent"), directive.group("rest")
                if not rest:
                    out += _sentinel(indent, _CLOSE_ADMONITION)
                    previous_blank = True
                    continue
                named = _DIRECTIVE_NAME.match(rest)
                if named:
                    title = named.group("title").strip()
                    if title.startswith("[") and "]" in title:
                        title = title[1 : title.rindex("]")]
                    elif title.startswith("{"):
                        title = _attrs(title).get("title", "")
                    out += _sentinel(indent, _OPEN_ADMONITION, named.group("kind"), title)
                    previous_blank = True
                    continue
        if stripped.startswith("<"):
            summary = _SUMMARY_LINE.match(line)
            if summary:
                indent = line[: len(line) - len(line.lstrip())]
                out += _sentinel(indent, _SUMMARY, summary.group("text"))
                previous_blank = True
                continue
            if _TAG_LINE.match(line):
                out += _tag_line(line)
                previous_blank = True
                continue
            element = _ELEMENT_LINE.match(line)
            if element and element.group("text").strip():
                # `<TabItem value="a" label="A">Text</TabItem>`: the element's text, on its own.
                out += _tag_line(line[: element.start("text")])
                out += ["", element.group("indent") + element.group("text").strip(), ""]
                previous_blank = True
                continue
            if _TAG_START.match(line) and ">" not in line:
                pending_tag = [line]
                continue
        if tables is not None and "|" in line and position + 1 < len(lines):
            table = _take_table(lines, position)
            if table is not None:
                rows, skip_to = table
                tables.append(rows)
                indent = line[: len(line) - len(line.lstrip())]
                out += _sentinel(indent, _TABLE, str(len(tables) - 1))
                previous_blank = True
                continue
        out.append(line)
        previous_blank = not stripped
    if pending_tag is not None:
        out.extend(pending_tag)
    return "\n".join(out)


# --- the token walk -----------------------------------------------------------------------------

# markdown-it's inline rules only start at these characters. Text without them is already plain;
# so is text whose only syntax is code spans, plain links and simple emphasis, which a few
# regular expressions undo. Anything else goes through markdown-it's inline parser. (The fast
# path gives the same text as the parser on the corpora of the tests; it halves the parse time.)
_INLINE_SYNTAX = re.compile(r"[\\`~*_\[<&]")
_PLACEHOLDER = re.compile("\ue002(\\d+)\ue003")
_SIMPLE_LINK = re.compile(r"!?\[([^\[\]\\`*_<&~]*)\]\([^()\s<>\\`\"']*\)")
_SIMPLE_EMPHASIS = (
    re.compile(r"(?<![\w*\\])\*\*(?=[^\s*])([^*]*?[^\s*])\*\*(?![\w*])"),
    re.compile(r"(?<![\w*\\])\*(?=[^\s*])([^*]*?[^\s*])\*(?![\w*])"),
    re.compile(r"(?<![\w_\\])__(?=[^\s_])([^_]*?[^\s_])__(?![\w_])"),
    re.compile(r"(?<![\w_\\])_(?=[^\s_])([^_]*?[^\s_])_(?![\w_])"),
)


def _code_span_text(content: str) -> str:
    content = content.replace("\n", " ")
    if len(content) > 2 and content[0] == " " and content[-1] == " " and content.strip():
        content = content[1:-1]
    return content


def _fast_plain(raw: str) -> str | None:
    """Plain text of simple inline Markdown, or None when the inline parser is needed."""
    if "\\" in raw or "\ue002" in raw:
        return None
    spans: list[str] = []
    if "`" in raw:

        def hold(match: re.Match[str]) -> str:
            spans.append(_code_span_text(match.group(2)))
            return f"\ue002{len(spans) - 1}\ue003"

        raw = _CODE_SPAN.sub(hold, raw)
    if "[" in raw:
        raw = _SIMPLE_LINK.sub(r"\1", raw)
    if "*" in raw or "_" in raw:
        for pattern in _SIMPLE_EMPHASIS:
            raw = pattern.sub(r"\1", raw)
    if _INLINE_SYNTAX.search(raw):
        return None
    if spans:
        raw = _PLACEHOLDER.sub(lambda match: spans[int(match.group(1))], raw)
    return raw


def _plain_tokens(tokens: list[Token]) -> str:
    """Inline tokens as text: code spans and link texts kept, image alt text kept, tags dropped."""
    parts: list[str] = []
    hidden: tuple[str, int] | None = None  # an open hidden inline element
    for token in tokens:
        kind = token.type
        if kind == "html_inline":
            tag = _TAG.match(token.content)
            if tag is None:
                continue
            if hidden is not None:
                _, hidden = _drop_hidden(token.content, hidden)
                continue
            name = (tag.group("name") or "").lower()
            if not tag.group("close") and _tag_hides(tag.group("attrs")):
                if not tag.group(0).endswith("/>"):
                    hidden = (name, 1)
            elif name in _BREAKING_TAGS:
                parts.append("\n")
            continue
        if hidden is not None:
            continue
        if kind in ("text", "text_special", "code_inline"):
            parts.append(token.content)
        elif kind in ("softbreak", "hardbreak"):
            parts.append("\n")
        elif kind == "image" and token.children:
            parts.append(_plain_tokens(token.children))
    return "".join(parts)


class _Tokens:
    """The flat block-token stream of one document, with each opening token's closing index."""

    def __init__(
        self, tokens: list[Token], env: dict[str, Any], tables: list[list[list[str]]]
    ) -> None:
        self.tokens = tokens
        self.env = env
        self.tables = tables
        self.close = [0] * len(tokens)
        opened: list[int] = []
        for index, token in enumerate(tokens):
            if token.nesting == 1:
                opened.append(index)
            elif token.nesting == -1 and opened:
                self.close[opened.pop()] = index

    def children(self, index: int) -> Iterator[int]:
        """Indexes of the direct children of the container opened at `index`."""
        position, end = index + 1, self.close[index]
        while position < end:
            yield position
            token = self.tokens[position]
            position = self.close[position] + 1 if token.nesting == 1 else position + 1

    def text(self, index: int) -> str:
        """Plain text of the inline content of the block opened at `index` (paragraph, td...)."""
        token = self.tokens[index + 1]
        if token.type != "inline":
            return ""
        return self.inline_text(token.content)

    def inline_text(self, raw: str) -> str:
        if not _INLINE_SYNTAX.search(raw):
            return raw
        plain = _fast_plain(raw)
        if plain is not None:
            return plain
        children: list[Token] = []
        _MD.inline.parse(raw, _MD, self.env, children)
        return _plain_tokens(children)

    def table_text(self, marker: str) -> str:
        """The table a line-pass marker stands for, as `cell | cell` rows."""
        _, _, number = marker.partition(_SEP)
        rows = self.tables[int(number)] if number.isdigit() else []
        lines = []
        for row in rows:
            cells = [squash(self.inline_text(cell)) for cell in row]
            if any(cells):
                lines.append(" | ".join(cells).rstrip())
        return "\n".join(lines)


@dataclass
class _Container:
    kind: str  # "admonition" | "details"
    title: str = ""
    blocks: BlockList = field(default_factory=BlockList)

    def to_block(self) -> Block:
        body = self.blocks.text
        if self.kind == "details":
            return Block(kind="details", text=details_text(self.title, body))
        kind, _, title = self.title.partition(_SEP)
        return Block(kind="admonition", text=admonition_text(kind, title, body))


class _Walker:
    def __init__(self, tokens: _Tokens) -> None:
        self.tokens = tokens
        self.slugger = GithubSlugger()
        self.title: str | None = None
        self.seen_content = False

    def walk(self, indexes: Iterable[int], sink: BlockSink) -> None:
        stack: list[_Container] = []
        label: list[str] = []  # a tab label waiting for the panel's first block
        tokens = self.tokens

        def target() -> BlockSink:
            return stack[-1].blocks if stack else sink

        def emit(block: Block) -> None:
            if not block.text:
                return
            self.seen_content = True
            if label:
                text = label.pop()
                if block.kind == "text":
                    block = Block(kind="text", text=f"{text} {block.text}")
                else:
                    target().add(Block(kind="text", text=text))
            target().add(block)

        for index in indexes:
            token = tokens.tokens[index]
            kind = token.type
            if kind == "paragraph_open":
                text = tokens.text(index)
                if text.startswith(_TABLE + _SEP):
                    emit(Block(kind="table", text=tokens.table_text(text)))
                elif text.startswith(_MARK):
                    self._directive(text, stack, label, target)
                else:
                    emit(Block(kind="text", text=squash(text)))
            elif kind == "heading_open":
                level = int(token.tag[1:])
                text, anchor = self._heading(index)
                if level == 1 and self.title is None and not self.seen_content:
                    self.title = text
                elif level == 1 or stack or not text:
                    emit(Block(kind="text", text=text))
                else:
                    if label:
                        target().add(Block(kind="text", text=label.pop()))
                    target().heading(level, text, anchor)
            elif kind == "fence":
                emit(_code_block(token))
            elif kind in ("bullet_list_open", "ordered_list_open"):
                emit(Block(kind="list", text="\n".join(self._list_lines(index, 0))))
            elif kind == "table_open":
                emit(Block(kind="table", text=self._table_text(index)))
            elif kind == "blockquote_open":
                inner = BlockList()
                self.walk(tokens.children(index), inner)
                emit(Block(kind="quote", text=quote_text(inner.text) if inner.text else ""))
            elif kind == "html_block":
                html, _ = _drop_hidden(token.content, None)
                emit(Block(kind="text", text=squash(_strip_tags(html))))
        while stack:
            container = stack.pop()
            target().add(container.to_block())

    def _directive(
        self,
        text: str,
        stack: list[_Container],
        label: list[str],
        target: Callable[[], BlockSink],
    ) -> None:
        head, _, rest = text.partition(_SEP)
        if head == _OPEN_ADMONITION:
            stack.append(_Container(kind="admonition", title=rest))
        elif head == _OPEN_DETAILS:
            stack.append(_Container(kind="details"))
        elif head in (_CLOSE_ADMONITION, _CLOSE_DETAILS):
            wanted = "admonition" if head == _CLOSE_ADMONITION else "details"
            if any(container.kind == wanted for container in stack):
                while stack:
                    container = stack.pop()
                    target().add(container.to_block())
                    if container.kind == wanted:
                        break
        elif head == _SUMMARY:
            summary = squash(rest)
            if stack and stack[-1].kind == "details" and not stack[-1].title:
                stack[-1].title = summary
            elif summary:
                target().add(Block(kind="text", text=summary))
        elif head == _TAB:
            label[:] = [tab_label_text(rest)]

    def _heading(self, index: int) -> tuple[str, str]:
        raw = self.tokens.text(index)
        match = _HEADING_ID.search(raw)
        if match:
            return squash(raw[: match.start()]), match.group(1).strip()
        return squash(raw), self.slugger.slug(raw)

    def _list_lines(self, index: int, depth: int) -> list[str]:
        tokens = self.tokens
        token = tokens.tokens[index]
        ordered = token.type == "ordered_list_open"
        start = token.attrs.get("start", 1) if ordered else 1
        number = start if isinstance(start, int) else 1
        indent = "  " * depth
        lines: list[str] = []
        for item in tokens.children(index):
            marker = f"{number}. " if ordered else "- "
            number += 1
            pieces: list[str] = []
            nested: list[str] = []
            for child in tokens.children(item):
                kind = tokens.tokens[child].type
                if kind in ("bullet_list_open", "ordered_list_open"):
                    nested.extend(self._list_lines(child, depth + 1))
                elif kind == "paragraph_open":
                    text = tokens.text(child)
                    if text.startswith(_TABLE + _SEP):
                        pieces.append(tokens.table_text(text))
                    elif not text.startswith(_MARK):
                        pieces.append(squash(text))
                else:
                    inner = BlockList()
                    self.walk((child,), inner)
                    pieces.extend(block.text for block in inner.blocks)
            lines.extend(list_item_lines(indent + marker, pieces, nested))
        return lines

    def _table_text(self, index: int) -> str:
        tokens = self.tokens
        rows: list[str] = []
        for part in tokens.children(index):  # thead, tbody
            for row in tokens.children(part):
                cells = [squash(tokens.text(cell)) for cell in tokens.children(row)]
                if any(cells):
                    rows.append(" | ".join(cells).rstrip())
        return "\n".join(rows)


def _top_level(tokens: list[Token]) -> Iterator[int]:
    return (index for index, token in enumerate(tokens) if token.level == 0 and token.nesting >= 0)


def _strip_tags(html: str) -> str:
    return html_lib.unescape(_HTML_TAG.sub(" ", html))


def _code_block(token: Token) -> Block:
    info = token.info.strip()
    language = info.split(maxsplit=1)[0] if info else "text"
    title_match = _CODE_TITLE.search(info)
    title = None
    if title_match:
        title = title_match.group("dq") or title_match.group("sq") or title_match.group("bare")
    code = token.content.strip("\n")
    if not code.strip():
        return Block(kind="code", text="")
    return Block(kind="code", text=code_block_text(code, language=language, title=title))


# --- the page -------------------------------------------------------------------------------------


def _text_field(metadata: dict[str, Any], name: str) -> str | None:
    value = metadata.get(name)
    if value is None or isinstance(value, (dict, list)):
        return None
    text = str(value).strip()
    return text or None


_NOUNS = {"docs": "doc", "blog": "post", "page": "page"}


def _place(location: SourceLocation, metadata: dict[str, Any]) -> tuple[str, str, str]:
    """`(URL path, doc_id, title of last resort)` of a source, by its content plugin's rules."""
    slug = _text_field(metadata, "slug")
    kind = location.meta.kind
    if kind == "blog":
        path = blog_key_to_path(location.key, slug=slug, route_base_path=location.route)
        unlocalized = blog_key_to_path(
            location.key, slug=slug, route_base_path=location.route_base_path
        )
        return path, unlocalized.strip("/"), blog_file_slug(location.key)[1]
    if kind == "page":
        path = page_key_to_path(location.key, slug=slug, route_base_path=location.route)
        unlocalized = page_key_to_path(
            location.key, slug=slug, route_base_path=location.route_base_path
        )
        name = unlocalized.strip("/").rsplit("/", 1)[-1]
        return path, unlocalized.strip("/"), name or location.key.rsplit(".", 1)[0]
    front_matter_id = _text_field(metadata, "id")
    parse_prefixes = metadata.get("parse_number_prefixes") is not False
    path = markdown_key_to_path(
        location.key,
        doc_id=front_matter_id,
        slug=slug,
        route_base_path=location.route,
        parse_number_prefixes=parse_prefixes,
    )
    doc_id = markdown_doc_id(
        location.key, doc_id=front_matter_id, parse_number_prefixes=parse_prefixes
    )
    return path, doc_id, doc_id.rsplit("/", 1)[-1]


def parse_markdown(
    source_key: str,
    text: str,
    *,
    route_base_path: str = "docs",
    location: SourceLocation | None = None,
) -> ParsedPage:
    """Parse one Markdown/MDX source: a doc, a blog post or a Markdown page.

    `location` (from `SourceLayout.locate`) says which: the key within its content folder, the
    route before its slug and its metadata (`meta.doc_id` is computed here, from the front
    matter). Without it, `source_key` is a doc of the default version relative to the docs
    folder, served under `route_base_path`.

    Raises `UnsupportedDocument` for drafts and unlisted pages, `DocumentError` for front matter
    that is not valid YAML.
    """
    if location is None:
        location = SourceLocation(key=source_key, route_base_path=route_base_path)
    try:
        post = frontmatter.loads(text)
    except Exception as exc:  # PyYAML's errors, and python-frontmatter's own
        raise DocumentError(f"{source_key}: invalid front matter: {exc}") from exc
    metadata: dict[str, Any] = dict(post.metadata)
    kind = location.meta.kind
    for flag in ("draft", "unlisted"):
        if metadata.get(flag) is True:
            raise UnsupportedDocument(f"{source_key}: {flag} {_NOUNS[kind]}")

    path, doc_id, fallback_title = _place(location, metadata)

    env: dict[str, Any] = {}
    tables: list[list[list[str]]] = []
    tokens = _Tokens(_MD.parse(_mdx_to_markdown(post.content, tables), env), env, tables)
    walker = _Walker(tokens)
    # The title is known once the walk has met the leading `# h1`, so the builder starts with a
    # placeholder and the lead-in section is renamed afterwards.
    builder = SectionBuilder("")
    walker.walk(_top_level(tokens.tokens), builder)
    sections = builder.build()

    title = walker.title or _text_field(metadata, "title") or fallback_title
    if sections and sections[0].anchor is None:
        sections = (replace(sections[0], heading=title), *sections[1:])

    description = _text_field(metadata, "description")
    if description is None:
        description = next(
            (b.text for s in sections for b in s.blocks if b.kind == "text"),
            None,
        )
    logger.debug("parsed %s: %d sections", source_key, len(sections))
    return ParsedPage(
        source_key=source_key,
        path=path,
        title=title,
        description=description,
        kind=kind,
        sections=sections,
        meta=replace(location.meta, doc_id=doc_id),
    )
