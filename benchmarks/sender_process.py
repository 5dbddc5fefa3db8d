"""One outbox sender process for the multi-process delivery benchmark (started by benchmarks/delivery.py).

`python -m benchmarks.sender_process DATABASE_URL API_BASE REDIS_URL PREFIX RATE` warms up, prints `ready`, waits for a
line on stdin, then sends with limits shared through Redis under PREFIX, as several bot processes would, until
the outbox has nothing left to send; then prints one JSON line with its CPU seconds and wall seconds.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import time

from aiogram import Bot
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import SystemClock
from bot.delivery.limiter import DeliveryLimiter, DeliveryRates
from bot.delivery.sender import OutboxSender
from storage.db import create_engine, create_sessionmaker
from storage.models import OutboxMessage

IDLE_POLLS_BEFORE_EXIT = 3
WARM_DB_CONNECTIONS = 3
WARM_UP_SENDS = 200
WARM_UP_CHAT = 1


async def _unfinished(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    async with sessionmaker() as session:
        query = select(func.count()).where(OutboxMessage.status.in_(("pending", "sending")))
        return int((await session.execute(query)).scalar_one())


async def _warm_up(sessionmaker: async_sessionmaker[AsyncSession], bot: Bot) -> None:
    """Open the connections a running bot process would already hold, so the measured broadcast runs in steady
    state as in the one-process scenario: the database pool (a claim, the next claim and the recorder's write
    at once), and the Bot API connection pool with the send path warm (the parent resets the stand-in's count
    after this)."""
    await asyncio.gather(*(_unfinished(sessionmaker) for _ in range(WARM_DB_CONNECTIONS)))
    await asyncio.gather(*(bot.send_message(WARM_UP_CHAT, "warm-up") for _ in range(WARM_UP_SENDS)))


async def main(database_url: str, api_base: str, redis_url: str, prefix: str, rate: int) -> None:
    from benchmarks.delivery import _bot

    engine = create_engine(database_url)
    sessionmaker = create_sessionmaker(engine)
    redis = Redis.from_url(redis_url)
    clock = SystemClock()
    rates = DeliveryRates.for_rate(rate, paid_broadcast=True)
    bot = _bot(api_base)
    sender = OutboxSender(
        sessionmaker, bot, clock, limiter=DeliveryLimiter.on_redis(clock, rates, redis, prefix=prefix), poll_seconds=0.2
    )
    await _warm_up(sessionmaker, bot)
    gc.collect()
    gc.freeze()
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)  # every process starts at the same moment
    cpu, wall = time.process_time(), time.perf_counter()
    task = asyncio.create_task(sender.run())
    idle = 0
    while idle < IDLE_POLLS_BEFORE_EXIT:
        await asyncio.sleep(0.2)
        idle = idle + 1 if not await _unfinished(sessionmaker) else 0
    sender.stop()
    await task
    print(json.dumps({"cpu": time.process_time() - cpu, "wall": time.perf_counter() - wall}), flush=True)
    await bot.session.close()
    await redis.aclose()
    await engine.dispose()


if __name__ == "__main__":
    database, api, redis_address, key_prefix, per_second = sys.argv[1:6]
    asyncio.run(main(database, api, redis_address, key_prefix, int(per_second)))
