"""End to end on moto: a site uploaded to the docs bucket reaches answers through S3
notifications, the SQS queue and the ingest handler; the chat handler answers HTTP API events
with cited links.

Everything is real except AWS (moto, in process) and the model endpoint (the loopback fake
OpenAI server): the handlers are imported from their files and invoked with the event JSON Lambda
delivers, their OpenRouter key comes from Secrets Manager, the index is an embedded Qdrant.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from docsrag.aws.secrets import SECRET_SETTINGS, clear_secret_cache
from docsrag.config import Settings
from docsrag.telemetry import metrics
from tests.e2e.moto_stack import (
    EVENTS,
    KEY_PREFIX,
    REGION,
    SITE_URL,
    Deployment,
    Emf,
    EndingInvocation,
    docusaurus_page,
    emf_lines,
)
from tests.fakes.openai_server import FakeOpenAI

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_BUILD = REPO_ROOT / "site" / "build"
BUCKET = "docsrag-docs-123456789012-e2e"
MAX_DOCUMENT_BYTES = 1_000_000
MAX_RECEIVE_COUNT = 3
# Attributes Powertools' Logger leaves on the stdlib logger it configured.
POWERTOOLS_MARKS = (
    "init",
    "powertools_handler",
    "powertools_buffer_config",
    "powertools_buffer_cache",
)


# --- the stack ------------------------------------------------------------------------------------


@pytest.fixture
def qdrant_dir(tmp_path: Path) -> Iterator[Path]:
    """Where the embedded Qdrant lives. It commits every write to SQLite; on tmpfs (when there
    is one) those commits cost no disk flushes, which keeps these tests fast."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and shm.stat().st_mode & 0o002):
        yield tmp_path / "qdrant"
        return
    folder = Path(tempfile.mkdtemp(prefix="docsrag-e2e-", dir=shm))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _handler_environment(tmp_path: Path, qdrant: Path, fake: FakeOpenAI) -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "POWERTOOLS_SERVICE_NAME": "docsrag",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "DocsRag",
        "METRICS_ENABLED": "true",
        "QDRANT_PATH": str(qdrant),
        "CHATKIT_SQLITE_PATH": str(tmp_path / "chatkit.sqlite3"),
        "OPENROUTER_BASE_URL": fake.base_url,
        "EMBEDDING_DIMENSIONS": "64",
        "EMBEDDING_MAX_RETRIES": "0",
        "LLM_MAX_RETRIES": "0",
        "FALLBACK_MODELS": "",
        "SITE_URL": SITE_URL,
        "DOCS_BUCKET": BUCKET,
        "KEY_PREFIX": KEY_PREFIX,
        "MAX_DOCUMENT_BYTES": str(MAX_DOCUMENT_BYTES),
        "CORS_ORIGINS": SITE_URL,
        "VISITOR_RATE_LIMIT_PER_MINUTE": "0",
    }


@pytest.fixture
def isolated_logging() -> Iterator[None]:
    """The handlers set up the `docsrag` logger through Powertools (JSON to stdout, filters on
    the root handlers); put everything back so other tests see stdlib logging as it was."""
    package = logging.getLogger("docsrag")
    handlers, level, propagate = list(package.handlers), package.level, package.propagate
    filters = list(package.filters)
    root_filters = {handler: list(handler.filters) for handler in logging.root.handlers}
    yield
    package.handlers, package.filters = handlers, filters
    package.setLevel(level)
    package.propagate = propagate
    for mark in (
        "init",
        "powertools_handler",
        "powertools_buffer_config",
        "powertools_buffer_cache",
    ):
        if hasattr(package, mark):
            delattr(package, mark)
    for handler, saved in root_filters.items():
        handler.filters = saved
    metrics.clear_metrics()


