"""The embedded store's search snapshot answers exactly as Qdrant's local mode does.

A seeded collection (a few hundred chunks of random documentation-like words through the real
BM25 encoder, deterministic dense vectors, a few BM25-only pages) is searched both ways: by
`DocsIndex` (snapshot, DBSF in the client) and by the client's own `query_points` (local mode's
search, and its `FusionQuery` for hybrid). Chunks have distinct lengths and random vectors, so no
two scores tie: local mode orders exact ties arbitrarily (an unstable argsort), which is the one
thing the snapshot does differently (it ranks ties by point id).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from qdrant_client import QdrantClient, models

from docsrag.config import load_settings
from docsrag.index import (
    DENSE_VECTOR,
    SPARSE_VECTOR,
    DocsIndex,
    build_qdrant_client,
    point_id,
)
from docsrag.models import Chunk, Hit, SparseVector
from docsrag.sparse import BM25Encoder

DIMS = 32
PAGES = 40
CHUNKS_PER_PAGE = 8
BM25_ONLY_PAGES = {3, 17, 31}  # written without dense vectors, as without an embeddings key
LIMIT = 12
PREFETCH = 40
WORDS = """
    install configure deploy theme search plugin sidebar navbar footer blog markdown mdx
    version translate locale build serve swizzle component react router webpack babel preset
    classic algolia typesense crawler index sitemap robots redirect alias frontmatter slug tag
    author archive pagination admonition tabs codeblock highlight prism mermaid katex math
    diagram image asset static folder directory route path url canonical trailing slash host
    github pages netlify vercel cloudflare docker node yarn npm pnpm cache lint typescript
""".split()  # noqa: SIM905 - a block of words reads better than quoted strings
ENCODER = BM25Encoder()


def _text(rng: random.Random, words: int) -> str:
    weights = [1.0 / (rank + 1) for rank in range(len(WORDS))]  # Zipf-like, like real text
    return " ".join(rng.choices(WORDS, weights, k=words))


def _vector(rng: np.random.Generator) -> list[float]:
    return [float(x) for x in rng.standard_normal(DIMS)]


def _write_page(
    index: DocsIndex,
    page: int,
    texts: list[str],
    *,
    dense: bool,
    seed: int,
) -> None:
    key = f"docs/page-{page}.md"
    chunks = [
        Chunk(
            source_key=key,
            path=f"/docs/page-{page}",
            page_title=f"Page {page}",
            heading_path=(f"Section {i}",),
            anchor=f"section-{i}",
            text=text,
            chunk_index=i,
        )
        for i, text in enumerate(texts)
    ]
    vectors = np.random.default_rng(seed)
    index.write_page(
        chunks=chunks,
        content_hash=f"hash-{seed}",
        sparse=[ENCODER.encode_document(chunk.embed_text) for chunk in chunks],
        dense=[_vector(vectors) for _ in chunks] if dense else None,
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[QdrantClient]:
    """The seeded collection in an embedded store on disk, written once for the module."""
    settings = load_settings(qdrant_path=tmp_path_factory.mktemp("qdrant"), _env_file=None)
    client = build_qdrant_client(settings)
    index = DocsIndex(client=client, collection="docs", dense_dimensions=DIMS)
    index.ensure_collection()
    rng = random.Random(7)
    for page in range(PAGES):
        # Every chunk a different length: equal BM25 weights would tie.
        lengths = [20 + page * CHUNKS_PER_PAGE + i for i in range(CHUNKS_PER_PAGE)]
        texts = [_text(rng, length) for length in lengths]
        _write_page(index, page, texts, dense=page not in BM25_ONLY_PAGES, seed=page)
    # Points docsrag never writes, for how local mode counts N in the IDF: the points that have
    # the sparse vector, an empty one included; points without it are not in the corpus. (Written
    # past DocsIndex, which is fine only because no search has built a snapshot yet.)
    vectors = np.random.default_rng(1000)
    odd: list[dict[str, object]] = [{DENSE_VECTOR: _vector(vectors)} for _ in range(5)]
    odd += [{SPARSE_VECTOR: models.SparseVector(indices=[], values=[])} for _ in range(7)]
    client.upsert(
        "docs",
        points=[
            models.PointStruct(
                id=point_id("odd.md", i),
                vector=vector,
                payload={"source_key": "odd.md", "path": "/odd", "title": "Odd", "text": ""},
            )
            for i, vector in enumerate(odd)
        ],
    )
    yield client
    client.close()


def _queries() -> list[tuple[SparseVector, list[float]]]:
    rng = random.Random(11)
    vectors = np.random.default_rng(11)
    queries = [
        (ENCODER.encode_query(_text(rng, rng.randint(1, 5))), _vector(vectors)) for _ in range(25)
    ]
    # words the docs never use, next to one they do
    queries.append((ENCODER.encode_query("croissant baguette plugin"), _vector(vectors)))
    return queries


def _qdrant(
    client: QdrantClient, sparse: SparseVector | None, dense: list[float] | None
) -> list[models.ScoredPoint]:
    """Local mode's own answer: a plain query, or prefetch + FusionQuery DBSF for both vectors."""
    sparse_query = (
        models.SparseVector(indices=sparse.indices, values=sparse.values) if sparse else None
    )
    if sparse_query is not None and dense is not None:
        return client.query_points(
            "docs",
            prefetch=[
                models.Prefetch(query=dense, using=DENSE_VECTOR, limit=PREFETCH),
                models.Prefetch(query=sparse_query, using=SPARSE_VECTOR, limit=PREFETCH),
            ],
            query=models.FusionQuery(fusion=models.Fusion.DBSF),
            limit=LIMIT,
            with_payload=True,
        ).points
    query, using = (dense, DENSE_VECTOR) if dense is not None else (sparse_query, SPARSE_VECTOR)
    return client.query_points(
        "docs", query=query, using=using, limit=LIMIT, with_payload=True
    ).points


