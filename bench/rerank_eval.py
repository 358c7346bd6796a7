"""Second-stage reranking: retrieval quality without and with a reranker, and the latency it adds.

    .venv-bench/bin/python bench/rerank_server.py --model-dir DIR --port 8766 &
    .venv/bin/python bench/rerank_eval.py --rerank-url http://127.0.0.1:8766/v1 \
        [--embeddings-url http://127.0.0.1:8765/v1] [--candidates 25]

Ingests the Docusaurus build in ../shared (or `--source`) into a temporary embedded Qdrant store
with docsrag's own `Ingestor`, then, for every question of `bench/questions_docusaurus.jsonl` (or
`--questions`) and for each mode (BM25 only; hybrid when `--embeddings-url` serves a real
embedding model, see `bench/retrieval_quality.py`):

- takes the `--candidates` best fused hits inside the question's scope, each section once
  (`one_copy_per_section`), blog posts left out as the retriever leaves them out of a question the
  docs cover;
- without reranking: keeps them in fused order; with reranking: sends the question and the
  candidates' text (title and heading trail, then the chunk, as the dense vectors see it) to the
  rerank endpoint (Cohere/Jina wire format, `POST {url}/rerank`) and reorders them by its score;
- applies the retriever's per-page cap and `RETRIEVAL_TOP_K`, and scores both lists: section
  recall@1 and @5 and MRR (the labelled section among those a hit covers), page recall@5.

Figures are given for all questions and per `"split"` ("tune", "held") when the questions file
labels them. The rerank call is timed per question (one HTTP request with every candidate) and
reported as p50/p95/max; the endpoint's model is loaded and warmed before timing starts.

The reranker is any endpoint of that wire format: `bench/rerank_server.py` with a local
cross-encoder folder, or a hosted one (`--rerank-url https://api.jina.ai/v1 --rerank-model
jina-reranker-v2-base-multilingual`, key in the `RERANK_API_KEY` environment variable, never
printed). When the server is `bench/rerank_server.py --shape-twin` (a same-shape stand-in with
meaningless scores), only the latency is printed.

No API key and no network are needed for the local server: without `--embeddings-url`, dense
vectors at ingest come from the test suite's loopback fake, and only the BM25 mode is scored.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = Path(__file__).resolve().parent
# retrieval_quality and the fake server are imported from the repository: the script is run as a
# file, so make the repository and bench/ importable.
for folder in (REPO_ROOT, BENCH_DIR):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from retrieval_quality import (  # noqa: E402
    MINILM,
    Question,
    bench_settings,
    load_questions,
    rank_of,
    same_path,
)

from docsrag.config import Settings  # noqa: E402
from docsrag.embeddings import DenseEmbedder, build_embedder  # noqa: E402
from docsrag.index import DocsIndex, build_qdrant_client  # noqa: E402
from docsrag.ingest import Ingestor  # noqa: E402
from docsrag.models import Hit  # noqa: E402
from docsrag.retrieval import (  # noqa: E402
    PREFETCH_LIMIT,
    Retriever,
    diversify_pages,
    merge_section_parts,
    one_copy_per_section,
)
from docsrag.scope import BlogPolicy  # noqa: E402
from docsrag.sparse import BM25Encoder  # noqa: E402
from tests.fakes.openai_server import FakeOpenAI  # noqa: E402

SHARED_BUILD = REPO_ROOT.parent / "shared" / "corpora" / "docusaurus" / "build"
SHAPE_TWIN_PREFIX = "shape-twin:"
KEY_ENV = "RERANK_API_KEY"
NAME_WIDTH = 30


class RerankFailed(Exception):
    """The rerank endpoint did not answer with one score per candidate."""


@dataclass(slots=True)
class Scored:
    """Ranks of one list kind (with or without reranking) over the questions of one mode."""

    ranks: list[int | None] = field(default_factory=list)
    page_ranks: list[int | None] = field(default_factory=list)

    def recall(self, depth: int, *, page: bool = False) -> float:
        ranks = self.page_ranks if page else self.ranks
        found = sum(1 for rank in ranks if rank is not None and rank <= depth)
        return found / len(ranks) if ranks else 0.0

    def mrr(self) -> float:
        total = sum(1.0 / rank for rank in self.ranks if rank is not None)
        return total / len(self.ranks) if self.ranks else 0.0

    def subset(self, positions: Sequence[int]) -> Scored:
        return Scored([self.ranks[i] for i in positions], [self.page_ranks[i] for i in positions])


@dataclass(slots=True)
class ModeRun:
    name: str
    without: Scored = field(default_factory=Scored)
    reranked: Scored = field(default_factory=Scored)
    # rank of the label in the candidate list itself (before cap), to read the ceiling
    candidate_ranks: list[int | None] = field(default_factory=list)
    rerank_ms: list[float] = field(default_factory=list)
    candidate_counts: list[int] = field(default_factory=list)
    candidate_tokens: list[int] = field(default_factory=list)


def load_splits(path: Path) -> list[str | None]:
    """The `"split"` of each question line (None where a line has none), in file order."""
    splits: list[str | None] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            split = json.loads(line).get("split")
            splits.append(split if isinstance(split, str) else None)
    return splits


def page_rank(question: Question, hits: Sequence[Hit]) -> int | None:
    for rank, hit in enumerate(hits, start=1):
        if same_path(hit.path, question.path):
            return rank
    return None


def rerank_text(hit: Hit) -> str:
    """What the reranker reads of a hit: the text its dense vector was made from."""
    trail = " > ".join((hit.page_title, *hit.heading_path))
    return f"{trail}\n\n{hit.text}"


class RerankClient:
    def __init__(self, *, base_url: str, model: str, api_key: str | None, timeout: float) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/", headers=headers, timeout=timeout
        )
        self._model = model
        self.served_model: str | None = None
        self.tokens: int | None = None

    async def scores(self, query: str, documents: Sequence[str]) -> list[float]:
        """One score per document, in the documents' order."""
        body = {"model": self._model, "query": query, "documents": list(documents)}
        try:
            response = await self._client.post("rerank", json=body)
            response.raise_for_status()
            payload = response.json()
            self.served_model = str(payload.get("model", self._model))
            usage = payload.get("usage") or {}
            self.tokens = usage.get("total_tokens")
            scores: list[float | None] = [None] * len(documents)
            for item in payload["results"]:
                scores[int(item["index"])] = float(item["relevance_score"])
        except (httpx.HTTPError, ValueError, KeyError, TypeError, IndexError) as exc:
            raise RerankFailed(f"rerank request failed: {exc!r}") from exc
        if any(score is None for score in scores):
            raise RerankFailed("the rerank response did not score every document")
        return [score for score in scores if score is not None]

    async def aclose(self) -> None:
        await self._client.aclose()


