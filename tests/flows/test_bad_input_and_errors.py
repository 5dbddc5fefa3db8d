"""Tier 2: unknown input, failures that roll back, and flood protection (memory and Redis)."""

from __future__ import annotations

import logging

import pytest
from aiogram.fsm.storage.redis import RedisEventIsolation, RedisStorage
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.domain.events import EventType
from bot.throttle import MemoryThrottle
from storage.models import Event, Partner
from storage.redis import RedisThrottle
from tests.support.harness import BotHarness, tg_user

ALICE = tg_user(101, "Alice", lang="en")


async def count_events(h: BotHarness, type: str) -> int:
    async with h.sessionmaker() as s:
        return (await s.execute(select(func.count()).select_from(Event).where(Event.type == type))).scalar_one()


async def test_unknown_command_free_text_and_stale_button(harness: BotHarness) -> None:
    await harness.send(ALICE, "/start")
    harness.session.clear()
    await harness.send(ALICE, "/frobnicate now")
    await harness.send(ALICE, "hello there")
    assert harness.session.texts(ALICE.id) == [
        harness.t("en", "fallback.unknown_command"),
        harness.t("en", "fallback.free_text"),
    ]
    await harness.press(ALICE, "garbage:data")
    [answer] = harness.session.of("answerCallbackQuery")
    assert answer.params["text"] == harness.t("en", "fallback.stale_button")


async def test_first_message_without_start_registers_the_user(harness: BotHarness) -> None:
    await harness.send(ALICE, "/me")
    [call] = harness.session.of("sendMessage", ALICE.id)
    assert call.text.startswith("👤 <b>Alice</b>")


async def test_failure_rolls_back_the_update_and_says_sorry(
    harness: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    await harness.send(ALICE, "/start")
    harness.session.clear()
    harness.session.fail_next("sendMessage", 500, "Internal Server Error")
    with caplog.at_level(logging.ERROR):
        update = await harness.send(ALICE, "/me")
    # /me wrote a profile_viewed event before the reply failed: it must be gone
    assert await count_events(harness, EventType.PROFILE_VIEWED) == 0
    assert harness.session.texts(ALICE.id)[-1] == harness.t("en", "error.generic")
    assert f"update {update.update_id} failed" in caplog.text
    assert all("Traceback" not in (c.text or "") for c in harness.session.calls)


async def test_failure_during_registration_leaves_no_partner(harness: BotHarness) -> None:
    harness.session.fail_next("sendMessage", 500, "Internal Server Error")
    await harness.send(ALICE, "/start")
    async with harness.sessionmaker() as s:
        assert (await s.execute(select(func.count()).select_from(Partner))).scalar_one() == 0
        assert (await s.execute(select(func.count()).select_from(Event))).scalar_one() == 0


async def test_rapid_commands_are_throttled_politely(engine: AsyncEngine) -> None:
    # One frozen window: on a loaded machine six updates can straddle a real 3 s window's edge.
    h = BotHarness(engine, throttle=MemoryThrottle(3.0, monotonic=lambda: 0.0), throttle_rate=3)
    try:
        for _ in range(6):
            await h.send(ALICE, "/help")
        texts = h.session.texts(ALICE.id)
        assert texts.count(h.t("en", "error.throttled")) == 1
        assert len(texts) == 4
    finally:
        await h.close()


async def test_redis_fsm_isolation_and_shared_throttle(engine: AsyncEngine, redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    await redis.flushdb()
    throttle = RedisThrottle(redis, 600.0, prefix="pa:test")
    first = BotHarness(
        engine,
        throttle=throttle,
        throttle_rate=2,
        storage=RedisStorage(redis),
        events_isolation=RedisEventIsolation(redis),
    )
    second = BotHarness(engine, throttle=RedisThrottle(redis, 600.0, prefix="pa:test"), throttle_rate=2)
    try:
        await first.send(ALICE, "/start")
        await second.send(ALICE, "/help")
        # the third command in the window is over the limit even though it hit another process
        await first.send(ALICE, "/help")
        assert first.session.texts(ALICE.id)[-1] == first.t("en", "error.throttled")
    finally:
        await first.close()
        await second.close()
        await redis.flushdb()
        await redis.aclose()
