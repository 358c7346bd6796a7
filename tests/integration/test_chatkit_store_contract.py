"""One contract for both ChatKit stores: SQLite (a temp file) and DynamoDB (moto).

Whatever runs locally must behave like what runs in AWS, so every contract test runs against
both. The last sections hold the few behaviours only one backend has (TTL, table schema, files).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from chatkit.server import ChatKitServer, NonStreamingResult, StreamingResult
from chatkit.store import NotFoundError
from chatkit.types import (
    ActiveStatus,
    Annotation,
    AssistantMessageContent,
    AssistantMessageItem,
    ClosedStatus,
    FileAttachment,
    InferenceOptions,
    Page,
    Thread,
    ThreadItem,
    ThreadItemDoneEvent,
    ThreadMetadata,
    ThreadStreamEvent,
    URLSource,
    UserMessageItem,
    UserMessageTextContent,
    WorkflowItem,
)
from chatkit.types import Workflow as ChatWorkflow

from docsrag.chatkit.context import RequestContext
from docsrag.chatkit.stores import (
    MAX_RECORD_BYTES,
    DynamoDBStore,
    RecordTooLarge,
    SQLiteStore,
    StoreUnavailable,
    VisitorScopedStore,
    create_threads_table,
)

TABLE = "docsrag-chatkit-test"
ALICE = RequestContext(visitor_id="alice")
BOB = RequestContext(visitor_id="bob")
T0 = datetime(2025, 3, 1, 9, 30, 0)

T = TypeVar("T")


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture
def dynamodb_client(moto_dynamodb: Any) -> Iterator[Any]:
    """A fresh threads table, created the way the deployment creates it, named `TABLE`."""
    assert create_threads_table(moto_dynamodb, TABLE) is True
    yield moto_dynamodb
    moto_dynamodb.delete_table(TableName=TABLE)


@pytest.fixture(params=["sqlite", "dynamodb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VisitorScopedStore]:
    if request.param == "sqlite":
        sqlite_store = SQLiteStore(path=tmp_path / "chatkit.sqlite3")
        yield sqlite_store
        sqlite_store.close()
    else:
        client = request.getfixturevalue("dynamodb_client")
        yield DynamoDBStore(client=client, table_name=TABLE)


# --- builders -----------------------------------------------------------------------------------


def make_thread(
    store: VisitorScopedStore, minute: int, *, title: str | None = None
) -> ThreadMetadata:
    return ThreadMetadata(
        id=store.generate_thread_id(ALICE),
        title=title if title is not None else f"Thread {minute}",
        created_at=T0 + timedelta(minutes=minute),
    )


def user_message(
    store: VisitorScopedStore, thread: ThreadMetadata, text: str, *, second: int = 0
) -> UserMessageItem:
    return UserMessageItem(
        id=store.generate_item_id("message", thread, ALICE),
        thread_id=thread.id,
        created_at=T0 + timedelta(seconds=second),
        content=[UserMessageTextContent(text=text)],
        inference_options=InferenceOptions(),
    )


def assistant_message(
    store: VisitorScopedStore, thread: ThreadMetadata, text: str, *, second: int = 0
) -> AssistantMessageItem:
    return AssistantMessageItem(
        id=store.generate_item_id("message", thread, ALICE),
        thread_id=thread.id,
        created_at=T0 + timedelta(seconds=second),
        content=[
            AssistantMessageContent(
                text=text,
                annotations=[
                    Annotation(
                        source=URLSource(
                            url="https://docs.example.com/docs/cli#install",
                            title="CLI › Install",
                        ),
                        index=len(text),
                    )
                ],
            )
        ],
    )


async def saved_thread(
    store: VisitorScopedStore, minute: int = 0, context: RequestContext = ALICE
) -> ThreadMetadata:
    thread = make_thread(store, minute)
    await store.save_thread(thread, context)
    return thread


async def answered_thread(
    store: VisitorScopedStore, *answers: str
) -> tuple[ThreadMetadata, list[AssistantMessageItem]]:
    """A saved thread of Alice's holding an assistant message per text, a second apart."""
    thread = await saved_thread(store)
    items = [
        assistant_message(store, thread, text, second=second)
        for second, text in enumerate(answers, start=1)
    ]
    for item in items:
        await store.add_thread_item(thread.id, item, ALICE)
    return thread, items


