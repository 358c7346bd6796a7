"""The docs site as it lives in an S3 bucket: event parsing, object reads, and keeping the index in
step with the bucket (one change at a time, or a full reconcile).

Ordering: S3 delivers notifications at least once and in any order. Instead of trusting an event's
content, every change re-reads the bucket's *current* state for its key: an event for a key whose
object is gone deletes the page; an event for a key whose object exists (re)indexes the object as it
is now. So a late `ObjectCreated` cannot resurrect a deleted page (the object is gone when we look),
and a late `ObjectRemoved` cannot delete a page that was uploaded again (the object is there). The
object's ETag is stored as the page's version: an event for an object whose ETag is already indexed
costs one HEAD request and nothing else.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol
from urllib.parse import unquote_plus

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from docsrag import telemetry
from docsrag.config import Settings
from docsrag.errors import ConfigError, DocsRagError, DocumentError
from docsrag.models import IngestSummary
from docsrag.parsing import classify_key

logger = logging.getLogger(__name__)


class S3EventError(DocsRagError):
    """A notification that is not an S3 event we understand (malformed JSON or shape)."""


class S3Unavailable(DocsRagError):
    """S3 refused or failed a request (throttling, permissions, network)."""


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
    records = event.get("Records")
    if isinstance(records, list) and records and isinstance(records[0], Mapping):
        source = records[0].get("eventSource")
        if source == "aws:sqs":
            return "sqs"
        if source == "aws:s3":
            return "s3"
    keys = sorted(event)[:5]
    raise S3EventError(
        f"unsupported ingest event (keys: {keys}); expected SQS records, S3 records or "
        '{"action": "reconcile"}'
    )


def parse_notification(body: Mapping[str, Any] | str) -> list[ObjectChange]:
    """Changes in an S3 notification (the SQS message body, or a direct S3 Lambda event).

    `s3:TestEvent` messages and bodies without `Records` give no changes. Keys arrive URL-encoded
    (`+` for space, `%2B` for plus, and some senders encode `/`): every key is decoded here.
    """
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except json.JSONDecodeError as exc:
            raise S3EventError(f"message body is not JSON: {exc.msg}") from exc
    if not isinstance(body, Mapping):
        raise S3EventError(f"message body is a JSON {type(body).__name__}, not an object")
    if body.get("Event") == "s3:TestEvent":
        return []
    records = body.get("Records")
    if records is None:
        return []
    if not isinstance(records, list):
        raise S3EventError("'Records' is not a list")
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
    return changes


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


def _is_missing(exc: Exception) -> bool:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return False
    code = str(response.get("Error", {}).get("Code", ""))
    return code in {"404", "NoSuchKey", "NotFound"}


class S3Site:
    """Reads the site's objects from one bucket."""

    def __init__(self, *, s3: S3Client, bucket: str) -> None:
        self._s3 = s3
        self.bucket = bucket

    def head(self, key: str) -> ObjectInfo | None:
        try:
            response = self._s3.head_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            if _is_missing(exc):
                return None
            raise S3Unavailable(f"HEAD s3://{self.bucket}/{key} failed: {exc}") from exc
        return ObjectInfo(
            key=key,
            etag=str(response.get("ETag", "")).strip('"'),
            size=int(response.get("ContentLength", 0)),
        )

    def read(self, key: str, *, max_bytes: int) -> bytes | None:
        """The object's bytes (at most `max_bytes + 1`, so oversize is detectable), or None."""
        try:
            response = self._s3.get_object(
                Bucket=self.bucket, Key=key, Range=f"bytes=0-{max_bytes}"
            )
            body: bytes = response["Body"].read()
        except Exception as exc:
            if _is_missing(exc):
                return None
            if _error_code(exc) == "InvalidRange":  # zero-byte object
                return b""
            raise S3Unavailable(f"GET s3://{self.bucket}/{key} failed: {exc}") from exc
        return body

    def list_objects(self, *, prefix: str) -> Iterator[ObjectInfo]:
        try:
            paginator = self._s3.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    yield ObjectInfo(
                        key=item["Key"],
                        etag=str(item.get("ETag", "")).strip('"'),
                        size=int(item.get("Size", 0)),
                    )
        except Exception as exc:
            raise S3Unavailable(f"listing s3://{self.bucket}/{prefix} failed: {exc}") from exc


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


