"""Retrieval quality on the project's own docs: recall@1, recall@5 and MRR, BM25-only vs hybrid.

    .venv/bin/python bench/retrieval_quality.py [--source docs|site/build] [--show-failures]
        [--real-embeddings | --embeddings-url URL [--embedding-model M --embedding-dimensions N]]
        [--questions FILE --offtopic FILE] [--split all|tune|held] [--json FILE]

Ingests `docs/` (or a Docusaurus build folder given with `--source`) into a temporary embedded
Qdrant store, asks every question of `bench/questions.jsonl` (or `--questions`) twice (BM25 only,
and hybrid dense + BM25 with RRF), and checks whether the labelled section (path + heading anchor)
comes back. Then asks the questions of `bench/offtopic.txt`, which the docs do not answer, and
counts how many are judged "not covered".

A hit finds a label when its path matches and the label's anchor is among the sections the chunk
covers (`Hit.anchors`: a chunk that merged tiny sections covers all of them). The "strict" figures
count only the chunk's citation anchor (`Hit.anchor`, its first section), i.e. where the link
lands. "page@5" counts a hit on the labelled page, any section, in the top 5. "wrongly refused"
counts labelled questions judged "not covered" (the chat would refuse an answer the docs have).

Held-out split. Each labelled question may carry `"split": "tune"` or `"split": "held"`
(`{"question": ..., "path": ..., "anchor": ..., "split": "held"}`); an off-topic line may start
with `tune: ` or `held: `. The split is chosen by a fixed rule, never by difficulty: `held` when
the SHA-256 of the question text (UTF-8), read as an integer, is odd, `tune` when it is even.
Ranking work may look at the tune questions; the held ones are only for reporting, so that a
gain that only fits the tune questions shows as a gap between the two. The report gives every
figure for all questions, then per split (files without splits, like `bench/questions.jsonl`, get
the "all" row only); figures on a split count only that split's labelled and off-topic questions,
e.g. "wrongly refused" on held is over every labelled held question. `--split tune|held` asks only
that split's questions (quicker while tuning); `--json FILE` writes the figures per mode and split
(`{"modes": {"bm25"|"hybrid": {"name": ..., "splits": {"all"|"tune"|"held": {"recall_at_1": ...,
"offtopic_rejected": ...}}}}}`, counts as integers, shares as fractions) for scripted comparisons.

The real Docusaurus documentation in ../shared is the second corpus, a check against tuning to
this project's own docs:

    .venv/bin/python bench/retrieval_quality.py --source ../shared/corpora/docusaurus/build \
        --questions bench/questions_docusaurus.jsonl --offtopic bench/offtopic_docusaurus.txt

`bench/questions_docusaurus.jsonl` holds 245 questions written the way users ask them, over 78
pages of that build, labelled with the page and the h2/h3 anchor that answers them (`"anchor":
null` for a page's lead-in); `bench/offtopic_docusaurus.txt` holds 40 questions those docs do not
answer, 24 of them near the domain (other site generators, build tools, hosting, npm, React, CSS,
SEO).

Versioned sites (first source from the asked version, other versions in the top 5, recall
against a single-version build): `--versioned` runs `bench/versioned_quality.py` on the
versioned sample build (`make site`), with the same `--embeddings-url` options.

No API key and no network: dense vectors come from the loopback fake OpenAI-compatible server of
the test suite (`tests/fakes/openai_server.py`), whose embeddings follow word overlap. It is a
stand-in that exercises the hybrid code path, not a semantic model; hybrid figures here say
nothing about a real embedding model. `--real-embeddings` uses the configured endpoint instead.

A real semantic model, offline: `bench/setup-semantic-bench.sh` makes `.venv-bench` with
all-MiniLM-L6-v2 (384 dimensions), served over the OpenAI wire format by
`bench/semantic_embeddings_server.py`; `--embeddings-url` points docsrag's own `DenseEmbedder` at
it:

    .venv-bench/bin/python bench/semantic_embeddings_server.py --port 8765 &
    .venv/bin/python bench/retrieval_quality.py --embeddings-url http://127.0.0.1:8765/v1

With a real model the report adds the distribution of the best dense cosine (the signal
`DENSE_RELEVANCE_FLOOR` is compared with) for labelled and off-topic questions, the BM25 term
coverage beside it, and how many of each the "covered" rule would admit at other dense floors, so
the floor can be chosen from data. The cosine scale is the model's own: a floor measured with
MiniLM does not carry over to text-embedding-3-small.

Settings come from the usual environment variables (RETRIEVAL_TOP_K, floors, chunk sizes...),
except the model endpoint and the Qdrant location, which this script sets.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

REPO_ROOT = Path(__file__).resolve().parent.parent
# The fake server lives in the test suite; the script is run as a file, so make the repository
# importable to reach it.
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from docsrag.chunking import chunk_page  # noqa: E402
from docsrag.config import Settings, load_settings  # noqa: E402
from docsrag.embeddings import DenseEmbedder, build_embedder  # noqa: E402
from docsrag.errors import DocumentError  # noqa: E402
from docsrag.index import DocsIndex, build_qdrant_client  # noqa: E402
from docsrag.ingest import Ingestor  # noqa: E402
from docsrag.models import Hit, SparseVector  # noqa: E402
from docsrag.names import question_names  # noqa: E402
from docsrag.parsing import classify_key, iter_site_files, parse_document  # noqa: E402
from docsrag.retrieval import FUSED_PER_TOP_K, PREFETCH_LIMIT, Retriever  # noqa: E402
from docsrag.sparse import BM25Encoder  # noqa: E402
from tests.fakes.openai_server import FakeOpenAI  # noqa: E402

BENCH_DIR = Path(__file__).resolve().parent
RAW_DEPTH = 50
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
# Dense floors tried in the sweep of the "covered" rule.
FLOOR_SWEEP = (0.20, 0.25, 0.30, 0.35, 0.40, 0.45, 0.50, 0.55, 0.60)
NAME_WIDTH = 27
# The question sets' splits: "tune" questions may guide ranking work, "held" ones never do.
SPLITS = ("tune", "held")
ALL = "all"
# The modes in the order `main` runs them, as keys of the --json report.
MODE_KEYS = ("bm25", "hybrid")


class _Split(Protocol):
    @property
    def split(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Question:
    question: str
    path: str
    anchor: str | None
    # "tune" or "held" (see the module docstring); None in files without splits
    split: str | None = None

    @property
    def label(self) -> str:
        return f"{self.path}#{self.anchor}" if self.anchor else self.path


@dataclass(frozen=True, slots=True)
class OffTopic:
    text: str
    split: str | None = None


@dataclass(frozen=True, slots=True)
class Signals:
    top_dense: float | None
    coverage: float
    # names of the question (docsrag.names) that none of the hits contains
    missing_names: tuple[str, ...] = ()

    def covered(
        self, *, dense_floor: float | None, terms_floor: float | None, names: bool = True
    ) -> bool:
        """The retriever's rule, with either floor left out when None and the names rule left
        out when `names` is false."""
        dense_ok = (
            dense_floor is not None and self.top_dense is not None and self.top_dense >= dense_floor
        )
        terms_ok = terms_floor is not None and self.coverage >= terms_floor
        return (dense_ok or terms_ok) and not (names and self.missing_names)


@dataclass(slots=True)
class ModeResult:
    name: str
    # The dense floor the retriever applied (DENSE_RELEVANCE_FLOOR or calibrated); None: BM25
    dense_floor: float | None = None
    # 1-based rank of the first hit that covers the label, or None
    ranks: list[int | None] = field(default_factory=list)
    # the same, counting only the hit's citation anchor (where its link lands)
    strict_ranks: list[int | None] = field(default_factory=list)
    # 1-based rank of the first hit on the labelled page (any section), or None
    page_ranks: list[int | None] = field(default_factory=list)
    # Rank in the fused list before the per-page cap and top_k cut (up to RAW_DEPTH), to tell
    # "search did not find it" from "the cap on chunks per page dropped it".
    raw_ranks: list[int | None] = field(default_factory=list)
    covered: list[bool] = field(default_factory=list)
    offtopic_covered: list[bool] = field(default_factory=list)
    top_hits: list[list[Hit]] = field(default_factory=list)
    seconds: float = 0.0
    # The two signals of the "covered" decision, as the retriever sees them: the best dense
    # cosine (None without dense) and the share of the question's terms found in the hits.
    signals: list[Signals] = field(default_factory=list)
    offtopic_signals: list[Signals] = field(default_factory=list)
    # Rank with the dense vector alone (no BM25, no cap), up to RAW_DEPTH; empty without dense.
    dense_ranks: list[int | None] = field(default_factory=list)


def load_questions(path: Path) -> list[Question]:
    questions = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            split = raw.get("split")
            if split is not None and split not in SPLITS:
                raise ValueError(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
            questions.append(Question(raw["question"], raw["path"], raw.get("anchor"), split))
        except (ValueError, KeyError, TypeError) as exc:
            raise SystemExit(f"{path}:{number}: not a question record: {exc}") from exc
    return questions


def load_offtopic(path: Path) -> list[OffTopic]:
    """One question a line; `#` starts a comment line. A `tune: ` or `held: ` prefix gives the
    question's split."""
    questions = []
    for line in path.read_text(encoding="utf-8").splitlines():
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        prefix, colon, rest = text.partition(":")
        if colon and prefix in SPLITS:
            questions.append(OffTopic(rest.strip(), prefix))
        else:
            questions.append(OffTopic(text))
    return questions