async def collect_pages(load: Callable[[str | None], Awaitable[Page[T]]]) -> list[Page[T]]:
    """Every page `load(after)` gives, from the first, following the cursors to the last."""
    pages: list[Page[T]] = []
    after: str | None = None
    while True:
        page = await load(after)
        pages.append(page)
        if not page.has_more:
            return pages
        after = page.after
        assert len(pages) < 50, "pagination does not terminate"


async def collect_threads(
    store: VisitorScopedStore, context: RequestContext, *, limit: int, order: str
) -> list[Page[ThreadMetadata]]:
    return await collect_pages(lambda after: store.load_threads(limit, after, order, context))


async def collect_items(
    store: VisitorScopedStore, thread_id: str, *, limit: int, order: str
) -> list[Page[ThreadItem]]:
    return await collect_pages(
        lambda after: store.load_thread_items(thread_id, after, limit, order, ALICE)
    )


def ids(pages: list[Page[Any]]) -> list[str]:
    return [record.id for page in pages for record in page.data]


# --- threads ------------------------------------------------------------------------------------


async def test_a_saved_thread_loads_back_as_saved(store: VisitorScopedStore) -> None:
    thread = make_thread(store, 1, title="Déploiement sur AWS — 部署 🚀")
    thread.status = ClosedStatus(reason="archived")
    thread.metadata = {"last_response_id": "resp_1", "nested": {"n": 1}}

    await store.save_thread(thread, ALICE)

    assert await store.load_thread(thread.id, ALICE) == thread


async def test_saving_a_full_thread_keeps_only_its_metadata(store: VisitorScopedStore) -> None:
    # GIVEN the full Thread (with items) that ChatKitServer passes to save_thread mid-stream
    meta = make_thread(store, 1)
    full = Thread(**meta.model_dump(), items=Page(data=[user_message(store, meta, "hi")]))

    await store.save_thread(full, ALICE)

    loaded = await store.load_thread(meta.id, ALICE)
    assert type(loaded) is ThreadMetadata
    assert loaded == meta
    assert (await store.load_thread_items(meta.id, None, 10, "asc", ALICE)).data == []


async def test_renaming_a_thread_keeps_its_place_in_the_list(store: VisitorScopedStore) -> None:
    first, second, third = [await saved_thread(store, minute) for minute in (1, 2, 3)]

    second.title = "Renamed"
    second.status = ActiveStatus()
    await store.save_thread(second, ALICE)

    page = await store.load_threads(10, None, "desc", ALICE)
    assert [t.id for t in page.data] == [third.id, second.id, first.id]
    assert page.data[1].title == "Renamed"
    assert (await store.load_thread(second.id, ALICE)).title == "Renamed"


@pytest.mark.parametrize("order", ["desc", "asc"])
async def test_threads_page_by_creation_time_with_cursors(
    store: VisitorScopedStore, order: str
) -> None:
    threads = [await saved_thread(store, minute) for minute in (5, 1, 7, 3, 2, 6, 4)]
    expected = [t.id for t in sorted(threads, key=lambda t: t.created_at)]
    if order == "desc":
        expected.reverse()

    pages = await collect_threads(store, ALICE, limit=3, order=order)

    assert [len(page.data) for page in pages] == [3, 3, 1]
    assert [page.has_more for page in pages] == [True, True, False]
    assert [page.after for page in pages] == [pages[0].data[-1].id, pages[1].data[-1].id, None]
    assert ids(pages) == expected


async def test_a_page_that_ends_exactly_at_the_last_thread_has_no_more(
    store: VisitorScopedStore,
) -> None:
    for minute in range(4):
        await saved_thread(store, minute)

    pages = await collect_threads(store, ALICE, limit=2, order="desc")

    assert [len(page.data) for page in pages] == [2, 2]
    assert pages[-1].has_more is False
    assert pages[-1].after is None


async def test_threads_created_in_the_same_instant_are_each_listed_once(
    store: VisitorScopedStore,
) -> None:
    same_time = [await saved_thread(store, 0) for _ in range(5)]

    for order in ("asc", "desc"):
        pages = await collect_threads(store, ALICE, limit=2, order=order)
        assert sorted(ids(pages)) == sorted(t.id for t in same_time)
        assert len(ids(pages)) == 5


