"""Search latency of DocsIndex on the embedded Qdrant store, at 1k and 10k chunks.

Chunks are synthetic but shaped like real ones: word sequences drawn from the word frequencies of
real documentation (the shared Docusaurus corpus when present, else this repository's docs/),
~200 words each, BM25-encoded by the real encoder, with random unit dense vectors of the default
1536 dimensions. Queries are 2-6 words from the same vocabulary. The query embedding is excluded:
only `DocsIndex.search` is timed (hybrid: dense + BM25 fused by DBSF; sparse-only; dense-only).

Each mode runs twice on the same store and queries: through the search snapshot `DocsIndex` uses
for the embedded store (`docsrag.localsearch`), and, with `--baseline` (the default), through
Qdrant local mode's own search (`local_snapshot=False`), so the ratio comes from one run; the
two must return the same hits ("same hits" counts queries whose hit ids, order and scores agree,
scores within 1e-5). The snapshot's build time (one scroll, at the first search after a write)
and memory are printed before the timings.

    .venv/bin/python bench/retrieval_latency.py [--sizes 1000 10000] [--queries 100]
        [--no-baseline] [--profile]

Each search asks for what `Retriever.retrieve` asks with the default settings (18 fused hits from
`PREFETCH_LIMIT` candidates per list). Target: p95 <= 15 ms at 10k chunks, hybrid. Wall time
suffers when other processes share the CPU; the process CPU time beside it is what the search
itself costs (numpy may use more than one thread for the dense product, so CPU time can exceed
wall time).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import re
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
from qdrant_client import QdrantClient

from docsrag.index import DocsIndex, SearchResult
from docsrag.models import Chunk
from docsrag.retrieval import FUSED_PER_TOP_K, PREFETCH_LIMIT
from docsrag.sparse import BM25Encoder

REPO = Path(__file__).resolve().parent.parent
CORPORA = [REPO.parent / "shared" / "corpora" / "docusaurus" / "docs", REPO / "docs"]
DIMS = 1536
# What `Retriever.retrieve` asks of the index with the default RETRIEVAL_TOP_K (6).
LIMIT = 6 * FUSED_PER_TOP_K
PREFETCH = PREFETCH_LIMIT


def vocabulary() -> tuple[list[str], list[float]]:
    counts: Counter[str] = Counter()
    for root in CORPORA:
        for path in root.rglob("*.md*"):
            counts.update(re.findall(r"[A-Za-z][\w.-]*", path.read_text("utf-8", "replace")))
        if counts:
            break
    if not counts:
        raise SystemExit("no Markdown found to draw words from")
    words = list(counts)
    return words, [float(counts[w]) for w in words]


def build(index: DocsIndex, n: int, rng: random.Random, words: list[str], weights: list[float]):
    encoder = BM25Encoder()
    nprng = np.random.default_rng(rng.randrange(2**32))
    per_page = 8
    t0 = time.perf_counter()
    for page in range(n // per_page):
        key = f"docs/page-{page}.md"
        chunks = []
        for i in range(per_page):
            length = max(40, int(rng.gauss(200, 60)))
            text = " ".join(rng.choices(words, weights, k=length))
            chunks.append(
                Chunk(
                    source_key=key,
                    path=f"/docs/page-{page}",
                    page_title=f"Page {page}",
                    heading_path=(f"Section {i}",),
                    anchor=f"section-{i}",
                    text=text,
                    chunk_index=i,
                )
            )
        dense = nprng.standard_normal((per_page, DIMS)).astype(np.float32)
        dense /= np.linalg.norm(dense, axis=1, keepdims=True)
        index.write_page(
            chunks=chunks,
            content_hash="bench",
            sparse=[encoder.encode_document(c.embed_text) for c in chunks],
            dense=dense.tolist(),
            new_page=True,
        )
    return time.perf_counter() - t0


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q))


def summary(timings: list[float]) -> str:
    return f"p50 {statistics.median(timings):7.1f} ms  p95 {percentile(timings, 95):7.1f} ms"


def rss_mb() -> float:
    """Resident memory of this process (Linux), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def agreement(a: SearchResult, b: SearchResult) -> str:
    """ "same" hits (ids, order, scores within 1e-5); "ties": the same scores, and the same
    points for each score, but tied points in another order (local mode sorts ties unstably)
    or another cut through the last tied group; else "differ"."""
    scores_a, scores_b = [h.score for h in a.hits], [h.score for h in b.hits]
    if len(scores_a) != len(scores_b) or any(
        abs(x - y) > 1e-5 for x, y in zip(scores_a, scores_b, strict=True)
    ):
        return "differ"
    if [h.chunk_id for h in a.hits] == [h.chunk_id for h in b.hits]:
        return "same"
    last = scores_a[-1]
    above = [({h.chunk_id for h in r.hits if h.score > last}) for r in (a, b)]
    return "ties" if above[0] == above[1] else "differ"


