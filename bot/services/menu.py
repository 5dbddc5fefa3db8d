"""The Telegram command menu: per language for everyone, and per chat for leads and admins."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.types import BotCommand, BotCommandScopeChat, BotCommandScopeDefault

from bot.domain.roles import Role, has_at_least
from bot.i18n import SUPPORTED, Translator
from bot.services.views import PartnerView

log = logging.getLogger(__name__)

PARTNER_COMMANDS = (
    "today",
    "start7",
    "learn",
    "rank",
    "sprint",
    "story",
    "stories",
    "leads",
    "lead",
    "followup",
    "quote",
    "order",
    "coupon",
    "invite",
    "wallet",
    "withdraw",
    "me",
    "link",
    "poster",
    "card",
    "settings",
    "lang",
    "mydata",
    "help",
)
LEAD_COMMANDS = ("team", "dashboard")
ADMIN_COMMANDS = (
    "content",
    "grant",
    "revoke",
    "audit",
    "broadcast",
    "stats",
    "rules",
    "payouts",
    "export",
    "flags",
    "pools",
    "product",
    "campaign",
    "event",
    "orders",
    "playbooks",
    "spotlight",
)


def commands_for(role: Role) -> tuple[str, ...]:
    names: tuple[str, ...] = PARTNER_COMMANDS
    if has_at_least(role, Role.LEAD):
        names += LEAD_COMMANDS
    if has_at_least(role, Role.ADMIN):
        names += ADMIN_COMMANDS
    return names


class CommandMenu:
    def __init__(self, bot: Bot, translator: Translator) -> None:
        self._bot = bot
        self._translator = translator

    def _commands(self, role: Role, language: str) -> list[BotCommand]:
        t = self._translator.texts(language)
        return [BotCommand(command=name, description=t(f"commands.{name}")) for name in commands_for(role)]

    async def install_defaults(self) -> None:
        """Partner commands for every language, plus the default language for everyone else."""
        scope = BotCommandScopeDefault()
        for language in SUPPORTED:
            await self._bot.set_my_commands(self._commands(Role.PARTNER, language), scope=scope, language_code=language)
        await self._bot.set_my_commands(self._commands(Role.PARTNER, self._translator.default_language), scope=scope)

    async def install_staff(self, staff: Iterable[PartnerView]) -> None:
        for partner in staff:
            await self.refresh_chat(partner)

    async def refresh_chat(self, partner: PartnerView) -> None:
        """Give one chat the menu of its role; partners fall back to the default menu."""
        scope = BotCommandScopeChat(chat_id=partner.tg_user_id)
        try:
            if partner.role is Role.PARTNER:
                await self._bot.delete_my_commands(scope=scope)
            else:
                await self._bot.set_my_commands(self._commands(partner.role, partner.language), scope=scope)
        except TelegramAPIError as exc:
            log.warning("could not set the command menu for chat %s: %s", partner.tg_user_id, exc)

    async def sync_chat(self, partner: PartnerView) -> None:
        """Give leads and admins their per-chat menu (on sign-up, and when their language changes)."""
        if partner.role is not Role.PARTNER:
            await self.refresh_chat(partner)
