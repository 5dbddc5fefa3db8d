"""The baseline bot of the process benchmarks (benchmarks/memory.py, benchmarks/e2e_http.py): bare aiogram 3 long
polling a Bot API server with one trivial handler, no database, no middlewares, no scheduler.

`python -m benchmarks.bare_bot API_BASE` answers every message with "ok" until SIGTERM, polling exactly as
run_bot.py does (`Dispatcher.start_polling` with its defaults: updates handled as concurrent tasks); it prints
`ready` once it knows who it is, before its first poll.

`python -m benchmarks.bare_bot API_BASE DATABASE_URL` is the end-to-end benchmark's reference floor: the same bot
whose handler first opens one transaction on the database, reads the sender's partner id and writes one event.
The handler has no filter: aiogram would run a bare magic filter such as `F.text` in a worker thread
(handlers/filters.py), which would slow the baseline, not the bot.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from aiogram import Bot, Dispatcher, Router
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import Message

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

TOKEN = "123456:BENCH-token"


def one_transaction_handler(sessionmaker: async_sessionmaker[AsyncSession]) -> Callable[[Message], Awaitable[None]]:
    """The floor's handler (here and in benchmarks/update_handling.py): one transaction that reads the sender's
    partner id and writes one event, then "ok"."""
    from sqlalchemy import insert, select

    from storage.models import Event, Partner

    async def one_transaction(message: Message) -> None:
        assert message.from_user is not None
        async with sessionmaker() as session, session.begin():
            partner_id = await session.scalar(select(Partner.id).where(Partner.tg_user_id == message.from_user.id))
            event = insert(Event).values(
                partner_id=partner_id, type="bench", payload={}, source="bench", occurred_at=datetime.now(UTC)
            )
            await session.execute(event)
        await message.answer("ok")

    return one_transaction


async def main(api_base: str, database_url: str | None) -> None:
    bot = Bot(
        TOKEN,
        session=AiohttpSession(api=TelegramAPIServer.from_base(api_base)),
        default=DefaultBotProperties(parse_mode="HTML"),
    )
    dp, router = Dispatcher(), Router()

    @router.message()
    async def trivial(message: Message) -> None:
        await message.answer("ok")

    engine = None
    if database_url is not None:  # imported only here: the plain baseline's memory stays aiogram's alone
        from storage.db import create_engine, create_sessionmaker

        engine = create_engine(database_url)
        router = Router()
        router.message.register(one_transaction_handler(create_sessionmaker(engine)))

    dp.include_router(router)
    await bot.delete_webhook(drop_pending_updates=False)
    await bot.get_me()
    print("ready", flush=True)
    polling = asyncio.create_task(dp.start_polling(bot, handle_signals=False, close_bot_session=False))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait({polling, stopper}, return_when=asyncio.FIRST_COMPLETED)
    if not polling.done():
        await dp.stop_polling()
    await polling
    stopper.cancel()
    await bot.session.close()
    if engine is not None:
        await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None))
