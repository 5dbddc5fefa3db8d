"""/start: sign-up with an optional invite code (deep-link payload)."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import CommandObject, CommandStart
from aiogram.types import Message

from bot.domain.referral import Binding
from bot.i18n import Texts
from bot.services.menu import CommandMenu
from bot.services.registry import UseCases
from bot.services.views import Registration, TelegramProfile

BINDING_TEXT = {
    Binding.BOUND: "start.bound",
    Binding.ALREADY_BOUND: "start.already_bound",
    Binding.INVALID_CODE: "start.invalid_code",
    Binding.UNKNOWN_CODE: "start.unknown_code",
    Binding.OWN_CODE: "start.own_code",
    Binding.CYCLE: "start.cycle",
}


def render_registration(result: Registration, t: Texts) -> str:
    partner = result.partner
    if result.created:
        lines = [t("start.welcome_new", name=partner.display_name, code=partner.invite_code)]
    else:
        lines = [t("start.welcome_back", name=partner.display_name)]
    key = BINDING_TEXT.get(result.binding)
    if key:
        lines.append(t(key, upline=result.upline_name or ""))
    return "\n\n".join(lines)


async def start(message: Message, command: CommandObject, uc: UseCases, menu: CommandMenu) -> None:
    user = message.from_user
    if user is None:
        return
    profile = TelegramProfile(user.id, user.first_name, user.last_name, user.username, user.language_code)
    result = await uc.partners.register(profile, command.args)
    if result.created:
        await menu.sync_chat(result.partner)  # ADMIN_IDS admins get their menu on first contact
    t = uc.ctx.translator.texts(result.partner.language)
    await message.answer(render_registration(result, t))


def build_router() -> Router:
    """A fresh router with this module's handlers (a router can belong to one dispatcher only)."""
    router = Router(name=__name__)
    router.message.register(start, CommandStart())
    return router
