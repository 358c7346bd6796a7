"""Find the sections that answer a question, and say whether the docs cover it at all.

Search is hybrid when an embedder exists (dense + BM25, fused by distribution-based score fusion
in one Qdrant round trip, see `DocsIndex.search`) and BM25 alone otherwise, or when embedding the
question fails.

Relevance floor. The fused score is not a relevance, so `covered` is decided on the raw signals
(`Retriever.coverage`). The docs cover a question when either floor is reached:
- dense: the best cosine similarity reaches the dense floor (`dense_floor`);
- BM25 term coverage: the share of the question's terms (distinct stemmed non-stop-words) that
  occur in the retrieved sections (titles and headings included) reaches
  `sparse_relevance_floor`. A raw BM25 score cannot be compared across questions (it grows with
  the number and rarity of the terms); what tells an off-topic question is a word the docs never
  use ("bread", "France", "kubernetes", "bitcoin"), while a question the docs answer finds all or
  nearly all of its words in the sections that come back;
and every name the question uses occurs in a retrieved section that matches the question itself
(`require_question_names`, `docsrag.names`): a product, tool or API written as a name
("Tailwind", "Next.js", "MX", "getServerSideProps"), in a section above the dense floor or holding
a third of the question's terms (`NAME_SECTION_TERM_SHARE`), so that a name dropped in passing on
an unrelated page ("unlike Gatsby or Next.js, ...") does not count. Near-domain questions
("Tailwind CSS in a Vue app built with Vite", "deploy an Express API to Heroku") share most of
their words with the docs and score like real questions on both floors; the name they ask about
is what the docs lack, and the "not covered" answer says so (`Retrieval.missing_names`).
Either floor may admit a question: an in-domain question worded in other words than the docs
still passes on the dense side, and a grounded answer says so when the sections fall short.

Measured on the real Docusaurus documentation (`bench/questions_docusaurus.jsonl`, 245 labelled
and 40 off-topic questions, 24 of them near the domain; docs/benchmarks.md): the names rule took
off-topic rejection from 19/40 to 34/40 with MiniLM hybrid (no labelled question refused) and
from 28/40 to 34/40 with BM25 alone; with it the sparse floor 0.75 refuses 3 of 245 labelled
questions where 0.8 refused 7 without it. On this project's docs (`bench/questions.jsonl`): BM25
24/24 off-topic rejected and 2 of 51 labelled refused (3 before), hybrid 22/24 (21 before).
The names rule reads words, not cosines, so it carries over to another embedding model as is
(only which sections count as matching follows the calibrated dense floor).

The dense floor is per embedding model: cosine scales differ (MiniLM's unrelated texts score
about 0.1, text-embedding-3-small's crowd into a narrower band). Unless `dense_relevance_floor`
is set, it is calibrated on the collection itself: the mean cosine between pairs of the
collection's own sections plus `dense_floor_spread` (0.25) standard deviations
(`DocsIndex.dense_baseline`, measured once and kept until a write). With all-MiniLM-L6-v2 that is
0.308 on the real Docusaurus docs and 0.318 on this project's docs, where a fixed 0.30 had been
chosen by hand; on the tune split it covers every labelled question and rejects as many
off-topic ones as 0.30 did (a spread of 0.5 rejected one more but refused 3 of 51 real
questions). What still passes: questions that name nothing and share their words with the docs
("publish my own package to the npm registry"), or whose names the docs mention in passing
("Next.js" in a comparison); the grounded answer says when the sources fall short.

Selection. After fusion the parts of one section (chunks of one page under one anchor) become one
source at the best part's place (`merge_section_parts`): a section is cited once and its places
go to other sections. A chunk that joined several tiny sections cites the one whose heading (then
text) shares most of the question's words (`cite_best_section`), which is where the link lands.
Then pages share the `retrieval_top_k` places by diversity, not a cap (`diversify_pages`): each
section moves down `retrieval_page_diversity` places for every section of its page already
chosen. The hard cap of two per page this replaces dropped a page's fourth section even when it
was the answer. Measured on the tune split of `bench/questions_docusaurus.jsonl` (hybrid MiniLM,
R@5): cap .863, no cap .880, and with DBSF fusion instead of RRF .915 with diversity 1.

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from itertools import pairwise
from typing import Protocol

from docsrag.budget import Deadline
from docsrag.config import Settings
from docsrag.embeddings import DenseEmbedder
from docsrag.errors import EmbeddingError
from docsrag.index import DocsIndex, SearchResult
from docsrag.models import Hit, SparseVector
from docsrag.names import mentions, question_names
from docsrag.safety import recent_turns
from docsrag.scope import BlogPolicy, ScopeRequest, SearchScope, SiteCatalog, resolve_scope
from docsrag.sparse import BM25Encoder

logger = logging.getLogger(__name__)

HISTORY_TERM_WEIGHT = 0.5
# Candidates each retriever (dense, BM25) hands to the fusion. DBSF scales each list by the spread
# of its own scores, so a long tail of weak candidates changes how the two lists weigh: on the tune
# split (hybrid MiniLM) R@1 was .658 at 100, .675 at 50, .692 at 40, .709 at 30, .692 at 20.
PREFETCH_LIMIT = 30
# Fused hits fetched, as a multiple of top_k: room for the section merge and page diversity.
FUSED_PER_TOP_K = 3
_FOLLOW_UP_START = re.compile(
    r"^\s*(and|or|but|also|then|so|what about|how about|same|ok|okay)\b", re.IGNORECASE
)
_ANAPHORA = re.compile(
    r"\b(it|its|it's|this|that|these|those|they|them|their|there|one|ones|same|above|previous)\b",
    re.IGNORECASE,
)
_FOLLOW_UP_MAX_TERMS = 2
_HEADING_LINE = re.compile(r"^(#{2,6})\s+(.+?)\s*#*$")
_FENCE = re.compile(r"^(```+|~~~+)")
# Dense floor for a collection too small to calibrate one on (see `DocsIndex.dense_baseline`).
FALLBACK_DENSE_FLOOR = 0.30
# A name of the question counts as mentioned in a section holding at least this share of the
# question's terms (or above the dense floor), see `Retriever.coverage`.
NAME_SECTION_TERM_SHARE = 1 / 3
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
    # Names the question uses (docsrag.names) that no retrieved section matching the question
    # mentions: why it is not covered, when they are the reason.
    missing_names: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Coverage:
    """The "covered" decision on one list of hits and the signals it was made from."""

    covered: bool
    term_share: float  # share of the question's terms found in the hits
    top_dense: float | None  # best dense cosine, None without dense
    missing_names: tuple[str, ...]  # names of the question no hit matching it contains


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
        """The best sections for `question` (at most `retrieval_top_k`, each section once, pages
        sharing the places, see the module docstring) inside the question's scope, and whether
        they cover it.

        `request` is what the caller knows of the scope (page URL, version, locale) or an
        already resolved `SearchScope`. Raises `UnknownScope` (see `scope`)."""
        s = self._settings
        if isinstance(request, SearchScope):
            scope = request
        else:
            scope = await self.scope(question, request)
        context = self.context_turns(question, history)
        names = (
            question_names(question, locale=scope.locales[0]) if s.require_question_names else []
        )
        question_terms = set(self._encoder.tokenize(question))
        sparse = self.sparse_query(question, context)

        dense: list[float] | None = None
        if self._embedder is not None:
            text = "\n".join([*context, question])[-MAX_QUERY_CHARS:]
            try:
                dense = await self._embedder.embed_query(text, deadline=deadline)
            except EmbeddingError as exc:
                logger.warning("query embedding failed, searching with BM25 only: %s", exc)

        def search() -> tuple[SearchResult, float | None]:
            # One thread hop for the search and the dense floor (a cached figure).
            found = self._index.search(
                sparse=sparse,
                dense=dense,
                limit=s.retrieval_top_k * FUSED_PER_TOP_K,
                prefetch_limit=PREFETCH_LIMIT,
                scope=scope,
            )
            return found, self.dense_floor_now() if dense is not None else None

        result, floor = await asyncio.to_thread(search)
        if not question_terms:  # "what about it?": only the context has terms
            question_terms = {t for text in context for t in self._encoder.tokenize(text)}
        ranked = one_copy_per_section(result.hits, scope)
        coverage = self.coverage(question_terms, names, ranked, floor)
        if scope.blog is BlogPolicy.FALLBACK:
            primary = [hit for hit in ranked if hit.meta.kind != "blog"]
            primary_coverage = self.coverage(question_terms, names, primary, floor)
            if primary_coverage.covered or not coverage.covered:
                ranked = primary  # the docs answer it (or nothing does): no blog posts
                coverage = primary_coverage
            else:  # only the blog covers it: after the docs
                ranked = primary + [hit for hit in ranked if hit.meta.kind == "blog"]
        merged = [
            cite_best_section(hit, question_terms, self._encoder.tokenize)
            for hit in merge_section_parts(ranked)
        ]
        hits = diversify_pages(merged, top_k=s.retrieval_top_k, penalty=s.retrieval_page_diversity)
        covered = coverage.covered and bool(hits)
        logger.info(
            "retrieval: %d hits, covered=%s (dense top %s, floor %s, term coverage %.2f, "
            "names not in the sections %d of %d), follow-up=%s, "
            "scope version=%s locales=%s blog=%s (from %s)",
            len(hits),
            covered,
            "n/a" if coverage.top_dense is None else f"{coverage.top_dense:.3f}",
            "n/a" if floor is None else f"{floor:.3f}",
            coverage.term_share,
            len(coverage.missing_names),
            len(names),
            bool(context),
            scope.version,
            ",".join(scope.locales),
            scope.blog.value,
            scope.source,
        )
        return Retrieval(
            hits=hits,
            covered=covered,
            dense_used=dense is not None,
            scope=scope,
            missing_names=coverage.missing_names,
        )

    async def dense_floor(self) -> float:
        """`dense_floor_now` off the event loop (the first call may read the collection)."""
        return await asyncio.to_thread(self.dense_floor_now)

    def dense_floor_now(self) -> float:
        """The best cosine a question needs to count as covered on the dense side:
        `dense_relevance_floor` when set, else calibrated on the collection (see the module
        docstring), else `FALLBACK_DENSE_FLOOR` for a collection too small to measure."""
        s = self._settings
        if s.dense_relevance_floor is not None:
            return s.dense_relevance_floor
        baseline = self._index.cached_dense_baseline(ttl_seconds=s.site_catalog_ttl_seconds)
        if baseline is None:
            return FALLBACK_DENSE_FLOOR
        return baseline.floor(s.dense_floor_spread)

    def coverage(
        self, terms: set[str], names: Sequence[str], hits: Sequence[Hit], dense_floor: float | None
    ) -> Coverage:
        """Whether `hits` cover the question whose stemmed terms and names these are (see the
        module docstring). A name counts as mentioned only in a hit that matches the question
        itself: its dense score reaches `dense_floor`, or it holds `NAME_SECTION_TERM_SHARE` of
        the question's terms (a name dropped in passing on an unrelated page does not count)."""
        s = self._settings
        texts = [_embed_text(hit) for hit in hits]
        tokens: dict[int, set[str]] = {}  # tokenizing is the costly part: each hit at most once

        def terms_in(i: int) -> set[str]:
            if i not in tokens:
                tokens[i] = terms & set(self._encoder.tokenize(texts[i]))
            return tokens[i]

        found: set[str] = set()
        for i in range(len(hits)):
            if found == terms:
                break
            found |= terms_in(i)
        share = len(found) / len(terms) if terms else 0.0
        dense_scores = [hit.dense_score for hit in hits if hit.dense_score is not None]
        top_dense = max(dense_scores, default=None)
        dense_ok = dense_floor is not None and top_dense is not None and top_dense >= dense_floor
        sparse_ok = share >= s.sparse_relevance_floor

        def matches_question(i: int) -> bool:
            score = hits[i].dense_score
            if dense_floor is not None and score is not None and score >= dense_floor:
                return True
            return bool(terms) and len(terms_in(i)) >= NAME_SECTION_TERM_SHARE * len(terms)

        missing = tuple(
            name
            for name in names
            if not any(mentions(texts[i], name) and matches_question(i) for i in range(len(hits)))
        )
        return Coverage(
            covered=bool(hits) and (dense_ok or sparse_ok) and not missing,
            term_share=share,
            top_dense=top_dense,
            missing_names=missing,
        )

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


