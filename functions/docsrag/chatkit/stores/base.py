"""What both conversation stores share: errors, ids, sort keys, serialisation and limits.

Both stores keep the same contract (tests/integration/test_chatkit_store_contract.py):

- Every call is scoped to `context.visitor_id`. Another visitor's thread behaves exactly like a
  missing one: chatkit's `NotFoundError`, never listed.
- Threads are listed by creation time, items by their `created_at`; ties are broken by id, so a
  cursor never skips or repeats a record. A record keeps its place when it is replaced.
- Pages follow chatkit's convention: fetch `limit + 1`, `has_more` when there was one more, and
  `after` is the id of the last record of the page when `has_more` (else None).
- Records are JSON of chatkit's own pydantic types, at most `MAX_RECORD_BYTES` each.
"""

from __future__ import annotations

import secrets
import time
from abc import abstractmethod
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Final, TypeVar

from chatkit.store import NotFoundError, Store, StoreItemType
from chatkit.types import Attachment, FeedbackKind, Page, ThreadItem, ThreadMetadata
from pydantic import TypeAdapter, ValidationError

from docsrag.chatkit.context import RequestContext
from docsrag.errors import DocsRagError

# DynamoDB caps an item at 400 KB including attribute names and keys; the JSON body gets the rest.
# The SQLite store enforces the same cap so local runs fail the way production would.
MAX_RECORD_BYTES: Final = 380_000
# Ids we generate are ~40 characters. Longer ids cannot exist in the store (writes refuse them),
# so lookups with them are plain misses; this also keeps DynamoDB key sizes far below their caps.
MAX_ID_LENGTH: Final = 200
# ChatKit takes `limit` from the client; a page never holds more than this.
MAX_PAGE_SIZE: Final = 100
# The Agents SDK gives every Chat Completions output item this same id. Storing it would make each
# new assistant message overwrite the previous one, so the stores refuse it (see .chatkit-notes.md).
AGENTS_PLACEHOLDER_ID: Final = "__fake_id__"
# Items one `save_feedback` call may rate (ChatKit sends one; DynamoDB caps a transaction).
MAX_FEEDBACK_ITEMS: Final = 20

_ID_PREFIXES: Final[dict[str, str]] = {
    "thread": "thr",
    "message": "msg",
    "tool_call": "tc",
    "workflow": "wf",
    "task": "tsk",
    "attachment": "atc",
    "sdk_hidden_context": "shcx",
}

_ITEM_ADAPTER: Final = TypeAdapter[ThreadItem](ThreadItem)
_THREAD_FIELDS: Final = frozenset(ThreadMetadata.model_fields)


class StoreError(DocsRagError):
    """The conversation store failed or refused a record."""


class StoreUnavailable(StoreError):
    """The conversation store cannot be reached or refused the request (after SDK retries)."""


class RecordTooLarge(StoreError):
    """A thread or thread item is bigger than a store record may be (`MAX_RECORD_BYTES`)."""


def new_id(prefix: str) -> str:
    """`<prefix>_<16 hex of time_ns><16 random hex>`: unique, and roughly in creation order.

    chatkit's default ids carry only 32 random bits; these carry 64 plus the clock, so ids from
    many Lambda containers do not collide, and equal timestamps still sort by creation.
    """
    return f"{prefix}_{time.time_ns():016x}{secrets.token_hex(8)}"


def sort_time(value: datetime) -> str:
    """A fixed-width UTC timestamp that sorts as text. Naive datetimes are local time.

    ChatKit stamps items with `datetime.now()` (naive, local); on Lambda local time is UTC.
    """
    utc = value.astimezone(UTC).replace(tzinfo=None)
    return utc.isoformat(timespec="microseconds")


def is_ascending(order: str) -> bool:
    if order not in ("asc", "desc"):
        raise ValueError(f"order must be 'asc' or 'desc', got {order!r}")
    return order == "asc"


def page_size(limit: int) -> int:
    """Clamp a client-given limit to 1..MAX_PAGE_SIZE (a short page still says `has_more`)."""
    return max(1, min(limit, MAX_PAGE_SIZE))


T = TypeVar("T")


def build_page(records: list[T], size: int, *, id_of: Callable[[T], str]) -> Page[T]:
    """chatkit's page shape from up to `size + 1` records fetched in page order."""
    has_more = len(records) > size
    data = records[:size]
    return Page(data=data, has_more=has_more, after=id_of(data[-1]) if has_more else None)


def is_known_id(value: str) -> bool:
    """False for ids that cannot be in the store (empty, oversized): writes refuse them."""
    return 0 < len(value) <= MAX_ID_LENGTH


def require_known_id(value: str, *, what: str) -> None:
    """Raise chatkit's NotFoundError for ids that cannot be in the store."""
    if not is_known_id(value):
        raise NotFoundError(f"{what} not found")


def check_writable_id(value: str, *, what: str) -> None:
    if not value or len(value) > MAX_ID_LENGTH:
        raise ValueError(f"{what} id must be 1-{MAX_ID_LENGTH} characters")