def select(items: Sequence[_Split], split: str) -> list[int]:
    """Positions of the items in `split` ("all": every item)."""
    return [i for i, item in enumerate(items) if split == ALL or item.split == split]


@dataclass(frozen=True, slots=True)
class SplitFigures:
    """One mode's figures over the questions of one split."""

    questions: int
    recall_at_1: float
    recall_at_5: float
    mrr: float
    page_recall_at_5: float
    strict_recall_at_1: float
    strict_recall_at_5: float
    strict_mrr: float
    # labelled questions judged "not covered" (the answer is refused although the docs have it)
    wrongly_refused: int
    offtopic: int
    offtopic_rejected: int

    @classmethod
    def of(
        cls, result: ModeResult, questions: Sequence[int], offtopic: Sequence[int]
    ) -> SplitFigures:
        """Figures of `result` over the labelled and off-topic questions at these positions."""

        def recall(ranks: list[int | None], depth: int) -> float:
            found = sum(1 for i in questions if (rank := ranks[i]) is not None and rank <= depth)
            return found / len(questions) if questions else 0.0

        def mrr(ranks: list[int | None]) -> float:
            total = sum(1.0 / rank for i in questions if (rank := ranks[i]) is not None)
            return total / len(questions) if questions else 0.0

        return cls(
            questions=len(questions),
            recall_at_1=recall(result.ranks, 1),
            recall_at_5=recall(result.ranks, 5),
            mrr=mrr(result.ranks),
            page_recall_at_5=recall(result.page_ranks, 5),
            strict_recall_at_1=recall(result.strict_ranks, 1),
            strict_recall_at_5=recall(result.strict_ranks, 5),
            strict_mrr=mrr(result.strict_ranks),
            wrongly_refused=sum(1 for i in questions if not result.covered[i]),
            offtopic=len(offtopic),
            offtopic_rejected=sum(1 for i in offtopic if not result.offtopic_covered[i]),
        )


