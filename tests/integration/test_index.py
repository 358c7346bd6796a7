"""DocsIndex on a real embedded Qdrant store in tmp_path (and unreachable/refusing servers)."""

from __future__ import annotations

import http.server
import socket
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from qdrant_client import QdrantClient

from docsrag.config import Settings, load_settings
from docsrag.errors import EmbeddingDimensionMismatch, IndexUnavailable
from docsrag.index import DocsIndex, build_qdrant_client, point_id
from docsrag.models import Chunk, Hit, SparseVector

DIMS = 8


def _settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {"qdrant_path": tmp_path / "qdrant", "_env_file": None}
    return load_settings(**(values | overrides))


@pytest.fixture
def client(tmp_path: Path) -> Iterator[QdrantClient]:
    qdrant = build_qdrant_client(_settings(tmp_path))
    yield qdrant
    qdrant.close()


@pytest.fixture
def index(client: QdrantClient) -> DocsIndex:
    docs_index = DocsIndex(client=client, collection="docs", dense_dimensions=DIMS)
    docs_index.ensure_collection()
    return docs_index


def _sparse(text: str) -> SparseVector:
    counts: dict[int, float] = {}
    for word in text.lower().split():
        term = zlib.crc32(word.strip(".,?").encode())
        counts[term] = counts.get(term, 0.0) + 1.0
    return SparseVector(indices=list(counts), values=list(counts.values()))


def _dense(text: str) -> list[float]:
    vector = [0.0] * DIMS
    for word in text.lower().split():
        vector[zlib.crc32(word.encode()) % DIMS] += 1.0
    return vector


def _chunks(key: str, texts: list[str]) -> list[Chunk]:
    return [
        Chunk(
            source_key=key,
            path=f"/docs/{key.removesuffix('.md')}",
            page_title=key.removesuffix(".md").title(),
            heading_path=(f"Part {i}",),
            anchor=f"part-{i}",
            text=text,
            chunk_index=i,
        )
        for i, text in enumerate(texts)
    ]


def _write(index: DocsIndex, key: str, texts: list[str], *, dense: bool = True) -> int:
    chunks = _chunks(key, texts)
    return index.write_page(
        chunks=chunks,
        content_hash=f"hash-{hash(tuple(texts))}",
        sparse=[_sparse(c.embed_text) for c in chunks],
        dense=[_dense(c.embed_text) for c in chunks] if dense else None,
    )


def _point_ids(client: QdrantClient, key: str) -> set[str]:
    records, _ = client.scroll("docs", limit=1000, with_payload=["source_key"])
    return {str(r.id) for r in records if (r.payload or {}).get("source_key") == key}


def test_writing_the_same_page_twice_keeps_the_same_points(
    index: DocsIndex, client: QdrantClient
) -> None:
    texts = ["install with npm", "configure the theme", "deploy to pages"]
    _write(index, "guide.md", texts)
    first = _point_ids(client, "guide.md")

    _write(index, "guide.md", texts)

    assert _point_ids(client, "guide.md") == first
    assert first == {point_id("guide.md", i) for i in range(3)}
    assert index.count_chunks() == 3


def test_a_shorter_page_leaves_no_stale_chunks(index: DocsIndex) -> None:
    _write(index, "guide.md", ["install with npm", "configure the theme", "deploy to pages"])
    _write(index, "other.md", ["unrelated page"])

    _write(index, "guide.md", ["install with yarn"])

    states = index.page_states()
    assert states["guide.md"].chunk_count == 1
    assert states["other.md"].chunk_count == 1
    hits = index.search(sparse=_sparse("deploy pages"), dense=None, limit=5, prefetch_limit=20)
    assert all(hit.source_key != "guide.md" or "deploy" not in hit.text for hit in hits.hits)
    assert index.count_chunks() == 2


def test_delete_page_removes_only_that_page(index: DocsIndex) -> None:
    _write(index, "guide.md", ["install with npm", "configure the theme"])
    _write(index, "other.md", ["unrelated page"])

    assert index.delete_page("guide.md") == 2
    assert index.delete_page("guide.md") == 0
    assert set(index.page_states()) == {"other.md"}
    assert index.page_state("guide.md") is None


