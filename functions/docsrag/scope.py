"""Which docs version, locale and kinds of page a question is answered from.

A Docusaurus site may hold several docs versions (`/docs/` the latest release, `/docs/next/` the
unreleased docs, `/docs/1.0/` an older release), several locales (`/fr/docs/...`) and a blog.
Every question is answered from ONE docs version and ONE locale, falling back to the site's
default locale for pages that are not translated. `resolve_scope` decides which, in this order:

1. the request's explicit `version` / `locale` (an unknown one is an `UnknownScope` error that
   lists what the site has: the API answers 422);
2. a version the question names ("in 1.0", "v1.0", "the next version", "latest");
3. the page the visitor is on (`page_url`: `/fr/docs/1.0/x` is version 1.0 in French); a URL of
   another site or a malformed one is ignored and logged, never an error;
4. the site's default: `DEFAULT_VERSION` when set, else the version served without a version
   segment, and `DEFAULT_LOCALE`.

Blog posts answer only when the docs in scope do not cover a question (`BlogPolicy.FALLBACK`),
or alongside the docs when the question asks about a release or an announcement (`WITH_DOCS`);
`INCLUDE_BLOG=false` leaves them out (`OFF`).

`SiteCatalog` is what the index holds (read from Qdrant facets by `DocsIndex.site_catalog`);
`SearchScope` is the one typed value retrieval takes and `DocsIndex.search` turns into a Qdrant
filter. Nothing here touches Qdrant or AWS.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import unquote, urlsplit

from docsrag.errors import DocsRagError
from docsrag.models import CURRENT_VERSION, DEFAULT_PLUGIN

logger = logging.getLogger(__name__)

NEXT_SEGMENT = "next"  # the URL segment of the `current` docs once the site has versions
_NEXT_WORDS = re.compile(
    r"\b(?:next|upcoming|unreleased|development|dev|main)\s+(?:version|release|docs)\b"
    r"|\bversion\s+next\b|\bunreleased\b",
    re.IGNORECASE,
)
_LATEST_WORDS = re.compile(
    r"\b(?:latest|current|newest)\s+(?:stable\s+)?(?:version|release)\b", re.IGNORECASE
)
_RELEASE_WORDS = re.compile(
    r"\b(?:releases?|released|announce\w*|changelog|blog|roadmap|launch\w*|what'?s\s+new|"
    r"new\s+in|upgrad\w*|migrat\w*|deprecat\w*|breaking\s+changes?|renamed)\b",
    re.IGNORECASE,
)
# "the latest release" names a version (see `version_named_in`); it is not about a release.
_VERSION_AS_RELEASE = re.compile(
    r"\b(?:latest|current|stable|newest|next|upcoming|previous|older?|last)\s+"
    r"(?:stable\s+)?releases?\b",
    re.IGNORECASE,
)


_UNSAFE_LABEL = re.compile(r"[^\w.+\- ]")


class UnknownScope(DocsRagError):
    """A request named a version or locale the site does not have."""

    def __init__(self, what: str, value: str, valid: tuple[str, ...]) -> None:
        self.what = what
        self.value = value
        self.valid = valid
        listed = ", ".join(valid) if valid else "none"
        super().__init__(f"Unknown {what} {value!r}. This site has: {listed}.")


class BlogPolicy(StrEnum):
    OFF = "off"
    FALLBACK = "fallback"  # only when the docs in scope do not cover the question
    WITH_DOCS = "with_docs"  # ranked with the docs (release and announcement questions)


@dataclass(frozen=True, slots=True)
class ScopeRequest:
    """What a request says about where the visitor is: all optional, all untrusted."""

    page_url: str | None = None
    version: str | None = None
    locale: str | None = None


@dataclass(frozen=True, slots=True)
class SiteCatalog:
    """The versions and locales an index holds (for the default docs plugin).

    `versions` lists the default version first, then the others in the order the site lists
    them (newest release first, `current` last). `legacy` is True when the index was built by a
    release that did not record versions: its points carry no metadata, so searches cannot be
    scoped until the next ingest rewrites them.
    """

    versions: tuple[str, ...] = ()
    default_version: str | None = None
    locales: tuple[str, ...] = ()
    default_locale: str = "en"
    has_blog: bool = False
    legacy: bool = False

    @property
    def versioned(self) -> bool:
        return len(self.versions) > 1

    def label(self, version: str | None) -> str | None:
        """How answers name a version: `1.1 (latest)`, `next (unreleased)`, `1.0`; None on a
        site with one version (nothing to tell apart)."""
        if version is None or not self.versioned:
            return None
        if version == CURRENT_VERSION and version != self.default_version:
            return "next (unreleased)"
        # Version names come from the pages' own metadata: keep them plain and short.
        name = _UNSAFE_LABEL.sub("", version)[:40] or "?"
        if version == self.default_version:
            return f"{name} (latest)"
        return name

    def version_aliases(self) -> dict[str, str]:
        """Every name a request may use for a version, lowercased: names, `next`, `latest`."""
        aliases = {version.lower(): version for version in self.versions}
        if CURRENT_VERSION in self.versions and self.default_version != CURRENT_VERSION:
            aliases[NEXT_SEGMENT] = CURRENT_VERSION
        if self.default_version is not None:
            aliases["latest"] = self.default_version
        return aliases


@dataclass(frozen=True, slots=True)
class SearchScope:
    """One question's part of the site: one docs version, its locales (preferred first)."""

    version: str | None  # None: no version filter (a legacy index, or a site without docs)
    locales: tuple[str, ...]  # the chosen locale, then the default one as fallback
    blog: BlogPolicy = BlogPolicy.FALLBACK
    plugin: str = DEFAULT_PLUGIN
    label: str | None = None  # how answers name the version; None on a one-version site
    source: str = "default"  # what decided the version: request, question, page or default
    unscoped: bool = False  # legacy index: search everything, as before versions
    notes: tuple[str, ...] = field(default=())

    @property
    def locale(self) -> str:
        return self.locales[0]

    def locale_rank(self, locale: str) -> int:
        """0 for the preferred locale, then the fallbacks; other locales last."""
        try:
            return self.locales.index(locale)
        except ValueError:
            return len(self.locales)


