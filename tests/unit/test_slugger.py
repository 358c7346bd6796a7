"""Heading anchors must be the ones Docusaurus puts in the page, or citation links miss."""

from __future__ import annotations

import pytest

from docsrag.parsing.slugger import GithubSlugger, slug


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("alpha", "alpha"),
        ("bravoCharlieDelta", "bravocharliedelta"),
        ("heading with a - dash", "heading-with-a---dash"),
        ("heading with an _ underscore", "heading-with-an-_-underscore"),
        ("heading with a period.txt", "heading-with-a-periodtxt"),
        (
            "exchange.bind_headers(exchange, routing [, bindCallback])",
            "exchangebind_headersexchange-routing--bindcallback",
        ),
        (" a ", "-a-"),
        ("apostrophe’s should be trimmed", "apostrophes-should-be-trimmed"),
        ("I ♥ unicode", "i--unicode"),
        ("en–dash", "endash"),
        ("😄 unicode emoji", "-unicode-emoji"),
        ("😄_😄 unicode emoji", "_-unicode-emoji"),
        (":ok_hand: :hatched_chick: Two in a row", "ok_hand-hatched_chick-two-in-a-row"),
        ("Привет non-latin 你好", "привет-non-latin-你好"),
        ("Ⓐ circled", "ⓐ-circled"),  # Alphabetic symbols are kept, as github-slugger does
        ("a\u00a0b\tc", "abc"),  # only the plain space becomes a dash
        # Headings of the real Docusaurus docs
        ("📦 plugin-pwa", "-plugin-pwa"),
        ("Color mode - dark mode", "color-mode---dark-mode"),
        ("What's next?", "whats-next"),
        ("`docusaurus.config.js` API", "docusaurusconfigjs-api"),
        # U+FE0F (emoji presentation selector) is a mark, so github-slugger keeps it
        ("Fast Track \u23f1\ufe0f", "fast-track-\ufe0f"),
        ("日本語の見出し", "日本語の見出し"),
    ],
)
def test_slug_matches_github_slugger(heading: str, anchor: str) -> None:
    assert slug(heading) == anchor


def test_repeated_headings_get_numbered_suffixes_in_order() -> None:
    slugger = GithubSlugger()
    produced = [
        slugger.slug(text)
        for text in ["echo", "echo", "echo 1", "echo-1", "echo", "foxtrot-1", "foxtrot", "foxtrot"]
    ]
    assert produced == [
        "echo",
        "echo-1",
        "echo-1-1",
        "echo-1-2",
        "echo-2",
        "foxtrot-1",
        "foxtrot",
        "foxtrot-2",
    ]


def test_prototype_like_names_are_plain_slugs() -> None:
    slugger = GithubSlugger()
    assert [slugger.slug("__proto__"), slugger.slug("__proto__")] == ["__proto__", "__proto__-1"]
    assert slugger.slug("hasOwnProperty") == "hasownproperty"


def test_maintain_case_and_reset() -> None:
    slugger = GithubSlugger()
    assert slugger.slug("onBrokenLinks", maintain_case=True) == "onBrokenLinks"
    assert slugger.slug("onBrokenLinks", maintain_case=True) == "onBrokenLinks-1"
    slugger.reset()
    assert slugger.slug("onBrokenLinks", maintain_case=True) == "onBrokenLinks"
