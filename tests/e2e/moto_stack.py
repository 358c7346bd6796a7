"""A docsrag deployment on moto: the docs bucket, the ingest queue and its S3 notifications, the
OpenRouter key in Secrets Manager, and both Lambda handlers loaded from their files.

Lambda is played by this module: it receives the queue's messages with boto3, wraps them in the
SQS event JSON Lambda delivers, calls the ingest handler, and deletes the messages the handler did
not report in `batchItemFailures` (failed ones stay in flight, as on AWS). The chat handler gets
API Gateway HTTP API (payload v2) events built from `events/chat_http_api_v2.json`.

Both functions share one embedded Qdrant folder. The embedded store admits one client at a time,
so the two "containers" take turns: before one handler runs, the other's Qdrant client is closed
(its next invocation opens it again, like a fresh container). On AWS they share Qdrant Cloud.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from tests.fakes.openai_server import FakeOpenAI

REPO_ROOT = Path(__file__).resolve().parents[2]
EVENTS = REPO_ROOT / "events"
REGION = "eu-central-1"
ACCOUNT = "123456789012"
SITE_URL = "https://docs.example.org"
KEY_PREFIX = "site/"


@dataclass
class LambdaContext:
    """The attributes of Lambda's context object that Powertools and Mangum read."""

    function_name: str
    memory_limit_in_mb: int = 1024
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/docsrag"
    log_stream_name: str = "2025/01/15/[$LATEST]0123456789abcdef"
    function_version: str = "$LATEST"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


@dataclass
class EndingInvocation(LambdaContext):
    """A Lambda context whose invocation ends `seconds_left` after it is made."""

    seconds_left: float = 5.0
    started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.started + self.seconds_left - time.monotonic()) * 1000))


