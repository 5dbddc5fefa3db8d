"""Tier 2: an update delivered twice (Telegram's redelivery, two instances behind a load balancer) is
handled once, through the production dispatcher."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Literal

import pytest
from aiogram import Dispatcher
from aiogram.types import Chat, Message, MessageEntity, Update
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.app import build_dispatcher
from bot.domain.events import EventType
from bot.runner import BUSY_RETRY_AFTER, WebhookHandler
from bot.throttle import MemoryThrottle
from bot.update_dedupe import MemoryUpdateDedupe, UpdateBusy, UpdateDedupe, update_key
from storage.uow import UnitOfWork
from storage.update_dedupe import RedisUpdateDedupe
from tests.support.harness import BotHarness, tg_user

ALICE = tg_user(101, "Alice", lang="en")


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


def dispatcher(
    h: BotHarness, dedupe: UpdateDedupe | None, throttle_rate: int = 1000, on_busy: Literal["retry", "take"] = "take"
) -> Dispatcher:
    """A second production dispatcher on the same database and Bot API: another bot process."""
    return build_dispatcher(
        ctx=h.ctx,
        sessionmaker=h.sessionmaker,
        throttle=MemoryThrottle(3.0),
        throttle_rate=throttle_rate,
        on_outbox=h.sender.wake,
        update_dedupe=dedupe,
        update_busy=on_busy,
        menu=h.menu,
    )


async def registrations(h: BotHarness) -> int:
    async with UnitOfWork(h.sessionmaker) as uow:
        return await uow.events.count(type=EventType.REGISTERED)


async def test_the_same_update_twice_is_handled_once(harness: BotHarness) -> None:
    update = await harness.send(ALICE, "/start")
    await harness.dp.feed_update(harness.bot, update)  # redelivered
    assert len(harness.session.of("sendMessage", ALICE.id)) == 1
    assert await registrations(harness) == 1
    await harness.send(ALICE, "/me")  # a new update id is handled as usual
    assert len(harness.session.of("sendMessage", ALICE.id)) == 2


async def test_a_redelivery_does_not_count_against_the_flood_limit(harness: BotHarness) -> None:
    dp = dispatcher(harness, MemoryUpdateDedupe(), throttle_rate=2)
    update = await harness.send(ALICE, "/start")  # through harness.dp: its own throttle
    for _ in range(3):
        await dp.feed_update(harness.bot, update)  # counted once by dp's dedupe, reaching its throttle once
    harness.session.clear()
    await dp.feed_update(harness.bot, await _next_update(harness, "/me"))
    assert len(harness.session.of("sendMessage", ALICE.id)) == 1  # handled, not throttled


async def test_two_processes_sharing_redis_handle_a_redelivered_update_once(
    harness: BotHarness, redis: Redis, engine: AsyncEngine
) -> None:
    prefix = f"pa:test:update:{uuid.uuid4().hex}"
    first = dispatcher(harness, RedisUpdateDedupe(redis, 60, prefix=prefix), on_busy="retry")
    second = dispatcher(harness, RedisUpdateDedupe(redis, 60, prefix=prefix), on_busy="retry")
    update = await _next_update(harness, "/start")
    outcomes = await asyncio.gather(
        first.feed_update(harness.bot, update), second.feed_update(harness.bot, update), return_exceptions=True
    )
    # The loser found the winner still at work: its webhook would answer 503 and Telegram would try again.
    assert [type(o) for o in outcomes if isinstance(o, BaseException)] in ([], [UpdateBusy])
    await second.feed_update(harness.bot, update)  # that later try: finished, so skipped
    assert len(harness.session.of("sendMessage", ALICE.id)) == 1
    assert await registrations(harness) == 1
    key = f"{prefix}:{harness.bot.id}:{update.update_id}"
    assert await redis.get(key) == b"handled"
    assert 0 < await redis.ttl(key) <= 60


async def test_a_claim_left_by_a_crashed_instance_expires_quickly(redis: Redis) -> None:
    dedupe = RedisUpdateDedupe(redis, 3600, claim_seconds=30, prefix=f"pa:test:update:{uuid.uuid4().hex}")
    assert await dedupe.claim("1:7")
    assert not await dedupe.claim("1:7")
    assert 0 < await redis.ttl(f"{dedupe._prefix}:1:7") <= 30  # never completed: handled again after 30 s
    await dedupe.complete("1:7")
    assert 30 < await redis.ttl(f"{dedupe._prefix}:1:7") <= 3600


class BrokenDedupe:
    async def claim(self, key: str) -> bool:
        raise ConnectionError("redis is down")

    async def complete(self, key: str) -> None:
        raise ConnectionError("redis is down")

    async def busy(self, key: str) -> bool:
        raise ConnectionError("redis is down")


async def test_when_the_dedupe_store_is_down_updates_are_still_handled(harness: BotHarness) -> None:
    dp = dispatcher(harness, BrokenDedupe())
    await dp.feed_update(harness.bot, await _next_update(harness, "/start"))
    assert len(harness.session.of("sendMessage", ALICE.id)) == 1


async def test_the_in_process_memory_is_bounded() -> None:
    dedupe = MemoryUpdateDedupe(size=3)
    for key in ("1", "2", "3", "4"):
        assert await dedupe.claim(key)
    assert len(dedupe) == 3
    assert not await dedupe.claim("4")
    assert await dedupe.claim("1")  # the oldest was forgotten


async def test_a_poller_takes_over_an_update_whose_handler_died(harness: BotHarness, redis: Redis) -> None:
    """kill -9 mid-update with long polling: the claim stays in Redis, the restarted poller gets the update again
    (its offset was never confirmed) and must handle it, not skip it as delivered."""
    dedupe = RedisUpdateDedupe(redis, 60, prefix=f"pa:test:update:{uuid.uuid4().hex}")
    update = await _next_update(harness, "/start")
    assert await dedupe.claim(update_key(harness.bot, update.update_id))  # the dead process's claim
    poller = dispatcher(harness, dedupe, on_busy="take")
    await poller.feed_update(harness.bot, update)
    await poller.feed_update(harness.bot, update)  # finished now: a true repeat is skipped
    assert len(harness.session.of("sendMessage", ALICE.id)) == 1
    assert await registrations(harness) == 1


WEBHOOK_SECRET = "hook-secret"


async def test_a_webhook_redelivery_of_an_unfinished_update_is_503_then_handled_once(
    harness: BotHarness, redis: Redis
) -> None:
    """kill -9 mid-update behind a webhook: Telegram's redelivery finds the dead delivery's claim. Answering 200
    would lose the update; the webhook answers 503 (nothing sent, nothing written, no error text to the user) and
    Telegram's next try, after the claim expired, is handled, once."""
    prefix = f"pa:test:update:{uuid.uuid4().hex}"
    dedupe = RedisUpdateDedupe(redis, 60, prefix=prefix)
    update = await _next_update(harness, "/start")
    key = update_key(harness.bot, update.update_id)
    assert await dedupe.claim(key)  # the dead instance's claim
    app = web.Application()
    hook = dispatcher(harness, dedupe, on_busy="retry")
    WebhookHandler(hook, harness.bot, handle_in_background=False, secret_token=WEBHOOK_SECRET).register(
        app, path="/hook"
    )
    headers = {"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET}
    body = update.model_dump(mode="json", exclude_none=True)
    async with TestClient(TestServer(app)) as client:
        busy = await client.post("/hook", json=body, headers=headers)
        assert busy.status == 503 and busy.headers["Retry-After"] == str(BUSY_RETRY_AFTER)
        assert harness.session.of("sendMessage", ALICE.id) == []
        assert await registrations(harness) == 0
        await redis.delete(f"{prefix}:{key}")  # the claim expired (claim_seconds)
        assert (await client.post("/hook", json=body, headers=headers)).status == 200
        assert (await client.post("/hook", json=body, headers=headers)).status == 200  # done: skipped
    assert len(harness.session.of("sendMessage", ALICE.id)) == 1
    assert await registrations(harness) == 1
    assert await redis.get(f"{prefix}:{key}") == b"handled"


async def test_the_memory_dedupe_knows_an_unfinished_update() -> None:
    dedupe = MemoryUpdateDedupe()
    assert await dedupe.claim("1:5") and not await dedupe.busy("1:6")
    assert await dedupe.busy("1:5")
    await dedupe.complete("1:5")
    assert not await dedupe.busy("1:5") and not await dedupe.claim("1:5")


async def _next_update(h: BotHarness, text: str) -> Update:
    """An update as `BotHarness.send` builds it, without feeding it."""
    command = text.split(maxsplit=1)[0]
    message = Message(
        message_id=next(h._message_ids),
        date=h.clock.now(),
        chat=Chat(id=ALICE.id, type="private"),
        from_user=ALICE,
        text=text,
        entities=[MessageEntity(type="bot_command", offset=0, length=len(command))],
    )
    return Update(update_id=next(h._update_ids), message=message)