def _assert_same(hits: list[Hit], points: list[models.ScoredPoint]) -> None:
    assert [hit.chunk_id for hit in hits] == [str(point.id) for point in points]
    for hit, point in zip(hits, points, strict=True):
        assert hit.score == pytest.approx(point.score, abs=1e-5)
        payload = point.payload or {}
        assert (hit.source_key, hit.path, hit.anchor, hit.text) == (
            payload.get("source_key"),
            payload.get("path"),
            payload.get("anchor"),
            payload.get("text"),
        )


def _no_ties(points: list[models.ScoredPoint]) -> bool:
    scores = [point.score for point in points]
    return len(set(scores)) == len(scores)


@pytest.mark.parametrize("mode", ["dense", "sparse", "hybrid"])
def test_the_snapshot_finds_what_local_mode_finds(store: QdrantClient, mode: str) -> None:
    index = DocsIndex(client=store, collection="docs", dense_dimensions=DIMS)
    assert index.local_snapshot
    compared = 0
    for sparse, dense in _queries():
        use_sparse = sparse if mode != "dense" else None
        use_dense = dense if mode != "sparse" else None
        expected = _qdrant(store, use_sparse, use_dense)
        if mode != "hybrid":
            assert _no_ties(expected), "the seeded data should not tie"

        result = index.search(
            sparse=use_sparse or SparseVector(indices=[], values=[]),
            dense=use_dense,
            limit=LIMIT,
            prefetch_limit=PREFETCH,
        )

        _assert_same(result.hits, expected)
        compared += len(expected)
    assert compared > 20 * LIMIT  # most queries found a full page of hits


def test_raw_scores_and_payloads_match_local_mode_hit_for_hit(store: QdrantClient) -> None:
    snapshot = DocsIndex(client=store, collection="docs", dense_dimensions=DIMS)
    qdrant = DocsIndex(client=store, collection="docs", dense_dimensions=DIMS, local_snapshot=False)
    for sparse, dense in _queries():
        fast = snapshot.search(sparse=sparse, dense=dense, limit=LIMIT, prefetch_limit=PREFETCH)
        slow = qdrant.search(sparse=sparse, dense=dense, limit=LIMIT, prefetch_limit=PREFETCH)

        assert [h.chunk_id for h in fast.hits] == [h.chunk_id for h in slow.hits]
        for a, b in zip(fast.hits, slow.hits, strict=True):
            # the same DBSF over the same lists (dense cosines agree to float32 precision)
            assert a.score == pytest.approx(b.score, abs=1e-6)
            assert a.sparse_score == b.sparse_score  # BM25: the same float32, bit for bit
            assert a.dense_score == pytest.approx(b.dense_score, abs=1e-5)
            plain = {"score": 0.0, "dense_score": None, "sparse_score": None}
            assert replace(a, **plain) == replace(b, **plain)  # citations: path, anchor, text
        assert fast.top_sparse == slow.top_sparse
        assert fast.top_dense == pytest.approx(slow.top_dense, abs=1e-5)


