"""One time budget per request: a `Deadline` made at the edge and handed down as one value.

A chat turn must end before API Gateway's 30 s and the function's own timeout, with the promised
answer (the retrieval-only answer with sources at worst) stored. `LLM_TIMEOUT_SECONDS` and
`EMBEDDING_TIMEOUT_SECONDS` bound one read each, not a call: a model that sends a byte every few
seconds, or an embeddings endpoint that asks to retry after 25 s, would run past both. So the edge
(the `/chat` route, a ChatKit request, `docsrag ask`, an MCP tool call) starts one `Deadline` of
`REQUEST_TIME_BUDGET_SECONDS` and every step below it takes what is left:

- the query embedding: each attempt's timeout, and any wait before a retry, fit in what is left (a
  `Retry-After` longer than that gives up at once: the search runs on BM25 alone);
- the model call: cut when the budget is spent (`Deadline.limit`), leaving the reserve to render
  the fallback answer and store the turn.

`remaining()` is the time work may still take: the budget less that reserve. On Lambda the
deadline never ends later than the invocation's own remaining time less a margin.

The ingest function gives each SQS record the invocation's remaining time less a margin
(`Deadline.within_lambda`) and passes it down as a parameter: `S3Sync.apply_notification(body,
deadline=...)` hands it to `Ingestor.ingest_document(..., deadline=...)`, which bounds the page's
embedding requests with it. Full syncs (reconcile, `sync_folder`) run unbounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import math
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from typing import Final, TypeVar

from docsrag.errors import DocsRagError

T = TypeVar("T")

# Kept back from a chat budget to finish: render the retrieval-only answer and store the turn.
# At most a fifth of the budget, so a small budget (tests, local runs) still leaves room to work.
FINISH_RESERVE_SECONDS: Final = 2.0
FINISH_RESERVE_SHARE: Final = 0.2
# What a Lambda invocation keeps after the deadline: the response and Powertools' flush.
LAMBDA_MARGIN_SECONDS: Final = 1.0


class TimeBudgetExhausted(DocsRagError):
    """The request's time budget is spent; the step was cut (or not started)."""


@dataclass(frozen=True, slots=True)
class Deadline:
    """The moment work must stop (monotonic clock), and the budget it came from."""

    cutoff: float
    budget: float = field(default=math.inf)

    # --- making one -------------------------------------------------------------------------

    @classmethod
    def start(cls, budget_seconds: float, *, lambda_context: object | None = None) -> Deadline:
        """A request's deadline from now: `budget_seconds` less the finish reserve. With a Lambda
        context, never later than the invocation's remaining time less the reserve and a
        margin."""
        reserve = min(FINISH_RESERVE_SECONDS, FINISH_RESERVE_SHARE * budget_seconds)
        now = time.monotonic()
        cutoff = now + budget_seconds - reserve
        remaining_ms = _lambda_remaining_ms(lambda_context)
        if remaining_ms is not None:
            lambda_end = now + remaining_ms / 1000 - LAMBDA_MARGIN_SECONDS - reserve
            cutoff = min(cutoff, lambda_end)
        return cls(cutoff=cutoff, budget=budget_seconds)

    @classmethod
    def within_lambda(cls, lambda_context: object, *, margin_seconds: float) -> Deadline:
        """The invocation's remaining time less `margin_seconds` (unbounded without a context
        that tells its remaining time)."""
        remaining_ms = _lambda_remaining_ms(lambda_context)
        if remaining_ms is None:
            return cls.unbounded()
        seconds = remaining_ms / 1000
        return cls(cutoff=time.monotonic() + seconds - margin_seconds, budget=seconds)

    @classmethod
    def unbounded(cls) -> Deadline:
        """No deadline: the steps' own timeouts and retries alone apply."""
        return cls(cutoff=math.inf)

    # --- reading it ---------------------------------------------------------------------------

    @property
    def bounded(self) -> bool:
        return math.isfinite(self.cutoff)

    def remaining(self) -> float:
        """Seconds work may still take (0 when spent; `inf` when unbounded)."""
        return max(0.0, self.cutoff - time.monotonic())

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0

    def cap(self, seconds: float) -> float:
        """`seconds`, or what is left when that is less (a per-step timeout)."""
        return min(seconds, self.remaining())

    def allows(self, seconds: float) -> bool:
        """True when a wait of `seconds` still ends before the deadline."""
        return seconds < self.remaining()

    # --- bounding work --------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def limit(self) -> AsyncIterator[None]:
        """Cancel the block when the deadline passes, raising `TimeBudgetExhausted`. Never wrap a
        `yield` of an async generator in it: the cancellation would land in its consumer."""
        if not self.bounded:
            yield
            return
        if self.expired:
            raise TimeBudgetExhausted(self._spent())
        scope = asyncio.timeout(self.remaining())
        try:
            async with scope:
                yield
        except TimeoutError as exc:
            if scope.expired():
                raise TimeBudgetExhausted(self._spent()) from exc
            raise

    async def run(self, awaitable: Awaitable[T]) -> T:
        """`await awaitable`, cut at the deadline (`TimeBudgetExhausted`)."""
        if self.bounded and self.expired:
            if inspect.iscoroutine(awaitable):
                awaitable.close()  # never started: no "never awaited" warning
            raise TimeBudgetExhausted(self._spent())
        async with self.limit():
            return await awaitable

    def _spent(self) -> str:
        return f"the time budget of {self.budget:g} s is spent"


def _lambda_remaining_ms(context: object | None) -> int | None:
    getter = getattr(context, "get_remaining_time_in_millis", None)
    if getter is None:
        return None
    value = getter()
    return int(value) if isinstance(value, int | float) else None
