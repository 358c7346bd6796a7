"""Metrics in CloudWatch Embedded Metric Format through Powertools, one `Metrics` per process.

On Lambda the handlers flush after every invocation (`@metrics.log_metrics`). Locally (no
`AWS_LAMBDA_FUNCTION_NAME`, and `METRICS_ENABLED` not set) recording is a no-op, so a long-running
`docsrag serve` does not accumulate or print metrics.
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "DocsRag")

metrics = Metrics(namespace=NAMESPACE)


def enabled() -> bool:
    flag = os.environ.get("METRICS_ENABLED", "").lower()
    if flag in {"1", "true", "yes"}:
        return True
    if flag in {"0", "false", "no"}:
        return False
    return "AWS_LAMBDA_FUNCTION_NAME" in os.environ


def count(name: str, value: float = 1) -> None:
    """Add to a count metric (pages ingested, answers by mode, feedback, ...)."""
    if enabled() and value:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def milliseconds(name: str, value: float) -> None:
    if enabled():
        metrics.add_metric(name=name, unit=MetricUnit.Milliseconds, value=round(value, 1))


def record_answer(
    *, mode: str, latency_ms: float | None = None, usage: dict[str, int] | None = None
) -> None:
    """One answer: `AnswersLlm` or `AnswersRetrievalOnly`, the model's latency and tokens."""
    count("AnswersLlm" if mode == "llm" else "AnswersRetrievalOnly")
    if latency_ms is not None and mode == "llm":
        milliseconds("LLMLatency", latency_ms)
    if usage:
        count("InputTokens", usage.get("input_tokens", 0))
        count("OutputTokens", usage.get("output_tokens", 0))
