"""What a key is (a page to parse or a file to skip) and which public URL path it serves.

Keys are paths relative to the ingested root, with `/` separators and already URL-decoded:
`docs/cli/index.html` in a Docusaurus build, `guides/intro.mdx` in a docs folder. The URL rules
of Markdown sources follow Docusaurus's content plugins, each given a key relative to its own
content folder (`parsing.layout` finds that folder from a site-root key): docs
(`markdown_key_to_path`, `markdown_doc_id`), blog posts (`blog_key_to_path`) and Markdown pages
(`page_key_to_path`).
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
_PAGE_SUFFIXES = frozenset({"html", "md", "mdx"})  # exactly, lower case: see `classify_key`
_FEED_NAMES = frozenset({"rss.xml", "atom.xml", "feed.xml", "feed.json"})
_LOCALE_SEGMENT = re.compile(r"^[a-z]{2,3}(?:-[a-z0-9]{2,8})*$")
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
    """Decide from the key alone whether it is a page worth parsing (no I/O).

    Pages end in exactly `.html`, `.md` or `.mdx`, lower case: the suffixes the bucket's event
    notifications filter on (case-sensitive), so every key a reconcile indexes is also kept up
    to date by events. `.htm` and upper-case suffixes are skipped with a reason.
    """
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

    real = key.rsplit("/", 1)[-1].rpartition(".")[2]  # the suffix as written
    if extension in {"html", "htm", "md", "mdx"} and real not in _PAGE_SUFFIXES:
        # S3 notification filters match suffixes exactly (`.html`, `.md`, `.mdx`): a page named
        # otherwise would be indexed by a reconcile and never updated or deleted by events.
        return _skip(
            f"page suffix .{real} is not one of .html, .md, .mdx (lower case); rename the file"
        )
    if extension == "html":
        # A translated site repeats these under its locale (`fr/404.html`, `fr/blog/tags/`).
        first, _, rest = lowered.partition("/")
        if rest and _LOCALE_SEGMENT.match(first) and first not in ("docs", "blog"):
            lowered = rest
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


def _split_doc_key(key: str, parse_number_prefixes: bool) -> tuple[str, str, str]:
    """`(raw folder, folder with number prefixes stripped, file name without extension)`."""
    key = key.strip().lstrip("/")
    directory, _, file_name = key.rpartition("/")
    stem = file_name.rsplit(".", 1)[0] if "." in file_name else file_name
    if directory and parse_number_prefixes:
        stripped = "/".join(strip_number_prefix(part) for part in directory.split("/"))
    else:
        stripped = directory
    return directory, stripped, stem


def markdown_key_to_path(
    key: str,
    *,
    doc_id: str | None = None,
    slug: str | None = None,
    route_base_path: str = "docs",
    parse_number_prefixes: bool = True,
) -> str:
    """The permalink path Docusaurus gives a doc file (without the site's `baseUrl`).

    Follows `@docusaurus/plugin-content-docs` `getSlug`:
    * `slug: /x` is absolute within the docs route (`/docs/x`); `slug: x` or `slug: ../x` is
      resolved against the file's folder;
    * without a slug, an index doc (`index.md`, `README.md`, or a file named like its folder,
      `guides/guides.md`) gets the folder URL with a trailing slash (`/docs/guides/`);
    * otherwise the URL is the folder plus `id` front matter or the file name, number prefixes
      (`01-intro`) stripped from every part unless `parse_number_prefixes: false`.

    `route_base_path` is everything before the doc's slug: the docs route, and for a translated
    or versioned doc its locale and version (`fr/docs/1.0`).
    """
    directory, stripped_dir, stem = _split_doc_key(key, parse_number_prefixes)
    dir_slug = f"/{stripped_dir}/" if directory else "/"

    if slug is not None and slug.startswith("/"):
        doc_slug = slug
    elif not slug and _is_category_index(stem, directory):
        doc_slug = dir_slug
    else:
        base = slug or doc_id or (strip_number_prefix(stem) if parse_number_prefixes else stem)
        doc_slug = _resolve_pathname(base, dir_slug)
    return _join_route(route_base_path, doc_slug)


def markdown_doc_id(
    key: str, *, doc_id: str | None = None, parse_number_prefixes: bool = True
) -> str:
    """The id Docusaurus gives a doc file (the build's `docs-doc-id-<id>` class).

    `@docusaurus/plugin-content-docs` `processDocMetadata`: the file's folder, number prefixes
    stripped from each part, then `id` front matter or the file name (number prefix stripped):
    `01-guides/02-setup.md` -> `guides/setup`, `advanced/index.mdx` -> `advanced/index`. The
    version and locale play no part, so one file has the same id in every version and locale.
    """
    _, stripped_dir, stem = _split_doc_key(key, parse_number_prefixes)
    base = doc_id or (strip_number_prefix(stem) if parse_number_prefixes else stem)
    return f"{stripped_dir}/{base}" if stripped_dir else base


# --- Docusaurus blog plugin: Markdown file -> URL ----------------------------------------------

# `@docusaurus/plugin-content-blog` `parseBlogFileName` (its `.` before `mdx?` is unescaped too).
_BLOG_DATE = re.compile(
    r"^(?P<folder>.*)(?P<date>\d{4}[-/]\d{1,2}[-/]\d{1,2})[-/]?(?P<text>.*?)(?:/index)?.mdx?$"
)
_BLOG_EXTENSION = re.compile(r"(?:/index)?\.mdx?$")


def blog_file_slug(key: str) -> tuple[str, str]:
    """`(slug, text)` of a blog post file (key relative to the blog folder), as Docusaurus's
    `parseBlogFileName`: a date in the path becomes the URL's date folders
    (`2024-01-15-welcome.md` and `2024-01-15-welcome/index.md` -> `/2024/01/15/welcome`);
    a file without a date keeps its path (`news/launch.md` -> `/news/launch`). `text` is the
    name without date and extension, the title of last resort."""
    key = key.strip().lstrip("/")
    match = _BLOG_DATE.match(key)
    if match:
        date = match.group("date").replace("-", "/")
        text = match.group("text")
        return f"/{date}/{match.group('folder')}{text}", text
    text = _BLOG_EXTENSION.sub("", key)
    return f"/{text}", text


def blog_key_to_path(key: str, *, slug: str | None = None, route_base_path: str = "blog") -> str:
    """The permalink path of a blog post. `slug` front matter replaces the file's slug and is
    always within the blog route (`slug: hello` and `slug: /hello` -> `/blog/hello`)."""
    return _join_route(route_base_path, slug if slug else blog_file_slug(key)[0])


# --- Docusaurus pages plugin: Markdown file in src/pages -> URL --------------------------------

_PAGE_INDEX = re.compile(r"(?P<dirname>^|.*/)index\.(?:mdx?|jsx?|tsx?)$", re.IGNORECASE)
_PAGE_EXTENSION = re.compile(r"\.(?:mdx?|jsx?|tsx?)$")


def page_key_to_path(key: str, *, slug: str | None = None, route_base_path: str = "") -> str:
    """The permalink path of a Markdown page (key relative to `src/pages`), as `fileToPath`:
    `about.md` -> `/about`, `index.md` -> `/`, `team/index.mdx` -> `/team/`. `slug` front matter
    replaces it."""
    key = key.strip().lstrip("/")
    index = _PAGE_INDEX.match(key)
    file_slug = f"/{index.group('dirname')}" if index else "/" + _PAGE_EXTENSION.sub("", key)
    return _join_route(route_base_path, slug if slug else file_slug)


def _join_route(route_base_path: str, slug: str) -> str:
    """`normalizeUrl([route, slug])` for paths: one slash between parts, the slug's trailing
    slash kept."""
    route = route_base_path.strip("/")
    if not slug.startswith("/"):
        slug = "/" + slug
    path = f"/{route}{slug}" if route else slug
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
