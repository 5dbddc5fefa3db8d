"""/help, and the catch-all for unknown commands, free text and expired buttons. Registered last."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message

from bot.domain.roles import Role, has_at_least
from bot.i18n import Texts
from bot.services.views import PartnerView
from handlers.filters import Inline


async def help_command(message: Message, partner: PartnerView, t: Texts) -> None:
    parts = [t("help.partner")]
    if has_at_least(partner.role, Role.LEAD):
        parts.append(t("help.lead"))
    if has_at_least(partner.role, Role.ADMIN):
        parts.append(t("help.admin"))
    await message.answer("\n\n".join(parts))


async def unknown_command(message: Message, t: Texts) -> None:
    await message.answer(t("fallback.unknown_command"))


async def free_text(message: Message, t: Texts) -> None:
    await message.answer(t("fallback.free_text"))


async def stale_button(callback: CallbackQuery, t: Texts) -> None:
    await callback.answer(t("fallback.stale_button"), show_alert=True)


def build_router() -> Router:
    """A fresh router with this module's handlers (a router can belong to one dispatcher only)."""
    router = Router(name=__name__)
    router.message.register(help_command, Command("help"))
    router.message.register(unknown_command, Inline(F.text.startswith("/")))
    router.message.register(free_text)
    router.callback_query.register(stale_button)
    return router