async def test_no_threads_is_an_empty_page(store: VisitorScopedStore) -> None:
    page = await store.load_threads(20, None, "desc", ALICE)

    assert page.data == []
    assert page.has_more is False
    assert page.after is None


# --- items --------------------------------------------------------------------------------------


@pytest.mark.parametrize("order", ["asc", "desc"])
async def test_items_page_in_time_order_with_cursors(store: VisitorScopedStore, order: str) -> None:
    thread = await saved_thread(store)
    items: list[ThreadItem] = []
    for second in (4, 0, 3, 1, 2):
        items.append(user_message(store, thread, f"question {second}", second=second))
        await store.add_thread_item(thread.id, items[-1], ALICE)
    expected = [i.id for i in sorted(items, key=lambda i: i.created_at)]
    if order == "desc":
        expected.reverse()

    pages = await collect_items(store, thread.id, limit=2, order=order)

    assert [len(page.data) for page in pages] == [2, 2, 1]
    assert [page.has_more for page in pages] == [True, True, False]
    assert ids(pages) == expected


async def test_an_item_round_trips_with_its_annotations(store: VisitorScopedStore) -> None:
    thread = await saved_thread(store)
    question = user_message(store, thread, "How do I install the CLI?")
    answer = assistant_message(store, thread, "Run `npm i -g docs-cli`.", second=1)

    await store.add_thread_item(thread.id, question, ALICE)
    await store.add_thread_item(thread.id, answer, ALICE)

    loaded = await store.load_item(thread.id, answer.id, ALICE)
    assert loaded == answer
    assert isinstance(loaded, AssistantMessageItem)
    source = loaded.content[0].annotations[0].source
    assert isinstance(source, URLSource)
    assert source.url == "https://docs.example.com/docs/cli#install"
    assert await store.load_item(thread.id, question.id, ALICE) == question


async def test_save_item_replaces_an_item_in_place(store: VisitorScopedStore) -> None:
    thread = await saved_thread(store)
    first = user_message(store, thread, "first", second=0)
    answer = assistant_message(store, thread, "draft", second=1)
    last = user_message(store, thread, "last", second=2)
    for item in (first, answer, last):
        await store.add_thread_item(thread.id, item, ALICE)

    final = answer.model_copy(
        update={
            "content": [AssistantMessageContent(text="final answer")],
            "created_at": T0 + timedelta(hours=1),
        }
    )
    await store.save_item(thread.id, final, ALICE)

    assert await store.load_item(thread.id, answer.id, ALICE) == final
    page = await store.load_thread_items(thread.id, None, 10, "asc", ALICE)
    assert [i.id for i in page.data] == [first.id, answer.id, last.id]
    assert page.data[1] == final


async def test_adding_an_item_id_again_updates_it_instead_of_duplicating(
    store: VisitorScopedStore,
) -> None:
    # ChatKit re-adds an unfinished workflow item when the next turn completes it.
    thread = await saved_thread(store)
    workflow = WorkflowItem(
        id=store.generate_item_id("workflow", thread, ALICE),
        thread_id=thread.id,
        created_at=T0,
        workflow=ChatWorkflow(type="reasoning", tasks=[]),
    )
    await store.add_thread_item(thread.id, workflow, ALICE)

    done = workflow.model_copy(
        update={"workflow": ChatWorkflow(type="reasoning", tasks=[], expanded=True)}
    )
    await store.add_thread_item(thread.id, done, ALICE)

    page = await store.load_thread_items(thread.id, None, 10, "asc", ALICE)
    assert page.data == [done]


async def test_a_deleted_item_is_gone_and_deleting_it_again_is_harmless(
    store: VisitorScopedStore,
) -> None:
    thread = await saved_thread(store)
    keep = user_message(store, thread, "keep", second=0)
    drop = assistant_message(store, thread, "drop", second=1)
    await store.add_thread_item(thread.id, keep, ALICE)
    await store.add_thread_item(thread.id, drop, ALICE)

    await store.delete_thread_item(thread.id, drop.id, ALICE)
    # ChatKit also removes items that were streamed but never saved.
    await store.delete_thread_item(thread.id, drop.id, ALICE)
    await store.delete_thread_item(thread.id, "msg_never_saved", ALICE)
    await store.delete_thread_item(thread.id, "m" * 5_000, ALICE)

    with pytest.raises(NotFoundError):
        await store.load_item(thread.id, drop.id, ALICE)
    page = await store.load_thread_items(thread.id, None, 10, "desc", ALICE)
    assert [i.id for i in page.data] == [keep.id]