async def candidates(
    question: str,
    *,
    retriever: Retriever,
    index: DocsIndex,
    embedder: DenseEmbedder | None,
    limit: int,
) -> list[Hit]:
    """The retriever's search with a wider limit: fused hits in scope, each section once, blog
    posts left out unless the question asks about releases."""
    scope = await retriever.scope(question)
    dense = await embedder.embed_query(question) if embedder is not None else None
    result = await asyncio.to_thread(
        index.search,
        sparse=retriever.sparse_query(question, []),
        dense=dense,
        limit=limit,
        prefetch_limit=max(PREFETCH_LIMIT, limit),
        scope=scope,
    )
    ranked = one_copy_per_section(result.hits, scope)
    if scope.blog is BlogPolicy.FALLBACK:
        ranked = [hit for hit in ranked if hit.meta.kind != "blog"]
    return ranked


async def run_mode(
    name: str,
    questions: Sequence[Question],
    *,
    retriever: Retriever,
    index: DocsIndex,
    embedder: DenseEmbedder | None,
    reranker: RerankClient,
    limit: int,
    top_k: int,
    diversity: float,
) -> ModeRun:
    run = ModeRun(name)
    for question in questions:
        found = await candidates(
            question.question, retriever=retriever, index=index, embedder=embedder, limit=limit
        )
        run.candidate_ranks.append(rank_of(question, found))
        without = diversify_pages(merge_section_parts(found), top_k=top_k, penalty=diversity)
        started = time.perf_counter()
        scores = await reranker.scores(question.question, [rerank_text(hit) for hit in found])
        run.rerank_ms.append((time.perf_counter() - started) * 1000)
        run.candidate_counts.append(len(found))
        if reranker.tokens is not None:
            run.candidate_tokens.append(reranker.tokens)
        order = sorted(range(len(found)), key=lambda i: -scores[i])
        reranked = diversify_pages(
            merge_section_parts([found[i] for i in order]), top_k=top_k, penalty=diversity
        )
        for scored, hits in ((run.without, without), (run.reranked, reranked)):
            scored.ranks.append(rank_of(question, hits))
            scored.page_ranks.append(page_rank(question, hits))
    return run


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=100, method="inclusive")[round(share * 100) - 1]


