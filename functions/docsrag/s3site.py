"""The docs site as it lives in an S3 bucket: event parsing, object reads, and keeping the index in
step with the bucket (one change at a time, or a full reconcile).

Ordering: S3 delivers notifications at least once and in any order, and several ingest invocations
run at once. Instead of trusting an event's content, every change re-reads the bucket's *current*
state for its key: an event for a key whose object is gone deletes the page; an event for a key
whose object exists (re)indexes the object as it is now. So a late `ObjectCreated` cannot resurrect
a deleted page (the object is gone when we look), and a late `ObjectRemoved` cannot delete a page
that was uploaded again (the object is there). After changing the index, the key is looked at once
more: if the object changed meanwhile (another invocation raced this one), the key is synced again,
so the last writer always leaves the index matching the bucket.

Each page stores the object's ETag plus a fingerprint of the settings that shape its points
(pipeline version, embedding model and size, chunk sizes, site URL) as its version. An event for an
object whose version is already indexed, with dense vectors when there is an embedder, costs one
HEAD request and nothing else; changing the embedding model or the chunking makes every page stale.

Notifications arrive as S3 event records (S3 -> SQS, the deployed wiring, or S3 -> Lambda), wrapped
in an SNS envelope (S3 -> SNS -> SQS/Lambda, raw message delivery off), or as EventBridge events
(`"source": "aws.s3"`, `Object Created` / `Object Deleted`; EventBridge -> SQS or -> Lambda).
Anything else that is valid JSON but not a change (`s3:TestEvent`, `{}`, another EventBridge
event) is acknowledged, logged with its reason and counted in the `NotificationsIgnored` metric.

Time: `apply_notification` (and `apply`, `apply_direct`) take the caller's `Deadline` as a
parameter and hand it to `Ingestor.ingest_document`, which stops a page's embedding at it (the
ingest function makes one per SQS record). `reconcile` runs unbounded.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol
from urllib.parse import unquote_plus

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from docsrag import telemetry
from docsrag.budget import Deadline
from docsrag.config import Settings
from docsrag.embeddings import build_embedder
from docsrag.errors import (
    ConfigError,
    DocsRagError,
    DocumentError,
    EmbeddingDimensionMismatch,
    EmbeddingError,
)
from docsrag.index import DocsIndex, build_qdrant_client
from docsrag.ingest import PIPELINE_VERSION, max_chunks_per_page
from docsrag.ingest import Ingestor as DocumentIngestor
from docsrag.models import IngestSummary
from docsrag.parsing import classify_key
from docsrag.sparse import BM25Encoder

logger = logging.getLogger(__name__)

# How often one change is applied again when the object keeps changing under it (see `S3Sync`).
MAX_SYNC_ROUNDS = 3
# Bump when parsing or chunking changes the text of some pages (without a PIPELINE_VERSION bump):
# every page's stored version goes stale, so the next event or reconcile re-reads each page, and
# only those whose chunks changed are written and embedded again.
# 2: hidden HTML left out, heading-only sections indexed, MAX_CHUNKS_PER_PAGE.
PARSER_REVISION = "2"
_EVENTBRIDGE_TYPES = {"Object Created": "ObjectCreated", "Object Deleted": "ObjectRemoved"}


class S3EventError(DocsRagError):
    """A notification that is not an S3 event we understand (malformed JSON or shape)."""


class S3Unavailable(DocsRagError):
    """S3 refused or failed a request (throttling, permissions, network), or an object kept
    changing while it was being indexed. Transient: the message is retried."""


# --- Events -------------------------------------------------------------------------------------


class _S3Object(BaseModel):
    model_config = ConfigDict(extra="ignore")
    key: str
    size: int | None = None
    e_tag: str | None = Field(default=None, alias="eTag")
    sequencer: str | None = None
    version_id: str | None = Field(default=None, alias="versionId")


class _S3Bucket(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str


class _S3Entity(BaseModel):
    model_config = ConfigDict(extra="ignore")
    bucket: _S3Bucket
    object: _S3Object


class _S3Record(BaseModel):
    model_config = ConfigDict(extra="ignore")
    event_source: str | None = Field(default=None, alias="eventSource")
    event_name: str = Field(alias="eventName")
    s3: _S3Entity


@dataclass(frozen=True, slots=True)
class ObjectChange:
    """One S3 notification record, key decoded."""

    bucket: str
    key: str
    event_name: str
    removed: bool
    sequencer: str | None
    etag: str | None
    size: int | None


EventKind = Literal["sqs", "s3", "reconcile"]


def event_kind(event: object) -> EventKind:
    """What an ingest Lambda event is; anything else raises `S3EventError` naming what it saw."""
    if not isinstance(event, Mapping):
        raise S3EventError(f"event is a JSON {type(event).__name__}, not an object")
    if event.get("action") == "reconcile":
        return "reconcile"
    if event.get("source") == "aws.s3" and "detail-type" in event:
        return "s3"  # an EventBridge rule targeting the function
    records = event.get("Records")
    if isinstance(records, list) and records and isinstance(records[0], Mapping):
        source = records[0].get("eventSource") or records[0].get("EventSource")
        if source == "aws:sqs":
            return "sqs"
        if source in ("aws:s3", "aws:sns"):
            return "s3"
    keys = sorted(str(key) for key in event)[:5]
    raise S3EventError(
        f"unsupported ingest event (keys: {keys}); expected SQS records, S3 records or "
        '{"action": "reconcile"}'
    )


@dataclass(frozen=True, slots=True)
class Notification:
    """What one message or event holds: its changes, or why it holds none (`ignored`)."""

    changes: list[ObjectChange]
    ignored: str | None = None


def parse_notification(body: Mapping[str, Any] | str) -> list[ObjectChange]:
    """Changes in an S3 notification (see `read_notification`)."""
    return read_notification(body).changes


def read_notification(body: Mapping[str, Any] | str, *, _depth: int = 0) -> Notification:
    """Changes in an S3 notification: the SQS message body, or a direct Lambda event.

    Accepted: S3 event records, the same in an SNS envelope (an SNS message, or SNS records of a
    direct Lambda event), and EventBridge `Object Created` / `Object Deleted` events. Keys
    arrive URL-encoded (`+` for space, `%2B` for plus, and some senders encode `/`): every key
    is decoded here. `s3:TestEvent` messages, bodies without records and other EventBridge
    events give no changes and say why (`ignored`). What is not JSON, or has a wrong shape,
    raises `S3EventError`.
    """
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except json.JSONDecodeError as exc:
            raise S3EventError(f"message body is not JSON: {exc.msg}") from exc
    if not isinstance(body, Mapping):
        raise S3EventError(f"message body is a JSON {type(body).__name__}, not an object")
    if body.get("Event") == "s3:TestEvent":
        return Notification([], "s3:TestEvent")
    if body.get("Type") == "Notification" and isinstance(body.get("Message"), str):
        if _depth > 2:
            raise S3EventError("SNS envelopes nested too deep")
        return read_notification(body["Message"], _depth=_depth + 1)
    if body.get("source") == "aws.s3" and "detail-type" in body:
        return _eventbridge_change(body)
    records = body.get("Records")
    if records is None:
        keys = sorted(str(key) for key in body)[:5]
        return Notification([], f"not an S3 notification (no Records; keys: {keys})")
    if not isinstance(records, list):
        raise S3EventError("'Records' is not a list")
    if not records:
        return Notification([], "no records")
    if all(isinstance(raw, Mapping) and isinstance(raw.get("Sns"), Mapping) for raw in records):
        changes: list[ObjectChange] = []
        reasons: list[str] = []
        for raw in records:
            message = raw["Sns"].get("Message")
            if not isinstance(message, str) or _depth > 2:
                raise S3EventError("SNS record without a message")
            inner = read_notification(message, _depth=_depth + 1)
            changes.extend(inner.changes)
            if inner.ignored:
                reasons.append(inner.ignored)
        return Notification(changes, None if changes else "; ".join(reasons) or "no records")
    changes = []
    for raw in records:
        try:
            record = _S3Record.model_validate(raw)
        except ValidationError as exc:
            raise S3EventError(f"not an S3 event record: {exc.errors()[0]['msg']}") from exc
        if record.event_source not in (None, "aws:s3"):
            raise S3EventError(f"unexpected event source {record.event_source!r}")
        name = record.event_name
        changes.append(
            ObjectChange(
                bucket=record.s3.bucket.name,
                key=unquote_plus(record.s3.object.key),
                event_name=name,
                removed=name.startswith("ObjectRemoved"),
                sequencer=record.s3.object.sequencer,
                etag=record.s3.object.e_tag,
                size=record.s3.object.size,
            )
        )
    return Notification(changes)


def _eventbridge_change(event: Mapping[str, Any]) -> Notification:
    """An EventBridge S3 event: `Object Created` / `Object Deleted` is one change."""
    detail_type = str(event.get("detail-type"))
    kind = _EVENTBRIDGE_TYPES.get(detail_type)
    if kind is None:
        return Notification([], f"EventBridge event {detail_type!r} is not a create or delete")
    detail = event.get("detail")
    bucket = detail.get("bucket") if isinstance(detail, Mapping) else None
    obj = detail.get("object") if isinstance(detail, Mapping) else None
    if not (isinstance(bucket, Mapping) and isinstance(obj, Mapping)):
        raise S3EventError("EventBridge S3 event without detail.bucket and detail.object")
    name, key = bucket.get("name"), obj.get("key")
    if not isinstance(name, str) or not isinstance(key, str):
        raise S3EventError("EventBridge S3 event without a bucket name and object key")
    size = obj.get("size")
    reason = detail.get("reason") or detail.get("deletion-type") or ""  # type: ignore[union-attr]
    return Notification(
        [
            ObjectChange(
                bucket=name,
                key=unquote_plus(key),
                event_name=f"{kind}:{reason}" if reason else kind,
                removed=kind == "ObjectRemoved",
                sequencer=obj.get("sequencer"),
                etag=obj.get("etag"),
                size=size if isinstance(size, int) else None,
            )
        ]
    )


# --- Bucket access ------------------------------------------------------------------------------


class S3Client(Protocol):
    """The boto3 S3 client methods used here (a moto-backed client in tests)."""

    def head_object(self, **kwargs: Any) -> dict[str, Any]: ...
    def get_object(self, **kwargs: Any) -> dict[str, Any]: ...
    def get_paginator(self, operation_name: str) -> Any: ...


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str
    etag: str
    size: int


@dataclass(frozen=True, slots=True)
class ObjectData:
    """An object's bytes (at most `max_bytes + 1` of them) and the ETag they came with."""

    etag: str
    data: bytes


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def _is_missing(exc: Exception) -> bool:
    return _error_code(exc) in {"404", "NoSuchKey", "NotFound"}