def merge_section_parts(hits: Sequence[Hit]) -> list[Hit]:
    """`hits` (best first) with the parts of one section (chunks of one page copy under the
    same anchor) joined into one hit at the best part's place, in reading order: a section is
    cited once, and the places it took go to other sections."""
    groups: dict[tuple[str, str | None], list[Hit]] = {}
    for hit in hits:
        groups.setdefault((hit.source_key, hit.anchor), []).append(hit)
    merged: list[Hit] = []
    for hit in hits:
        parts = groups.pop((hit.source_key, hit.anchor), None)
        if parts is None:
            continue  # a later part of a section already placed
        if len(parts) == 1:
            merged.append(hit)
            continue
        parts.sort(key=lambda part: part.chunk_index)
        text = parts[0].text
        for before, part in pairwise(parts):
            if part.chunk_index == before.chunk_index + 1:
                text = _join_overlapping(text, part.text)
            else:
                text = f"{text}\n\n[…]\n\n{part.text}"
        anchors = tuple(dict.fromkeys(anchor for part in parts for anchor in part.anchors))
        merged.append(replace(hit, text=text, anchors=anchors))
    return merged


def _join_overlapping(first: str, second: str, *, longest: int = 2000) -> str:
    """`first` and `second` (consecutive chunks, which repeat a little of each other's text,
    see `CHUNK_OVERLAP_TOKENS`) joined with the repeated part once."""
    for size in range(min(len(first), len(second), longest), 20, -1):
        if first.endswith(second[:size]):
            return first + second[size:]
    return f"{first}\n\n{second}"