def time_mode(
    search: Callable[[str, list[float]], SearchResult],
    questions: list[str],
    vectors: list[list[float]],
    profile: bool,
) -> tuple[list[float], list[float], list[SearchResult]]:
    search(questions[0], vectors[0])  # warm-up
    timings, cpu_timings, results = [], [], []
    profiler = cProfile.Profile() if profile else None
    for question, dense in zip(questions, vectors, strict=True):
        if profiler:
            profiler.enable()
        start, cpu_start = time.perf_counter(), time.process_time()
        results.append(search(question, dense))
        timings.append((time.perf_counter() - start) * 1000)
        cpu_timings.append((time.process_time() - cpu_start) * 1000)
        if profiler:
            profiler.disable()
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(12)
    return timings, cpu_timings, results


def run(size: int, queries: int, profile: bool, baseline: bool) -> None:
    rng = random.Random(size)
    words, weights = vocabulary()
    encoder = BM25Encoder()
    with tempfile.TemporaryDirectory() as tmp:
        client = QdrantClient(path=tmp)
        index = DocsIndex(client=client, collection="bench", dense_dimensions=DIMS)
        index.ensure_collection()
        seconds = build(index, size, rng, words, weights)
        print(f"\n{index.count_chunks()} chunks written in {seconds:.1f} s")

        rss_before = rss_mb()
        stats = index.prepare_search()
        assert stats is not None
        mb = 1e6
        print(
            f"search snapshot: {stats.points} points ({stats.dense_points} dense), "
            f"{stats.terms} terms, {stats.postings} postings; built in "
            f"{stats.build_seconds:.2f} s; {stats.total_bytes / mb:.1f} MB "
            f"(dense {stats.dense_bytes / mb:.1f}, sparse {stats.sparse_bytes / mb:.1f}, "
            f"ids + payloads ~{stats.payload_bytes / mb:.1f}); "
            f"process RSS +{rss_mb() - rss_before:.0f} MB"
        )
        qdrant = DocsIndex(
            client=client, collection="bench", dense_dimensions=DIMS, local_snapshot=False
        )

        nprng = np.random.default_rng(1)
        questions = [
            " ".join(rng.choices(words, weights, k=rng.randint(2, 6))) for _ in range(queries)
        ]
        dense_queries = nprng.standard_normal((queries, DIMS))
        dense_queries /= np.linalg.norm(dense_queries, axis=1, keepdims=True)
        vectors = dense_queries.tolist()
        empty = encoder.encode_query("")

        def modes(idx: DocsIndex) -> dict[str, Callable[[str, list[float]], SearchResult]]:
            return {
                "hybrid": lambda q, d: idx.search(
                    sparse=encoder.encode_query(q), dense=d, limit=LIMIT, prefetch_limit=PREFETCH
                ),
                "sparse-only": lambda q, d: idx.search(
                    sparse=encoder.encode_query(q), dense=None, limit=LIMIT, prefetch_limit=PREFETCH
                ),
                "dense-only": lambda q, d: idx.search(
                    sparse=empty, dense=d, limit=LIMIT, prefetch_limit=PREFETCH
                ),
            }

        fast_modes, slow_modes = modes(index), modes(qdrant)
        for name, search in fast_modes.items():
            timings, cpu, fast = time_mode(search, questions, vectors, profile)
            line = f"wall {summary(timings)}  |  cpu {summary(cpu)}"
            print(f"{size:>6} chunks  {name:<11}  snapshot  {line}")
            if not baseline:
                continue
            slow_timings, slow_cpu, slow = time_mode(slow_modes[name], questions, vectors, profile)
            verdicts: Counter[str] = Counter()
            for a, b, question, dense in zip(fast, slow, questions, vectors, strict=True):
                verdict = agreement(a, b)
                if verdict != "same" and name == "hybrid":
                    # Fused ranks differ when a raw list's tied points come in another order.
                    sparse = encoder.encode_query(question)
                    raw = [
                        agreement(
                            *(
                                idx.search(sparse=sq, dense=dq, limit=50, prefetch_limit=50)
                                for idx in (index, qdrant)
                            )
                        )
                        for sq, dq in ((sparse, None), (empty, dense))
                    ]
                    verdict = "differ" if "differ" in raw else "ties"
                verdicts[verdict] += 1
            line = f"wall {summary(slow_timings)}  |  cpu {summary(slow_cpu)}"
            ratio = percentile(slow_timings, 95) / percentile(timings, 95)
            print(
                f"{size:>6} chunks  {name:<11}  qdrant    {line}  (p95 x{ratio:.0f}; same hits "
                f"{verdicts['same']}/{len(fast)}, order of exact ties only "
                f"{verdicts['ties']}, different {verdicts['differ']})"
            )
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000])
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--profile", action="store_true", help="cProfile each mode")
    parser.add_argument(
        "--baseline",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time Qdrant local mode's own search on the same store (default: on)",
    )
    args = parser.parse_args()
    for size in args.sizes:
        run(size, args.queries, args.profile, args.baseline)


if __name__ == "__main__":
    main()
