"""The last line of defence: the user gets a friendly text in their language, never a traceback."""

from __future__ import annotations

import logging
from typing import Any

from aiogram import Bot, Router
from aiogram.filters import ExceptionTypeFilter
from aiogram.types import ErrorEvent, Update

from bot.domain.errors import UserFacingError
from bot.i18n import Texts, Translator
from bot.update_dedupe import UpdateBusy

log = logging.getLogger(__name__)


def _chat_and_callback(update: Update) -> tuple[int | None, str | None]:
    if update.message:
        return update.message.chat.id, None
    if update.callback_query:
        return update.callback_query.from_user.id, update.callback_query.id
    return None, None


async def on_error(event: ErrorEvent, bot: Bot, translator: Translator, **data: Any) -> None:
    update, exc = event.update, event.exception
    t: Texts | None = data.get("t")
    if t is None:
        user = data.get("event_from_user")
        t = translator.texts(translator.resolve_language(None, getattr(user, "language_code", None)))
    if isinstance(exc, UserFacingError):
        log.info("update %s refused: %s", update.update_id, exc.key)
        text = t(exc.key, **exc.params)
    else:
        log.error("update %s failed", update.update_id, exc_info=exc)
        text = t("error.generic")
    chat_id, callback_id = _chat_and_callback(update)
    try:
        if callback_id is not None:
            await bot.answer_callback_query(callback_id, text=text[:200], show_alert=True)
        elif chat_id is not None:
            await bot.send_message(chat_id, text)
    except Exception:
        log.exception("update %s: could not tell the user about the failure", update.update_id)


def build_router() -> Router:
    """A fresh router with this module's handlers (a router can belong to one dispatcher only)."""
    router = Router(name=__name__)
    # UpdateBusy is no failure to tell the user about: it goes up to the webhook, which answers 503.
    router.errors.register(on_error, ~ExceptionTypeFilter(UpdateBusy))
    return router
