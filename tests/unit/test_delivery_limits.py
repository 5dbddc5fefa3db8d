"""Tier 1: Telegram's flood limits as the outbox limiter applies them, in memory and shared through Redis."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from redis.asyncio import Redis

from bot.app import build_limiter
from bot.clock import ManualClock
from bot.config import ConfigError, load_settings
from bot.delivery.limiter import DeliveryLimiter, DeliveryRates, Take

START = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


def shared_pair(clock: ManualClock, redis: Redis, rates: DeliveryRates) -> tuple[DeliveryLimiter, DeliveryLimiter]:
    """Two limiters as two bot processes would build them: same Redis, same prefix, separate objects."""
    prefix = f"pa:test:{uuid.uuid4().hex}"
    return (
        DeliveryLimiter.on_redis(clock, rates, redis, prefix=prefix),
        DeliveryLimiter.on_redis(clock, rates, redis, prefix=prefix),
    )


async def sends_in(limiter: DeliveryLimiter, clock: ManualClock, seconds: float, step: float = 0.005) -> int:
    """How many bot-wide slots a greedy sender gets in `seconds` of simulated time."""
    taken = 0
    for _ in range(round(seconds / step)):
        while await limiter.take_global() == 0:
            taken += 1
        clock.advance(timedelta(seconds=step))
    return taken


@pytest.mark.parametrize("rate", [25, 30])
async def test_global_rate_is_exact_and_evenly_spaced(clock: ManualClock, rate: int) -> None:
    limiter = DeliveryLimiter.in_memory(clock, DeliveryRates.for_rate(rate))
    assert await sends_in(limiter, clock, 10.0) == pytest.approx(rate * 10, abs=1)
    clock.advance(timedelta(seconds=1))
    assert [await limiter.take_global() for _ in range(2)] == [0, 0]  # credit after a lull is one burst of two
    assert await limiter.take_global() == pytest.approx(1 / rate, abs=0.002)


async def test_paid_broadcast_raises_the_ceiling(clock: ManualClock) -> None:
    limiter = DeliveryLimiter.in_memory(clock, DeliveryRates.for_rate(1000, paid_broadcast=True))
    assert limiter.rates.paid_broadcast
    assert await sends_in(limiter, clock, 2.0, step=0.001) == pytest.approx(2000, abs=limiter.rates.burst)


async def test_one_message_a_second_per_chat_and_chats_do_not_share(clock: ManualClock) -> None:
    limiter = DeliveryLimiter.in_memory(clock, DeliveryRates.for_rate(25))
    assert await limiter.take_chat(101) == 0
    assert await limiter.take_chat(101) == pytest.approx(1.0)
    assert await limiter.take_chat(202) == 0
    clock.advance(timedelta(seconds=0.999))
    assert await limiter.take_chat(101) == pytest.approx(0.001)
    clock.advance(timedelta(milliseconds=1))
    assert await limiter.take_chat(101) == 0


async def test_groups_get_twenty_a_minute_spaced_evenly(clock: ManualClock) -> None:
    limiter = DeliveryLimiter.in_memory(clock, DeliveryRates.for_rate(25))
    group = -1001234567890
    sent: list[datetime] = []
    for _ in range(600):  # ten simulated minutes in 1 s steps
        if await limiter.take_chat(group) == 0:
            sent.append(clock.now())
        clock.advance(timedelta(seconds=1))
    assert len(sent) == 200
    for i, moment in enumerate(sent):
        assert sum(moment <= other < moment + timedelta(minutes=1) for other in sent[i:]) <= 20
    assert min(b - a for a, b in itertools.pairwise(sent)) >= timedelta(seconds=3)


async def test_429_pause_extends_but_never_shortens(clock: ManualClock) -> None:
    limiter = DeliveryLimiter.in_memory(clock, DeliveryRates.for_rate(25))
    assert await limiter.paused_for() == 0
    await limiter.pause(7)
    await limiter.pause(3)
    assert await limiter.paused_for() == 7
    clock.advance(timedelta(seconds=6.5))
    assert await limiter.paused_for() == 0.5
    clock.advance(timedelta(seconds=0.5))
    assert await limiter.paused_for() == 0


async def test_idle_chat_buckets_are_forgotten(clock: ManualClock) -> None:
    limiter = DeliveryLimiter.in_memory(clock, DeliveryRates.for_rate(25))
    for chat in range(1, 5001):
        await limiter.take_chat(chat)
    clock.advance(timedelta(minutes=2))
    await limiter.take_chat(1)
    assert len(limiter._local) == 1


async def test_chat_buckets_are_forgotten_as_they_drain_and_not_before(clock: ManualClock) -> None:
    limiter = DeliveryLimiter.in_memory(clock, DeliveryRates.for_rate(1000, paid_broadcast=True))
    group = -1001234567890
    assert await limiter.take_chat(group) == 0
    for chat in range(1, 2001):  # a paid broadcast: a new chat every millisecond
        assert await limiter.take_chat(chat) == 0
        clock.advance(timedelta(milliseconds=1))
    assert len(limiter._local) == 2001  # the group's 3 s spacing holds it, and the chats behind it, for 3 s
    assert await limiter.take_chat(group) > 0  # still remembered: its pace holds
    for chat in range(2001, 4001):
        await limiter.take_chat(chat)
        clock.advance(timedelta(milliseconds=1))
    assert len(limiter._local) <= 1002  # the last second's chats, and the group
    assert await limiter.take_chat(3999) > 0  # a chat of the last second is still held to its pace
    assert await limiter.take_chat(1) == 0


async def test_redis_limits_are_one_budget_for_every_process(clock: ManualClock, redis: Redis) -> None:
    first, second = shared_pair(clock, redis, DeliveryRates.for_rate(25))
    assert first.shared and second.shared
    assert await first.take_global() == 0 and await first.take_global() == 0  # the burst of two
    assert await second.take_global() == pytest.approx(0.04)
    assert await second.take_chat(101) == 0
    assert await first.take_chat(101) == pytest.approx(1.0)
    clock.advance(timedelta(seconds=1))
    assert await first.take_chat(101) == 0
    taken = 0
    for _ in range(200):  # two processes competing greedily for 2 simulated seconds
        for limiter in (first, second):
            while await limiter.take_global() == 0:
                taken += 1
        clock.advance(timedelta(milliseconds=10))
    assert taken == pytest.approx(50, abs=2)


async def test_redis_pause_is_seen_by_every_process(clock: ManualClock, redis: Redis) -> None:
    first, second = shared_pair(clock, redis, DeliveryRates.for_rate(25))
    await first.pause(5)
    await second.pause(2)
    assert await second.paused_for() == 5
    clock.advance(timedelta(seconds=5))
    assert await first.paused_for() == 0 and await second.paused_for() == 0


def test_delivery_settings_have_bounds(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("DELIVERY_RATE", "ALLOW_PAID_BROADCAST", "DELIVERY_PAID_RATE", "MEDIA_DIR", "REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert (settings.delivery_rate, settings.allow_paid_broadcast, settings.delivery_paid_rate) == (25, False, 1000)
    assert settings.media_dir == Path("data/outbox-media")
    for variable, value in (("DELIVERY_RATE", "31"), ("DELIVERY_RATE", "0"), ("DELIVERY_PAID_RATE", "1001")):
        monkeypatch.setenv(variable, value)
        with pytest.raises(ConfigError) as failure:
            load_settings()
        assert failure.value.variable == variable
        monkeypatch.delenv(variable)


def test_paid_broadcast_setting_picks_the_paid_rate(clock: ManualClock) -> None:
    free = build_limiter(load_settings(delivery_rate=30), clock, None)
    paid = build_limiter(load_settings(allow_paid_broadcast=True, delivery_paid_rate=800), clock, None)
    assert (free.rates.per_second, free.rates.paid_broadcast) == (30, False)
    assert (paid.rates.per_second, paid.rates.paid_broadcast) == (800, True)


@pytest.fixture(params=["memory", "redis"])
async def limiters(
    request: pytest.FixtureRequest, clock: ManualClock, redis_url: str
) -> AsyncIterator[tuple[DeliveryLimiter, DeliveryLimiter]]:
    """Two limiters of one bot: the same object in memory, two processes' objects on Redis."""
    rates = DeliveryRates.for_rate(1000, paid_broadcast=True)
    if request.param == "memory":
        limiter = DeliveryLimiter.in_memory(clock, rates)
        yield limiter, limiter
        return
    client = Redis.from_url(redis_url)
    try:
        yield shared_pair(clock, client, rates)
    finally:
        await client.aclose()