def test_page_states_report_hash_dense_and_count(index: DocsIndex) -> None:
    chunks = _chunks("guide.md", ["install with npm", "configure the theme"])
    index.write_page(
        chunks=chunks,
        content_hash="abc",
        sparse=[_sparse(c.text) for c in chunks],
        dense=None,
        version="0005",
    )

    state = index.page_state("guide.md")

    assert state is not None
    assert (state.content_hash, state.has_dense, state.chunk_count, state.version) == (
        "abc",
        False,
        2,
        "0005",
    )


def test_bm25_only_points_are_searchable_and_get_dense_vectors_later(
    index: DocsIndex, client: QdrantClient
) -> None:
    # GIVEN a page indexed without an embeddings key
    _write(index, "guide.md", ["install with npm", "configure the theme"], dense=False)
    _write(index, "other.md", ["theme colours and fonts"], dense=True)

    sparse_only = index.search(
        sparse=_sparse("install npm"), dense=None, limit=3, prefetch_limit=10
    )
    assert sparse_only.hits[0].source_key == "guide.md"
    assert sparse_only.top_dense is None
    # a hybrid query only finds it through BM25 for now
    hybrid = index.search(
        sparse=_sparse("install npm"), dense=_dense("install npm"), limit=3, prefetch_limit=10
    )
    guide_hit = next(h for h in hybrid.hits if h.source_key == "guide.md")
    assert guide_hit.dense_score is None
    assert guide_hit.sparse_score is not None

    # WHEN the page is written again with dense vectors
    _write(index, "guide.md", ["install with npm", "configure the theme"], dense=True)

    # THEN the dense search finds it too, with the same point ids
    state = index.page_state("guide.md")
    assert state is not None and state.has_dense
    hybrid = index.search(
        sparse=_sparse("install npm"), dense=_dense("install npm"), limit=3, prefetch_limit=10
    )
    guide_hit = next(h for h in hybrid.hits if h.source_key == "guide.md")
    assert guide_hit.dense_score is not None
    assert hybrid.top_dense is not None and hybrid.top_sparse is not None
    assert _point_ids(client, "guide.md") == {point_id("guide.md", i) for i in range(2)}


def test_hybrid_hits_carry_payload_for_citations(index: DocsIndex) -> None:
    _write(index, "guide.md", ["install with npm", "deploy to github pages"])

    result = index.search(
        sparse=_sparse("deploy github"), dense=_dense("deploy github"), limit=2, prefetch_limit=10
    )

    top = result.hits[0]
    assert (top.path, top.anchor, top.page_title, top.heading_path) == (
        "/docs/guide",
        "part-1",
        "Guide",
        ("Part 1",),
    )
    assert top.text == "deploy to github pages"


def test_hits_list_every_section_their_chunk_covers(index: DocsIndex, client: QdrantClient) -> None:
    # GIVEN a chunk that holds a tiny section and the one after it
    merged = Chunk(
        source_key="guide.md",
        path="/docs/guide",
        page_title="Guide",
        heading_path=("Before you start",),
        anchor="before-you-start",
        text="You need Node.js 18.\n\n## Install\n\nRun npm install.",
        chunk_index=0,
        anchors=("before-you-start", "install"),
    )

    def write() -> None:
        index.write_page(
            chunks=[merged],
            content_hash="h1",
            sparse=[_sparse(merged.embed_text)],
            dense=[_dense(merged.embed_text)],
        )

    def search() -> Hit:
        (hit,) = index.search(
            sparse=_sparse("npm install"), dense=_dense("npm install"), limit=5, prefetch_limit=10
        ).hits
        return hit

    # WHEN it was indexed before chunks recorded their sections (no `anchors` in the payload)
    write()
    client.delete_payload("docs", keys=["anchors"], points=[point_id("guide.md", 0)])
    # THEN its hits cover the one section they cite
    assert (search().anchor, search().anchors) == ("before-you-start", ("before-you-start",))

    # WHEN it is written now
    write()
    # THEN a hit cites the first section and knows it covers both
    hit = search()
    assert hit.anchor == "before-you-start"
    assert hit.anchors == ("before-you-start", "install")


