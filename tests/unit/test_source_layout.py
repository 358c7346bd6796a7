"""A Docusaurus site's source tree: which files are pages, and the URL, version, locale and doc id
of each (`SourceLayout`), checked against the rules of Docusaurus 3's content plugins."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from docsrag.config import Settings
from docsrag.errors import DocumentError, UnsupportedDocument
from docsrag.models import PageMeta, ParsedPage
from docsrag.parsing import SourceLayout, parse_document

PAGE = "# Title\n\nSome text.\n"


@pytest.fixture(scope="module")
def settings() -> Settings:
    return Settings(_env_file=None)


def write(root: Path, files: dict[str, str]) -> Path:
    for key, text in files.items():
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def site_layout(**fields: object) -> SourceLayout:
    """A site layout without a tree: `locate` and `classify` need none."""
    values: dict[str, object] = {"site": True, "docs_dir": Path("docs")}
    values.update(fields)
    return SourceLayout(**values)  # type: ignore[arg-type]


VERSIONED = site_layout(versions=("2.0", "1.0"), last_version="2.0")


def parse(layout: SourceLayout, key: str, text: str = PAGE) -> ParsedPage:
    settings = Settings(_env_file=None)
    return parse_document(key, text.encode(), settings=settings, layout=layout)


# --- detect: site root or plain folder --------------------------------------------------------


@pytest.mark.parametrize(
    "files",
    [
        {"docusaurus.config.js": "export default {};"},
        {"docusaurus.config.ts": "export default {};"},
        {"versions.json": "[]", "docs/intro.md": PAGE},
        {"versioned_docs/version-1.0/intro.md": PAGE},
        {"i18n/fr/docusaurus-plugin-content-docs/current/intro.md": PAGE},
        {"i18n/fr/code.json": "{}"},
        {"blog/2024-01-15-hi.md": PAGE, "docs/intro.md": PAGE},
        {"blog/2024-01-15-hi.md": PAGE, "package.json": "{}"},
    ],
)
def test_a_site_root_is_recognised(
    tmp_path: Path, settings: Settings, files: dict[str, str]
) -> None:
    layout = SourceLayout.detect(write(tmp_path, files), settings=settings)
    assert layout.site
    assert layout.docs_dir == tmp_path / "docs"


@pytest.mark.parametrize(
    "files",
    [
        # a docs folder: the Docusaurus docs have sections called i18n/ and blog/
        {"intro.md": PAGE, "i18n/i18n-tutorial.mdx": PAGE, "blog/writing.md": PAGE},
        # a build: blog/ and docs/ beside index.html
        {"index.html": "<html></html>", "docs/intro/index.html": "x", "blog/index.html": "x"},
        {"404.html": "x", "docs/index.html": "x", "versions.json": "[]"},
    ],
)
def test_a_docs_folder_or_a_build_keeps_todays_layout(
    tmp_path: Path, settings: Settings, files: dict[str, str]
) -> None:
    root = write(tmp_path, files)
    layout = SourceLayout.detect(root, settings=settings)
    assert not layout.site
    assert sorted(key for key, _ in layout.iter_files()) == sorted(files)
    if "intro.md" in files:
        page = parse(layout, "i18n/i18n-tutorial.mdx")
        assert page.path == "/docs/i18n/i18n-tutorial"
        assert page.meta == PageMeta(doc_id="i18n/i18n-tutorial")


def test_without_a_layout_markdown_is_a_doc_of_a_plain_docs_folder(settings: Settings) -> None:
    page = parse_document("01-guides/02-setup.md", PAGE.encode(), settings=settings)
    assert page.path == "/docs/guides/setup"
    assert page.meta == PageMeta(
        kind="docs", version="current", default_version=True, locale="en", doc_id="guides/setup"
    )
    french = Settings(_env_file=None, default_locale="fr")
    assert parse_document("a.md", PAGE.encode(), settings=french).meta.locale == "fr"


def test_docs_dir_is_found_from_the_current_folder_or_the_site_root(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Our own sample site keeps its docs beside the site: site/../docs.
    site = write(tmp_path / "site", {"docusaurus.config.js": "", "src/pages/index.js": ""})
    write(tmp_path / "docs", {"intro.md": PAGE})
    monkeypatch.chdir(tmp_path)

    from_cwd = SourceLayout.detect(Path("site"), docs_dir=Path("docs"), settings=settings)
    from_root = SourceLayout.detect(site, docs_dir=Path("../docs"), settings=settings)

    assert from_cwd.docs_dir == Path("docs")
    assert from_root.docs_dir == site / "../docs"
    for layout in (from_cwd, from_root):
        assert [key for key, _ in layout.iter_files()] == ["docs/intro.md", "src/pages/index.js"]


def test_docs_dir_makes_any_folder_a_site(tmp_path: Path, settings: Settings) -> None:
    write(tmp_path, {"site/.keep": "", "docs/intro.md": PAGE})
    layout = SourceLayout.detect(tmp_path / "site", docs_dir=tmp_path / "docs", settings=settings)
    assert layout.site
    assert [key for key, _ in layout.iter_files()] == ["docs/intro.md"]


@pytest.mark.parametrize("docs_dir", ["missing", "."])
def test_a_bad_docs_dir_is_an_error(tmp_path: Path, settings: Settings, docs_dir: str) -> None:
    write(tmp_path, {"docusaurus.config.js": ""})
    with pytest.raises(DocumentError, match="docs folder"):
        SourceLayout.detect(tmp_path, docs_dir=tmp_path / docs_dir, settings=settings)


@pytest.mark.parametrize("content", ['{"1.0": true}', "[1, 2]", '["a/b"]', "not json"])
def test_a_broken_versions_json_is_an_error(
    tmp_path: Path, settings: Settings, content: str
) -> None:
    write(tmp_path, {"docusaurus.config.js": "", "versions.json": content})
    with pytest.raises(DocumentError, match=r"versions\.json"):
        SourceLayout.detect(tmp_path, settings=settings)


def test_detect_reads_versions_orphans_and_locales(tmp_path: Path, settings: Settings) -> None:
    root = write(
        tmp_path,
        {
            "docusaurus.config.js": "",
            "versions.json": '["2.0", "1.0"]',
            "versioned_docs/version-2.0/intro.md": PAGE,
            "versioned_docs/version-0.9/intro.md": PAGE,  # not in versions.json
            "i18n/fr/docusaurus-plugin-content-docs/current/intro.md": PAGE,
            "i18n/pt-BR/docusaurus-plugin-content-blog/2024-01-01-a.md": PAGE,
            "i18n/templates/docusaurus-plugin-content-docs/current/intro.md": PAGE,
            "i18n/de/code.json": "{}",  # UI strings only: no content
            "community_versioned_docs/version-1.0/team.md": PAGE,
        },
    )
    layout = SourceLayout.detect(root, settings=settings)

    assert layout.versions == ("2.0", "1.0")
    assert layout.last_version == "2.0"
    assert layout.orphan_versions == ("0.9",)
    assert layout.locales == ("fr", "pt-BR")
    notes = "\n".join(layout.notes)
    assert "version-0.9 is not listed in versions.json" in notes
    assert "versions.json lists '1.0' but versioned_docs/ has no folder" in notes
    assert "i18n/templates is not a locale folder" in notes
    assert "community_versioned_docs" in notes
    assert "no docs folder" in notes

    orphan = parse(layout, "versioned_docs/version-0.9/intro.md")
    assert orphan.path == "/docs/0.9/intro"
    assert (orphan.meta.version, orphan.meta.default_version) == ("0.9", False)


# --- versions: URL segment and default ---------------------------------------------------------


@pytest.mark.parametrize(
    ("versions", "expected"),
    [
        # no versions.json: the docs folder is the only, default, version
        ((), {"current": ("", True)}),
        # the first entry is the latest release; current moves to /next/
        (("2.0", "1.0"), {"2.0": ("", True), "current": ("next", False), "1.0": ("1.0", False)}),
        # an explicit "current" entry is skipped when choosing the default
        (("current", "1.0"), {"1.0": ("", True), "current": ("next", False)}),
        ([], {"current": ("", True)}),
    ],
)
def test_version_routes(
    versions: tuple[str, ...], expected: dict[str, tuple[str, bool]], settings: Settings
) -> None:
    last = next((v for v in versions if v != "current"), "current")
    layout = site_layout(versions=tuple(versions), last_version=last)
    for version, (segment, default) in expected.items():
        assert layout.version_path(version) == segment
        folder = "docs" if version == "current" else f"versioned_docs/version-{version}"
        meta = parse(layout, f"{folder}/intro.md").meta
        assert (meta.version, meta.default_version) == (version, default)


def test_twenty_versions_are_routed_without_scanning(tmp_path: Path, settings: Settings) -> None:
    names = [f"{n}.0" for n in range(20, 0, -1)]
    files = {"versions.json": "[" + ", ".join(f'"{n}"' for n in names) + "]"}
    for name in names:
        for page in range(3):
            files[f"versioned_docs/version-{name}/p{page}.md"] = PAGE
    root = write(tmp_path, files)
    walks: list[str] = []
    real_walk = os.walk

    def counting_walk(top: Path) -> Iterator[tuple[str, list[str], list[str]]]:
        walks.append(str(top))
        return real_walk(top)

    layout = SourceLayout.detect(root, settings=settings)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("docsrag.parsing.layout.os.walk", counting_walk)
        keys = [key for key, _ in layout.iter_files()]
    assert len(keys) == 60
    assert walks == [str(root / "versioned_docs")]  # one walk, not one per version
    paths = {parse(layout, key).path for key in keys}
    assert "/docs/p0" in paths and "/docs/1.0/p2" in paths and len(paths) == 60


# --- keys -> kind, route, version, locale --------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "path", "kind", "version", "default", "locale"),
    [
        ("docs/intro.md", "/docs/next/intro", "docs", "current", False, "en"),
        ("docs/index.md", "/docs/next/", "docs", "current", False, "en"),
        ("versioned_docs/version-2.0/intro.md", "/docs/intro", "docs", "2.0", True, "en"),
        ("versioned_docs/version-1.0/a/b.mdx", "/docs/1.0/a/b", "docs", "1.0", False, "en"),
        ("i18n/fr/docusaurus-plugin-content-docs/current/intro.md",
         "/fr/docs/next/intro", "docs", "current", False, "fr"),
        ("i18n/fr/docusaurus-plugin-content-docs/version-2.0/intro.md",
         "/fr/docs/intro", "docs", "2.0", True, "fr"),
        ("i18n/fr/docusaurus-plugin-content-docs/version-1.0/intro.md",
         "/fr/docs/1.0/intro", "docs", "1.0", False, "fr"),
        # any BCP 47-like folder name is a locale, configured or not
        ("i18n/pt-BR/docusaurus-plugin-content-docs/current/intro.md",
         "/pt-BR/docs/next/intro", "docs", "current", False, "pt-BR"),
        ("i18n/zh-Hans/docusaurus-plugin-content-docs/current/intro.md",
         "/zh-Hans/docs/next/intro", "docs", "current", False, "zh-Hans"),
        # the default locale's translations have no prefix
        ("i18n/en/docusaurus-plugin-content-docs/current/intro.md",
         "/docs/next/intro", "docs", "current", False, "en"),
        ("blog/2024-01-15-welcome.md", "/blog/2024/01/15/welcome", "blog", None, True, "en"),
        ("i18n/fr/docusaurus-plugin-content-blog/2024-01-15-welcome.md",
         "/fr/blog/2024/01/15/welcome", "blog", None, True, "fr"),
        ("src/pages/about.md", "/about", "page", None, True, "en"),
        ("src/pages/index.mdx", "/", "page", None, True, "en"),
        ("src/pages/team/index.md", "/team/", "page", None, True, "en"),
        ("i18n/fr/docusaurus-plugin-content-pages/about.md", "/fr/about", "page", None, True, "fr"),
    ],
)  # fmt: skip
def test_keys_map_to_pages(
    key: str, path: str, kind: str, version: str | None, default: bool, locale: str
) -> None:
    page = parse(VERSIONED, key)
    assert page.path == path
    assert (page.kind, page.meta.kind) == (kind, kind)
    assert page.meta.plugin == "default"
    assert (page.meta.version, page.meta.default_version, page.meta.locale) == (
        version,
        default,
        locale,
    )
    location = VERSIONED.locate(key)
    assert path.startswith(f"/{location.route}/" if location.route else "/")
    assert location.locale_prefix == ("" if locale == "en" else locale)


def test_a_custom_docs_route_and_default_locale() -> None:
    layout = site_layout(route_base_path="", default_locale="fr", versions=("3",), last_version="3")
    assert parse(layout, "docs/intro.md").path == "/next/intro"
    assert parse(layout, "versioned_docs/version-3/intro.md").path == "/intro"
    page = parse(layout, "i18n/en/docusaurus-plugin-content-docs/version-3/intro.md")
    assert (page.path, page.meta.locale) == ("/en/intro", "en")


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("build/docs/intro/index.html", "not Markdown"),
        ("build/docs/intro.md", "not in a content folder"),
        ("static/notes.md", "not in a content folder"),
        ("README.md", "not in a content folder"),
        ("versioned_sidebars/version-1.0-sidebars.json", "not a page"),
        ("versioned_docs/intro.md", "version-<name>"),
        ("versioned_docs/v1/intro.md", "version-<name>"),
        ("i18n/templates/docusaurus-plugin-content-docs/current/intro.md", "not a locale folder"),
        ("i18n/_old/docusaurus-plugin-content-docs/current/intro.md", "partial"),
        ("i18n/fr/docusaurus-plugin-content-docs/intro.md", "current/"),
        ("i18n/fr/docusaurus-plugin-content-docs/current.json", "not a page"),
        ("i18n/fr/docusaurus-plugin-content-docs-community/current/team.md", "'community'"),
        ("i18n/fr/docusaurus-theme-classic/notes.md", "not translated content"),
        ("i18n/fr/code.json", "not a page"),
        ("blog/authors.yml", "not a page"),
        ("blog/tags.yml", "not a page"),
        ("blog/2024-01-15-post/cover.png", "asset"),
        ("blog/_draft-notes.md", "partial"),
        ("src/pages/index.js", "asset"),
        ("src/components/Intro.md", "not in a content folder"),
        ("docs/guide.html", "not Markdown"),
    ],
)
def test_what_is_not_a_page_of_a_site(key: str, reason: str) -> None:
    info = VERSIONED.classify(key)
    assert info.format is None
    assert reason in (info.reason or "")
    with pytest.raises(UnsupportedDocument):
        parse(VERSIONED, key)


@pytest.mark.parametrize("flag", ["draft", "unlisted"])
@pytest.mark.parametrize(
    ("key", "noun"),
    [
        ("docs/intro.md", "doc"),
        ("blog/2024-01-15-welcome.md", "post"),
        ("src/pages/about.md", "page"),
    ],
)
def test_drafts_and_unlisted_pages_are_skipped_with_the_reason(
    key: str, noun: str, flag: str
) -> None:
    with pytest.raises(UnsupportedDocument, match=f"{key}: {flag} {noun}"):
        parse(VERSIONED, key, f"---\n{flag}: true\n---\n\n{PAGE}")


# --- doc ids and slugs ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rel", "front_matter", "doc_id", "slug"),
    [
        ("intro.md", "", "intro", "intro"),
        ("01-guides/02-setup.md", "", "guides/setup", "guides/setup"),
        ("guides/index.md", "", "guides/index", "guides/"),
        ("02-guides/README.mdx", "", "guides/README", "guides/"),
        ("guides/guides.md", "", "guides/guides", "guides/"),
        ("guides/setup.md", "id: install", "guides/install", "guides/install"),
        ("guides/setup.md", "slug: /start", "guides/setup", "start"),
        ("guides/setup.md", "slug: here", "guides/setup", "guides/here"),
        ("01-guides/02-setup.md", "parse_number_prefixes: false", "01-guides/02-setup",
         "01-guides/02-setup"),
        ("2021-01-31-notes.md", "", "2021-01-31-notes", "2021-01-31-notes"),
    ],
)  # fmt: skip
def test_doc_ids_are_the_same_in_every_version_and_locale(
    rel: str, front_matter: str, doc_id: str, slug: str
) -> None:
    text = f"---\n{front_matter}\n---\n\n{PAGE}" if front_matter else PAGE
    places = {
        f"docs/{rel}": "/docs/next/",
        f"versioned_docs/version-2.0/{rel}": "/docs/",
        f"versioned_docs/version-1.0/{rel}": "/docs/1.0/",
        f"i18n/fr/docusaurus-plugin-content-docs/current/{rel}": "/fr/docs/next/",
        f"i18n/fr/docusaurus-plugin-content-docs/version-1.0/{rel}": "/fr/docs/1.0/",
    }
    for key, route in places.items():
        page = parse(VERSIONED, key, text)
        assert page.meta.doc_id == doc_id, key
        assert page.path == route + slug, key
        assert page.meta.section_key("setup") == f"docs/default/{doc_id}#setup"


@pytest.mark.parametrize(
    ("rel", "front_matter", "path"),
    [
        ("2024-01-15-welcome.md", "", "/blog/2024/01/15/welcome"),
        ("2024-01-15-welcome/index.md", "", "/blog/2024/01/15/welcome"),
        ("2024-01-15-welcome/index.mdx", "", "/blog/2024/01/15/welcome"),
        ("2024/01/15/welcome.md", "", "/blog/2024/01/15/welcome"),
        ("2024-1-5-short-date.md", "", "/blog/2024/1/5/short-date"),
        ("news/2024-01-15-launch.md", "", "/blog/2024/01/15/news/launch"),
        ("welcome.md", "", "/blog/welcome"),
        ("welcome/index.md", "", "/blog/welcome"),
        ("news/launch.mdx", "", "/blog/news/launch"),
        # the slug is always within the blog route, with or without a leading slash
        ("2024-01-15-welcome.md", "slug: hello", "/blog/hello"),
        ("2024-01-15-welcome.md", "slug: /hello/world", "/blog/hello/world"),
        # a date in front matter does not move the URL
        ("welcome.md", "date: 2024-01-15", "/blog/welcome"),
    ],
)
def test_blog_post_urls(rel: str, front_matter: str, path: str) -> None:
    text = f"---\n{front_matter}\n---\n\n{PAGE}" if front_matter else PAGE
    page = parse(VERSIONED, f"blog/{rel}", text)
    assert page.path == path
    assert page.meta.doc_id == path.strip("/")
    french = parse(VERSIONED, f"i18n/fr/docusaurus-plugin-content-blog/{rel}", text)
    assert french.path == "/fr" + path
    assert french.meta.doc_id == page.meta.doc_id
    assert french.meta.locale == "fr"


def test_blog_and_page_titles_fall_back_to_the_file_name() -> None:
    assert parse(VERSIONED, "blog/2024-01-15-welcome/index.md", "Text.").title == "welcome"
    assert parse(VERSIONED, "src/pages/team/about.md", "Text.").title == "about"
    assert parse(VERSIONED, "docs/01-guides/02-setup.md", "Text.").title == "setup"


def test_pages_take_a_slug_and_keep_an_empty_doc_id_at_the_root() -> None:
    page = parse(VERSIONED, "src/pages/about.md", f"---\nslug: /company\n---\n\n{PAGE}")
    assert (page.path, page.meta.doc_id) == ("/company", "company")
    home = parse(VERSIONED, "i18n/fr/docusaurus-plugin-content-pages/index.md")
    assert (home.path, home.meta.doc_id, home.meta.version) == ("/fr/", "", None)


def test_translated_anchors_follow_the_same_slug_rules() -> None:
    text = (
        "# Présentation\n\nTexte.\n\n## Démarrage rapide\n\nTexte.\n\n"
        "## Démarrage rapide\n\nEncore.\n\n## Étape 2 : configurer {#configure}\n\nFin.\n"
    )
    page = parse(VERSIONED, "i18n/fr/docusaurus-plugin-content-docs/current/intro.md", text)
    assert [s.anchor for s in page.sections] == [
        None,
        "démarrage-rapide",
        "démarrage-rapide-1",
        "configure",
    ]
    assert page.title == "Présentation"


# --- files of a site --------------------------------------------------------------------------


def test_only_content_folders_are_walked(tmp_path: Path, settings: Settings) -> None:
    root = write(
        tmp_path,
        {
            "docusaurus.config.js": "",
            "package.json": "{}",
            "docs/intro.md": PAGE,
            "docs/.hidden/secret.md": PAGE,
            "docs/node_modules/pkg/README.md": PAGE,
            "blog/2024-01-15-hi.md": PAGE,
            "blog/authors.yml": "x: {}",
            "i18n/fr/code.json": "{}",
            "i18n/fr/docusaurus-theme-classic/navbar.json": "{}",
            "i18n/fr/docusaurus-plugin-content-docs/current.json": "{}",
            "i18n/fr/docusaurus-plugin-content-docs/current/intro.md": PAGE,
            "src/pages/index.js": "",
            "src/pages/about.md": PAGE,
            "src/components/Note.md": PAGE,
            "static/img/logo.png": "png",
            "build/index.html": "<html></html>",
            "build/docs/intro/index.html": "<html></html>",
            "node_modules/@docusaurus/core/README.md": PAGE,
            ".docusaurus/registry.js": "",
            "versioned_sidebars/version-1.0-sidebars.json": "{}",
        },
    )
    layout = SourceLayout.detect(root, settings=settings)
    keys = [key for key, _ in layout.iter_files()]
    assert keys == [
        "blog/2024-01-15-hi.md",
        "blog/authors.yml",
        "docs/intro.md",
        "i18n/fr/docusaurus-plugin-content-docs/current.json",
        "i18n/fr/docusaurus-plugin-content-docs/current/intro.md",
        "src/pages/about.md",
        "src/pages/index.js",
    ]
    assert dict(layout.iter_files())["docs/intro.md"] == root / "docs" / "intro.md"


def test_translations_docusaurus_does_not_build(tmp_path: Path, settings: Settings) -> None:
    layout = site_layout()
    keys = [
        "docs/intro.md",
        "docs/setup.md",
        "blog/2024-01-15-hi.md",
        "i18n/fr/docusaurus-plugin-content-docs/current/intro.md",
        "i18n/fr/docusaurus-plugin-content-docs/current/removed.md",  # its source is gone
        "i18n/fr/docusaurus-plugin-content-docs/version-9.9/intro.md",  # no such version
        "i18n/fr/docusaurus-plugin-content-blog/2024-01-15-hi.md",
        "i18n/en/docusaurus-plugin-content-docs/current/setup.md",  # shadows docs/setup.md
    ]
    unbuilt = layout.unbuilt_files(keys)
    assert set(unbuilt) == {
        "i18n/fr/docusaurus-plugin-content-docs/current/removed.md",
        "i18n/fr/docusaurus-plugin-content-docs/version-9.9/intro.md",
        "docs/setup.md",
    }
    assert "docs/removed.md, which does not exist" in unbuilt[keys[4]]
    assert "i18n/en/docusaurus-plugin-content-docs/current/setup.md" in unbuilt["docs/setup.md"]
    assert layout.translated_key(keys[6]) == "blog/2024-01-15-hi.md"
    assert layout.translated_key("i18n/fr/docusaurus-plugin-content-pages/a.md") == "src/pages/a.md"
    assert layout.translated_key("docs/intro.md") is None
    assert SourceLayout().unbuilt_files(keys) == {}  # a plain folder has no translations
