"""Ingest throughput: a 200-page upload through the SQS ingest handler, on moto.

The bucket, the queue and the bucket's notifications are moto (in process); 200 deterministic
Docusaurus-shaped doc pages (navbar, a sidebar listing every page, article with headings,
paragraphs, lists, code blocks and tables, table of contents, footer) are uploaded under `site/`.
S3 notifies the queue; the queue is drained in batches of up to 10 messages, each batch wrapped
in the SQS event Lambda delivers and handed to the real `functions/ingest/app.py` handler
(imported from its file with the environment Lambda gives it); messages the handler does not
report failed are deleted. Embeddings come from the loopback fake OpenAI server
(tests/fakes/openai_server.py), and the time spent in embedding requests is measured and left
out, so the figures are the pipeline's own cost: S3 reads, parsing, chunking, BM25, Qdrant
writes (Qdrant's embedded mode in a temp folder).

Then the same 200 pages are uploaded again, unchanged: the handler should find every ETag
already indexed and make no embedding requests.

    .venv/bin/python bench/ingest_throughput.py [--pages 200] [--seed 7]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
from moto import mock_aws

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # a script run from anywhere finds tests.fakes

from tests.fakes.openai_server import FakeOpenAI  # noqa: E402

REGION = "eu-central-1"
BUCKET = "docsrag-docs-123456789012-bench"
PREFIX = "site/"
SITE_URL = "https://docs.example.org"

# --- 200 pages -----------------------------------------------------------------------------------

SECTIONS = (
    "getting-started", "guides", "configuration", "deployment", "api", "cli", "plugins",
    "integrations", "operations", "reference",
)  # fmt: skip
WORDS = (
    "the", "a", "to", "of", "and", "in", "is", "for", "with", "that", "on", "it", "you", "can",
    "be", "as", "this", "by", "your", "from", "or", "are", "when", "which", "each", "not", "all",
    "if", "its", "one", "more", "how", "only", "will", "an", "into", "then", "than", "also", "any",
    "both",
)  # fmt: skip
TERMS = (
    "sidebar", "page", "build", "deploy", "bucket", "queue", "index", "chunk", "embedding",
    "model", "token", "cache", "plugin", "theme", "route", "slug", "version", "locale", "search",
    "query", "vector", "sparse", "dense", "score", "answer", "source", "citation", "heading",
    "anchor", "markdown", "frontmatter", "config", "option", "environment", "variable", "secret",
    "key", "region", "stack", "function", "layer", "handler", "event", "batch", "retry", "timeout",
    "limit", "throttle", "log", "metric", "alarm", "trace", "request", "response", "client",
    "server", "session", "thread", "visitor", "widget", "domain", "origin", "cors", "header",
    "cookie", "redirect", "url", "path", "folder", "file", "asset", "image", "link", "navbar",
    "footer", "table", "list", "code", "block", "admonition", "tab", "details", "summary",
    "component", "swizzle", "mdx", "react", "node", "npm", "yarn", "install", "upgrade", "migrate",
    "release", "changelog", "test", "lint", "format", "typecheck", "pipeline",
)  # fmt: skip


def _sentence(rng: random.Random) -> str:
    words = [
        rng.choice(TERMS) if rng.random() < 0.45 else rng.choice(WORDS)
        for _ in range(rng.randint(8, 22))
    ]
    return " ".join(words).capitalize() + "."


def _paragraph(rng: random.Random) -> str:
    return " ".join(_sentence(rng) for _ in range(rng.randint(2, 6)))


def _code_block(rng: random.Random) -> str:
    lines = [
        f'<span class="token-line"><span class="token plain">{rng.choice(TERMS)}'
        f"_{rng.choice(TERMS)} = {rng.randint(1, 900)}  # {_sentence(rng)[:40]}</span></span>"
        for _ in range(rng.randint(3, 14))
    ]
    return (
        '<div class="language-python codeBlockContainer_Ckt0 theme-code-block">'
        '<div class="codeBlockContent_biex"><pre tabindex="0" class="prism-code language-python '
        'codeBlock_bY9V thin-scrollbar"><code class="codeBlockLines_e6Vv">'
        + "<br>".join(lines)
        + "</code></pre></div></div>"
    )


def _block(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.55:
        return f"<p>{_paragraph(rng)}</p>"
    if roll < 0.72:
        return _code_block(rng)
    if roll < 0.87:
        items = "".join(f"<li>{_sentence(rng)}</li>" for _ in range(rng.randint(3, 7)))
        return f"<ul>{items}</ul>"
    if roll < 0.94:
        rows = "".join(
            f"<tr><td><code>{rng.choice(TERMS)}</code></td><td>{_sentence(rng)}</td></tr>"
            for _ in range(rng.randint(2, 6))
        )
        return f"<table><thead><tr><th>Name</th><th>Meaning</th></tr></thead>{rows}</table>"
    return (
        '<div class="theme-admonition theme-admonition-tip admonition_xJq3 alert alert--success">'
        '<div class="admonitionHeading_Gvgb">tip</div>'
        f'<div class="admonitionContent_BuS1"><p>{_sentence(rng)}</p></div></div>'
    )


@dataclass(frozen=True)
class Page:
    key: str
    html: bytes


def generate_pages(count: int, *, seed: int) -> list[Page]:
    """`count` doc pages, the same bytes for the same seed."""
    rng = random.Random(seed)
    routes = []
    for number in range(count):
        section = SECTIONS[number % len(SECTIONS)]
        slug = f"{rng.choice(TERMS)}-{rng.choice(TERMS)}-{number}"
        title = f"{slug.split('-')[0].capitalize()} and {slug.split('-')[1]}"
        routes.append((f"/docs/{section}/{slug}/", title))
    sidebar = "".join(
        f'<li class="theme-doc-sidebar-item-link menu__list-item"><a class="menu__link" '
        f'href="{route}">{title}</a></li>'
        for route, title in routes
    )
    pages = []
    for route, title in routes:
        body = [f"<header><h1>{title}</h1></header>", f"<p>{_paragraph(rng)}</p>"]
        toc = []
        for _ in range(rng.randint(2, 7)):
            heading = _sentence(rng)[:48].rstrip(".")
            anchor = "-".join(heading.lower().split())
            body.append(
                f'<h2 class="anchor anchorWithStickyNavbar_LWe7" id="{anchor}">{heading}'
                f'<a href="#{anchor}" class="hash-link">\u200b</a></h2>'
            )
            body += [_block(rng) for _ in range(rng.randint(1, 6))]
            toc.append(
                f'<li><a href="#{anchor}" class="table-of-contents__link">{heading}</a></li>'
            )
        html = (
            '<!doctype html><html lang="en" dir="ltr" class="docs-wrapper plugin-docs">'
            f'<head><meta charset="UTF-8"><title>{title} | Example Docs</title>'
            f'<meta name="description" content="{_sentence(rng)}">'
            f'<link rel="canonical" href="{SITE_URL}{route}">'
            '<script src="/assets/js/runtime~main.js" defer></script></head>'
            '<body class="navigation-with-keyboard"><div id="__docusaurus">'
            '<nav class="navbar"><a class="navbar__brand" href="/">Example Docs</a></nav>'
            '<div class="main-wrapper"><aside class="theme-doc-sidebar-container">'
            f'<nav class="menu"><ul class="menu__list">{sidebar}</ul></nav></aside>'
            '<main class="docMainContainer"><div class="row"><div class="col docItemCol">'
            '<article><nav class="theme-doc-breadcrumbs"><ul class="breadcrumbs"><li>Docs</li>'
            f'</ul></nav><div class="theme-doc-markdown markdown">{"".join(body)}</div>'
            '<footer class="theme-doc-footer"><a href="https://github.com/example/edit">Edit '
            "this page</a></footer></article></div>"
            '<div class="col col--3"><ul class="table-of-contents">'
            f"{''.join(toc)}</ul></div></div></main></div>"
            '<footer class="footer">Copyright Example</footer></div></body></html>'
        )
        key = PREFIX + route.strip("/") + "/index.html"
        pages.append(Page(key=key, html=html.encode()))
    return pages


# --- Lambda, played by this script ------------------------------------------------------------


@dataclass
class LambdaContext:
    function_name: str = "docsrag-ingest"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:docsrag-ingest"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/docsrag-ingest"
    log_stream_name: str = "2025/01/15/[$LATEST]bench"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


def load_ingest_handler() -> ModuleType:
    """`functions/ingest/app.py`, imported from its file as Lambda imports `ingest.app`."""
    path = REPO / "functions" / "ingest" / "app.py"
    spec = importlib.util.spec_from_file_location("bench_ingest_app", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class EmbeddingClock:
    """Wall time spent inside `DenseEmbedder.embed_documents` (requests to the fake server)."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def install(self) -> None:
        from docsrag.embeddings import DenseEmbedder

        original: Callable[..., list[list[float]]] = DenseEmbedder.embed_documents
        clock = self

        def timed(self: DenseEmbedder, texts: Sequence[str]) -> list[list[float]]:
            started = time.perf_counter()
            try:
                return original(self, texts)
            finally:
                clock.seconds += time.perf_counter() - started

        DenseEmbedder.embed_documents = timed  # type: ignore[method-assign]


