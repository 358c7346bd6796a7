"""Pages in, `ParsedPage`s out: Docusaurus build HTML or Markdown/MDX sources.

`parse_document` is the one entry point the ingest uses: it decides from the key whether the
file is a page at all, checks the raw bytes, and hands it to the HTML or the Markdown parser.
Where a Markdown file sits (URL, kind, version, locale) comes from a `SourceLayout`: a whole
Docusaurus site's source tree, or a plain docs folder.
"""

from __future__ import annotations

import logging

from docsrag.config import Settings
from docsrag.errors import DocumentError, UnsupportedDocument
from docsrag.models import ParsedPage
from docsrag.parsing.html import parse_html
from docsrag.parsing.keys import KeyInfo, classify_key, key_to_path
from docsrag.parsing.layout import SourceLayout, SourceLocation, iter_site_files
from docsrag.parsing.markdown import parse_markdown
from docsrag.parsing.slugger import GithubSlugger

__all__ = [
    "GithubSlugger",
    "KeyInfo",
    "SourceLayout",
    "SourceLocation",
    "classify_key",
    "iter_site_files",
    "key_to_path",
    "parse_document",
    "parse_html",
    "parse_markdown",
]

logger = logging.getLogger(__name__)


def parse_document(
    source_key: str,
    data: bytes,
    *,
    settings: Settings,
    layout: SourceLayout | None = None,
) -> ParsedPage:
    """Parse one file of a build, a docs folder or a site's source tree.

    The key is classified first, so an asset, or Markdown that is not a page of the `layout`,
    is skipped (`UnsupportedDocument`) whatever its size or bytes. A page that is too large,
    empty, binary or not UTF-8 raises `DocumentError`. The layout places Markdown keys (URL,
    kind, version, locale); without one, the key is a doc of a plain docs folder
    (`SourceLayout.docs_folder`). HTML keys ignore the layout: the page says where it sits.
    """
    info = classify_key(source_key)
    if info.format is None:
        raise UnsupportedDocument(f"{source_key}: {info.reason}")
    location: SourceLocation | None = None
    if info.format == "markdown":
        if layout is None:
            layout = SourceLayout.docs_folder(settings=settings)
        location = layout.locate(source_key)
    if len(data) > settings.max_document_bytes:
        raise DocumentError(
            f"{source_key}: {len(data)} bytes is over the {settings.max_document_bytes}-byte "
            "limit (MAX_DOCUMENT_BYTES)"
        )
    if not data.strip():
        raise DocumentError(f"{source_key}: empty document")
    if b"\x00" in data:
        raise DocumentError(f"{source_key}: binary content (NUL bytes)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DocumentError(
            f"{source_key}: not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from exc
    if info.format == "html":
        return parse_html(
            source_key,
            text,
            site_url=settings.site_url,
            default_locale=settings.default_locale,
            docs_route_base_path=settings.docs_route_base_path,
        )
    return parse_markdown(source_key, text, location=location)
