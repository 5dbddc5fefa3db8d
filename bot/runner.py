"""Run modes: long polling, webhook, the terminal sandbox, and migrations."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from pathlib import Path
from urllib.parse import urlparse

from aiogram import Bot
from aiogram.types import Update
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web

from bot.app import create_app
from bot.config import ConfigError, Settings
from bot.sandbox.client import EmulatorClient, TgUser
from bot.sandbox.emulator import BotAPIEmulator
from bot.sandbox.terminal import chat_loop, script_lines, stdin_lines
from bot.update_dedupe import UpdateBusy
from storage.db import create_engine
from storage.migrate import upgrade_to_head

log = logging.getLogger(__name__)

POLLING_CONCURRENCY = 10
"""Updates handled at once by long polling; the next are fetched as these finish. Unbounded, a backlog (after
downtime, or a burst of answers to a broadcast) starts a task for every pending update at once, and those the
database pool cannot serve within its 30 s checkout timeout fail (benchmarks/e2e_http.py: 2,000 queued /me on
PostgreSQL, QueuePool TimeoutError). Ten fit in either pool (storage.db: 10 + 10 on PostgreSQL, SQLite's 5 + 10) and
leave connections to the outbox sender and the scheduled jobs."""


def _stop_event() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    return stop


class WebhookHandler(SimpleRequestHandler):
    """aiogram's webhook handler, answering `400` to a body that is not a Telegram update (not JSON, nested past
    the parser's limit, or not an update's shape) instead of a `500` with a logged traceback for each."""

    async def handle(self, request: web.Request) -> web.Response:
        bot = await self.resolve_bot(request)
        if self.verify_secret(request.headers.get("X-Telegram-Bot-Api-Secret-Token", ""), bot):
            try:
                Update.model_validate(await request.json(loads=bot.session.json_loads), context={"bot": bot})
            except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError, ValidationError
                log.warning("webhook: refused a body that is not an update: %s", type(exc).__name__)
                return web.json_response({"ok": False, "error": "not_an_update"}, status=400)
        return await super().handle(request)  # the body is cached: it is read once

    async def _handle_request(self, bot: Bot, request: web.Request) -> web.Response:
        try:
            return await super()._handle_request(bot, request)
        except UpdateBusy as busy:
            return web.json_response(
                {"ok": False, "error": "in_progress", "update_id": busy.update_id},
                status=503,
                headers={"Retry-After": str(BUSY_RETRY_AFTER)},
            )


BUSY_RETRY_AFTER = 5
"""Seconds a redelivery of an update still being handled is asked to wait (Telegram spaces its retries itself)."""


class _QuietBusy(logging.Filter):
    """aiogram logs every exception out of a webhook update with its traceback; `UpdateBusy` is no failure."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], UpdateBusy))


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
            app.dispatcher.start_polling(
                app.bot,
                handle_signals=False,
                close_bot_session=False,
                tasks_concurrency_limit=POLLING_CONCURRENCY,
            ),
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
    app = create_app(settings, webhook=True)
    logging.getLogger("aiogram.event").addFilter(_QuietBusy())
    # Answer Telegram only once the update was handled: an update acknowledged before handling (aiogram's default,
    # handle_in_background) is lost for good when the process dies meanwhile; unacknowledged, Telegram redelivers it.
    WebhookHandler(app.dispatcher, app.bot, handle_in_background=False, secret_token=secret).register(
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
