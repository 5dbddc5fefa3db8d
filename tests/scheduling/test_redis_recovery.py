"""Tier 2: the bot's Redis client after an outage. Every connection pooled before Redis went away must carry its
next command once Redis is back, instead of failing it (a user would get the error text with Redis up again)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from storage.redis import redis_client
from tests.support.faultproxy import FaultProxy
from tests.support.services import REDIS_HOST, REDIS_PORT, require_service

POOLED = 5


async def _outage(client_for: type[Redis] | None) -> int:
    """Fill the pool, cut Redis, restore it, then use every pooled connection once; how many commands failed."""
    require_service("Redis", REDIS_HOST, REDIS_PORT)
    prefix = f"pa:test:recovery:{uuid.uuid4().hex}"
    async with FaultProxy(REDIS_HOST, REDIS_PORT) as proxy:
        url = f"redis://127.0.0.1:{proxy.port}/15"
        client = redis_client(url) if client_for is None else client_for.from_url(url)
        try:
            await asyncio.gather(*(client.set(f"{prefix}:{i}", i, ex=60) for i in range(POOLED)))
            proxy.cut()
            with pytest.raises(RedisConnectionError):
                await client.get(f"{prefix}:0")
            proxy.restore()
            answers = await asyncio.gather(
                *(client.get(f"{prefix}:{i}") for i in range(POOLED)), return_exceptions=True
            )
            return sum(isinstance(a, BaseException) for a in answers)
        finally:
            await client.aclose()


async def test_connections_pooled_before_an_outage_carry_commands_after_it() -> None:
    assert await _outage(None) == 0


async def test_a_plain_client_fails_commands_on_stale_connections() -> None:
    """The control: why `redis_client` configures retries (redis-py's from_url sets none)."""
    assert await _outage(Redis) >= 1
