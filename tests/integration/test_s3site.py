"""`S3Sync` against a moto bucket, an embedded Qdrant and the fake embeddings server: what
happens when ingest invocations race each other, when the embeddings endpoint is down during a
reconcile, and when the bucket or its listing is not what the settings say."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from qdrant_client import QdrantClient

from docsrag.budget import Deadline
from docsrag.config import Settings
from docsrag.embeddings import build_embedder
from docsrag.errors import EmbeddingError
from docsrag.index import DocsIndex, build_qdrant_client
from docsrag.ingest import Ingestor
from docsrag.s3site import (
    MAX_SYNC_ROUNDS,
    ObjectChange,
    S3Sync,
    S3Unavailable,
    pipeline_fingerprint,
)
from docsrag.sparse import BM25Encoder
from tests.fakes.openai_server import FakeOpenAI

BUCKET = "docsrag-docs-test"
REGION = "eu-central-1"
KEY = "docs/ferry/index.html"


def html(text: str) -> str:
    return (
        '<html><head><title>Ferry | Docs</title></head><body><main class="docMainContainer_x">'
        '<article><div class="theme-doc-markdown markdown"><header><h1>Ferry timetable</h1>'
        f'</header><h2 id="departures">Departures</h2><p>{text}</p></div></article></main>'
        "</body></html>"
    )


V1 = html("The zanzibar ferry leaves at dawn from pier one, every day of the week.")
V2 = html("The zanzibar ferry now leaves at noon from pier nine, except on Sundays.")


def make_settings(tmp_path: Path, fake: FakeOpenAI, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "qdrant_path": tmp_path / "qdrant",
        "embedding_dimensions": 64,
        "embedding_max_retries": 0,
        "embedding_timeout_seconds": 5,
        "openrouter_api_key": fake.api_key,
        "openrouter_base_url": fake.base_url,
        "docs_bucket": BUCKET,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client(
            "s3",
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        client.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        yield client


@pytest.fixture
def qdrant(tmp_path: Path, fake_openai: FakeOpenAI) -> Iterator[QdrantClient]:
    client = build_qdrant_client(make_settings(tmp_path, fake_openai))
    yield client
    client.close()


@pytest.fixture
def index(qdrant: QdrantClient) -> DocsIndex:
    index = DocsIndex(client=qdrant, collection="docs", dense_dimensions=64)
    index.ensure_collection()
    return index


def make_sync(index: DocsIndex, s3: Any, settings: Settings) -> S3Sync:
    ingestor = Ingestor(
        index=index, encoder=BM25Encoder(), embedder=build_embedder(settings), settings=settings
    )
    return S3Sync(ingestor=ingestor, s3=s3, settings=settings)


def change(key: str = KEY, *, removed: bool = False, bucket: str = BUCKET) -> ObjectChange:
    name = "ObjectRemoved:Delete" if removed else "ObjectCreated:Put"
    return ObjectChange(bucket, key, name, removed, sequencer=None, etag=None, size=None)


def another_client() -> Any:
    """A second S3 client: another Lambda container, or the CI job uploading the site."""
    return boto3.client(
        "s3", region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )


def during_first_get(s3: Any, action: Callable[[], None]) -> None:
    """Run `action` right after this client's first GetObject returns (and only then)."""
    done: list[bool] = []

    def hook(**_: Any) -> None:
        if not done:
            done.append(True)
            action()

    s3.meta.events.register("after-call.s3.GetObject", hook)


def indexed_text(qdrant: QdrantClient, key: str) -> str:
    records, _ = qdrant.scroll("docs", limit=100, with_payload=True)
    payloads = [record.payload or {} for record in records]
    return " ".join(str(p["text"]) for p in payloads if p["source_key"] == key)


# --- racing invocations -----------------------------------------------------------------------


def test_a_delete_processed_while_a_put_is_being_indexed_still_removes_the_page(
    tmp_path: Path, s3: Any, index: DocsIndex, fake_openai: FakeOpenAI
) -> None:
    settings = make_settings(tmp_path, fake_openai)
    a = make_sync(index, s3, settings)
    b = make_sync(index, another_client(), settings)
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=V1)

    def deleted_and_handled_elsewhere() -> None:
        another_client().delete_object(Bucket=BUCKET, Key=KEY)
        # The delete's notification is handled by another container before A writes.
        assert b.apply(change(removed=True)).status == "unchanged"

    during_first_get(s3, deleted_and_handled_elsewhere)

    result = a.apply(change())

    assert result.status == "deleted"
    assert index.page_state(KEY) is None


def test_a_newer_upload_indexed_while_an_older_one_is_being_indexed_wins(
    tmp_path: Path, s3: Any, qdrant: QdrantClient, index: DocsIndex, fake_openai: FakeOpenAI
) -> None:
    settings = make_settings(tmp_path, fake_openai)
    a = make_sync(index, s3, settings)
    b = make_sync(index, another_client(), settings)
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=V1)
    newer: list[str] = []

    def newer_version_indexed_elsewhere() -> None:
        newer.append(another_client().put_object(Bucket=BUCKET, Key=KEY, Body=V2)["ETag"])
        assert b.apply(change()).status == "added"

    during_first_get(s3, newer_version_indexed_elsewhere)

    a.apply(change())

    assert "noon" in indexed_text(qdrant, KEY)
    assert "dawn" not in indexed_text(qdrant, KEY)
    state = index.page_state(KEY)
    assert state is not None and state.version == a.version(newer[0].strip('"'))


