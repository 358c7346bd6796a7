"""Reading S3 notifications: the recorded Lambda events in `events/`, and bodies that are not
S3 notifications."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from docsrag.s3site import S3EventError, event_kind, parse_notification

EVENTS = Path(__file__).resolve().parents[2] / "events"


def load(name: str) -> Any:
    return json.loads((EVENTS / name).read_text())


def test_recorded_events_are_told_apart() -> None:
    assert event_kind(load("sqs_s3_put.json")) == "sqs"
    assert event_kind(load("s3_direct_put.json")) == "s3"
    assert event_kind(load("reconcile.json")) == "reconcile"
    with pytest.raises(S3EventError, match="unsupported ingest event"):
        event_kind({"Records": []})
    with pytest.raises(S3EventError, match="not an object"):
        event_kind(["Records"])


def test_keys_are_decoded_from_their_url_encoding() -> None:
    (change,) = parse_notification(load("s3_direct_put.json"))
    assert change.key == "site/docs/guides/c++ & rust/über uns 文档.html"
    assert change.bucket == "docsrag-docs-123456789012-1a2b3c4d"
    assert not change.removed

    bodies = [record["body"] for record in load("sqs_s3_delete.json")["Records"]]
    changes = [change for body in bodies for change in parse_notification(body)]
    assert [c.key for c in changes] == [
        "site/docs/old-page/index.html",
        "site/docs/legacy api/index.html",
    ]
    assert all(c.removed for c in changes)


@pytest.mark.parametrize(
    ("encoded", "key"),
    [
        ("docs%2Fa%2Bb%2Findex.html", "docs/a+b/index.html"),  # moto encodes `/` too
        ("docs/100%252B+tips/index.html", "docs/100%2B tips/index.html"),  # a literal %2B
        ("docs/a+b/index.html", "docs/a b/index.html"),
    ],
)
def test_every_encoding_s3_uses_decodes_to_the_object_key(encoded: str, key: str) -> None:
    body = {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": "b"}, "object": {"key": encoded}},
            }
        ]
    }
    assert [change.key for change in parse_notification(json.dumps(body))] == [key]


def test_test_events_and_bodies_without_records_give_no_changes() -> None:
    (record,) = load("sqs_s3_test_event.json")["Records"]
    assert parse_notification(record["body"]) == []
    assert parse_notification("{}") == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "JSON list, not an object"),
        ('{"Records": {"a": 1}}', "'Records' is not a list"),
        ('{"Records": [{"eventName": "ObjectCreated:Put"}]}', "not an S3 event record"),
        (
            '{"Records": [{"eventSource": "aws:sns", "eventName": "x", '
            '"s3": {"bucket": {"name": "b"}, "object": {"key": "k"}}}]}',
            "unexpected event source",
        ),
    ],
)
def test_anything_else_is_an_error(body: str, message: str) -> None:
    with pytest.raises(S3EventError, match=message):
        parse_notification(body)
