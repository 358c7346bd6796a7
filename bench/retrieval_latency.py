"""Search latency of DocsIndex on the embedded Qdrant store, at 1k and 10k chunks.

Chunks are synthetic but shaped like real ones: word sequences drawn from the word frequencies of
real documentation (the shared Docusaurus corpus when present, else this repository's docs/),
~200 words each, BM25-encoded by the real encoder, with random unit dense vectors of the default
1536 dimensions. Queries are 2-6 words from the same vocabulary. The query embedding is excluded:
only `DocsIndex.search` is timed (hybrid: one batch of fused + raw queries; sparse-only).

    .venv/bin/python bench/retrieval_latency.py [--sizes 1000 10000] [--queries 100] [--profile]

Target: p95 <= 50 ms at 10k chunks. Wall time suffers when other processes share the CPU; the
process CPU time beside it is what the search itself costs (it runs on one thread).
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
from pathlib import Path

import numpy as np
from qdrant_client import QdrantClient

from docsrag.index import DocsIndex
from docsrag.models import Chunk
from docsrag.sparse import BM25Encoder

REPO = Path(__file__).resolve().parent.parent
CORPORA = [REPO.parent / "shared" / "corpora" / "docusaurus" / "docs", REPO / "docs"]
DIMS = 1536


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


def run(size: int, queries: int, profile: bool) -> None:
    rng = random.Random(size)
    words, weights = vocabulary()
    encoder = BM25Encoder()
    with tempfile.TemporaryDirectory() as tmp:
        client = QdrantClient(path=tmp)
        index = DocsIndex(client=client, collection="bench", dense_dimensions=DIMS)
        index.ensure_collection()
        seconds = build(index, size, rng, words, weights)
        print(f"\n{index.count_chunks()} chunks written in {seconds:.1f} s")
        nprng = np.random.default_rng(1)
        questions = [
            " ".join(rng.choices(words, weights, k=rng.randint(2, 6))) for _ in range(queries)
        ]
        dense_queries = nprng.standard_normal((queries, DIMS))
        dense_queries /= np.linalg.norm(dense_queries, axis=1, keepdims=True)
        modes = {
            "hybrid": lambda q, d: index.search(
                sparse=encoder.encode_query(q), dense=d, limit=12, prefetch_limit=50
            ),
            "sparse-only": lambda q, d: index.search(
                sparse=encoder.encode_query(q), dense=None, limit=12, prefetch_limit=50
            ),
            "dense-only": lambda q, d: index.search(
                sparse=encoder.encode_query(""), dense=d, limit=12, prefetch_limit=50
            ),
        }
        for name, search in modes.items():
            search(questions[0], dense_queries[0].tolist())  # warm-up
            timings = []
            cpu_timings = []
            profiler = cProfile.Profile() if profile else None
            for question, vector in zip(questions, dense_queries, strict=True):
                dense = vector.tolist()
                if profiler:
                    profiler.enable()
                start, cpu_start = time.perf_counter(), time.process_time()
                search(question, dense)
                timings.append((time.perf_counter() - start) * 1000)
                cpu_timings.append((time.process_time() - cpu_start) * 1000)
                if profiler:
                    profiler.disable()
            line = f"wall {summary(timings)}  |  cpu {summary(cpu_timings)}"
            print(f"{size:>6} chunks  {name:<11}  {line}")
            if profiler:
                pstats.Stats(profiler).sort_stats("cumulative").print_stats(12)
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000])
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--profile", action="store_true", help="cProfile each mode")
    args = parser.parse_args()
    for size in args.sizes:
        run(size, args.queries, args.profile)


if __name__ == "__main__":
    main()
