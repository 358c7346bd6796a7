"""The ingest handler on moto with other S3 event wirings: SNS envelopes, EventBridge events
(through SQS and straight to the function), and messages that hold no change, which are
acknowledged but logged and counted (`NotificationsIgnored`), never dropped silently."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from tests.e2e import test_ingest_pipeline as pipeline
from tests.e2e.moto_stack import KEY_PREFIX, REGION, SITE_URL, Deployment
from tests.e2e.test_ingest_pipeline import BUCKET, applied, metric_totals, page, page_urls

# The moto stack and its fixtures, shared with the pipeline tests.
stack = pipeline.stack
qdrant_dir = pipeline.qdrant_dir
isolated_logging = pipeline.isolated_logging

OKAPI = page("Okapi care", Feeding="Feed the okapiwren leaves twice a day in the quiet paddock.")
QUOKKA = page("Quokka care", Shade="Quokkalantern enclosures need shade from noon onwards.")


def sns_envelope(message: str) -> str:
    return json.dumps(
        {
            "Type": "Notification",
            "MessageId": "8f6b5a0e-1c2d-4e3f-9a8b-7c6d5e4f3a2b",
            "TopicArn": f"arn:aws:sns:{REGION}:123456789012:docsrag-site-events",
            "Subject": "Amazon S3 Notification",
            "Message": message,
            "Timestamp": "2025-01-15T10:21:05.000Z",
            "SignatureVersion": "1",
        }
    )


def eventbridge_event(detail_type: str, key: str, **object_fields: Any) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": detail_type,
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2025-01-15T10:21:05Z",
        "region": REGION,
        "resources": [f"arn:aws:s3:::{BUCKET}"],
        "detail": {
            "version": "0",
            "bucket": {"name": BUCKET},
            "object": {"key": key, **object_fields},
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": "123456789012",
            "reason": "PutObject" if detail_type == "Object Created" else "DeleteObject",
        },
    }


def test_s3_notifications_in_an_sns_envelope_are_applied(
    stack: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.drain()  # the s3:TestEvent
    # GIVEN S3 -> SNS -> SQS (raw message delivery off): the S3 notification inside an envelope
    stack.upload(KEY_PREFIX + "docs/okapi/index.html", OKAPI)
    (notification,) = stack.receive_all()
    stack.purge()
    stack.send_raw(sns_envelope(notification["Body"]))
    capsys.readouterr()
    # WHEN the handler gets the message
    assert stack.drain() == []
    # THEN the page is indexed
    assert metric_totals(capsys.readouterr().out).get("PagesAdded") == 1
    assert f"{SITE_URL}/docs/okapi" in page_urls(stack, "okapiwren leaves")


def test_eventbridge_object_events_through_sqs_and_direct_are_applied(
    stack: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.drain()
    key = KEY_PREFIX + "docs/quokka/index.html"
    stack.upload(key, QUOKKA)
    stack.purge()  # only the EventBridge wiring delivers this change
    capsys.readouterr()
    # WHEN an EventBridge rule puts the "Object Created" event on the queue
    stack.send_raw(json.dumps(eventbridge_event("Object Created", key, size=len(QUOKKA))))
    assert stack.drain() == []
    # THEN the page is indexed
    assert metric_totals(capsys.readouterr().out).get("PagesAdded") == 1
    assert f"{SITE_URL}/docs/quokka" in page_urls(stack, "quokkalantern shade")

    # WHEN the object is deleted and the rule invokes the function directly
    stack.delete(key)
    stack.purge()
    summary = stack.invoke_ingest(eventbridge_event("Object Deleted", key))
    # THEN the page leaves the index
    assert summary["deleted"] == 1
    assert f"{SITE_URL}/docs/quokka" not in page_urls(stack, "quokkalantern shade")


def test_messages_without_changes_are_logged_and_counted_as_ignored(
    stack: Deployment, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.INFO, logger="docsrag")
    stack.drain()
    capsys.readouterr()
    caplog.clear()
    # GIVEN messages that are JSON but hold no change
    bodies = [
        "{}",
        json.dumps({"Service": "Amazon S3", "Bucket": BUCKET}),
        json.dumps(eventbridge_event("Object Restore Completed", KEY_PREFIX + "docs/a.html")),
        sns_envelope(json.dumps({"hello": "world"})),
    ]
    for body in bodies:
        stack.send_raw(body)
    # WHEN the handler gets them
    assert stack.drain() == []
    # THEN each is acknowledged, logged with its reason and counted
    assert stack.dead_letters() == []
    assert metric_totals(capsys.readouterr().out).get("NotificationsIgnored") == len(bodies)
    reasons = [
        getattr(record, "reason", "")
        for record in caplog.records
        if record.getMessage() == "notification ignored"
    ]
    assert len(reasons) == len(bodies) and all(reasons)
    assert any("Object Restore Completed" in reason for reason in reasons)
    # ... and a direct invocation with an unknown EventBridge event says so too
    summary = stack.invoke_ingest(eventbridge_event("Object Tags Added", KEY_PREFIX + "x.html"))
    assert summary["added"] == 0
    assert metric_totals(capsys.readouterr().out).get("NotificationsIgnored") == 1


def test_reconcile_and_events_agree_on_page_suffixes(
    stack: Deployment, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="docsrag")
    stack.drain()
    # GIVEN pages whose suffix the bucket notifications do not match (.htm, upper case)
    stack.upload(KEY_PREFIX + "docs/okapi/index.html", OKAPI)
    stack.upload(KEY_PREFIX + "docs/quokka/index.htm", QUOKKA)
    stack.upload(KEY_PREFIX + "docs/loud/INDEX.HTML", QUOKKA)
    assert stack.drain() == []
    # WHEN a reconcile runs
    summary = stack.invoke_ingest({"action": "reconcile"})
    # THEN it indexes no page that events would never update or delete
    assert summary["added"] == 0 and summary["unchanged"] == 1
    assert f"{SITE_URL}/docs/quokka" not in page_urls(stack, "quokkalantern shade")
    # ... and an event for such a key (a hand-made one: S3 would not send it) is ignored
    results = applied(caplog)
    for key in ("docs/quokka/index.htm", "docs/loud/INDEX.HTML"):
        status, reason = results[KEY_PREFIX + key]
        assert status == "ignored" and ".html, .md, .mdx" in str(reason)
