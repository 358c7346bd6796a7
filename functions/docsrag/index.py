"""The Qdrant collection that holds the chunks: one point per chunk, hybrid dense + BM25 search.

Each point has a named dense vector `dense` (cosine) and a named sparse vector `bm25` whose IDF
Qdrant applies at query time (`Modifier.IDF`), so the index stays correct as pages come and go.
A point may lack the dense vector: pages indexed without an embeddings key are BM25-only and get
their dense vectors on the next ingest that has an embedder.

Point ids are `uuid5(f"{source_key}#{chunk_index}")`, so writing a page again overwrites the same
points; `write_page` then deletes the page's points beyond the new chunk count. Every Qdrant,
httpx or gRPC failure leaves this module as `IndexUnavailable`, raised from its cause.

A server (`QDRANT_URL`) searches itself through the Query API. The embedded store's own search
is pure Python, so there `search` reads an in-memory numpy snapshot of the collection instead
(`docsrag.localsearch`: same hits and scores), built at the first search after a write.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import grpc  # type: ignore[import-untyped]
import httpx
import numpy as np
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import (
    ApiException,
    ResponseHandlingException,
    UnexpectedResponse,
)
from qdrant_client.hybrid.fusion import distribution_based_score_fusion

from docsrag.config import Settings
from docsrag.errors import ConfigError, EmbeddingDimensionMismatch, IndexUnavailable
from docsrag.localsearch import EmbeddedStore, LocalSnapshot, SnapshotStats, embedded_store
from docsrag.models import (
    CURRENT_VERSION,
    DEFAULT_PLUGIN,
    Chunk,
    Hit,
    PageMeta,
    PageState,
    PageSummary,
    SparseVector,
)
from docsrag.scope import BlogPolicy, SearchScope, SiteCatalog

logger = logging.getLogger(__name__)

DENSE_VECTOR = "dense"
SPARSE_VECTOR = "bm25"
# Ids are derived, never random: the same chunk of the same page is always the same point.
POINT_ID_NAMESPACE = uuid.UUID("6f1d3c1e-8a56-4a4b-9a55-1f0f3f0d0c5a")
UPSERT_BATCH = 128
SCROLL_PAGE = 512
# Points per scroll call when building the search snapshot. Local mode sorts every id on each
# call (fewer calls are faster) and hands dense vectors over as Python floats: a page of 512 x
# 1536 dims is ~25 MB of them on the way into numpy (2048 put the build's RSS growth at 10k
# chunks at +430 MB, for a 103 MB snapshot).
SNAPSHOT_SCROLL_PAGE = 512
# A content hash no page can have: the page's points disagree (an interrupted write).
MIXED_HASH = "<mixed>"

_PAGE_STATE_FIELDS = ["source_key", "content_hash", "has_dense", "version"]
# Where a page sits in the site (`PageMeta`): payload fields with Qdrant payload indexes, so a
# search scope (`docsrag.scope.SearchScope`) filters inside Qdrant. `docs_version` is the docs
# version name; the payload's `version` is the S3 object version of the source file.
_META_FIELDS = ["kind", "plugin", "docs_version", "default_version", "locale", "doc_id"]
_HIT_FIELDS = [
    "source_key", "path", "title", "heading_path", "anchor", "anchors", "text", "chunk_index",
    *_META_FIELDS,
]  # fmt: skip
_KEYWORD_INDEXES = ("source_key", "path", "kind", "plugin", "docs_version", "locale", "doc_id")
_BOOL_INDEXES = ("default_version",)
_TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    ApiException,
    httpx.HTTPError,
    grpc.RpcError,
    ConnectionError,
    TimeoutError,
)


def build_qdrant_client(settings: Settings) -> QdrantClient:
    """Qdrant server/Cloud when `QDRANT_URL` is set, else the embedded store at `QDRANT_PATH`.

    A URL without an explicit port uses its scheme's default port (443 for https), as URLs do;
    write `http://localhost:6333` for a local server. The embedded store is one folder that only
    one process may open at a time.
    """
    if settings.qdrant_url:
        api_key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
        parts = urlsplit(settings.qdrant_url)
        return QdrantClient(
            url=settings.qdrant_url,
            port=parts.port,
            api_key=api_key,
            timeout=max(1, round(settings.qdrant_timeout_seconds)),
            # No version round trip at construction: a cold start should not pay for it, and
            # an unreachable server is reported by the first real call.
            check_compatibility=False,
        )
    path = settings.qdrant_path
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise IndexUnavailable(f"cannot create the embedded Qdrant folder {path}: {exc}") from exc
    try:
        # DocsIndex serialises access itself, so the store may be used from worker threads.
        return QdrantClient(path=str(path), force_disable_check_same_thread=True)
    except RuntimeError as exc:
        if "already accessed" not in str(exc):
            raise
        raise IndexUnavailable(
            f"the embedded Qdrant store {path} is in use by another docsrag process (for example "
            "`docsrag serve`). Stop that process and try again, or run a Qdrant server and set "
            "QDRANT_URL so several processes can share the index."
        ) from exc


def point_id(source_key: str, chunk_index: int) -> str:
    return str(uuid.uuid5(POINT_ID_NAMESPACE, f"{source_key}#{chunk_index}"))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, UnexpectedResponse):
        status = exc.status_code
        if status in (401, 403):
            return f"Qdrant refused the credentials (HTTP {status}); check QDRANT_API_KEY"
        return f"Qdrant answered HTTP {status} {exc.reason_phrase}".rstrip()
    if isinstance(exc, ResponseHandlingException):
        return _describe(exc.source)
    if isinstance(exc, httpx.TimeoutException):
        return "Qdrant did not answer in time (QDRANT_TIMEOUT_SECONDS)"
    if isinstance(exc, httpx.ConnectError | ConnectionError):
        return f"cannot connect to Qdrant ({exc}); check QDRANT_URL and that the server is up"
    return f"{type(exc).__name__}: {exc}"


@dataclass(frozen=True, slots=True)
class SearchResult:
    """Fused hits and the best raw scores of each retriever (None when it found nothing)."""

    hits: list[Hit]
    top_dense: float | None
    top_sparse: float | None


@dataclass(frozen=True, slots=True)
class DenseBaseline:
    """How alike the collection's own sections are to each other under its embedding model:
    the mean and standard deviation of the cosine between pairs of a sample of its chunks."""

    mean: float
    std: float
    sample: int

    def floor(self, spread: float) -> float:
        """A relevance floor on this model's scale: `spread` deviations above the mean."""
        return self.mean + spread * self.std