async def test_one_take_answers_for_the_pause_the_bot_and_each_chat(
    clock: ManualClock, limiters: tuple[DeliveryLimiter, DeliveryLimiter]
) -> None:
    first, second = limiters
    group = -1001234567890
    taken = await first.take(5, [101, 102, group])
    assert taken == Take(chat_waits=(0.0, 0.0, 0.0))
    again = await second.take(5, [101, 103, group])  # the other process: 101 and the group were just taken
    assert again.paused == 0 and again.wait == 0
    assert again.chat_waits == pytest.approx((1.0, 0.0, 1.0))
    assert await first.take(0, [104]) == Take(chat_waits=(0.0,))  # slots already held: chats only
    clock.advance(timedelta(seconds=1))
    assert (await second.take(1, [101, group])).chat_waits == pytest.approx((0.0, 2.0))  # a group: 3 s apart
    assert await second.take_chat(102) == 0  # the same buckets as one message at a time


async def test_a_refused_take_takes_nothing(
    clock: ManualClock, limiters: tuple[DeliveryLimiter, DeliveryLimiter]
) -> None:
    first, second = limiters
    burst = first.rates.burst
    for _ in range(burst // 5):
        assert (await first.take(5, [])).wait == 0
    refused = await second.take(5, [201, 202])
    assert refused.wait == pytest.approx(0.005) and refused.chat_waits == ()
    await second.pause(3)
    assert await first.take(5, [201]) == Take(paused=3.0)
    clock.advance(timedelta(seconds=3))
    assert await first.take(burst, [201, 202]) == Take(chat_waits=(0.0, 0.0))  # the chats were never taken
