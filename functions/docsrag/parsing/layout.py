"""Where a Markdown source sits in a Docusaurus site, from its key alone: URL, version, locale.

A site root (the folder with `docusaurus.config.js`) keeps each kind of content in a folder of
its own, and the folder decides the page's URL and metadata. Keys are relative to the site root;
the docs folder is keyed `docs/` wherever it is (`--docs-dir ../docs`):

| key                                                        | page                              |
| ---------------------------------------------------------- | --------------------------------- |
| `docs/<rel>`                                               | docs, version `current`           |
| `versioned_docs/version-<V>/<rel>`                         | docs, version `V`                 |
| `i18n/<locale>/docusaurus-plugin-content-docs/current/<rel>` | docs, `current`, in `<locale>`  |
| `i18n/<locale>/docusaurus-plugin-content-docs/version-<V>/<rel>` | docs, `V`, in `<locale>`    |
| `blog/<file>`, `i18n/<locale>/docusaurus-plugin-content-blog/<file>` | blog post             |
| `src/pages/<file>`, `i18n/<locale>/docusaurus-plugin-content-pages/<file>` | page            |

Anything else (`build/`, `node_modules/`, `static/`, `versioned_sidebars/`, translation JSON)
is not a page, and `iter_files` does not even walk into it.

Versions follow `versions.json` as Docusaurus does: its first entry is the latest release, the
default version, served at `/<routeBasePath>/...`; `current` (the `docs/` folder) is then served
at `/<routeBasePath>/next/` and every other version at `/<routeBasePath>/<V>/`. Without
`versions.json`, `current` is the default version. A non-default locale prefixes the URL
(`/fr/docs/...`). A translated file only replaces its source file: Docusaurus builds no page for
a translation whose source is gone, and in the default locale a translation shadows its source
(`unbuilt_files`).

A folder that is not a site root (a docs folder, a build) keeps today's layout: keys relative to
it (`iter_site_files`), every Markdown file a doc of the default version in the default locale
at `/<routeBasePath>/<slug>`; HTML pages of a build say where they sit themselves.

Not read: `docusaurus.config.js` itself. So custom version paths or labels
(`versions: {current: {path: ...}}`), `lastVersion`, a locale's custom `path`, a blog or pages
`routeBasePath` other than the defaults, and docs plugin instances other than the default one
(`<id>_versioned_docs/`, `docusaurus-plugin-content-docs-<id>/`) are not followed.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from docsrag.config import Settings
from docsrag.errors import DocumentError, UnsupportedDocument
from docsrag.models import CURRENT_VERSION, PageMeta
from docsrag.parsing.keys import KeyInfo, classify_key

__all__ = ["SourceLayout", "SourceLocation", "iter_site_files"]

DOCS_PLUGIN = "docusaurus-plugin-content-docs"
BLOG_PLUGIN = "docusaurus-plugin-content-blog"
PAGES_PLUGIN = "docusaurus-plugin-content-pages"
BLOG_ROUTE = "blog"
NEXT_VERSION_PATH = "next"

_CONFIG_NAMES = tuple(
    f"docusaurus.config.{ext}" for ext in ("js", "ts", "mjs", "cjs", "mts", "cts")
)
# BCP 47-like, as `Settings.default_locale`: `fr`, `pt-BR`, `zh-Hans`.
_LOCALE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
_VERSION_PREFIX = "version-"
_PRUNED_DIRS = frozenset({"node_modules"})  # and every hidden folder (`.docusaurus`, `.git`)


@dataclass(frozen=True, slots=True)
class SourceLocation:
    """What the Markdown parser needs to know about one source file.

    `key` is relative to the file's content folder (the docs version folder, the blog folder,
    `src/pages`): the key the plugin's URL rules take. `route_base_path` is the route before the
    file's slug without the locale (`docs`, `docs/next`, `docs/1.0`, `blog`; empty for pages);
    `locale_prefix` is the locale's URL segment (`fr`), empty in the default locale. `meta` has
    everything but `doc_id`, which needs the front matter.
    """

    key: str
    route_base_path: str = "docs"
    locale_prefix: str = ""
    meta: PageMeta = field(default_factory=PageMeta)

    @property
    def route(self) -> str:
        """The full route before the slug: `fr/docs/1.0`."""
        return "/".join(part for part in (self.locale_prefix, self.route_base_path) if part)


@dataclass(frozen=True, slots=True)
class SourceLayout:
    """How the files under `root` map to pages: a Docusaurus site root, or a plain folder.

    Built once per ingest by `detect` (`versions.json` and a few folder listings, however many
    versions there are); `locate` and `classify` then work on keys alone, in constant time.

    * `site`: False for a docs folder or a build (keys relative to `root`, every Markdown file a
      doc of the default version). The other fields below only matter for a site.
    * `docs_dir`: the docs plugin's folder (`root/docs` unless given), keyed `docs/`.
    * `versions`: `versions.json`, newest first; `last_version` is the default version (its
      first entry other than `current`, else `current`).
    * `orphan_versions`: `versioned_docs/version-<V>` folders that `versions.json` does not list.
      Docusaurus would not build them; they are still indexed as non-default versions.
    * `locales`: the locale folders under `i18n/` that hold translated content.
    * `notes`: what `detect` found wrong or unsupported, for the caller to log.
    """

    root: Path = Path(".")
    site: bool = False
    docs_dir: Path | None = None
    default_locale: str = "en"
    route_base_path: str = "docs"
    versions: tuple[str, ...] = ()
    last_version: str = CURRENT_VERSION
    orphan_versions: tuple[str, ...] = ()
    locales: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=(), compare=False)

    # --- construction ---------------------------------------------------------------------------

    @classmethod
    def docs_folder(cls, root: Path = Path("."), *, settings: Settings) -> SourceLayout:
        """A plain docs folder (or a build): today's layout, from the settings."""
        return cls(
            root=root,
            default_locale=settings.default_locale,
            route_base_path=settings.docs_route_base_path,
        )

    @classmethod
    def detect(
        cls, root: Path, *, docs_dir: Path | None = None, settings: Settings
    ) -> SourceLayout:
        """Read the layout of `root`.

        `root` is a site when it holds a `docusaurus.config.*`, `versions.json`,
        `versioned_docs/`, an `i18n/` folder of Docusaurus translations, or a `blog/` beside
        `docs/`, `src/` or `package.json`; and always when `docs_dir` is given. A folder with
        an `index.html` or `404.html` and no config is a build, not a site. (A bare `i18n/` or
        `blog/` folder is not enough: docs folders have sections called that.)

        A relative `docs_dir` is looked up from the current directory, then from `root` (like
        the docs plugin's `path`). Raises `DocumentError` for a missing root or docs folder and
        for a `versions.json` that is not a list of version names.
        """
        plain = cls.docs_folder(root, settings=settings)
        if not root.exists():
            raise DocumentError(f"{root}: no such folder")
        if root.is_file() or (docs_dir is None and not _looks_like_site(root)):
            if docs_dir is not None:
                raise DocumentError(f"{root}: --docs-dir needs a site folder, not a file")
            return plain

        notes: list[str] = []
        docs = _resolve_docs_dir(root, docs_dir)
        versions = _read_versions(root)
        on_disk = _version_folders(root / "versioned_docs")
        orphans = tuple(name for name in on_disk if name not in versions)
        for name in orphans:
            notes.append(
                f"versioned_docs/version-{name} is not listed in versions.json (Docusaurus "
                f"does not build it); indexed as the non-default version {name!r}"
            )
        for name in versions:
            if name != CURRENT_VERSION and name not in on_disk:
                notes.append(f"versions.json lists {name!r} but versioned_docs/ has no folder")
        if not docs.is_dir():
            notes.append(f"{docs}: no docs folder; only versions, translations, blog and pages")
        locales, locale_notes = _locale_folders(root / "i18n")
        notes.extend(locale_notes)
        notes.extend(_other_instances(root))
        return replace(
            plain,
            site=True,
            docs_dir=docs,
            versions=versions,
            last_version=next((v for v in versions if v != CURRENT_VERSION), CURRENT_VERSION),
            orphan_versions=orphans,
            locales=locales,
            notes=tuple(notes),
        )

    # --- keys -> pages ---------------------------------------------------------------------------

    def version_path(self, version: str) -> str:
        """The URL segment of a docs version: empty for the default version, `next` for
        `current` when it is not the default, else the version's name."""
        if version == self.last_version:
            return ""
        return NEXT_VERSION_PATH if version == CURRENT_VERSION else version

    def locate(self, key: str) -> SourceLocation:
        """Where a Markdown key sits. Raises `UnsupportedDocument` when it is not a page."""
        found = self._locate(key.strip().lstrip("/"))
        if isinstance(found, str):
            raise UnsupportedDocument(f"{key}: {found}")
        return found

    def classify(self, key: str) -> KeyInfo:
        """`classify_key`, then the layout's verdict: in a site, only Markdown in a content
        folder is a page (no I/O)."""
        info = classify_key(key)
        if info.format is None or not self.site:
            return info
        if info.format != "markdown":
            return KeyInfo(format=None, reason="not Markdown (a site's pages are its sources)")
        found = self._locate(key.strip().lstrip("/"))
        return KeyInfo(format=None, reason=found) if isinstance(found, str) else info

    def translated_key(self, key: str) -> str | None:
        """The key of the file a translation replaces (`i18n/fr/docusaurus-plugin-content-docs/
        current/intro.md` -> `docs/intro.md`); None when `key` is not a translation."""
        if not self.site or not key.startswith("i18n/"):
            return None
        parts = key.split("/", 3)
        if len(parts) < 4:
            return None
        plugin, rest = parts[2], parts[3]
        if plugin == BLOG_PLUGIN:
            return f"blog/{rest}"
        if plugin == PAGES_PLUGIN:
            return f"src/pages/{rest}"
        if plugin == DOCS_PLUGIN:
            folder, _, rel = rest.partition("/")
            if folder == CURRENT_VERSION:
                return f"docs/{rel}"
            if folder.startswith(_VERSION_PREFIX):
                return f"versioned_docs/{folder}/{rel}"
        return None

    def unbuilt_files(self, keys: Iterable[str]) -> dict[str, str]:
        """Files of `keys` that map to a page Docusaurus does not build from them, with why:
        a translation whose source file is not among `keys`, and a source file shadowed by its
        translation into the default locale."""
        keys = set(keys)
        unbuilt: dict[str, str] = {}
        for key in keys:
            source = self.translated_key(key)
            if source is None:
                continue
            if source not in keys:
                unbuilt[key] = f"translates {source}, which does not exist (no page is built)"
            elif key.split("/", 2)[1] == self.default_locale:
                unbuilt[source] = f"the default locale reads its translation {key} instead"
        return unbuilt

    def _locate(self, key: str) -> SourceLocation | str:
        """`locate`, with the reason as a string when the key is not a page."""
        if not self.site:
            return self._doc(key, CURRENT_VERSION, self.default_locale)
        head, _, rest = key.partition("/")
        if head == "docs" and rest:
            return self._doc(rest, CURRENT_VERSION, self.default_locale)
        if head == "versioned_docs":
            folder, _, rel = rest.partition("/")
            version = folder[len(_VERSION_PREFIX) :]
            if not folder.startswith(_VERSION_PREFIX) or not version or not rel:
                return "not in a versioned_docs/version-<name>/ folder"
            return self._doc(rel, version, self.default_locale)
        if head == "blog" and rest:
            return self._blog(rest, self.default_locale)
        if key.startswith("src/pages/"):
            return self._page(key[len("src/pages/") :], self.default_locale)
        if head == "i18n":
            return self._translation(rest)
        return "not in a content folder (docs/, versioned_docs/, i18n/, blog/, src/pages/)"

    def _translation(self, rest: str) -> SourceLocation | str:
        locale, _, rest = rest.partition("/")
        plugin, _, rel = rest.partition("/")
        if not _LOCALE.match(locale):
            return f"i18n/{locale} is not a locale folder"
        if not rel:
            return "not translated content (i18n/<locale>/docusaurus-plugin-content-*/...)"
        if plugin == DOCS_PLUGIN:
            folder, _, doc = rel.partition("/")
            if folder == CURRENT_VERSION:
                version = CURRENT_VERSION
            elif folder.startswith(_VERSION_PREFIX) and len(folder) > len(_VERSION_PREFIX):
                version = folder[len(_VERSION_PREFIX) :]
            else:
                return f"not in {DOCS_PLUGIN}/current/ or {DOCS_PLUGIN}/version-<name>/"
            if not doc:
                return "not a doc"
            return self._doc(doc, version, locale)
        if plugin == BLOG_PLUGIN:
            return self._blog(rel, locale)
        if plugin == PAGES_PLUGIN:
            return self._page(rel, locale)
        if plugin.startswith(DOCS_PLUGIN + "-"):
            instance = plugin[len(DOCS_PLUGIN) + 1 :]
            return f"docs plugin instance {instance!r}: only the default instance is indexed"
        return "not translated content (i18n/<locale>/docusaurus-plugin-content-*/...)"

    def _prefix(self, locale: str) -> str:
        return "" if locale == self.default_locale else locale

    def _doc(self, rel: str, version: str, locale: str) -> SourceLocation:
        version_path = self.version_path(version)
        route = "/".join(part for part in (self.route_base_path, version_path) if part)
        meta = PageMeta(
            kind="docs", version=version, default_version=not version_path, locale=locale
        )
        return SourceLocation(
            key=rel, route_base_path=route, locale_prefix=self._prefix(locale), meta=meta
        )

    def _blog(self, rel: str, locale: str) -> SourceLocation:
        meta = PageMeta(kind="blog", version=None, default_version=True, locale=locale)
        return SourceLocation(
            key=rel, route_base_path=BLOG_ROUTE, locale_prefix=self._prefix(locale), meta=meta
        )

    def _page(self, rel: str, locale: str) -> SourceLocation:
        meta = PageMeta(kind="page", version=None, default_version=True, locale=locale)
        return SourceLocation(
            key=rel, route_base_path="", locale_prefix=self._prefix(locale), meta=meta
        )

    # --- files -----------------------------------------------------------------------------------

    def content_folders(self) -> list[tuple[str, Path]]:
        """`(key prefix, folder)` of every existing folder that can hold pages, in key order.
        A plain folder is its own only content folder, with an empty prefix."""
        if not self.site:
            return [("", self.root)]
        root = self.root
        folders = [("blog", root / "blog")]
        if self.docs_dir is not None:
            folders.append(("docs", self.docs_dir))
        i18n = root / "i18n"
        for locale in _sorted_dirs(i18n):
            for plugin in _sorted_dirs(locale):
                if plugin.name.startswith("docusaurus-plugin-content-"):
                    folders.append((f"i18n/{locale.name}/{plugin.name}", plugin))
        folders.append(("src/pages", root / "src" / "pages"))
        folders.append(("versioned_docs", root / "versioned_docs"))
        return [(prefix, folder) for prefix, folder in folders if folder.is_dir()]

    def iter_files(self) -> Iterator[tuple[str, Path]]:
        """Every file of the content folders as `(source_key, path)`, sorted within each folder;
        hidden and `node_modules` folders are not walked, nor symlinked folders. A plain folder
        yields every file under it (`parsing.iter_site_files`)."""
        if not self.site:
            yield from iter_site_files(self.root)
            return
        for prefix, folder in self.content_folders():
            for current, dirs, files in os.walk(folder):
                dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _PRUNED_DIRS)
                base = Path(current)
                relative = base.relative_to(folder).as_posix()
                start = prefix if relative == "." else f"{prefix}/{relative}"
                for name in sorted(files):
                    yield f"{start}/{name}", base / name


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


