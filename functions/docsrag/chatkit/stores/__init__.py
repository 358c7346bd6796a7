"""Conversation stores for ChatKit: SQLite for local runs, DynamoDB for the deployment.

Both implement chatkit's `Store[RequestContext]` with the same contract (see `base`), scoped to
`RequestContext.visitor_id`.
"""

from docsrag.chatkit.stores.base import (
    MAX_FEEDBACK_ITEMS,
    MAX_PAGE_SIZE,
    MAX_RECORD_BYTES,
    RecordTooLarge,
    StoreError,
    StoreUnavailable,
    VisitorScopedStore,
)
from docsrag.chatkit.stores.dynamodb import DynamoDBStore, create_threads_table
from docsrag.chatkit.stores.sqlite import DEFAULT_SQLITE_PATH, SQLiteStore

__all__ = [
    "DEFAULT_SQLITE_PATH",
    "MAX_FEEDBACK_ITEMS",
    "MAX_PAGE_SIZE",
    "MAX_RECORD_BYTES",
    "DynamoDBStore",
    "RecordTooLarge",
    "SQLiteStore",
    "StoreError",
    "StoreUnavailable",
    "VisitorScopedStore",
    "create_threads_table",
]