def print_quality(runs: Sequence[ModeRun], splits: Sequence[str | None]) -> None:
    groups: list[tuple[str, list[int]]] = [("all", list(range(len(splits))))]
    for split in sorted({s for s in splits if s is not None}):
        groups.append((split, [i for i, s in enumerate(splits) if s == split]))
    header = (
        f"{'mode':<{NAME_WIDTH}}{'split':>7}{'n':>4}{'':>3}"
        f"{'sec@1':>8}{'sec@5':>8}{'MRR':>8}{'page@5':>8}"
    )
    print(header)
    print("-" * len(header))
    for run in runs:
        for group, positions in groups:
            for label, scored in (("-", run.without), ("+R", run.reranked)):
                part = scored.subset(positions)
                print(
                    f"{run.name:<{NAME_WIDTH}}{group:>7}{len(positions):>4}{label:>3}"
                    f"{part.recall(1):>8.3f}{part.recall(5):>8.3f}{part.mrr():>8.3f}"
                    f"{part.recall(5, page=True):>8.3f}"
                )
        reachable = sum(1 for rank in run.candidate_ranks if rank is not None)
        print(
            f"{'':<{NAME_WIDTH}}label among the candidates (the ceiling): "
            f"{reachable}/{len(run.candidate_ranks)}"
        )
    print(
        "\n-: fused order; +R: reranked. sec@k, MRR: the labelled section is among the sections "
        "a hit covers, after\nthe per-page cap and top_k; page@5: a hit from the labelled page "
        "in the top 5."
    )


