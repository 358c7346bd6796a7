"""Footnotes for ChatKit answers: where each `[n]` marker's source annotation goes, and titles."""

from __future__ import annotations

from chatkit.types import URLSource

from docsrag.answering import NOTICES, Answerer, CitationRenumberer
from docsrag.chatkit.server import (
    citation_annotations,
    listing_annotations,
    replayed_assistant_text,
    thread_title,
)
from docsrag.config import Settings
from docsrag.models import Hit

SETTINGS = Settings(_env_file=None, site_url="https://docs.example.org")  # type: ignore[call-arg]


def hit(path: str, anchor: str | None, title: str = "Page") -> Hit:
    return Hit(
        chunk_id=path,
        source_key=f"{path}.md",
        path=path,
        page_title=title,
        heading_path=("Section",) if anchor else (),
        anchor=anchor,
        text=f"Text of {path}.",
        score=1.0,
    )


INSTALL = hit("/docs/install", "npm", "Installation")
DEPLOY = hit("/docs/deploy", None, "Deployment")
SEARCH = hit("/docs/search", "algolia", "Search")


def placed(text: str, sources: list[Hit]) -> list[tuple[str, str]]:
    """(text up to the annotation, url) pairs."""
    result = []
    for annotation in citation_annotations(text, sources, settings=SETTINGS):
        assert isinstance(annotation.source, URLSource)
        assert annotation.index is not None
        result.append((text[: annotation.index], annotation.source.url))
    return result


def test_each_marker_gets_its_source_right_after_it() -> None:
    text = "Install with npm [1]. Then deploy [2]."

    assert placed(text, [INSTALL, DEPLOY]) == [
        ("Install with npm [1]", "https://docs.example.org/docs/install#npm"),
        ("Install with npm [1]. Then deploy [2]", "https://docs.example.org/docs/deploy"),
    ]


def test_a_grouped_marker_puts_its_sources_under_one_footnote() -> None:
    text = "Both pages agree [1, 2]."

    assert [prefix for prefix, _ in placed(text, [INSTALL, DEPLOY])] == [
        "Both pages agree [1, 2]",
        "Both pages agree [1, 2]",
    ]


def test_markers_in_code_and_indexes_are_not_citations() -> None:
    text = "Use `argv[1]` or:\n```js\nconst x = list[2];\n[1]\n```\nitems[1] and done [1]."

    assert placed(text, [INSTALL, DEPLOY]) == [
        (text[: text.rindex("[1]") + 3], "https://docs.example.org/docs/install#npm"),
        (text, "https://docs.example.org/docs/deploy"),  # not found: at the end
    ]


def test_renumbered_model_text_gets_matching_footnotes() -> None:
    renumberer = CitationRenumberer(3)
    text = renumberer.feed("Search it [3]. Install first [1][3].") + renumberer.finish()
    sources = [[INSTALL, DEPLOY, SEARCH][number - 1] for number in renumberer.cited]

    assert text == "Search it [1]. Install first [2][1]."
    assert [url for _, url in placed(text, sources)] == [
        "https://docs.example.org/docs/search#algolia",
        "https://docs.example.org/docs/install#npm",
        "https://docs.example.org/docs/search#algolia",
    ]


def test_a_retrieval_only_answer_has_one_footnote_per_listed_section() -> None:
    answer = Answerer(settings=SETTINGS, client=None).fallback(
        hits=[INSTALL, DEPLOY], reason="rate_limited"
    )

    annotations = listing_annotations(answer.text, answer.sources, settings=SETTINGS)

    assert [answer.text[: a.index].rsplit("\n", 1)[-1] for a in annotations] == ["[1]", "[2]"]
    assert replayed_assistant_text(answer.text) == NOTICES["rate_limited"]
    assert replayed_assistant_text("A normal answer [1].") == "A normal answer [1]."


def test_titles_are_the_first_question_on_one_short_line() -> None:
    assert thread_title("  How do I\n   install it?  ") == "How do I install it?"
    long = thread_title("How do I configure the navbar " + "and the footer " * 10)

    assert len(long) <= 60
    assert long.endswith("…")
    assert long.startswith("How do I configure the navbar and the footer")