def indexable_labels(source: Path, settings: Settings) -> set[tuple[str, str | None]]:
    """(path without trailing slash, anchor) of every section a chunk of `source` covers.

    A label missing here can never be found: its heading does not exist, or its section has no
    text of its own (a heading directly followed by a sub-heading).
    """
    labels: set[tuple[str, str | None]] = set()
    for key, file in iter_site_files(source):
        if classify_key(key).format is None:
            continue
        try:
            page = parse_document(key, file.read_bytes(), settings=settings)
        except DocumentError:
            continue
        for chunk in chunk_page(
            page,
            target_tokens=settings.chunk_target_tokens,
            max_tokens=settings.chunk_max_tokens,
            overlap_tokens=settings.chunk_overlap_tokens,
            min_tokens=settings.chunk_min_tokens,
        ):
            labels.update((chunk.path.rstrip("/"), anchor) for anchor in chunk.anchors)
    return labels


def same_path(a: str, b: str) -> bool:
    """Docusaurus serves `/docs/x` and `/docs/x/` alike; compare without the trailing slash."""
    return a.rstrip("/") == b.rstrip("/")


def page_rank_of(question: Question, hits: Sequence[Hit]) -> int | None:
    """Rank of the first hit on the labelled page, whatever its section."""
    for rank, hit in enumerate(hits, start=1):
        if same_path(hit.path, question.path):
            return rank
    return None


def rank_of(question: Question, hits: Sequence[Hit], *, strict: bool = False) -> int | None:
    """Rank of the first hit on the labelled section: one that covers it, or with `strict`, one
    whose citation anchor is it."""
    for rank, hit in enumerate(hits, start=1):
        anchors = (hit.anchor,) if strict else hit.anchors
        if same_path(hit.path, question.path) and question.anchor in anchors:
            return rank
    return None


def describe(hit: Hit) -> str:
    where = f"{hit.path}#{hit.anchor}" if hit.anchor else hit.path
    more = [anchor or "(top)" for anchor in hit.anchors[1:]]
    return f"{where} (+{', '.join(more)})" if more else where


