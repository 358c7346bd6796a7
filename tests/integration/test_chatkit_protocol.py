"""The ChatKit protocol end to end: real ChatKit request JSON through the FastAPI app (and through
Mangum with API Gateway HTTP API v2 events), a temporary embedded Qdrant seeded by the Ingestor,
the loopback fake OpenRouter, and the real thread stores (SQLite; DynamoDB on moto).

Every streamed event is validated with chatkit's own pydantic types.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from chatkit.server import StreamingResult
from chatkit.types import (
    AssistantMessageContentPartDone,
    AssistantMessageContentPartTextDelta,
    AssistantMessageItem,
    ErrorEvent,
    ThreadCreatedEvent,
    ThreadItemAddedEvent,
    ThreadItemDoneEvent,
    ThreadItemUpdatedEvent,
    ThreadStreamEvent,
    ThreadUpdatedEvent,
    URLSource,
    UserMessageItem,
)
from fastapi import FastAPI
from mangum import Mangum
from pydantic import SecretStr, TypeAdapter

from docsrag import telemetry
from docsrag.answering import NOT_COVERED_TEXT, NOTICES
from docsrag.api import create_app
from docsrag.chatkit.context import RequestContext
from docsrag.chatkit.server import SEARCH_UNAVAILABLE_TEXT
from docsrag.chatkit.stores import create_threads_table
from docsrag.chatkit.visitor import issue_token, verify_token
from docsrag.config import Settings
from docsrag.container import Container
from tests.fakes.openai_server import FakeOpenAI
from tests.ratewindow import clear_of_window_boundary

REPO_ROOT = Path(__file__).resolve().parents[2]
SIGNING_KEY = "docsrag-test-visitor-signing-key-0123456789"
SITE_URL = "https://docs.example.org"
TABLE = "docsrag-threads-test"
EVENT_ADAPTER = TypeAdapter[ThreadStreamEvent](ThreadStreamEvent)

PAGES = {
    "installation.md": """---
title: Installation
---

Docusaurus is a static site generator for documentation websites.

## Install with npm

Run `npm install @docusaurus/core @docusaurus/preset-classic` in the project folder to install
Docusaurus with npm.

## Requirements

Node.js version 18.0 or above is required. Check the installed Node.js version with `node -v`.
""",
    "deployment.md": """---
title: Deployment
---

Run `npm run build` to produce static files in the build directory, then host them anywhere.

## Deploying to Netlify

Connect the repository in the Netlify dashboard. Set the Netlify build command to
`npm run build` and the publish directory to `build`. Netlify deploys every push.
""",
    "search.md": """---
title: Search
---

Add full-text search to the site with Algolia DocSearch or a local search plugin.

## Using Algolia DocSearch