def test_bm25_only_pages_are_found_by_words_only(store: QdrantClient) -> None:
    index = DocsIndex(client=store, collection="docs", dense_dimensions=DIMS)
    bm25_only = {f"docs/page-{page}.md" for page in BM25_ONLY_PAGES}
    sparse_keys: set[str] = set()
    for sparse, dense in _queries():
        dense_hits = index.search(
            sparse=SparseVector(indices=[], values=[]), dense=dense, limit=50, prefetch_limit=50
        ).hits
        assert not bm25_only & {hit.source_key for hit in dense_hits}
        sparse_hits = index.search(sparse=sparse, dense=None, limit=50, prefetch_limit=50).hits
        sparse_keys |= {hit.source_key for hit in sparse_hits}
    assert bm25_only <= sparse_keys


# --- writes ---------------------------------------------------------------------------------


@pytest.fixture
def small(tmp_path: Path) -> Iterator[tuple[QdrantClient, DocsIndex]]:
    client = build_qdrant_client(load_settings(qdrant_path=tmp_path / "qdrant", _env_file=None))
    index = DocsIndex(client=client, collection="docs", dense_dimensions=DIMS)
    index.ensure_collection()
    rng = random.Random(3)
    for page in range(6):
        _write_page(
            index, page, [_text(rng, 30 + 4 * page + i) for i in range(4)], dense=True, seed=page
        )
    yield client, index
    client.close()


def _keys(index: DocsIndex, words: str) -> list[str]:
    result = index.search(
        sparse=ENCODER.encode_query(words), dense=None, limit=50, prefetch_limit=50
    )
    return [hit.source_key for hit in result.hits]


def test_a_written_page_is_found_at_the_next_search(small: tuple[QdrantClient, DocsIndex]) -> None:
    client, index = small
    assert "docs/page-2.md" in _keys(index, "install")  # the snapshot exists now
    assert _keys(index, "zeppelin") == []

    # WHEN page 2 is rewritten with a word no other page has, and one chunk fewer
    _write_page(
        index, 2, ["zeppelin airship " + _text(random.Random(5), 40)] * 1, dense=True, seed=99
    )

    # THEN the next search finds it, and nothing of the page's old chunks
    assert _keys(index, "zeppelin") == ["docs/page-2.md"]
    assert _keys(index, "install").count("docs/page-2.md") <= 1
    # and the snapshot still answers as local mode does (IDF counts changed with the write)
    for words in ("install theme", "zeppelin plugin", "deploy"):
        sparse = ENCODER.encode_query(words)
        hits = index.search(sparse=sparse, dense=None, limit=LIMIT, prefetch_limit=PREFETCH).hits
        _assert_same(hits, _qdrant(client, sparse, None))


def test_a_deleted_page_is_gone_from_the_next_search(small: tuple[QdrantClient, DocsIndex]) -> None:
    client, index = small
    dense = _vector(np.random.default_rng(1))
    before = index.search(
        sparse=ENCODER.encode_query("theme"), dense=dense, limit=50, prefetch_limit=50
    )
    assert "docs/page-4.md" in {hit.source_key for hit in before.hits}

    assert index.delete_page("docs/page-4.md") == 4

    after = index.search(
        sparse=ENCODER.encode_query("theme"), dense=dense, limit=50, prefetch_limit=50
    )
    assert "docs/page-4.md" not in {hit.source_key for hit in after.hits}
    hits = index.search(
        sparse=SparseVector(indices=[], values=[]), dense=dense, limit=LIMIT, prefetch_limit=LIMIT
    ).hits
    _assert_same(hits, _qdrant(client, None, dense))


def test_another_docs_index_on_the_same_store_sees_the_writes(
    small: tuple[QdrantClient, DocsIndex],
) -> None:
    client, writer = small
    reader = DocsIndex(client=client, collection="docs", dense_dimensions=DIMS)
    assert _keys(reader, "zeppelin") == []

    _write_page(writer, 0, ["zeppelin " + _text(random.Random(8), 25)], dense=True, seed=42)

    assert _keys(reader, "zeppelin") == ["docs/page-0.md"]


def test_an_ingest_rebuilds_the_snapshot_once_not_per_page(
    small: tuple[QdrantClient, DocsIndex],
) -> None:
    _, index = small
    _keys(index, "install")
    builds = index.snapshot_builds

    rng = random.Random(9)
    for page in range(6, 26):
        _write_page(index, page, [_text(rng, 25 + page)], dense=True, seed=page)
    assert index.snapshot_builds == builds  # writes only drop the snapshot

    assert _keys(index, "install")
    assert index.snapshot_builds == builds + 1
