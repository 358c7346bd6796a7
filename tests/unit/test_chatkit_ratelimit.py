"""The in-memory sliding-window rate limit, on a controlled clock."""

from __future__ import annotations

import pytest

from docsrag.chatkit.ratelimit import NoRateLimit, RateLimited, SlidingWindowRateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_limit_allows_that_many_requests_per_window_then_refuses() -> None:
    clock = Clock()
    limiter = SlidingWindowRateLimiter(limit=3, window_seconds=60, clock=clock)
    for second in (0, 10, 20):
        clock.now = 1000 + second
        limiter.hit("alice")

    clock.now = 1030
    with pytest.raises(RateLimited) as refused:
        limiter.hit("alice")

    # The oldest request (t=1000) leaves the window at t=1060: 30 seconds from now.
    assert refused.value.retry_after == 30
    assert "3 messages in the last 60 seconds" in str(refused.value)


def test_the_window_slides_so_old_requests_stop_counting() -> None:
    clock = Clock()
    limiter = SlidingWindowRateLimiter(limit=2, window_seconds=60, clock=clock)
    limiter.hit("alice")
    clock.now += 30
    limiter.hit("alice")

    clock.now += 31  # the first request is now older than the window
    limiter.hit("alice")
    with pytest.raises(RateLimited):
        limiter.hit("alice")


def test_refused_requests_do_not_extend_the_wait() -> None:
    clock = Clock()
    limiter = SlidingWindowRateLimiter(limit=1, window_seconds=60, clock=clock)
    limiter.hit("alice")
    for _ in range(5):
        clock.now += 10
        with pytest.raises(RateLimited):
            limiter.hit("alice")

    clock.now += 11  # 61 s after the only accepted request
    limiter.hit("alice")


def test_each_visitor_has_their_own_budget() -> None:
    limiter = SlidingWindowRateLimiter(limit=1, clock=Clock())
    limiter.hit("alice")

    limiter.hit("bob")
    with pytest.raises(RateLimited):
        limiter.hit("alice")


def test_idle_visitors_are_forgotten() -> None:
    clock = Clock()
    limiter = SlidingWindowRateLimiter(limit=5, window_seconds=60, clock=clock)
    for number in range(1023):
        limiter.hit(f"visitor-{number}")

    clock.now += 120
    limiter.hit("latecomer")  # the 1024th call prunes everyone idle for a whole window

    assert len(limiter._hits) == 1


async def test_a_zero_limit_means_no_limit() -> None:
    limiter = NoRateLimit()
    for _ in range(1000):
        await limiter.acquire("alice")
    with pytest.raises(ValueError):
        SlidingWindowRateLimiter(limit=0)
