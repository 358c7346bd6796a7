"""What a key is (a page to parse or a file to skip) and which public URL path it serves.

Keys are paths relative to the ingested root, with `/` separators and already URL-decoded:
`docs/cli/index.html` in a Docusaurus build, `guides/intro.mdx` in a docs folder.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urljoin, urlsplit

KeyFormat = Literal["html", "markdown"]

_ASSET_EXTENSIONS = frozenset(
    {
        # scripts, styles, source maps
        "js", "mjs", "cjs", "css", "map", "wasm",
        # images
        "png", "jpg", "jpeg", "gif", "svg", "webp", "avif", "ico", "bmp", "tif", "tiff",
        # fonts
        "woff", "woff2", "ttf", "otf", "eot",
        # media and downloads
        "mp4", "webm", "mp3", "ogg", "wav", "pdf", "zip", "gz", "tgz", "docx", "xlsx", "pptx",
    }
)  # fmt: skip
_FEED_NAMES = frozenset({"rss.xml", "atom.xml", "feed.xml", "feed.json"})
_LISTING_PREFIXES = ("blog/tags/", "blog/authors/", "blog/archive/", "blog/page/", "docs/tags/")
_SEARCH_INDEX = re.compile(r"^(search-index.*\.json|lunr-index.*|search-doc.*\.json)$")


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """`format` is how to parse the key; None means skip it, and `reason` says why."""

    format: KeyFormat | None
    reason: str | None = None


def _skip(reason: str) -> KeyInfo:
    return KeyInfo(format=None, reason=reason)


def classify_key(key: str) -> KeyInfo:
    """Decide from the key alone whether it is a page worth parsing (no I/O)."""
    key = key.strip().lstrip("/")
    if not key or key.endswith("/"):
        return _skip("not a file")
    lowered = key.lower()
    segments = lowered.split("/")
    name = segments[-1]
    _, dot, extension = name.rpartition(".")
    extension = extension if dot else ""

    if any(part.startswith(".") or part == "node_modules" for part in segments[:-1]):
        return _skip("hidden or dependency folder")
    if segments[0] == "assets":
        return _skip("build asset")
    if segments[0] == "img":
        return _skip("static image")
    if extension in _ASSET_EXTENSIONS:
        return _skip(f"asset (.{extension})")
    if name in _FEED_NAMES or extension == "xsl":
        return _skip("feed")
    if name.startswith("sitemap") and extension in {"xml", "txt", "gz"}:
        return _skip("sitemap")
    if _SEARCH_INDEX.match(name):
        return _skip("search index")
    if name in {"manifest.json", ".nojekyll", "robots.txt", "cname", "_redirects", "_headers"}:
        return _skip("site file")

    if extension in {"html", "htm"}:
        if lowered in {"404.html", "404/index.html"}:
            return _skip("not-found page")
        if lowered in {"search/index.html", "search.html"}:
            return _skip("search page")
        if lowered.startswith(_LISTING_PREFIXES):
            return _skip("listing page")
        return KeyInfo(format="html")
    if extension in {"md", "mdx"}:
        # Docusaurus never builds `_`-prefixed files or folders: they are partials to import.
        if any(segment.startswith("_") for segment in segments):
            return _skip("partial (name starts with _)")
        return KeyInfo(format="markdown")
    return _skip("not a page")


def key_to_path(key: str) -> str:
    """Build file to public URL path: `docs/cli/index.html` -> `/docs/cli`, `index.html` -> `/`.

    The trailing slash is always dropped here. Whether a folder-index page keeps it
    (`/docs/`, `/docs/advanced/`) is only known from the page's canonical URL; see `parse_html`.
    """
    key = key.strip().lstrip("/")
    if key == "index.html" or key.endswith("/index.html"):
        key = key[: -len("index.html")]
    elif key.endswith(".html"):
        key = key[: -len(".html")]
    return "/" + key.strip("/")


# --- Docusaurus docs plugin: Markdown file -> URL ---------------------------------------------

# Docusaurus's DefaultNumberPrefixParser: `01-intro` -> `intro`, `2 . setup` -> `setup`, but
# date-like or version-like names (`2021-01-31-post`, `8.0-notes`) keep their number.
_IGNORED_PREFIX = re.compile(r"^\d+[-_.]\d+")
_NUMBER_PREFIX = re.compile(r"^\d+\s*[-_.]+\s*([^-_.\s].*)$")


def strip_number_prefix(name: str) -> str:
    if _IGNORED_PREFIX.match(name):
        return name
    match = _NUMBER_PREFIX.match(name)
    return match.group(1) if match else name


def markdown_key_to_path(
    key: str,
    *,
    doc_id: str | None = None,
    slug: str | None = None,
    route_base_path: str = "docs",
) -> str:
    """The permalink path Docusaurus gives a doc file (without the site's `baseUrl`).

    Follows `@docusaurus/plugin-content-docs` `getSlug`:
    * `slug: /x` is absolute within the docs route (`/docs/x`); `slug: x` or `slug: ../x` is
      resolved against the file's folder;
    * without a slug, an index doc (`index.md`, `README.md`, or a file named like its folder,
      `guides/guides.md`) gets the folder URL with a trailing slash (`/docs/guides/`);
    * otherwise the URL is the folder plus `id` front matter or the file name, number prefixes
      (`01-intro`) stripped from every part.
    """
    key = key.strip().lstrip("/")
    directory, _, file_name = key.rpartition("/")
    stem = file_name.rsplit(".", 1)[0] if "." in file_name else file_name
    if directory:
        stripped_dir = "/".join(strip_number_prefix(part) for part in directory.split("/"))
        dir_slug = f"/{stripped_dir}/"
    else:
        dir_slug = "/"

    if slug is not None and slug.startswith("/"):
        doc_slug = slug
    elif not slug and _is_category_index(stem, directory):
        doc_slug = dir_slug
    else:
        base = slug or doc_id or strip_number_prefix(stem)
        doc_slug = _resolve_pathname(base, dir_slug)

    route = route_base_path.strip("/")
    path = f"/{route}{doc_slug}" if route else doc_slug
    return re.sub(r"/{2,}", "/", path)


def _is_category_index(stem: str, directory: str) -> bool:
    name = stem.lower()
    last_dir = directory.rsplit("/", 1)[-1].lower() if directory else "."
    return name in {"index", "readme", last_dir}


def _resolve_pathname(to: str, base: str) -> str:
    """`resolve-pathname` (URL-style resolution of a relative slug against a folder URL)."""
    resolved = urlsplit(urljoin(f"http://docs.invalid{base}", to)).path
    if not resolved.startswith("/"):
        resolved = "/" + resolved
    normalized = posixpath.normpath(resolved)
    if resolved.endswith("/") and normalized != "/":
        normalized += "/"
    return normalized