def dump_thread(thread: ThreadMetadata) -> str:
    """Thread metadata as JSON. A full `Thread` (ChatKitServer passes one) loses its items."""
    check_writable_id(thread.id, what="thread")
    body = thread.model_dump_json(include=set(_THREAD_FIELDS))
    _check_size(body, what=f"thread {thread.id}")
    return body


def load_thread_json(body: str | bytes) -> ThreadMetadata:
    try:
        return ThreadMetadata.model_validate_json(body)
    except ValidationError as exc:
        raise StoreError("a stored thread no longer matches chatkit's ThreadMetadata") from exc


def dump_item(thread_id: str, item: ThreadItem) -> str:
    """A thread item as JSON, after checking it may be stored in `thread_id`."""
    check_writable_id(item.id, what="item")
    if item.id == AGENTS_PLACEHOLDER_ID:
        raise ValueError(
            f"item id {AGENTS_PLACEHOLDER_ID!r} is the Agents SDK placeholder for Chat Completions"
            " output; give the item an id from store.generate_item_id() before it is saved"
        )
    if item.thread_id != thread_id:
        raise ValueError(f"item {item.id} belongs to thread {item.thread_id}, not {thread_id}")
    body = _ITEM_ADAPTER.dump_json(item).decode("utf-8")
    _check_size(body, what=f"item {item.id}")
    return body


def load_item_json(body: str | bytes) -> ThreadItem:
    try:
        return _ITEM_ADAPTER.validate_json(body)
    except ValidationError as exc:
        raise StoreError("a stored thread item no longer matches chatkit's ThreadItem") from exc


def _check_size(body: str, *, what: str) -> None:
    size = len(body.encode("utf-8"))
    if size > MAX_RECORD_BYTES:
        raise RecordTooLarge(
            f"{what} is {size} bytes as JSON; a stored record may be at most {MAX_RECORD_BYTES}"
        )


def check_feedback_request(thread_id: str, item_ids: Sequence[str]) -> None:
    """Refuse a `save_feedback` call before touching the store.

    NotFoundError for ids that cannot be in the store; ValueError for 0 or too many items.
    """
    require_known_id(thread_id, what="thread")
    if not 1 <= len(item_ids) <= MAX_FEEDBACK_ITEMS:
        raise ValueError(f"feedback names 1-{MAX_FEEDBACK_ITEMS} items, got {len(item_ids)}")
    for item_id in item_ids:
        require_known_id(item_id, what="item")


def load_feedback_kind(value: str) -> FeedbackKind:
    """A feedback kind as read back from the store (StoreError when it is neither)."""
    if value == "positive":
        return "positive"
    if value == "negative":
        return "negative"
    raise StoreError(f"a stored feedback kind is neither positive nor negative: {value!r}")


class VisitorScopedStore(Store[RequestContext]):
    """What both stores share: id generation, item writes, attachments and the feedback contract.

    `add_thread_item` and `save_item` are one operation, `_put_item`: insert, or replace in
    place (a replaced item keeps its position in the thread).

    Attachments are not supported: `load_attachment` finds none (so a client-sent attachment id
    fails the request with NotFoundError) and `save_attachment` refuses.

    Feedback (ChatKit's `items.feedback`) is kept per item: `save_feedback` records the latest
    kind for each item, all or nothing, and raises NotFoundError when the thread or any of the
    items is not there; it leaves with its item and its thread.
    """

    @abstractmethod
    async def _put_item(self, thread_id: str, item: ThreadItem, context: RequestContext) -> None:
        """Insert `item`, or replace it in place; NotFoundError when the thread is not there."""

    async def add_thread_item(
        self, thread_id: str, item: ThreadItem, context: RequestContext
    ) -> None:
        await self._put_item(thread_id, item, context)

    async def save_item(self, thread_id: str, item: ThreadItem, context: RequestContext) -> None:
        await self._put_item(thread_id, item, context)

    @abstractmethod
    async def save_feedback(
        self,
        thread_id: str,
        item_ids: Sequence[str],
        kind: FeedbackKind,
        context: RequestContext,
    ) -> None:
        """Record `kind` for every item (replacing earlier feedback on them)."""

    @abstractmethod
    async def load_feedback(
        self, thread_id: str, context: RequestContext
    ) -> dict[str, FeedbackKind]:
        """The latest feedback of the thread's items, by item id."""

    def generate_thread_id(self, context: RequestContext) -> str:
        return new_id(_ID_PREFIXES["thread"])

    def generate_item_id(
        self, item_type: StoreItemType, thread: ThreadMetadata, context: RequestContext
    ) -> str:
        return new_id(_ID_PREFIXES.get(item_type, "itm"))

    async def save_attachment(self, attachment: Attachment, context: RequestContext) -> None:
        raise NotImplementedError("docsrag does not accept attachments")

    async def load_attachment(self, attachment_id: str, context: RequestContext) -> Attachment:
        raise NotFoundError("attachment not found")

    async def delete_attachment(self, attachment_id: str, context: RequestContext) -> None:
        raise NotFoundError("attachment not found")
