"""Per-visitor rate limit on new ChatKit messages (each one costs a model call).

Two implementations of one small interface, `await limiter.acquire(visitor_id)`, which returns when
the request may go ahead and raises `RateLimited` (with the seconds to wait) when it may not:

- `SlidingWindowRateLimiter`: in memory, at most `limit` requests in any `window_seconds`; right for
  one process (`docsrag serve`). Visitors idle for a whole window are forgotten.
- `DynamoDBRateLimiter`: a fixed-window counter per visitor in the threads table, shared by every
  Lambda container: record `pk = RATE#<visitor>`, `sk = <window start, epoch seconds>`, one atomic
  conditional `ADD` per request (refused once the count reached the limit, so a refused request
  costs nothing), and `expires_at` a little after the window so DynamoDB's TTL clears it. A fixed
  window can let up to twice the limit through across a window boundary; that is the usual,
  accepted price of a single-write counter.

When DynamoDB cannot be reached the request is allowed (logged): the limiter protects the model
budget, and an unavailable table fails the thread store on its own with a clear 503.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, MutableMapping
from typing import Any, Final, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from docsrag.errors import DocsRagError

logger = logging.getLogger(__name__)

WINDOW_SECONDS: Final = 60
# How long a window's counter outlives the window before DynamoDB may delete it.
_TTL_MARGIN_SECONDS: Final = 120
# The in-memory limiter forgets idle visitors every this many requests.
_PRUNE_EVERY: Final = 1024


class RateLimited(DocsRagError):
    """The visitor sent more messages than the limit allows; `retry_after` is in seconds."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RateLimiter(Protocol):
    async def acquire(self, visitor_id: str) -> None:
        """Count one request for `visitor_id`; raise `RateLimited` when over the limit."""
        ...


def _refuse(limit: int, window_seconds: float, wait: float) -> RateLimited:
    retry_after = max(1, math.ceil(wait))
    return RateLimited(
        f"You have sent {limit} messages in the last {round(window_seconds)} seconds, the most "
        f"allowed. Please wait {retry_after} seconds and try again.",
        retry_after=retry_after,
    )


class NoRateLimit:
    """The limit is off (`VISITOR_RATE_LIMIT_PER_MINUTE=0`)."""

    async def acquire(self, visitor_id: str) -> None:
        return None


class SlidingWindowRateLimiter:
    """At most `limit` requests per visitor in any `window_seconds`, in this process's memory."""

    def __init__(
        self,
        *,
        limit: int,
        window_seconds: float = WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1 (use NoRateLimit to turn the limit off)")
        self._limit = limit
        self._window = window_seconds
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self._calls = 0

    async def acquire(self, visitor_id: str) -> None:
        self.hit(visitor_id)

    def hit(self, visitor_id: str) -> None:
        """The synchronous form of `acquire`."""
        now = self._clock()
        cutoff = now - self._window
        with self._lock:
            self._calls += 1
            if self._calls % _PRUNE_EVERY == 0:
                self._prune(cutoff)
            hits = self._hits.setdefault(visitor_id, deque())
            while hits and hits[0] <= cutoff:
                hits.popleft()
            if len(hits) >= self._limit:
                raise _refuse(self._limit, self._window, hits[0] + self._window - now)
            hits.append(now)

    def _prune(self, cutoff: float) -> None:
        idle = [visitor for visitor, hits in self._hits.items() if not hits or hits[-1] <= cutoff]
        for visitor in idle:
            del self._hits[visitor]


class DynamoDBRateLimiter:
    """A fixed-window counter per visitor in the threads table (shared by all containers)."""

    def __init__(
        self,
        *,
        client: Any,
        table_name: str,
        limit: int,
        window_seconds: int = WINDOW_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1 (use NoRateLimit to turn the limit off)")
        self._client = client
        self._table = table_name
        self._limit = limit
        self._window = window_seconds
        self._clock = clock

    async def acquire(self, visitor_id: str) -> None:
        await asyncio.to_thread(self.hit, visitor_id)

    def hit(self, visitor_id: str) -> None:
        """The synchronous form of `acquire`."""
        now = self._clock()
        start = int(now // self._window) * self._window
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": f"RATE#{visitor_id}"}, "sk": {"S": str(start)}},
                UpdateExpression="ADD #count :one SET expires_at = if_not_exists(expires_at, :ttl)",
                ConditionExpression="attribute_not_exists(#count) OR #count < :limit",
                ExpressionAttributeNames={"#count": "count"},
                ExpressionAttributeValues={
                    ":one": {"N": "1"},
                    ":limit": {"N": str(self._limit)},
                    ":ttl": {"N": str(start + self._window + _TTL_MARGIN_SECONDS)},
                },
            )
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code == "ConditionalCheckFailedException":
                raise _refuse(self._limit, self._window, start + self._window - now) from exc
            logger.warning("rate limit not checked (DynamoDB %s); allowing the request", code)
        except BotoCoreError as exc:
            logger.warning("rate limit not checked (%s); allowing the request", exc)


def client_ip(scope: MutableMapping[str, Any]) -> str:
    """The caller's address: API Gateway's `sourceIp` on Lambda, the peer address otherwise."""
    event = scope.get("aws.event")
    if isinstance(event, dict):
        http = (event.get("requestContext") or {}).get("http") or {}
        if isinstance(http, dict) and isinstance(http.get("sourceIp"), str):
            return str(http["sourceIp"])
    client = scope.get("client")
    if client:
        return str(client[0])
    return "unknown"
