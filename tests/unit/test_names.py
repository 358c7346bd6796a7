"""The names a question uses, and which of them the retrieved sections never mention."""

from __future__ import annotations

import pytest

from docsrag.answering import NOT_COVERED_TEXT, not_covered_text
from docsrag.names import mentions, question_names


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


def test_a_section_mentions_a_name_as_a_whole_word_in_any_case() -> None:
    section = (
        "Deploying to Netlify. Every page has a URL; toc_max_heading_level sets the TOC depth."
    )

    # any case; an acronym's plural also matches its singular; "_" separates words
    assert all(mentions(section, name) for name in ["netlify", "URLs", "TOC"])
    # whole words only, and a name the section lacks
    assert not mentions(section, "Net")
    assert not mentions(section, "Heroku")


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