def print_latency(runs: Sequence[ModeRun]) -> None:
    print("\nadded latency: one rerank request per question, every candidate in it")
    header = (
        f"{'mode':<{NAME_WIDTH}}{'n':>4}{'cands':>7}{'tokens':>8}{'p50':>8}{'p95':>8}{'max':>8}"
    )
    print(header)
    print("-" * len(header))
    for run in runs:
        tokens = statistics.median(run.candidate_tokens) if run.candidate_tokens else None
        print(
            f"{run.name:<{NAME_WIDTH}}{len(run.rerank_ms):>4}"
            f"{statistics.median(run.candidate_counts):>7.0f}"
            + (f"{tokens:>8.0f}" if tokens is not None else f"{'n/a':>8}")
            + f"{percentile(run.rerank_ms, 0.5):>6.0f}ms{percentile(run.rerank_ms, 0.95):>6.0f}ms"
            f"{max(run.rerank_ms):>6.0f}ms"
        )
    print("cands: median candidates per request; tokens: median word pieces read per request.")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--source", type=Path, default=SHARED_BUILD)
    parser.add_argument("--questions", type=Path, default=BENCH_DIR / "questions_docusaurus.jsonl")
    parser.add_argument(
        "--rerank-url", required=True, help="rerank endpoint base: http://127.0.0.1:8766/v1"
    )
    parser.add_argument("--rerank-model", default="local", help="model name sent to it")
    parser.add_argument("--rerank-timeout", type=float, default=30.0, help="seconds per request")
    parser.add_argument("--candidates", type=int, default=25, help="fused hits sent to rerank")
    parser.add_argument(
        "--limit", type=int, help="only the first N questions (a quick latency run)"
    )
    parser.add_argument(
        "--embeddings-url",
        help="OpenAI-compatible endpoint with a real embedding model (adds the hybrid mode)",
    )
    parser.add_argument("--embedding-model", default=MINILM)
    parser.add_argument("--embedding-dimensions", type=int, default=384)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    questions = load_questions(args.questions)[: args.limit]
    splits = load_splits(args.questions)[: args.limit]
    with (
        FakeOpenAI() as fake,
        tempfile.TemporaryDirectory(prefix="docsrag-rerank-") as tmp,
    ):
        endpoint: dict[str, object]
        if args.embeddings_url:
            endpoint = {
                "openrouter_api_key": "local-no-key",
                "openrouter_base_url": args.embeddings_url,
                "embedding_model": args.embedding_model,
                "embedding_dimensions": args.embedding_dimensions,
            }
        else:
            endpoint = {"openrouter_api_key": fake.api_key, "openrouter_base_url": fake.base_url}
        settings = bench_settings(endpoint=endpoint, store=Path(tmp) / "qdrant")
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
            ingestor = Ingestor(index=index, encoder=encoder, embedder=embedder, settings=settings)
            started = time.perf_counter()
            summary = ingestor.sync_folder(args.source)
            ingest_seconds = time.perf_counter() - started
            modes: list[tuple[str, DenseEmbedder | None]] = [("BM25 only", None)]
            if args.embeddings_url:
                modes.append((f"hybrid ({args.embedding_model.rsplit('/', 1)[-1]})", embedder))
            served, runs = asyncio.run(
                run_all(args, questions, modes, index=index, encoder=encoder, settings=settings)
            )
        finally:
            client.close()

    print(f"Reranking on {args.source.resolve()}")
    print(
        f"  ingest: {summary.added} pages, {summary.chunks_written} chunks, "
        f"{ingest_seconds:.1f} s; {len(questions)} questions"
        + (f" ({', '.join(sorted({s for s in splits if s}))} splits)" if any(splits) else "")
    )
    print(
        f"  reranker: {served} via {args.rerank_url}; up to {args.candidates} candidates, "
        f"then top_k={settings.retrieval_top_k}, page diversity "
        f"{settings.retrieval_page_diversity}\n"
    )
    if served.startswith(SHAPE_TWIN_PREFIX):
        print("quality not scored: the shape twin's scores are meaningless (latency only)")
    else:
        print_quality(runs, splits)
    print_latency(runs)
    return 0


async def run_all(
    args: argparse.Namespace,
    questions: Sequence[Question],
    modes: Sequence[tuple[str, DenseEmbedder | None]],
    *,
    index: DocsIndex,
    encoder: BM25Encoder,
    settings: Settings,
) -> tuple[str, list[ModeRun]]:
    reranker = RerankClient(
        base_url=args.rerank_url,
        model=args.rerank_model,
        api_key=os.environ.get(KEY_ENV),
        timeout=args.rerank_timeout,
    )
    try:
        # Warm up (model load, first-call allocations) before anything is timed.
        for _ in range(3):
            await reranker.scores(questions[0].question, ["warm up"] * args.candidates)
        runs = []
        for name, embedder in modes:
            retriever = Retriever(
                index=index, encoder=encoder, embedder=embedder, settings=settings
            )
            runs.append(
                await run_mode(
                    name,
                    questions,
                    retriever=retriever,
                    index=index,
                    embedder=embedder,
                    reranker=reranker,
                    limit=args.candidates,
                    top_k=settings.retrieval_top_k,
                    diversity=settings.retrieval_page_diversity,
                )
            )
    except RerankFailed as exc:
        raise SystemExit(f"{exc} ({args.rerank_url})") from exc
    finally:
        await reranker.aclose()
    return reranker.served_model or args.rerank_model, runs


if __name__ == "__main__":
    raise SystemExit(main())