def load_handler(name: str) -> ModuleType:
    """A fresh import of `functions/<name>/app.py`, as a new Lambda container would do it."""
    path = REPO_ROOT / "functions" / name / "app.py"
    spec = importlib.util.spec_from_file_location(f"e2e_{name}_app_{uuid.uuid4().hex}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sqs_event(messages: Iterable[Mapping[str, Any]], *, queue_arn: str) -> dict[str, Any]:
    """Messages from `sqs.receive_message` as Lambda's SQS event source delivers them."""
    return {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": dict(message.get("Attributes", {})),
                "messageAttributes": dict(message.get("MessageAttributes", {})),
                "md5OfBody": message["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            }
            for message in messages
        ]
    }


def http_api_event(method: str, path: str, body: Any = None) -> dict[str, Any]:
    """An API Gateway HTTP API v2 event for `method path`, from the recorded template."""
    event: dict[str, Any] = copy.deepcopy(
        json.loads((EVENTS / "chat_http_api_v2.json").read_text())
    )
    text = json.dumps(body) if body is not None else None
    event["routeKey"] = event["requestContext"]["routeKey"] = f"{method} {path}"
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    event["requestContext"]["requestId"] = uuid.uuid4().hex[:16]
    headers = event["headers"]
    headers.pop("content-length", None)
    if text is None:
        event.pop("body", None)
        headers.pop("content-type", None)
    else:
        event["body"] = text
        headers["content-length"] = str(len(text.encode()))
    return event


@dataclass(frozen=True)
class Emf:
    """The metrics of one CloudWatch Embedded Metric Format line: name -> summed value."""

    values: dict[str, float]

    def __getitem__(self, name: str) -> float:
        return self.values.get(name, 0.0)


def emf_lines(stdout: str) -> list[Emf]:
    """Every EMF document printed to stdout (Powertools prints one per flushed invocation)."""
    found = []
    for line in stdout.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            document = json.loads(line)
        except ValueError:
            continue
        if not isinstance(document, dict) or "_aws" not in document:
            continue
        names = [
            metric["Name"]
            for directive in document["_aws"]["CloudWatchMetrics"]
            for metric in directive["Metrics"]
        ]
        values = {}
        for name in names:
            value = document[name]
            values[name] = float(sum(value) if isinstance(value, list) else value)
        found.append(Emf(values))
    return found


@dataclass
class Deployment:
    """The stack: moto clients, the two handler modules, and the fake model endpoint."""

    s3: Any
    sqs: Any
    bucket: str
    queue_url: str
    queue_arn: str
    dlq_url: str
    fake: FakeOpenAI
    ingest_app: ModuleType | None = None
    chat_app: ModuleType | None = None
    ingest_context: LambdaContext = field(
        default_factory=lambda: LambdaContext(function_name="docsrag-ingest")
    )
    chat_context: LambdaContext = field(
        default_factory=lambda: LambdaContext(function_name="docsrag-chat")
    )
    # Failed messages (id -> receipt handle) waiting for their visibility timeout.
    in_flight: dict[str, str] = field(default_factory=dict)

    # --- the bucket -------------------------------------------------------------------------

    def upload(self, key: str, body: bytes | str, *, content_type: str = "text/html") -> None:
        data = body.encode() if isinstance(body, str) else body
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)

    def upload_folder(self, root: Path, *, prefix: str = KEY_PREFIX) -> list[str]:
        """`aws s3 sync root s3://bucket/prefix`: every file, keys with `/`."""
        keys = []
        for path in sorted(root.rglob("*")):
            if path.is_file():
                key = prefix + path.relative_to(root).as_posix()
                self.upload(key, path.read_bytes())
                keys.append(key)
        return keys

    def delete(self, key: str) -> None:
        self.s3.delete_object(Bucket=self.bucket, Key=key)

    # --- the queue and the ingest function ----------------------------------------------------

    def receive(self, *, max_messages: int = 10) -> list[dict[str, Any]]:
        """Up to `max_messages` visible messages (in flight until deleted or made visible)."""
        response = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=max_messages,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages: list[dict[str, Any]] = response.get("Messages", [])
        return messages

    def receive_all(self) -> list[dict[str, Any]]:
        """Every visible message, in the order the queue gives them (all left in flight)."""
        messages = []
        while batch := self.receive():
            messages.extend(batch)
        return messages

    def send_raw(self, body: str) -> None:
        """A message that did not come from S3 (a wrong producer, a hand-made redrive)."""
        self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=body)

    def invoke_ingest(self, event: dict[str, Any]) -> dict[str, Any]:
        self._stop_chat_container()
        if self.ingest_app is None:
            self.ingest_app = load_handler("ingest")
        result: dict[str, Any] = self.ingest_app.handler(event, self.ingest_context)
        return result

    def deliver(self, messages: list[dict[str, Any]]) -> list[str]:
        """One SQS batch through the ingest handler, as Lambda's event source mapping does it:
        messages not reported in `batchItemFailures` are deleted, failed ones stay in flight.
        Returns the failed message ids."""
        if not messages:
            return []
        response = self.invoke_ingest(sqs_event(messages, queue_arn=self.queue_arn))
        failed = [item["itemIdentifier"] for item in response["batchItemFailures"]]
        done = [m for m in messages if m["MessageId"] not in failed]
        for message in messages:
            if message["MessageId"] in failed:
                self.in_flight[message["MessageId"]] = message["ReceiptHandle"]
        for start in range(0, len(done), 10):
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]}
                    for n, m in enumerate(done[start : start + 10])
                ],
            )
        return failed

    def drain(self) -> list[str]:
        """Deliver every visible message in batches of 10 until the queue is empty. A failed
        message is retried (its visibility timeout is taken as passed) until the queue's redrive
        policy moves it to the dead-letter queue. Returns the ids that ever failed."""
        failed: list[str] = []
        self._visibility_timeout_passes()
        while batch := self.receive():
            for message_id in self.deliver(batch):
                if message_id not in failed:
                    failed.append(message_id)
            self._visibility_timeout_passes()
        return failed

    def _visibility_timeout_passes(self) -> None:
        """Failed messages become visible again (the queue's visibility timeout has passed)."""
        for handle in self.in_flight.values():
            self.sqs.change_message_visibility(
                QueueUrl=self.queue_url, ReceiptHandle=handle, VisibilityTimeout=0
            )
        self.in_flight.clear()

    def dead_letters(self) -> list[str]:
        """Bodies of the messages in the dead-letter queue."""
        response = self.sqs.receive_message(
            QueueUrl=self.dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=900
        )
        return [message["Body"] for message in response.get("Messages", [])]

    def purge(self) -> None:
        """Lose every pending notification (what reconcile exists to repair)."""
        for message in self.receive_all():
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    # --- the chat function ----------------------------------------------------------------------

    def invoke_chat(self, event: dict[str, Any]) -> dict[str, Any]:
        self._stop_ingest_container()
        if self.chat_app is None:
            self.chat_app = load_handler("chat")
        result: dict[str, Any] = self.chat_app.handler(event, self.chat_context)
        return result

    def ask(self, question: str) -> dict[str, Any]:
        """`POST /chat` through the chat handler; the parsed JSON body (asserts HTTP 200)."""
        response = self.invoke_chat(http_api_event("POST", "/chat", {"message": question}))
        assert response["statusCode"] == 200, response
        body: dict[str, Any] = json.loads(response["body"])
        return body

    def cited_urls(self, question: str) -> list[str]:
        return [source["url"] for source in self.ask(question)["sources"]]

    # --- containers ------------------------------------------------------------------------------

    def _stop_ingest_container(self) -> None:
        if self.ingest_app is not None:
            self.ingest_app._forget_clients()

    def _stop_chat_container(self) -> None:
        if self.chat_app is not None:
            self.chat_app.app.state.provider.close()

    def redeploy(self) -> None:
        """New code or configuration: both functions start again in new containers and read
        their environment (settings, secrets) anew."""
        self.close()
        self.ingest_app = self.chat_app = None

    def close(self) -> None:
        self._stop_ingest_container()
        self._stop_chat_container()


