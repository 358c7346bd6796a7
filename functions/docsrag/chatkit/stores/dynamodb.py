"""ChatKit threads in one DynamoDB table (single-table design), for the serverless deployment.

Table: string keys `pk` (HASH) and `sk` (RANGE), on-demand billing, TTL on `expires_at` (epoch
seconds). `create_threads_table` creates it for tests and local tools; the SAM template declares
the same schema. Records (the visitor id never contains `#`, so keys cannot be confused):

    record           pk                          sk                            attributes
    thread list row  VISITOR#<visitor>           THREAD#<created_at>#<thread>  body
    thread metadata  THREAD#<visitor>#<thread>   META                          body, list_sk
    thread item      THREAD#<visitor>#<thread>   ITEM#<created_at>#<item>      body
    item id index    THREAD#<visitor>#<thread>   IDX#<item>                    item_sk
    item feedback    THREAD#<visitor>#<thread>   FEEDBACK#<item>               kind, updated_at

Every record also carries `expires_at` when a TTL is configured.

`<created_at>` is a fixed-width UTC timestamp (`base.sort_time`), so a Query on a partition
returns threads/items in time order (ties by id), both ways via `ScanIndexForward`. An `after`
cursor is an id: its sort key comes from the thread's `META.list_sk` or the item's `IDX` record,
and becomes the Query's `ExclusiveStartKey` (a position; the record need not still exist).
Every read is strongly consistent: ChatKit reads items right after writing them.

Writes that must agree go in one `TransactWriteItems`: a thread's metadata and its list row; an
item, its index row and a check that the thread still exists (so no item lands in another
visitor's or a deleted thread). Deleting a thread removes the metadata and list row atomically,
then batch-deletes the partition's items.

Retention: a thread and everything in it expire together, `ttl_days` after the thread was first
saved. DynamoDB deletes expired records lazily (within days), so reads treat records whose
`expires_at` has passed as missing.

The boto3 client is synchronous: every call runs in a worker thread (`asyncio.to_thread`).
Library errors become `StoreUnavailable` (and `RecordTooLarge` for oversized records).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Final, TypeVar

from botocore.exceptions import BotoCoreError, ClientError
from chatkit.store import NotFoundError
from chatkit.types import FeedbackKind, Page, ThreadItem, ThreadMetadata

from docsrag.chatkit.context import RequestContext
from docsrag.chatkit.stores.base import (
    RecordTooLarge,
    StoreUnavailable,
    VisitorScopedStore,
    build_page,
    check_feedback_request,
    dump_item,
    dump_thread,
    is_ascending,
    is_known_id,
    load_feedback_kind,
    load_item_json,
    load_thread_json,
    page_size,
    require_known_id,
    sort_time,
)

logger = logging.getLogger(__name__)

TTL_ATTRIBUTE: Final = "expires_at"
DEFAULT_TTL_DAYS: Final = 30

_META_SK: Final = "META"
_SECONDS_PER_DAY: Final = 86_400
_BATCH_WRITE_MAX: Final = 25
_BATCH_WRITE_ATTEMPTS: Final = 5
_RACE_ATTEMPTS: Final = 3
# A record is "there" when it exists and has not expired; "absent" otherwise.
_LIVE: Final = "attribute_exists(pk) AND (attribute_not_exists(expires_at) OR expires_at > :now)"
_ABSENT: Final = "attribute_not_exists(pk) OR expires_at <= :now"

T = TypeVar("T")
Record = dict[str, Any]

# boto3 ships no type information; the client is a `boto3.client("dynamodb")`.
DynamoDBClient = Any


def create_threads_table(client: DynamoDBClient, name: str) -> bool:
    """Create the threads table (pk S HASH, sk S RANGE, on-demand, TTL on `expires_at`).

    Waits until the table is active. Returns False, changing nothing, when it already exists.
    """
    try:
        client.create_table(
            TableName=name,
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
    except ClientError as exc:
        if _error_code(exc) == "ResourceInUseException":
            return False
        raise StoreUnavailable(f"cannot create DynamoDB table {name}: {_error_code(exc)}") from exc
    except BotoCoreError as exc:
        raise StoreUnavailable(f"cannot create DynamoDB table {name}: {exc}") from exc
    try:
        client.get_waiter("table_exists").wait(
            TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120}
        )
        client.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
        )
    except (BotoCoreError, ClientError) as exc:
        raise StoreUnavailable(f"DynamoDB table {name} did not become ready: {exc}") from exc
    return True


class _Cancelled(Exception):
    """A transaction's condition failed; `reasons` holds one code per action ("None" = passed)."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__(", ".join(reasons))
        self.reasons = reasons


