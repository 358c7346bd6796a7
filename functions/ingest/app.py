"""Ingest Lambda: keeps the Qdrant index in step with the docs bucket.

Accepts, in one handler:
- SQS batches whose bodies are S3 notifications (the deployed path): Powertools `BatchProcessor`
  with partial batch failure, so one bad message never blocks or re-runs the others. A message
  fails (is retried, then kept in the dead-letter queue) when its body is not an S3 notification
  or a transient error stops it (S3, Qdrant, embeddings); a document that cannot be indexed
  (binary, over MAX_DOCUMENT_BYTES, unparseable) is skipped with a logged reason and acknowledged;
- the same S3 notifications inside SNS envelopes, and EventBridge `Object Created` /
  `Object Deleted` events, in SQS bodies or as direct events; a body that holds no change
  (`s3:TestEvent`, `{}`, another EventBridge event) is acknowledged, logged with its reason and
  counted (`NotificationsIgnored`);
- direct S3 notification events (`sam local invoke`, or S3 wired straight to Lambda);
- `{"action": "reconcile"}`: a full sync of the bucket (first deploy, repairing drift).

Time. A record's work ends `RECORD_MARGIN_SECONDS` before the function's timeout (`Deadline`
from the Lambda context): a record is not started after that, and a page's embedding requests and
retries stop at it, before anything is written. Such records are reported as batch item failures,
so SQS delivers them again; the others are acknowledged. Nothing is lost or half-written, and a
timeout never fails (and re-runs) the whole batch.
"""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from docsrag.aws.runtime import after_restore, lambda_settings, share_logging
from docsrag.budget import Deadline, TimeBudgetExhausted
from docsrag.s3site import S3Sync, build_s3_sync, event_kind
from docsrag.telemetry import metrics

logger = Logger()
tracer = Tracer()
share_logging(logger)

# A batch whose messages all fail is reported like any other (every message id listed) rather
# than raised: the queue retries them the same way, and the response stays one shape.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
# Kept back from the function's timeout: the last page's write to Qdrant, the partial batch
# response and the metrics flush.
RECORD_MARGIN_SECONDS = 20.0
_sync: S3Sync | None = None


def _get_sync() -> S3Sync:
    """Clients are built on first use and kept for the container's life."""
    global _sync
    if _sync is None:
        _sync = build_s3_sync(settings=lambda_settings(), s3=boto3.client("s3"))
    return _sync


def _forget_clients() -> None:
    """Close and drop the clients; the next invocation builds them again."""
    global _sync
    if _sync is not None:
        _sync.close()
    _sync = None


after_restore(_forget_clients)


@tracer.capture_method
def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> None:
    """One SQS message: an S3 notification. Raising marks the message failed (retried)."""
    logger.set_correlation_id(record.message_id)
    deadline = Deadline.within_lambda(lambda_context, margin_seconds=RECORD_MARGIN_SECONDS)
    try:
        if deadline.expired:
            raise TimeBudgetExhausted("not started: the invocation is about to time out")
        _get_sync().apply_notification(record.body, deadline=deadline)
    except TimeBudgetExhausted as exc:
        logger.warning("message left for SQS to deliver again: %s", exc)
        raise
    except Exception:
        logger.exception(
            "message failed; SQS will deliver it again (then to the dead-letter queue)",
            extra={"attempt": record.attributes.approximate_receive_count},
        )
        raise


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.set_correlation_id(None)  # set per message below; none left from the last invocation
    kind = event_kind(event)
    if kind == "sqs":
        return dict(
            process_partial_response(
                event=event, record_handler=record_handler, processor=processor, context=context
            )
        )
    if kind == "reconcile":
        return _get_sync().reconcile_report()
    return _get_sync().apply_direct(event)
