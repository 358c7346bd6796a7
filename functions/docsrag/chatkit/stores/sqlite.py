"""ChatKit threads in one SQLite file, for local development and single-process servers.

Concurrency: the store holds one `sqlite3` connection guarded by a `threading.Lock`, and every
call runs in a worker thread (`asyncio.to_thread`), so FastAPI's event loop never blocks on disk
and calls from concurrent requests run one at a time. Multi-statement writes run in one
`BEGIN IMMEDIATE` transaction. WAL journaling lets another process (the CLI) read meanwhile.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Final, Literal, TypeVar

from chatkit.store import NotFoundError
from chatkit.types import FeedbackKind, Page, ThreadItem, ThreadMetadata

from docsrag.chatkit.context import RequestContext
from docsrag.chatkit.stores.base import (
    StoreError,
    StoreUnavailable,
    VisitorScopedStore,
    build_page,
    check_feedback_request,
    dump_item,
    dump_thread,
    is_ascending,
    load_feedback_kind,
    load_item_json,
    load_thread_json,
    page_size,
    require_known_id,
    sort_time,
)

DEFAULT_SQLITE_PATH: Final = Path(".data/chatkit.sqlite3")
SCHEMA_VERSION: Final = 1

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS threads (
    visitor_id TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    sort_key TEXT NOT NULL,      -- creation time (UTC, fixed width) at first save
    body TEXT NOT NULL,          -- ThreadMetadata JSON
    PRIMARY KEY (visitor_id, thread_id)
);
CREATE INDEX IF NOT EXISTS threads_by_time ON threads (visitor_id, sort_key, thread_id);
CREATE TABLE IF NOT EXISTS items (
    visitor_id TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    sort_key TEXT NOT NULL,      -- item created_at (UTC, fixed width) at first save
    body TEXT NOT NULL,          -- ThreadItem JSON
    PRIMARY KEY (visitor_id, thread_id, item_id)
);
CREATE INDEX IF NOT EXISTS items_by_time ON items (visitor_id, thread_id, sort_key, item_id);
CREATE TABLE IF NOT EXISTS feedback (
    visitor_id TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    kind TEXT NOT NULL,          -- "positive" | "negative", the latest given
    updated_at REAL NOT NULL,    -- epoch seconds
    PRIMARY KEY (visitor_id, thread_id, item_id)
);
"""

T = TypeVar("T")