# --- detection helpers ----------------------------------------------------------------------------


def _looks_like_site(root: Path) -> bool:
    if any((root / name).is_file() for name in _CONFIG_NAMES):
        return True
    if (root / "index.html").is_file() or (root / "404.html").is_file():
        return False  # a build (its blog/ and docs/ hold HTML)
    if (root / "versions.json").is_file() or (root / "versioned_docs").is_dir():
        return True
    if _has_translations(root / "i18n"):
        return True
    return (root / "blog").is_dir() and any(
        (root / name).exists() for name in ("docs", "src", "package.json")
    )


def _has_translations(i18n: Path) -> bool:
    for locale in _sorted_dirs(i18n):
        if (locale / "code.json").is_file():
            return True
        if any(d.name.startswith("docusaurus-") for d in _sorted_dirs(locale)):
            return True
    return False


def _sorted_dirs(folder: Path) -> list[Path]:
    try:
        entries = list(os.scandir(folder))
    except OSError:  # missing, or not a folder
        return []
    return sorted(
        (Path(entry.path) for entry in entries if entry.is_dir(follow_symlinks=False)),
        key=lambda path: path.name,
    )


def _resolve_docs_dir(root: Path, docs_dir: Path | None) -> Path:
    if docs_dir is None:
        return root / "docs"
    candidates = [docs_dir] if docs_dir.is_absolute() else [docs_dir, root / docs_dir]
    found = next((path for path in candidates if path.is_dir()), None)
    if found is None:
        looked = " or ".join(str(path) for path in candidates)
        raise DocumentError(f"{docs_dir}: no such docs folder (looked for {looked})")
    resolved_root, resolved_docs = root.resolve(), found.resolve()
    if resolved_root == resolved_docs or resolved_root.is_relative_to(resolved_docs):
        raise DocumentError(f"{found}: the docs folder cannot hold the site root {root}")
    return found