def test_an_object_that_keeps_changing_is_retried_later(
    tmp_path: Path, s3: Any, index: DocsIndex, fake_openai: FakeOpenAI
) -> None:
    sync = make_sync(index, s3, make_settings(tmp_path, fake_openai))
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=V1)
    uploads = [0]

    def upload_again(**_: Any) -> None:
        uploads[0] += 1
        another_client().put_object(Bucket=BUCKET, Key=KEY, Body=html(f"Version {uploads[0]}."))

    s3.meta.events.register("after-call.s3.GetObject", upload_again)

    with pytest.raises(S3Unavailable, match="kept changing"):
        sync.apply(change())
    assert uploads[0] == MAX_SYNC_ROUNDS


# --- reconcile ------------------------------------------------------------------------------------


def test_reconcile_stops_calling_a_failing_embeddings_endpoint_and_keeps_indexed_pages(
    tmp_path: Path, s3: Any, index: DocsIndex, fake_openai: FakeOpenAI
) -> None:
    settings = make_settings(tmp_path, fake_openai)
    sync = make_sync(index, s3, settings)
    s3.put_object(Bucket=BUCKET, Key="docs/kept/index.html", Body=V1)
    assert sync.reconcile(bucket=BUCKET).added == 1
    for n in range(4):
        s3.put_object(Bucket=BUCKET, Key=f"docs/new-{n}/index.html", Body=html(f"Page {n} text."))
    fake_openai.reset()
    fake_openai.fail_next(500, count=100, endpoint="embeddings")

    summary = sync.reconcile(bucket=BUCKET)

    assert (summary.failed, summary.unchanged, summary.added, summary.deleted) == (4, 1, 0, 0)
    assert fake_openai.embedding_calls == 1
    reasons = sorted(summary.failures.values())
    assert reasons[0].startswith("embedding failed")
    assert all(reason.startswith("not attempted") for reason in reasons[1:])
    assert set(index.page_states()) == {"docs/kept/index.html"}


def test_reconcile_of_a_listing_without_pages_does_not_wipe_the_index(
    tmp_path: Path, s3: Any, index: DocsIndex, fake_openai: FakeOpenAI
) -> None:
    sync = make_sync(index, s3, make_settings(tmp_path, fake_openai))
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=V1)
    sync.reconcile(bucket=BUCKET)
    misconfigured = make_sync(index, s3, make_settings(tmp_path, fake_openai, key_prefix="site"))

    summary = misconfigured.reconcile(bucket=BUCKET)

    assert summary.deleted == 0
    assert set(index.page_states()) == {KEY}


# --- what is not applied ------------------------------------------------------------------------


def test_changes_in_another_bucket_are_ignored(
    tmp_path: Path, s3: Any, index: DocsIndex, fake_openai: FakeOpenAI
) -> None:
    sync = make_sync(index, s3, make_settings(tmp_path, fake_openai))
    s3.create_bucket(
        Bucket="someone-elses-bucket", CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    s3.put_object(Bucket="someone-elses-bucket", Key=KEY, Body=V1)

    result = sync.apply(change(bucket="someone-elses-bucket"))

    assert result.status == "ignored" and "DOCS_BUCKET" in str(result.reason)
    assert index.page_states() == {}


def test_an_empty_object_is_skipped_and_keeps_the_indexed_page(
    tmp_path: Path, s3: Any, qdrant: QdrantClient, index: DocsIndex, fake_openai: FakeOpenAI
) -> None:
    sync = make_sync(index, s3, make_settings(tmp_path, fake_openai))
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=V1)
    assert sync.apply(change()).status == "added"
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"")  # a half-finished upload

    result = sync.apply(change())

    assert result.status == "skipped" and "empty" in str(result.reason)
    assert "dawn" in indexed_text(qdrant, KEY)


def test_the_version_fingerprint_follows_every_setting_that_shapes_the_points(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    base = make_settings(tmp_path, fake_openai)
    same = make_settings(tmp_path, fake_openai, log_level="DEBUG", docs_bucket="other")
    assert pipeline_fingerprint(base) == pipeline_fingerprint(same)
    for override in (
        {"embedding_model": "openai/text-embedding-3-large"},
        {"embedding_dimensions": 128},
        {"chunk_target_tokens": 300},
        {"site_url": "https://docs.example.net"},
        {"docs_route_base_path": "guide"},
        {"default_locale": "fr"},
    ):
        changed = make_settings(tmp_path, fake_openai, **override)
        assert pipeline_fingerprint(changed) != pipeline_fingerprint(base), override


# --- time budget ----------------------------------------------------------------------------------


def test_a_page_whose_embedding_outlasts_the_deadline_keeps_its_indexed_version(
    tmp_path: Path, s3: Any, qdrant: QdrantClient, index: DocsIndex, fake_openai: FakeOpenAI
) -> None:
    sync = make_sync(index, s3, make_settings(tmp_path, fake_openai))
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=V1)
    assert sync.apply(change()).status == "added"
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=V2)
    calls = fake_openai.embedding_calls
    spent = Deadline(cutoff=time.monotonic() - 1)  # the invocation is about to end

    # the record fails (SQS delivers it again) without calling the model...
    with pytest.raises(EmbeddingError):
        sync.apply(change(), deadline=spent)
    assert fake_openai.embedding_calls == calls
    assert "dawn" in indexed_text(qdrant, KEY)  # ...and the old version stays whole

    # delivered again with time left, the new version replaces it
    assert sync.apply(change(), deadline=Deadline.start(30)).status == "updated"
    assert "noon" in indexed_text(qdrant, KEY)