class SQLiteStore(VisitorScopedStore):
    """A chatkit `Store` in one SQLite file, every query scoped to the request's visitor."""

    def __init__(self, *, path: Path | str = DEFAULT_SQLITE_PATH) -> None:
        self._path = Path(path)
        self._lock = threading.Lock()
        try:
            if str(path) != ":memory:":
                self._path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(
                self._path, timeout=10.0, isolation_level=None, check_same_thread=False
            )
        except (OSError, sqlite3.Error) as exc:
            raise StoreUnavailable(f"cannot open the SQLite store at {self._path}: {exc}") from exc
        self._call(self._init_schema)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # --- threads ------------------------------------------------------------------------------

    async def load_thread(self, thread_id: str, context: RequestContext) -> ThreadMetadata:
        require_known_id(thread_id, what="thread")

        def run(conn: sqlite3.Connection) -> ThreadMetadata:
            row = conn.execute(
                "SELECT body FROM threads WHERE visitor_id = ? AND thread_id = ?",
                (context.visitor_id, thread_id),
            ).fetchone()
            if row is None:
                raise NotFoundError(f"thread {thread_id} not found")
            return load_thread_json(row[0])

        return await self._run(run)

    async def save_thread(self, thread: ThreadMetadata, context: RequestContext) -> None:
        body = dump_thread(thread)

        def run(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO threads (visitor_id, thread_id, sort_key, body) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (visitor_id, thread_id) DO UPDATE SET body = excluded.body",
                (context.visitor_id, thread.id, sort_time(thread.created_at), body),
            )

        await self._run(run)

    async def load_threads(
        self, limit: int, after: str | None, order: str, context: RequestContext
    ) -> Page[ThreadMetadata]:
        ascending = is_ascending(order)
        size = page_size(limit)

        def run(conn: sqlite3.Connection) -> Page[ThreadMetadata]:
            bodies = _page_bodies(
                conn,
                "thread",
                {"visitor_id": context.visitor_id},
                after=after,
                ascending=ascending,
                count=size + 1,
            )
            threads = [load_thread_json(body) for body in bodies]
            return build_page(threads, size, id_of=lambda thread: thread.id)

        return await self._run(run)

    async def delete_thread(self, thread_id: str, context: RequestContext) -> None:
        require_known_id(thread_id, what="thread")

        def run(conn: sqlite3.Connection) -> None:
            with _transaction(conn):
                key = (context.visitor_id, thread_id)
                deleted = conn.execute(
                    "DELETE FROM threads WHERE visitor_id = ? AND thread_id = ?", key
                ).rowcount
                if not deleted:
                    raise NotFoundError(f"thread {thread_id} not found")
                conn.execute("DELETE FROM items WHERE visitor_id = ? AND thread_id = ?", key)
                conn.execute("DELETE FROM feedback WHERE visitor_id = ? AND thread_id = ?", key)

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
        ascending = is_ascending(order)
        size = page_size(limit)

        def run(conn: sqlite3.Connection) -> Page[ThreadItem]:
            _require_thread(conn, context.visitor_id, thread_id)
            bodies = _page_bodies(
                conn,
                "item",
                {"visitor_id": context.visitor_id, "thread_id": thread_id},
                after=after,
                ascending=ascending,
                count=size + 1,
            )
            items = [load_item_json(body) for body in bodies]
            return build_page(items, size, id_of=lambda item: item.id)

        return await self._run(run)

    async def load_item(self, thread_id: str, item_id: str, context: RequestContext) -> ThreadItem:
        require_known_id(thread_id, what="thread")
        require_known_id(item_id, what="item")

        def run(conn: sqlite3.Connection) -> ThreadItem:
            row = conn.execute(
                "SELECT body FROM items WHERE visitor_id = ? AND thread_id = ? AND item_id = ?",
                (context.visitor_id, thread_id, item_id),
            ).fetchone()
            if row is None:
                raise NotFoundError(f"item {item_id} not found in thread {thread_id}")
            return load_item_json(row[0])

        return await self._run(run)

    async def delete_thread_item(
        self, thread_id: str, item_id: str, context: RequestContext
    ) -> None:
        """Delete one item; an item the thread does not hold is already gone (no error)."""
        require_known_id(thread_id, what="thread")

        def run(conn: sqlite3.Connection) -> None:
            with _transaction(conn):
                _require_thread(conn, context.visitor_id, thread_id)
                key = (context.visitor_id, thread_id, item_id)
                conn.execute(
                    "DELETE FROM items WHERE visitor_id = ? AND thread_id = ? AND item_id = ?", key
                )
                conn.execute(
                    "DELETE FROM feedback WHERE visitor_id = ? AND thread_id = ? AND item_id = ?",
                    key,
                )

        await self._run(run)

    # --- feedback -------------------------------------------------------------------------------

    async def save_feedback(
        self,
        thread_id: str,
        item_ids: Sequence[str],
        kind: FeedbackKind,
        context: RequestContext,
    ) -> None:
        check_feedback_request(thread_id, item_ids)
        now = time.time()

        def run(conn: sqlite3.Connection) -> None:
            with _transaction(conn):
                _require_thread(conn, context.visitor_id, thread_id)
                for item_id in dict.fromkeys(item_ids):
                    key = (context.visitor_id, thread_id, item_id)
                    row = conn.execute(
                        "SELECT 1 FROM items"
                        " WHERE visitor_id = ? AND thread_id = ? AND item_id = ?",
                        key,
                    ).fetchone()
                    if row is None:
                        raise NotFoundError(f"item {item_id} not found in thread {thread_id}")
                    conn.execute(
                        "INSERT INTO feedback (visitor_id, thread_id, item_id, kind, updated_at)"
                        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (visitor_id, thread_id, item_id)"
                        " DO UPDATE SET kind = excluded.kind, updated_at = excluded.updated_at",
                        (*key, kind, now),
                    )

        await self._run(run)

    async def load_feedback(
        self, thread_id: str, context: RequestContext
    ) -> dict[str, FeedbackKind]:
        require_known_id(thread_id, what="thread")

        def run(conn: sqlite3.Connection) -> dict[str, FeedbackKind]:
            _require_thread(conn, context.visitor_id, thread_id)
            rows = conn.execute(
                "SELECT item_id, kind FROM feedback WHERE visitor_id = ? AND thread_id = ?",
                (context.visitor_id, thread_id),
            )
            return {item_id: load_feedback_kind(kind) for item_id, kind in rows}

        return await self._run(run)

    async def _put_item(self, thread_id: str, item: ThreadItem, context: RequestContext) -> None:
        """Insert, or replace in place: a replaced item keeps its position in the thread."""
        require_known_id(thread_id, what="thread")
        body = dump_item(thread_id, item)

        def run(conn: sqlite3.Connection) -> None:
            with _transaction(conn):
                _require_thread(conn, context.visitor_id, thread_id)
                conn.execute(
                    "INSERT INTO items (visitor_id, thread_id, item_id, sort_key, body)"
                    " VALUES (?, ?, ?, ?, ?)"
                    " ON CONFLICT (visitor_id, thread_id, item_id)"
                    " DO UPDATE SET body = excluded.body",
                    (context.visitor_id, thread_id, item.id, sort_time(item.created_at), body),
                )

        await self._run(run)

    # --- plumbing -----------------------------------------------------------------------------

    def _init_schema(self, conn: sqlite3.Connection) -> None:
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        if version not in (0, SCHEMA_VERSION):
            raise StoreError(
                f"the SQLite store at {self._path} has schema version {version}, this code"
                f" expects {SCHEMA_VERSION}; delete the file to start over (local data only)"
            )
        conn.execute("PRAGMA journal_mode = WAL")
        with _transaction(conn):
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await asyncio.to_thread(self._call, fn)

    def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            try:
                return fn(self._conn)
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"the SQLite store at {self._path} failed: {exc}") from exc


