"""Find the sections that answer a question, and say whether the docs cover it at all.

Search is hybrid when an embedder exists (dense + BM25, fused by Reciprocal Rank Fusion in one
Qdrant round trip) and BM25 alone otherwise, or when embedding the question fails.

Relevance floor. The fused score is a rank, not a relevance, so `covered` is decided on the raw
signals; the docs cover a question when either reaches its floor:
- dense: the best cosine similarity reaches `dense_relevance_floor`;
- BM25 term coverage: the share of the question's terms (distinct stemmed non-stop-words) that
  occur in the retrieved sections (titles and headings included) reaches
  `sparse_relevance_floor`. A raw BM25 score cannot be compared across questions (it grows with
  the number and rarity of the terms); what tells an off-topic question is a word the docs never
  use ("bread", "France", "kubernetes", "bitcoin"), while a question the docs answer finds all or
  nearly all of its words in the sections that come back.
Either signal may admit a question: an in-domain question worded in other words than the docs
still passes on the dense side, and a grounded answer says so when the sections fall short.

The sparse floor 0.8 was measured with BM25 only. On the real Docusaurus documentation (767
chunks): 35 of 35 in-domain questions covered, 22 of 23 off-topic ones rejected (most have 0.0 to
0.67; the exception, "what is the best python web framework", uses only words the docs also use).
On this project's docs (`bench/questions.jsonl`, `bench/offtopic.txt`): 47 of 51 labelled
questions covered, 8 of 8 off-topic rejected; the 4 misses (0.60-0.75) are worded in words the
docs do not use ("forget", "overloaded", "wildcard", "phishing"), which the dense side is there to
catch. 0.75 would admit three more off-topic questions for one more in-domain one.

The dense floor is per embedding model (cosine scales differ). Measured offline with a real
semantic model, all-MiniLM-L6-v2 (`bench/semantic_embeddings_server.py`), on this project's docs
(51 labelled, 24 off-topic questions): best cosine 0.31-0.64 for labelled questions, 0.09-0.41 for
off-topic ones; the rule above with a dense floor of 0.30 covers 51/51 and rejects 21/24, with
0.35 it covers 49/51 and rejects 23/24. The default 0.30 favours never refusing a real question
(a wrongly admitted off-topic question costs one model call, whose grounded answer declines).
The production model (text-embedding-3-small) cannot be measured here: re-check the floor with
`bench/retrieval_quality.py --real-embeddings` and a key.

Chunks per page. At most `retrieval_max_chunks_per_page` hits come from one page, so that one long
page cannot crowd out the rest; the page of the best hit may give one more. That page is the
likeliest to hold the answer, and an answer that spans several of its sections (a "Sass/SCSS"
section and its "Global styles" and "Modules" subsections) needs them all, while every other page
keeps the usual cap. Measured with `bench/retrieval_quality.py` (recall@5): BM25 alone unchanged
on both corpora; hybrid with the fake embeddings 0.863 -> 0.882 on this project's docs and 0.767
-> 0.833 on the real Docusaurus docs. A cap of 3 for every page did no better for hybrid and lets
two pages fill all six places.

Scope. Every search runs inside one `SearchScope` (`docsrag.scope`): one docs version, the
visitor's locale with the default locale as fallback, and blog posts unless they are off; Qdrant
applies it as a filter. The result then holds each section once: when a section comes back in
two locales (a translated page and its English original), the copy in the preferred locale takes
the place of the better-ranked one. Blog posts follow the docs: with `BlogPolicy.FALLBACK` they
are dropped when the docs and pages cover the question, and ranked after them when they do not;
with `WITH_DOCS` (a question about a release or an announcement) they keep their fused rank.

Follow-ups ("how do I configure it?", "and for yarn?") carry little on their own: when a question
looks like one, the recent user turns join the query, at half weight for BM25 so the new question
still leads.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from docsrag.budget import Deadline
from docsrag.config import Settings
from docsrag.embeddings import DenseEmbedder
from docsrag.errors import EmbeddingError
from docsrag.index import DocsIndex
from docsrag.models import Hit, SparseVector
from docsrag.safety import recent_turns
from docsrag.scope import BlogPolicy, ScopeRequest, SearchScope, SiteCatalog, resolve_scope
from docsrag.sparse import BM25Encoder

logger = logging.getLogger(__name__)

HISTORY_TERM_WEIGHT = 0.5
# Candidates each retriever (dense, BM25) hands to the fusion.
PREFETCH_LIMIT = 50
# Fused hits fetched, as a multiple of top_k, so the per-page cap still leaves top_k hits.
FUSED_PER_TOP_K = 3
_FOLLOW_UP_START = re.compile(
    r"^\s*(and|or|but|also|then|so|what about|how about|same|ok|okay)\b", re.IGNORECASE
)
_ANAPHORA = re.compile(
    r"\b(it|its|it's|this|that|these|those|they|them|their|there|one|ones|same|above|previous)\b",
    re.IGNORECASE,
)
_FOLLOW_UP_MAX_TERMS = 2
# Most characters of query text (question and follow-up context) sent to the embedding model.
MAX_QUERY_CHARS = 2000


class ChatTurn(Protocol):
    """What retrieval reads of a conversation turn (answering's pydantic model fits)."""

    @property
    def role(self) -> str: ...

    @property
    def content(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Retrieval:
    hits: list[Hit]
    covered: bool
    dense_used: bool
    scope: SearchScope | None = None


class Retriever:
    def __init__(
        self,
        *,
        index: DocsIndex,
        encoder: BM25Encoder,
        embedder: DenseEmbedder | None,
        settings: Settings,
    ) -> None:
        self._index = index
        self._encoder = encoder
        self._embedder = embedder
        self._settings = settings

    async def catalog(self) -> SiteCatalog:
        """The site's versions and locales as the index holds them (cached, see `DocsIndex`)."""
        s = self._settings
        return await asyncio.to_thread(
            self._index.cached_site_catalog,
            default_locale=s.default_locale,
            ttl_seconds=s.site_catalog_ttl_seconds,
        )

    async def scope(self, question: str, request: ScopeRequest | None = None) -> SearchScope:
        """The scope of one question; raises `UnknownScope` for an explicit version or locale
        the site does not have."""
        s = self._settings
        request = request or ScopeRequest()
        return resolve_scope(
            catalog=await self.catalog(),
            question=question,
            site_url=s.site_url,
            page_url=request.page_url,
            version=request.version,
            locale=request.locale,
            default_version=s.default_version,
            include_blog=s.include_blog,
            docs_route_base_path=s.docs_route_base_path,
        )

    async def retrieve(
        self,
        question: str,
        history: Sequence[ChatTurn] = (),
        request: ScopeRequest | SearchScope | None = None,
        *,
        deadline: Deadline | None = None,
    ) -> Retrieval:
        """The best sections for `question` (at most `retrieval_top_k`, at most
        `retrieval_max_chunks_per_page` per page, one more from the best hit's page, each
        section once) inside the question's scope, and whether they cover it.

        `request` is what the caller knows of the scope (page URL, version, locale) or an
        already resolved `SearchScope`. Raises `UnknownScope` (see `scope`)."""
        s = self._settings
        if isinstance(request, SearchScope):
            scope = request
        else:
            scope = await self.scope(question, request)
        context = self.context_turns(question, history)
        question_terms = set(self._encoder.tokenize(question))
        sparse = self.sparse_query(question, context)

        dense: list[float] | None = None
        if self._embedder is not None:
            text = "\n".join([*context, question])[-MAX_QUERY_CHARS:]
            try:
                dense = await self._embedder.embed_query(text, deadline=deadline)
            except EmbeddingError as exc:
                logger.warning("query embedding failed, searching with BM25 only: %s", exc)

        result = await asyncio.to_thread(
            self._index.search,
            sparse=sparse,
            dense=dense,
            limit=s.retrieval_top_k * max(FUSED_PER_TOP_K, s.retrieval_max_chunks_per_page + 1),
            prefetch_limit=PREFETCH_LIMIT,
            scope=scope,
        )
        if not question_terms:  # "what about it?": only the context has terms
            question_terms = {t for text in context for t in self._encoder.tokenize(text)}
        ranked = one_copy_per_section(result.hits, scope)
        covered, coverage, top_dense = self._covers(question_terms, ranked)
        if scope.blog is BlogPolicy.FALLBACK:
            primary = [hit for hit in ranked if hit.meta.kind != "blog"]
            primary_covered, primary_coverage, primary_dense = self._covers(question_terms, primary)
            if primary_covered or not covered:
                ranked = primary  # the docs answer it (or nothing does): no blog posts
                covered, coverage, top_dense = primary_covered, primary_coverage, primary_dense
            else:  # only the blog covers it: after the docs
                ranked = primary + [hit for hit in ranked if hit.meta.kind == "blog"]
        hits = _cap_per_page(
            ranked, per_page=s.retrieval_max_chunks_per_page, top_k=s.retrieval_top_k
        )
        covered = covered and bool(hits)
        logger.info(
            "retrieval: %d hits, covered=%s (dense top %s, term coverage %.2f), follow-up=%s, "
            "scope version=%s locales=%s blog=%s (from %s)",
            len(hits),
            covered,
            "n/a" if top_dense is None else f"{top_dense:.3f}",
            coverage,
            bool(context),
            scope.version,
            ",".join(scope.locales),
            scope.blog.value,
            scope.source,
        )
        return Retrieval(hits=hits, covered=covered, dense_used=dense is not None, scope=scope)

    def _covers(self, terms: set[str], hits: Sequence[Hit]) -> tuple[bool, float, float | None]:
        """Whether `hits` cover the question: (covered, term coverage, best dense score)."""
        s = self._settings
        coverage = self.term_coverage(terms, hits)
        dense_scores = [hit.dense_score for hit in hits if hit.dense_score is not None]
        top_dense = max(dense_scores, default=None)
        dense_ok = top_dense is not None and top_dense >= s.dense_relevance_floor
        sparse_ok = coverage >= s.sparse_relevance_floor
        return bool(hits) and (dense_ok or sparse_ok), coverage, top_dense

    def context_turns(self, question: str, history: Sequence[ChatTurn]) -> list[str]:
        """Recent user turns to add to the query when `question` reads as a follow-up.

        The history is first cut to the budgets the answerer applies (`max_history_messages`,
        `max_history_chars`, see `safety.recent_turns`), and the turns kept fit, with the
        question, in `MAX_QUERY_CHARS` (the most recent turns first)."""
        s = self._settings
        wanted = s.history_turns_for_retrieval
        if wanted == 0 or not looks_like_follow_up(question, self._encoder):
            return []
        recent = recent_turns(
            history, max_messages=s.max_history_messages, max_chars=s.max_history_chars
        )
        user_turns = [content for role, content in recent if role == "user" and content]
        if user_turns and user_turns[-1].strip() == question.strip():
            user_turns = user_turns[:-1]  # the history already ends with this question
        budget = MAX_QUERY_CHARS - len(question)
        kept: list[str] = []
        for turn in reversed(user_turns[-wanted:]):
            if budget <= 0:
                break
            kept.append(turn[-budget:])
            budget -= len(turn) + 1
        kept.reverse()
        return kept

    def sparse_query(self, question: str, context: Sequence[str]) -> SparseVector:
        """BM25 query: the question's terms at weight 1, context-only terms at half weight."""
        weights: dict[int, float] = {}
        for text in context:
            encoded = self._encoder.encode_query(text)
            for term in encoded.indices:
                weights[term] = HISTORY_TERM_WEIGHT
        encoded = self._encoder.encode_query(question)
        for term, value in zip(encoded.indices, encoded.values, strict=True):
            weights[term] = value
        indices = sorted(weights)
        return SparseVector(indices=indices, values=[weights[i] for i in indices])

    def term_coverage(self, terms: set[str], hits: Sequence[Hit]) -> float:
        """Share of `terms` (stemmed) that occur somewhere in the retrieved sections."""
        if not terms:
            return 0.0
        found: set[str] = set()
        for hit in hits:
            found |= terms & set(self._encoder.tokenize(_embed_text(hit)))
            if found == terms:
                break
        return len(found) / len(terms)


def looks_like_follow_up(question: str, encoder: BM25Encoder) -> bool:
    """Short, starts like a continuation ("and for yarn?"), or points back ("configure it")."""
    if _FOLLOW_UP_START.search(question) or _ANAPHORA.search(question):
        return True
    return len(set(encoder.tokenize(question))) <= _FOLLOW_UP_MAX_TERMS


def _embed_text(hit: Hit) -> str:
    trail = " > ".join((hit.page_title, *hit.heading_path))
    return f"{trail}\n\n{hit.text}"


def one_copy_per_section(hits: Sequence[Hit], scope: SearchScope) -> list[Hit]:
    """`hits` (best first) with each section once across versions and locales.

    A section found in several copies (a translated page and its original, or two versions of
    an index searched without a scope) keeps one: the copy in the scope's preferred locale and
    version, else the best-ranked one. Its best chunk takes the rank of the best-ranked copy;
    other parts of a long section (several chunks of the same page copy) keep their own ranks.
    """
    chosen: dict[str, tuple[tuple[int, int, int], str]] = {}
    for position, hit in enumerate(hits):
        preference = (
            scope.locale_rank(hit.meta.locale),
            0 if scope.version is None or hit.meta.version in (scope.version, None) else 1,
            position,
        )
        key = hit.section_key
        if key not in chosen or preference < chosen[key][0]:
            chosen[key] = (preference, hit.source_key)
    first_of_copy: dict[tuple[str, str], Hit] = {}
    for hit in hits:
        first_of_copy.setdefault((hit.section_key, hit.source_key), hit)
    out: list[Hit] = []
    placed: set[str] = set()  # chunk ids
    for hit in hits:
        key = hit.section_key
        chosen_key = chosen[key][1]
        if hit.source_key == chosen_key:
            if hit.chunk_id not in placed:
                placed.add(hit.chunk_id)
                out.append(hit)
            continue
        # Another copy of the section: the chosen copy's best chunk takes its place once.
        best = first_of_copy[(key, chosen_key)]
        if best.chunk_id not in placed:
            placed.add(best.chunk_id)
            out.append(best)
    return out


def _cap_per_page(hits: Sequence[Hit], *, per_page: int, top_k: int) -> list[Hit]:
    """The first `top_k` of `hits` (best first) with at most `per_page` from one page, and
    `per_page + 1` from the page of the best hit (see the module docstring)."""
    kept: list[Hit] = []
    per_key: dict[str, int] = {}
    best_page = hits[0].source_key if hits else None
    for hit in hits:
        count = per_key.get(hit.source_key, 0)
        if count >= per_page + (hit.source_key == best_page):
            continue
        per_key[hit.source_key] = count + 1
        kept.append(hit)
        if len(kept) == top_k:
            break
    return kept