async def run_mode(
    name: str,
    retriever: Retriever,
    questions: Sequence[Question],
    offtopic: Sequence[str],
    *,
    index: DocsIndex,
    encoder: BM25Encoder,
    embedder: DenseEmbedder | None,
    settings: Settings,
) -> ModeResult:
    result = ModeResult(name)
    result.dense_floor = await retriever.dense_floor() if embedder is not None else None
    started = time.perf_counter()
    for question in questions:
        retrieval = await retriever.retrieve(question.question, ())
        result.ranks.append(rank_of(question, retrieval.hits))
        result.strict_ranks.append(rank_of(question, retrieval.hits, strict=True))
        result.page_ranks.append(page_rank_of(question, retrieval.hits))
        result.covered.append(retrieval.covered)
        result.top_hits.append(retrieval.hits[:3])
    for text in offtopic:
        retrieval = await retriever.retrieve(text, ())
        result.offtopic_covered.append(retrieval.covered)
    result.seconds = time.perf_counter() - started
    # Diagnostics only (not timed): the same query straight against the index, uncapped.
    for question in questions:
        dense = await embedder.embed_query(question.question) if embedder is not None else None
        raw = index.search(
            sparse=retriever.sparse_query(question.question, []),
            dense=dense,
            limit=RAW_DEPTH,
            prefetch_limit=RAW_DEPTH,
        )
        result.raw_ranks.append(rank_of(question, raw.hits))
        result.signals.append(
            signals_of(
                question.question, dense, retriever, index, encoder, settings, result.dense_floor
            )
        )
        if dense is not None:
            alone = index.search(
                sparse=SparseVector(indices=[], values=[]),
                dense=dense,
                limit=RAW_DEPTH,
                prefetch_limit=RAW_DEPTH,
            )
            result.dense_ranks.append(rank_of(question, alone.hits))
    for text in offtopic:
        dense = await embedder.embed_query(text) if embedder is not None else None
        result.offtopic_signals.append(
            signals_of(text, dense, retriever, index, encoder, settings, result.dense_floor)
        )
    # The signals above must give the retriever's own decision, or the sweep below means nothing.
    decided = [
        s.covered(dense_floor=result.dense_floor, terms_floor=settings.sparse_relevance_floor)
        for s in (*result.signals, *result.offtopic_signals)
    ]
    if decided != [*result.covered, *result.offtopic_covered]:
        print(f"WARNING: {name}: recomputed signals disagree with the retriever's decisions")
    return result


def signals_of(
    question: str,
    dense: list[float] | None,
    retriever: Retriever,
    index: DocsIndex,
    encoder: BM25Encoder,
    settings: Settings,
    dense_floor: float | None,
) -> Signals:
    """The signals of `Retriever.retrieve`'s "covered" rule, from the same search it makes
    (a question without history). Which names count as mentioned depends on `dense_floor` (the
    one the retriever applied); the sweep over other floors keeps that part fixed."""
    result = index.search(
        sparse=retriever.sparse_query(question, []),
        dense=dense,
        limit=settings.retrieval_top_k * FUSED_PER_TOP_K,
        prefetch_limit=PREFETCH_LIMIT,
    )
    names = question_names(question) if settings.require_question_names else []
    coverage = retriever.coverage(
        set(encoder.tokenize(question)), names, result.hits, dense_floor=dense_floor
    )
    return Signals(
        top_dense=result.top_dense,
        coverage=coverage.term_share,
        missing_names=coverage.missing_names,
    )


def why_missed(rank: int | None, raw_rank: int | None) -> str:
    if raw_rank is not None and raw_rank <= 5:
        return f"fused rank {raw_rank} before the section merge and page diversity: moved out"
    if raw_rank is not None:
        return f"fused rank {raw_rank}: other sections match the question's words better"
    return f"not in the fused top {RAW_DEPTH}"


def bench_settings(*, endpoint: dict[str, object], store: Path) -> Settings:
    """Settings for a throwaway embedded store and the embedding `endpoint` (settings fields;
    empty: the configured OPENROUTER_* endpoint and EMBEDDING_* model)."""
    return load_settings(
        **endpoint,
        qdrant_url=None,
        qdrant_api_key=None,
        qdrant_path=store,
        collection_name="bench",
    )


def spread(values: Sequence[float]) -> str:
    """min, p10, median, p90, max of `values`, in columns."""
    if not values:
        return f"{'(none)':>8}"
    ordered = sorted(values)
    if len(ordered) > 1:
        deciles = statistics.quantiles(ordered, n=10, method="inclusive")
        p10, p90 = deciles[0], deciles[-1]
    else:
        p10 = p90 = ordered[0]
    figures = (ordered[0], p10, statistics.median(ordered), p90, ordered[-1])
    return "".join(f"{value:>8.3f}" for value in figures)


def _floor(applied: float | None, settings: Settings) -> str:
    """The dense floor as the report shows it: its value, and whether it was calibrated."""
    if applied is None:
        return "n/a"
    if settings.dense_relevance_floor is None:
        return f"{applied:.3f} (calibrated on the collection)"
    return f"{applied:.3f} (DENSE_RELEVANCE_FLOOR)"


