"""Tier-2 harness: the production dispatcher fed with updates, talking to a recording Bot API session."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.fsm.storage.base import BaseEventIsolation, BaseStorage
from aiogram.types import CallbackQuery, Chat, Message, MessageEntity, Update, User
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.app import build_dispatcher
from bot.clock import ManualClock
from bot.delivery.sender import OutboxSender
from bot.i18n import Translator
from bot.monitoring import Metrics
from bot.sandbox.recording import BOT_USERNAME, Call, RecordingSession
from bot.scheduling import JobRuntime
from bot.services.context import ServiceContext
from bot.services.menu import CommandMenu
from bot.throttle import MemoryThrottle, Throttle
from storage.db import create_sessionmaker

ADMIN_ID = 9000
START = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)


def tg_user(user_id: int, first_name: str = "", *, username: str | None = None, lang: str | None = "en") -> User:
    return User(
        id=user_id, is_bot=False, first_name=first_name or f"User{user_id}", username=username, language_code=lang
    )


class BotHarness:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        admin_ids: frozenset[int] = frozenset({ADMIN_ID}),
        default_language: str = "zh",
        throttle: Throttle | None = None,
        throttle_rate: int = 1000,
        storage: BaseStorage | None = None,
        events_isolation: BaseEventIsolation | None = None,
        metrics: Metrics | None = None,
        clock: ManualClock | None = None,
    ) -> None:
        from zoneinfo import ZoneInfo

        self.clock = clock or ManualClock(START)
        self.session = RecordingSession()
        self.bot = Bot("123456:TEST-token", session=self.session, default=DefaultBotProperties(parse_mode="HTML"))
        self.translator = Translator.load(default_language)
        self.ctx = ServiceContext(
            clock=self.clock,
            translator=self.translator,
            admin_ids=admin_ids,
            timezone=ZoneInfo("Asia/Shanghai"),
            bot_username=BOT_USERNAME,
        )
        self.sessionmaker = create_sessionmaker(engine)
        self.sender = OutboxSender(self.sessionmaker, self.bot, self.clock, sleep=self.pass_time)
        self.menu = CommandMenu(self.bot, self.translator)
        self.dp: Dispatcher = build_dispatcher(
            ctx=self.ctx,
            sessionmaker=self.sessionmaker,
            throttle=throttle or MemoryThrottle(3.0),
            throttle_rate=throttle_rate,
            on_outbox=self.sender.wake,
            storage=storage,
            events_isolation=events_isolation,
            metrics=metrics,
            menu=self.menu,
        )
        if metrics is not None:
            self.sender.on_recorded = metrics.outbox_outcome
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1)

    @property
    def calls(self) -> list[Call]:
        return self.session.calls

    def job_runtime(self) -> JobRuntime:
        """What a scheduled job gets from `job_runtime()` in this harness (`with running_with(h.job_runtime()):`);
        jobs under test read neither the settings nor the scheduler."""
        return JobRuntime(
            settings=cast(Any, None),
            bot=self.bot,
            sessionmaker=self.sessionmaker,
            clock=self.clock,
            ctx=self.ctx,
            sender=self.sender,
            scheduler=cast(Any, None),
        )

    def t(self, language: str, key: str, **params: Any) -> str:
        return self.translator.texts(language)(key, **params)

    async def send(self, user: User, text: str) -> Update:
        entities = None
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            entities = [MessageEntity(type="bot_command", offset=0, length=len(command))]
        message = Message(
            message_id=next(self._message_ids),
            date=self.clock.now(),
            chat=Chat(id=user.id, type="private"),
            from_user=user,
            text=text,
            entities=entities,
        )
        update = Update(update_id=next(self._update_ids), message=message)
        await self.dp.feed_update(self.bot, update)
        return update

    async def send_media(self, user: User, **fields: Any) -> Update:
        """A message with any other content, given as Bot API fields: `photo=[{...}]`, `video={...}`,
        `document={...}`, `sticker={...}`, `voice={...}`, `caption="..."`."""
        message = Message(
            message_id=next(self._message_ids),
            date=self.clock.now(),
            chat=Chat(id=user.id, type="private"),
            from_user=user,
            **fields,
        )
        update = Update(update_id=next(self._update_ids), message=message)
        await self.dp.feed_update(self.bot, update)
        return update

    async def send_photo(
        self,
        user: User,
        data: bytes,
        *,
        file_id: str = "user-photo",
        file_size: int | None = None,
        caption: str | None = None,
    ) -> Update:
        """A photo as Telegram delivers it (a thumbnail and the full size); getFile and the download of the
        full size give `data`. `file_size` (default: the length of `data`) is what the message claims."""
        self.session.add_file(file_id, data)
        size = len(data) if file_size is None else file_size
        photo = [
            {
                "file_id": f"{file_id}-thumb",
                "file_unique_id": f"{file_id}-t",
                "width": 90,
                "height": 90,
                "file_size": 900,
            },
            {"file_id": file_id, "file_unique_id": f"{file_id}-u", "width": 1280, "height": 1280, "file_size": size},
        ]
        return await self.send_media(user, photo=photo, caption=caption)

    async def send_file(
        self,
        user: User,
        kind: str,
        data: bytes,
        *,
        file_id: str = "user-file",
        file_size: int | None = None,
        mime_type: str | None = None,
        file_name: str | None = None,
        caption: str | None = None,
        **extra: Any,
    ) -> Update:
        """A video, document, voice, audio… message (`kind` is the Bot API field) whose file downloads as `data`."""
        self.session.add_file(file_id, data)
        body: dict[str, Any] = {
            "file_id": file_id,
            "file_unique_id": f"{file_id}-u",
            "file_size": len(data) if file_size is None else file_size,
            **extra,
        }
        if mime_type is not None:
            body["mime_type"] = mime_type
        if file_name is not None:
            body["file_name"] = file_name
        return await self.send_media(user, **{kind: body}, caption=caption)

    async def press(self, user: User, data: str, message_id: int = 1000, text: str = "") -> Update:
        message = Message(
            message_id=message_id,
            date=self.clock.now(),
            chat=Chat(id=user.id, type="private"),
            from_user=User(id=123456, is_bot=True, first_name="Partner Assistant"),
            text=text or "…",
        )
        query = CallbackQuery(
            id=f"cb{next(self._update_ids)}", from_user=user, chat_instance="ci", data=data, message=message
        )
        update = Update(update_id=next(self._update_ids), callback_query=query)
        await self.dp.feed_update(self.bot, update)
        return update

    async def pass_time(self, seconds: float) -> None:
        """The sender's pacing waits move the manual clock instead of sleeping (other tasks still get a turn)."""
        self.clock.advance(timedelta(seconds=seconds))
        await asyncio.sleep(0)

    async def drain_outbox(self) -> int:
        return await self.sender.drain_once()

    async def close(self) -> None:
        await self.dp.storage.close()
        await self.dp.fsm.events_isolation.close()
        await self.bot.session.close()