# Chunks read to measure the `DenseBaseline`: ids are uuid5 hashes, so the first ones in id
# order are an unbiased sample; 400 give the pair statistics to about +/-0.005.
DENSE_BASELINE_SAMPLE = 400
# Fewer chunks than this tell too little about the model's scale (a fixed floor is used).
DENSE_BASELINE_MIN_SAMPLE = 20


class DocsIndex:
    """The chunk collection. Not tied to a site or a source: keys are whatever the caller uses."""

    def __init__(
        self,
        *,
        client: QdrantClient,
        collection: str,
        dense_dimensions: int,
        fuse_in_client: bool | None = None,
        local_snapshot: bool | None = None,
    ) -> None:
        """`fuse_in_client`: fuse hybrid results here instead of by a Qdrant `FusionQuery`;
        by default only for the embedded store (see `search`). `local_snapshot`: answer the
        dense and sparse queries from an in-memory snapshot of the collection
        (`docsrag.localsearch`) instead of local mode's pure-Python search; by default for the
        embedded store, never for a server."""
        self._client = client
        self.collection = collection
        self.dense_dimensions = dense_dimensions
        options = client.init_options
        self._local = options.get("path") is not None or options.get("location") == ":memory:"
        # The embedded store is not thread-safe; a server is, and needs no lock. Every DocsIndex
        # over one embedded client shares its lock and its search snapshots.
        self._store: EmbeddedStore | None = embedded_store(client) if self._local else None
        self._lock: threading.Lock | None = self._store.lock if self._store else None
        self.fuse_in_client = self._local if fuse_in_client is None else fuse_in_client
        if local_snapshot and not self._local:
            raise ValueError("local_snapshot is for the embedded store; a server searches itself")
        self.local_snapshot = self._local if local_snapshot is None else local_snapshot
        # What this instance has done, for logs, benchmarks and tests.
        self.points_written = 0
        self.points_deleted = 0
        self.snapshot_builds = 0
        # Derived facts when Qdrant is a server: name -> (when computed, value), see `_cached`.
        self._server_cache: dict[str, tuple[float, Any]] = {}
        self._ready = False  # ensure_collection has succeeded once

    # --- plumbing -----------------------------------------------------------------------------

    @contextmanager
    def _call(self, action: str, *, writes: bool = False) -> Iterator[None]:
        """Serialise access to the embedded store, name Qdrant failures; `writes`: the call
        changes points, so the search snapshot is dropped (even if the call fails part-way)."""
        with self._lock or nullcontext():
            try:
                yield
            except _TRANSPORT_ERRORS as exc:
                raise IndexUnavailable(
                    f"Qdrant {action} failed on collection {self.collection!r}: {_describe(exc)}"
                ) from exc
            finally:
                if writes and self._store is not None:
                    self._store.invalidate(self.collection)

    # --- collection -------------------------------------------------------------------------------

    def ensure_ready(self) -> None:
        """`ensure_collection` until it has succeeded once: every read, write and search calls
        it, so a Qdrant that was down when the process started is checked again then."""
        if not self._ready:
            self.ensure_collection()

    def ensure_collection(self) -> None:
        """Create the collection if missing; check an existing one matches what we write."""
        with self._call("collection check"):
            exists = self._client.collection_exists(self.collection)
            if not exists:
                logger.info(
                    "creating Qdrant collection %s (dense %d dims + bm25)",
                    self.collection,
                    self.dense_dimensions,
                )
                self._client.create_collection(
                    self.collection,
                    vectors_config={
                        DENSE_VECTOR: models.VectorParams(
                            size=self.dense_dimensions, distance=models.Distance.COSINE
                        )
                    },
                    sparse_vectors_config={
                        SPARSE_VECTOR: models.SparseVectorParams(modifier=models.Modifier.IDF)
                    },
                )
                payload_schema: dict[str, Any] = {}
            else:
                info = self._client.get_collection(self.collection)
                self._check_layout(info.config.params)
                payload_schema = dict(info.payload_schema or {})
            # Payload indexes do nothing in the embedded store (it warns if asked). A collection
            # made by an earlier release gets the indexes it lacks here, at the first ingest or
            # chat start; its points gain the fields when the next ingest rewrites them.
            if not self._local:
                wanted = [(f, models.PayloadSchemaType.KEYWORD) for f in _KEYWORD_INDEXES]
                wanted += [(f, models.PayloadSchemaType.BOOL) for f in _BOOL_INDEXES]
                for field, schema in wanted:
                    if field not in payload_schema:
                        self._client.create_payload_index(self.collection, field, schema)
        self._ready = True

    def _check_layout(self, params: models.CollectionParams) -> None:
        vectors = params.vectors
        dense = vectors.get(DENSE_VECTOR) if isinstance(vectors, dict) else None
        sparse = (params.sparse_vectors or {}).get(SPARSE_VECTOR)
        if dense is None or sparse is None:
            raise ConfigError(
                f"COLLECTION_NAME: Qdrant collection {self.collection!r} exists but was not made "
                f"by docsrag (it needs vectors {DENSE_VECTOR!r} and {SPARSE_VECTOR!r}); choose "
                "another COLLECTION_NAME or delete that collection"
            )
        if dense.size != self.dense_dimensions:
            raise EmbeddingDimensionMismatch(
                f"Qdrant collection {self.collection!r} holds {dense.size}-dimensional vectors but "
                f"EMBEDDING_DIMENSIONS is {self.dense_dimensions}. Set EMBEDDING_DIMENSIONS="
                f"{dense.size} (and the embedding model that produced them), or re-index into a "
                "new collection: set COLLECTION_NAME to a new name (or delete this collection) "
                "and run `docsrag ingest` again"
            )

    def count_chunks(self) -> int:
        """How many chunks (points) the collection holds."""
        with self._call("count"):
            return self._client.count(self.collection, exact=True).count

    def cached_site_catalog(self, *, default_locale: str, ttl_seconds: float) -> SiteCatalog:
        """`site_catalog`, kept until a write (embedded store) or for `ttl_seconds` (a server,
        which other processes write to)."""
        catalog: SiteCatalog = self._cached(
            f"catalog:{default_locale}",
            ttl_seconds,
            lambda: self.site_catalog(default_locale=default_locale),
        )
        return catalog

    def cached_dense_baseline(self, *, ttl_seconds: float) -> DenseBaseline | None:
        """`dense_baseline`, kept like the site catalog (until a write, or `ttl_seconds`)."""
        baseline: DenseBaseline | None = self._cached(
            "dense-baseline", ttl_seconds, self.dense_baseline
        )
        return baseline

    def _cached(self, name: str, ttl_seconds: float, compute: Callable[[], Any]) -> Any:
        """A fact derived from the collection: on the embedded store kept until a write drops
        it (`EmbeddedStore.derived`); on a server, which other processes write to, for
        `ttl_seconds`."""
        self.ensure_ready()
        if self._store is not None:
            key = (self.collection, name)
            if key not in self._store.derived:
                value = compute()
                with self._lock or nullcontext():
                    self._store.derived[key] = value
            return self._store.derived[key]
        now = time.monotonic()
        entry = self._server_cache.get(name)
        if entry is None or now - entry[0] >= ttl_seconds:
            entry = self._server_cache[name] = (now, compute())
        return entry[1]

    def dense_baseline(self, sample: int = DENSE_BASELINE_SAMPLE) -> DenseBaseline | None:
        """The `DenseBaseline` of up to `sample` chunks (one scroll with their dense vectors);
        None when the collection has too few chunks with one."""
        with self._call("dense baseline scroll"):
            records, _ = self._client.scroll(
                self.collection,
                limit=sample,
                with_payload=False,
                with_vectors=[DENSE_VECTOR],
            )
        rows = [
            vector
            for record in records
            if isinstance(record.vector, dict)
            and isinstance(vector := record.vector.get(DENSE_VECTOR), list)
            and vector
        ]
        if len(rows) < DENSE_BASELINE_MIN_SAMPLE:
            return None
        matrix = np.asarray(rows, dtype=np.float64)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        matrix = matrix[norms[:, 0] > 0] / norms[norms[:, 0] > 0]
        if len(matrix) < DENSE_BASELINE_MIN_SAMPLE:
            return None
        pairs = (matrix @ matrix.T)[np.triu_indices(len(matrix), k=1)]
        return DenseBaseline(mean=float(pairs.mean()), std=float(pairs.std()), sample=len(matrix))

    def site_catalog(self, *, default_locale: str = "en") -> SiteCatalog:
        """The docs versions, locales and kinds of page the index holds, from Qdrant facets
        (a handful of small calls, whatever the collection's size)."""
        with self._call("facet"):
            without_meta = self._client.count(
                self.collection,
                count_filter=models.Filter(
                    must=[models.IsEmptyCondition(is_empty=models.PayloadField(key="kind"))]
                ),
                exact=True,
            ).count
            kinds = self._facet("kind", None)
            docs = models.Filter(
                must=[_match("kind", ["docs"]), _match("plugin", [DEFAULT_PLUGIN])]
            )
            versions = self._facet("docs_version", docs)
            defaults = self._facet(
                "docs_version",
                models.Filter(
                    must=[
                        *(docs.must or []),
                        models.FieldCondition(
                            key="default_version", match=models.MatchValue(value=True)
                        ),
                    ]
                ),
            )
            locales = self._facet("locale", None)
        if without_meta:
            # Points from a release that did not record versions: until the next ingest (or
            # reconcile) rewrites them, a scoped search would hide them. Search everything.
            return SiteCatalog(default_locale=default_locale, legacy=True)
        default_version = max(defaults, key=lambda v: defaults[v]) if defaults else None
        if default_version is None and versions:
            default_version = CURRENT_VERSION if CURRENT_VERSION in versions else None
            default_version = default_version or sorted(versions, key=_version_key)[-1]
        others = sorted((v for v in versions if v != default_version), key=_version_key)
        ordered = ([default_version] if default_version else []) + others[::-1]
        if CURRENT_VERSION in ordered[1:]:  # the unreleased docs right after the default
            ordered.remove(CURRENT_VERSION)
            ordered.insert(1, CURRENT_VERSION)
        if default_locale not in locales and locales:
            default_locale = max(locales, key=lambda loc: locales[loc])
        return SiteCatalog(
            versions=tuple(ordered),
            default_version=default_version,
            locales=tuple(sorted(locales, key=lambda loc: (loc != default_locale, loc)))
            or (default_locale,),
            default_locale=default_locale,
            has_blog="blog" in kinds,
        )

    def _facet(self, key: str, facet_filter: models.Filter | None) -> dict[str, int]:
        response = self._client.facet(
            self.collection, key=key, facet_filter=facet_filter, limit=1000, exact=True
        )
        return {str(hit.value): hit.count for hit in response.hits}

    # --- pages ------------------------------------------------------------------------------------

    def page_states(self) -> dict[str, PageState]:
        """What the index holds, page by page (one scroll over the payloads, no vectors)."""
        return self._states(None)

    def page_state(self, source_key: str) -> PageState | None:
        return self._states(source_key).get(source_key)

    def _scroll(
        self, scroll_filter: models.Filter | None, with_payload: list[str]
    ) -> list[models.Record]:
        """Every record `scroll_filter` admits, payload fields only (one paged scroll)."""
        self.ensure_ready()
        records: list[models.Record] = []
        offset: Any = None
        with self._call("scroll"):
            while True:
                page, offset = self._client.scroll(
                    self.collection,
                    scroll_filter=scroll_filter,
                    limit=SCROLL_PAGE,
                    offset=offset,
                    with_payload=with_payload,
                    with_vectors=False,
                )
                records.extend(page)
                if offset is None:
                    return records

    def _states(self, source_key: str | None) -> dict[str, PageState]:
        scroll_filter = _key_filter(source_key) if source_key is not None else None
        seen: dict[str, list[dict[str, Any]]] = {}
        for record in self._scroll(scroll_filter, _PAGE_STATE_FIELDS):
            payload = record.payload or {}
            seen.setdefault(str(payload.get("source_key")), []).append(payload)
        states = {}
        for key, payloads in seen.items():
            hashes = {p.get("content_hash") for p in payloads}
            versions = {p.get("version") for p in payloads}
            version = versions.pop() if len(versions) == 1 else None
            states[key] = PageState(
                source_key=key,
                content_hash=str(hashes.pop()) if len(hashes) == 1 else MIXED_HASH,
                has_dense=all(bool(p.get("has_dense")) for p in payloads),
                chunk_count=len(payloads),
                version=None if version is None else str(version),
            )
        return states

    def write_page(
        self,
        *,
        chunks: Sequence[Chunk],
        content_hash: str,
        sparse: Sequence[SparseVector],
        dense: Sequence[Sequence[float]] | None,
        version: str | None = None,
        new_page: bool = False,
    ) -> int:
        """Replace one page's points with `chunks`; returns the number of points written.

        Upserts first, then deletes the page's other points, so a reader never sees the page
        missing; a failure part-way leaves points whose hashes disagree, which `page_states`
        reports as changed so the next ingest writes the page again. `new_page=True` (the
        caller knows the index holds nothing for the key) skips that delete, which filters the
        whole collection in the embedded store.
        """
        if not chunks:
            raise ValueError("write_page needs at least one chunk; delete_page removes a page")
        source_key = chunks[0].source_key
        if any(chunk.source_key != source_key for chunk in chunks):
            raise ValueError("write_page takes the chunks of one page")
        if len(sparse) != len(chunks) or (dense is not None and len(dense) != len(chunks)):
            raise ValueError("write_page needs one sparse (and dense, if any) vector per chunk")
        has_dense = dense is not None
        points = []
        for position, chunk in enumerate(chunks):
            vector: dict[str, Any] = {
                SPARSE_VECTOR: models.SparseVector(
                    indices=list(sparse[position].indices), values=list(sparse[position].values)
                )
            }
            if dense is not None:
                vector[DENSE_VECTOR] = list(dense[position])
            points.append(
                models.PointStruct(
                    id=point_id(source_key, chunk.chunk_index),
                    vector=vector,
                    payload={
                        "source_key": source_key,
                        "path": chunk.path,
                        "title": chunk.page_title,
                        "heading_path": list(chunk.heading_path),
                        "anchor": chunk.anchor,
                        "anchors": list(chunk.anchors),
                        "text": chunk.text,
                        "content_hash": content_hash,
                        "chunk_index": chunk.chunk_index,
                        "has_dense": has_dense,
                        "version": version,
                        **_meta_payload(chunk.meta),
                        # page-level fields, on the page's first point only
                        **(
                            {"description": chunk.page_description}
                            if chunk.chunk_index == 0 and chunk.page_description
                            else {}
                        ),
                    },
                )
            )
        self.ensure_ready()
        keep: list[models.ExtendedPointId] = [point.id for point in points]
        with self._call("upsert", writes=True):
            for start in range(0, len(points), UPSERT_BATCH):
                self._client.upsert(
                    self.collection, points=points[start : start + UPSERT_BATCH], wait=True
                )
            self.points_written += len(points)
            if not new_page:
                self._client.delete(
                    self.collection,
                    points_selector=models.FilterSelector(
                        filter=models.Filter(
                            must=[_key_condition(source_key)],
                            must_not=[models.HasIdCondition(has_id=keep)],
                        )
                    ),
                    wait=True,
                )
        return len(points)

    def delete_page(self, source_key: str) -> int:
        """Remove every point of a page; returns how many there were."""
        with self._call("delete", writes=True):
            existing = self._client.count(
                self.collection, count_filter=_key_filter(source_key), exact=True
            ).count
            if existing:
                self._client.delete(
                    self.collection,
                    points_selector=models.FilterSelector(filter=_key_filter(source_key)),
                    wait=True,
                )
                self.points_deleted += existing
        return existing

    def set_version(self, source_key: str, version: str) -> None:
        """Record a newer version of an unchanged page (payload only, no vectors)."""
        with self._call("set_payload", writes=True):
            self._client.set_payload(
                self.collection,
                payload={"version": version},
                points=models.FilterSelector(filter=_key_filter(source_key)),
                wait=True,
            )

    # --- page listings ----------------------------------------------------------------------------

    def pages(self, scope: SearchScope | None = None) -> list[PageSummary]:
        """Every indexed page inside `scope` (all pages without one), ordered by path: one
        scroll over the pages' first points, payloads only."""
        conditions: list[models.Condition] = [
            models.FieldCondition(key="chunk_index", match=models.MatchValue(value=0))
        ]
        query_filter = scope_filter(scope) if scope is not None else None
        if query_filter is not None:
            conditions.append(query_filter)
        summaries: list[PageSummary] = []
        fields = [*_META_FIELDS, "source_key", "path", "title", "description"]
        for record in self._scroll(models.Filter(must=conditions), fields):
            payload = record.payload or {}
            path = str(payload.get("path", ""))
            description = payload.get("description")
            summaries.append(
                PageSummary(
                    source_key=str(payload.get("source_key", "")),
                    path=path,
                    title=str(payload.get("title", "")),
                    description=str(description) if description else None,
                    meta=_meta(payload, path),
                )
            )
        return sorted(summaries, key=lambda page: (page.path, page.source_key))

    def page_chunks(self, path: str) -> list[Hit]:
        """Every chunk of the page(s) served at `path`, in reading order (empty when none);
        `Hit.score` is 0. Trailing slashes do not matter."""
        wanted = sorted({path.rstrip("/") or "/", path.rstrip("/") + "/"})
        return self._hits_in_reading_order(models.Filter(must=[_match("path", wanted)]))

    def chunks_by_page(self, scope: SearchScope | None = None) -> dict[str, list[Hit]]:
        """Every chunk inside `scope` (all chunks without one) by page (`source_key`), each
        page's in reading order; `Hit.score` is 0. One scroll, payloads only: `page_chunks` for
        a whole part of the site (on the embedded store, each `page_chunks` call reads the whole
        collection)."""
        query_filter = scope_filter(scope) if scope is not None else None
        by_page: dict[str, list[Hit]] = {}
        for hit in self._hits_in_reading_order(query_filter):
            by_page.setdefault(hit.source_key, []).append(hit)
        return by_page

    def _hits_in_reading_order(self, query_filter: models.Filter | None) -> list[Hit]:
        """The chunks `query_filter` admits (one scroll, payloads only), page by page
        (`source_key`), each page's in chunk order."""
        records = self._scroll(query_filter, [*_HIT_FIELDS, "chunk_index"])
        records.sort(key=_reading_order)
        return [
            _hit(
                models.ScoredPoint(id=record.id, version=0, score=0.0, payload=record.payload),
                0.0,
                {},
            )
            for record in records
        ]

    # --- search -----------------------------------------------------------------------------------

    def search(
        self,
        *,
        sparse: SparseVector,
        dense: Sequence[float] | None,
        limit: int,
        prefetch_limit: int,
        scope: SearchScope | None = None,
    ) -> SearchResult:
        """Hybrid search in one round trip, inside `scope` (one docs version, its locales, and
        blog posts unless the scope leaves them out) filtered by Qdrant itself (or the same
        filter on the embedded store's snapshot); no scope searches everything.

        With both vectors, on a server: a batch of three queries, the fused one (prefetch dense
        + sparse, `FusionQuery` DBSF) and the two raw lists, whose scores fill `Hit.dense_score` /
        `Hit.sparse_score` and the result's top scores. On the embedded store the two raw lists
        (with payloads) come from an in-memory snapshot (`docsrag.localsearch`: the points and
        scores local mode's own pure-Python search gives, far faster) and are fused here by
        qdrant-client's own DBSF function, the one its `FusionQuery` runs: same hits. With one
        vector the raw list is the answer and `Hit.score` is its raw score. An empty sparse
        query (only stop-words) uses the dense vector alone.

        Fusion is DBSF (distribution-based score fusion: each list's scores are scaled by their
        mean +/- 3 standard deviations and summed), not RRF: a section that one retriever scores
        far above the rest keeps that lead instead of counting as one rank. Measured side by side
        with `bench/retrieval_quality.py` (hybrid, MiniLM, tune split): see `docsrag.retrieval`.
        """
        self.ensure_ready()
        prefetch_limit = max(prefetch_limit, limit)
        query_filter = scope_filter(scope) if scope is not None else None
        raw: list[tuple[str, models.QueryRequest]] = []
        if dense is not None:
            raw.append(
                (
                    DENSE_VECTOR,
                    _raw_request(DENSE_VECTOR, list(dense), prefetch_limit, query_filter),
                )
            )
        if sparse.indices:
            query = models.SparseVector(indices=list(sparse.indices), values=list(sparse.values))
            raw.append(
                (SPARSE_VECTOR, _raw_request(SPARSE_VECTOR, query, prefetch_limit, query_filter))
            )
        if not raw:
            return SearchResult(hits=[], top_dense=None, top_sparse=None)

        if len(raw) == 1:
            name, request = raw[0]
            request = request.model_copy(update={"limit": limit, "with_payload": _HIT_FIELDS})
            (points,) = self._raw_search([request])
            scores = {str(point.id): point.score for point in points}
            top = max(scores.values(), default=None)
            hits = [_hit(point, point.score, {name: scores}) for point in points]
            if name == DENSE_VECTOR:
                return SearchResult(hits=hits, top_dense=top, top_sparse=None)
            return SearchResult(hits=hits, top_dense=None, top_sparse=top)

        if self.fuse_in_client:
            return self._search_fused_here(raw, limit)
        fused = models.QueryRequest(
            prefetch=[
                models.Prefetch(
                    query=request.query,
                    using=request.using,
                    limit=prefetch_limit,
                    filter=query_filter,
                )
                for _, request in raw
            ],
            query=models.FusionQuery(fusion=models.Fusion.DBSF),
            limit=limit,
            with_payload=_HIT_FIELDS,
        )
        with self._call("search"):
            fused_response, *raw_responses = self._client.query_batch_points(
                self.collection, [fused, *(request for _, request in raw)]
            )
        raw_scores = {
            name: {str(point.id): point.score for point in response.points}
            for (name, _), response in zip(raw, raw_responses, strict=True)
        }
        hits = [_hit(point, point.score, raw_scores) for point in fused_response.points]
        return SearchResult(
            hits=hits,
            top_dense=max(raw_scores[DENSE_VECTOR].values(), default=None),
            top_sparse=max(raw_scores[SPARSE_VECTOR].values(), default=None),
        )

    def _search_fused_here(
        self, raw: list[tuple[str, models.QueryRequest]], limit: int
    ) -> SearchResult:
        requests = [request.model_copy(update={"with_payload": _HIT_FIELDS}) for _, request in raw]
        lists = self._raw_search(requests)
        raw_scores = {
            name: {str(point.id): point.score for point in points}
            for (name, _), points in zip(raw, lists, strict=True)
        }
        # distribution_based_score_fusion overwrites the scores of the points it returns: raw scores
        # were read above.
        fused = distribution_based_score_fusion(lists, limit=limit)
        return SearchResult(
            hits=[_hit(point, point.score, raw_scores) for point in fused],
            top_dense=max(raw_scores[DENSE_VECTOR].values(), default=None),
            top_sparse=max(raw_scores[SPARSE_VECTOR].values(), default=None),
        )

    def _raw_search(self, requests: list[models.QueryRequest]) -> list[list[models.ScoredPoint]]:
        """Plain dense/sparse queries: the snapshot answers them for the embedded store (the
        same points and scores local mode gives, see `docsrag.localsearch`), else Qdrant."""
        if self.local_snapshot:
            snapshot = self._snapshot()
            return [snapshot.query(request) for request in requests]
        with self._call("search"):
            responses = self._client.query_batch_points(self.collection, requests)
        return [response.points for response in responses]

    def prepare_search(self) -> SnapshotStats | None:
        """Build the embedded store's search snapshot now instead of at the first search (a
        warm start, a benchmark); its stats, or None when Qdrant itself searches."""
        return self._snapshot().stats if self.local_snapshot else None

    def _snapshot(self) -> LocalSnapshot:
        """The current snapshot, built by one scroll if a write dropped it (or none was made).

        Built under the store lock, so no write lands half-way through; searched outside it,
        since a snapshot never changes (a write replaces it for later searches).
        """
        assert self._store is not None, "only the embedded store has a search snapshot"
        with self._call("snapshot scroll"):
            snapshot = self._store.snapshots.get(self.collection)
            if snapshot is None:
                snapshot = LocalSnapshot.build(
                    self._scroll_for_snapshot(),
                    payload_fields=_HIT_FIELDS,
                    dense_name=DENSE_VECTOR,
                    sparse_name=SPARSE_VECTOR,
                    dimensions=self.dense_dimensions,
                )
                self._store.snapshots[self.collection] = snapshot
                self.snapshot_builds += 1
                stats = snapshot.stats
                logger.info(
                    "search snapshot of %s: %d points (%d dense), %d terms, %.1f MB, %.2f s",
                    self.collection,
                    stats.points,
                    stats.dense_points,
                    stats.terms,
                    stats.total_bytes / 1e6,
                    stats.build_seconds,
                )
        return snapshot

    def _scroll_for_snapshot(self) -> Iterator[models.Record]:
        offset: Any = None
        while True:
            records, offset = self._client.scroll(
                self.collection,
                limit=SNAPSHOT_SCROLL_PAGE,
                offset=offset,
                with_payload=_HIT_FIELDS,
                with_vectors=[DENSE_VECTOR, SPARSE_VECTOR],
            )
            yield from records
            if offset is None:
                return