# --- Keeping the index in step --------------------------------------------------------------------


ChangeStatus = Literal["added", "updated", "unchanged", "deleted", "skipped", "ignored"]


@dataclass(frozen=True, slots=True)
class ChangeResult:
    key: str
    status: ChangeStatus
    reason: str | None = None
    chunks: int = 0
    embedding_calls: int = 0


class Ingestor(Protocol):
    """What `S3Sync` needs from `docsrag.ingest.Ingestor`."""

    def ingest_document(
        self, source_key: str, data: bytes, *, version: str | None = None
    ) -> Any: ...
    def delete_document(self, source_key: str) -> bool: ...
    def indexed_versions(self) -> dict[str, str | None]: ...
    def indexed_version(self, source_key: str) -> str | None: ...


class S3Sync:
    """Applies bucket changes to the index, converging on the bucket's current state."""

    def __init__(self, *, ingestor: Ingestor, s3: S3Client, settings: Settings) -> None:
        self._ingestor = ingestor
        self._s3 = s3
        self._settings = settings

    def source_key(self, key: str) -> str | None:
        """The page's identity: the object key without the configured prefix (None: outside)."""
        prefix = self._settings.key_prefix_with_slash
        if prefix and not key.startswith(prefix):
            return None
        return key[len(prefix) :]

    def apply(self, change: ObjectChange) -> ChangeResult:
        """Bring one key's page in line with the bucket. Raises only for transient failures."""
        source_key = self.source_key(change.key)
        if source_key is None:
            return ChangeResult(change.key, "ignored", "outside KEY_PREFIX")
        info = classify_key(source_key)
        if info.format is None:
            return ChangeResult(change.key, "ignored", info.reason)
        return self._sync_key(S3Site(s3=self._s3, bucket=change.bucket), change.key, source_key)

    def _sync_key(
        self, site: S3Site, key: str, source_key: str, known: ObjectInfo | None = None
    ) -> ChangeResult:
        current = known or site.head(key)
        if current is None:
            deleted = self._ingestor.delete_document(source_key)
            return ChangeResult(key, "deleted" if deleted else "unchanged", "object is gone")
        if current.size > self._settings.max_document_bytes:
            reason = (
                f"object is {current.size} bytes; MAX_DOCUMENT_BYTES is "
                f"{self._settings.max_document_bytes}"
            )
            logger.warning("skipping oversized object", extra={"key": key, "reason": reason})
            return ChangeResult(key, "skipped", reason)
        if current.etag and self._ingestor.indexed_version(source_key) == current.etag:
            return ChangeResult(key, "unchanged", "same ETag already indexed")
        data = site.read(key, max_bytes=self._settings.max_document_bytes)
        if data is None:  # deleted between HEAD and GET
            deleted = self._ingestor.delete_document(source_key)
            return ChangeResult(key, "deleted" if deleted else "unchanged", "object is gone")
        try:
            outcome = self._ingestor.ingest_document(source_key, data, version=current.etag)
        except DocumentError as exc:
            logger.warning("skipping unreadable object", extra={"key": key, "reason": str(exc)})
            return ChangeResult(key, "skipped", str(exc))
        return ChangeResult(
            key,
            outcome.status,
            outcome.reason,
            chunks=outcome.chunks,
            embedding_calls=outcome.embedding_calls,
        )

    def apply_notification(self, body: str) -> list[ChangeResult]:
        """Apply one SQS message's S3 notification. Malformed bodies and transient failures raise
        (the message is retried, then kept in the dead-letter queue); unreadable objects are
        skipped with a logged reason."""
        results = []
        for change in parse_notification(body):
            result = self.apply(change)
            _record(result)
            results.append(result)
        return results

    def apply_direct(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """Apply a direct S3 notification event; returns a summary for the invoker."""
        summary = IngestSummary()
        for change in parse_notification(event):
            result = self.apply(change)
            _record(result)
            _count(summary, result)
        return asdict(summary)

    def reconcile_report(self) -> dict[str, Any]:
        """`reconcile` on the configured bucket, as a JSON-ready summary."""
        bucket = self._settings.docs_bucket
        if not bucket:
            raise ConfigError("DOCS_BUCKET: reconcile needs the name of the docs bucket")
        summary = self.reconcile(bucket=bucket)
        for status in ("added", "updated", "unchanged", "deleted", "skipped"):
            telemetry.count(f"Pages{status.capitalize()}", getattr(summary, status))
        telemetry.count("ChunksWritten", summary.chunks_written)
        telemetry.count("EmbeddingCalls", summary.embedding_calls)
        logger.info("reconciled", extra={"bucket": bucket, "summary": asdict(summary)})
        return {"bucket": bucket, **asdict(summary)}

    def reconcile(self, *, bucket: str) -> IngestSummary:
        """Full sync: index new and changed objects, delete pages no longer in the bucket."""
        site = S3Site(s3=self._s3, bucket=bucket)
        summary = IngestSummary()
        prefix = self._settings.key_prefix_with_slash
        present: set[str] = set()
        for obj in site.list_objects(prefix=prefix):
            source_key = self.source_key(obj.key)
            if source_key is None or classify_key(source_key).format is None:
                continue
            present.add(source_key)
            try:
                result = self._sync_key(site, obj.key, source_key, known=obj)
            except DocsRagError as exc:
                summary.failed += 1
                summary.failures[source_key] = str(exc)
                logger.error(
                    "reconcile failed for a key", extra={"key": obj.key, "error": str(exc)}
                )
                continue
            _count(summary, result)
        for source_key in sorted(set(self._ingestor.indexed_versions()) - present):
            if self._ingestor.delete_document(source_key):
                summary.deleted += 1
        return summary


def _record(result: ChangeResult) -> None:
    """Log one applied change and count it in the metrics."""
    if result.status != "ignored":
        telemetry.count(f"Pages{result.status.capitalize()}")
        telemetry.count("ChunksWritten", result.chunks)
        telemetry.count("EmbeddingCalls", result.embedding_calls)
    logger.info(
        "s3 change applied",
        extra={"key": result.key, "status": result.status, "reason": result.reason},
    )


def build_s3_sync(*, settings: Settings, s3: S3Client) -> S3Sync:
    """The ingest pipeline for Lambda: Qdrant, BM25, embeddings, built once per container."""
    from docsrag.embeddings import build_embedder
    from docsrag.index import DocsIndex, build_qdrant_client
    from docsrag.ingest import Ingestor
    from docsrag.sparse import BM25Encoder

    index = DocsIndex(
        client=build_qdrant_client(settings),
        collection=settings.collection_name,
        dense_dimensions=settings.embedding_dimensions,
    )
    index.ensure_collection()
    ingestor = Ingestor(
        index=index, encoder=BM25Encoder(), embedder=build_embedder(settings), settings=settings
    )
    return S3Sync(ingestor=ingestor, s3=s3, settings=settings)


def _count(summary: IngestSummary, result: ChangeResult) -> None:
    if result.status in ("added", "updated", "unchanged", "deleted", "skipped"):
        setattr(summary, result.status, getattr(summary, result.status) + 1)
    if result.status == "skipped" and result.reason:
        summary.skipped_reasons[result.key] = result.reason
    summary.chunks_written += result.chunks
    summary.embedding_calls += result.embedding_calls
