"""Keep a rate-limit test inside one fixed window.

`DynamoDBRateLimiter` counts per fixed window (a minute by default): requests that straddle a
window boundary are counted in two windows, which may let one over the limit through (documented
in `docsrag.chatkit.ratelimit`). A test that sends a few requests and expects the last one refused
first waits for a fresh window when the current one is about to end.
"""

from __future__ import annotations

import asyncio
import time

from docsrag.chatkit.ratelimit import WINDOW_SECONDS


async def clear_of_window_boundary(
    *, needed_seconds: float = 20.0, window_seconds: int = WINDOW_SECONDS
) -> None:
    """Wait for the next fixed window when fewer than `needed_seconds` are left in this one."""
    left = window_seconds - time.time() % window_seconds
    if left < needed_seconds:
        await asyncio.sleep(left + 0.1)
