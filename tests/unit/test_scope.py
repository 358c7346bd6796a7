"""Which docs version and locale a question is answered from (`docsrag.scope`)."""

from __future__ import annotations

import logging

import pytest

from docsrag.scope import (
    BlogPolicy,
    SiteCatalog,
    UnknownScope,
    page_scope,
    resolve_scope,
    version_named_in,
)

SITE = "https://docs.example.org"
CATALOG = SiteCatalog(
    versions=("1.1", "current", "1.0"),
    default_version="1.1",
    locales=("en", "fr"),
    default_locale="en",
    has_blog=True,
)


def scope_for(question: str = "How do I install it?", **kwargs: object):  # type: ignore[no-untyped-def]
    return resolve_scope(catalog=CATALOG, question=question, site_url=SITE, **kwargs)  # type: ignore[arg-type]


def test_plain_question_uses_the_default_version_and_locale() -> None:
    scope = scope_for()
    assert (scope.version, scope.locales, scope.source) == ("1.1", ("en",), "default")
    assert scope.label == "1.1 (latest)"
    assert scope.blog is BlogPolicy.FALLBACK


@pytest.mark.parametrize(
    ("page_url", "version", "locales"),
    [
        (f"{SITE}/docs/1.0/getting-started", "1.0", ("en",)),
        (f"{SITE}/docs/next/getting-started#install", "current", ("en",)),
        (f"{SITE}/docs/getting-started", "1.1", ("en",)),
        (f"{SITE}/fr/docs/getting-started", "1.1", ("fr", "en")),
        (f"{SITE}/fr/docs/next/", "current", ("fr", "en")),
        (f"{SITE}/docs/1.0/", "1.0", ("en",)),
        (f"{SITE}/blog/welcome", "1.1", ("en",)),  # not a docs page: default version
        (f"{SITE}/fr/", "1.1", ("fr", "en")),
    ],
)
def test_the_visitors_page_decides(page_url: str, version: str, locales: tuple[str, ...]) -> None:
    scope = scope_for(page_url=page_url)
    assert (scope.version, scope.locales) == (version, locales)


@pytest.mark.parametrize(
    "page_url",
    [
        "https://evil.example/docs/1.0/x",  # another site
        "not a url",
        "/docs/1.0/x",  # relative
        "javascript:alert(1)",
        "http://[::1",  # malformed
        "",
    ],
)
def test_a_page_url_this_cannot_read_is_ignored_and_logged(
    page_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="docsrag.scope"):
        scope = scope_for(page_url=page_url)
    assert (scope.version, scope.locales) == ("1.1", ("en",))
    if page_url:
        assert "ignoring page_url" in caplog.text


def test_site_base_path_is_respected() -> None:
    scope = resolve_scope(
        catalog=CATALOG,
        question="q",
        site_url="https://example.org/handbook",
        page_url="https://example.org/handbook/fr/docs/1.0/x",
    )
    assert (scope.version, scope.locales) == ("1.0", ("fr", "en"))
    outside = resolve_scope(
        catalog=CATALOG,
        question="q",
        site_url="https://example.org/handbook",
        page_url="https://example.org/other/docs/1.0/x",
    )
    assert outside.version == "1.1"


@pytest.mark.parametrize(
    ("question", "version"),
    [
        ("How do I set the data folder in 1.0?", "1.0"),
        ("In v1.0, which setting names the Qdrant folder?", "1.0"),
        ("Does docsrag 1.0.x support ChatKit?", "1.0"),
        ("What changes in the next version?", "current"),
        ("Is this in the unreleased docs?", "current"),
        ("What does the latest version say about CORS?", "1.1"),
        ("How do I deploy it?", None),
        ("Port 11.0 or 1.05 are not versions", None),
    ],
)
def test_a_version_named_in_the_question(question: str, version: str | None) -> None:
    assert version_named_in(question, CATALOG) == version


def test_question_names_a_version_over_the_page_and_request_wins_over_both() -> None:
    on_next = f"{SITE}/docs/next/x"
    assert scope_for("How was it in 1.0?", page_url=on_next).version == "1.0"
    assert scope_for("How was it in 1.0?", page_url=on_next).source == "question"
    assert scope_for("How was it in 1.0?", page_url=on_next, version="next").version == "current"
    # the locale still comes from the page when only the version is given
    assert scope_for(page_url=f"{SITE}/fr/docs/x", version="1.0").locales == ("fr", "en")


@pytest.mark.parametrize(
    ("given", "version"),
    [
        ("1.0", "1.0"),
        ("v1.0", "1.0"),
        ("next", "current"),
        ("latest", "1.1"),
        ("CURRENT", "current"),
    ],
)
def test_explicit_version_aliases(given: str, version: str) -> None:
    assert scope_for(version=given).version == version


def test_unknown_version_or_locale_lists_what_the_site_has() -> None:
    with pytest.raises(UnknownScope) as version_error:
        scope_for(version="9.9")
    assert version_error.value.valid == ("1.1", "current", "1.0")
    assert "1.1, current, 1.0" in str(version_error.value)
    with pytest.raises(UnknownScope) as locale_error:
        scope_for(locale="de")
    assert locale_error.value.valid == ("en", "fr")


def test_default_version_setting_overrides_the_site_default() -> None:
    assert scope_for(default_version="current").version == "current"
    # a setting naming a version the site lacks is logged and ignored
    assert scope_for(default_version="7.0").version == "1.1"


def test_blog_policy() -> None:
    assert scope_for("What was announced in the 1.1 release?").blog is BlogPolicy.WITH_DOCS
    assert scope_for(include_blog=False).blog is BlogPolicy.OFF
    no_blog = SiteCatalog(versions=("current",), default_version="current", locales=("en",))
    assert resolve_scope(catalog=no_blog, question="q", site_url=SITE).blog is BlogPolicy.OFF


def test_one_version_sites_do_not_label_answers() -> None:
    single = SiteCatalog(versions=("current",), default_version="current", locales=("en",))
    scope = resolve_scope(
        catalog=single, question="What is new in the next version?", site_url=SITE
    )
    assert (scope.version, scope.label) == ("current", None)


def test_version_labels_are_plain_text() -> None:
    hostile = SiteCatalog(versions=("1.0", "<img src=x onerror=alert(1)>"), default_version="1.0")
    label = hostile.label("<img src=x onerror=alert(1)>")
    assert label is not None and "<" not in label and ">" not in label


def test_a_legacy_index_is_searched_unscoped() -> None:
    legacy = SiteCatalog(legacy=True)
    scope = resolve_scope(catalog=legacy, question="q", site_url=SITE, version="1.0")
    assert scope.unscoped and scope.version is None


def test_page_scope_of_a_non_docs_route() -> None:
    assert page_scope(f"{SITE}/fr/blog/x", catalog=CATALOG, site_url=SITE) == (None, "fr")


@pytest.mark.parametrize(
    ("question", "policy"),
    [
        ("What is the folder setting called in the latest release?", BlogPolicy.FALLBACK),
        ("Which settings were renamed in 1.1?", BlogPolicy.WITH_DOCS),
        ("What's new in the next version?", BlogPolicy.WITH_DOCS),
        ("Was version-aware search announced?", BlogPolicy.WITH_DOCS),
        ("How do I deploy to AWS?", BlogPolicy.FALLBACK),
    ],
)
def test_release_questions_rank_the_blog_with_the_docs(question: str, policy: BlogPolicy) -> None:
    assert scope_for(question).blog is policy
