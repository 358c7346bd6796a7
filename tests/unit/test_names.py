"""The names a question uses, and which of them the retrieved sections never mention."""

from __future__ import annotations

import pytest

from docsrag.answering import NOT_COVERED_TEXT, not_covered_text
from docsrag.names import missing_names, question_names


@pytest.mark.parametrize(
    ("question", "names"),
    [
        ("How do I add Tailwind CSS to a Vue app?", ["Tailwind", "CSS", "Vue"]),
        ("In Next.js, how do I use getServerSideProps?", ["Next.js", "getServerSideProps"]),
        ("npm install fails with EACCES", ["EACCES"]),
        ("why does webpack's SplitChunksPlugin split vendors", ["SplitChunksPlugin"]),
        # the first word of a sentence is capitalised anyway
        ("Deploy to netlify. Which settings?", []),
        # the user's own code and error text are not names
        ("the build fails with `Cannot find module 'MyWidget'`", []),
        ('what does "Broken Links" mean', []),
        # paths, lower-case file names, numbers and abbreviations are not names either
        ("sidebars.js in src/pages, priority 0.5, e.g. for docs", []),
        ("can I send to two tracking IDs at once, e.g. GA4?", ["IDs", "GA4"]),
        ("deploy with GitHub Actions to GitHub Pages", ["GitHub", "Actions", "Pages"]),
    ],
)
def test_names_are_the_words_written_as_names(question: str, names: list[str]) -> None:
    assert question_names(question) == names


def test_a_language_that_capitalises_nouns_keeps_only_identifiers() -> None:
    question = "Wie ändere ich die Farbe der Seitenleiste mit customCss?"

    assert question_names(question, locale="de-DE") == ["customCss"]
    assert question_names(question, locale="fr") == ["Farbe", "Seitenleiste", "customCss"]


def test_missing_names_are_the_ones_no_section_mentions() -> None:
    sections = [
        "Deploying to Netlify: connect the repository.",
        "Every page has a URL; the toc_max_heading_level front matter sets the TOC depth.",
    ]

    # whole words, any case; an acronym's plural also matches its singular; "_" separates words
    assert missing_names(["netlify", "URLs", "TOC", "Heroku", "Net"], sections) == [
        "Heroku",
        "Net",
    ]
    assert missing_names([], sections) == []


def test_the_not_covered_answer_says_which_names_the_docs_never_mention() -> None:
    assert not_covered_text(["Tailwind"]).startswith(
        "The documentation doesn't mention “Tailwind”,"
    )
    assert not_covered_text(["Tailwind", "Vue"]).startswith(
        "The documentation doesn't mention “Tailwind” or “Vue”,"
    )
    # at most three, so a pasted list does not become the answer
    many = not_covered_text(["A1", "B2", "C3", "D4"])
    assert "“A1”, “B2” or “C3”," in many
    assert "D4" not in many
    assert not_covered_text([]) == NOT_COVERED_TEXT


@pytest.mark.parametrize(
    ("question", "names"),
    [
        # Title Case: the capitals say nothing, only identifiers count
        ("How To Change The Navbar Colour With customCss", ["customCss"]),
        # in capitals: likewise
        ("HOW DO I DEPLOY TO NETLIFY", []),
        # a short question keeps its names
        ("Deploy Vercel", ["Vercel"]),
    ],
)
def test_a_question_whose_casing_says_nothing_has_only_identifier_names(
    question: str, names: list[str]
) -> None:
    assert question_names(question) == names