def _raw_request(
    using: str, query: models.VectorInput, limit: int, query_filter: models.Filter | None
) -> models.QueryRequest:
    return models.QueryRequest(
        query=query, using=using, limit=limit, with_payload=False, filter=query_filter
    )


def _reading_order(record: models.Record) -> tuple[str, int]:
    payload = record.payload or {}
    return str(payload.get("source_key")), int(payload.get("chunk_index") or 0)


def _version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """Natural order of version names: 1.9 < 1.10 < 2.0; `current` sorts after every number."""
    if version == CURRENT_VERSION:
        return ((2, 0),)
    parts = re.split(r"[.\-_]", version.lstrip("vV"))
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts)


def _match(key: str, values: Sequence[str]) -> models.FieldCondition:
    if len(values) == 1:
        return models.FieldCondition(key=key, match=models.MatchValue(value=values[0]))
    return models.FieldCondition(key=key, match=models.MatchAny(any=list(values)))


@functools.lru_cache(maxsize=256)
def scope_filter(scope: SearchScope) -> models.Filter | None:
    """The Qdrant filter of a search scope: the scope's locales, and either docs of its version
    (other docs plugins at their default version), or pages, or (unless off) blog posts.

    One object per scope (cached): the embedded store's snapshot keeps its row mask by it."""
    if scope.unscoped:
        return None
    docs = models.Filter(
        must=[
            _match("kind", ["docs"]),
            _match("plugin", [scope.plugin]),
            *([_match("docs_version", [scope.version])] if scope.version is not None else []),
        ]
    )
    other_plugins = models.Filter(
        must=[
            _match("kind", ["docs"]),
            models.FieldCondition(key="default_version", match=models.MatchValue(value=True)),
        ],
        must_not=[_match("plugin", [scope.plugin])],
    )
    unversioned = ["page"] if scope.blog is BlogPolicy.OFF else ["page", "blog"]
    return models.Filter(
        must=[_match("locale", list(scope.locales))],
        should=[docs, other_plugins, _match("kind", unversioned)],
    )


