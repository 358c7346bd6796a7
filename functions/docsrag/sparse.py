"""BM25 sparse vectors for Qdrant's keyword side of hybrid search.

Qdrant computes IDF itself (the collection's sparse vector has `Modifier.IDF`), so this module only
supplies the term-frequency half of BM25:

    document weight of a term = tf * (k1 + 1) / (tf + k1 * (1 - b + b * doc_len / avg_doc_tokens))
    query weight of a term    = 1.0 (each distinct term once)

and Qdrant's score is the sum over shared terms of query weight * IDF * document weight, i.e. BM25.

Tokens: the text is lowercased and cut into Unicode words. Identifiers are split into their parts
and also kept whole, so a search for `onBrokenLinks`, `docusaurus.config.js` or `max_tokens` finds
the exact identifier (a rare term, high IDF) while "broken links" or "config" still match its
parts:

    "Set onBrokenLinks in docusaurus.config.js"
    -> set, onbrokenlinks, broken, link, docusaurus.config.js, docusaurus, config, js

Parts (plain words, pieces of identifiers) lose English stop-words and single characters and are
stemmed with Snowball (PyStemmer): "configure", "configuring", "configuration" all become
"configur". Whole identifiers are kept verbatim (lowercased, not stemmed).

Term ids are the CRC-32 of the term's UTF-8 bytes, an unsigned 32-bit integer that is the same in
every process and on every machine (Python's `hash` is salted per process). Different terms that
share an id merely add up; with a documentation vocabulary of tens of thousands of terms that
happens to about one pair in a whole index.
"""

from __future__ import annotations

import logging
import re
import threading
import zlib
from collections import Counter
from itertools import chain

import Stemmer

from docsrag.models import SparseVector

logger = logging.getLogger(__name__)

# Common English function words (close to NLTK's list), plus contractions. Dropped from plain words
# only: they carry no meaning for search, and leaving them out keeps the vectors small.
STOP_WORDS: frozenset[str] = frozenset(
    """
    a about above after again against all am an and any are aren't as at be because been before
    being below between both but by can can't cannot could couldn't did didn't do does doesn't
    doing don't down during each few for from further had hadn't has hasn't have haven't having he
    he'd he'll he's her here here's hers herself him himself his how how's i i'd i'll i'm i've if
    in into is isn't it it's its itself let's me more most mustn't my myself no nor not of off on
    once only or other ought our ours ourselves out over own same shan't she she'd she'll she's
    should shouldn't so some such than that that's the their theirs them themselves then there
    there's these they they'd they'll they're they've this those through to too under until up
    very was wasn't we we'd we'll we're we've were weren't what what's when when's where where's
    which while who who's whom why why's will with won't would wouldn't you you'd you'll you're
    you've your yours yourself yourselves also just may might must shall via e.g i.e etc
    """.split()  # noqa: SIM905 - a block of words reads better than 180 quoted strings
)

# A word, or an identifier: words joined by `.`, `-`, `/`, `:` or `@` (`docusaurus.config.js`,
# `@docusaurus/core` without its leading `@`, `client-side`, `v3.5.2`), or `'` (`don't`, a
# stop-word; `Docusaurus's`, stemmed to `docusaurus`). `_` is a word character.
_WORD_RE = re.compile(r"\w+(?:[.\-/:@']\w+)*")
_PART_SEP_RE = re.compile(r"[.\-/:@_]+")
# camelCase and PascalCase pieces: `onBrokenLinks` -> on Broken Links, `HTMLParser` -> HTML Parser.
_CAMEL_RE = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+|[^\W\d_a-zA-Z]+")
_HAS_CAMEL_RE = re.compile(r"[a-z][A-Z]|[A-Z][A-Z][a-z]")
_MAX_TERM_CHARS = 64  # longer runs are hashes, base64, minified code: noise for search

_CACHE_LIMIT = 200_000  # distinct raw words remembered; a cache starts over when full
_local = threading.local()


def term_id(term: str) -> int:
    """The stable 32-bit id of a (lowercased, stemmed) term: CRC-32 of its UTF-8 bytes."""
    return zlib.crc32(term.encode("utf-8"))


def _stemmer() -> Stemmer.Stemmer:
    # One per thread: a PyStemmer instance keeps state and must not be used concurrently.
    stemmer: Stemmer.Stemmer | None = getattr(_local, "stemmer", None)
    if stemmer is None:
        stemmer = Stemmer.Stemmer("english")
        _local.stemmer = stemmer
    return stemmer