async def test_deleting_a_thread_deletes_its_items(store: VisitorScopedStore) -> None:
    thread = await saved_thread(store, 1)
    other = await saved_thread(store, 2)
    for second in range(3):
        await store.add_thread_item(
            thread.id, user_message(store, thread, "q", second=second), ALICE
        )
    await store.add_thread_item(other.id, user_message(store, other, "stays"), ALICE)

    await store.delete_thread(thread.id, ALICE)

    with pytest.raises(NotFoundError):
        await store.load_thread(thread.id, ALICE)
    with pytest.raises(NotFoundError):
        await store.load_thread_items(thread.id, None, 10, "asc", ALICE)
    assert [t.id for t in (await store.load_threads(10, None, "asc", ALICE)).data] == [other.id]
    # Saving a thread under the same id again starts empty: the items really are gone.
    await store.save_thread(thread, ALICE)
    assert (await store.load_thread_items(thread.id, None, 10, "asc", ALICE)).data == []
    assert len((await store.load_thread_items(other.id, None, 10, "asc", ALICE)).data) == 1


async def test_unicode_text_round_trips(store: VisitorScopedStore) -> None:
    text = "Ünïcödé: 日本語, עברית, العربية, emoji 👩🏽‍💻🧪, combining e\u0301, nul \u0000, tab\t."
    thread = make_thread(store, 0, title=text)
    await store.save_thread(thread, ALICE)
    item = user_message(store, thread, text)
    await store.add_thread_item(thread.id, item, ALICE)

    assert (await store.load_thread(thread.id, ALICE)).title == text
    loaded = await store.load_item(thread.id, item.id, ALICE)
    assert isinstance(loaded, UserMessageItem)
    assert loaded.content[0].text == text


async def test_big_items_page_correctly(store: VisitorScopedStore) -> None:
    # Four ~300 KB items: DynamoDB returns at most 1 MB per response, so a page needs two reads.
    thread = await saved_thread(store)
    items = [assistant_message(store, thread, f"{n}" * 300_000, second=n) for n in range(4)]
    for item in items:
        await store.add_thread_item(thread.id, item, ALICE)

    pages = await collect_items(store, thread.id, limit=3, order="asc")

    assert [len(page.data) for page in pages] == [3, 1]
    assert ids(pages) == [i.id for i in items]


async def test_an_item_near_the_size_limit_is_stored(store: VisitorScopedStore) -> None:
    thread = await saved_thread(store)
    item = assistant_message(store, thread, "x" * (MAX_RECORD_BYTES - 2_000))

    await store.add_thread_item(thread.id, item, ALICE)

    assert await store.load_item(thread.id, item.id, ALICE) == item


async def test_an_item_over_the_size_limit_is_refused_clearly(store: VisitorScopedStore) -> None:
    # The limit is in bytes: 130k CJK characters are ~390 KB of UTF-8.
    thread = await saved_thread(store)
    item = assistant_message(store, thread, "日" * 130_000)

    with pytest.raises(RecordTooLarge, match=f"at most {MAX_RECORD_BYTES}"):
        await store.add_thread_item(thread.id, item, ALICE)

    assert (await store.load_thread_items(thread.id, None, 10, "asc", ALICE)).data == []
    with pytest.raises(RecordTooLarge):
        await store.save_thread(make_thread(store, 1, title="t" * 400_000), ALICE)


async def test_the_agents_sdk_placeholder_id_is_refused(store: VisitorScopedStore) -> None:
    # Every Chat Completions message from the Agents SDK has this id; storing it would make each
    # new answer overwrite the last one.
    thread = await saved_thread(store)
    item = assistant_message(store, thread, "answer").model_copy(update={"id": "__fake_id__"})

    with pytest.raises(ValueError, match="generate_item_id"):
        await store.add_thread_item(thread.id, item, ALICE)

    assert (await store.load_thread_items(thread.id, None, 10, "asc", ALICE)).data == []


