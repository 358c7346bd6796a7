"""One time budget per request (`REQUEST_TIME_BUDGET_SECONDS`, `docsrag.budget`): `POST /chat` and
a ChatKit turn end with an answer and its sources, stored, when the model trickles or never
answers, or the embeddings endpoint asks to retry later than the budget allows.

A small budget (2-4 s) against a model that would take 15 s or more: the bounds asserted on the
wall time are loose on purpose (the speed itself is measured by `bench/time_budget.py`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path

import pytest
from chatkit.server import StreamingResult
from chatkit.types import (
    AssistantMessageContentPartTextDelta,
    AssistantMessageItem,
    ThreadItemUpdatedEvent,
    UserMessageItem,
)

from docsrag.answering import CUT_SHORT_NOTICE, NOTICES
from docsrag.budget import Deadline
from docsrag.chatkit.context import RequestContext
from tests.fakes.openai_server import FakeOpenAI
from tests.integration import test_chatkit_protocol as protocol
from tests.integration.test_chatkit_protocol import (
    EVENT_ADAPTER,
    QUESTIONS,
    check_annotations,
    create_request,
    indexed_urls,
    running_app,
    streamed_answer,
)

# The temporary docs site of the ChatKit protocol tests (a fixture).
site = protocol.site

# A model that would take 15 s: one chunk (or, unstreamed, one byte) every 0.5 s.
TRICKLE = {"interval": 0.5, "chunks": 30}
# Nothing in these tests may take as long as the trickle.
WELL_BEFORE_THE_TRICKLE = 10.0
SLOW_MODEL = {"llm_timeout_seconds": 60}  # the per-read timeout never fires


async def test_chat_with_a_trickling_model_answers_with_sources_within_the_budget(
    tmp_path: Path, site: Path, fake_openai: FakeOpenAI
) -> None:
    async with running_app(
        tmp_path, site, fake_openai, request_time_budget_seconds=2.5, **SLOW_MODEL
    ) as env:
        # GIVEN a model that sends a byte every half second for 15 s
        fake_openai.trickle(TRICKLE["interval"], chunks=TRICKLE["chunks"])
        started = time.monotonic()

        # WHEN a visitor asks on /chat
        response = await env.http.post("/chat", json={"message": QUESTIONS[0]})

        # THEN the budget cuts the model: the retrieval-only answer, its sources and a notice
        elapsed = time.monotonic() - started
        assert response.status_code == 200
        body = response.json()
        assert body["mode"] == "retrieval_only"
        assert body["answer"].startswith(NOTICES["timeout"])
        assert body["sources"]
        assert body["sources"][0]["url"] in indexed_urls(env.container)
        assert elapsed < WELL_BEFORE_THE_TRICKLE
        assert fake_openai.chat_calls == 1


async def test_chat_gives_up_an_embedding_retry_the_budget_cannot_wait_for(
    tmp_path: Path, site: Path, fake_openai: FakeOpenAI
) -> None:
    async with running_app(
        tmp_path,
        site,
        fake_openai,
        request_time_budget_seconds=4,
        embedding_max_retries=5,
        embedding_timeout_seconds=60,
        **SLOW_MODEL,
    ) as env:
        # GIVEN the embeddings endpoint asks to retry in 25 s, and a fast model
        fake_openai.reset()
        fake_openai.fail_next(429, retry_after=25, endpoint="embeddings")
        started = time.monotonic()

        response = await env.http.post("/chat", json={"message": QUESTIONS[1]})

        # THEN no retry is waited for: BM25 search, and the model still answers in time
        elapsed = time.monotonic() - started
        assert response.status_code == 200
        body = response.json()
        assert body["mode"] == "llm"
        assert body["sources"][0]["url"].startswith("https://docs.example.org/docs/deployment")
        assert fake_openai.embedding_calls == 1
        assert elapsed < WELL_BEFORE_THE_TRICKLE


async def test_chat_with_an_embedding_retry_after_and_a_silent_model_still_answers(
    tmp_path: Path, site: Path, fake_openai: FakeOpenAI
) -> None:
    async with running_app(
        tmp_path,
        site,
        fake_openai,
        request_time_budget_seconds=2.5,
        embedding_max_retries=5,
        **SLOW_MODEL,
    ) as env:
        # GIVEN a 429 with Retry-After: 25 on the embeddings, and a model that never sends a byte
        fake_openai.fail_next(429, retry_after=25, endpoint="embeddings")
        fake_openai.slow(60, endpoint="chat")
        started = time.monotonic()

        response = await env.http.post("/chat", json={"message": QUESTIONS[2]})

        elapsed = time.monotonic() - started
        assert response.status_code == 200
        body = response.json()
        assert body["mode"] == "retrieval_only"
        assert body["answer"].startswith(NOTICES["timeout"])
        assert "Search" in body["sources"][0]["title"]
        assert elapsed < WELL_BEFORE_THE_TRICKLE


async def test_a_chatkit_turn_cut_mid_answer_keeps_the_text_so_far_with_sources(
    tmp_path: Path, site: Path, fake_openai: FakeOpenAI
) -> None:
    async with running_app(
        tmp_path, site, fake_openai, request_time_budget_seconds=3, **SLOW_MODEL
    ) as env:
        alice = await env.visitor()
        # GIVEN a model that streams one chunk every half second for 15 s
        fake_openai.trickle(TRICKLE["interval"], chunks=TRICKLE["chunks"])
        started = time.monotonic()

        thread_id, events = await alice.start_thread(QUESTIONS[0])

        elapsed = time.monotonic() - started
        answer = streamed_answer(events)
        text = answer.item.content[0].text
        # THEN the visitor keeps what streamed, told it was cut short, with the sources
        assert answer.streamed_text.strip()
        assert text.startswith(answer.streamed_text.strip())
        assert text.endswith(f"*{CUT_SHORT_NOTICE}*")
        assert check_annotations(answer.item, indexed_urls(env.container))
        assert elapsed < WELL_BEFORE_THE_TRICKLE
        # AND the turn is stored as the visitor saw it
        items = await alice.items(thread_id)
        assert [item["type"] for item in items] == ["user_message", "assistant_message"]
        stored = AssistantMessageItem.model_validate(items[1])
        assert stored.id == answer.item.id
        assert stored.content == answer.item.content


async def test_a_chatkit_turn_with_a_silent_model_ends_with_sources_and_is_stored(
    tmp_path: Path, site: Path, fake_openai: FakeOpenAI
) -> None:
    async with running_app(
        tmp_path, site, fake_openai, request_time_budget_seconds=2, **SLOW_MODEL
    ) as env:
        alice = await env.visitor()
        fake_openai.slow(60, endpoint="chat")  # not one byte
        started = time.monotonic()

        thread_id, events = await alice.start_thread(QUESTIONS[1])

        elapsed = time.monotonic() - started
        answer = streamed_answer(events)
        assert answer.item.content[0].text.startswith(NOTICES["timeout"])
        assert "[1] Deployment" in answer.item.content[0].text
        check_annotations(answer.item, indexed_urls(env.container))
        assert elapsed < WELL_BEFORE_THE_TRICKLE
        items = await alice.items(thread_id)
        assert items[1]["id"] == answer.item.id


async def test_a_client_gone_mid_stream_leaves_what_was_written_logged_as_info(
    tmp_path: Path, site: Path, fake_openai: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_app(tmp_path, site, fake_openai, **SLOW_MODEL) as env:
        fake_openai.trickle(TRICKLE["interval"], chunks=TRICKLE["chunks"])
        server = env.container.chatkit_server()
        context = RequestContext(
            visitor_id="leaving-visitor",
            deadline=Deadline.start(env.settings.request_time_budget_seconds),
        )
        result = await server.process(json.dumps(create_request(QUESTIONS[2])), context)
        assert isinstance(result, StreamingResult)
        written: list[str] = []
        some_text = asyncio.Event()

        async def consume() -> None:
            async for chunk in result.json_events:
                event = EVENT_ADAPTER.validate_json(chunk.removeprefix(b"data: "))
                if isinstance(event, ThreadItemUpdatedEvent) and isinstance(
                    event.update, AssistantMessageContentPartTextDelta
                ):
                    written.append(event.update.delta)
                    some_text.set()

        # WHEN the visitor goes away once some of the answer was written
        caplog.set_level(logging.INFO, logger="docsrag")
        consumer = asyncio.create_task(consume())
        await asyncio.wait_for(some_text.wait(), timeout=WELL_BEFORE_THE_TRICKLE)
        consumer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await consumer

        # THEN the thread holds the question and what was written, with the sources
        store = env.container.chatkit_store()
        (thread,) = (await store.load_threads(10, None, "desc", context)).data
        items = (await store.load_thread_items(thread.id, None, 10, "asc", context)).data
        assert [type(item) for item in items] == [UserMessageItem, AssistantMessageItem]
        saved = items[1]
        assert isinstance(saved, AssistantMessageItem)
        assert saved.content[0].text.startswith("".join(written).strip())
        check_annotations(saved, indexed_urls(env.container))
        # AND a visitor leaving is no failure: info, never an error
        # (Clients of earlier tests, collected now, may log that their loop is closed.)
        errors = [
            record.getMessage()
            for record in caplog.records
            if record.levelno >= logging.ERROR and "Event loop is closed" not in record.getMessage()
        ]
        assert not errors
        assert "stored an interrupted answer" in caplog.messages