def _word_terms(word: str) -> tuple[str, ...]:
    """Terms for one raw word or identifier, as it appears in the text."""
    parts: list[str] = []
    for piece in _PART_SEP_RE.split(word):
        if _HAS_CAMEL_RE.search(piece):
            parts.extend(_CAMEL_RE.findall(piece))
        elif piece:
            parts.append(piece)
    lowered = [part.lower() for part in parts]
    kept = [part for part in lowered if len(part) > 1 and part not in STOP_WORDS]
    terms = [term for term in _stemmer().stemWords(kept) if len(term) <= _MAX_TERM_CHARS]
    whole = word.lower()
    if len(parts) > 1 and len(whole) <= _MAX_TERM_CHARS and whole not in STOP_WORDS:
        terms.insert(0, whole)
    return tuple(terms)


# Raw word -> its terms, and raw word -> their ids. Most words of a text were seen before, so
# encoding is mostly dictionary look-ups driven by C loops (`map` over `__getitem__`).
class _TermsByWord(dict[str, tuple[str, ...]]):
    def __missing__(self, word: str) -> tuple[str, ...]:
        if len(self) >= _CACHE_LIMIT:
            self.clear()
        terms = self[word] = _word_terms(word)
        return terms


class _IdsByWord(dict[str, tuple[int, ...]]):
    def __missing__(self, word: str) -> tuple[int, ...]:
        if len(self) >= _CACHE_LIMIT:
            self.clear()
        ids = self[word] = tuple(term_id(term) for term in _terms_by_word[word])
        return ids


_terms_by_word = _TermsByWord()
_ids_by_word = _IdsByWord()


def clear_caches() -> None:
    """Forget cached words (benchmarks use it to measure a cold start)."""
    _terms_by_word.clear()
    _ids_by_word.clear()


def _words(text: str) -> list[str]:
    return _WORD_RE.findall(text.replace("\u2019", "'"))  # the typographic apostrophe too


class BM25Encoder:
    """Text -> BM25 sparse vectors (term-frequency part; Qdrant applies IDF).

    `avg_doc_tokens` is the average number of terms `tokenize` finds in an indexed text (a chunk's
    `embed_text`). The default is measured with the default chunk sizes on the Docusaurus docs in
    ../shared (96 terms per chunk from the HTML build, 94 from the MDX sources). It only sets the
    length at which normalisation is neutral, so a rough figure is fine.
    """

    def __init__(self, *, k1: float = 1.2, b: float = 0.75, avg_doc_tokens: float = 95.0) -> None:
        if k1 < 0:
            raise ValueError(f"k1 must be >= 0, got {k1}")
        if not 0.0 <= b <= 1.0:
            raise ValueError(f"b must be between 0 and 1, got {b}")
        if avg_doc_tokens <= 0:
            raise ValueError(f"avg_doc_tokens must be > 0, got {avg_doc_tokens}")
        self.k1 = k1
        self.b = b
        self.avg_doc_tokens = avg_doc_tokens

    def tokenize(self, text: str) -> list[str]:
        """Terms of `text` in order, repeats included (see the module docstring)."""
        return list(chain.from_iterable(map(_terms_by_word.__getitem__, _words(text))))

    def encode_document(self, text: str) -> SparseVector:
        """BM25 term-frequency weights of an indexed text. Empty text gives an empty vector."""
        ids = list(chain.from_iterable(map(_ids_by_word.__getitem__, _words(text))))
        if not ids:
            return SparseVector(indices=[], values=[])
        counts = Counter(ids)
        norm = self.k1 * (1.0 - self.b + self.b * len(ids) / self.avg_doc_tokens)
        k1_plus_1 = self.k1 + 1.0
        indices = sorted(counts)
        tfs = list(map(counts.__getitem__, indices))
        # A text has few distinct frequencies: compute each weight once, then look them up.
        weights = {tf: tf * k1_plus_1 / (tf + norm) for tf in set(tfs)}
        return SparseVector(indices=indices, values=list(map(weights.__getitem__, tfs)))

    def encode_query(self, text: str) -> SparseVector:
        """Weight 1.0 for each distinct term of a question. Empty text gives an empty vector."""
        ids = chain.from_iterable(map(_ids_by_word.__getitem__, _words(text)))
        indices = sorted(set(ids))
        return SparseVector(indices=indices, values=[1.0] * len(indices))