async def test_generated_ids_are_unique_and_typed(store: VisitorScopedStore) -> None:
    thread = make_thread(store, 0)

    item_ids = {store.generate_item_id("message", thread, ALICE) for _ in range(2_000)}
    thread_ids = {store.generate_thread_id(ALICE) for _ in range(2_000)}

    assert len(item_ids) == 2_000
    assert len(thread_ids) == 2_000
    assert all(i.startswith("msg_") for i in item_ids)
    assert all(t.startswith("thr_") for t in thread_ids)


# --- not found ----------------------------------------------------------------------------------


async def test_unknown_ids_are_not_found(store: VisitorScopedStore) -> None:
    thread = await saved_thread(store)
    item = user_message(store, thread, "hello")
    await store.add_thread_item(thread.id, item, ALICE)
    gone = user_message(store, thread, "deleted", second=1)
    await store.add_thread_item(thread.id, gone, ALICE)
    await store.delete_thread_item(thread.id, gone.id, ALICE)
    missing = "thr_does_not_exist"

    for call in (
        store.load_thread(missing, ALICE),
        store.load_thread(missing * 50, ALICE),
        store.load_thread_items(missing, None, 10, "asc", ALICE),
        store.load_item(missing, item.id, ALICE),
        store.load_item(thread.id, "msg_does_not_exist", ALICE),
        store.add_thread_item(missing, item.model_copy(update={"thread_id": missing}), ALICE),
        store.save_item(missing, item.model_copy(update={"thread_id": missing}), ALICE),
        store.delete_thread_item(missing, item.id, ALICE),
        store.delete_thread(missing, ALICE),
        store.load_threads(10, missing, "desc", ALICE),
        store.load_thread_items(thread.id, gone.id, 10, "asc", ALICE),
        store.load_attachment("atc_does_not_exist", ALICE),
    ):
        with pytest.raises(NotFoundError):
            await call


async def test_attachments_are_not_supported(store: VisitorScopedStore) -> None:
    attachment = FileAttachment(id="atc_1", name="notes.txt", mime_type="text/plain")

    with pytest.raises(NotImplementedError):
        await store.save_attachment(attachment, ALICE)


# --- feedback -----------------------------------------------------------------------------------


async def test_feedback_is_kept_per_item_and_the_latest_wins(store: VisitorScopedStore) -> None:
    thread, (first, second) = await answered_thread(store, "first answer", "second answer")

    await store.save_feedback(thread.id, [first.id, second.id], "negative", ALICE)
    await store.save_feedback(thread.id, [second.id], "positive", ALICE)

    assert await store.load_feedback(thread.id, ALICE) == {
        first.id: "negative",
        second.id: "positive",
    }
    # Feedback does not show up as a thread item.
    page = await store.load_thread_items(thread.id, None, 10, "asc", ALICE)
    assert [item.id for item in page.data] == [first.id, second.id]


async def test_feedback_on_a_missing_item_saves_nothing(store: VisitorScopedStore) -> None:
    thread, (answer,) = await answered_thread(store, "answer")

    with pytest.raises(NotFoundError):
        await store.save_feedback(thread.id, [answer.id, "msg_missing"], "positive", ALICE)
    with pytest.raises(NotFoundError):
        await store.save_feedback("thr_missing", [answer.id], "positive", ALICE)
    with pytest.raises(ValueError):
        await store.save_feedback(thread.id, [], "positive", ALICE)

    assert await store.load_feedback(thread.id, ALICE) == {}


async def test_feedback_leaves_with_its_item_and_thread(store: VisitorScopedStore) -> None:
    thread, (kept, dropped) = await answered_thread(store, "kept", "dropped")
    await store.save_feedback(thread.id, [kept.id, dropped.id], "positive", ALICE)

    await store.delete_thread_item(thread.id, dropped.id, ALICE)
    assert await store.load_feedback(thread.id, ALICE) == {kept.id: "positive"}

    await store.delete_thread(thread.id, ALICE)
    with pytest.raises(NotFoundError):
        await store.load_feedback(thread.id, ALICE)
    await store.save_thread(thread, ALICE)  # the same id again starts without feedback
    assert await store.load_feedback(thread.id, ALICE) == {}