def cite_best_section(hit: Hit, terms: set[str], tokenize: Callable[[str], list[str]]) -> Hit:
    """`hit` citing, of the sections it covers, the one that best matches the question.

    A chunk that joined tiny sections (a one-line lead-in and the subsection after it) covers
    several anchors and cites the first; its text marks where each later one starts with its
    heading line ("### Translation files location"). The section whose heading shares the most
    of the question's `terms` (then, the most shared by its text) becomes the citation, with its
    heading path; a tie keeps the first. Anything that does not line up (headings in
    the text other than the anchors) leaves the hit as it is."""
    if len(hit.anchors) < 2 or not terms:
        return hit
    segments = _heading_segments(hit.text)
    if len(segments) != len(hit.anchors):
        return hit
    # The first section's own heading is the last of the chunk's heading path (the page title
    # for a page's lead-in): a question that names it stays there.
    lead_heading = hit.heading_path[-1] if hit.heading_path else hit.page_title
    best, best_score = 0, (-1, -1)
    for position, (_, heading, body) in enumerate(segments):
        shown = heading if position else lead_heading
        score = (len(terms & set(tokenize(shown))), len(terms & set(tokenize(body))))
        if score > best_score:
            best, best_score = position, score
    if best == 0:
        return hit
    level, heading, _ = segments[best]
    anchor = hit.anchors[best]
    return replace(
        hit,
        anchor=anchor,
        anchors=(anchor, *(a for a in hit.anchors if a != anchor)),
        heading_path=(*hit.heading_path[: max(level - 2, 0)], heading),
    )