def _page_bodies(
    conn: sqlite3.Connection,
    record: Literal["thread", "item"],
    scope: dict[str, str],
    *,
    after: str | None,
    ascending: bool,
    count: int,
) -> list[str]:
    """Up to `count` bodies of the `record`s (threads or items) whose columns equal `scope`, in
    (sort_key, id) order, starting after the record whose id is `after`.

    `after` must be one of those records (else NotFoundError); its (sort_key, id) is the cursor.
    """
    table, id_column = f"{record}s", f"{record}_id"
    where = " AND ".join(f"{column} = ?" for column in scope)
    sql = f"SELECT body FROM {table} WHERE {where}"  # noqa: S608 - identifiers are ours
    params: list[object] = [*scope.values()]
    if after is not None:
        require_known_id(after, what=record)
        row = conn.execute(
            f"SELECT sort_key FROM {table} WHERE {where} AND {id_column} = ?",  # noqa: S608
            (*params, after),
        ).fetchone()
        if row is None:
            raise NotFoundError(f"{record} {after} not found")
        sql += f" AND (sort_key, {id_column}) {'>' if ascending else '<'} (?, ?)"
        params += [row[0], after]
    direction = "ASC" if ascending else "DESC"
    sql += f" ORDER BY sort_key {direction}, {id_column} {direction} LIMIT ?"
    params.append(count)
    return [body for (body,) in conn.execute(sql, params)]


def _require_thread(conn: sqlite3.Connection, visitor_id: str, thread_id: str) -> None:
    row = conn.execute(
        "SELECT 1 FROM threads WHERE visitor_id = ? AND thread_id = ?", (visitor_id, thread_id)
    ).fetchone()
    if row is None:
        raise NotFoundError(f"thread {thread_id} not found")


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