async def test_feedback_is_scoped_to_the_visitor(store: VisitorScopedStore) -> None:
    thread = await saved_thread(store, 1, ALICE)
    answer = assistant_message(store, thread, "Alice's answer", second=1)
    await store.add_thread_item(thread.id, answer, ALICE)
    await store.save_feedback(thread.id, [answer.id], "positive", ALICE)

    with pytest.raises(NotFoundError):
        await store.save_feedback(thread.id, [answer.id], "negative", BOB)
    with pytest.raises(NotFoundError):
        await store.load_feedback(thread.id, BOB)

    assert await store.load_feedback(thread.id, ALICE) == {answer.id: "positive"}


# --- isolation ----------------------------------------------------------------------------------


async def test_visitors_never_see_or_touch_each_others_threads(store: VisitorScopedStore) -> None:
    # GIVEN Alice's thread with two items, and Bob's own thread
    alice_thread = await saved_thread(store, 1, ALICE)
    question = user_message(store, alice_thread, "Alice's secret question")
    answer = assistant_message(store, alice_thread, "Alice's answer", second=1)
    await store.add_thread_item(alice_thread.id, question, ALICE)
    await store.add_thread_item(alice_thread.id, answer, ALICE)
    bob_thread = await saved_thread(store, 2, BOB)

    # WHEN Bob tries every operation on Alice's thread THEN each behaves as if it did not exist
    intruder = user_message(store, alice_thread, "Bob was here", second=2)
    for call in (
        store.load_thread(alice_thread.id, BOB),
        store.load_thread_items(alice_thread.id, None, 10, "asc", BOB),
        store.load_item(alice_thread.id, question.id, BOB),
        store.add_thread_item(alice_thread.id, intruder, BOB),
        store.save_item(alice_thread.id, question.model_copy(update={"content": []}), BOB),
        store.delete_thread_item(alice_thread.id, question.id, BOB),
        store.delete_thread(alice_thread.id, BOB),
        store.load_threads(10, alice_thread.id, "desc", BOB),
    ):
        with pytest.raises(NotFoundError):
            await call

    # AND lists are per visitor
    assert [t.id for t in (await store.load_threads(10, None, "desc", BOB)).data] == [bob_thread.id]
    assert [t.id for t in (await store.load_threads(10, None, "desc", ALICE)).data] == [
        alice_thread.id
    ]
    # AND Alice's thread is untouched
    assert await store.load_thread(alice_thread.id, ALICE) == alice_thread
    page = await store.load_thread_items(alice_thread.id, None, 10, "asc", ALICE)
    assert page.data == [question, answer]


async def test_the_same_thread_id_under_two_visitors_stays_separate(
    store: VisitorScopedStore,
) -> None:
    alice_thread = await saved_thread(store, 1, ALICE)
    await store.add_thread_item(alice_thread.id, user_message(store, alice_thread, "a"), ALICE)

    # Bob saving a thread under Alice's id creates his own thread, it does not take hers over.
    bobs_copy = alice_thread.model_copy(update={"title": "Bob's"})
    await store.save_thread(bobs_copy, BOB)

    assert (await store.load_thread(alice_thread.id, ALICE)).title == alice_thread.title
    assert (await store.load_thread(alice_thread.id, BOB)).title == "Bob's"
    assert (await store.load_thread_items(alice_thread.id, None, 10, "asc", BOB)).data == []
    await store.delete_thread(alice_thread.id, BOB)
    assert await store.load_thread(alice_thread.id, ALICE) == alice_thread


# --- through ChatKitServer ----------------------------------------------------------------------


class EchoServer(ChatKitServer[RequestContext]):
    """The smallest real ChatKit server: answers with one cited assistant message."""

    async def respond(
        self,
        thread: ThreadMetadata,
        input_user_message: UserMessageItem | None,
        context: RequestContext,
    ) -> AsyncIterator[ThreadStreamEvent]:
        assert input_user_message is not None
        text = f"You said: {input_user_message.content[0].text}"
        yield ThreadItemDoneEvent(
            item=AssistantMessageItem(
                id=self.store.generate_item_id("message", thread, context),
                thread_id=thread.id,
                created_at=datetime.now(),
                content=[
                    AssistantMessageContent(
                        text=text,
                        annotations=[
                            Annotation(
                                source=URLSource(url="https://docs.example.com/", title="Docs"),
                                index=len(text),
                            )
                        ],
                    )
                ],
            )
        )


