"""Fast search for the embedded Qdrant store: an in-memory numpy snapshot of one collection.

Qdrant's local mode (`QdrantClient(path=...)`) searches in pure Python: every query re-normalises
every dense vector and walks every sparse vector point by point (~0.5 s at 10k chunks). A
`LocalSnapshot` holds the same data laid out for numpy, read once by one scroll:

- the point ids and the payload fields hits need, row by row in scroll (= point id) order;
- the dense vectors as one float32 matrix of the points that have one, unit-normalised the way
  local mode does it, and the row of each (a BM25-only point has no row, so an index built
  without an embeddings key costs no dense memory);
- the sparse vectors as an inverted index in CSR form: the sorted distinct term ids, and for
  each term the rows that contain it and their weights (float64, as stored).

It answers the two plain queries `DocsIndex` sends, the same way local mode does:

- dense: cosine = matrix . normalised query in float32 for every point; the candidates that can
  reach the top `limit` (everything within float32's error bound of the limit-th score) are
  scored again in float64 as local mode scores them (`np.dot` of the float32 vectors with the
  float64 query), so ranks do not flip on the product's float32 rounding; scores agree within
  ~1e-8 (local mode re-normalises its float32 vectors in place at every query, which moves
  them by an ulp now and then);
- sparse: `Modifier.IDF` as `qdrant_client/local/local_collection.py` computes it,
  `idf = ln((N - n + 0.5) / (n + 0.5) + 1)` with N = the live points that have the sparse vector
  (an empty one counts) and n = those of them that contain the term; each query weight times
  its IDF, times the point's weight, summed in float64 term by term in ascending term id order
  (the order of local mode's merge of two sorted vectors), then cast to float32 as it does: the
  same score bit for bit. Points sharing no term with the query are not hits (local mode gives
  them -inf and skips them); a shared term with weight 0 still makes a hit, scored 0.

Equal scores are ranked by point id. Local mode ranks them by an unstable `np.argsort`, which
leaves their order arbitrary, and so does fusing such lists, so exact ties are the one place
where the two may differ.

Why a snapshot can be trusted: local mode takes an exclusive, non-blocking `portalocker` lock
on `<path>/.lock` when the client opens (`QdrantLocal._load`) and holds it until `close()`, so
no other process, and no second `QdrantClient` in this process (the lock belongs to the open
file, not to the process), can open the folder; and it reads the SQLite file only once, at open
(`LocalCollection.load_vectors`): everything it serves afterwards is its own memory, which only
calls on that one client object change. An in-memory client (`:memory:`) is private to its
object by construction. So a snapshot goes stale only by writes through the same client object:
every `DocsIndex` over one embedded client shares one `EmbeddedStore` (lock and snapshots), and
each of its writes drops the collection's snapshot; the next search builds a new one. Writes
never rebuild, so an ingest of many pages costs nothing here. Code that writes through the
client directly, bypassing `DocsIndex`, must call `EmbeddedStore.invalidate` (docsrag has none).
"""

from __future__ import annotations

import math
import sys
import threading
import time
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from qdrant_client import QdrantClient, models

# Local mode divides by this instead of a zero norm (`qdrant_client.local.distances.EPSILON`).
EPSILON = 1.1920929e-7
# Local mode's limit when a request gives none.
DEFAULT_LIMIT = 10

Rows = npt.NDArray[np.integer[Any]]
Scores = npt.NDArray[np.float64] | npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class SnapshotStats:
    """What a snapshot holds and what it costs."""

    points: int
    dense_points: int
    sparse_points: int
    terms: int
    postings: int
    dense_bytes: int
    sparse_bytes: int
    payload_bytes: int  # ids and payload fields, Python objects (estimated with getsizeof)
    build_seconds: float

    @property
    def total_bytes(self) -> int:
        return self.dense_bytes + self.sparse_bytes + self.payload_bytes