def _heading_segments(text: str) -> list[tuple[int, str, str]]:
    """`text` cut at its Markdown heading lines (outside code fences): (level, heading, body)
    for the lead (level 0, no heading) and each heading."""
    segments: list[tuple[int, str, list[str]]] = [(0, "", [])]
    fence: str | None = None
    for line in text.splitlines():
        stripped = line.lstrip()
        marker = _FENCE.match(stripped)
        if marker:
            if fence is None:
                fence = marker.group(1)
            elif stripped.startswith(fence):
                fence = None
        heading = _HEADING_LINE.match(line) if fence is None and not marker else None
        if heading:
            segments.append((len(heading.group(1)), heading.group(2).strip(), []))
        else:
            segments[-1][2].append(line)
    return [(level, heading, "\n".join(body)) for level, heading, body in segments]


def diversify_pages(hits: Sequence[Hit], *, top_k: int, penalty: float) -> list[Hit]:
    """The first `top_k` of `hits` (best first), each hit moved down `penalty` places for every
    hit of its page already taken: pages share the places without a hard cap.

    With the default 1.0 a page's second section must rank one place above another page's best
    to come first; a section that ranks clear of the others gets in whichever section of its
    page it is (the hard cap of two per page this replaces dropped the fourth section of the
    page that answers "Which pages are skipped when ingesting?"). 0 keeps the fused order."""
    remaining = list(enumerate(hits))
    taken: dict[str, int] = {}
    kept: list[Hit] = []
    while remaining and len(kept) < top_k:
        best = min(
            range(len(remaining)),
            key=lambda i: remaining[i][0] + penalty * taken.get(remaining[i][1].source_key, 0),
        )
        _, hit = remaining.pop(best)
        taken[hit.source_key] = taken.get(hit.source_key, 0) + 1
        kept.append(hit)
    return kept