async def send(
    server: ChatKitServer[RequestContext], request: dict[str, Any], context: RequestContext
) -> Any:
    result = await server.process(json.dumps(request), context)
    if isinstance(result, NonStreamingResult):
        return json.loads(result.json)
    assert isinstance(result, StreamingResult)
    events = []
    async for chunk in result:
        assert chunk.startswith(b"data: ")
        events.append(json.loads(chunk[len(b"data: ") :]))
    return events


async def test_chatkit_server_conversations_persist_per_visitor(store: VisitorScopedStore) -> None:
    server = EchoServer(store)
    user_input = {
        "content": [{"type": "input_text", "text": "héllo"}],
        "attachments": [],
        "inference_options": {},
    }

    # GIVEN Alice starts a thread and adds a second message
    events = await send(server, {"type": "threads.create", "params": {"input": user_input}}, ALICE)
    assert events[0]["type"] == "thread.created"
    thread_id = events[0]["thread"]["id"]
    assert [e["type"] for e in events[1:]] == [
        "thread.item.done",
        "stream_options",
        "thread.item.done",
    ]
    await send(
        server,
        {
            "type": "threads.add_user_message",
            "params": {"thread_id": thread_id, "input": user_input},
        },
        ALICE,
    )

    # THEN her thread list and items come back through the protocol, newest first
    threads = await send(server, {"type": "threads.list", "params": {"limit": 5}}, ALICE)
    assert [t["id"] for t in threads["data"]] == [thread_id]
    items = await send(
        server, {"type": "items.list", "params": {"thread_id": thread_id, "limit": 3}}, ALICE
    )
    assert [i["type"] for i in items["data"]] == [
        "assistant_message",
        "user_message",
        "assistant_message",
    ]
    assert items["has_more"] is True
    assert items["data"][0]["content"][0]["annotations"][0]["source"]["url"] == (
        "https://docs.example.com/"
    )
    rest = await send(
        server,
        {
            "type": "items.list",
            "params": {"thread_id": thread_id, "limit": 3, "after": items["after"]},
        },
        ALICE,
    )
    assert [i["type"] for i in rest["data"]] == ["user_message"]
    assert rest["has_more"] is False

    # AND Bob sees nothing of it
    assert (await send(server, {"type": "threads.list", "params": {}}, BOB))["data"] == []
    with pytest.raises(NotFoundError):
        await send(server, {"type": "threads.get_by_id", "params": {"thread_id": thread_id}}, BOB)


class PlaceholderIdServer(ChatKitServer[RequestContext]):
    """Answers the way an unpatched Agents SDK Chat Completions run would: with `__fake_id__`."""

    async def respond(
        self,
        thread: ThreadMetadata,
        input_user_message: UserMessageItem | None,
        context: RequestContext,
    ) -> AsyncIterator[ThreadStreamEvent]:
        yield ThreadItemDoneEvent(
            item=AssistantMessageItem(
                id="__fake_id__",
                thread_id=thread.id,
                created_at=datetime.now(),
                content=[AssistantMessageContent(text="an answer")],
            )
        )


async def test_a_placeholder_item_id_surfaces_as_a_stream_error(store: VisitorScopedStore) -> None:
    server = PlaceholderIdServer(store)
    request = {
        "type": "threads.create",
        "params": {
            "input": {
                "content": [{"type": "input_text", "text": "hi"}],
                "attachments": [],
                "inference_options": {},
            }
        },
    }

    events = await send(server, request, ALICE)

    assert events[-1]["type"] == "error"
    assert events[-1]["code"] == "stream.error"
    thread_id = events[0]["thread"]["id"]
    page = await store.load_thread_items(thread_id, None, 10, "asc", ALICE)
    assert [item.type for item in page.data] == ["user_message"]


# --- DynamoDB only ------------------------------------------------------------------------------