@pytest.fixture
def stack(
    tmp_path: Path,
    qdrant_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    fake_openai: FakeOpenAI,
    isolated_logging: None,
) -> Iterator[Deployment]:
    """Bucket + queue (with its dead-letter queue) + notifications + secret on moto, and the
    functions' environment as the SAM template sets it."""
    monkeypatch.chdir(tmp_path)  # no stray .env file
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    for name in SECRET_SETTINGS:
        monkeypatch.delenv(f"{name}_SECRET", raising=False)
    for name in ("AWS_PROFILE", "AWS_LAMBDA_FUNCTION_NAME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in _handler_environment(tmp_path, qdrant_dir, fake_openai).items():
        monkeypatch.setenv(name, value)
    clear_secret_cache()
    with mock_aws():
        secrets = boto3.client("secretsmanager", region_name=REGION)
        secret_arn = secrets.create_secret(
            Name="docsrag/openrouter-api-key", SecretString=fake_openai.api_key
        )["ARN"]
        monkeypatch.setenv("OPENROUTER_API_KEY_SECRET", secret_arn)

        s3 = boto3.client("s3", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        dlq_url = sqs.create_queue(QueueName="docsrag-IngestDeadLetterQueue")["QueueUrl"]
        dlq_arn = _queue_arn(sqs, dlq_url)
        redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT}
        queue_url = sqs.create_queue(
            QueueName="docsrag-IngestQueue",
            Attributes={"VisibilityTimeout": "1800", "RedrivePolicy": json.dumps(redrive)},
        )["QueueUrl"]
        queue_arn = _queue_arn(sqs, queue_url)
        prefix_filter = {"Key": {"FilterRules": [{"Name": "prefix", "Value": KEY_PREFIX}]}}
        s3.put_bucket_notification_configuration(
            Bucket=BUCKET,
            NotificationConfiguration={
                "QueueConfigurations": [
                    {"QueueArn": queue_arn, "Events": [event], "Filter": prefix_filter}
                    for event in ("s3:ObjectCreated:*", "s3:ObjectRemoved:*")
                ]
            },
        )
        deployment = Deployment(
            s3=s3,
            sqs=sqs,
            bucket=BUCKET,
            queue_url=queue_url,
            queue_arn=queue_arn,
            dlq_url=dlq_url,
            fake=fake_openai,
        )
        try:
            yield deployment
        finally:
            deployment.close()
            clear_secret_cache()


def _queue_arn(sqs: Any, url: str) -> str:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return str(attributes["Attributes"]["QueueArn"])


def metric_totals(stdout: str) -> dict[str, float]:
    """Every metric the handlers printed (EMF), summed over invocations."""
    totals: dict[str, float] = {}
    for document in emf_lines(stdout):
        for name, value in document.values.items():
            totals[name] = totals.get(name, 0) + value
    return totals


def page_urls(deployment: Deployment, question: str) -> set[str]:
    """The pages an answer cites (URLs without the anchor)."""
    return {url.split("#", 1)[0] for url in deployment.cited_urls(question)}


def applied(caplog: pytest.LogCaptureFixture) -> dict[str, tuple[str, str | None]]:
    """key -> (status, reason) from the ingest's "s3 change applied" log records."""
    return {
        record.key: (record.status, record.reason)  # type: ignore[attr-defined]
        for record in caplog.records
        if record.getMessage() == "s3 change applied"
    }


def page(title: str, **sections: str) -> str:
    return docusaurus_page(title, {name.replace("_", " "): text for name, text in sections.items()})


# --- sites ----------------------------------------------------------------------------------------


@pytest.fixture(
    params=[
        "markdown-sources",
        pytest.param("sample-build", marks=pytest.mark.docusaurus_build),
        pytest.param("shared-build", marks=pytest.mark.corpus),
    ]
)
def site(request: pytest.FixtureRequest) -> dict[str, Any]:
    """A site to sync to the bucket, a question one of its pages answers, that page's key and
    URL. The Markdown sources need neither npm nor ../shared."""
    if request.param == "markdown-sources":
        return {
            "root": REPO_ROOT / "docs",
            "question": "How do I rotate a secret?",
            "page_key": KEY_PREFIX + "deployment/secrets.md",
            "page_url": f"{SITE_URL}/docs/deployment/secrets",
        }
    if request.param == "sample-build":
        if not (SAMPLE_BUILD / "docs").is_dir():
            pytest.skip("site/build is absent: build the sample site with `make site` (npm)")
        return {
            "root": SAMPLE_BUILD,
            "question": "How do I rotate a secret?",
            "page_key": KEY_PREFIX + "docs/deployment/secrets/index.html",
            "page_url": f"{SITE_URL}/docs/deployment/secrets",
        }
    corpus: Path = request.getfixturevalue("shared_corpus")
    return {
        "root": corpus / "build",
        "question": "How do I deploy my site to GitHub Pages?",
        "page_key": KEY_PREFIX + "docs/deployment/index.html",
        "page_url": f"{SITE_URL}/docs/deployment",
    }


# --- the story ------------------------------------------------------------------------------------


def test_a_chat_request_ends_with_sources_before_its_invocation_does(
    stack: Deployment, site: dict[str, Any]
) -> None:
    # GIVEN an indexed site and a model that would take 30 s to write its answer
    stack.upload_folder(site["root"])
    assert stack.drain() == []
    stack.fake.trickle(1.0, chunks=30)

    # WHEN /chat reaches the chat handler (Mangum) with 6 s left in the invocation, well inside
    # REQUEST_TIME_BUDGET_SECONDS (25 s by default)
    stack.chat_context = EndingInvocation(function_name="docsrag-chat", seconds_left=6.0)
    started = time.monotonic()
    answer = stack.ask(site["question"])

    # THEN the answer comes back before the invocation ends, from the docs, with its sources,
    # instead of Lambda killing the request with nothing
    assert time.monotonic() - started < 6.0
    assert answer["mode"] == "retrieval_only"
    assert any(source["url"].startswith(site["page_url"]) for source in answer["sources"])


def test_a_synced_site_is_answered_with_citations_and_follows_deletes_and_redeploys(
    stack: Deployment, site: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a site synced to the bucket (`aws s3 sync build/ s3://bucket/site/`)
    keys = stack.upload_folder(site["root"])
    # WHEN Lambda feeds the queue's notifications to the ingest handler
    assert stack.drain() == []
    added = metric_totals(capsys.readouterr().out).get("PagesAdded", 0)
    assert added >= 10

    # THEN the chat handler answers with links to the page's sections
    answer = stack.ask(site["question"])
    assert answer["mode"] == "llm"
    assert "[1]" in answer["answer"]
    urls = [source["url"] for source in answer["sources"]]
    assert all(url.startswith(SITE_URL + "/") for url in urls)
    assert any(url.startswith(site["page_url"] + "#") for url in urls), urls

    # WHEN the page is deleted from the bucket
    stack.delete(site["page_key"])
    assert stack.drain() == []
    # THEN answers no longer cite it
    assert site["page_url"] not in page_urls(stack, site["question"])

    # WHEN the same pages are uploaded again (a deploy that changed nothing)
    calls_before = stack.fake.embedding_calls
    capsys.readouterr()
    for key in keys:
        if key != site["page_key"] and key.endswith((".html", ".md", ".mdx")):
            stack.upload(key, (site["root"] / key.removeprefix(KEY_PREFIX)).read_bytes())
    assert stack.drain() == []
    # THEN no page is embedded or written again
    assert stack.fake.embedding_calls == calls_before
    totals = metric_totals(capsys.readouterr().out)
    assert totals.get("PagesUnchanged", 0) == added - 1
    for name in ("PagesAdded", "PagesUpdated", "PagesDeleted", "ChunksWritten", "EmbeddingCalls"):
        assert name not in totals


# --- bad input ------------------------------------------------------------------------------------


GOOD = {
    "docs/alpha/index.html": page(
        "Alpha launch checklist",
        Preflight="Verify the zebracorn telemetry beacon before every alpha launch.",
    ),
    "docs/beta/index.html": page(
        "Beta rollout",
        Canary="Roll the quokkafish canary to five percent of traffic first.",
    ),
    # Broken markup a browser still renders: unclosed tags, stray end tags.
    "docs/sloppy/index.html": (
        '<html><head><title>Sloppy</title></head><body><main class="docMainContainer_x">'
        '<article><div class="theme-doc-markdown markdown"><header><h1>Sloppy page</h1>'
        "</header><p>The marmotkite parser forgives <b>unclosed tags</span> and <i>stray ends"
        '<h2 id="more">More<p>Still the marmotkite page.'
    ),
}


def test_one_poisoned_object_fails_alone_and_malformed_messages_reach_the_dead_letter_queue(
    stack: Deployment, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.INFO, logger="docsrag")
    assert stack.drain() == []  # the s3:TestEvent S3 sends when notifications are configured
    # GIVEN one batch with good pages, unreadable objects and messages that are not S3 events
    for key, html in GOOD.items():
        stack.upload(KEY_PREFIX + key, html)
    stack.upload(KEY_PREFIX + "docs/binary/index.html", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    huge = page("Huge", Body="word " * (MAX_DOCUMENT_BYTES // 5))
    stack.upload(KEY_PREFIX + "docs/huge/index.html", huge)
    latin1 = '<div class="theme-doc-markdown"><h1>Caf\u00e9</h1><p>Cr\u00e8me.</p></div>'
    stack.upload(KEY_PREFIX + "docs/latin1/index.html", latin1.encode("latin-1"))
    stack.upload(KEY_PREFIX + "docs/no-article/index.html", "<<<>>> </div></span> <p>half a")
    stack.send_raw("this is not JSON")
    stack.send_raw(json.dumps({"Records": [{"eventName": "ObjectCreated:Put"}]}))
    batch = stack.receive()
    assert len(batch) == 9
    malformed = {m["MessageId"] for m in batch if "s3" not in m["Body"]}
    assert len(malformed) == 2

    # WHEN Lambda delivers the batch
    failed = stack.deliver(batch)

    # THEN only the messages that are not S3 notifications are reported as failed
    assert set(failed) == malformed
    # ... the good pages (the sloppy markup too) are indexed and answerable
    assert f"{SITE_URL}/docs/alpha" in page_urls(stack, "zebracorn telemetry beacon")
    assert f"{SITE_URL}/docs/sloppy" in page_urls(stack, "marmotkite parser")
    # ... and each unreadable object is skipped (acknowledged) with its reason in the logs
    results = applied(caplog)
    reasons = {key.removeprefix(KEY_PREFIX): results[key] for key in results}
    assert reasons["docs/binary/index.html"][0] == "skipped"
    assert "binary" in str(reasons["docs/binary/index.html"][1])
    assert reasons["docs/huge/index.html"][0] == "skipped"
    assert "MAX_DOCUMENT_BYTES" in str(reasons["docs/huge/index.html"][1])
    assert reasons["docs/latin1/index.html"][0] == "skipped"
    assert "UTF-8" in str(reasons["docs/latin1/index.html"][1])
    assert reasons["docs/no-article/index.html"][0] == "skipped"
    assert metric_totals(capsys.readouterr().out)["PagesSkipped"] == 4
    failures = [r for r in caplog.records if "message failed" in r.getMessage()]
    assert len(failures) == 2 and all(r.exc_info for r in failures)

    # WHEN the failed messages come back after their visibility timeout, again and again
    assert set(stack.drain()) == malformed
    # THEN they end in the dead-letter queue, nothing lost, and the queue is empty
    assert sorted(stack.dead_letters()) == sorted(
        m["Body"] for m in batch if m["MessageId"] in malformed
    )
    assert stack.receive() == []


def test_oversized_and_asset_objects_are_never_downloaded(
    stack: Deployment, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO, logger="docsrag")
    fetched: list[str] = []

    def record_get(params: dict[str, Any], **_: Any) -> None:
        fetched.append(params["Key"])

    # The ingest function's S3 client comes from boto3's default session: watch its GETs.
    session = boto3.session.Session(region_name=REGION)
    session.events.register("provide-client-params.s3.GetObject", record_get)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", session)

    assets: dict[str, bytes | str] = {
        "assets/js/main.3f2a1b.js": b"x" * (MAX_DOCUMENT_BYTES + 10),
        "assets/css/styles.9c8d.css": b"body{}",
        "img/logo.png": b"\x89PNG\r\n\x1a\n\x00",
        "sitemap.xml": b"<urlset/>",
        "404.html": page("Page Not Found", Oops="We could not find what you were looking for."),
        "docs/tags/index.html": page("Tags", All="a b c"),
    }
    for key, body in assets.items():
        stack.upload(KEY_PREFIX + key, body)
    stack.upload(KEY_PREFIX + "docs/huge/index.html", b"<p>" + b"a" * MAX_DOCUMENT_BYTES)
    stack.upload(KEY_PREFIX + "docs/fine/index.html", GOOD["docs/alpha/index.html"])

    assert stack.drain() == []

    assert fetched == [KEY_PREFIX + "docs/fine/index.html"]
    results = applied(caplog)
    for key in assets:
        status, reason = results[KEY_PREFIX + key]
        assert status == "ignored" and reason
    assert results[KEY_PREFIX + "docs/huge/index.html"][0] == "skipped"


def test_test_events_bodies_without_records_and_other_buckets_are_acknowledged(
    stack: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    # The s3:TestEvent S3 sent when the notifications were configured
    messages = stack.receive_all()
    assert any("s3:TestEvent" in m["Body"] for m in messages)
    assert stack.deliver(messages) == []
    # Recorded Lambda events: a test event, and puts/deletes naming another bucket
    for name in ("sqs_s3_test_event.json", "sqs_s3_put.json", "sqs_s3_delete.json"):
        event = json.loads((EVENTS / name).read_text())
        assert stack.invoke_ingest(event) == {"batchItemFailures": []}
    stack.send_raw(json.dumps({"Service": "Amazon S3", "Bucket": BUCKET}))
    stack.send_raw("{}")
    assert stack.drain() == []
    assert stack.dead_letters() == []
    assert stack.fake.embedding_calls == 0


# --- order, keys, reconcile -----------------------------------------------------------------------


V1 = page("Ferry timetable", Departures="The zanzibar ferry leaves at dawn from pier one.")
V2 = page("Ferry timetable", Departures="The zanzibar ferry now leaves at noon from pier nine.")
FERRY = KEY_PREFIX + "docs/ferry/index.html"


def _ferry_snippets(stack: Deployment) -> list[str]:
    return [
        source["snippet"]
        for source in stack.ask("When does the zanzibar ferry leave?")["sources"]
        if source["url"].startswith(f"{SITE_URL}/docs/ferry")
    ]


def test_a_put_delivered_after_its_delete_does_not_resurrect_the_page(stack: Deployment) -> None:
    stack.drain()
    stack.upload(KEY_PREFIX + "docs/other/index.html", GOOD["docs/beta/index.html"])
    stack.upload(FERRY, V1)
    stack.delete(FERRY)
    other, put, delete = stack.receive_all()
    # The delete arrives first, the put late (both in one batch, and again on their own)
    assert stack.deliver([other, delete, put]) == []
    assert _ferry_snippets(stack) == []
    assert stack.deliver([put]) == []
    assert _ferry_snippets(stack) == []


def test_a_late_delete_does_not_remove_a_page_uploaded_again(stack: Deployment) -> None:
    stack.drain()
    stack.upload(FERRY, V1)
    stack.delete(FERRY)
    stack.upload(FERRY, V2)
    put_v1, delete, put_v2 = stack.receive_all()
    assert stack.deliver([put_v1]) == []
    assert stack.deliver([put_v2]) == []
    assert stack.deliver([delete]) == []  # late: the object is back, so the page stays
    snippets = _ferry_snippets(stack)
    assert snippets and all("noon" in snippet for snippet in snippets)
    # And the stale put, delivered once more (at least once delivery), changes nothing
    assert stack.deliver([put_v1]) == []
    snippets = _ferry_snippets(stack)
    assert snippets and all("noon" in snippet for snippet in snippets)


KEYS = {
    "docs/c++ & rust/über uns 文档/index.html": page(
        "Systems languages", Overview="Binding the wombatcrane allocator from both languages."
    ),
    "docs/100%2B tips/index.html": page(
        "A hundred tips", Tips="The gerbilhawk tip list grows every week."
    ),
    "docs/a+b/index.html": page("Plus in names", Plus="The ocelotmoth key has a plus sign."),
}


def test_keys_with_spaces_plus_signs_unicode_and_escapes_round_trip(stack: Deployment) -> None:
    stack.drain()
    for key, html in KEYS.items():
        stack.upload(KEY_PREFIX + key, html)
    messages = stack.receive_all()
    keys = [json.loads(m["Body"])["Records"][0]["s3"]["object"]["key"] for m in messages]
    assert all(" " not in key for key in keys) and any("%252B" in key for key in keys)
    assert stack.deliver(messages) == []  # keys arrive URL-encoded: they are decoded
    questions = {
        "docs/c++ & rust/über uns 文档/index.html": "wombatcrane allocator",
        "docs/100%2B tips/index.html": "gerbilhawk tip list",
        "docs/a+b/index.html": "ocelotmoth key plus sign",
    }
    titles = {key: html.split("<title>")[1].split(" |")[0] for key, html in KEYS.items()}
    for key, question in questions.items():
        sources = stack.ask(question)["sources"]
        assert sources and sources[0]["title"].startswith(titles[key]), (key, sources)

    # Unchanged uploads are recognised under the same identity (no new embeddings) ...
    calls = stack.fake.embedding_calls
    for key, html in KEYS.items():
        stack.upload(KEY_PREFIX + key, html)
    assert stack.drain() == []
    assert stack.fake.embedding_calls == calls
    # ... and deleting by the same key removes each page
    for key in KEYS:
        stack.delete(KEY_PREFIX + key)
    assert stack.drain() == []
    for question in questions.values():
        assert stack.ask(question)["sources"] == []


def test_reconcile_adds_missing_pages_and_deletes_pages_gone_from_the_bucket(
    stack: Deployment,
) -> None:
    # GIVEN an index that missed notifications: a page deleted while events were lost ...
    stack.upload(FERRY, V1)
    assert stack.drain() == []
    assert _ferry_snippets(stack)
    stack.delete(FERRY)
    # ... and pages uploaded while events were lost
    for key, html in GOOD.items():
        stack.upload(KEY_PREFIX + key, html)
    stack.upload(KEY_PREFIX + "assets/js/main.js", b"console.log(1)")
    stack.purge()
    assert page_urls(stack, "zebracorn telemetry beacon") == set()

    # WHEN the ingest function is invoked with {"action": "reconcile"}
    event = json.loads((EVENTS / "reconcile.json").read_text())
    report = stack.invoke_ingest(event)

    # THEN the missing pages are added and the deleted one is gone
    assert report["bucket"] == BUCKET
    assert (report["added"], report["deleted"], report["failed"]) == (len(GOOD), 1, 0)
    assert f"{SITE_URL}/docs/alpha" in page_urls(stack, "zebracorn telemetry beacon")
    assert _ferry_snippets(stack) == []
    # ... and a second reconcile finds nothing to do, for free
    calls = stack.fake.embedding_calls
    again = stack.invoke_ingest(event)
    assert (again["added"], again["updated"], again["deleted"]) == (0, 0, 0)
    assert again["unchanged"] == len(GOOD)
    assert stack.fake.embedding_calls == calls


def test_a_direct_s3_event_is_applied_and_summarised(stack: Deployment) -> None:
    stack.drain()
    stack.upload(FERRY, V1)
    (message,) = stack.receive_all()
    summary = stack.invoke_ingest(json.loads(message["Body"]))
    assert summary["added"] == 1 and summary["chunks_written"] >= 1
    assert _ferry_snippets(stack)


# --- configuration changes ------------------------------------------------------------------------


def test_pages_indexed_without_a_key_get_dense_vectors_once_the_key_is_configured(
    stack: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN pages ingested while the function had no OpenRouter key (BM25 only)
    monkeypatch.delenv("OPENROUTER_API_KEY_SECRET")
    stack.redeploy()
    for key, html in GOOD.items():
        stack.upload(KEY_PREFIX + key, html)
    assert stack.drain() == []
    assert stack.fake.embedding_calls == 0

    # WHEN the key is configured and the same objects are notified again (same ETags)
    monkeypatch.setenv("OPENROUTER_API_KEY_SECRET", "docsrag/openrouter-api-key")
    stack.redeploy()
    for key, html in GOOD.items():
        stack.upload(KEY_PREFIX + key, html)
    assert stack.drain() == []
    # THEN every page is embedded (not skipped as "same ETag already indexed")
    assert len(stack.fake.embedding_requests) == len(GOOD)
    # ... once: the next unchanged upload costs nothing
    for key, html in GOOD.items():
        stack.upload(KEY_PREFIX + key, html)
    assert stack.drain() == []
    assert len(stack.fake.embedding_requests) == len(GOOD)


def test_changing_the_embedding_model_re_embeds_every_page_on_reconcile(
    stack: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, html in GOOD.items():
        stack.upload(KEY_PREFIX + key, html)
    assert stack.drain() == []
    monkeypatch.setenv("EMBEDDING_MODEL", "openai/text-embedding-3-large")
    stack.redeploy()
    before = len(stack.fake.embedding_requests)
    report = stack.invoke_ingest({"action": "reconcile"})
    assert report["updated"] == len(GOOD)
    requests = stack.fake.embedding_requests[before:]
    assert len(requests) == len(GOOD)
    assert {r.json["model"] for r in requests} == {"openai/text-embedding-3-large"}


# --- observability --------------------------------------------------------------------------------


def test_ingest_prints_emf_metrics_and_never_the_key(
    stack: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.drain()
    capsys.readouterr()
    stack.upload(FERRY, V1)
    assert stack.drain() == []
    out = capsys.readouterr().out
    (document,) = [line for line in out.splitlines() if '"_aws"' in line]
    emf = json.loads(document)
    assert emf["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "DocsRag"
    values: Emf = emf_lines(out)[0]
    assert values["PagesAdded"] == 1
    assert values["ChunksWritten"] >= 1
    assert values["EmbeddingCalls"] >= 1
    stack.ask("When does the zanzibar ferry leave?")
    out += capsys.readouterr().out
    assert stack.fake.api_key not in out