def unscoped(default_locale: str = "en") -> SearchScope:
    """The scope of an index built before versions were recorded: everything, as before."""
    return SearchScope(version=None, locales=(default_locale,), unscoped=True)


def resolve_scope(
    *,
    catalog: SiteCatalog,
    question: str,
    site_url: str,
    page_url: str | None = None,
    version: str | None = None,
    locale: str | None = None,
    default_version: str | None = None,
    include_blog: bool = True,
    docs_route_base_path: str = "docs",
) -> SearchScope:
    """The scope for one question (see the module docstring for the order of precedence).

    Raises `UnknownScope` for an explicit `version` or `locale` the site does not have.
    """
    blog = BlogPolicy.OFF
    if include_blog and catalog.has_blog:
        about_releases = _RELEASE_WORDS.search(_VERSION_AS_RELEASE.sub(" ", question))
        blog = BlogPolicy.WITH_DOCS if about_releases else BlogPolicy.FALLBACK
    if catalog.legacy:
        logger.warning(
            "the index was built by an earlier release (no version or locale fields): "
            "searching every page; run the ingest again to answer per version and locale"
        )
        return SearchScope(
            version=None,
            locales=(catalog.default_locale,),
            blog=BlogPolicy.WITH_DOCS,
            unscoped=True,
            source="legacy index",
        )

    aliases = catalog.version_aliases()
    chosen_locale: str | None = None
    if locale is not None:
        wanted = locale.strip()
        match = next((loc for loc in catalog.locales if loc.lower() == wanted.lower()), None)
        if match is None:
            raise UnknownScope("locale", locale, catalog.locales)
        chosen_locale = match

    chosen_version: str | None = None
    source = "default"
    if version is not None:
        match_version = aliases.get(version.strip().lower().removeprefix("v"))
        if match_version is None:
            match_version = aliases.get(version.strip().lower())
        if match_version is None:
            raise UnknownScope("version", version, catalog.versions)
        chosen_version, source = match_version, "request"
    if chosen_version is None:
        named = version_named_in(question, catalog)
        if named is not None:
            chosen_version, source = named, "question"

    if page_url and (chosen_version is None or chosen_locale is None):
        page = page_scope(
            page_url,
            catalog=catalog,
            site_url=site_url,
            docs_route_base_path=docs_route_base_path,
        )
        if page is not None:
            page_version, page_locale = page
            if chosen_version is None and page_version is not None:
                chosen_version, source = page_version, "page"
            if chosen_locale is None:
                chosen_locale = page_locale

    if chosen_version is None:
        preferred = default_version if default_version in catalog.versions else None
        if default_version is not None and preferred is None:
            logger.warning(
                "DEFAULT_VERSION %r is not a version of this site (%s); using %r",
                default_version,
                ", ".join(catalog.versions),
                catalog.default_version,
            )
        chosen_version = preferred or catalog.default_version
    chosen_locale = chosen_locale or catalog.default_locale
    locales: tuple[str, ...] = (chosen_locale,)
    if chosen_locale != catalog.default_locale:
        locales += (catalog.default_locale,)
    return SearchScope(
        version=chosen_version,
        locales=locales,
        blog=blog,
        label=catalog.label(chosen_version),
        source=source,
    )