@dataclass
class Pass:
    name: str
    pages: int
    seconds: float = 0.0  # inside the handler
    embedding_seconds: float = 0.0
    drain_seconds: float = 0.0  # handler + moto's receive/delete
    batches: int = 0
    failed: int = 0
    embedding_requests: int = 0
    chunks_embedded: int = 0

    def report(self) -> str:
        own = self.seconds - self.embedding_seconds
        return (
            f"{self.name:<20}{self.pages:>6}{self.batches:>9}{self.failed:>8}"
            f"{self.seconds:>10.2f}{self.embedding_seconds:>10.2f}{own:>10.2f}"
            f"{self.pages / own:>10.1f}{self.embedding_requests / self.pages:>10.2f}"
            f"{self.chunks_embedded / self.pages:>10.2f}{self.drain_seconds:>10.2f}"
        )


HEADER = (
    f"{'pass':<20}{'pages':>6}{'batches':>9}{'failed':>8}{'handler':>10}{'embed':>10}"
    f"{'own':>10}{'pages/s':>10}{'req/page':>10}{'chunk/pg':>10}{'drain':>10}"
)


def drain(
    *, handler: ModuleType, sqs: Any, queue_url: str, queue_arn: str, clock: EmbeddingClock,
    fake: FakeOpenAI, result: Pass,
) -> None:  # fmt: skip
    """Deliver every message in batches of up to 10, as Lambda's SQS event source does."""
    fake.reset()
    embedding_before = clock.seconds
    drain_started = time.perf_counter()
    while True:
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["All"]
        ).get("Messages", [])
        if not messages:
            break
        event = {
            "Records": [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": m.get("Attributes", {}),
                    "messageAttributes": {},
                    "md5OfBody": m["MD5OfBody"],
                    "eventSource": "aws:sqs",
                    "eventSourceARN": queue_arn,
                    "awsRegion": REGION,
                }
                for m in messages
            ]
        }
        started = time.perf_counter()
        response = handler.handler(event, LambdaContext())
        result.seconds += time.perf_counter() - started
        result.batches += 1
        failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
        result.failed += len(failed)
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[
                    {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(done)
                ],
            )
    result.drain_seconds = time.perf_counter() - drain_started
    result.embedding_seconds = clock.seconds - embedding_before
    result.embedding_requests = fake.embedding_calls
    result.chunks_embedded = sum(
        len(request.json["input"]) if isinstance(request.json["input"], list) else 1
        for request in fake.embedding_requests
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    # Metrics are off outside Lambda; Powertools warns once per invocation that none were added.
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    pages = generate_pages(args.pages, seed=args.seed)
    total_bytes = sum(len(page.html) for page in pages)
    print(
        f"{len(pages)} generated Docusaurus pages (seed {args.seed}), "
        f"{total_bytes / len(pages) / 1024:.0f} KB each on average"
    )
    with (
        FakeOpenAI() as fake,
        tempfile.TemporaryDirectory() as tmp,
        mock_aws(),
    ):
        os.chdir(tmp)  # no .env from the working directory, as on Lambda
        os.environ.update(
            {
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "POWERTOOLS_SERVICE_NAME": "docsrag",
                "POWERTOOLS_METRICS_NAMESPACE": "DocsRag",
                "LOG_LEVEL": "WARNING",  # one INFO line per page would time the terminal
                "METRICS_ENABLED": "false",
                "SITE_URL": SITE_URL,
                "KEY_PREFIX": PREFIX,
                "DOCS_ROUTE_BASE_PATH": "docs",
                "DOCS_BUCKET": BUCKET,
                "QDRANT_PATH": str(Path(tmp) / "qdrant"),
                "COLLECTION_NAME": "docs",
                "EMBEDDING_MODEL": "openai/text-embedding-3-small",
                "EMBEDDING_DIMENSIONS": "1536",
                "OPENROUTER_API_KEY": fake.api_key,
                "OPENROUTER_BASE_URL": fake.base_url,
            }
        )
        s3 = boto3.client("s3", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        queue_url = sqs.create_queue(QueueName="docsrag-IngestQueue")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        s3.put_bucket_notification_configuration(
            Bucket=BUCKET,
            NotificationConfiguration={
                "QueueConfigurations": [
                    {
                        "QueueArn": queue_arn,
                        "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"],
                        "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": PREFIX}]}},
                    }
                ]
            },
        )

        clock = EmbeddingClock()
        clock.install()
        started = time.perf_counter()
        handler = load_ingest_handler()
        print(f"handler import: {time.perf_counter() - started:.2f} s (not counted below)")

        results = []
        for name in ("upload", "re-upload unchanged"):
            upload_started = time.perf_counter()
            for page in pages:
                s3.put_object(Bucket=BUCKET, Key=page.key, Body=page.html, ContentType="text/html")
            upload_seconds = time.perf_counter() - upload_started
            result = Pass(name=name, pages=len(pages))
            drain(
                handler=handler, sqs=sqs, queue_url=queue_url, queue_arn=queue_arn, clock=clock,
                fake=fake, result=result,
            )  # fmt: skip
            print(f"{name}: {len(pages)} puts to moto in {upload_seconds:.2f} s")
            results.append(result)
        handler._forget_clients()

    print()
    print(
        "handler = time inside the handler; embed = of which in embedding requests (fake "
        "server); own = handler - embed; pages/s on own; drain adds moto's SQS calls"
    )
    print(HEADER)
    for result in results:
        print(result.report())
    first, second = results
    print()
    print(
        f"first upload: {first.pages / (first.seconds - first.embedding_seconds):.1f} pages/s "
        f"excluding embedding latency, {first.embedding_requests / first.pages:.2f} embedding "
        f"requests and {first.chunks_embedded / first.pages:.1f} chunks per page"
    )
    print(
        f"unchanged re-upload: {second.pages / (second.seconds - second.embedding_seconds):.1f} "
        f"pages/s, {second.embedding_requests} embedding requests"
    )
    ok = first.failed == 0 and second.failed == 0 and second.embedding_requests == 0
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
