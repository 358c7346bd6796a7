"""BM25 sparse vectors: what makes keyword search find the right docs for a question."""

from __future__ import annotations

import itertools
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from docsrag.models import SparseVector
from docsrag.sparse import STOP_WORDS, BM25Encoder, term_id


@pytest.fixture(scope="module")
def encoder() -> BM25Encoder:
    return BM25Encoder()


def weight(vector: SparseVector, term: str) -> float:
    return vector.values[vector.indices.index(term_id(term))]


# --- tokenising ------------------------------------------------------------------------------


def test_inflections_fold_to_one_stem_so_questions_match_the_docs(encoder: BM25Encoder) -> None:
    # Snowball (PyStemmer "english") folds these to "configur"; the short form "config" is its
    # own stem, as are "plugin"/"plugins" and "run"/"running"/"runs".
    assert encoder.tokenize("configure configuring configuration configured") == ["configur"] * 4
    assert encoder.tokenize("config configs") == ["config", "config"]
    assert encoder.tokenize("Plugins running; the plugin runs") == [
        "plugin",
        "run",
        "plugin",
        "run",
    ]


def test_stop_words_and_single_letters_are_dropped(encoder: BM25Encoder) -> None:
    assert encoder.tokenize("How do I add a sidebar to the docs?") == ["add", "sidebar", "doc"]
    assert encoder.tokenize("What is it, and why?") == []
    assert encoder.tokenize("I don’t know") == ["know"]  # typographic apostrophe too
    assert {"the", "and", "how", "what", "is"} <= STOP_WORDS


def test_identifiers_are_kept_whole_and_split_into_parts(encoder: BM25Encoder) -> None:
    assert encoder.tokenize("Set onBrokenLinks in docusaurus.config.js") == [
        "set",
        "onbrokenlinks",
        "broken",
        "link",
        "docusaurus.config.js",
        "docusaurus",
        "config",
        "js",
    ]
    assert encoder.tokenize("max_tokens") == ["max_tokens", "max", "token"]
    assert encoder.tokenize("@docusaurus/core v3.5.2") == [
        "docusaurus/core",
        "docusaurus",
        "core",
        "v3.5.2",
        "v3",
    ]
    assert encoder.tokenize("HTMLParser") == ["htmlparser", "html", "parser"]
    # PascalCase names split too; the whole name stays the strongest match
    assert encoder.tokenize("GitHub") == ["github", "git", "hub"]


def test_a_question_in_plain_words_shares_terms_with_the_identifier_in_the_docs(
    encoder: BM25Encoder,
) -> None:
    doc = encoder.encode_document("Set onBrokenLinks to 'throw' in docusaurus.config.js")
    by_words = encoder.encode_query("what happens with broken links?")
    by_name = encoder.encode_query("onBrokenLinks")
    assert {term_id("broken"), term_id("link")} <= set(doc.indices) & set(by_words.indices)
    assert term_id("onbrokenlinks") in set(doc.indices) & set(by_name.indices)


def test_non_english_letters_are_words_too(encoder: BM25Encoder) -> None:
    assert encoder.tokenize("Straße Ünïcödé") == ["straße", "ünïcödé"]


# --- vectors ---------------------------------------------------------------------------------


def test_empty_or_stop_word_only_text_gives_an_empty_vector(encoder: BM25Encoder) -> None:
    for text in ("", "   ", "the and of", "!!! ..."):
        assert encoder.encode_document(text) == SparseVector(indices=[], values=[])
        assert encoder.encode_query(text) == SparseVector(indices=[], values=[])


def test_query_has_weight_one_per_distinct_term(encoder: BM25Encoder) -> None:
    query = encoder.encode_query("deploy deploying deployment to github pages")
    assert sorted(query.indices) == query.indices
    assert set(query.indices) == {term_id("deploy"), term_id("github"), term_id("page")}
    assert query.values == [1.0, 1.0, 1.0]


def test_document_weights_saturate_with_term_frequency() -> None:
    encoder = BM25Encoder(k1=1.2, b=0.75, avg_doc_tokens=10)
    padding = " ".join(f"filler{i}" for i in range(10))
    weights = [
        weight(encoder.encode_document(" ".join(["cache"] * tf) + " " + padding), "cach")
        for tf in (1, 2, 4, 8, 32)
    ]
    assert weights == sorted(weights)
    gains = [b - a for a, b in itertools.pairwise(weights)]
    assert gains == sorted(gains, reverse=True)  # each extra mention adds less
    assert weights[-1] < 1.2 + 1  # bounded by k1 + 1


def test_document_weight_matches_the_bm25_formula() -> None:
    encoder = BM25Encoder(k1=1.2, b=0.75, avg_doc_tokens=4)
    vector = encoder.encode_document("sidebar sidebar navbar footer theme versioning")
    tf, length = 2, 6
    expected = tf * 2.2 / (tf + 1.2 * (1 - 0.75 + 0.75 * length / 4))
    assert weight(vector, "sidebar") == pytest.approx(expected)


def test_longer_documents_weigh_the_same_term_frequency_less(encoder: BM25Encoder) -> None:
    short = encoder.encode_document("Versioning keeps old docs.")
    long = encoder.encode_document(
        "Versioning keeps old docs. " + " ".join(f"other{i} words{i}" for i in range(200))
    )
    assert weight(long, "version") < weight(short, "version")


@given(st.text(max_size=300))
def test_vectors_are_well_formed_for_any_text(text: str) -> None:
    encoder = BM25Encoder()
    for vector in (encoder.encode_document(text), encoder.encode_query(text)):
        assert vector.indices == sorted(set(vector.indices))
        assert len(vector.values) == len(vector.indices)
        assert all(0 <= i < 2**32 for i in vector.indices)
        assert all(v > 0 for v in vector.values)


def test_rejects_invalid_parameters() -> None:
    with pytest.raises(ValueError, match="b must"):
        BM25Encoder(b=1.5)
    with pytest.raises(ValueError, match="avg_doc_tokens"):
        BM25Encoder(avg_doc_tokens=0)


# --- ids -------------------------------------------------------------------------------------


def test_term_ids_are_crc32_and_the_same_in_every_process() -> None:
    # The index written by one Lambda is queried by another: ids must not depend on the process.
    assert term_id("configur") == 2244038773  # zlib.crc32(b"configur")
    assert term_id("docusaurus") == 3780950762
    code = (
        "from docsrag.sparse import BM25Encoder;"
        "print(BM25Encoder().encode_query('configuring Docusaurus').indices)"
    )
    runs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed},
        ).stdout.strip()
        for seed in ("1", "2")
    }
    assert runs == {"[2244038773, 3780950762]"}
