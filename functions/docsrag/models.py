"""Domain data shared by parsing, chunking, indexing, retrieval and answering."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

BlockKind = Literal["text", "code", "list", "table", "admonition", "details", "quote"]
PageKind = Literal["docs", "blog", "page"]

DEFAULT_PLUGIN = "default"
CURRENT_VERSION = "current"  # Docusaurus's name for the docs in `docs/` (URL `/docs/next/` once
# versions exist, `/docs/` before)


@dataclass(frozen=True, slots=True)
class PageMeta:
    """Where a page sits in a Docusaurus site: what kind of content, which docs plugin instance,
    version and locale. Read from the build HTML's meta tags or from the source layout.

    `version` is the docs version name (`current`, `2.1`); None for blog posts and pages.
    `default_version` is True when the version is served without a version segment (`/docs/x`,
    the site's latest release; every unversioned page counts as default). `doc_id` is the page's
    id within its plugin (`guides/intro` for docs, the locale-less path for blog posts and pages),
    the same in every version and locale, so `section_key` recognises one section across them.
    """

    kind: PageKind = "docs"
    plugin: str = DEFAULT_PLUGIN
    version: str | None = CURRENT_VERSION
    default_version: bool = True
    locale: str = "en"
    doc_id: str = ""

    def section_key(self, anchor: str | None) -> str:
        """Version- and locale-independent identity of a section: `docs/default/intro#setup`."""
        return f"{self.kind}/{self.plugin}/{self.doc_id}#{anchor or ''}"


@dataclass(frozen=True, slots=True)
class Block:
    """One piece of a section's content, kept whole by the chunker where possible.

    `text` is clean plain text: code blocks are fenced (```lang ... ```), tables are rows of
    `cell | cell`, list items start with `- `, admonitions start with their kind (`Tip: ...`).
    """

    kind: BlockKind
    text: str


@dataclass(frozen=True, slots=True)
class Section:
    """Content under one heading. The page's lead-in (before the first h2) has `anchor=None`."""

    heading: str
    anchor: str | None
    level: int
    heading_path: tuple[str, ...]
    blocks: tuple[Block, ...]

    @property
    def text(self) -> str:
        return "\n\n".join(block.text for block in self.blocks)


@dataclass(frozen=True, slots=True)
class ParsedPage:
    """A page as the parser sees it, whatever it came from (build HTML or Markdown/MDX).

    `source_key` is the path relative to the ingested root (`docs/cli/index.html`, `cli.mdx`) and
    is the page's identity in the index. `path` is the public URL path (`/docs/cli`).
    """

    source_key: str
    path: str
    title: str
    description: str | None
    kind: PageKind
    sections: tuple[Section, ...]
    meta: PageMeta = PageMeta()

    def __post_init__(self) -> None:
        if self.meta.kind != self.kind:  # `kind` is the one to set; `meta` follows it
            object.__setattr__(self, "meta", replace(self.meta, kind=self.kind))


@dataclass(frozen=True, slots=True)
class Chunk:
    """What gets indexed: a heading section, or a part of a long one."""

    source_key: str
    path: str
    page_title: str
    heading_path: tuple[str, ...]
    anchor: str | None
    text: str
    chunk_index: int
    # Every section whose text the chunk holds, in page order; the first is `anchor`, the one a
    # citation links to. More than one when tiny sections were merged (see docsrag.chunking).
    # Left empty, it is `(anchor,)`.
    anchors: tuple[str | None, ...] = ()
    meta: PageMeta = PageMeta()
    # The page's description (front matter or meta description), for page listings (llms.txt).
    page_description: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "anchors", _anchors(self.anchor, self.anchors))

    @property
    def section_key(self) -> str:
        """See `PageMeta.section_key`; a page without a doc id is known by its path."""
        if not self.meta.doc_id:
            return f"{self.meta.kind}/{self.meta.plugin}/{self.path.strip('/')}#{self.anchor or ''}"
        return self.meta.section_key(self.anchor)

    @property
    def embed_text(self) -> str:
        """Text sent to the embedding model and the BM25 encoder: title and headings lead."""
        trail = " > ".join((self.page_title, *self.heading_path))
        return f"{trail}\n\n{self.text}"


@dataclass(frozen=True, slots=True)
class PageSummary:
    """One indexed page, as page listings (llms.txt, MCP) show it."""

    source_key: str
    path: str
    title: str
    description: str | None
    meta: PageMeta


@dataclass(frozen=True, slots=True)
class SparseVector:
    indices: list[int]
    values: list[float]


@dataclass(frozen=True, slots=True)
class PageState:
    """What the index holds about one page, to decide whether an ingest may skip it."""

    source_key: str
    content_hash: str
    has_dense: bool
    chunk_count: int
    version: str | None = None  # S3 sequencer / ETag of the indexed object, when known


@dataclass(frozen=True, slots=True)
class Hit:
    """A retrieved chunk with its fused rank score and the raw scores behind it."""

    chunk_id: str
    source_key: str
    path: str
    page_title: str
    heading_path: tuple[str, ...]
    anchor: str | None
    text: str
    score: float
    dense_score: float | None = None
    sparse_score: float | None = None
    # The sections the chunk covers (`Chunk.anchors`); `(anchor,)` when not given.
    anchors: tuple[str | None, ...] = ()
    # Where the page sits (kind, plugin, version, locale); a point written before versions were
    # indexed reads as the default docs version in the default locale.
    meta: PageMeta = PageMeta()
    # Place of the chunk in its page (reading order), for joining the parts of a section.
    chunk_index: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "anchors", _anchors(self.anchor, self.anchors))

    @property
    def section_key(self) -> str:
        """See `PageMeta.section_key`; a page without a doc id is known by its path."""
        if not self.meta.doc_id:
            return f"{self.meta.kind}/{self.meta.plugin}/{self.path.strip('/')}#{self.anchor or ''}"
        return self.meta.section_key(self.anchor)


@dataclass(slots=True)
class IngestSummary:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    skipped: int = 0
    failed: int = 0
    chunks_written: int = 0
    embedding_calls: int = 0
    skipped_reasons: dict[str, str] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    # Pages indexed only in part (over MAX_CHUNKS_PER_PAGE): key -> what was left out.
    truncated: dict[str, str] = field(default_factory=dict)


def _anchors(anchor: str | None, anchors: tuple[str | None, ...]) -> tuple[str | None, ...]:
    """`anchors` as a tuple that starts with `anchor`; `(anchor,)` when empty."""
    if not anchors:
        return (anchor,)
    anchors = tuple(anchors)
    if anchors[0] != anchor:
        raise ValueError(f"anchors must start with the anchor {anchor!r}, got {anchors!r}")
    return anchors