def print_signals(
    result: ModeResult,
    questions: Sequence[Question],
    offtopic: Sequence[str],
    settings: Settings,
) -> None:
    """What a dense floor would do: the two signals of the "covered" rule for labelled and
    off-topic questions, and the rule's outcome at other dense floors."""
    on_dense = [s.top_dense for s in result.signals if s.top_dense is not None]
    off_dense = [s.top_dense for s in result.offtopic_signals if s.top_dense is not None]
    print(f"\n{result.name}: the two signals of the 'covered' rule")
    columns = "".join(f"{label:>8}" for label in ("min", "p10", "median", "p90", "max"))
    print(f"  {'':<36}{'n':>4}{columns}")
    rows = (
        ("best dense cosine, labelled", on_dense),
        ("best dense cosine, off-topic", off_dense),
        ("BM25 term coverage, labelled", [s.coverage for s in result.signals]),
        ("BM25 term coverage, off-topic", [s.coverage for s in result.offtopic_signals]),
    )
    for label, values in rows:
        print(f"  {label:<36}{len(values):>4}{spread(values)}")
    if result.dense_ranks:
        found = [rank for rank in result.dense_ranks if rank is not None]
        total = len(result.dense_ranks)
        print(
            f"  dense alone (no BM25, no per-page cap): recall@1 "
            f"{sum(1 for rank in found if rank == 1) / total:.3f}, recall@5 "
            f"{sum(1 for rank in found if rank <= 5) / total:.3f}, MRR "
            f"{sum(1 / rank for rank in found) / total:.3f}"
        )

    terms_floor = settings.sparse_relevance_floor
    print(
        f"\n  'covered' at other dense floors (labelled judged covered / off-topic rejected; "
        f"now: dense {_floor(result.dense_floor, settings)}, terms {terms_floor})"
    )
    print(f"  {'dense floor':>13}{f'dense OR terms>={terms_floor}':>28}{'dense alone':>20}")

    def shares(dense_floor: float | None, terms: float | None) -> str:
        on = sum(s.covered(dense_floor=dense_floor, terms_floor=terms) for s in result.signals)
        off = sum(
            not s.covered(dense_floor=dense_floor, terms_floor=terms)
            for s in result.offtopic_signals
        )
        return f"{on:>3}/{len(result.signals)} {off:>3}/{len(result.offtopic_signals)}"

    print(f"  {'terms only':>13}{shares(None, terms_floor):>28}{'':>20}")
    for floor in FLOOR_SWEEP:
        print(f"  {floor:>13.2f}{shares(floor, terms_floor):>28}{shares(floor, None):>20}")
    signals = (*result.signals, *result.offtopic_signals)
    named = sum(1 for s in result.signals if s.missing_names)
    off_named = sum(1 for s in result.offtopic_signals if s.missing_names)
    without = [
        s.covered(dense_floor=result.dense_floor, terms_floor=terms_floor, names=False)
        for s in signals
    ]
    n = len(result.signals)
    print(
        f"  names the sections never use (docsrag.names): {named}/{n} labelled, "
        f"{off_named}/{len(result.offtopic_signals)} off-topic; without that rule "
        f"{sum(without[:n])}/{n} labelled judged covered, "
        f"{sum(not c for c in without[n:])}/{len(result.offtopic_signals)} off-topic rejected"
    )

    def line(signal: Signals, text: str) -> str:
        dense = "  n/a" if signal.top_dense is None else f"{signal.top_dense:.3f}"
        return f"    {dense}  terms {signal.coverage:.2f}  {text}"

    closest = sorted(
        zip(result.offtopic_signals, offtopic, strict=True),
        key=lambda pair: -(pair[0].top_dense or 0.0),
    )
    print("\n  off-topic questions with the highest dense cosine:")
    for signal, text in closest[:8]:
        print(line(signal, text))
    lowest = sorted(
        zip(result.signals, questions, strict=True), key=lambda pair: pair[0].top_dense or 0.0
    )
    print("  labelled questions with the lowest dense cosine:")
    for signal, question in lowest[:8]:
        print(line(signal, question.question))


def tag(item: _Split) -> str:
    """`[held] ` or `[tune] ` before a question of a split set, nothing otherwise."""
    return f"[{item.split}] " if item.split else ""


def print_failures(questions: Sequence[Question], results: Sequence[ModeResult]) -> None:
    for result in results:
        misses = [
            (question, rank, hits)
            for question, rank, hits in zip(questions, result.ranks, result.top_hits, strict=True)
            if rank is None or rank > 1
        ]
        print(f"\n{result.name}: {len(misses)} question(s) not ranked first")
        for question, rank, hits in misses:
            where = f"rank {rank}" if rank is not None else "not in results"
            print(f"  - {tag(question)}{question.question}")
            print(f"      expected {question.label} ({where}); top: ", end="")
            print(", ".join(describe(hit) for hit in hits) or "(nothing)")


