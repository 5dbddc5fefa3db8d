"""Fixtures for the sandbox tests: a live emulator on 127.0.0.1, its client and an aiogram bot."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from PIL import Image

from bot.sandbox.client import EmulatorClient, wait_for
from bot.sandbox.emulator import BotAPIEmulator

TOKEN = "123456:TEST-token"


def make_png(width: int = 4, height: int = 3) -> bytes:
    """A real PNG image of the given size."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "red").save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
async def bot(emulator: BotAPIEmulator) -> AsyncIterator[Bot]:
    session = AiohttpSession(api=TelegramAPIServer.from_base(emulator.base_url))
    tg_bot = Bot(TOKEN, session=session, default=DefaultBotProperties(parse_mode="HTML"))
    yield tg_bot
    await tg_bot.session.close()


@asynccontextmanager
async def polling(dp: Dispatcher, bot: Bot, client: EmulatorClient) -> AsyncIterator[None]:
    """Run ``dp`` polling the emulator for the duration of the block."""
    task = asyncio.create_task(dp.start_polling(bot, handle_signals=False, close_bot_session=False, polling_timeout=5))

    async def started() -> bool | None:
        if task.done():
            task.result()
        return True if await client.calls("getUpdates") else None

    try:
        await wait_for(started, timeout=5)
        yield
    finally:
        if not task.done():
            await dp.stop_polling()
        await task