def version_named_in(question: str, catalog: SiteCatalog) -> str | None:
    """A version of the site the question names ("in v1.0", "Jest 30.0", "the next version")."""
    if not catalog.versioned:
        return None
    for version in sorted(catalog.versions, key=len, reverse=True):
        if version == CURRENT_VERSION:
            continue
        # "1.0", "v1.0", "1.0.x"; not part of a longer number ("11.0", "1.0.3" for "1.0").
        pattern = rf"(?<![\w.])v?{re.escape(version)}(?:\.x)?(?![\w]|\.\d)"
        if re.search(pattern, question, re.IGNORECASE):
            return version
    has_next = CURRENT_VERSION in catalog.versions and catalog.default_version != CURRENT_VERSION
    if has_next and _NEXT_WORDS.search(question):
        return CURRENT_VERSION
    if _LATEST_WORDS.search(question):
        return catalog.default_version
    return None


def page_scope(
    page_url: str,
    *,
    catalog: SiteCatalog,
    site_url: str,
    docs_route_base_path: str = "docs",
) -> tuple[str | None, str] | None:
    """(version, locale) of the page a visitor is on; None for a URL this cannot read (logged).

    `version` is None when the page is not a docs page (the homepage, a blog post): the
    default version applies.
    """
    try:
        parts = urlsplit(page_url.strip())
        site = urlsplit(site_url)
    except ValueError as exc:
        logger.info("ignoring page_url %r: not a URL (%s)", page_url[:200], exc)
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        logger.info("ignoring page_url %r: not an absolute http(s) URL", page_url[:200])
        return None
    if parts.netloc.lower() != site.netloc.lower():
        logger.info(
            "ignoring page_url on another site: %s (SITE_URL is %s)", parts.netloc, site.netloc
        )
        return None
    path = unquote(parts.path) or "/"
    base = site.path.rstrip("/")
    if base:
        if path != base and not path.startswith(base + "/"):
            logger.info("ignoring page_url outside the site's base path: %s", path[:200])
            return None
        path = path[len(base) :]
    segments = [segment for segment in path.split("/") if segment]
    locale = catalog.default_locale
    by_lower = {loc.lower(): loc for loc in catalog.locales}
    if segments and segments[0].lower() in by_lower and segments[0] != catalog.default_locale:
        locale = by_lower[segments.pop(0).lower()]
    route = [segment for segment in docs_route_base_path.split("/") if segment]
    if segments[: len(route)] != route:
        return None, locale
    rest = segments[len(route) :]
    if rest:
        aliases = catalog.version_aliases()
        aliases.pop("latest", None)
        version = aliases.get(rest[0].lower())
        if version is not None and rest[0].lower() != (catalog.default_version or "").lower():
            return version, locale
    return catalog.default_version, locale
