"""The shared fixed-window rate limit in the threads table (moto DynamoDB)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from docsrag.chatkit.ratelimit import DynamoDBRateLimiter, RateLimited
from docsrag.chatkit.stores import create_threads_table

TABLE = "docsrag-threads-ratelimit"


class Clock:
    def __init__(self) -> None:
        self.now = 1_699_999_990.0  # 10 s into the minute window starting at 1_699_999_980

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def dynamodb(moto_dynamodb: Any) -> Iterator[Any]:
    """A fresh threads table (the rate limit's home) on moto, named `TABLE`."""
    create_threads_table(moto_dynamodb, TABLE)
    yield moto_dynamodb
    moto_dynamodb.delete_table(TableName=TABLE)


def limiter(client: Any, clock: Clock, limit: int = 2) -> DynamoDBRateLimiter:
    return DynamoDBRateLimiter(client=client, table_name=TABLE, limit=limit, clock=clock)


async def test_containers_share_one_counter_per_visitor_and_window(dynamodb: Any) -> None:
    clock = Clock()
    container_a, container_b = limiter(dynamodb, clock), limiter(dynamodb, clock)
    await container_a.acquire("alice")
    await container_b.acquire("alice")

    with pytest.raises(RateLimited) as refused:
        await container_a.acquire("alice")
    await container_b.acquire("bob")

    assert refused.value.retry_after == 50  # until the window ends
    record = dynamodb.get_item(
        TableName=TABLE, Key={"pk": {"S": "RATE#alice"}, "sk": {"S": "1699999980"}}
    )["Item"]
    assert record["count"] == {"N": "2"}  # refused requests are not counted
    assert int(record["expires_at"]["N"]) > 1_700_000_040  # DynamoDB's TTL clears it later


async def test_a_new_window_starts_a_new_count(dynamodb: Any) -> None:
    clock = Clock()
    shared = limiter(dynamodb, clock, limit=1)
    await shared.acquire("alice")
    with pytest.raises(RateLimited):
        await shared.acquire("alice")

    clock.now += 60
    await shared.acquire("alice")


async def test_an_unreachable_table_lets_requests_through(dynamodb: Any) -> None:
    missing = DynamoDBRateLimiter(client=dynamodb, table_name="no-such-table", limit=1)

    await missing.acquire("alice")
    await missing.acquire("alice")