def _etag(value: object) -> str:
    return str(value or "").strip('"')


class S3Site:
    """Reads the site's objects from one bucket."""

    def __init__(self, *, s3: S3Client, bucket: str) -> None:
        self._s3 = s3
        self.bucket = bucket

    def head(self, key: str) -> ObjectInfo | None:
        """The object's ETag and size, or None when there is no such object."""
        try:
            response = self._s3.head_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            if _is_missing(exc):
                return None
            raise S3Unavailable(f"HEAD s3://{self.bucket}/{key} failed: {exc}") from exc
        return ObjectInfo(
            key=key,
            etag=_etag(response.get("ETag")),
            size=int(response.get("ContentLength", 0)),
        )

    def read(self, key: str, *, max_bytes: int) -> ObjectData | None:
        """The object's bytes (at most `max_bytes + 1`, so oversize is detectable), or None."""
        try:
            response = self._s3.get_object(
                Bucket=self.bucket, Key=key, Range=f"bytes=0-{max_bytes}"
            )
            body: bytes = response["Body"].read()
        except Exception as exc:
            if _is_missing(exc):
                return None
            if _error_code(exc) == "InvalidRange":  # a zero-byte object has no byte 0
                info = self.head(key)
                return None if info is None else ObjectData(etag=info.etag, data=b"")
            raise S3Unavailable(f"GET s3://{self.bucket}/{key} failed: {exc}") from exc
        return ObjectData(etag=_etag(response.get("ETag")), data=body)

    def list_objects(self, *, prefix: str) -> Iterator[ObjectInfo]:
        try:
            paginator = self._s3.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    yield ObjectInfo(
                        key=item["Key"],
                        etag=_etag(item.get("ETag")),
                        size=int(item.get("Size", 0)),
                    )
        except Exception as exc:
            raise S3Unavailable(f"listing s3://{self.bucket}/{prefix} failed: {exc}") from exc