def test_threads_table_has_the_deployed_key_schema(dynamodb_client: Any) -> None:
    table = dynamodb_client.describe_table(TableName=TABLE)["Table"]

    assert table["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert sorted(
        (d["AttributeName"], d["AttributeType"]) for d in table["AttributeDefinitions"]
    ) == [("pk", "S"), ("sk", "S")]
    ttl = dynamodb_client.describe_time_to_live(TableName=TABLE)["TimeToLiveDescription"]
    assert ttl["TimeToLiveStatus"] == "ENABLED"
    assert ttl["AttributeName"] == "expires_at"
    assert create_threads_table(dynamodb_client, TABLE) is False  # idempotent


async def test_threads_expire_whole_after_the_ttl(dynamodb_client: Any) -> None:
    now = [1_750_000_000.0]
    store = DynamoDBStore(
        client=dynamodb_client, table_name=TABLE, ttl_days=7, clock=lambda: now[0]
    )
    thread = await saved_thread(store)
    await store.add_thread_item(thread.id, user_message(store, thread, "hi"), ALICE)

    # Every record of the thread carries the same expiry, 7 days after the thread was saved.
    records = dynamodb_client.scan(TableName=TABLE)["Items"]
    assert len(records) == 4  # list row, metadata, item, item index
    assert {r["expires_at"]["N"] for r in records} == {str(1_750_000_000 + 7 * 86_400)}

    # WHEN the expiry passes, before DynamoDB's background sweep has removed anything
    now[0] += 7 * 86_400
    # THEN the thread is gone for the visitor
    with pytest.raises(NotFoundError):
        await store.load_thread(thread.id, ALICE)
    assert (await store.load_threads(10, None, "desc", ALICE)).data == []
    assert len(dynamodb_client.scan(TableName=TABLE)["Items"]) == 4


async def test_deleting_a_big_thread_leaves_no_records_behind(dynamodb_client: Any) -> None:
    store = DynamoDBStore(client=dynamodb_client, table_name=TABLE)
    kept = await saved_thread(store, 1)
    doomed = await saved_thread(store, 2)
    for n in range(30):  # more than one BatchWriteItem (25) of item + index records
        await store.add_thread_item(doomed.id, user_message(store, doomed, "q", second=n), ALICE)

    await store.delete_thread(doomed.id, ALICE)

    keys = {r["sk"]["S"] for r in dynamodb_client.scan(TableName=TABLE)["Items"]}
    assert all(doomed.id not in key for key in keys)
    assert any(kept.id in key for key in keys)
    pks = {r["pk"]["S"] for r in dynamodb_client.scan(TableName=TABLE)["Items"]}
    assert all(doomed.id not in pk for pk in pks)


async def test_a_missing_table_is_reported_as_unavailable(dynamodb_client: Any) -> None:
    store = DynamoDBStore(client=dynamodb_client, table_name="no-such-table")

    with pytest.raises(StoreUnavailable, match="no-such-table"):
        await store.load_threads(10, None, "desc", ALICE)


# --- SQLite only --------------------------------------------------------------------------------


async def test_sqlite_threads_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "chatkit.sqlite3"
    first = SQLiteStore(path=path)
    thread = await saved_thread(first)
    await first.add_thread_item(thread.id, user_message(first, thread, "persist me"), ALICE)
    first.close()

    second = SQLiteStore(path=path)
    try:
        assert await second.load_thread(thread.id, ALICE) == thread
        page = await second.load_thread_items(thread.id, None, 10, "asc", ALICE)
        assert [i.content[0].text for i in page.data] == ["persist me"]
    finally:
        second.close()


async def test_sqlite_concurrent_writes_all_land(tmp_path: Path) -> None:
    # Only SQLite: its one connection is shared by worker threads behind a lock. (moto's in-memory
    # DynamoDB is not thread-safe for concurrent transactions; the real service is.)
    store = SQLiteStore(path=tmp_path / "chatkit.sqlite3")
    thread = await saved_thread(store)
    items = [user_message(store, thread, f"m{n}", second=n) for n in range(12)]

    await asyncio.gather(*(store.add_thread_item(thread.id, i, ALICE) for i in items))

    pages = await collect_items(store, thread.id, limit=5, order="asc")
    assert ids(pages) == [i.id for i in items]
    store.close()