Apply to the Algolia DocSearch program, then put `appId`, `apiKey` and `indexName` under
`themeConfig.algolia` in docusaurus.config.js. The Algolia search bar appears in the navbar.
""",
}

QUESTIONS = (
    "How do I install Docusaurus with npm?",
    "How do I deploy the site to Netlify?",
    "How do I add Algolia DocSearch search?",
)


# --- Environment ------------------------------------------------------------------------------


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    root.mkdir()
    for name, text in PAGES.items():
        (root / name).write_text(text)
    return root


def make_settings(tmp_path: Path, fake: FakeOpenAI, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "openrouter_api_key": fake.api_key,
        "openrouter_base_url": fake.base_url,
        "llm_max_retries": 0,
        "llm_timeout_seconds": 5,
        "embedding_dimensions": 64,
        "embedding_max_retries": 0,
        "qdrant_path": tmp_path / "qdrant",
        "chatkit_sqlite_path": tmp_path / "chatkit.sqlite3",
        "site_url": SITE_URL,
        "visitor_token_keys": SIGNING_KEY,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def build_container(settings: Settings, site: Path, *, dynamodb: Any = None) -> Container:
    container = Container.build(settings, dynamodb=dynamodb)
    summary = container.ingestor().sync_folder(site)
    assert summary.added == len(PAGES)
    return container


def indexed_urls(container: Container) -> set[str]:
    """Every citation URL the index can produce: settings.public_url(path, anchor) for each
    section a chunk covers (a chunk of several tiny sections cites the one asked about)."""
    records, _ = container.qdrant.scroll(
        container.index.collection, limit=1000, with_payload=["path", "anchor", "anchors"]
    )
    return {
        container.settings.public_url(record.payload["path"], anchor)
        for record in records
        if record.payload
        for anchor in (record.payload.get("anchors") or [record.payload["anchor"]])
    }


@dataclass
class Env:
    settings: Settings
    container: Container
    http: httpx.AsyncClient
    fake: FakeOpenAI
    app: FastAPI

    async def visitor(self) -> Visitor:
        response = await self.http.post("/session")
        assert response.status_code == 200
        return Visitor(self.http, response.json()["token"])


@asynccontextmanager
async def running_app(
    tmp_path: Path, site: Path, fake: FakeOpenAI, *, dynamodb: Any = None, **overrides: Any
) -> AsyncIterator[Env]:
    if dynamodb is not None:
        create_threads_table(dynamodb, TABLE)
        overrides["threads_table"] = TABLE
    settings = make_settings(tmp_path, fake, **overrides)
    container = build_container(settings, site, dynamodb=dynamodb)
    app = create_app(settings=settings, container=container)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://docsrag.test") as http:
            yield Env(settings=settings, container=container, http=http, fake=fake, app=app)
    finally:
        app.state.provider.close()
        container.close()
        if dynamodb is not None:
            dynamodb.delete_table(TableName=TABLE)


@pytest.fixture(params=["sqlite", "dynamodb"])
async def env(
    request: pytest.FixtureRequest, tmp_path: Path, site: Path, fake_openai: FakeOpenAI
) -> AsyncIterator[Env]:
    dynamodb = request.getfixturevalue("moto_dynamodb") if request.param == "dynamodb" else None
    async with running_app(tmp_path, site, fake_openai, dynamodb=dynamodb) as running:
        yield running


@pytest.fixture
async def sqlite_env(tmp_path: Path, site: Path, fake_openai: FakeOpenAI) -> AsyncIterator[Env]:
    async with running_app(tmp_path, site, fake_openai) as running:
        yield running


# --- ChatKit requests as the widget sends them --------------------------------------------------


def user_input(text: str) -> dict[str, Any]:
    return {
        "content": [{"type": "input_text", "text": text}],
        "attachments": [],
        "inference_options": {},
    }


def create_request(text: str) -> dict[str, Any]:
    return {"type": "threads.create", "params": {"input": user_input(text)}}


def add_message_request(thread_id: str, text: str) -> dict[str, Any]:
    return {
        "type": "threads.add_user_message",
        "params": {"thread_id": thread_id, "input": user_input(text)},
    }


def parse_sse(body: str) -> list[ThreadStreamEvent]:
    """Every `data:` block of an SSE body, validated as a chatkit ThreadStreamEvent."""
    events = []
    for block in body.split("\n\n"):
        if not block.strip():
            continue
        assert block.startswith("data: "), block
        events.append(EVENT_ADAPTER.validate_json(block.removeprefix("data: ")))
    return events


class Visitor:
    def __init__(self, http: httpx.AsyncClient, token: str) -> None:
        self.http = http
        self.token = token

    async def send(self, payload: dict[str, Any] | bytes) -> httpx.Response:
        headers = {"x-visitor-token": self.token, "content-type": "application/json"}
        content = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        return await self.http.post("/chatkit", content=content, headers=headers)

    async def stream(self, payload: dict[str, Any]) -> list[ThreadStreamEvent]:
        response = await self.send(payload)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/event-stream")
        return parse_sse(response.text)

    async def call(self, payload: dict[str, Any]) -> Any:
        response = await self.send(payload)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/json"
        return response.json()

    async def start_thread(self, question: str) -> tuple[str, list[ThreadStreamEvent]]:
        events = await self.stream(create_request(question))
        created = events[0]
        assert isinstance(created, ThreadCreatedEvent)
        return created.thread.id, events

    async def items(self, thread_id: str) -> list[dict[str, Any]]:
        page = await self.call(
            {"type": "items.list", "params": {"thread_id": thread_id, "order": "asc"}}
        )
        return list(page["data"])

    async def thread_ids(self) -> list[str]:
        page = await self.call({"type": "threads.list", "params": {}})
        return [thread["id"] for thread in page["data"]]


@dataclass
class StreamedAnswer:
    item: AssistantMessageItem
    streamed_text: str
    events: list[ThreadStreamEvent]


def streamed_answer(events: list[ThreadStreamEvent]) -> StreamedAnswer:
    """The one assistant message of a turn, checked for consistent ids and text on the wire."""
    assert not [event for event in events if isinstance(event, ErrorEvent)]
    done = [
        event.item
        for event in events
        if isinstance(event, ThreadItemDoneEvent) and isinstance(event.item, AssistantMessageItem)
    ]
    assert len(done) == 1
    item = done[0]
    assert item.id.startswith("msg_") and item.id != "__fake_id__"
    added = [event.item.id for event in events if isinstance(event, ThreadItemAddedEvent)]
    updated = {event.item_id for event in events if isinstance(event, ThreadItemUpdatedEvent)}
    assert set(added) <= {item.id}
    assert updated <= {item.id}
    deltas = [
        event.update.delta
        for event in events
        if isinstance(event, ThreadItemUpdatedEvent)
        and isinstance(event.update, AssistantMessageContentPartTextDelta)
    ]
    part_done = [
        event.update.content
        for event in events
        if isinstance(event, ThreadItemUpdatedEvent)
        and isinstance(event.update, AssistantMessageContentPartDone)
    ]
    if part_done:
        assert part_done[-1] == item.content[0]  # the replacement the widget renders
    else:
        assert not deltas
    return StreamedAnswer(item=item, streamed_text="".join(deltas), events=events)


def check_annotations(item: AssistantMessageItem | dict[str, Any], urls: set[str]) -> list[str]:
    """Annotations are URL sources from the index at valid offsets; returns their URLs."""
    if isinstance(item, dict):
        item = AssistantMessageItem.model_validate(item)
    (content,) = item.content
    assert content.annotations, "an answer from the docs shows its sources"
    found = []
    for annotation in content.annotations:
        assert isinstance(annotation.source, URLSource)
        assert annotation.source.url in urls
        assert annotation.source.title
        assert annotation.index is not None and 0 < annotation.index <= len(content.text)
        if annotation.index < len(content.text) or content.text.endswith("]"):
            assert content.text[: annotation.index].endswith("]")  # right after a marker
        found.append(annotation.source.url)
    return found


# --- The conversation ---------------------------------------------------------------------------


async def test_a_three_turn_conversation_keeps_three_cited_answers(env: Env) -> None:
    alice = await env.visitor()
    urls = indexed_urls(env.container)

    thread_id, first = await alice.start_thread(QUESTIONS[0])
    second = await alice.stream(add_message_request(thread_id, QUESTIONS[1]))
    third = await alice.stream(add_message_request(thread_id, QUESTIONS[2]))

    answers = [streamed_answer(events) for events in (first, second, third)]
    assert len({answer.item.id for answer in answers}) == 3
    for answer, page in zip(answers, ("installation", "deployment", "search"), strict=True):
        # What streamed is what is stored, citations renumbered from [1], with its sources.
        assert answer.streamed_text == answer.item.content[0].text
        assert "[1]" in answer.streamed_text
        cited = check_annotations(answer.item, urls)
        assert cited[0].startswith(f"{SITE_URL}/docs/{page}")
    # The title comes from the first question, set during the first turn.
    titles = [event.thread.title for event in first if isinstance(event, ThreadUpdatedEvent)]
    assert titles == [QUESTIONS[0]]

    items = await alice.items(thread_id)
    assert [item["type"] for item in items] == ["user_message", "assistant_message"] * 3
    assert [item["id"] for item in items[1::2]] == [answer.item.id for answer in answers]
    for stored, answer in zip(items[1::2], answers, strict=True):
        assert AssistantMessageItem.model_validate(stored) == answer.item.model_copy(
            update={"created_at": AssistantMessageItem.model_validate(stored).created_at}
        )
        check_annotations(stored, urls)

    # The third model call saw the conversation as plain text: no old sources, no old markers.
    messages = env.fake.chat_requests[-1].json["messages"]
    assert [message["role"] for message in messages] == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
    ]
    assert [message["content"] for message in messages[1::2]] == list(QUESTIONS)
    for message in messages[2:5:2]:
        assert "[1]" not in message["content"]
        assert "SOURCES" not in message["content"]
    assert "Algolia" in messages[0]["content"]


async def test_threads_can_be_listed_read_renamed_and_deleted(env: Env) -> None:
    alice = await env.visitor()
    first_id, _ = await alice.start_thread(QUESTIONS[0])
    second_id, _ = await alice.start_thread(QUESTIONS[1])

    assert await alice.thread_ids() == [second_id, first_id]  # newest first
    thread = await alice.call({"type": "threads.get_by_id", "params": {"thread_id": first_id}})
    assert thread["title"] == QUESTIONS[0]
    assert [item["type"] for item in thread["items"]["data"]] == [
        "user_message",
        "assistant_message",
    ]

    renamed = await alice.call(
        {"type": "threads.update", "params": {"thread_id": first_id, "title": "Installing"}}
    )
    assert renamed["title"] == "Installing"
    again = await alice.call({"type": "threads.get_by_id", "params": {"thread_id": first_id}})
    assert again["title"] == "Installing"

    assert await alice.call({"type": "threads.delete", "params": {"thread_id": first_id}}) == {}
    assert await alice.thread_ids() == [second_id]
    gone = await alice.send({"type": "threads.get_by_id", "params": {"thread_id": first_id}})
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "not_found"


async def test_retrying_a_question_replaces_its_answer(sqlite_env: Env) -> None:
    alice = await sqlite_env.visitor()
    thread_id, _ = await alice.start_thread(QUESTIONS[0])
    first_items = await alice.items(thread_id)

    events = await alice.stream(
        {
            "type": "threads.retry_after_item",
            "params": {"thread_id": thread_id, "item_id": first_items[0]["id"]},
        }
    )

    answer = streamed_answer(events)
    items = await alice.items(thread_id)
    assert [item["id"] for item in items] == [first_items[0]["id"], answer.item.id]
    assert answer.item.id != first_items[1]["id"]


async def test_feedback_is_stored_and_counted(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METRICS_ENABLED", "1")
    telemetry.metrics.clear_metrics()
    alice = await env.visitor()
    thread_id, events = await alice.start_thread(QUESTIONS[0])
    answer_id = streamed_answer(events).item.id

    response = await alice.call(
        {
            "type": "items.feedback",
            "params": {"thread_id": thread_id, "item_ids": [answer_id], "kind": "negative"},
        }
    )
    changed = await alice.call(
        {
            "type": "items.feedback",
            "params": {"thread_id": thread_id, "item_ids": [answer_id], "kind": "positive"},
        }
    )
    unknown = await alice.send(
        {
            "type": "items.feedback",
            "params": {"thread_id": thread_id, "item_ids": ["msg_unknown"], "kind": "positive"},
        }
    )

    assert response == changed == {}
    assert unknown.status_code == 404
    owner = RequestContext(visitor_id=verify_token(alice.token, key=SIGNING_KEY.encode()))
    stored = await env.container.chatkit_store().load_feedback(thread_id, owner)
    assert stored == {answer_id: "positive"}
    metric_set = telemetry.metrics.metric_set
    assert metric_set["FeedbackNegative"]["Value"] == [1.0]
    assert metric_set["FeedbackPositive"]["Value"] == [1.0]
    telemetry.metrics.clear_metrics()


# --- Visitors and tokens --------------------------------------------------------------------------


async def test_visitors_never_see_or_touch_each_others_threads(env: Env) -> None:
    alice, bob = await env.visitor(), await env.visitor()
    thread_id, _ = await alice.start_thread(QUESTIONS[0])
    alice_items = await alice.items(thread_id)
    item_id = alice_items[1]["id"]

    assert await bob.thread_ids() == []
    refused = [
        await bob.send({"type": "threads.get_by_id", "params": {"thread_id": thread_id}}),
        await bob.send({"type": "items.list", "params": {"thread_id": thread_id}}),
        await bob.send(add_message_request(thread_id, "What is in your thread?")),
        await bob.send(
            {"type": "threads.update", "params": {"thread_id": thread_id, "title": "Mine"}}
        ),
        await bob.send(
            {
                "type": "items.feedback",
                "params": {"thread_id": thread_id, "item_ids": [item_id], "kind": "negative"},
            }
        ),
        await bob.send(
            {
                "type": "threads.retry_after_item",
                "params": {"thread_id": thread_id, "item_id": alice_items[0]["id"]},
            }
        ),
        await bob.send({"type": "threads.delete", "params": {"thread_id": thread_id}}),
    ]

    # A streaming request (add_user_message) is a real 404 too, not a broken 200 stream.
    assert [response.status_code for response in refused] == [404] * len(refused)
    assert {response.headers["content-type"] for response in refused} == {"application/json"}
    assert await alice.thread_ids() == [thread_id]
    assert await alice.items(thread_id) == alice_items
    thread = await alice.call({"type": "threads.get_by_id", "params": {"thread_id": thread_id}})
    assert thread["title"] == QUESTIONS[0]


async def test_requests_without_a_valid_token_are_refused(sqlite_env: Env) -> None:
    alice = await sqlite_env.visitor()
    await alice.start_thread(QUESTIONS[0])
    key = SIGNING_KEY.encode()
    payload, signature = alice.token.split(".")
    forged_signature = ("A" if signature[0] != "A" else "B") + signature[1:]
    expired = issue_token(key=key, ttl_seconds=60, now=time.time() - 3600).token
    other_key = issue_token(key=b"another-signing-key-0123456789abcdef", ttl_seconds=60).token
    list_threads = {"type": "threads.list", "params": {}}

    no_token = await sqlite_env.http.post("/chatkit", json=list_threads)
    refused = [
        await Visitor(sqlite_env.http, token).send(list_threads)
        for token in (f"{payload}.{forged_signature}", expired, other_key, "not-a-token")
    ]

    for response in [no_token, *refused]:
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_visitor_token"
    assert len(await alice.thread_ids()) == 1


async def test_session_renews_a_valid_token_for_the_same_visitor(sqlite_env: Env) -> None:
    alice = await sqlite_env.visitor()
    thread_id, _ = await alice.start_thread(QUESTIONS[0])

    renewed = await sqlite_env.http.post("/session", headers={"x-visitor-token": alice.token})
    replaced = await sqlite_env.http.post("/session", headers={"x-visitor-token": "garbage"})

    assert renewed.status_code == replaced.status_code == 200
    assert renewed.headers["cache-control"] == "no-store"
    assert renewed.json()["renewed"] is True
    assert renewed.json()["expires_at"] > time.time() + 29 * 86_400
    assert await Visitor(sqlite_env.http, renewed.json()["token"]).thread_ids() == [thread_id]
    assert replaced.json()["renewed"] is False
    assert await Visitor(sqlite_env.http, replaced.json()["token"]).thread_ids() == []


async def test_rotated_signing_keys_apply_after_a_provider_reset(sqlite_env: Env) -> None:
    # GIVEN Alice's thread under the current key
    alice = await sqlite_env.visitor()
    thread_id, _ = await alice.start_thread(QUESTIONS[0])
    new_key = "docsrag-test-rotated-signing-key-0123456789"
    provider = sqlite_env.app.state.provider

    # WHEN a new key is added in front (as after a SnapStart restore reading the secret again)
    keys = [SecretStr(new_key), SecretStr(SIGNING_KEY)]
    provider.reset(sqlite_env.settings.model_copy(update={"visitor_token_keys": keys}))
    renewed = (
        await sqlite_env.http.post("/session", headers={"x-visitor-token": alice.token})
    ).json()

    # THEN old tokens still work, and new ones are signed with the new key, same visitor
    assert await alice.thread_ids() == [thread_id]
    assert renewed["renewed"] is True
    assert verify_token(renewed["token"], key=new_key.encode()) == verify_token(
        alice.token, key=SIGNING_KEY.encode()
    )
    assert await Visitor(sqlite_env.http, renewed["token"]).thread_ids() == [thread_id]

    # AND once the old key is retired, tokens signed with it are refused
    only_new = [SecretStr(new_key)]
    provider.reset(sqlite_env.settings.model_copy(update={"visitor_token_keys": only_new}))
    refused = await alice.send({"type": "threads.list", "params": {}})
    assert refused.status_code == 401


# --- When the model fails -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failure", "reason"),
    [
        ("429", "rate_limited"),
        ("402", "quota_exhausted"),
        ("500", "upstream_error"),
        ("stream-error", "interrupted"),
        ("stream-drop", None),
    ],
)
async def test_a_model_failure_still_answers_with_sources_and_a_notice(
    sqlite_env: Env, failure: str, reason: str | None
) -> None:
    alice = await sqlite_env.visitor()
    if failure.isdigit():
        sqlite_env.fake.fail_next(int(failure), endpoint="chat")
    else:
        sqlite_env.fake.break_stream_after(3, mode="error" if failure.endswith("error") else "drop")

    thread_id, events = await alice.start_thread(QUESTIONS[0])

    answer = streamed_answer(events)
    text = answer.item.content[0].text
    if reason is not None:
        assert text.startswith(NOTICES[reason])
    else:  # a dropped connection reads as interrupted or unreachable, depending on timing
        assert text.startswith((NOTICES["interrupted"], NOTICES["unreachable"]))
    assert "[1] Installation" in text
    check_annotations(answer.item, indexed_urls(sqlite_env.container))
    items = await alice.items(thread_id)
    assert [item["type"] for item in items] == ["user_message", "assistant_message"]
    assert items[1]["id"] == answer.item.id
    # The next question works normally and the fallback is replayed as its notice only.
    followup = streamed_answer(await alice.stream(add_message_request(thread_id, QUESTIONS[1])))
    assert followup.streamed_text == followup.item.content[0].text
    replayed = sqlite_env.fake.chat_requests[-1].json["messages"][2]["content"]
    assert replayed in NOTICES.values()


async def test_without_a_model_key_answers_are_retrieval_only(
    tmp_path: Path, site: Path, fake_openai: FakeOpenAI
) -> None:
    async with running_app(tmp_path, site, fake_openai, openrouter_api_key=None) as running:
        alice = await running.visitor()
        _, events = await alice.start_thread(QUESTIONS[1])

    answer = streamed_answer(events)
    assert answer.item.content[0].text.startswith(NOTICES["not_configured"])
    assert fake_openai.chat_calls == 0


async def test_a_question_the_docs_do_not_cover_gets_a_plain_answer(sqlite_env: Env) -> None:
    alice = await sqlite_env.visitor()
    _, events = await alice.start_thread("Sourdough bread hydration percentages?")

    answer = streamed_answer(events)
    assert answer.item.content[0].text == NOT_COVERED_TEXT
    assert answer.item.content[0].annotations == []
    assert sqlite_env.fake.chat_calls == 0


async def test_a_question_about_a_tool_the_docs_never_mention_says_which(
    sqlite_env: Env,
) -> None:
    alice = await sqlite_env.visitor()
    _, events = await alice.start_thread("How do I deploy to Heroku with npm run deploy?")

    answer = streamed_answer(events)
    assert answer.item.content[0].text.startswith("The documentation doesn't mention “Heroku”")
    assert answer.item.content[0].annotations == []
    assert sqlite_env.fake.chat_calls == 0


async def test_a_turn_abandoned_mid_answer_still_leaves_an_answer(sqlite_env: Env) -> None:
    # GIVEN a model that takes a long time to answer
    sqlite_env.fake.slow(30, endpoint="chat")
    server = sqlite_env.container.chatkit_server()
    context = RequestContext(visitor_id="abandoning-visitor")
    result = await server.process(json.dumps(create_request(QUESTIONS[0])), context)
    assert isinstance(result, StreamingResult)
    stream = result.json_events

    async def consume() -> None:
        async for _chunk in stream:
            pass

    # WHEN the client goes away while the model is working
    consumer = asyncio.create_task(consume())
    assert await asyncio.to_thread(sqlite_env.fake.wait_for_request, "chat")
    consumer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await consumer

    # THEN the question is answered in the thread: its sources and a notice
    store = sqlite_env.container.chatkit_store()
    (thread,) = (await store.load_threads(10, None, "desc", context)).data
    items = (await store.load_thread_items(thread.id, None, 10, "asc", context)).data
    assert [type(item) for item in items] == [UserMessageItem, AssistantMessageItem]
    answer = items[1]
    assert isinstance(answer, AssistantMessageItem)
    assert answer.content[0].text.startswith(NOTICES["interrupted"])
    check_annotations(answer, indexed_urls(sqlite_env.container))


# --- Bad requests and limits ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "not valid JSON"),
        (b'{"type": "threads.explode", "params": {}}', "Invalid ChatKit request"),
        (b'{"type": "threads.create", "params": {}}', "Invalid ChatKit request"),
        (
            json.dumps(
                {"type": "threads.create", "params": {"input": {**user_input("hi")}}}
            ).replace('"attachments": []', '"attachments": ["atc_1"]'),
            "Attachments are not supported",
        ),
        (json.dumps(create_request("   ")), "The message is empty"),
        (
            json.dumps({"type": "attachments.delete", "params": {"attachment_id": "atc_1"}}),
            "not supported",
        ),
    ],
)
async def test_malformed_requests_are_400_with_a_message(
    sqlite_env: Env, body: bytes | str, fragment: str
) -> None:
    alice = await sqlite_env.visitor()

    response = await alice.send(body.encode() if isinstance(body, str) else body)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert fragment in error["message"]
    assert error["request_id"] == response.headers["x-request-id"]
    assert await alice.thread_ids() == []


async def test_oversized_input_is_413(tmp_path: Path, site: Path, fake_openai: FakeOpenAI) -> None:
    async with running_app(tmp_path, site, fake_openai, max_message_chars=100) as running:
        alice = await running.visitor()
        too_long = await alice.send(create_request("Docusaurus " * 20))
        huge_body = await alice.send(create_request("x" * 2_000_000))
        threads = await alice.thread_ids()

    assert too_long.status_code == huge_body.status_code == 413
    assert "the limit is 100" in too_long.json()["error"]["message"]
    assert too_long.json()["error"]["code"] == "payload_too_large"
    assert threads == []


@pytest.mark.parametrize("backend", ["sqlite", "dynamodb"])
async def test_a_visitor_over_the_rate_limit_gets_429(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    site: Path,
    fake_openai: FakeOpenAI,
    backend: str,
) -> None:
    dynamodb = request.getfixturevalue("moto_dynamodb") if backend == "dynamodb" else None
    if dynamodb is not None:
        await clear_of_window_boundary()  # three messages in one fixed minute
    async with running_app(
        tmp_path, site, fake_openai, dynamodb=dynamodb, visitor_rate_limit_per_minute=2
    ) as running:
        alice, bob = await running.visitor(), await running.visitor()
        thread_id, _ = await alice.start_thread(QUESTIONS[0])
        await alice.stream(add_message_request(thread_id, QUESTIONS[1]))

        limited = await alice.send(add_message_request(thread_id, QUESTIONS[2]))
        still_readable = await alice.items(thread_id)
        bob_thread, _ = await bob.start_thread(QUESTIONS[2])

    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limited"
    assert "Please wait" in limited.json()["error"]["message"]
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert len(still_readable) == 4  # the refused message was not stored
    assert bob_thread


async def test_requests_that_fail_validation_cost_no_quota(
    tmp_path: Path, site: Path, fake_openai: FakeOpenAI
) -> None:
    async with running_app(tmp_path, site, fake_openai, visitor_rate_limit_per_minute=1) as running:
        alice = await running.visitor()
        missing = [
            await alice.send(add_message_request("thr_missing", QUESTIONS[0])) for _ in range(3)
        ]
        thread_id, events = await alice.start_thread(QUESTIONS[0])

    assert [response.status_code for response in missing] == [404, 404, 404]
    assert thread_id and streamed_answer(events).item.content[0].text


# --- Through the Lambda handler -------------------------------------------------------------------


def http_api_event(path: str, body: str | None, headers: dict[str, str]) -> dict[str, Any]:
    """A real-shaped API Gateway HTTP API (v2) event, from the sample event beside the code."""
    event: dict[str, Any] = json.loads((REPO_ROOT / "events" / "chat_http_api_v2.json").read_text())
    event["routeKey"] = f"POST {path}"
    event["rawPath"] = path
    event["requestContext"]["routeKey"] = f"POST {path}"
    event["requestContext"]["http"]["path"] = path
    event["requestContext"]["requestId"] = f"req-{path.strip('/')}"
    event["headers"] = {**event["headers"], **headers}
    event["headers"].pop("content-length", None)
    if body is None:
        event.pop("body", None)
    else:
        event["body"] = body
        event["headers"]["content-length"] = str(len(body.encode()))
    return event


def test_the_lambda_handler_serves_session_and_chatkit(
    tmp_path: Path,
    site: Path,
    fake_openai: FakeOpenAI,
    lambda_loop: asyncio.AbstractEventLoop,
) -> None:
    settings = make_settings(tmp_path, fake_openai, cors_via_gateway=True)
    container = build_container(settings, site)
    urls = indexed_urls(container)
    handler = Mangum(create_app(settings=settings, container=container), lifespan="off")
    context = SimpleNamespace(aws_request_id="lambda-request-1")
    try:
        session = handler(http_api_event("/session", None, {}), context)
        token = json.loads(session["body"])["token"]
        headers = {"x-visitor-token": token}
        created = handler(
            http_api_event("/chatkit", json.dumps(create_request(QUESTIONS[0])), headers), context
        )
        missing = handler(
            http_api_event(
                "/chatkit", json.dumps(add_message_request("thr_missing", "Hello?")), headers
            ),
            context,
        )
        unauthorised = handler(
            http_api_event("/chatkit", json.dumps({"type": "threads.list", "params": {}}), {}),
            context,
        )
    finally:
        container.close()

    assert session["statusCode"] == 200
    assert created["statusCode"] == 200
    assert created["headers"]["content-type"].startswith("text/event-stream")
    assert created["isBase64Encoded"] is False
    answer = streamed_answer(parse_sse(created["body"]))
    check_annotations(answer.item, urls)
    assert missing["statusCode"] == 404
    assert json.loads(missing["body"])["error"]["request_id"] == "req-chatkit"
    assert unauthorised["statusCode"] == 401


async def test_threads_load_without_qdrant_and_a_turn_says_search_is_unavailable(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    """Qdrant unreachable at a cold start: sessions, threads and history still work."""
    settings = make_settings(
        tmp_path, fake_openai, qdrant_url="http://127.0.0.1:9", qdrant_timeout_seconds=1
    )
    app = create_app(settings=settings)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://docsrag.test") as http:
            session = await http.post("/session")
            assert session.status_code == 200
            alice = Visitor(http, session.json()["token"])
            assert await alice.thread_ids() == []
            thread_id, events = await alice.start_thread(QUESTIONS[0])
            items = await alice.items(thread_id)
    finally:
        app.state.provider.close()

    answer = streamed_answer(events)
    assert answer.item.content[0].text == SEARCH_UNAVAILABLE_TEXT
    assert [item["type"] for item in items] == ["user_message", "assistant_message"]


async def test_sessions_are_rate_limited_per_client_ip(
    tmp_path: Path, site: Path, fake_openai: FakeOpenAI
) -> None:
    async with running_app(tmp_path, site, fake_openai, session_rate_limit_per_minute=2) as running:
        issued = [await running.http.post("/session") for _ in range(2)]
        limited = await running.http.post("/session")

    assert [response.status_code for response in issued] == [200, 200]
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(limited.headers["retry-after"]) <= 60