# --- Keeping the index in step --------------------------------------------------------------------


ChangeStatus = Literal["added", "updated", "unchanged", "deleted", "skipped", "ignored"]


@dataclass(frozen=True, slots=True)
class ChangeResult:
    key: str
    status: ChangeStatus
    reason: str | None = None
    chunks: int = 0
    embedding_calls: int = 0
    truncated: str | None = None  # over MAX_CHUNKS_PER_PAGE: what was left out


class Ingestor(Protocol):
    """What `S3Sync` needs from `docsrag.ingest.Ingestor`."""

    def ingest_document(
        self,
        source_key: str,
        data: bytes,
        *,
        version: str | None = None,
        deadline: Deadline | None = None,
    ) -> Any: ...
    def delete_document(self, source_key: str) -> bool: ...
    def indexed_versions(self) -> dict[str, str | None]: ...
    def is_current(self, source_key: str, version: str) -> bool: ...


def pipeline_fingerprint(settings: Settings) -> str:
    """A short digest of every setting that shapes a page's points. Stored in each page's version
    so that a page indexed under other settings is never taken as current."""
    parts = (
        f"pipeline={PIPELINE_VERSION}",
        f"model={settings.embedding_model}",
        f"dims={settings.embedding_dimensions}",
        f"chunks={settings.chunk_target_tokens},{settings.chunk_max_tokens},"
        f"{settings.chunk_overlap_tokens},{settings.chunk_min_tokens}",
        f"site={settings.site_url}",
        f"route={settings.docs_route_base_path}",
        f"locale={settings.default_locale}",
        f"parser={PARSER_REVISION}",
        f"max_chunks={max_chunks_per_page(settings)}",
    )
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:12]