class LocalSnapshot:
    """An immutable copy of one collection, searched with numpy; safe to share between threads."""

    def __init__(
        self,
        *,
        ids: list[models.ExtendedPointId],
        payloads: list[dict[str, Any]],
        payload_fields: Sequence[str],
        dense_name: str,
        sparse_name: str,
        dimensions: int,
        dense: npt.NDArray[np.float32],
        dense_rows: Rows,
        sparse_points: int,
        terms: npt.NDArray[np.int64],
        starts: npt.NDArray[np.int64],
        posting_rows: Rows,
        posting_weights: npt.NDArray[np.float64],
        build_seconds: float = 0.0,
    ) -> None:
        self._ids = ids
        self._payloads = payloads
        self.payload_fields = frozenset(payload_fields)
        self.dense_name = dense_name
        self.sparse_name = sparse_name
        self.dimensions = dimensions
        self._dense = dense
        self._dense_rows = dense_rows
        self._sparse_points = sparse_points
        self._terms = terms
        self._starts = starts
        self._posting_rows = posting_rows
        self._posting_weights = posting_weights
        # Two computed float32 cosines of unit vectors are each within d * eps/2 of the exact
        # value, so a row whose float32 score is below the limit-th one by more than d * eps
        # cannot belong in the top; twice that leaves room for the float32 query rounding.
        self._dense_slack = 2.0 * dimensions * float(np.finfo(np.float32).eps)
        # Filters seen so far (a search scope is one of a few), as row masks; see `_mask`.
        self._masks: dict[int, tuple[models.Filter, npt.NDArray[np.bool_]]] = {}
        self._masks_by_content: dict[str, npt.NDArray[np.bool_]] = {}
        self._masks_lock = threading.Lock()
        self.stats = SnapshotStats(
            points=len(ids),
            dense_points=len(dense_rows),
            sparse_points=sparse_points,
            terms=len(terms),
            postings=len(posting_rows),
            dense_bytes=dense.nbytes + dense_rows.nbytes,
            sparse_bytes=sum(a.nbytes for a in (terms, starts, posting_rows, posting_weights)),
            payload_bytes=_python_bytes(ids) + _python_bytes(payloads),
            build_seconds=build_seconds,
        )

    @classmethod
    def build(
        cls,
        records: Iterable[models.Record],
        *,
        payload_fields: Sequence[str],
        dense_name: str,
        sparse_name: str,
        dimensions: int,
    ) -> LocalSnapshot:
        """A snapshot of `records`: a scroll with `payload_fields` and both vectors.

        Vectors are moved into numpy a block of points at a time: as Python lists of floats a
        10k x 1536 matrix would take ~0.5 GB on the way.
        """
        started = time.perf_counter()
        ids: list[models.ExtendedPointId] = []
        payloads: list[dict[str, Any]] = []
        dense = _Blocks(np.float32)
        dense_rows: list[int] = []
        sparse_rows: list[int] = []
        lengths: list[int] = []
        terms = _Blocks(np.int64)
        weights = _Blocks(np.float64)
        for row, record in enumerate(records):
            ids.append(record.id)
            payloads.append(dict(record.payload or {}))
            vectors = record.vector if isinstance(record.vector, dict) else {}
            vector = vectors.get(dense_name)
            if vector is not None:
                if not isinstance(vector, list) or len(vector) != dimensions:
                    raise ValueError(
                        f"point {record.id}: {dense_name!r} is not a {dimensions}-d vector"
                    )
                dense.add(vector)
                dense_rows.append(row)
            sparse = vectors.get(sparse_name)
            if sparse is not None:
                if not isinstance(sparse, models.SparseVector):
                    raise ValueError(f"point {record.id}: {sparse_name!r} is not a sparse vector")
                sparse_rows.append(row)
                lengths.append(len(sparse.indices))
                terms.extend(sparse.indices)
                weights.extend(sparse.values)

        matrix = dense.array().reshape(len(dense_rows), dimensions)
        # What local mode does to its vectors on every cosine query (they are unit already).
        norms = np.linalg.norm(matrix, axis=1)[:, np.newaxis]
        matrix /= np.where(norms != 0.0, norms, np.float32(EPSILON))

        term_ids = terms.array()
        order = np.argsort(term_ids, kind="stable")  # stable: rows stay ascending within a term
        term_ids = term_ids[order]
        posting_rows = np.repeat(np.array(sparse_rows, dtype=np.int32), lengths)[order]
        distinct, firsts = np.unique(term_ids, return_index=True)
        del term_ids

        return cls(
            ids=ids,
            payloads=payloads,
            payload_fields=payload_fields,
            dense_name=dense_name,
            sparse_name=sparse_name,
            dimensions=dimensions,
            dense=matrix,
            dense_rows=np.array(dense_rows, dtype=np.int32),
            sparse_points=len(sparse_rows),
            terms=distinct.astype(np.int64),
            starts=np.append(firsts, len(order)).astype(np.int64),
            posting_rows=posting_rows,
            posting_weights=weights.array()[order],
            build_seconds=time.perf_counter() - started,
        )

    def __len__(self) -> int:
        return len(self._ids)

    # --- queries ------------------------------------------------------------------------------

    def query(self, request: models.QueryRequest) -> list[models.ScoredPoint]:
        """Answer a plain dense or sparse `QueryRequest` as local mode's `query_points` would.

        Only what `DocsIndex` sends is supported (`query`, `using`, `limit`, `with_payload` as
        False or a list of the snapshot's `payload_fields`); anything else is a ValueError.
        """
        unsupported = [
            name
            for name in ("prefetch", "params", "score_threshold", "offset", "lookup_from")
            if getattr(request, name) is not None
        ]
        if unsupported or request.with_vector:
            raise ValueError(f"the search snapshot does not support {unsupported or 'with_vector'}")
        limit = DEFAULT_LIMIT if request.limit is None else request.limit
        query = request.query
        mask = self._mask(request.filter) if request.filter is not None else None
        if request.using == self.dense_name and isinstance(query, list):
            rows, scores = self.dense_top(query, limit, mask)  # type: ignore[arg-type]
        elif request.using == self.sparse_name and isinstance(query, models.SparseVector):
            rows, scores = self.sparse_top(query.indices, query.values, limit, mask)
        else:
            raise ValueError(
                f"the search snapshot answers a dense query on {self.dense_name!r} or a sparse "
                f"one on {self.sparse_name!r}, not {type(query).__name__} on {request.using!r}"
            )
        fields = self._payload_fields(request.with_payload)
        points = []
        for row, score in zip(rows.tolist(), scores.tolist(), strict=True):
            payload = None
            if fields is not None:
                stored = self._payloads[row]
                payload = {name: stored[name] for name in fields if name in stored}
            points.append(
                models.ScoredPoint.model_construct(
                    id=self._ids[row], version=0, score=score, payload=payload, vector=None
                )
            )
        return points

    def dense_top(
        self, vector: Sequence[float], limit: int, mask: npt.NDArray[np.bool_] | None = None
    ) -> tuple[Rows, Scores]:
        """Rows and cosine scores of the `limit` nearest points that have a dense vector (and
        whose row `mask` allows, when given)."""
        query = np.asarray(vector, dtype=np.float64)
        if query.shape != (self.dimensions,):
            raise ValueError(f"dense query has shape {query.shape}, expected ({self.dimensions},)")
        if np.isnan(query).any():
            raise ValueError("Query vector must not contain NaN")
        if limit <= 0 or not len(self._dense_rows):
            return _empty()
        norm = np.linalg.norm(query)
        query = query / (norm if norm != 0.0 else EPSILON)
        # numpy's own loop on one thread rather than BLAS: OpenBLAS's thread pool made this
        # product 2-3x slower (wall and CPU) on a busy 2-core machine, and a server's other
        # requests have the other cores.
        approx = np.einsum("ij,j->i", self._dense, query.astype(np.float32))
        allowed = mask[self._dense_rows] if mask is not None else None
        if allowed is not None:
            approx[~allowed] = -np.inf
        eligible = len(approx) if allowed is None else int(allowed.sum())
        if eligible > limit:
            kth = np.partition(approx, len(approx) - limit)[len(approx) - limit]
            candidates = np.flatnonzero(approx >= kth - self._dense_slack)
        elif allowed is not None:
            candidates = np.flatnonzero(allowed)
        else:
            candidates = np.arange(len(approx))
        exact = self._dense[candidates].astype(np.float64) @ query
        return _top(self._dense_rows[candidates], exact, limit)

    def sparse_top(
        self,
        indices: Sequence[int],
        values: Sequence[float],
        limit: int,
        mask: npt.NDArray[np.bool_] | None = None,
    ) -> tuple[Rows, Scores]:
        """Rows and BM25 (IDF-weighted dot product) scores of the `limit` best matching points."""
        if len(indices) != len(values):
            raise ValueError("Indices and values must have the same length")
        if len(set(indices)) != len(indices):
            raise ValueError("Indices must be unique")
        if any(math.isnan(value) for value in values):
            raise ValueError("Values must not contain NaN")
        if limit <= 0 or not self._sparse_points:
            return _empty()
        scores = np.zeros(len(self._ids), dtype=np.float64)
        matched = np.zeros(len(self._ids), dtype=bool)
        positions = np.searchsorted(self._terms, np.array(indices, dtype=np.int64)).tolist()
        # Ascending term ids: each point's sum runs in the order local mode adds it up.
        for term, value, position in sorted(zip(indices, values, positions, strict=True)):
            if position >= len(self._terms) or self._terms[position] != term:
                continue
            start, end = int(self._starts[position]), int(self._starts[position + 1])
            rows = self._posting_rows[start:end]
            weight = value * idf(end - start, self._sparse_points)
            scores[rows] += weight * self._posting_weights[start:end]
            matched[rows] = True
        if mask is not None:
            matched &= mask
        candidates = np.flatnonzero(matched)
        return _top(candidates, scores[candidates].astype(np.float32), limit)

    # --- filters ------------------------------------------------------------------------------

    def _mask(self, query_filter: models.Filter) -> npt.NDArray[np.bool_]:
        """The rows `query_filter` admits, as Qdrant would decide it, computed once per filter.

        Supports what `docsrag.index.scope_filter` sends: nested `must` / `should` / `must_not`
        of keyword and bool `match` conditions (`MatchValue`, `MatchAny`, `MatchExcept`); a
        point without the field matches no value, as in Qdrant. Masks are kept by filter object
        (`scope_filter` hands out one object per scope) and, for other objects, by content.
        """
        entry = self._masks.get(id(query_filter))
        if entry is not None and entry[0] is query_filter:
            return entry[1]
        key = query_filter.model_dump_json(exclude_none=True)
        by_content = self._masks_by_content.get(key)
        mask = by_content if by_content is not None else self._filter_rows(query_filter)
        mask.setflags(write=False)
        with self._masks_lock:
            if len(self._masks) >= 256:
                self._masks.clear()
                self._masks_by_content.clear()
            self._masks[id(query_filter)] = (query_filter, mask)
            self._masks_by_content[key] = mask
        return mask

    def _filter_rows(self, query_filter: models.Filter) -> npt.NDArray[np.bool_]:
        if query_filter.min_should is not None:
            raise ValueError("the search snapshot does not support min_should filters")
        mask = np.ones(len(self._ids), dtype=bool)
        for condition in _conditions(query_filter.must):
            mask &= self._condition_rows(condition)
        should = _conditions(query_filter.should)
        if should:
            either = np.zeros(len(self._ids), dtype=bool)
            for condition in should:
                either |= self._condition_rows(condition)
            mask &= either
        for condition in _conditions(query_filter.must_not):
            mask &= ~self._condition_rows(condition)
        return mask

    def _condition_rows(self, condition: object) -> npt.NDArray[np.bool_]:
        if isinstance(condition, models.Filter):
            return self._filter_rows(condition)
        if not isinstance(condition, models.FieldCondition) or condition.match is None:
            raise ValueError(f"the search snapshot does not support the condition {condition!r}")
        if condition.key not in self.payload_fields:
            raise ValueError(f"the search snapshot was built without payload field {condition.key}")
        match = condition.match
        column = [payload.get(condition.key) for payload in self._payloads]
        if isinstance(match, models.MatchValue):
            wanted = {(type(match.value), match.value)}
        elif isinstance(match, models.MatchAny):
            wanted = {(type(value), value) for value in match.any}
        elif isinstance(match, models.MatchExcept):
            unwanted = {(type(value), value) for value in match.except_}
            return np.fromiter(
                (v is not None and (type(v), v) not in unwanted for v in column),
                dtype=bool,
                count=len(column),
            )
        else:
            raise ValueError(f"the search snapshot does not support {type(match).__name__}")
        return np.fromiter(((type(v), v) in wanted for v in column), dtype=bool, count=len(column))

    def _payload_fields(self, with_payload: Any) -> list[str] | None:
        if with_payload is None or with_payload is False:
            return None
        if not isinstance(with_payload, list) or not all(isinstance(f, str) for f in with_payload):
            raise ValueError("the search snapshot returns payload fields given as a list of names")
        missing = set(with_payload) - self.payload_fields
        if missing:
            raise ValueError(f"the search snapshot was built without payload fields {missing}")
        return with_payload