def test_a_query_of_only_unknown_words_finds_nothing(index: DocsIndex) -> None:
    _write(index, "guide.md", ["install with npm"])

    result = index.search(
        sparse=_sparse("croissant baguette"), dense=None, limit=3, prefetch_limit=9
    )

    assert result.hits == []
    assert result.top_sparse is None


def test_another_embedding_size_is_refused_with_what_to_do(client: QdrantClient) -> None:
    DocsIndex(client=client, collection="docs", dense_dimensions=DIMS).ensure_collection()

    with pytest.raises(EmbeddingDimensionMismatch) as caught:
        DocsIndex(client=client, collection="docs", dense_dimensions=1536).ensure_collection()

    message = str(caught.value)
    assert "EMBEDDING_DIMENSIONS" in message and "COLLECTION_NAME" in message
    assert str(DIMS) in message and "1536" in message


def test_a_second_process_on_the_embedded_store_gets_a_clear_error(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    first = build_qdrant_client(settings)
    try:
        with pytest.raises(IndexUnavailable) as caught:
            build_qdrant_client(settings)
    finally:
        first.close()
    message = str(caught.value)
    assert "another docsrag process" in message and "QDRANT_URL" in message


def test_the_embedded_store_folder_is_created(tmp_path: Path) -> None:
    settings = _settings(tmp_path, qdrant_path=tmp_path / "a" / "b" / "store")
    client = build_qdrant_client(settings)
    client.close()
    assert (tmp_path / "a" / "b" / "store").is_dir()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_an_unreachable_server_is_index_unavailable(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path, qdrant_url=f"http://127.0.0.1:{_closed_port()}", qdrant_timeout_seconds=2
    )
    index = DocsIndex(client=build_qdrant_client(settings), collection="docs", dense_dimensions=8)

    with pytest.raises(IndexUnavailable) as caught:
        index.ensure_collection()

    assert "cannot connect to Qdrant" in str(caught.value)
    assert "QDRANT_URL" in str(caught.value)
    assert caught.value.__cause__ is not None


class _Refuse(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"status": {"error": "Must provide an API key"}}')

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.mark.filterwarnings("ignore:Api key is used with an insecure connection")
def test_a_wrong_api_key_is_index_unavailable_naming_the_setting(tmp_path: Path) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Refuse)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        settings = _settings(
            tmp_path,
            qdrant_url=f"http://127.0.0.1:{server.server_address[1]}",
            qdrant_api_key="wrong",
        )
        index = DocsIndex(
            client=build_qdrant_client(settings), collection="docs", dense_dimensions=8
        )
        with pytest.raises(IndexUnavailable) as caught:
            index.ensure_collection()
    finally:
        server.shutdown()
        server.server_close()
    assert "HTTP 401" in str(caught.value) and "QDRANT_API_KEY" in str(caught.value)


def test_fusing_in_the_client_matches_qdrants_fusion_query(client: QdrantClient) -> None:
    # The embedded store fuses hybrid results in the client (half the scoring work); a server
    # runs Qdrant's FusionQuery. Both must rank the same points the same way. Both run on local
    # mode's own search here: these pages tie a lot and local mode orders ties arbitrarily (its
    # search snapshot is compared with it on tie-free data in test_local_search.py).
    local = DocsIndex(client=client, collection="docs", dense_dimensions=DIMS, local_snapshot=False)
    local.ensure_collection()
    server_like = DocsIndex(
        client=client, collection="docs", dense_dimensions=DIMS, fuse_in_client=False
    )
    assert local.fuse_in_client and not server_like.fuse_in_client
    words = ["install", "configure", "deploy", "theme", "search"]
    words += ["plugin", "sidebar", "navbar", "footer", "blog"]
    for page in range(12):
        texts = [" ".join(words[(page + i) % 10 : (page + i) % 10 + 3]) for i in range(3)]
        _write(local, f"page-{page}.md", texts)

    for question in ("deploy theme", "search plugin sidebar", "footer"):
        sparse, dense = _sparse(question), _dense(question)
        here, there = (
            index.search(sparse=sparse, dense=dense, limit=8, prefetch_limit=20)
            for index in (local, server_like)
        )
        assert here.hits and here.hits == there.hits
        assert (here.top_dense, here.top_sparse) == (there.top_dense, there.top_sparse)