def _key_condition(source_key: str) -> models.FieldCondition:
    return models.FieldCondition(key="source_key", match=models.MatchValue(value=source_key))


def _key_filter(source_key: str) -> models.Filter:
    return models.Filter(must=[_key_condition(source_key)])


def _meta_payload(meta: PageMeta) -> dict[str, Any]:
    return {
        "kind": meta.kind,
        "plugin": meta.plugin,
        "docs_version": meta.version,
        "default_version": meta.default_version,
        "locale": meta.locale,
        "doc_id": meta.doc_id,
    }


def _meta(payload: dict[str, Any], path: str) -> PageMeta:
    """The page's place in the site; a point from before versions reads as default docs."""
    kind = payload.get("kind")
    if kind not in ("docs", "blog", "page"):
        return PageMeta(doc_id=path.strip("/"))
    version = payload.get("docs_version")
    return PageMeta(
        kind=kind,
        plugin=str(payload.get("plugin") or DEFAULT_PLUGIN),
        version=None if version is None else str(version),
        default_version=bool(payload.get("default_version", True)),
        locale=str(payload.get("locale") or "en"),
        doc_id=str(payload.get("doc_id") or ""),
    )


def _hit(point: models.ScoredPoint, score: float, raw: dict[str, dict[str, float]]) -> Hit:
    payload = point.payload or {}
    chunk_id = str(point.id)
    anchor = payload.get("anchor") or None
    # Points written before `anchors` existed cover their one anchor.
    anchors = tuple(str(a) if a else None for a in payload.get("anchors") or ())
    return Hit(
        chunk_id=chunk_id,
        source_key=str(payload.get("source_key", "")),
        path=str(payload.get("path", "")),
        page_title=str(payload.get("title", "")),
        heading_path=tuple(str(part) for part in payload.get("heading_path") or ()),
        anchor=anchor,
        text=str(payload.get("text", "")),
        score=score,
        dense_score=raw.get(DENSE_VECTOR, {}).get(chunk_id),
        sparse_score=raw.get(SPARSE_VECTOR, {}).get(chunk_id),
        anchors=anchors if anchors[:1] == (anchor,) else (anchor,),
        meta=_meta(payload, str(payload.get("path", ""))),
        chunk_index=int(payload.get("chunk_index") or 0),
    )
