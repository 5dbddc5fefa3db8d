"""Tier 1: repeat clicks of one visitor on one link count once per 30-minute window, in memory and on Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from redis.asyncio import Redis

from bot.services.clicks import MemoryClickDedupe
from storage.click_dedupe import RedisClickDedupe

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


async def test_memory_counts_the_first_click_of_each_key_per_window() -> None:
    dedupe = MemoryClickDedupe()

    assert await dedupe.first_click("1:visitor-a", T0)
    assert not await dedupe.first_click("1:visitor-a", T0 + timedelta(minutes=1))
    assert await dedupe.first_click("1:visitor-b", T0 + timedelta(minutes=1))  # another visitor
    assert await dedupe.first_click("2:visitor-a", T0 + timedelta(minutes=1))  # another link
    assert not await dedupe.first_click("1:visitor-a", T0 + timedelta(minutes=29, seconds=59))
    # The window runs from the counted click; repeats inside it do not stretch it.
    assert await dedupe.first_click("1:visitor-a", T0 + timedelta(minutes=30))
    assert not await dedupe.first_click("1:visitor-a", T0 + timedelta(minutes=31))


async def test_memory_forgets_expired_keys() -> None:
    dedupe = MemoryClickDedupe(window=timedelta(minutes=30))
    for n in range(100):
        await dedupe.first_click(f"1:v{n}", T0 + timedelta(seconds=n))
    assert len(dedupe) == 100

    await dedupe.first_click("1:late", T0 + timedelta(minutes=32))

    assert len(dedupe) == 1


async def test_memory_is_bounded() -> None:
    dedupe = MemoryClickDedupe(max_entries=3)
    for key in ("a", "b", "c", "d"):
        assert await dedupe.first_click(key, T0)

    assert len(dedupe) == 3
    assert await dedupe.first_click("a", T0)  # the oldest was let go: counted again rather than growing
    assert not await dedupe.first_click("d", T0)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def test_redis_counts_the_first_click_and_expires_with_the_window(redis: Redis) -> None:
    prefix = f"pa:test:click:{uuid.uuid4().hex}"
    dedupe = RedisClickDedupe(redis, prefix=prefix)
    other_process = RedisClickDedupe(redis, prefix=prefix)
    try:
        assert await dedupe.first_click("7:visitor", T0)
        assert not await dedupe.first_click("7:visitor", T0)
        assert not await other_process.first_click("7:visitor", T0)
        assert await other_process.first_click("7:someone-else", T0)
        ttl_ms = await redis.pttl(f"{prefix}:7:visitor")
        assert 29 * 60_000 < ttl_ms <= 30 * 60_000
    finally:
        await redis.delete(f"{prefix}:7:visitor", f"{prefix}:7:someone-else")


async def test_redis_keys_live_exactly_one_window(redis: Redis) -> None:
    prefix = f"pa:test:click:{uuid.uuid4().hex}"
    dedupe = RedisClickDedupe(redis, window=timedelta(seconds=90), prefix=prefix)
    try:
        assert await dedupe.first_click("7:visitor", T0)
        assert 89_000 < await redis.pttl(f"{prefix}:7:visitor") <= 90_000
        assert not await dedupe.first_click("7:visitor", T0)
        assert await redis.pttl(f"{prefix}:7:visitor") <= 90_000  # a repeat does not renew the key
    finally:
        await redis.delete(f"{prefix}:7:visitor")


async def test_redis_checks_arriving_together_share_round_trips(redis: Redis) -> None:
    prefix = f"pa:test:click:{uuid.uuid4().hex}"
    dedupe = RedisClickDedupe(redis, prefix=prefix, max_batch=16)
    keys = [f"{n % 50}:visitor" for n in range(200)]  # 50 distinct keys, each asked four times at once
    try:
        answers = await asyncio.gather(*(dedupe.first_click(key, T0) for key in keys))

        assert sum(answers) == 50
        assert {key for key, first in zip(keys, answers, strict=True) if first} == set(keys)
        assert not await dedupe.first_click("0:visitor", T0)  # the lead was handed back: later checks work
    finally:
        await redis.delete(*[f"{prefix}:{n}:visitor" for n in range(50)])


async def test_redis_failure_reaches_every_waiting_check_and_does_not_wedge_it() -> None:
    broken = Redis.from_url("redis://127.0.0.1:1/0")  # nothing listens there
    dedupe = RedisClickDedupe(broken)
    try:
        results = await asyncio.gather(*(dedupe.first_click(f"1:v{n}", T0) for n in range(20)), return_exceptions=True)
        assert all(isinstance(r, Exception) for r in results)  # every caller hears of it (and counts the click)
        with pytest.raises(Exception, match=r"(?i)connect"):
            await dedupe.first_click("1:again", T0)
    finally:
        await broken.aclose()


async def test_redis_checks_given_up_by_their_callers_do_not_stall_the_rest(redis: Redis) -> None:
    prefix = f"pa:test:click:{uuid.uuid4().hex}"
    dedupe = RedisClickDedupe(redis, prefix=prefix)
    try:
        tasks = [asyncio.create_task(dedupe.first_click(f"{n}:visitor", T0)) for n in range(30)]
        await asyncio.sleep(0)  # all queued; the first one leads
        for task in tasks[:10]:
            task.cancel()  # the leader included
        done = await asyncio.gather(*tasks, return_exceptions=True)

        assert all(isinstance(r, asyncio.CancelledError) for r in done[:10])
        assert all(r is True for r in done[10:])
        assert await dedupe.first_click("99:visitor", T0)
    finally:
        await redis.delete(*[f"{prefix}:{n}:visitor" for n in range(100)])