def _read_versions(root: Path) -> tuple[str, ...]:
    path = root / "versions.json"
    if not path.is_file():
        return ()
    try:
        names = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DocumentError(f"{path}: cannot read the versions list: {exc}") from exc
    if not isinstance(names, list) or not all(
        isinstance(name, str) and name.strip() and "/" not in name and "\\" not in name
        for name in names
    ):
        raise DocumentError(f"{path}: expected a JSON list of version names, got {names!r}")
    return tuple(names)


def _version_folders(versioned_docs: Path) -> tuple[str, ...]:
    return tuple(
        folder.name[len(_VERSION_PREFIX) :]
        for folder in _sorted_dirs(versioned_docs)
        if folder.name.startswith(_VERSION_PREFIX) and len(folder.name) > len(_VERSION_PREFIX)
    )


def _locale_folders(i18n: Path) -> tuple[tuple[str, ...], list[str]]:
    locales: list[str] = []
    notes: list[str] = []
    for folder in _sorted_dirs(i18n):
        content = [d for d in _sorted_dirs(folder) if d.name.startswith("docusaurus-plugin-")]
        if not content:
            continue
        if _LOCALE.match(folder.name):
            locales.append(folder.name)
        else:
            notes.append(f"i18n/{folder.name} is not a locale folder; its files are not pages")
    return tuple(locales), notes


def _other_instances(root: Path) -> list[str]:
    """Notes for the content of docs plugin instances other than the default one."""
    notes = []
    for name in sorted(os.listdir(root)):
        if name.endswith(("_versioned_docs", "_versions.json")):
            notes.append(f"{name}: docs plugin instances other than the default are not indexed")
    return notes
