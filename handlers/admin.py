"""Admin commands. Every handler here sits behind the router-level admin filter."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from bot.domain.roles import Role
from bot.i18n import Texts
from bot.services.menu import CommandMenu
from bot.services.registry import UseCases
from bot.services.views import PartnerView, RoleChange
from handlers.filters import HasRole


def render_change(change: RoleChange, t: Texts, done: str, noop: str) -> str:
    return t(done if change.changed else noop, name=change.target.display_name, role=t(f"role.{change.role.value}"))


async def grant(
    message: Message, command: CommandObject, partner: PartnerView, uc: UseCases, t: Texts, menu: CommandMenu
) -> None:
    change = await uc.roles.grant(partner, command.args)
    if change.changed:
        await menu.refresh_chat(change.target)
    await message.answer(render_change(change, t, "grant.done", "grant.already"))


async def revoke(
    message: Message, command: CommandObject, partner: PartnerView, uc: UseCases, t: Texts, menu: CommandMenu
) -> None:
    change = await uc.roles.revoke(partner, command.args)
    if change.changed:
        await menu.refresh_chat(change.target)
    await message.answer(render_change(change, t, "revoke.done", "revoke.not_held"))


async def audit(message: Message, uc: UseCases, t: Texts) -> None:
    lines = await uc.roles.recent_audit()
    if not lines:
        await message.answer(t("audit.empty"))
        return
    tz = uc.ctx.timezone
    rendered = [
        t(
            "audit.line",
            when=line.created_at.astimezone(tz).strftime("%m-%d %H:%M"),
            actor=line.actor_tg_id,
            action=line.action,
            target=line.target or "",
            outcome=line.outcome,
        )
        for line in lines
    ]
    await message.answer("\n".join([t("audit.title", count=len(lines)), *rendered]))


def build_router() -> Router:
    """A fresh router with this module's handlers (a router can belong to one dispatcher only)."""
    router = Router(name=__name__)
    router.message.filter(HasRole(Role.ADMIN))
    router.callback_query.filter(HasRole(Role.ADMIN))
    router.message.register(grant, Command("grant"))
    router.message.register(revoke, Command("revoke"))
    router.message.register(audit, Command("audit"))
    return router