def report_splits(questions: Sequence[Question], offtopic: Sequence[OffTopic]) -> list[str]:
    """The splits to report: all, then tune and held when the question files carry them."""
    present = {q.split for q in questions} | {o.split for o in offtopic}
    return [ALL, *(split for split in SPLITS if split in present)]


def figures_by_split(
    results: Sequence[ModeResult],
    questions: Sequence[Question],
    offtopic: Sequence[OffTopic],
) -> dict[str, dict[str, SplitFigures]]:
    """{mode name: {split: figures}}."""
    return {
        result.name: {
            split: SplitFigures.of(result, select(questions, split), select(offtopic, split))
            for split in report_splits(questions, offtopic)
        }
        for result in results
    }


def print_table(figures: dict[str, dict[str, SplitFigures]], seconds: dict[str, float]) -> None:
    def share(found: int, total: int) -> str:
        return f"{found}/{total}" if total else "-"

    header = (
        f"{'mode':<{NAME_WIDTH}}{'split':<6}{'n':>5}{'R@1':>7}{'R@5':>7}{'MRR':>7}"
        f"{'page@5':>8}{'sR@1':>7}{'sR@5':>7}{'sMRR':>7}"
        f"{'off-topic rejected':>20}{'wrongly refused':>17}{'time':>8}"
    )
    print(header)
    print("-" * len(header))
    for name, by_split in figures.items():
        for row, (split, f) in enumerate(by_split.items()):
            shown = name if row == 0 else ""
            time_text = f"{seconds[name]:>7.1f}s" if row == 0 else ""
            print(
                f"{shown:<{NAME_WIDTH}}{split:<6}{f.questions:>5}{f.recall_at_1:>7.3f}"
                f"{f.recall_at_5:>7.3f}{f.mrr:>7.3f}{f.page_recall_at_5:>8.3f}"
                f"{f.strict_recall_at_1:>7.3f}{f.strict_recall_at_5:>7.3f}{f.strict_mrr:>7.3f}"
                f"{share(f.offtopic_rejected, f.offtopic):>20}"
                f"{share(f.wrongly_refused, f.questions):>17}{time_text}"
            )
    print(
        "\nR@k, MRR: the labelled section is among the sections a hit covers; page@5: a hit on the "
        "labelled page\n(any section) is in the top 5; sR@k, sMRR (strict): the section is the "
        "hit's citation anchor (where\nthe link lands). off-topic rejected: off-topic questions "
        "judged not covered; wrongly refused:\nlabelled questions judged not covered. n: labelled "
        "questions. Held questions are never tuned on."
    )


