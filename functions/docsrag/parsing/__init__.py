"""Pages in, `ParsedPage`s out: Docusaurus build HTML or Markdown/MDX sources.

`parse_document` is the one entry point the ingest uses: it checks the raw bytes, decides from
the key whether the file is a page at all, and hands it to the HTML or the Markdown parser.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

from docsrag.config import Settings
from docsrag.errors import DocumentError, UnsupportedDocument
from docsrag.models import ParsedPage
from docsrag.parsing.html import parse_html
from docsrag.parsing.keys import KeyInfo, classify_key, key_to_path
from docsrag.parsing.markdown import parse_markdown
from docsrag.parsing.slugger import GithubSlugger

__all__ = [
    "GithubSlugger",
    "KeyInfo",
    "classify_key",
    "iter_site_files",
    "key_to_path",
    "parse_document",
    "parse_html",
    "parse_markdown",
]

logger = logging.getLogger(__name__)


def parse_document(source_key: str, data: bytes, *, settings: Settings) -> ParsedPage:
    """Parse one file of a build or docs folder.

    The key is classified first, so an asset is skipped (`UnsupportedDocument`) whatever its
    size or bytes. A page that is too large, empty, binary or not UTF-8 raises `DocumentError`.
    """
    info = classify_key(source_key)
    if info.format is None:
        raise UnsupportedDocument(f"{source_key}: {info.reason}")
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
        return parse_html(source_key, text, site_url=settings.site_url)
    return parse_markdown(source_key, text, route_base_path=settings.docs_route_base_path)


def iter_site_files(root: Path) -> Iterator[tuple[str, Path]]:
    """Every file under `root` as `(source_key, path)`, keys relative to root with `/`.

    Sorted, so runs are deterministic; symlinked folders are not followed. A file given as
    `root` yields itself under its own name.
    """
    if root.is_file():
        yield root.name, root
        return
    if not root.is_dir():
        raise DocumentError(f"{root}: no such folder")
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        base = Path(folder)
        for name in sorted(files):
            path = base / name
            yield path.relative_to(root).as_posix(), path
