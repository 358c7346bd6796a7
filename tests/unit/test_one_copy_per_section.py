"""Each section once per answer (`retrieval.one_copy_per_section`), on hand-made hit lists."""

from __future__ import annotations

from docsrag.models import Hit, PageMeta
from docsrag.retrieval import one_copy_per_section
from docsrag.scope import SearchScope


def hit(chunk: str, key: str, anchor: str | None, locale: str = "en", doc: str = "a") -> Hit:
    prefix = "/fr" if locale == "fr" else ""
    return Hit(
        chunk_id=chunk,
        source_key=key,
        path=f"{prefix}/docs/{doc}",
        page_title=doc,
        heading_path=(),
        anchor=anchor,
        text="t",
        score=1.0,
        meta=PageMeta(locale=locale, doc_id=doc),
    )


FRENCH = SearchScope(version="current", locales=("fr", "en"))


def ids(hits: list[Hit]) -> list[str]:
    return [h.chunk_id for h in hits]


def test_parts_of_one_long_section_keep_their_own_ranks() -> None:
    hits = [
        hit("a1", "a.html", "long"),
        hit("b1", "b.html", "x", doc="b"),
        hit("a2", "a.html", "long"),
        hit("c1", "c.html", "y", doc="c"),
    ]
    assert ids(one_copy_per_section(hits, FRENCH)) == ["a1", "b1", "a2", "c1"]


def test_the_preferred_locale_takes_the_place_of_a_better_ranked_copy() -> None:
    hits = [
        hit("en1", "docs/a.html", "install"),
        hit("other", "docs/b.html", "x", doc="b"),
        hit("fr1", "fr/docs/a.html", "install", locale="fr"),
    ]
    assert ids(one_copy_per_section(hits, FRENCH)) == ["fr1", "other"]


def test_an_untranslated_section_keeps_its_english_copy() -> None:
    hits = [hit("en1", "docs/a.html", "install"), hit("fr2", "fr/docs/a.html", "deploy", "fr")]
    assert ids(one_copy_per_section(hits, FRENCH)) == ["en1", "fr2"]


def test_pages_without_a_doc_id_are_told_apart_by_path() -> None:
    first = Hit("1", "a.md", "/docs/a", "A", (), None, "t", 1.0)
    second = Hit("2", "b.md", "/docs/b", "B", (), None, "t", 0.5)
    assert first.section_key != second.section_key
    assert ids(one_copy_per_section([first, second], FRENCH)) == ["1", "2"]