def write_figures(
    path: Path,
    figures: dict[str, dict[str, SplitFigures]],
    *,
    source: Path,
    questions_file: Path,
    offtopic_file: Path,
    settings: Settings,
    dense_floor: float | None,
) -> None:
    report = {
        "source": str(source),
        "questions": str(questions_file),
        "offtopic": str(offtopic_file),
        "settings": {
            "retrieval_top_k": settings.retrieval_top_k,
            "retrieval_page_diversity": settings.retrieval_page_diversity,
            "dense_relevance_floor": settings.dense_relevance_floor,
            "dense_floor_applied": dense_floor,
            "sparse_relevance_floor": settings.sparse_relevance_floor,
            "embedding_model": settings.embedding_model,
        },
        # Stable keys for scripts; the displayed name (with the model) inside.
        "modes": {
            key: {"name": name, "splits": {split: asdict(f) for split, f in by_split.items()}}
            for key, (name, by_split) in zip(MODE_KEYS, figures.items(), strict=True)
        },
    }
    path.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(f"\nfigures written to {path}")


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if "--versioned" in args_list:
        # The versioned, two-locale sample site: bench/versioned_quality.py's figures.
        sys.path.insert(0, str(BENCH_DIR))
        import versioned_quality

        args_list.remove("--versioned")
        return versioned_quality.main(args_list)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--source",
        type=Path,
        default=REPO_ROOT / "docs",
        help="docs folder or Docusaurus build folder to ingest (default: docs/)",
    )
    parser.add_argument("--questions", type=Path, default=BENCH_DIR / "questions.jsonl")
    parser.add_argument("--offtopic", type=Path, default=BENCH_DIR / "offtopic.txt")
    parser.add_argument(
        "--real-embeddings",
        action="store_true",
        help="embed with the configured endpoint (OPENROUTER_API_KEY, EMBEDDING_MODEL) instead "
        "of the fake server; costs about one embedding request per chunk batch and question",
    )
    parser.add_argument(
        "--embeddings-url",
        help="an OpenAI-compatible endpoint serving a real embedding model without a key, such "
        "as bench/semantic_embeddings_server.py: http://127.0.0.1:8765/v1",
    )
    parser.add_argument(
        "--embedding-model",
        default=MINILM,
        help=f"model name sent to --embeddings-url (default {MINILM})",
    )
    parser.add_argument(
        "--embedding-dimensions",
        type=int,
        default=384,
        help="vector size of --embeddings-url's model (default 384)",
    )
    parser.add_argument(
        "--signals-json",
        type=Path,
        help="write each question's rank and 'covered' signals (top dense cosine, term "
        "coverage), per mode, to this JSON file, to try other floors or rules offline",
    )
    parser.add_argument(
        "--show-failures",
        action="store_true",
        help="list every question whose section is not ranked first",
    )
    parser.add_argument(
        "--split",
        choices=(ALL, *SPLITS),
        default=ALL,
        help="ask only the questions (labelled and off-topic) of this split (default: all, "
        "reported per split)",
    )
    parser.add_argument(
        "--json",
        type=Path,
        help="write the figures per mode and per split to this JSON file",
    )
    args = parser.parse_args(argv)
    if args.real_embeddings and args.embeddings_url:
        parser.error("--real-embeddings and --embeddings-url exclude each other")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    all_questions = load_questions(args.questions)
    all_offtopic = load_offtopic(args.offtopic)
    questions = [all_questions[i] for i in select(all_questions, args.split)]
    offtopic_items = [all_offtopic[i] for i in select(all_offtopic, args.split)]
    if not questions:
        raise SystemExit(f"{args.questions}: no labelled question in the split {args.split!r}")
    offtopic = [item.text for item in offtopic_items]

    with (
        FakeOpenAI() as fake,
        tempfile.TemporaryDirectory(prefix="docsrag-bench-") as tmp,
    ):
        endpoint: dict[str, object]
        if args.embeddings_url:
            endpoint = {
                # The local server takes any key; the embedder needs one to exist.
                "openrouter_api_key": "local-no-key",
                "openrouter_base_url": args.embeddings_url,
                "embedding_model": args.embedding_model,
                "embedding_dimensions": args.embedding_dimensions,
            }
        elif args.real_embeddings:
            endpoint = {}
        else:
            endpoint = {"openrouter_api_key": fake.api_key, "openrouter_base_url": fake.base_url}
        settings = bench_settings(endpoint=endpoint, store=Path(tmp) / "qdrant")
        if not settings.llm_enabled:
            raise SystemExit("--real-embeddings needs OPENROUTER_API_KEY (environment or .env)")
        client = build_qdrant_client(settings)
        try:
            index = DocsIndex(
                client=client,
                collection=settings.collection_name,
                dense_dimensions=settings.embedding_dimensions,
            )
            index.ensure_collection()
            encoder = BM25Encoder()
            embedder = build_embedder(settings)
            assert embedder is not None, "the fake server's key enables the embedder"
            ingestor = Ingestor(index=index, encoder=encoder, embedder=embedder, settings=settings)

            started = time.perf_counter()
            summary = ingestor.sync_folder(args.source)
            ingest_seconds = time.perf_counter() - started
            again = ingestor.sync_folder(args.source)

            bm25 = Retriever(index=index, encoder=encoder, embedder=None, settings=settings)
            hybrid = Retriever(index=index, encoder=encoder, embedder=embedder, settings=settings)
            if args.embeddings_url:
                hybrid_name = f"hybrid ({settings.embedding_model.rsplit('/', 1)[-1]})"
            elif args.real_embeddings:
                hybrid_name = "hybrid (real dense)"
            else:
                hybrid_name = "hybrid (fake dense)"
            results = [
                asyncio.run(
                    run_mode(
                        name,
                        retriever,
                        questions,
                        offtopic,
                        index=index,
                        encoder=encoder,
                        embedder=mode_embedder,
                        settings=settings,
                    )
                )
                for name, retriever, mode_embedder in (
                    ("BM25 only", bm25, None),
                    (hybrid_name, hybrid, embedder),
                )
            ]
        finally:
            client.close()

    source = args.source.resolve()
    shown = source.relative_to(REPO_ROOT) if source.is_relative_to(REPO_ROOT) else source
    print(f"Retrieval quality on {shown}")
    print(
        f"  ingest: {summary.added} pages, {summary.chunks_written} chunks, "
        f"{summary.skipped} skipped, {summary.failed} failed, "
        f"{summary.embedding_calls} embedding requests, {ingest_seconds:.1f} s"
    )
    print(
        f"  re-ingest of the same folder: {again.unchanged} unchanged, "
        f"{again.added + again.updated} written, {again.embedding_calls} embedding requests"
    )
    labels = indexable_labels(args.source, settings)
    unreachable = [q for q in questions if (q.path.rstrip("/"), q.anchor) not in labels]
    for question in unreachable:
        print(f"  WARNING: no chunk carries the label {question.label} ({question.question})")
    print(
        f"  {len(questions)} labelled questions, {len(offtopic)} off-topic"
        f"{'' if args.split == ALL else ' (' + args.split + ' split only)'}; "
        f"top_k={settings.retrieval_top_k}, page diversity {settings.retrieval_page_diversity}, "
        f"floors dense={_floor(results[-1].dense_floor, settings)} "
        f"terms={settings.sparse_relevance_floor}"
    )
    if args.real_embeddings or args.embeddings_url:
        print(f"  dense vectors: {settings.embedding_model} via {settings.openrouter_base_url}")
    else:
        print(
            "  NOTE: hybrid uses the loopback fake embedding server (vectors follow word overlap). "
            "It is a stand-in that exercises\n"
            "        the hybrid path, not a semantic model: its figures say nothing about a "
            "real embedding model."
        )
    print()
    figures = figures_by_split(results, questions, offtopic_items)
    print_table(figures, {result.name: result.seconds for result in results})
    for result in results:
        found = sum(1 for rank in result.raw_ranks if rank is not None and rank <= 5)
        print(
            f"{result.name}: recall@5 of the fused list before the section merge and page "
            f"diversity (RETRIEVAL_PAGE_DIVERSITY={settings.retrieval_page_diversity}): "
            f"{found / len(questions):.3f}"
        )

    if args.real_embeddings or args.embeddings_url:
        print_signals(results[-1], questions, offtopic, settings)

    for result in results:
        missed = [
            (position, question)
            for position, (question, rank) in enumerate(zip(questions, result.ranks, strict=True))
            if rank is None or rank > 5
        ]
        if missed:
            print(
                f"\n{result.name}: labelled section not in the top 5 for {len(missed)} question(s)"
            )
            for position, question in missed:
                rank = result.ranks[position]
                hits = result.top_hits[position]
                print(f"  - {tag(question)}{question.question}")
                print(
                    f"      expected {question.label}"
                    f" ({'rank ' + str(rank) if rank else 'not returned'}; "
                    f"{why_missed(rank, result.raw_ranks[position])})"
                )
                print("      got: " + (", ".join(describe(hit) for hit in hits) or "(nothing)"))
        uncovered = [
            question
            for question, covered in zip(questions, result.covered, strict=True)
            if not covered
        ]
        if uncovered:
            print(f"\n{result.name}: judged NOT covered although labelled ({len(uncovered)}):")
            for question in uncovered:
                print(f"  - {tag(question)}{question.question}")
        accepted = [
            item
            for item, covered in zip(offtopic_items, result.offtopic_covered, strict=True)
            if covered
        ]
        if accepted:
            print(f"\n{result.name}: off-topic questions judged covered ({len(accepted)}):")
            for item in accepted:
                print(f"  - {tag(item)}{item.text}")
    if args.show_failures:
        print_failures(questions, results)
    if args.signals_json:
        write_signals(args.signals_json, questions, offtopic, results)
    if args.json:
        write_figures(
            args.json,
            figures,
            source=source,
            questions_file=args.questions.resolve(),
            offtopic_file=args.offtopic.resolve(),
            settings=settings,
            dense_floor=results[-1].dense_floor,
        )
    return 0


def write_signals(
    path: Path,
    questions: Sequence[Question],
    offtopic: Sequence[str],
    results: Sequence[ModeResult],
) -> None:
    report = {
        result.name: {
            "labelled": [
                {
                    "question": question.question,
                    "label": question.label,
                    "rank": rank,
                    "covered": covered,
                    "top_dense": signal.top_dense,
                    "coverage": signal.coverage,
                    "missing_names": list(signal.missing_names),
                }
                for question, rank, covered, signal in zip(
                    questions, result.ranks, result.covered, result.signals, strict=True
                )
            ],
            "offtopic": [
                {
                    "question": text,
                    "covered": covered,
                    "top_dense": signal.top_dense,
                    "coverage": signal.coverage,
                    "missing_names": list(signal.missing_names),
                }
                for text, covered, signal in zip(
                    offtopic, result.offtopic_covered, result.offtopic_signals, strict=True
                )
            ],
        }
        for result in results
    }
    path.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(f"\nsignals written to {path}")


if __name__ == "__main__":
    raise SystemExit(main())
