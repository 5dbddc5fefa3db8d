"""Run modes: long polling, webhook, the terminal sandbox, and migrations."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from pathlib import Path
from urllib.parse import urlparse

from aiogram.webhook.aiohttp_server import SimpleRequestHandler

from bot.app import create_app
from bot.config import ConfigError, Settings
from bot.sandbox.client import EmulatorClient, TgUser
from bot.sandbox.emulator import BotAPIEmulator
from bot.sandbox.terminal import chat_loop, script_lines, stdin_lines
from storage.db import create_engine
from storage.migrate import upgrade_to_head

log = logging.getLogger(__name__)


def _stop_event() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    return stop


async def migrate(settings: Settings) -> None:
    engine = create_engine(settings.database_url)
    try:
        await upgrade_to_head(engine)
    finally:
        await engine.dispose()


async def run_polling(settings: Settings) -> None:
    app = create_app(settings)
    await app.start()
    try:
        await app.bot.delete_webhook(drop_pending_updates=False)
        polling = asyncio.create_task(
            app.dispatcher.start_polling(app.bot, handle_signals=False, close_bot_session=False),
            name="polling",
        )
        stop = _stop_event()
        stopper = asyncio.create_task(stop.wait(), name="stop-signal")
        await asyncio.wait({polling, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if not polling.done():
            await app.dispatcher.stop_polling()
        await polling
        stopper.cancel()
    finally:
        await app.stop()


async def run_webhook(settings: Settings) -> None:
    if not settings.webhook_url:
        raise ConfigError("WEBHOOK_URL", "is required with --webhook")
    if settings.webhook_secret is None:
        raise ConfigError("WEBHOOK_SECRET", "is required with --webhook")
    secret = settings.webhook_secret.get_secret_value()
    app = create_app(settings)
    SimpleRequestHandler(app.dispatcher, app.bot, secret_token=secret).register(
        app.web_app, path=urlparse(settings.webhook_url).path or "/webhook"
    )
    await app.start()
    try:
        await app.bot.set_webhook(
            settings.webhook_url, secret_token=secret, allowed_updates=app.dispatcher.resolve_used_update_types()
        )
        log.info("webhook registered at %s", settings.webhook_url)
        await _stop_event().wait()
    finally:
        await app.stop()


async def run_sandbox(
    settings: Settings, *, user_id: int, first_name: str, language: str | None, script: Path | None
) -> None:
    """The whole bot against the embedded Bot API stand-in, chatted with in this terminal."""
    media_dir = Path("data") / "sandbox-media"
    await asyncio.to_thread(media_dir.mkdir, parents=True, exist_ok=True)
    emulator = BotAPIEmulator(files_dir=media_dir / "uploads")
    base_url = await emulator.start()
    app = create_app(settings, api_base=base_url)
    polling: asyncio.Task[None] | None = None
    try:
        await app.start(serve_web=False)
        polling = asyncio.create_task(
            app.dispatcher.start_polling(app.bot, handle_signals=False, close_bot_session=False, polling_timeout=1),
            name="polling",
        )
        user = TgUser(id=user_id, first_name=first_name, language_code=language)
        role = "admin" if user_id in settings.admin_ids else "partner"
        print(f"Sandbox: chatting as user {user_id} ({first_name}, {role}). Type :help for help, :quit to leave.")
        lines = script_lines(script, print) if script else stdin_lines("you> ")
        async with EmulatorClient(base_url) as client:
            await chat_loop(client, user, lines, print, media_dir)
    finally:
        if polling is not None:
            await app.dispatcher.stop_polling()
            with contextlib.suppress(asyncio.CancelledError):
                await polling
        await app.stop()
        await emulator.stop()
