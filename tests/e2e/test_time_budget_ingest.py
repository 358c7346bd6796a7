"""The ingest function against its own timeout: a batch that cannot finish in the invocation's
time ends before it, the records not done reported as batch item failures, so SQS delivers them
again; nothing is lost and nothing half-written (moto S3 and SQS, embedded Qdrant, the fake
embeddings endpoint)."""

from __future__ import annotations

import pytest

from tests.e2e import test_ingest_pipeline as pipeline
from tests.e2e.moto_stack import (
    KEY_PREFIX,
    SITE_URL,
    Deployment,
    EndingInvocation,
    LambdaContext,
    load_handler,
)
from tests.e2e.test_ingest_pipeline import metric_totals, page, page_urls

# The moto stack and its fixtures, shared with the pipeline tests.
stack = pipeline.stack
qdrant_dir = pipeline.qdrant_dir
isolated_logging = pipeline.isolated_logging

ANIMALS = {
    "okapi": page("Okapi care", Feeding="Feed the okapiwren leaves twice a day."),
    "quokka": page("Quokka care", Shade="Quokkalantern enclosures need shade from noon."),
    "tapir": page("Tapir care", Bathing="Tapirbrook pools are refilled every morning."),
}


def test_records_that_cannot_finish_before_the_timeout_are_delivered_again(
    stack: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    if stack.ingest_app is None:
        stack.ingest_app = load_handler("ingest")
    margin = stack.ingest_app.RECORD_MARGIN_SECONDS  # what the handler keeps back
    stack.drain()  # the s3:TestEvent
    for name, html in ANIMALS.items():
        stack.upload(f"{KEY_PREFIX}docs/{name}/index.html", html)
    messages = stack.receive_all()
    assert len(messages) == 3
    # GIVEN embeddings that take 1 s a page, and an invocation with 1.5 s of work left
    stack.fake.slow(1.0, endpoint="embeddings")
    stack.ingest_context = EndingInvocation(
        function_name="docsrag-ingest", seconds_left=margin + 1.5
    )

    # WHEN the batch arrives
    failed = stack.deliver(messages)

    # THEN the records it had no time for are failures for SQS to deliver again, the rest done
    assert 1 <= len(failed) < 3
    done = metric_totals(capsys.readouterr().out).get("PagesAdded", 0)
    assert done == 3 - len(failed)

    # AND once delivered again with time to work, every page is indexed: nothing lost
    stack.fake.slow(0)
    stack.ingest_context = LambdaContext(function_name="docsrag-ingest")
    assert stack.drain() == []
    assert stack.dead_letters() == []
    assert metric_totals(capsys.readouterr().out).get("PagesAdded") == len(failed)
    for name, question in (
        ("okapi", "okapiwren leaves"),
        ("quokka", "quokkalantern shade"),
        ("tapir", "tapirbrook pools"),
    ):
        assert f"{SITE_URL}/docs/{name}" in page_urls(stack, question)
