"""The baseline bot of the process benchmarks (benchmarks/memory.py, benchmarks/e2e_http.py): bare aiogram 3 long
polling a Bot API server with one trivial handler, no database, no middlewares, no scheduler.

`python -m benchmarks.bare_bot API_BASE` answers every text message with "ok" until SIGTERM, polling exactly as
run_bot.py does (`Dispatcher.start_polling` with its defaults: updates handled as concurrent tasks); it prints
`ready` once it knows who it is, before its first poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys

from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import Message

TOKEN = "123456:BENCH-token"


async def main(api_base: str) -> None:
    bot = Bot(
        TOKEN,
        session=AiohttpSession(api=TelegramAPIServer.from_base(api_base)),
        default=DefaultBotProperties(parse_mode="HTML"),
    )
    dp, router = Dispatcher(), Router()

    @router.message(F.text)
    async def trivial(message: Message) -> None:
        await message.answer("ok")

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


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
