"""/lang: switch between Simplified Chinese and English."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message

from bot.callbacks import LanguageCallback
from bot.domain.errors import UsageError
from bot.i18n import SUPPORTED
from bot.services.menu import CommandMenu
from bot.services.registry import UseCases
from bot.services.views import PartnerView
from handlers.keyboards import language_keyboard


async def lang(message: Message, command: CommandObject, partner: PartnerView, uc: UseCases, menu: CommandMenu) -> None:
    translator = uc.ctx.translator
    if not command.args:
        await message.answer(
            translator.texts(partner.language)("lang.choose"), reply_markup=language_keyboard(translator)
        )
        return
    choice = command.args.strip().lower()
    if choice not in SUPPORTED:
        raise UsageError("lang.usage")
    updated = await uc.partners.set_language(partner.id, choice)
    await menu.sync_chat(updated)
    await message.answer(translator.texts(updated.language)("lang.set"))


async def lang_button(
    callback: CallbackQuery, callback_data: LanguageCallback, partner: PartnerView, uc: UseCases, menu: CommandMenu
) -> None:
    updated = await uc.partners.set_language(partner.id, callback_data.language)
    await menu.sync_chat(updated)
    t = uc.ctx.translator.texts(updated.language)
    await callback.answer(t("lang.set"))
    if callback.message is not None:
        await callback.bot.edit_message_text(  # type: ignore[union-attr]
            t("lang.set"), chat_id=callback.from_user.id, message_id=callback.message.message_id
        )


def build_router() -> Router:
    """A fresh router with this module's handlers (a router can belong to one dispatcher only)."""
    router = Router(name=__name__)
    router.message.register(lang, Command("lang"))
    router.callback_query.register(lang_button, LanguageCallback.filter())
    return router