def _conditions(conditions: Any) -> list[Any]:
    if conditions is None:
        return []
    return list(conditions) if isinstance(conditions, list) else [conditions]


class _Blocks:
    """Numbers gathered from Python lists into numpy arrays a block at a time."""

    BLOCK = 1 << 16

    def __init__(self, dtype: type[np.generic]) -> None:
        self._dtype = dtype
        self._blocks: list[npt.NDArray[Any]] = []
        self._pending: list[Any] = []

    def add(self, item: Any) -> None:
        self._pending.append(item)
        if len(self._pending) * (len(item) if isinstance(item, list) else 1) >= self.BLOCK:
            self._flush()

    def extend(self, items: Sequence[Any]) -> None:
        self._pending.extend(items)
        if len(self._pending) >= self.BLOCK:
            self._flush()

    def array(self) -> npt.NDArray[Any]:
        self._flush()
        if not self._blocks:
            return np.zeros(0, dtype=self._dtype)
        return np.concatenate(self._blocks) if len(self._blocks) > 1 else self._blocks[0]

    def _flush(self) -> None:
        if self._pending:
            self._blocks.append(np.array(self._pending, dtype=self._dtype))
            self._pending = []


def idf(document_frequency: int, documents: int) -> float:
    """Qdrant's BM25 IDF, as `LocalCollection._compute_idf` computes it (same float ops)."""
    return math.log((documents - document_frequency + 0.5) / (document_frequency + 0.5) + 1)