def docusaurus_page(
    title: str, sections: Mapping[str, str], *, lead: str = "", path: str | None = None
) -> str:
    """A doc page shaped like Docusaurus 3 build output: navbar, sidebar, article with
    `div.theme-doc-markdown`, `h2.anchor` headings with hash links, table of contents, footer.
    `sections` maps heading text to its paragraph; anchors are the headings slugified."""
    canonical = f'<link rel="canonical" href="{SITE_URL}{path}">' if path else ""
    body = [f"<header><h1>{title}</h1></header>"]
    if lead:
        body.append(f"<p>{lead}</p>")
    toc = []
    for heading, text in sections.items():
        anchor = "-".join(heading.lower().split())
        body.append(
            f'<h2 class="anchor anchorWithStickyNavbar_abc" id="{anchor}">{heading}'
            f'<a href="#{anchor}" class="hash-link" aria-label="Direct link to {heading}" '
            f'title="Direct link to {heading}">\u200b</a></h2>'
        )
        body.append(f"<p>{text}</p>")
        toc.append(f'<li><a href="#{anchor}" class="table-of-contents__link">{heading}</a></li>')
    return f"""<!doctype html>
<html lang="en" dir="ltr" class="docs-wrapper plugin-docs plugin-id-default docs-version-current">
<head><meta charset="UTF-8"><title>{title} | Example Docs</title>
<meta name="description" content="{title}">{canonical}</head>
<body class="navigation-with-keyboard"><div id="__docusaurus">
<nav class="navbar"><a class="navbar__brand" href="/">Example Docs</a>
<a class="navbar__item" href="/docs/">Docs</a></nav>
<div class="main-wrapper"><div class="docsWrapper_abc"><div class="docRoot_abc">
<aside class="theme-doc-sidebar-container"><nav class="menu"><ul class="menu__list">
<li><a class="menu__link" href="/docs/">Introduction</a></li></ul></nav></aside>
<main class="docMainContainer_abc"><div class="container padding-top--md padding-bottom--lg">
<div class="row"><div class="col docItemCol_abc"><div class="docItemContainer_abc"><article>
<nav class="theme-doc-breadcrumbs"><ul class="breadcrumbs"><li>Docs</li></ul></nav>
<div class="tocCollapsible_abc theme-doc-toc-mobile">
<button type="button">On this page</button></div>
<div class="theme-doc-markdown markdown">{"".join(body)}</div>
<footer class="theme-doc-footer docusaurus-mt-lg">
<a href="https://github.com/example/edit">Edit this page</a></footer>
</article><nav class="pagination-nav docusaurus-mt-lg" aria-label="Docs pages"></nav></div></div>
<div class="col col--3"><div class="tableOfContents_abc thin-scrollbar theme-doc-toc-desktop">
<ul class="table-of-contents table-of-contents__left-border">{"".join(toc)}</ul></div></div>
</div></div></main></div></div></div>
<footer class="footer footer--dark"><div class="footer__copyright">Copyright Example</div></footer>
</div></body></html>
"""
