"""Update handling: `/today` through the full stack (throttle, one DB transaction, partner lookup, the day's
pack with tracked links, event write, i18n, reply) against a bare aiogram dispatcher with a trivial `/today`
handler, both fed the same way in one run. Three evergreen content items are live, so the pack is real.

A reference row measures the floor in the same run: the bare dispatcher whose handler opens one transaction on the
same database, reads the partner's id and writes one event (the least the scenario asks of `/today`) and answers
"ok". It shows how much of the bare rate any handler that touches the database in a transaction can keep, before
middlewares, routing, the pack or i18n.

Sizes (quick / full): 200 / 3,000 `/today` updates from 50 / 200 registered users, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from aiogram import Bot, Dispatcher, Router
from aiogram.client.default import DefaultBotProperties
from aiogram.filters import Command
from aiogram.types import Chat, Message, MessageEntity, Update, User
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from benchmarks.bare_bot import one_transaction_handler
from benchmarks.report import Result
from bot.app import build_dispatcher
from bot.clock import SystemClock
from bot.delivery.sender import OutboxSender
from bot.i18n import Translator
from bot.sandbox.recording import RecordingSession
from bot.services.context import ServiceContext
from bot.services.menu import CommandMenu
from bot.throttle import MemoryThrottle
from storage.db import create_engine, create_sessionmaker
from storage.migrate import upgrade_to_head
from storage.models import ContentItem
from storage.uow import UnitOfWork

TARGET_RATIO = 0.30
TARGET_P99_MS = 20.0
USERS = 200
UPDATES = 3000
QUICK_USERS, QUICK_UPDATES = 50, 200
WARM_UP_USERS, WARM_UP_UPDATES = 5, 20
"""Before timing, the full stack sees five other users start and send /today three times each; the bare and
one-transaction handlers see the first 20 updates of the run (renumbered)."""
WARM_UP_USER = 900_000


def _update(update_id: int, user_id: int, text: str) -> Update:
    user = User(id=user_id, is_bot=False, first_name=f"U{user_id}", language_code="en")
    command = text.split(maxsplit=1)[0]
    message = Message(
        message_id=update_id,
        date=datetime.now(UTC),
        chat=Chat(id=user_id, type="private"),
        from_user=user,
        text=text,
        entities=[MessageEntity(type="bot_command", offset=0, length=len(command))],
    )
    return Update(update_id=update_id, message=message)


async def _measure(feed: Callable[[Update], Awaitable[object]], updates: list[Update]) -> tuple[float, list[float]]:
    latencies = []
    started = time.perf_counter()
    for update in updates:
        t0 = time.perf_counter()
        await feed(update)
        latencies.append((time.perf_counter() - t0) * 1000)
    return len(updates) / (time.perf_counter() - started), latencies


def _bot() -> Bot:
    return Bot(
        "123456:BENCH-token", session=RecordingSession(record=False), default=DefaultBotProperties(parse_mode="HTML")
    )


async def _bare(updates: list[Update]) -> tuple[float, list[float]]:
    bot, dp, router = _bot(), Dispatcher(), Router()

    @router.message(Command("today"))
    async def trivial(message: Message) -> None:
        await message.answer("ok")

    dp.include_router(router)
    try:
        for update in updates[:WARM_UP_UPDATES]:
            await dp.feed_update(bot, update.model_copy(update={"update_id": -update.update_id}))
        return await _measure(lambda u: dp.feed_update(bot, u), updates)
    finally:
        await bot.session.close()


async def _seed_content(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    now = datetime.now(UTC)
    async with UnitOfWork(sessionmaker) as uow:
        for n in range(1, 4):
            uow.session.add(
                ContentItem(
                    title=f"Bench item {n}",
                    text=f"Bench item {n}: {{link}}",
                    url=f"https://shop.example/p/{n}",
                    created_at=now,
                    updated_at=now,
                )
            )


async def _one_transaction(database_url: str, updates: list[Update]) -> float:
    """The floor: the bare dispatcher, its `/today` handler doing one transaction (the partner's id by Telegram id,
    one event) and one answer. Run after `_full`, whose `/start`s registered the partners."""
    engine = create_engine(database_url)
    sessionmaker = create_sessionmaker(engine)
    bot, dp, router = _bot(), Dispatcher(), Router()
    router.message.register(one_transaction_handler(sessionmaker), Command("today"))
    dp.include_router(router)
    try:
        for update in updates[:WARM_UP_UPDATES]:  # the same partners again: nothing is created on first use
            await dp.feed_update(bot, update.model_copy(update={"update_id": -update.update_id}))
        rate, _ = await _measure(lambda u: dp.feed_update(bot, u), updates)
        return rate
    finally:
        await bot.session.close()
        await engine.dispose()


async def _full(database_url: str, updates: list[Update], users: int) -> tuple[float, list[float]]:
    engine = create_engine(database_url)
    await upgrade_to_head(engine)
    bot = _bot()
    translator = Translator.load("en")
    ctx = ServiceContext(SystemClock(), translator, frozenset(), ZoneInfo("Asia/Shanghai"), bot_username="bench_bot")
    sessionmaker = create_sessionmaker(engine)
    await _seed_content(sessionmaker)
    sender = OutboxSender(sessionmaker, bot, SystemClock())
    dp = build_dispatcher(
        ctx=ctx,
        sessionmaker=sessionmaker,
        throttle=MemoryThrottle(1.0),
        throttle_rate=1_000_000,
        on_outbox=sender.wake,
        menu=CommandMenu(bot, translator),
    )
    try:
        for user_id in range(1, users + 1):  # everyone is registered before timing
            await dp.feed_update(bot, _update(10_000_000 + user_id, user_id, "/start"))
        # Warm-up: other users' first and second /today, so the code path and its statements are warm; the measured
        # users' first /today of the day (their pack and tracked links are created) still falls in the window.
        for n in range(WARM_UP_UPDATES):
            user_id = WARM_UP_USER + n % WARM_UP_USERS
            text = "/start" if n < WARM_UP_USERS else "/today"
            await dp.feed_update(bot, _update(20_000_000 + n, user_id, text))
        return await _measure(lambda u: dp.feed_update(bot, u), updates)
    finally:
        await bot.session.close()
        await engine.dispose()


def _p99(latencies: list[float]) -> float:
    return statistics.quantiles(latencies, n=100)[98]


async def run(*, quick: bool, postgres_url: str | None) -> list[Result]:
    users, count = (QUICK_USERS, QUICK_UPDATES) if quick else (USERS, UPDATES)
    updates = [_update(i, 1 + i % users, "/today") for i in range(1, count + 1)]
    size = f"{count:,} updates from {users} users" + ("; quick" if quick else "")
    results = []
    backends: list[tuple[str, Callable[[], str]]] = []
    tmp = Path(tempfile.mkdtemp(prefix="pa-bench-"))
    backends.append(("sqlite", lambda: f"sqlite+aiosqlite:///{tmp / 'bench.db'}"))
    if postgres_url:
        backends.append(("postgres", lambda: postgres_url))
    for name, url in backends:
        bare_rate, _ = await _bare(updates)  # the baseline is measured right beside each run
        full_rate, latencies = await _full(url(), updates, users)
        floor_rate = await _one_transaction(url(), updates)
        results.append(
            Result(
                f"/today update handling ({name}, {size})",
                "updates/s vs bare",
                f">= {TARGET_RATIO:.2f}x bare",
                full_rate,
                bare_rate,
                full_rate / bare_rate >= TARGET_RATIO,
                "/s",
            )
        )
        results.append(
            Result(
                f"reference: bare dispatcher + one transaction ({name})",
                "updates/s vs bare",
                "floor, no target",
                floor_rate,
                bare_rate,
                None,
                "/s",
            )
        )
        p99 = _p99(latencies)
        results.append(
            Result(
                f"/today update handling ({name})",
                "p99 latency",
                f"<= {TARGET_P99_MS:.0f} ms",
                p99,
                None,
                p99 <= TARGET_P99_MS,
                " ms",
            )
        )
    return results


if __name__ == "__main__":
    from benchmarks.report import render

    print(render(asyncio.run(run(quick=True, postgres_url=None))))