class DynamoDBStore(VisitorScopedStore):
    """A chatkit `Store` in one DynamoDB table, every key scoped to the request's visitor."""

    def __init__(
        self,
        *,
        client: DynamoDBClient,
        table_name: str,
        ttl_days: int | None = DEFAULT_TTL_DAYS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if ttl_days is not None and ttl_days < 1:
            raise ValueError("ttl_days must be at least 1 (or None to keep threads forever)")
        self._client = client
        self._table = table_name
        self._ttl_seconds = None if ttl_days is None else ttl_days * _SECONDS_PER_DAY
        self._clock = clock

    # --- threads ------------------------------------------------------------------------------

    async def load_thread(self, thread_id: str, context: RequestContext) -> ThreadMetadata:
        require_known_id(thread_id, what="thread")

        def run() -> ThreadMetadata:
            meta = self._require_meta(context.visitor_id, thread_id, self._now())
            return load_thread_json(meta["body"]["S"])

        return await self._run(run)

    async def save_thread(self, thread: ThreadMetadata, context: RequestContext) -> None:
        body = dump_thread(thread)
        visitor = context.visitor_id
        pk = _thread_pk(visitor, thread.id)

        def run() -> None:
            for _ in range(_RACE_ATTEMPTS):
                now = self._now()
                meta = self._get(pk, _META_SK, now)
                if meta is not None:
                    list_sk = meta["list_sk"]["S"]
                    expires = meta.get(TTL_ATTRIBUTE)
                    condition = _LIVE
                else:
                    list_sk = f"THREAD#{sort_time(thread.created_at)}#{thread.id}"
                    expires = self._expiry(now)
                    condition = _ABSENT
                extra = {TTL_ATTRIBUTE: expires} if expires is not None else {}
                try:
                    self._transact(
                        [
                            self._put(
                                {
                                    "pk": _s(pk),
                                    "sk": _s(_META_SK),
                                    "body": _s(body),
                                    "list_sk": _s(list_sk),
                                    **extra,
                                },
                                condition=condition,
                                now=now,
                            ),
                            self._put(
                                {
                                    "pk": _s(_visitor_pk(visitor)),
                                    "sk": _s(list_sk),
                                    "body": _s(body),
                                    **extra,
                                }
                            ),
                        ]
                    )
                    return
                except _Cancelled:
                    continue  # created or deleted meanwhile: look again
            raise StoreUnavailable(f"thread {thread.id} kept changing while being saved")

        await self._run(run)

    async def load_threads(
        self, limit: int, after: str | None, order: str, context: RequestContext
    ) -> Page[ThreadMetadata]:
        ascending = is_ascending(order)
        size = page_size(limit)
        visitor = context.visitor_id
        if after is not None:
            require_known_id(after, what="thread")

        def run() -> Page[ThreadMetadata]:
            now = self._now()
            start = None
            if after is not None:
                start = self._require_meta(visitor, after, now)["list_sk"]["S"]
            records = self._query(
                _visitor_pk(visitor),
                "THREAD#",
                ascending=ascending,
                start_sk=start,
                count=size + 1,
                now=now,
            )
            threads = [load_thread_json(record["body"]["S"]) for record in records]
            return build_page(threads, size, id_of=lambda thread: thread.id)

        return await self._run(run)

    async def delete_thread(self, thread_id: str, context: RequestContext) -> None:
        """Remove the thread from view atomically, then batch-delete its items.

        If the batch delete fails part-way, the leftovers are unreachable (their thread is gone)
        and expire with the thread's TTL; the failure is logged, not raised.
        """
        require_known_id(thread_id, what="thread")
        visitor = context.visitor_id
        pk = _thread_pk(visitor, thread_id)

        def run() -> None:
            now = self._now()
            meta = self._require_meta(visitor, thread_id, now)
            try:
                self._transact(
                    [
                        self._delete(pk, _META_SK, condition=_LIVE, now=now),
                        self._delete(_visitor_pk(visitor), meta["list_sk"]["S"]),
                    ]
                )
            except _Cancelled as exc:
                raise NotFoundError(f"thread {thread_id} not found") from exc
            try:
                self._delete_partition(pk)
            except (BotoCoreError, ClientError, StoreUnavailable) as exc:
                logger.warning(
                    "thread %s deleted but some of its items were not: %s "
                    "(they are unreachable and expire with the thread's TTL)",
                    thread_id,
                    exc,
                )

        await self._run(run)

    # --- thread items -------------------------------------------------------------------------

    async def load_thread_items(
        self,
        thread_id: str,
        after: str | None,
        limit: int,
        order: str,
        context: RequestContext,
    ) -> Page[ThreadItem]:
        require_known_id(thread_id, what="thread")
        if after is not None:
            require_known_id(after, what="item")
        ascending = is_ascending(order)
        size = page_size(limit)
        visitor = context.visitor_id
        pk = _thread_pk(visitor, thread_id)

        def run() -> Page[ThreadItem]:
            now = self._now()
            self._require_meta(visitor, thread_id, now)
            start = None
            if after is not None:
                index = self._get(pk, f"IDX#{after}", now)
                if index is None:
                    raise NotFoundError(f"item {after} not found")
                start = index["item_sk"]["S"]
            records = self._query(
                pk, "ITEM#", ascending=ascending, start_sk=start, count=size + 1, now=now
            )
            items = [load_item_json(record["body"]["S"]) for record in records]
            return build_page(items, size, id_of=lambda item: item.id)

        return await self._run(run)

    async def load_item(self, thread_id: str, item_id: str, context: RequestContext) -> ThreadItem:
        require_known_id(thread_id, what="thread")
        require_known_id(item_id, what="item")
        visitor = context.visitor_id
        pk = _thread_pk(visitor, thread_id)

        def run() -> ThreadItem:
            now = self._now()
            self._require_meta(visitor, thread_id, now)
            index = self._get(pk, f"IDX#{item_id}", now)
            record = None if index is None else self._get(pk, index["item_sk"]["S"], now)
            if record is None:
                raise NotFoundError(f"item {item_id} not found in thread {thread_id}")
            return load_item_json(record["body"]["S"])

        return await self._run(run)

    async def delete_thread_item(
        self, thread_id: str, item_id: str, context: RequestContext
    ) -> None:
        """Delete one item; an item the thread does not hold is already gone (no error)."""
        require_known_id(thread_id, what="thread")
        visitor = context.visitor_id
        pk = _thread_pk(visitor, thread_id)

        def run() -> None:
            now = self._now()
            self._require_meta(visitor, thread_id, now)
            index = self._get(pk, f"IDX#{item_id}", now) if is_known_id(item_id) else None
            if index is None:
                return
            try:
                self._transact(
                    [
                        self._delete(pk, index["item_sk"]["S"]),
                        self._delete(pk, f"IDX#{item_id}"),
                        self._delete(pk, f"FEEDBACK#{item_id}"),
                        self._check_thread(pk, now),
                    ]
                )
            except _Cancelled as exc:
                raise NotFoundError(f"thread {thread_id} not found") from exc

        await self._run(run)

    # --- feedback -------------------------------------------------------------------------------

    async def save_feedback(
        self,
        thread_id: str,
        item_ids: Sequence[str],
        kind: FeedbackKind,
        context: RequestContext,
    ) -> None:
        """One transaction: the thread and every item must be live, or nothing is written."""
        check_feedback_request(thread_id, item_ids)
        visitor = context.visitor_id
        pk = _thread_pk(visitor, thread_id)

        def run() -> None:
            now = self._now()
            meta = self._require_meta(visitor, thread_id, now)
            expires = meta.get(TTL_ATTRIBUTE)
            extra = {TTL_ATTRIBUTE: expires} if expires is not None else {}
            actions = [self._check_thread(pk, now)]
            for item_id in dict.fromkeys(item_ids):
                record = {
                    "pk": _s(pk),
                    "sk": _s(f"FEEDBACK#{item_id}"),
                    "kind": _s(kind),
                    "updated_at": _n(now),
                    **extra,
                }
                actions += [self._check(pk, f"IDX#{item_id}", now), self._put(record)]
            try:
                self._transact(actions)
            except _Cancelled as exc:
                raise NotFoundError(f"thread {thread_id} or one of its items not found") from exc

        await self._run(run)

    async def load_feedback(
        self, thread_id: str, context: RequestContext
    ) -> dict[str, FeedbackKind]:
        require_known_id(thread_id, what="thread")
        visitor = context.visitor_id
        pk = _thread_pk(visitor, thread_id)

        def run() -> dict[str, FeedbackKind]:
            now = self._now()
            self._require_meta(visitor, thread_id, now)
            records = self._query(
                pk, "FEEDBACK#", ascending=True, start_sk=None, count=10_000, now=now
            )
            return {
                record["sk"]["S"].removeprefix("FEEDBACK#"): load_feedback_kind(record["kind"]["S"])
                for record in records
            }

        return await self._run(run)

    async def _put_item(self, thread_id: str, item: ThreadItem, context: RequestContext) -> None:
        """Insert, or replace in place: a replaced item keeps its position in the thread."""
        require_known_id(thread_id, what="thread")
        body = dump_item(thread_id, item)
        visitor = context.visitor_id
        pk = _thread_pk(visitor, thread_id)
        index_sk = f"IDX#{item.id}"

        def run() -> None:
            for _ in range(_RACE_ATTEMPTS):
                now = self._now()
                meta = self._require_meta(visitor, thread_id, now)
                expires = meta.get(TTL_ATTRIBUTE)
                extra = {TTL_ATTRIBUTE: expires} if expires is not None else {}
                index = self._get(pk, index_sk, now)
                check = self._check_thread(pk, now)
                if index is not None:
                    item_sk = index["item_sk"]["S"]
                    actions = [
                        self._put({"pk": _s(pk), "sk": _s(item_sk), "body": _s(body), **extra}),
                        # Replace only while the item still exists: a concurrent delete must not
                        # leave an item record without its index row.
                        self._check(pk, index_sk, now),
                        check,
                    ]
                else:
                    item_sk = f"ITEM#{sort_time(item.created_at)}#{item.id}"
                    actions = [
                        self._put(
                            {"pk": _s(pk), "sk": _s(item_sk), "body": _s(body), **extra},
                            condition=_ABSENT,
                            now=now,
                        ),
                        self._put(
                            {"pk": _s(pk), "sk": _s(index_sk), "item_sk": _s(item_sk), **extra},
                            condition=_ABSENT,
                            now=now,
                        ),
                        check,
                    ]
                try:
                    self._transact(actions)
                    return
                except _Cancelled as exc:
                    if exc.reasons[-1] == "ConditionalCheckFailed":
                        raise NotFoundError(f"thread {thread_id} not found") from exc
                    continue  # the item was added or deleted meanwhile: look again
            raise StoreUnavailable(f"item {item.id} kept changing while being saved")

        await self._run(run)

    # --- plumbing -----------------------------------------------------------------------------

    def _now(self) -> int:
        return int(self._clock())

    def _expiry(self, now: int) -> dict[str, str] | None:
        return None if self._ttl_seconds is None else _n(now + self._ttl_seconds)

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.to_thread(self._call, fn)

    def _call(self, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except ClientError as exc:
            code = _error_code(exc)
            message = str(exc.response.get("Error", {}).get("Message", ""))
            if code == "ValidationException" and "size" in message.lower():
                raise RecordTooLarge(f"DynamoDB refused a record as too large: {message}") from exc
            raise StoreUnavailable(f"DynamoDB table {self._table}: {code or exc}") from exc
        except BotoCoreError as exc:
            raise StoreUnavailable(f"DynamoDB table {self._table}: {exc}") from exc

    def _get(self, pk: str, sk: str, now: int) -> Record | None:
        response = self._client.get_item(
            TableName=self._table, Key={"pk": _s(pk), "sk": _s(sk)}, ConsistentRead=True
        )
        record: Record | None = response.get("Item")
        return record if record is not None and _live(record, now) else None

    def _require_meta(self, visitor: str, thread_id: str, now: int) -> Record:
        meta = self._get(_thread_pk(visitor, thread_id), _META_SK, now)
        if meta is None:
            raise NotFoundError(f"thread {thread_id} not found")
        return meta

    def _query(
        self,
        pk: str,
        prefix: str,
        *,
        ascending: bool,
        start_sk: str | None,
        count: int,
        now: int,
    ) -> list[Record]:
        """Up to `count` live records of `pk` whose sk starts with `prefix`, after `start_sk`."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":pk": _s(pk), ":prefix": _s(prefix)},
            "ScanIndexForward": ascending,
            "ConsistentRead": True,
        }
        if start_sk is not None:
            request["ExclusiveStartKey"] = {"pk": _s(pk), "sk": _s(start_sk)}
        records: list[Record] = []
        # A response stops at `Limit` records or 1 MB, whichever comes first: keep going.
        while len(records) < count:
            response = self._client.query(**request, Limit=count - len(records))
            records.extend(record for record in response["Items"] if _live(record, now))
            if "LastEvaluatedKey" not in response:
                break
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return records

    def _delete_partition(self, pk: str) -> None:
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": _s(pk)},
            "ProjectionExpression": "pk, sk",
            "ConsistentRead": True,
        }
        while True:
            response = self._client.query(**request)
            keys = response["Items"]
            for start in range(0, len(keys), _BATCH_WRITE_MAX):
                self._batch_delete(keys[start : start + _BATCH_WRITE_MAX])
            if "LastEvaluatedKey" not in response:
                return
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def _batch_delete(self, keys: list[Record]) -> None:
        pending: list[Record] = [{"DeleteRequest": {"Key": key}} for key in keys]
        for attempt in range(_BATCH_WRITE_ATTEMPTS):
            response = self._client.batch_write_item(RequestItems={self._table: pending})
            pending = response.get("UnprocessedItems", {}).get(self._table, [])
            if not pending:
                return
            time.sleep(0.05 * 2**attempt)  # throttled: back off before the retry
        raise StoreUnavailable(f"{len(pending)} records were still unprocessed after retries")

    def _transact(self, actions: list[Record]) -> None:
        try:
            self._client.transact_write_items(TransactItems=actions)
        except ClientError as exc:
            if _error_code(exc) != "TransactionCanceledException":
                raise
            reasons = [
                str(reason.get("Code", "None"))
                for reason in exc.response.get("CancellationReasons", [])
            ]
            if "ConditionalCheckFailed" not in reasons:
                raise  # conflicts with another transaction, throttling: unavailable
            raise _Cancelled(reasons) from exc

    def _put(self, record: Record, *, condition: str | None = None, now: int = 0) -> Record:
        put: Record = {"TableName": self._table, "Item": record}
        if condition is not None:
            put["ConditionExpression"] = condition
            put["ExpressionAttributeValues"] = {":now": _n(now)}
        return {"Put": put}

    def _delete(self, pk: str, sk: str, *, condition: str | None = None, now: int = 0) -> Record:
        delete: Record = {"TableName": self._table, "Key": {"pk": _s(pk), "sk": _s(sk)}}
        if condition is not None:
            delete["ConditionExpression"] = condition
            delete["ExpressionAttributeValues"] = {":now": _n(now)}
        return {"Delete": delete}

    def _check_thread(self, pk: str, now: int) -> Record:
        """A transaction action that fails unless the thread's metadata is live."""
        return self._check(pk, _META_SK, now)

    def _check(self, pk: str, sk: str, now: int) -> Record:
        """A transaction action that fails unless the record is live."""
        return {
            "ConditionCheck": {
                "TableName": self._table,
                "Key": {"pk": _s(pk), "sk": _s(sk)},
                "ConditionExpression": _LIVE,
                "ExpressionAttributeValues": {":now": _n(now)},
            }
        }


def _thread_pk(visitor: str, thread_id: str) -> str:
    return f"THREAD#{visitor}#{thread_id}"


def _visitor_pk(visitor: str) -> str:
    return f"VISITOR#{visitor}"


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def _live(record: Record, now: int) -> bool:
    expires = record.get(TTL_ATTRIBUTE)
    return expires is None or int(expires["N"]) > now


def _error_code(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
