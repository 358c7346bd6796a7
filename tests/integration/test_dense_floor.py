"""The dense relevance floor is calibrated on the collection itself (`DocsIndex.dense_baseline`,
`Retriever.dense_floor`), so one setting fits embedding models whose cosines live on different
scales, and an explicit DENSE_RELEVANCE_FLOOR still wins."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from qdrant_client import QdrantClient

from docsrag.config import Settings, load_settings
from docsrag.index import DocsIndex, build_qdrant_client
from docsrag.models import Chunk, SparseVector
from docsrag.retrieval import FALLBACK_DENSE_FLOOR, Retriever
from docsrag.sparse import BM25Encoder

DIMS = 32


def _settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {"qdrant_path": tmp_path / "qdrant", "_env_file": None}
    return load_settings(**(values | overrides))


@pytest.fixture
def client(tmp_path: Path) -> Iterator[QdrantClient]:
    qdrant = build_qdrant_client(_settings(tmp_path))
    yield qdrant
    qdrant.close()


def _index(client: QdrantClient, name: str, vectors: np.ndarray) -> DocsIndex:
    """A collection of one-chunk pages with the given dense vectors."""
    index = DocsIndex(client=client, collection=name, dense_dimensions=DIMS)
    index.ensure_collection()
    for i, vector in enumerate(vectors):
        chunk = Chunk(
            source_key=f"page-{i}.md",
            path=f"/docs/page-{i}",
            page_title=f"Page {i}",
            heading_path=(),
            anchor=None,
            text=f"text {i}",
            chunk_index=0,
        )
        index.write_page(
            chunks=[chunk],
            content_hash=f"hash-{i}",
            sparse=[SparseVector(indices=[i + 1], values=[1.0])],
            dense=[vector.tolist()],
            new_page=True,
        )
    return index


def _retriever(index: DocsIndex, settings: Settings) -> Retriever:
    return Retriever(index=index, encoder=BM25Encoder(), embedder=None, settings=settings)


async def test_the_floor_follows_the_scale_of_the_collections_own_cosines(
    client: QdrantClient, tmp_path: Path
) -> None:
    # GIVEN two collections: one whose sections all point the same way (a model whose cosines
    # crowd near 1) and one of unrelated sections (cosines near 0)
    rng = np.random.default_rng(7)
    common = rng.normal(size=DIMS)
    crowded = _index(client, "crowded", common + 0.2 * rng.normal(size=(60, DIMS)))
    spread = _index(client, "spread", rng.normal(size=(60, DIMS)))
    settings = _settings(tmp_path)

    # WHEN the retriever works out its dense floor with the default settings
    crowded_floor = await _retriever(crowded, settings).dense_floor()
    spread_floor = await _retriever(spread, settings).dense_floor()

    # THEN each floor sits just above how alike that collection's own sections are
    assert crowded_floor > 0.9
    assert -0.1 < spread_floor < 0.15
    baseline = spread.dense_baseline()
    assert baseline is not None and baseline.sample == 60
    assert spread_floor == pytest.approx(baseline.mean + settings.dense_floor_spread * baseline.std)


async def test_an_explicit_floor_wins_and_a_tiny_collection_uses_the_fallback(
    client: QdrantClient, tmp_path: Path
) -> None:
    rng = np.random.default_rng(3)
    tiny = _index(client, "tiny", rng.normal(size=(5, DIMS)))

    assert tiny.dense_baseline() is None
    assert await _retriever(tiny, _settings(tmp_path)).dense_floor() == FALLBACK_DENSE_FLOOR
    explicit = _settings(tmp_path, dense_relevance_floor=0.42)
    assert await _retriever(tiny, explicit).dense_floor() == 0.42


async def test_the_floor_is_measured_again_after_a_write(
    client: QdrantClient, tmp_path: Path
) -> None:
    # GIVEN a collection of unrelated sections, whose floor has been read once
    rng = np.random.default_rng(5)
    index = _index(client, "docs", rng.normal(size=(30, DIMS)))
    retriever = _retriever(index, _settings(tmp_path))
    before = await retriever.dense_floor()

    # WHEN many near-identical sections are added
    common = rng.normal(size=DIMS)
    for i, vector in enumerate(common + 0.05 * rng.normal(size=(300, DIMS))):
        chunk = Chunk(
            source_key=f"copy-{i}.md",
            path=f"/docs/copy-{i}",
            page_title="Copy",
            heading_path=(),
            anchor=None,
            text="copy",
            chunk_index=0,
        )
        index.write_page(
            chunks=[chunk],
            content_hash=f"copy-{i}",
            sparse=[SparseVector(indices=[1000 + i], values=[1.0])],
            dense=[vector.tolist()],
            new_page=True,
        )

    # THEN the next question is judged against the new collection, not the cached figure
    assert await retriever.dense_floor() > before + 0.3
