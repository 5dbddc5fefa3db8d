"""Refusals for privileged commands sent by someone without the role. Placed after the role routers."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from bot.i18n import Texts
from bot.services.menu import ADMIN_COMMANDS, LEAD_COMMANDS
from bot.services.registry import UseCases
from bot.services.views import PartnerView


async def admin_only(message: Message, command: CommandObject, partner: PartnerView, uc: UseCases, t: Texts) -> None:
    uc.roles.denied(partner.tg_user_id, partner.id, command.command)
    await message.answer(t("denied.admin"))


async def lead_only(message: Message, command: CommandObject, partner: PartnerView, uc: UseCases, t: Texts) -> None:
    uc.roles.denied(partner.tg_user_id, partner.id, command.command)
    await message.answer(t("denied.lead"))


def build_router() -> Router:
    """A fresh router with this module's handlers (a router can belong to one dispatcher only)."""
    router = Router(name=__name__)
    router.message.register(admin_only, Command(*ADMIN_COMMANDS))
    router.message.register(lead_only, Command(*LEAD_COMMANDS))
    return router
