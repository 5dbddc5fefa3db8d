"""Team lead commands, behind the router-level lead filter (admins pass it too)."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import Message

from bot.domain.roles import Role
from bot.i18n import Texts
from bot.services.registry import UseCases
from bot.services.views import PartnerView
from handlers.filters import HasRole


async def team(message: Message, partner: PartnerView, uc: UseCases, t: Texts) -> None:
    view = await uc.partners.team(partner.id)
    lines = [t("team.summary", size=view.size, l1=view.level1, l2=view.level2)]
    if view.newest:
        tz = uc.ctx.timezone
        lines.append(t("team.recent"))
        lines += [
            t("team.member", name=m.name, joined=m.joined_at.astimezone(tz).strftime("%Y-%m-%d")) for m in view.newest
        ]
    else:
        lines.append(t("team.empty"))
    await message.answer("\n".join(lines))


def build_router() -> Router:
    """A fresh router with this module's handlers (a router can belong to one dispatcher only)."""
    router = Router(name=__name__)
    router.message.filter(HasRole(Role.LEAD))
    router.message.register(team, Command("team"))
    return router