_NOT_ATTEMPTED = "not attempted: the embeddings endpoint failed earlier in this run"


@dataclass(frozen=True, slots=True)
class _Step:
    """One pass of `S3Sync._sync_key`: its result, whether it changed the index, and the ETag of
    the object it acted on (None: there was no object)."""

    result: ChangeResult
    changed_index: bool
    etag: str | None


class S3Sync:
    """Applies bucket changes to the index, converging on the bucket's current state."""

    def __init__(
        self,
        *,
        ingestor: Ingestor,
        s3: S3Client,
        settings: Settings,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        """`on_close` releases what the sync was built with (its Qdrant client)."""
        self._ingestor = ingestor
        self._s3 = s3
        self._settings = settings
        self._fingerprint = pipeline_fingerprint(settings)
        self._on_close = on_close

    def close(self) -> None:
        if self._on_close is not None:
            self._on_close()
            self._on_close = None

    def source_key(self, key: str) -> str | None:
        """The page's identity: the object key without the configured prefix (None: outside)."""
        prefix = self._settings.key_prefix_with_slash
        if prefix and not key.startswith(prefix):
            return None
        return key[len(prefix) :]

    def version(self, etag: str) -> str:
        """What a page indexed from an object with `etag` stores as its version."""
        return f"{etag}/{self._fingerprint}"

    def apply(self, change: ObjectChange, *, deadline: Deadline | None = None) -> ChangeResult:
        """Bring one key's page in line with the bucket. Raises only for transient failures.
        `deadline` bounds the page's embedding (None: unbounded)."""
        bucket = self._settings.docs_bucket
        if bucket and change.bucket != bucket:
            logger.warning(
                "ignoring a change in another bucket",
                extra={"bucket": change.bucket, "key": change.key, "docs_bucket": bucket},
            )
            return ChangeResult(
                change.key, "ignored", f"bucket {change.bucket!r} is not DOCS_BUCKET"
            )
        source_key = self.source_key(change.key)
        if source_key is None:
            return ChangeResult(change.key, "ignored", "outside KEY_PREFIX")
        info = classify_key(source_key)
        if info.format is None:
            return ChangeResult(change.key, "ignored", info.reason)
        site = S3Site(s3=self._s3, bucket=change.bucket)
        return self._sync_key(site, change.key, source_key, deadline=deadline)

    def _sync_key(
        self,
        site: S3Site,
        key: str,
        source_key: str,
        known: ObjectInfo | None = None,
        *,
        deadline: Deadline | None = None,
    ) -> ChangeResult:
        """Make the index hold what the bucket holds for `key`, now.

        When this changed the index (a write or a delete), the key is looked at again: if the
        object changed meanwhile, the change is made again from the new state, up to
        `MAX_SYNC_ROUNDS` times (then `S3Unavailable`, and the message is retried).
        """
        current = known or site.head(key)
        changed: ChangeResult | None = None
        for _ in range(MAX_SYNC_ROUNDS):
            step = self._sync_once(site, key, source_key, current, deadline=deadline)
            if not step.changed_index:
                if changed is not None and step.result.status == "unchanged":
                    return changed
                return step.result
            changed = step.result
            after = site.head(key)
            if (after.etag if after else None) == step.etag:
                return step.result
            logger.info(
                "object changed while it was being indexed; syncing it again",
                extra={"key": key, "indexed": step.etag, "now": after.etag if after else None},
            )
            current = after
        raise S3Unavailable(
            f"s3://{site.bucket}/{key} kept changing while it was being indexed; will retry"
        )

    def _sync_once(
        self,
        site: S3Site,
        key: str,
        source_key: str,
        current: ObjectInfo | None,
        *,
        deadline: Deadline | None = None,
    ) -> _Step:
        """One pass over a key, given the object's state (None: no object). `deadline` bounds
        the page's embedding (None: unbounded)."""
        if current is None:
            if self._ingestor.delete_document(source_key):
                return _Step(ChangeResult(key, "deleted", "object is gone"), True, None)
            return _Step(ChangeResult(key, "unchanged", "object is gone"), False, None)
        max_bytes = self._settings.max_document_bytes
        if current.size > max_bytes:
            reason = (
                f"object is {current.size} bytes, over MAX_DOCUMENT_BYTES ({max_bytes}); "
                "any indexed version is kept"
            )
            logger.warning("skipping oversized object", extra={"key": key, "reason": reason})
            return _Step(ChangeResult(key, "skipped", reason), False, current.etag)
        if current.etag and self._ingestor.is_current(source_key, self.version(current.etag)):
            result = ChangeResult(key, "unchanged", "same ETag already indexed")
            return _Step(result, False, current.etag)
        fetched = site.read(key, max_bytes=max_bytes)
        if fetched is None:  # deleted between HEAD and GET
            return self._sync_once(site, key, source_key, None, deadline=deadline)
        version = self.version(fetched.etag) if fetched.etag else None
        try:
            outcome = self._ingestor.ingest_document(
                source_key, fetched.data, version=version, deadline=deadline
            )
        except DocumentError as exc:
            logger.warning("skipping unreadable object", extra={"key": key, "reason": str(exc)})
            return _Step(ChangeResult(key, "skipped", str(exc)), False, fetched.etag)
        result = ChangeResult(
            key,
            outcome.status,
            outcome.reason,
            chunks=outcome.chunks,
            embedding_calls=outcome.embedding_calls,
            truncated=getattr(outcome, "truncated", None),
        )
        changed_index = outcome.status in ("added", "updated", "deleted")
        return _Step(result, changed_index, fetched.etag)

    def apply_notification(
        self, body: str, *, deadline: Deadline | None = None
    ) -> list[ChangeResult]:
        """Apply one SQS message's S3 notification. Malformed bodies and transient failures raise
        (the message is retried, then kept in the dead-letter queue); unreadable objects are
        skipped with a logged reason. `deadline` (the record's time budget) bounds each page's
        embedding: past it, `EmbeddingError` is raised before anything is written (None:
        unbounded)."""
        results = []
        notification = read_notification(body)
        _record_ignored(notification)
        for change in notification.changes:
            result = self.apply(change, deadline=deadline)
            _record(result, change)
            results.append(result)
        return results

    def apply_direct(
        self, event: Mapping[str, Any], *, deadline: Deadline | None = None
    ) -> dict[str, Any]:
        """Apply a direct S3 notification event; returns a summary for the invoker. `deadline`
        bounds each page's embedding, as in `apply_notification` (None: unbounded)."""
        summary = IngestSummary()
        notification = read_notification(event)
        _record_ignored(notification)
        for change in notification.changes:
            result = self.apply(change, deadline=deadline)
            _record(result, change)
            _count(summary, result)
        return asdict(summary)

    def reconcile_report(self) -> dict[str, Any]:
        """`reconcile` on the configured bucket, as a JSON-ready summary."""
        bucket = self._settings.docs_bucket
        if not bucket:
            raise ConfigError("DOCS_BUCKET: reconcile needs the name of the docs bucket")
        summary = self.reconcile(bucket=bucket)
        for status in ("added", "updated", "unchanged", "deleted", "skipped", "failed"):
            telemetry.count(f"Pages{status.capitalize()}", getattr(summary, status))
        telemetry.count("ChunksWritten", summary.chunks_written)
        telemetry.count("EmbeddingCalls", summary.embedding_calls)
        telemetry.count("PagesTruncated", len(summary.truncated))
        logger.info("reconciled", extra={"bucket": bucket, "summary": asdict(summary)})
        return {"bucket": bucket, **asdict(summary)}

    def reconcile(self, *, bucket: str) -> IngestSummary:
        """Full sync: index new and changed objects, delete pages no longer in the bucket.

        A key that fails (S3 error, embeddings down) is counted in `failed` with its reason and
        the run goes on; after the first embedding failure no more embedding calls are made in
        this run. Qdrant failures and configuration errors stop the run.
        """
        site = S3Site(s3=self._s3, bucket=bucket)
        summary = IngestSummary()
        prefix = self._settings.key_prefix_with_slash
        present: set[str] = set()
        embedder_down = False
        for obj in site.list_objects(prefix=prefix):
            source_key = self.source_key(obj.key)
            if source_key is None or classify_key(source_key).format is None:
                continue
            present.add(source_key)
            if embedder_down and not self._ingestor.is_current(source_key, self.version(obj.etag)):
                summary.failed += 1
                summary.failures[source_key] = _NOT_ATTEMPTED
                continue
            try:
                result = self._sync_key(site, obj.key, source_key, known=obj)
            except EmbeddingDimensionMismatch:
                raise  # configuration: every page would fail the same way
            except EmbeddingError as exc:
                summary.failed += 1
                summary.failures[source_key] = f"embedding failed: {exc}"
                embedder_down = True
                logger.error(
                    "embedding failed; the rest of this reconcile makes no embedding calls",
                    extra={"key": obj.key, "error": str(exc)},
                )
                continue
            except S3Unavailable as exc:
                summary.failed += 1
                summary.failures[source_key] = str(exc)
                logger.error(
                    "reconcile failed for a key", extra={"key": obj.key, "error": str(exc)}
                )
                continue
            _count(summary, result)
        gone = sorted(set(self._ingestor.indexed_versions()) - present)
        if gone and not present:
            # A wrong DOCS_BUCKET or KEY_PREFIX must not wipe the whole index (and its embeddings);
            # pages removed from the bucket one by one leave through their delete events.
            logger.warning(
                "the bucket holds no pages; not deleting the indexed pages missing from it",
                extra={"bucket": bucket, "prefix": prefix, "indexed_pages": len(gone)},
            )
            return summary
        for source_key in gone:
            if self._ingestor.delete_document(source_key):
                summary.deleted += 1
        return summary


def _record(result: ChangeResult, change: ObjectChange) -> None:
    """Log one applied change and count it in the metrics."""
    if result.status != "ignored":
        telemetry.count(f"Pages{result.status.capitalize()}")
        telemetry.count("ChunksWritten", result.chunks)
        telemetry.count("EmbeddingCalls", result.embedding_calls)
    extra = {
        "key": result.key,
        "event": change.event_name,
        "status": result.status,
        "reason": result.reason,
    }
    if result.truncated is not None:
        telemetry.count("PagesTruncated")
        logger.warning("page truncated", extra={**extra, "truncated": result.truncated})
    logger.info("s3 change applied", extra={**extra, "truncated": result.truncated})


def _record_ignored(notification: Notification) -> None:
    """Log and count a message or event that holds no change (acknowledged all the same)."""
    if notification.ignored is None:
        return
    telemetry.count("NotificationsIgnored")
    if notification.ignored == "s3:TestEvent":
        logger.info("notification ignored", extra={"reason": notification.ignored})
    else:
        logger.warning("notification ignored", extra={"reason": notification.ignored})


def build_s3_sync(*, settings: Settings, s3: S3Client) -> S3Sync:
    """The ingest pipeline for Lambda: Qdrant, BM25, embeddings, built once per container."""
    qdrant = build_qdrant_client(settings)
    index = DocsIndex(
        client=qdrant,
        collection=settings.collection_name,
        dense_dimensions=settings.embedding_dimensions,
    )
    try:
        index.ensure_collection()
    except Exception:
        qdrant.close()  # an embedded store stays locked while a client holds it
        raise
    ingestor = DocumentIngestor(
        index=index, encoder=BM25Encoder(), embedder=build_embedder(settings), settings=settings
    )
    return S3Sync(ingestor=ingestor, s3=s3, settings=settings, on_close=qdrant.close)


def _count(summary: IngestSummary, result: ChangeResult) -> None:
    if result.status in ("added", "updated", "unchanged", "deleted", "skipped"):
        setattr(summary, result.status, getattr(summary, result.status) + 1)
    if result.status == "skipped" and result.reason:
        summary.skipped_reasons[result.key] = result.reason
    if result.truncated is not None:
        summary.truncated[result.key] = result.truncated
    summary.chunks_written += result.chunks
    summary.embedding_calls += result.embedding_calls