def _top(rows: Rows, scores: Scores, limit: int) -> tuple[Rows, Scores]:
    """The `limit` best (score descending, then row ascending) of `rows`."""
    if len(scores) > limit:
        kth = np.partition(scores, len(scores) - limit)[len(scores) - limit]
        keep = scores >= kth
        rows, scores = rows[keep], scores[keep]
    order = np.lexsort((rows, -scores))[:limit]
    return rows[order], scores[order]


def _empty() -> tuple[Rows, Scores]:
    return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)


def _python_bytes(value: object) -> int:
    """Approximate size of ids and payloads: containers, strings and numbers, not shared ones."""
    size = sys.getsizeof(value)
    if isinstance(value, dict):
        size += sum(_python_bytes(item) for item in value.values())
    elif isinstance(value, list | tuple):
        size += sum(_python_bytes(item) for item in value)
    return size


# --- one embedded client's shared state ---------------------------------------------------------


@dataclass(eq=False)
class EmbeddedStore:
    """What every `DocsIndex` over one embedded client shares.

    `lock` serialises calls into the client (local mode is not thread-safe); `snapshots` holds
    each collection's current snapshot, read and replaced under `lock`. A missing entry means
    "build at the next search".
    """

    lock: threading.Lock = field(default_factory=threading.Lock)
    snapshots: dict[str, LocalSnapshot] = field(default_factory=dict)
    # Other facts derived from a collection that a write makes stale (its site catalog).
    derived: dict[tuple[str, str], Any] = field(default_factory=dict)

    def invalidate(self, collection: str) -> None:
        """Drop `collection`'s snapshot after a write (call with `lock` held)."""
        self.snapshots.pop(collection, None)
        for key in [key for key in self.derived if key[0] == collection]:
            del self.derived[key]


_STORES: weakref.WeakKeyDictionary[QdrantClient, EmbeddedStore] = weakref.WeakKeyDictionary()
_STORES_LOCK = threading.Lock()


def embedded_store(client: QdrantClient) -> EmbeddedStore:
    """The shared state of an embedded client (created on first use, dropped with the client)."""
    with _STORES_LOCK:
        store = _STORES.get(client)
        if store is None:
            store = _STORES[client] = EmbeddedStore()
        return store
