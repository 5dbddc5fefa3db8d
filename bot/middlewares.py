"""Per-update middlewares: flood protection, one unit of work, and the current partner and language."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, Update, User
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.i18n import Translator
from bot.services.context import ServiceContext
from bot.services.registry import UseCases
from bot.services.views import TelegramProfile
from bot.throttle import Throttle
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


def _user(data: dict[str, Any]) -> User | None:
    user = data.get("event_from_user")
    return user if isinstance(user, User) and not user.is_bot else None


def is_start_command(update: Update) -> bool:
    text = update.message.text if update.message else None
    return bool(text) and (text == "/start" or text.startswith(("/start ", "/start@")))  # type: ignore[union-attr]


class ThrottleMiddleware(BaseMiddleware):
    """Drops a user's updates beyond `rate` per window, telling them once per window."""

    def __init__(self, throttle: Throttle, rate: int, translator: Translator) -> None:
        self._throttle = throttle
        self._rate = rate
        self._translator = translator

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user = _user(data)
        if user is None or not isinstance(event, Update) or not (event.message or event.callback_query):
            return await handler(event, data)
        count = await self._throttle.hit(str(user.id))
        if count <= self._rate:
            return await handler(event, data)
        log.info("update %s throttled for user %s (%s in window)", event.update_id, user.id, count)
        if count == self._rate + 1:
            t = self._translator.texts(self._translator.resolve_language(None, user.language_code))
            if event.callback_query:
                await event.callback_query.answer(t("error.throttled"))
            elif event.message:
                await event.message.answer(t("error.throttled"))
        return None


class UnitOfWorkMiddleware(BaseMiddleware):
    """One transaction per update: commit when the handler returns, roll back when it raises."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        ctx: ServiceContext,
        on_outbox: Callable[[], None],
    ) -> None:
        self._sessionmaker = sessionmaker
        self._ctx = ctx
        self._on_outbox = on_outbox

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        uow = UnitOfWork(self._sessionmaker)
        async with uow:
            data["uow"] = uow
            data["uc"] = UseCases(uow, self._ctx)
            result = await handler(event, data)
        if uow.outbox_dirty:
            self._on_outbox()
        return result


def without_nul(update: Update) -> Update:
    """The update with U+0000 in its message's text or caption turned into a space (the same length, so entity
    offsets still hold): PostgreSQL text cannot store it, and every search or save of such a text failed."""
    message = update.message
    if message is None or "\x00" not in f"{message.text or ''}{message.caption or ''}":
        return update
    fields = {name: value.replace("\x00", " ") for name in ("text", "caption") if (value := getattr(message, name))}
    return update.model_copy(update={"message": message.model_copy(update=fields)})


class NulTextMiddleware(BaseMiddleware):
    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        return await handler(without_nul(event) if isinstance(event, Update) else event, data)


class PartnerMiddleware(BaseMiddleware):
    """Puts the current partner and their texts into the handler data.

    Anyone who writes to the bot becomes a partner; /start does its own registration because it
    carries the invite code.
    """

    def __init__(self, translator: Translator) -> None:
        self._translator = translator

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user = _user(data)
        uc: UseCases = data["uc"]
        partner = None
        if user is not None:
            profile = TelegramProfile(user.id, user.first_name, user.last_name, user.username, user.language_code)
            partner = await uc.partners.current(profile)
            if partner is None and isinstance(event, Update) and not is_start_command(event):
                partner = (await uc.partners.register(profile, None)).partner
        language = (
            partner.language
            if partner
            else self._translator.resolve_language(None, user.language_code if user else None)
        )
        data["partner"] = partner
        data["t"] = self._translator.texts(language)
        return await handler(event, data)
